//! `ocinet-docker [--socket PATH] [--root DIR] [--config-dir DIR] [--docker-host URL]
//! [--exit-idle SECONDS]`: serves Docker's network plugin API on a unix socket until SIGTERM or
//! SIGINT. dockerd finds the plugin by the socket's name in /run/docker/plugins (`ocinet.sock`:
//! `docker network create -d ocinet`). Socket-activated (`ocinet-docker.socket`), it serves the
//! socket systemd passes and may exit when idle. dockerd's own API (`--docker-host`) is asked
//! which endpoints it still has.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use ocinet_docker::plugin::Plugin;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

const DEFAULT_SOCKET: &str = "/run/docker/plugins/ocinet.sock";

/// Docker Engine network plugin on ocinet's engine.
#[derive(Parser)]
#[command(name = "ocinet-docker", version)]
struct Args {
    /// The unix socket dockerd calls (its name is the driver's: -d ocinet).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// ocinet's state root (records, leases, claims; the plugin's endpoints) [env: OCINET_ROOT].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Where the networks' files are (Docker's networks are written there) [env: OCINET_CONFIG_DIR].
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// dockerd's own API, asked which endpoints it still has [env: DOCKER_HOST]
    /// [default: unix:///var/run/docker.sock].
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
    /// Exit after this many seconds without a call; only when systemd passed the socket
    /// (ocinet-docker.socket), which then starts the plugin again at the next call.
    #[arg(long, value_name = "SECONDS")]
    exit_idle: Option<u64>,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            ocinet::stderr_line!(
                "ocinet-docker: {}",
                text.lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ocinet::stderr_line!("ocinet-docker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let activated = ocinet_docker::activation::listener()?;
    let idle = match (args.exit_idle, &activated) {
        (None, _) => None,
        (Some(0), _) => return Err("--exit-idle must be at least 1 second".to_string()),
        (Some(secs), Some(_)) => Some(Duration::from_secs(secs)),
        (Some(_), None) => {
            return Err(
                "--exit-idle needs the socket from systemd (ocinet-docker.socket): without it, dockerd would find no plugin once it exits".to_string(),
            )
        }
    };
    let dockerd = ocinet_docker::docker_host::dockerd(args.docker_host.as_deref())?;
    let options = ocinet::context::options_from(args.root, args.config_dir);
    let plugin = Plugin::open(&options, &dockerd).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let (listener, own_socket) = match activated {
            Some(passed) => (
                UnixListener::from_std(passed).map_err(|e| e.to_string())?,
                false,
            ),
            None => (bind(&args.socket)?, true),
        };
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let plugin = Arc::new(Mutex::new(plugin));
        let served = tokio::select! {
            r = ocinet_docker::server::serve(listener, plugin, idle) => r.map_err(|e| format!("cannot accept on {}: {e}", args.socket.display())),
            _ = term.recv() => Ok(()),
            _ = int.recv() => Ok(()),
        };
        // dockerd sees no plugin rather than a dead socket; the state stays for the next start.
        // A socket systemd holds stays: it starts the plugin again.
        if own_socket {
            let _ = std::fs::remove_file(&args.socket);
        }
        served
    })
}

/// Listens on `socket`, replacing a stale socket file a killed plugin left (a live plugin on
/// it is an error: two would serve one state root).
fn bind(socket: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(format!(
            "{} is served by another process: stop it first",
            socket.display()
        ));
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove the stale {}: {e}", socket.display())),
    }
    UnixListener::bind(socket).map_err(|e| format!("cannot listen on {}: {e}", socket.display()))
}
