//! The per-container record: everything setup created, written before it is created, so that
//! teardown can undo it from the record alone (no pid, no netns needed).

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::naming;
use crate::process;
use crate::publish::PublishedPort;
use crate::store::{self, StateRoot};

/// Lock files per state root; two ids on one stripe only wait for each other briefly.
const LOCK_STRIPES: u64 = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub boot_id: String,
    /// The network mode, as written in the annotation (`none`, `bridge:ocinet`, ...).
    pub mode: String,
    pub pid: Option<i32>,
    /// With `pid`, identifies the process for good (pids are reused).
    pub pid_start: Option<u64>,
    /// The `ip netns` name bound to the container's namespace while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeAttachment>,
}

impl Record {
    /// True when the record's process is gone: another boot, no pid, or the pid now belongs to
    /// another process (start time differs).
    pub fn is_stale(&self, boot_id: &str) -> bool {
        if self.boot_id != boot_id {
            return true;
        }
        match (self.pid, self.pid_start) {
            (Some(pid), Some(start)) => !process::is_same_process(pid, start),
            _ => true,
        }
    }
}

/// What a bridge container holds: a lease and a veth on the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeAttachment {
    pub network: String,
    pub bridge: String,
    pub host_veth: String,
    pub container_interface: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Published ports, with the host ports that were picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
    /// Whether the DNAT elements may be in the maps, so teardown must remove them. Only a setup
    /// in progress knows they are not (the one batch that adds them has not run, or failed
    /// whole): then undoing it must not delete an element of the same key that is not ocinet's.
    /// Not stored: a record read from disk may have them.
    #[serde(skip, default = "maybe_published")]
    pub published: bool,
}

fn maybe_published() -> bool {
    true
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

    pub fn save(&self, record: &Record) -> Result<()> {
        store::write_json(&self.path(&record.id), record)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        store::remove_file(&self.path(id))
    }

    /// The record of `id`, or of the one container whose id starts with it (Docker's short
    /// ids: `container:65630ff1d290`). Several matches are an error naming them.
    pub fn find(&self, id: &str) -> Result<Option<Record>> {
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

    /// Serializes setup, teardown and garbage collection of one id (held until dropped). Locks
    /// are striped over a fixed set of files, so none is left behind per container.
    pub fn lock(&self, id: &str) -> Result<File> {
        store::lock(&self.lock_path(id))
    }

    /// As [`RecordStore::lock`], but `None` at once if another process holds it.
    pub fn try_lock(&self, id: &str) -> Result<Option<File>> {
        store::try_lock(&self.lock_path(id))
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!(
            ".lock-{:02x}",
            naming::stable_hash(id.as_bytes()) % LOCK_STRIPES
        ))
    }

    /// The ids of every record (for listing and garbage collection).
    pub fn ids(&self) -> Result<Vec<String>> {
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

    #[test]
    fn save_load_remove() {
        let dir = std::env::temp_dir().join(format!("ocinet-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let records = RecordStore::open(&StateRoot::open(&dir).unwrap()).unwrap();
        let record = Record {
            id: "c1".into(),
            boot_id: "b".into(),
            mode: "bridge:ocinet".into(),
            pid: Some(7),
            pid_start: Some(9),
            netns_name: None,
            bridge: Some(BridgeAttachment {
                network: "ocinet".into(),
                bridge: "ocinet0".into(),
                host_veth: "ocv0123456789ab".into(),
                container_interface: "eth0".into(),
                address: Ipv4Addr::new(10, 0, 0, 2),
                prefix_len: 24,
                gateway: Ipv4Addr::new(10, 0, 0, 1),
                mac: None,
                ports: Vec::new(),
                published: true,
            }),
        };
        records.save(&record).unwrap();
        assert_eq!(records.load("c1").unwrap(), Some(record.clone()));
        assert_eq!(records.ids().unwrap(), vec!["c1".to_string()]);
        assert_eq!(records.find("c").unwrap().unwrap().id, "c1");
        let mut other = record.clone();
        other.id = "c2".into();
        records.save(&other).unwrap();
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
        fs::remove_dir_all(&dir).unwrap();
    }
}
