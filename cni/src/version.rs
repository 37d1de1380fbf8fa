//! The CNI specification versions this plugin speaks, and what differs between them in a
//! result.

/// What VERSION reports, oldest first.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        Some(match text {
            "0.3.0" => Version::V0_3_0,
            "0.3.1" => Version::V0_3_1,
            "0.4.0" => Version::V0_4_0,
            "1.0.0" => Version::V1_0_0,
            "1.1.0" => Version::V1_1_0,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        SUPPORTED[self as usize]
    }

    /// Results before 1.0.0 say each address's family (`"version": "4"`).
    pub fn ips_carry_family(self) -> bool {
        self < Version::V1_0_0
    }

    /// CHECK came with 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// GC and STATUS came with 1.1.0.
    pub fn has_gc_and_status(self) -> bool {
        self >= Version::V1_1_0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_parses_to_itself() {
        for text in SUPPORTED {
            assert_eq!(Version::parse(text).map(Version::as_str), Some(text));
        }
        assert_eq!(Version::parse("0.2.0"), None);
        assert!(Version::V0_4_0.ips_carry_family() && !Version::V1_0_0.ips_carry_family());
        assert!(!Version::V0_3_1.has_check() && Version::V0_4_0.has_check());
    }
}
