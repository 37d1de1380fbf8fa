//! CNI's environment: the command, the container, its namespace and interface, and CNI_ARGS.
//! Everything here is the runtime's input: checked before use.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ocinet::validate;

use crate::error::{code, CniError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

/// One attachment's part of the environment (ADD, CHECK, DEL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
    /// Empty or absent at DEL when the namespace is gone.
    pub netns: Option<PathBuf>,
}

impl Attachment {
    /// The engine's record id of this attachment: one per container and interface.
    pub fn record_id(&self) -> String {
        record_id(&self.container_id, &self.ifname)
    }
}

/// `cni-<container>-<ifname>`: CNI keys attachments by both; the engine by one id.
pub fn record_id(container_id: &str, ifname: &str) -> String {
    format!("cni-{container_id}-{ifname}")
}

/// What CNI_ARGS may ask (`IP=...;MAC=...`) and the container's name (`K8S_POD_NAME`, which
/// podman sets to the container's name, as Kubernetes runtimes to the pod's); other keys are
/// for other plugins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<[u8; 6]>,
    pub pod_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub command: Command,
    /// `None` for GC, STATUS and VERSION.
    pub attachment: Option<Attachment>,
    pub args: Args,
}

/// Reads the environment through `var` (std::env::var in the binary, a map in tests).
pub fn read(var: &dyn Fn(&str) -> Option<String>) -> Result<Environment> {
    let get = |key: &str| var(key).filter(|v| !v.is_empty());
    let bad = |msg: String| CniError::new(code::INVALID_ENVIRONMENT, msg);
    let command = match get("CNI_COMMAND").as_deref() {
        Some("ADD") => Command::Add,
        Some("DEL") => Command::Del,
        Some("CHECK") => Command::Check,
        Some("GC") => Command::Gc,
        Some("STATUS") => Command::Status,
        Some("VERSION") => Command::Version,
        Some(other) => {
            return Err(bad(format!(
                "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"
            )))
        }
        None => return Err(bad("CNI_COMMAND is not set".to_string())),
    };
    let attachment = match command {
        Command::Add | Command::Check | Command::Del => {
            let container_id = get("CNI_CONTAINERID")
                .ok_or_else(|| bad("CNI_CONTAINERID is not set".to_string()))?;
            container_id_ok(&container_id).map_err(|r| bad(format!("CNI_CONTAINERID: {r}")))?;
            let ifname =
                get("CNI_IFNAME").ok_or_else(|| bad("CNI_IFNAME is not set".to_string()))?;
            validate::interface_name(&ifname).map_err(|r| bad(format!("CNI_IFNAME: {r}")))?;
            let netns = get("CNI_NETNS").map(PathBuf::from);
            if command != Command::Del {
                let netns = netns
                    .as_ref()
                    .ok_or_else(|| bad("CNI_NETNS is not set".to_string()))?;
                if !netns.is_absolute() || !netns.exists() {
                    return Err(bad(format!(
                        "CNI_NETNS {} is not a network namespace file",
                        netns.display()
                    )));
                }
            }
            let attachment = Attachment {
                container_id,
                ifname,
                netns,
            };
            validate::container_id(&attachment.record_id())
                .map_err(|r| bad(format!("CNI_CONTAINERID: {r}")))?;
            Some(attachment)
        }
        Command::Gc | Command::Status | Command::Version => None,
    };
    let args = match get("CNI_ARGS") {
        Some(text) => parse_args(&text).map_err(|r| bad(format!("CNI_ARGS: {r}")))?,
        None => Args::default(),
    };
    Ok(Environment {
        command,
        attachment,
        args,
    })
}

/// The specification's container id: an alphanumeric first, then alphanumerics, `_`, `.`
/// and `-`; and what the engine takes as a file name.
pub fn container_id_ok(id: &str) -> Result<(), String> {
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("{id:?} must start with a letter or digit"));
    }
    validate::container_id(id)
}

fn parse_args(text: &str) -> Result<Args, String> {
    let mut args = Args::default();
    for pair in text.split(';').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not KEY=VALUE"))?;
        match key {
            "IP" => {
                let ip = value
                    .parse()
                    .map_err(|_| format!("IP={value} is not an IPv4 address"))?;
                args.ip = Some(ip);
            }
            "MAC" => args.mac = Some(parse_mac(value)?),
            // Checked as a DNS name where it is used (`config::names`).
            "K8S_POD_NAME" if !value.is_empty() => args.pod_name = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(args)
}

/// Six hex pairs, unicast and not zero.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bad = || format!("MAC {text:?} is not six hex pairs such as 02:42:ac:11:00:02");
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(format!("MAC {text} must be a unicast, non-zero address"));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read_with(pairs: &[(&str, &str)]) -> Result<Environment> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(&|k| map.get(k).cloned())
    }

    #[test]
    fn add_needs_its_container_interface_and_namespace() {
        let env = read_with(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/proc/self/ns/net"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.98.0.9;MAC=02:00:00:00:00:09",
            ),
        ])
        .unwrap();
        let a = env.attachment.unwrap();
        assert_eq!(a.record_id(), "cni-c1-eth0");
        assert_eq!(env.args.ip, Some(Ipv4Addr::new(10, 98, 0, 9)));
        assert_eq!(env.args.mac, Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(env.args.pod_name.as_deref(), Some("x"));
        for (pairs, says) in [
            (&[("CNI_COMMAND", "ADD")][..], "CNI_CONTAINERID is not set"),
            (&[("CNI_COMMAND", "FROB")], "CNI_COMMAND \"FROB\""),
            (&[], "CNI_COMMAND is not set"),
            (
                &[
                    ("CNI_COMMAND", "ADD"),
                    ("CNI_CONTAINERID", "../x"),
                    ("CNI_IFNAME", "eth0"),
                ],
                "CNI_CONTAINERID",
            ),
            (
                &[
                    ("CNI_COMMAND", "ADD"),
                    ("CNI_CONTAINERID", "c1"),
                    ("CNI_IFNAME", "a/b"),
                ],
                "CNI_IFNAME",
            ),
            (
                &[
                    ("CNI_COMMAND", "ADD"),
                    ("CNI_CONTAINERID", "c1"),
                    ("CNI_IFNAME", "eth0"),
                    ("CNI_NETNS", "/run/netns/none-such"),
                ],
                "CNI_NETNS /run/netns/none-such",
            ),
        ] {
            let e = read_with(pairs).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENVIRONMENT);
            assert!(e.msg.contains(says), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn del_goes_on_without_a_namespace() {
        let env = read_with(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ""),
        ])
        .unwrap();
        assert_eq!(env.attachment.unwrap().netns, None);
        let env = read_with(&[("CNI_COMMAND", "VERSION")]).unwrap();
        assert_eq!((env.command, env.attachment), (Command::Version, None));
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:42:AC:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        for bad in [
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:42:ac:11:00",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:00:02:",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
