//! Docker -p specs: never a panic; what parses is a consistent mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocinet::ports;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(specs) = ports::parse_list(text) {
        for spec in specs {
            assert!(spec.container.start >= 1 && spec.container.start <= spec.container.end);
            if let Some(host) = spec.host {
                assert!(host.start >= 1 && host.start <= host.end);
                // Equal lengths, or one container port behind a host range to pick from.
                assert!(host.count() == spec.container.count() || spec.container.count() == 1);
            }
        }
    }
});
