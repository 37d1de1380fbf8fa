//! CNI's error: a code of the specification and one line that says what is wrong, printed as
//! JSON on stdout. Engine errors map to the codes by what the runtime can do about them.

use ocinet::error::Error;
use serde_json::{json, Value};

/// The specification's codes (1-99) and the one this plugin uses for the rest.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODING: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    /// What libcni calls ErrInternal: the kernel or the state refused.
    pub const INTERNAL: u32 = 999;
}

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    pub code: u32,
    pub msg: String,
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            // One line: runtimes show it as it is.
            msg: msg.into().replace(['\n', '\r'], " "),
        }
    }

    /// The error as the specification writes it, in the version asked.
    pub fn to_json(&self, version: &str) -> Value {
        json!({"cniVersion": version, "code": self.code, "msg": self.msg})
    }
}

impl From<Error> for CniError {
    fn from(e: Error) -> CniError {
        let code = match &e {
            Error::NetworkConfig { .. } | Error::UnknownNetwork { .. } => code::INVALID_CONFIG,
            Error::AddressOutside { .. } | Error::InternalPorts { .. } => code::INVALID_CONFIG,
            Error::Annotation { .. } | Error::Usage(_) => code::INVALID_CONFIG,
            // Held by other containers: free once they go.
            Error::Exhausted { .. }
            | Error::AddressTaken { .. }
            | Error::PortTaken { .. }
            | Error::BridgeFull { .. } => code::TRY_AGAIN_LATER,
            // What is left is recorded; a DEL again finishes it.
            Error::Teardown { .. } => code::TRY_AGAIN_LATER,
            // CNI_CONTAINERID and CNI_IFNAME name an attachment that is there already.
            Error::Attached { .. } | Error::Duplicate { .. } => code::INVALID_ENVIRONMENT,
            Error::NotAttached(_) => code::UNKNOWN_CONTAINER,
            Error::Io { .. } | Error::Corrupt { .. } => code::IO_FAILURE,
            _ => code::INTERNAL,
        };
        CniError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_get_the_codes_a_runtime_acts_on() {
        let e = CniError::from(Error::Attached {
            id: "cni-c1-eth0".into(),
            netns: "/run/netns/x".into(),
        });
        assert_eq!(e.code, code::INVALID_ENVIRONMENT);
        let e = CniError::from(Error::PortTaken {
            spec: "8080".into(),
            holder: "web".into(),
        });
        assert_eq!(e.code, code::TRY_AGAIN_LATER);
        let e = CniError::new(code::DECODING, "bad\nline");
        assert_eq!(
            e.to_json("1.0.0"),
            json!({"cniVersion": "1.0.0", "code": 6, "msg": "bad line"})
        );
    }
}
