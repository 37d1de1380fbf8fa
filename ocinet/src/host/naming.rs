//! Names derived from container ids: stable across runs and versions, so they can be found again.

/// FNV-1a, 64 bits, then SplitMix64's finalizer so that ids differing in one character get
/// names that differ everywhere. Tiny, stable across versions, no dependency.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The host end of a container's veth: `ocv` + 12 hex digits (15 bytes, the kernel's limit).
pub(crate) fn host_veth_name(container_id: &str) -> String {
    format!("ocv{:012x}", stable_hash(container_id.as_bytes()) >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_and_differ() {
        let a = host_veth_name("c1");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("ocv"));
        assert_eq!(a, host_veth_name("c1"));
        assert_ne!(a, host_veth_name("c2"));
    }
}
