//! Which endpoints dockerd still has, asked on its own API. dockerd drops endpoints without
//! calling the plugin's DeleteEndpoint when it removes a killed predecessor's sandboxes (a
//! forced delete does not load a remote driver), so the plugin's endpoint file alone cannot
//! say that Docker holds an endpoint. The plugin writes where dockerd listens in
//! `<root>/docker/dockerd.json`; `engine::gc` (for `ocinet-shim gc` and the plugin) asks it.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::Result;
use crate::host::{store, unix_http};

/// dockerd answers a network's inspection in about a millisecond, even while it waits for one
/// of the plugin's answers (measured with 20.10); one that takes longer is stuck, and what
/// it would have said is not guessed.
const ANSWER_LIMIT: Duration = Duration::from_secs(2);
/// An inspection lists each endpoint in about 200 bytes: room for tens of thousands.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Where dockerd's API listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dockerd {
    pub socket: PathBuf,
}

/// What dockerd said of one network.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    /// The ids of the endpoints it has on the network.
    Endpoints(HashSet<String>),
    /// It has no such network: removed (then DeleteNetwork took its endpoints), or this is
    /// not the dockerd that made it. Nothing can be concluded.
    UnknownNetwork,
    /// Nobody listens on the socket: nothing can be concluded either.
    NotRunning,
}

impl Dockerd {
    fn note(root: &Path) -> PathBuf {
        root.join("docker").join("dockerd.json")
    }

    /// Remembers where this dockerd listens, for gc (the plugin, at its start).
    pub fn remember(&self, ctx: &Context) -> Result<()> {
        ctx.root.subdir(&["docker"])?;
        store::write_json(&Dockerd::note(ctx.root.path()), self)
    }

    /// The dockerd the plugin serves, if a plugin said so.
    pub(crate) fn remembered(ctx: &Context) -> Result<Option<Dockerd>> {
        store::read_json(&Dockerd::note(ctx.root.path()))
    }

    /// The endpoints dockerd has on its network `network_id` (Docker's full id); an error is
    /// one line saying why dockerd's word could not be had.
    pub(crate) fn endpoints(&self, network_id: &str) -> Result<Listing, String> {
        if network_id.len() != 64 || !network_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{network_id:?} is not a Docker network id"));
        }
        let path = format!("/networks/{network_id}");
        let answer = match unix_http::get(&self.socket, &path, ANSWER_LIMIT, MAX_ANSWER_BYTES) {
            Ok(answer) => answer,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Ok(Listing::NotRunning)
            }
            Err(e) => return Err(format!("dockerd at {}: {e}", self.socket.display())),
        };
        match answer.status {
            200 => {}
            404 => return Ok(Listing::UnknownNetwork),
            other => {
                return Err(format!(
                    "dockerd at {} answered GET {path} with status {other}",
                    self.socket.display()
                ))
            }
        }
        parse_endpoints(network_id, &answer.body).map_err(|reason| {
            format!(
                "dockerd at {} answered GET {path} with {reason}",
                self.socket.display()
            )
        })
    }
}

/// The endpoint ids of an inspected network (`Containers`: a container's endpoint under the
/// container's id, one without a sandbox yet under `ep-<id>`).
fn parse_endpoints(network_id: &str, body: &[u8]) -> Result<Listing, String> {
    #[derive(Deserialize)]
    struct Inspected {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Containers", default)]
        containers: Option<std::collections::HashMap<String, Attached>>,
    }
    #[derive(Deserialize)]
    struct Attached {
        #[serde(rename = "EndpointID")]
        endpoint_id: String,
    }
    let inspected: Inspected =
        serde_json::from_slice(body).map_err(|e| format!("an unreadable network: {e}"))?;
    // A network found by another way (a name that looks like the id): not the one asked for.
    if inspected.id != network_id {
        return Ok(Listing::UnknownNetwork);
    }
    Ok(Listing::Endpoints(
        inspected
            .containers
            .unwrap_or_default()
            .into_values()
            .map(|a| a.endpoint_id)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "c6628249abbef3741228db60f027a25605a03f1390bda3ca5f1282f46458346e";

    #[test]
    fn an_inspected_network_lists_its_endpoints_with_or_without_a_sandbox() {
        // As dockerd 20.10 answered during a Join.
        let body = format!(
            r#"{{"Name":"n1","Id":"{NET}","Driver":"ocinet","Containers":{{
                "06b69833":{{"Name":"ca","EndpointID":"65d5","IPv4Address":"10.79.0.2/24"}},
                "ep-3b8f":{{"Name":"cb","EndpointID":"3b8f","IPv4Address":"10.79.0.3/24"}}}}}}"#
        );
        let listed = parse_endpoints(NET, body.as_bytes()).unwrap();
        let want: HashSet<String> = ["65d5".to_string(), "3b8f".to_string()].into();
        assert_eq!(listed, Listing::Endpoints(want));
        // After a restart that dropped them.
        let empty = format!(r#"{{"Name":"n1","Id":"{NET}","Containers":{{}}}}"#);
        assert_eq!(
            parse_endpoints(NET, empty.as_bytes()).unwrap(),
            Listing::Endpoints(HashSet::new())
        );
        // Another network answered (one named like the id): nothing concluded.
        let other = r#"{"Name":"x","Id":"ffff","Containers":{}}"#;
        assert_eq!(
            parse_endpoints(NET, other.as_bytes()).unwrap(),
            Listing::UnknownNetwork
        );
        assert!(parse_endpoints(NET, b"<html>")
            .unwrap_err()
            .contains("unreadable"));
    }

    #[test]
    fn only_a_network_id_is_asked_for_and_nobody_listening_concludes_nothing() {
        let dockerd = Dockerd {
            socket: PathBuf::from("/nonexistent/docker.sock"),
        };
        assert_eq!(dockerd.endpoints(NET).unwrap(), Listing::NotRunning);
        assert!(dockerd
            .endpoints("../../containers/json")
            .unwrap_err()
            .contains("not a Docker network id"));
    }
}
