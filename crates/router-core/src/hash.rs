//! FNV-1a, used for the destination index and for the configuration fingerprint.
//!
//! Not `std`'s `DefaultHasher`: its output may change between Rust releases, and the
//! fingerprint must stay the same across builds so that instances report comparable versions.
//! Neither use needs resistance to chosen inputs: the index compares names after a hash match,
//! and the fingerprint identifies configurations, it does not authenticate them.

/// Up to this many names, a lookup first compares the raw name byte for byte with each
/// canonical one (the producers' usual spelling) before hashing: a few length-and-bytes
/// comparisons cost less than folding and hashing the name.
pub(crate) const EXACT_SCAN_MAX: usize = 8;

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    pub(crate) fn byte(&mut self, byte: u8) {
        self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(PRIME);
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.byte(byte);
        }
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// Hash of a destination name or service type as it compares: trimmed, ASCII-case folded.
/// Computed without allocating, so lookups on the hot path need no upper-cased copy.
pub(crate) fn folded_hash(name: &str) -> u64 {
    let mut hash = Fnv64::new();
    for byte in crate::name::trim(name).bytes() {
        hash.byte(byte.to_ascii_uppercase());
    }
    hash.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_hash_ignores_ascii_case_and_surrounding_whitespace() {
        assert_eq!(folded_hash(" marketing\t"), folded_hash("MARKETING"));
        assert_ne!(folded_hash("MARKETING"), folded_hash("FINANCE"));
    }

    #[test]
    fn fnv_matches_the_published_test_vector() {
        // FNV-1a 64 of "a" from the reference test suite; guards against constant typos that
        // would silently change every published fingerprint.
        let mut hash = Fnv64::new();
        hash.bytes(b"a");
        assert_eq!(hash.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
