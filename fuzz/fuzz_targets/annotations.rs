//! The four io.ocinet.* annotations from arbitrary bytes (0xff separates the values): never a
//! panic; a container id or network name that parses is safe as a file name.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use ocinet::request::{NetworkMode, NetworkRequest};

const KEYS: [&str; 4] = [
    "io.ocinet.network",
    "io.ocinet.ports",
    "io.ocinet.ip",
    "io.ocinet.mac",
];

fuzz_target!(|data: &[u8]| {
    let mut annotations = HashMap::new();
    for (key, value) in KEYS.iter().zip(data.split(|b| *b == 0xff)) {
        if let Ok(v) = std::str::from_utf8(value) {
            annotations.insert(key.to_string(), v.to_string());
        }
    }
    if let Ok(request) = NetworkRequest::from_annotations(&annotations) {
        let name = match &request.mode {
            NetworkMode::Bridge { network } => network.clone(),
            NetworkMode::Container { id } => id.clone(),
            _ => return,
        };
        assert!(!name.is_empty() && !name.contains('/') && !name.starts_with('.'));
    }
});
