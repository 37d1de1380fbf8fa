//! Network definition files: never a panic; what parses has each gateway inside its subnet
//! and a valid bridge name.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ocinet::network::Network;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(network) = Network::parse("fuzz", Path::new("/fuzz.json"), text) {
        for subnet in &network.subnets {
            assert!(subnet.subnet.contains(&subnet.gateway));
        }
        assert!(ocinet::validate::interface_name(&network.bridge).is_ok());
    }
});
