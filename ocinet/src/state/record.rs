//! The per-container record: everything setup created, written before it is created, so that
//! teardown can undo it from the record alone (no pid, no netns needed).

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::host::naming;
use crate::host::process;
use crate::host::store::{self, StateRoot};
use crate::kernel::firewall::DnatElement;
use crate::network::DriverKind;
use crate::ports::publish::{self, PublishedPort};

/// Lock files per state root; two ids on one stripe only wait for each other briefly.
const LOCK_STRIPES: u64 = 64;
/// The record format this release writes. Version 1 (no `version` field, one `bridge`
/// attachment) is still read, so containers started before an upgrade tear down completely.
pub(crate) const RECORD_VERSION: u32 = 2;

/// The front end that made a record: each runtime collects only its own (CNI's GC, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrontEnd {
    OciHook,
    /// `ocinet-cni`: its records are `cni-<CNI_CONTAINERID>-<CNI_IFNAME>`, one per interface.
    Cni,
    /// `ocinet-docker`: its records are `docker-<endpoint id>`, one per Docker endpoint, live
    /// while the plugin's endpoint file (their `netns_path`) exists.
    Docker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RecordFile")]
pub struct Record {
    pub version: u32,
    pub id: String,
    pub boot_id: String,
    pub front_end: FrontEnd,
    /// The network mode, as written in the annotation (`none`, `bridge:ocinet`, ...).
    pub mode: String,
    pub pid: Option<i32>,
    /// With `pid`, identifies the process for good (pids are reused).
    pub pid_start: Option<u64>,
    /// The namespace's path, for front ends that name it by path rather than by a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_path: Option<PathBuf>,
    /// The `ip netns` name bound to the container's namespace while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_name: Option<String>,
    /// What the drivers made, in order (`eth0` first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceRecord>,
}

impl Record {
    /// True when the record's container is gone: another boot, or its process is gone (the pid
    /// now belongs to another process: start time differs), or, for a record of a namespace
    /// path without a process, that path is gone.
    pub fn is_stale(&self, boot_id: &str) -> bool {
        if self.boot_id != boot_id {
            return true;
        }
        match (self.pid, self.pid_start, &self.netns_path) {
            (Some(pid), Some(start), _) => !process::is_same_process(pid, start),
            (None, _, Some(path)) => !Path::new(path).exists(),
            _ => true,
        }
    }

    /// The first address of the first interface (what `ls` shows).
    pub fn primary_address(&self) -> Option<&AddressRecord> {
        self.interfaces.first()?.addresses.first()
    }
}

/// One interface a driver made for the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceRecord {
    pub driver: DriverKind,
    pub network: String,
    pub bridge: String,
    pub host_veth: String,
    /// The interface's name inside the container.
    pub name: String,
    pub addresses: Vec<AddressRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Published ports, with the host ports that were picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
    /// The subnets masqueraded for a network given inline (CNI): no file names them, and a
    /// firewall reload must put them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masquerade: Vec<IpNet>,
    /// The forward chain's flags of a network given inline (CNI), for the same reason, and of
    /// a routed network (its device group: a reload finds it even when the file is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterRecord>,
    /// The DNS names (lower case) the container holds on this network (`names.rs`), released
    /// at teardown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Whether the DNAT elements may be in the maps, so teardown must remove them. Only a setup
    /// in progress knows they are not (the one batch that adds them has not run, or failed
    /// whole): then undoing it must not delete an element of the same key that is not ocinet's.
    /// Not stored: a record read from disk may have them.
    #[serde(skip, default = "maybe_published")]
    pub published: bool,
}

/// A network's place in ocinet's forward chain (see `firewall::NetworkFilter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRecord {
    pub isolate: bool,
    pub internal: bool,
    /// Absent in records of an earlier release: Docker's default, containers reach each other.
    #[serde(default = "icc_default")]
    pub icc: bool,
    /// A routed network's device group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    /// An overlay's VNI: its VXLAN device stands beside the bridge in the forward chain, and
    /// `reload` must know it when the network's file is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
}

/// A leased address on an interface, with its prefix and the gateway of its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRecord {
    pub address: IpAddr,
    pub prefix_len: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl std::fmt::Display for AddressRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl InterfaceRecord {
    /// The DNAT elements that publish the interface's ports to its addresses (one of each
    /// family).
    pub(crate) fn dnat_elements(&self) -> Vec<DnatElement> {
        let addresses: Vec<IpAddr> = self.addresses.iter().map(|a| a.address).collect();
        publish::dnat_elements(&self.ports, &addresses)
    }
}

fn maybe_published() -> bool {
    true
}

fn icc_default() -> bool {
    true
}

/// A record as stored, of any version this release reads.
#[derive(Deserialize)]
struct RecordFile {
    #[serde(default = "first_version")]
    version: u32,
    id: String,
    boot_id: String,
    #[serde(default = "hook_front_end")]
    front_end: FrontEnd,
    mode: String,
    pid: Option<i32>,
    pid_start: Option<u64>,
    #[serde(default)]
    netns_path: Option<PathBuf>,
    #[serde(default)]
    netns_name: Option<String>,
    #[serde(default)]
    interfaces: Vec<InterfaceRecord>,
    /// Version 1's one attachment.
    #[serde(default)]
    bridge: Option<BridgeV1>,
}

fn first_version() -> u32 {
    1
}

fn hook_front_end() -> FrontEnd {
    FrontEnd::OciHook
}

/// What a version 1 record held for a bridge container.
#[derive(Deserialize)]
struct BridgeV1 {
    network: String,
    bridge: String,
    host_veth: String,
    container_interface: String,
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    ports: Vec<PublishedPort>,
}

impl TryFrom<RecordFile> for Record {
    type Error = String;

    fn try_from(file: RecordFile) -> std::result::Result<Record, String> {
        if file.version > RECORD_VERSION {
            return Err(format!(
                "record version {} is newer than this ocinet reads ({RECORD_VERSION}): run the release that wrote it",
                file.version
            ));
        }
        let mut interfaces = file.interfaces;
        if let Some(b) = file.bridge {
            interfaces.insert(
                0,
                InterfaceRecord {
                    driver: DriverKind::Bridge,
                    network: b.network,
                    bridge: b.bridge,
                    host_veth: b.host_veth,
                    name: b.container_interface,
                    addresses: vec![AddressRecord {
                        address: IpAddr::V4(b.address),
                        prefix_len: b.prefix_len,
                        gateway: Some(IpAddr::V4(b.gateway)),
                    }],
                    mac: b.mac,
                    ports: b.ports,
                    masquerade: Vec::new(),
                    filter: None,
                    names: Vec::new(),
                    published: true,
                },
            );
        }
        Ok(Record {
            version: RECORD_VERSION,
            id: file.id,
            boot_id: file.boot_id,
            front_end: file.front_end,
            mode: file.mode,
            pid: file.pid,
            pid_start: file.pid_start,
            netns_path: file.netns_path,
            netns_name: file.netns_name,
            interfaces,
        })
    }
}

/// The records directory, `<root>/containers/<id>.json`.
#[derive(Debug, Clone)]
pub struct RecordStore {
    dir: PathBuf,
}

impl RecordStore {
    pub fn open(root: &StateRoot) -> Result<RecordStore> {
        Ok(RecordStore {
            dir: root.subdir(&["containers"])?,
        })
    }

    /// Ids are validated before they get here (see `validate::container_id`).
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn load(&self, id: &str) -> Result<Option<Record>> {
        store::read_json(&self.path(id))
    }

    pub(crate) fn save(&self, record: &Record) -> Result<()> {
        store::write_json(&self.path(&record.id), record)
    }

    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        store::remove_file(&self.path(id))
    }

    /// The record of `id`, or of the one container whose id starts with it (Docker's short
    /// ids: `container:65630ff1d290`). Several matches are an error naming them.
    pub(crate) fn find(&self, id: &str) -> Result<Option<Record>> {
        if let Some(record) = self.load(id)? {
            return Ok(Some(record));
        }
        let matches: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|other| other.starts_with(id))
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [one] => self.load(one),
            many => Err(Error::Namespace(format!(
                "container id {id} is ambiguous: it starts {}; give more of it",
                many.join(", ")
            ))),
        }
    }

    /// The record of a live container `id` (or unique prefix of one): the one a
    /// `container:<id>` joins. Gone, stale or unknown: not running.
    pub fn find_running(&self, id: &str, boot_id: &str) -> Result<Record> {
        match self.find(id)? {
            Some(record) if !record.is_stale(boot_id) => Ok(record),
            _ => Err(Error::NotRunning(id.to_string())),
        }
    }

    /// Serializes setup, teardown and garbage collection of one id (held until dropped). Locks
    /// are striped over a fixed set of files, so none is left behind per container.
    pub fn lock(&self, id: &str) -> Result<File> {
        store::lock(&self.lock_path(id))
    }

    /// As [`RecordStore::lock`], but `None` at once if another process holds it.
    pub(crate) fn try_lock(&self, id: &str) -> Result<Option<File>> {
        store::try_lock(&self.lock_path(id))
    }

    /// As [`RecordStore::lock`], waiting at most `wait`; `None` if it is still held then.
    pub(crate) fn lock_within(&self, id: &str, wait: std::time::Duration) -> Result<Option<File>> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(held) = self.try_lock(id)? {
                return Ok(Some(held));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!(
            ".lock-{:02x}",
            naming::stable_hash(id.as_bytes()) % LOCK_STRIPES
        ))
    }

    /// Every readable record, in id order, and one line for each that could not be read (a
    /// corrupt file must not hide the other containers). Records removed between the listing
    /// and the reading are no longer there.
    pub fn all(&self) -> Result<(Vec<Record>, Vec<String>)> {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for id in self.ids()? {
            match self.load(&id) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(e) => problems.push(e.to_string()),
            }
        }
        Ok((records, problems))
    }

    /// How many records there are (live or not): one directory listing, no file read.
    pub(crate) fn count(&self) -> Result<usize> {
        let entries =
            fs::read_dir(&self.dir).context(|| format!("cannot list {}", self.dir.display()))?;
        Ok(entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.as_encoded_bytes();
                name.ends_with(b".json") && !name.starts_with(b".")
            })
            .count())
    }

    /// The ids of every record (for listing and garbage collection).
    pub(crate) fn ids(&self) -> Result<Vec<String>> {
        let entries =
            fs::read_dir(&self.dir).context(|| format!("cannot list {}", self.dir.display()))?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .filter(|n| !n.starts_with('.'))
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> Record {
        Record {
            version: RECORD_VERSION,
            id: id.into(),
            boot_id: "b".into(),
            front_end: FrontEnd::OciHook,
            mode: "bridge:ocinet".into(),
            pid: Some(7),
            pid_start: Some(9),
            netns_path: None,
            netns_name: None,
            interfaces: vec![InterfaceRecord {
                driver: DriverKind::Bridge,
                network: "ocinet".into(),
                bridge: "ocinet0".into(),
                host_veth: "ocv0123456789ab".into(),
                name: "eth0".into(),
                addresses: vec![AddressRecord {
                    address: IpAddr::from([10, 0, 0, 2]),
                    prefix_len: 24,
                    gateway: Some(IpAddr::from([10, 0, 0, 1])),
                }],
                mac: None,
                ports: Vec::new(),
                masquerade: Vec::new(),
                filter: None,
                names: Vec::new(),
                published: true,
            }],
        }
    }

    #[test]
    fn save_load_remove() {
        let dir = std::env::temp_dir().join(format!("ocinet-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let records = RecordStore::open(&StateRoot::open(&dir).unwrap()).unwrap();
        let record = sample("c1");
        records.save(&record).unwrap();
        assert_eq!(records.load("c1").unwrap(), Some(record.clone()));
        assert_eq!(records.ids().unwrap(), vec!["c1".to_string()]);
        assert_eq!(records.find("c").unwrap().unwrap().id, "c1");
        records.save(&sample("c2")).unwrap();
        assert!(records
            .find("c")
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
        assert_eq!(records.find("c2").unwrap().unwrap().id, "c2");
        assert_eq!(records.find("x").unwrap(), None);
        records.remove("c2").unwrap();
        records.remove("c1").unwrap();
        records.remove("c1").unwrap();
        assert_eq!(records.load("c1").unwrap(), None);
        fs::write(dir.join("containers/bad.json"), "{").unwrap();
        assert!(records
            .load("bad")
            .unwrap_err()
            .to_string()
            .contains("corrupt"));
        records.save(&sample("ok")).unwrap();
        let (all, problems) = records.all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(problems.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_of_the_previous_release_reads_as_version_2() {
        let v1 = include_str!("../../tests/fixtures/record-v1.json");
        let record: Record = serde_json::from_str(v1).unwrap();
        assert_eq!(record.version, RECORD_VERSION);
        assert_eq!(record.front_end, FrontEnd::OciHook);
        let [eth0] = record.interfaces.as_slice() else {
            panic!("one interface: {record:?}");
        };
        assert_eq!(eth0.host_veth, "ocv5f2a1c9e0d7b");
        assert_eq!(eth0.name, "eth0");
        assert_eq!(eth0.addresses[0].to_string(), "172.17.0.5/16");
        assert_eq!(
            eth0.addresses[0].gateway,
            Some(IpAddr::from([172, 17, 0, 1]))
        );
        assert_eq!(eth0.ports.len(), 1);
        assert!(eth0.published);
        // Written back, it is a version 2 record.
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            text.contains("\"version\":2") && !text.contains("\"bridge\":{"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
    }

    #[test]
    fn a_record_of_a_newer_release_is_refused() {
        let text = serde_json::to_string(&sample("n"))
            .unwrap()
            .replace("\"version\":2", "\"version\":3");
        let err = serde_json::from_str::<Record>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
