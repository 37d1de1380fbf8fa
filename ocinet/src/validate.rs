//! Names that end up in file paths and interface names come from users: check them before use.

/// Longest container id accepted (runc has no limit; podman uses 64 hex digits).
const MAX_ID_LEN: usize = 256;

/// Container ids become file names under the state root, so only runc's id alphabet is allowed
/// and nothing that could walk out of a directory.
pub fn container_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!(
            "container id must be 1 to {MAX_ID_LEN} characters, got {}",
            id.len()
        ));
    }
    if id == "." || id == ".." || id.starts_with('.') {
        return Err(format!("container id {id:?} may not start with '.'"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
    {
        return Err(format!(
            "container id {id:?} may only hold letters, digits, '_', '-', '.' and '+'"
        ));
    }
    Ok(())
}

/// Network names become directory names: a short, plain alphabet.
pub fn network_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "network name {name:?} must be 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        ))
    }
}

/// The longest DNS name (RFC 1035: 255 octets on the wire, 253 written).
const MAX_DNS_NAME: usize = 253;

/// A container's DNS name or alias (`io.ocinet.name`, `io.ocinet.aliases`): one or more labels
/// joined by '.', each 1 to 63 letters, digits, '-' or '_' (Docker's container names have '_'),
/// not starting or ending with '-'. Names become file names under the state root: nothing else.
pub fn dns_name(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    };
    if name.is_empty() || name.len() > MAX_DNS_NAME || !name.split('.').all(label_ok) {
        return Err(format!(
            "{name:?} is not a DNS name: labels of 1 to 63 letters, digits, '-' or '_' joined by '.', not starting or ending with '-', at most {MAX_DNS_NAME} characters"
        ));
    }
    // A name that parses as an address would shadow it.
    if name.parse::<std::net::IpAddr>().is_ok()
        || name.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return Err(format!("{name:?} is not a DNS name: it is all digits"));
    }
    Ok(())
}

/// Linux interface names: at most 15 bytes, no '/', ':' or white space.
pub fn interface_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "interface name {name:?} must be 1 to 15 letters, digits, '_', '-' or '.'"
        ))
    }
}

/// An etcd client URL: `http://HOST:PORT` or `https://HOST:PORT`, the host an address or a DNS
/// name, nothing after the port.
pub(crate) fn etcd_endpoint(url: &str) -> Result<(), String> {
    let bad = || {
        format!("etcd endpoint {url:?} must be http://HOST:PORT or https://HOST:PORT, such as http://192.0.2.1:2379")
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
            addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (addr, after.strip_prefix(':').ok_or_else(bad)?)
        }
        None => rest.rsplit_once(':').ok_or_else(bad)?,
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn etcd_endpoints() {
        for good in [
            "http://192.0.2.1:2379",
            "https://etcd-1.example:2379",
            "http://[fd00::1]:2379",
        ] {
            assert!(etcd_endpoint(good).is_ok(), "{good}");
        }
        for bad in [
            "192.0.2.1:2379",
            "http://192.0.2.1",
            "http://:2379",
            "http://a:0",
            "http://a:2379/x",
            "ftp://a:1",
            "http://a b:1",
        ] {
            assert!(etcd_endpoint(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn container_ids() {
        for good in ["c1", "abc-DEF_1.2", &"a".repeat(64)] {
            assert!(container_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../1",
            "/proc/1/ns/net",
            "a/b",
            "a b",
            "..x",
            &"a".repeat(257),
        ] {
            assert!(container_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_names() {
        assert!(network_name("ocinet").is_ok());
        assert!(network_name("net-1.a").is_ok());
        for bad in ["", "-x", "../x", "a/b", ".hidden", &"n".repeat(65)] {
            assert!(network_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        assert!(interface_name("ocinet0").is_ok());
        for bad in ["", "sixteen-chars-xx", "a/b", "a:b", "a b", ".."] {
            assert!(interface_name(bad).is_err(), "{bad}");
        }
    }
}
