//! libnetwork's remote network driver API (`/NetworkDriver.*`): the requests dockerd sends and
//! the answers it reads, as JSON. Field names are Docker's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Options` of a request: Docker's labels (`com.docker.network.*`) and the user's `-o` pairs.
pub type Options = Map<String, Value>;

/// Where `docker network create -o KEY=VALUE` pairs arrive.
pub const GENERIC: &str = "com.docker.network.generic";
/// `docker network create --internal`.
pub const INTERNAL: &str = "com.docker.network.internal";
/// `docker network create --ipv6`.
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// The container's published ports (`docker run -p`), in ProgramExternalConnectivity.
pub const PORT_MAP: &str = "com.docker.network.portmap";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNetwork {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(default)]
    pub options: Option<Options>,
    #[serde(default, rename = "IPv4Data")]
    pub ipv4_data: Option<Vec<IpamData>>,
    #[serde(default, rename = "IPv6Data")]
    pub ipv6_data: Option<Vec<IpamData>>,
}

/// One pool Docker's IPAM gave the network.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamData {
    #[serde(default)]
    pub pool: String,
    /// The gateway with the pool's prefix length: `10.0.0.1/24`.
    #[serde(default)]
    pub gateway: String,
}

#[derive(Debug, Deserialize)]
pub struct NetworkRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

/// Every endpoint call names its network and endpoint (Leave, DeleteEndpoint, ...).
#[derive(Debug, Deserialize)]
pub struct EndpointRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub interface: Option<EndpointInterface>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointInterface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(
        default,
        rename = "AddressIPv6",
        skip_serializing_if = "String::is_empty"
    )]
    pub address_ipv6: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Join {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub sandbox_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProgramExternalConnectivity {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub options: Option<Options>,
}

/// One of Docker's port bindings (`types.PortBinding`): protocol by IP number, an empty or
/// zero host port for "any free one", `HostPortEnd` for a range to pick from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub proto: u8,
    #[serde(default, rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    pub port: u16,
    #[serde(default, rename = "HostIP")]
    pub host_ip: String,
    #[serde(default)]
    pub host_port: u16,
    #[serde(default)]
    pub host_port_end: u16,
}
