//! Where ocinet keeps its state and finds its configuration, and the handles every front end,
//! the engine and the drivers share.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::host::process;
use crate::host::store::StateRoot;
use crate::network::NetworkDirectory;
use crate::state::record::RecordStore;

/// Everything in the state root is boot-scoped (records, leases and claims carry the boot id and
/// are stale after a reboot), so it lives where boot-scoped state belongs: /run, a tmpfs on
/// Debian and most distributions. On disk, each container start would cost file creations
/// (and SSD writes) for nothing.
pub(crate) const DEFAULT_ROOT: &str = "/run/ocinet";
pub(crate) const DEFAULT_CONFIG_DIR: &str = "/etc/ocinet";

/// Where ocinet keeps its state and finds its configuration.
#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    pub config_dir: PathBuf,
}

/// Everything a setup or teardown reads and writes on disk.
pub struct Context {
    pub root: StateRoot,
    pub records: RecordStore,
    pub networks: NetworkDirectory,
    /// Where the networks' files are (helpers started on demand get it).
    pub config_dir: PathBuf,
    pub boot_id: String,
    /// Where setups and teardowns announce names: the resolver process (the unit tests
    /// record the announcements instead).
    pub(crate) resolver: ResolverLink,
}

/// Where names are announced (`dns/resolver.rs`).
#[derive(Debug, Default)]
pub(crate) enum ResolverLink {
    /// `ocinet-resolver`, started on demand.
    #[default]
    Process,
    /// Recorded, not sent (the engine's unit tests): `add ID`, `del ID`.
    #[cfg_attr(not(test), allow(dead_code))]
    Recorded(std::cell::RefCell<Vec<String>>),
}

impl Context {
    pub fn open(options: &Options) -> Result<Context> {
        let root = StateRoot::open(&options.root)?;
        Ok(Context {
            records: RecordStore::open(&root)?,
            networks: NetworkDirectory::new(&options.config_dir),
            config_dir: options.config_dir.clone(),
            boot_id: process::boot_id()?,
            resolver: Default::default(),
            root,
        })
    }
}

/// Options from flags (first), the environment, then the defaults.
pub fn options_from(root: Option<PathBuf>, config_dir: Option<PathBuf>) -> Options {
    let env = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    Options {
        root: root
            .or_else(|| env("OCINET_ROOT"))
            .unwrap_or_else(|| Path::new(DEFAULT_ROOT).to_path_buf()),
        config_dir: config_dir
            .or_else(|| env("OCINET_CONFIG_DIR"))
            .unwrap_or_else(|| Path::new(DEFAULT_CONFIG_DIR).to_path_buf()),
    }
}
