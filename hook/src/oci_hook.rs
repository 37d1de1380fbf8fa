//! The OCI hook's front end: from the runtime's state and the bundle's annotations to the
//! engine's target and request.

use std::collections::HashMap;

use ocinet::context::{Context, Options};
use ocinet::dns::resolv_conf;
use ocinet::engine::{self, Target};
use ocinet::error::{Error, Result};
use ocinet::host::mount_ns;
use ocinet::host::netns::NetnsRef;
use ocinet::oci::{BundleConfig, Stage, State};
use ocinet::request::NetworkRequest;
use ocinet::state::record::FrontEnd;

/// Runs one hook stage for the container described by `state`.
pub fn run_stage(options: &Options, stage: Stage, state: &State) -> Result<()> {
    match stage {
        Stage::Ignored => Ok(()),
        Stage::Setup => setup(&Context::open(options)?, state),
        // The runtime waits for poststop at every stop: the slow part finishes after it.
        Stage::Teardown => engine::detach_deferred(&Context::open(options)?, &state.id),
    }
}

fn setup(ctx: &Context, state: &State) -> Result<()> {
    let pid = state.live_pid().ok_or_else(|| {
        Error::State(
            "setup needs the container's pid; run the hook at createRuntime or prestart"
                .to_string(),
        )
    })?;
    let config = BundleConfig::load(&state.bundle)?;
    let request = NetworkRequest::from_annotations(&merged_annotations(&config, state))?;
    let target = Target {
        id: state.id.clone(),
        netns: NetnsRef::Pid(pid),
        pid: Some(pid),
    };
    let made = engine::attach(ctx, FrontEnd::OciHook, &target, &request)?;
    // On a DNS network: its resolver as the container's nameserver (the first such network's).
    let nameserver = made
        .interfaces
        .iter()
        .filter(|i| !i.names.is_empty())
        .find_map(|i| i.addresses.first().and_then(|a| a.gateway));
    if let (Some(nameserver), Some(rootfs)) = (nameserver, &config.rootfs) {
        let given = resolv_conf::write(ctx, &state.id, nameserver).and_then(|file| {
            mount_ns::bind_over_etc_file(pid, rootfs, "resolv.conf", &file).map(|_| ())
        });
        if let Err(e) = given {
            // Not half made: the runtime may run no poststop after a failed setup.
            let _ = engine::detach(ctx, &state.id);
            return Err(e);
        }
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
