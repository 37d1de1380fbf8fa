//! The runtime state on stdin: never a panic; what parses has a safe id and an absolute bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocinet::oci::State;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = State::parse(data) {
        assert!(ocinet::validate::container_id(&state.id).is_ok());
        assert!(state.bundle.is_absolute());
    }
});
