//! Where dockerd's own API listens, as Docker's tools take it (`--docker-host`, else
//! `DOCKER_HOST`, else Docker's default socket): the plugin asks dockerd there which endpoints
//! it still has, since dockerd may drop some without telling it.

use std::path::PathBuf;

use ocinet::state::dockerd::Dockerd;

/// Docker's default (`/run/docker.sock` on current systems, through the `/var/run` link).
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// The dockerd of `flag`, or of `DOCKER_HOST`, or Docker's default; an error is one line.
pub fn dockerd(flag: Option<&str>) -> Result<Dockerd, String> {
    let from_env = std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty());
    let host = flag
        .map(str::to_string)
        .or(from_env)
        .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
    parse(&host)
}

/// `unix:///path/to/docker.sock`: the plugin runs beside dockerd, on its unix socket.
fn parse(host: &str) -> Result<Dockerd, String> {
    match host.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') && !path.contains('\0') => Ok(Dockerd {
            socket: PathBuf::from(path),
        }),
        _ => Err(format!(
            "docker host {host:?} is not a unix socket: give dockerd's own as unix:///absolute/path (--docker-host or DOCKER_HOST)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unix_socket_by_absolute_path_is_taken() {
        assert_eq!(
            parse("unix:///run/user/1000/docker.sock").unwrap().socket,
            PathBuf::from("/run/user/1000/docker.sock")
        );
        for wrong in [
            "tcp://127.0.0.1:2375",
            "unix://docker.sock",
            "/run/docker.sock",
        ] {
            let e = parse(wrong).unwrap_err();
            assert!(e.contains("is not a unix socket"), "{e}");
        }
        assert_eq!(
            dockerd(Some("unix:///x.sock")).unwrap().socket,
            PathBuf::from("/x.sock")
        );
    }
}
