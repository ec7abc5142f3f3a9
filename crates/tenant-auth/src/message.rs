//! The signed message (wire contract v1) and the header names that carry a signature.
//!
//! The layout is documented in the crate README; changing it needs a new version tag.

use hmac::Mac;

/// Header naming the key that signed the record (a key id of the key file).
pub const KEY_ID_HEADER: &str = "ep.auth.key-id";
/// Header carrying the signature: `v1:` followed by the HMAC-SHA256 tag in lowercase hex.
pub const SIGNATURE_HEADER: &str = "ep.auth.signature";
/// Header carrying the signed identity, `SERVICE_TYPE:SERVICE_ID`.
pub const IDENTITY_HEADER: &str = "ep.auth.identity";
/// Header carrying the producer's signing time, milliseconds since the Unix epoch, in decimal.
pub const TIMESTAMP_HEADER: &str = "ep.auth.timestamp";

/// Every header of a signature, e.g. to strip them before forwarding a record.
pub const HEADERS: [&str; 4] = [
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    IDENTITY_HEADER,
    TIMESTAMP_HEADER,
];

/// Version tag of the message layout below; the first field of the signed message and the
/// prefix of the signature header value (`v1:`).
pub const VERSION: &str = "v1";

/// Domain separation: the first field of every v1 message, so a v1 tag can never be taken for
/// a MAC over anything else signed with the same secret.
pub(crate) const DOMAIN_TAG: &[u8] = b"event-processor/tenant-auth/v1";

/// Longest key id accepted in a header; longer ones are malformed (key ids are short names).
pub(crate) const MAX_KEY_ID_LEN: usize = 256;

/// What a signature covers. Identity parts are exactly the bytes of the identity header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedFields<'a> {
    pub(crate) key_id: &'a str,
    pub(crate) service_type: &'a str,
    pub(crate) service_id: &'a str,
    pub(crate) record_key: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
    pub(crate) timestamp_ms: i64,
}

impl SignedFields<'_> {
    /// Feeds the v1 message into `mac` without building it in memory:
    ///
    /// ```text
    /// field(DOMAIN_TAG) field(key_id) field(service_type) field(service_id)
    /// key value i64-be(timestamp_ms)
    /// field(x) = u64-be(len(x)) x
    /// key      = 0x00 (null key) | 0x01 field(key bytes)
    /// value    = field(value bytes)
    /// ```
    ///
    /// Every variable-length field carries its length, and the null key has its own marker,
    /// so two different inputs never produce the same message.
    pub(crate) fn feed(&self, mac: &mut impl Mac) {
        field(mac, DOMAIN_TAG);
        field(mac, self.key_id.as_bytes());
        field(mac, self.service_type.as_bytes());
        field(mac, self.service_id.as_bytes());
        match self.record_key {
            None => mac.update(&[0x00]),
            Some(key) => {
                mac.update(&[0x01]);
                field(mac, key);
            }
        }
        field(mac, self.value);
        mac.update(&self.timestamp_ms.to_be_bytes());
    }
}

fn field(mac: &mut impl Mac, bytes: &[u8]) {
    // usize → u64 never truncates on the platforms Rust supports (usize is at most 64 bits).
    let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    mac.update(&length.to_be_bytes());
    mac.update(bytes);
}

/// The identity header value of `service_type` and `service_id`.
pub(crate) fn identity_header(service_type: &str, service_id: &str) -> String {
    format!("{service_type}:{service_id}")
}

/// The signature header value of a MAC tag.
pub(crate) fn signature_header(tag: &[u8]) -> String {
    format!("{VERSION}:{}", hex::encode(tag))
}
