//! Setup and teardown: from the runtime's state to wired (or unwired) containers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fault;
use crate::mode;
use crate::netns::Netns;
use crate::netns_name;
use crate::network::NetworkDirectory;
use crate::oci::{BundleConfig, Stage, State};
use crate::process;
use crate::record::{Record, RecordStore};
use crate::request::{NetworkMode, NetworkRequest};
use crate::store::StateRoot;

/// Everything in the state root is boot-scoped (records, leases and claims carry the boot id and
/// are stale after a reboot), so it lives where boot-scoped state belongs: /run, a tmpfs on
/// Debian and most distributions. On disk, each container start would cost file creations
/// (and SSD writes) for nothing.
pub const DEFAULT_ROOT: &str = "/run/ocinet";
pub const DEFAULT_CONFIG_DIR: &str = "/etc/ocinet";

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
    pub boot_id: String,
}

impl Context {
    pub fn open(options: &Options) -> Result<Context> {
        let root = StateRoot::open(&options.root)?;
        Ok(Context {
            records: RecordStore::open(&root)?,
            networks: NetworkDirectory::new(&options.config_dir),
            boot_id: process::boot_id()?,
            root,
        })
    }
}

/// Runs one hook stage for the container described by `state`.
pub fn run_stage(options: &Options, stage: Stage, state: &State) -> Result<()> {
    match stage {
        Stage::Ignored => Ok(()),
        Stage::Setup => setup(&Context::open(options)?, state),
        Stage::Teardown => teardown(&Context::open(options)?, &state.id),
    }
}

/// Wires the container. On failure, undoes whatever it did and returns the cause.
pub fn setup(ctx: &Context, state: &State) -> Result<()> {
    let _serialized = ctx.records.lock(&state.id)?;
    let pid = state.live_pid().ok_or_else(|| {
        Error::State(
            "setup needs the container's pid; run the hook at createRuntime or prestart"
                .to_string(),
        )
    })?;
    let config = BundleConfig::load(&state.bundle)?;
    let request = NetworkRequest::from_annotations(&merged_annotations(&config, state))?;
    let preferred = take_over_previous(ctx, &state.id, pid)?;

    let mut record = Record {
        id: state.id.clone(),
        boot_id: ctx.boot_id.clone(),
        mode: request.mode.to_string(),
        pid: Some(pid),
        pid_start: process::start_time(pid),
        // Only containers with a namespace of their own get a name for `ip netns`.
        netns_name: matches!(request.mode, NetworkMode::None | NetworkMode::Bridge { .. })
            .then(|| netns_name::name_for(&state.id)),
        bridge: None,
    };
    let result = match &request.mode {
        NetworkMode::None => mode::none::setup(ctx, &mut record),
        NetworkMode::Bridge { network } => {
            mode::bridge::setup(ctx, &mut record, network, &request, preferred)
        }
        NetworkMode::Host => mode::host::setup(ctx, &mut record),
        NetworkMode::Container { id } => mode::container::setup(ctx, &mut record, id),
    }
    .and_then(|()| match &record.netns_name {
        Some(name) => netns_name::bind(pid, name),
        None => Ok(()),
    })
    .inspect(|()| fault::point("setup:netns-name"));
    if let Err(e) = result {
        // Whatever part of it was made, the record lists it: undo it all. The setup error is
        // what the user needs to see; a teardown error here would only hide it.
        let _ = teardown_record(ctx, &record);
        return Err(e);
    }
    Ok(())
}

/// The config's annotations, completed by the state's (the spec says they are the same; a
/// runtime that adds its own only adds).
fn merged_annotations(config: &BundleConfig, state: &State) -> HashMap<String, String> {
    let mut all = state.annotations.clone();
    all.extend(config.annotations.clone());
    all
}

/// An existing record for this id: a live process of another container with the same id is an
/// error; anything else is stale and torn down, keeping its address as the preferred one.
fn take_over_previous(ctx: &Context, id: &str, pid: i32) -> Result<Option<std::net::Ipv4Addr>> {
    let previous = match ctx.records.load(id) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        // A corrupt record is overwritten: it lists nothing that can be trusted.
        Err(Error::Corrupt { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if previous.pid != Some(pid) && !previous.is_stale(&ctx.boot_id) {
        return Err(Error::Duplicate {
            id: id.to_string(),
            pid: previous.pid.unwrap_or_default(),
            root: ctx.root.path().to_path_buf(),
        });
    }
    teardown_record(ctx, &previous)?;
    Ok(previous.bridge.map(|b| b.address))
}

/// Undoes everything the container's record lists. No record: nothing to do.
pub fn teardown(ctx: &Context, id: &str) -> Result<()> {
    let _serialized = ctx.records.lock(id)?;
    match ctx.records.load(id)? {
        Some(record) => teardown_record(ctx, &record),
        None => Ok(()),
    }
}

/// Idempotent: every step accepts that its resource is already gone.
/// The caller holds the id's lock.
pub fn teardown_record(ctx: &Context, record: &Record) -> Result<()> {
    if let Some(name) = &record.netns_name {
        netns_name::unbind(name)?;
    }
    fault::point("teardown:netns-name");
    if let Some(attachment) = &record.bridge {
        mode::bridge::teardown(ctx, &record.id, attachment)?;
    }
    ctx.records.remove(&record.id)
}

/// The container's network namespace, checked to be its own (not the host's).
pub fn private_netns(pid: i32, mode: &str) -> Result<Netns> {
    let ns = Netns::of_pid(pid)?;
    if ns.id()? == Netns::current()?.id()? {
        return Err(Error::Namespace(format!(
            "network mode {mode} needs the container's own network namespace: add {{\"type\": \"network\"}} to linux.namespaces in config.json"
        )));
    }
    Ok(ns)
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
