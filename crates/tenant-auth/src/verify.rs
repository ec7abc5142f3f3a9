//! Verifying records: the processor's side.

use std::sync::Arc;

use hmac::Mac;

use crate::identity::MAX_IDENTITY_LEN;
use crate::keys::KeyValidity;
use crate::message::{
    HEADERS, IDENTITY_HEADER, KEY_ID_HEADER, MAX_KEY_ID_LEN, SIGNATURE_HEADER, SignedFields,
    TIMESTAMP_HEADER, VERSION,
};
use crate::{KeyRing, TenantIdentity};

/// How far the signing time may be from the verifier's `now_ms`.
///
/// The defaults suit a `now_ms` taken from the broker's `LogAppendTime` of the record (lag
/// does not age it). With the verifier's wall clock instead, `max_age_ms` must exceed the
/// longest consumer lag to be tolerated, or a processor catching up on a backlog dead-letters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Oldest signature accepted, in ms before `now_ms`; `None` accepts any age.
    pub max_age_ms: Option<u64>,
    /// How far in the future of `now_ms` a signature may be (producer clock skew), in ms.
    pub max_ahead_ms: u64,
}

impl Default for Freshness {
    /// One hour old, five minutes ahead.
    fn default() -> Self {
        Self {
            max_age_ms: Some(60 * 60 * 1_000),
            max_ahead_ms: 5 * 60 * 1_000,
        }
    }
}

/// A record whose claimed identity is vouched for by a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTenant {
    /// The key that signed it.
    pub key_id: Arc<str>,
    /// When the producer signed it, ms since the Unix epoch.
    pub signed_at_ms: i64,
}

/// Why a record's claimed identity is not authenticated. Values taken from headers are shown
/// quoted and escaped (`{:?}`): they are attacker-controlled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The record has none of the signature headers.
    #[error("the record is not signed (no `ep.auth.*` headers)")]
    MissingSignature,
    /// A signature header is missing (while others are present), repeated, or unreadable.
    #[error("header `{header}` {problem}")]
    MalformedHeader {
        /// The header name.
        header: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The signature is of a message layout this verifier does not know.
    #[error("signature version {version:?} is not supported (only `{VERSION}`)")]
    UnsupportedVersion {
        /// The version prefix of the signature header.
        version: String,
    },
    /// No key with this id is in the key ring.
    #[error("key {key_id:?} is not in the key ring")]
    UnknownKey {
        /// The key id of the header.
        key_id: String,
    },
    /// The signature does not match the record: it was altered, or signed with another secret.
    #[error("the signature by key {key_id:?} does not match the record")]
    BadSignature {
        /// The key id of the header.
        key_id: String,
    },
    /// The key was retired (`not_after`) before `now_ms`.
    #[error("key {key_id:?} is retired since {not_after_ms} ms after the epoch")]
    RetiredKey {
        /// The key id.
        key_id: String,
        /// The key's `not_after`.
        not_after_ms: i64,
    },
    /// The key is not valid yet (`not_before` after `now_ms`).
    #[error("key {key_id:?} is not valid before {not_before_ms} ms after the epoch")]
    KeyNotYetValid {
        /// The key id.
        key_id: String,
        /// The key's `not_before`.
        not_before_ms: i64,
    },
    /// The key belongs to another tenant than the signed identity.
    #[error("key {key_id:?} does not belong to tenant {tenant:?}")]
    KeyNotForTenant {
        /// The key id.
        key_id: String,
        /// The signed identity, `TYPE:ID`.
        tenant: String,
    },
    /// The signature is valid but vouches for another identity than the event claims.
    #[error("signed as {signed:?} but the event claims {claimed:?}")]
    IdentityMismatch {
        /// The signed identity, `TYPE:ID`.
        signed: String,
        /// The identity in the event, `TYPE:ID`.
        claimed: String,
    },
    /// The signing time is older than [`Freshness::max_age_ms`].
    #[error("signed at {signed_at_ms}, more than {max_age_ms} ms before {now_ms}")]
    StaleTimestamp {
        /// The signed timestamp.
        signed_at_ms: i64,
        /// The verifier's time.
        now_ms: i64,
        /// The limit.
        max_age_ms: u64,
    },
    /// The signing time is further ahead than [`Freshness::max_ahead_ms`].
    #[error("signed at {signed_at_ms}, more than {max_ahead_ms} ms after {now_ms}")]
    FutureTimestamp {
        /// The signed timestamp.
        signed_at_ms: i64,
        /// The verifier's time.
        now_ms: i64,
        /// The limit.
        max_ahead_ms: u64,
    },
}

impl AuthFailure {
    /// A short stable label per variant, e.g. for a metric: `missing-signature`,
    /// `malformed-header`, `unsupported-version`, `unknown-key`, `bad-signature`,
    /// `retired-key`, `key-not-yet-valid`, `key-not-for-tenant`, `identity-mismatch`,
    /// `stale-timestamp`, `future-timestamp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing-signature",
            Self::MalformedHeader { .. } => "malformed-header",
            Self::UnsupportedVersion { .. } => "unsupported-version",
            Self::UnknownKey { .. } => "unknown-key",
            Self::BadSignature { .. } => "bad-signature",
            Self::RetiredKey { .. } => "retired-key",
            Self::KeyNotYetValid { .. } => "key-not-yet-valid",
            Self::KeyNotForTenant { .. } => "key-not-for-tenant",
            Self::IdentityMismatch { .. } => "identity-mismatch",
            Self::StaleTimestamp { .. } => "stale-timestamp",
            Self::FutureTimestamp { .. } => "future-timestamp",
        }
    }
}

/// The identity an event claims (its `origin_service_type` and `origin_service_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// `origin_service_type` of the event.
    pub service_type: &'a str,
    /// `origin_service_id` of the event.
    pub service_id: &'a str,
}

/// Checks record signatures against a [`KeyRing`]. Immutable and `Send + Sync`; share it.
#[derive(Debug, Clone)]
pub struct Verifier {
    ring: KeyRing,
    freshness: Freshness,
}

impl Verifier {
    /// A verifier accepting the keys of `ring`, signatures as fresh as `freshness` says.
    pub fn new(ring: KeyRing, freshness: Freshness) -> Self {
        Self { ring, freshness }
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Whether the record (`record_key`, `value`, `headers`) carries a valid signature, at
    /// `now_ms`, for the identity the event `claimed`.
    ///
    /// Checks, in order: headers present and well formed; key known; MAC (constant-time, via
    /// [`Mac::verify_slice`]); key valid at `now_ms`; key belongs to the signed identity;
    /// signed identity is the claimed one; signing time fresh. The MAC comes before the checks
    /// that name a key or identity, so a forgery is reported as [`AuthFailure::BadSignature`]
    /// whatever it claims.
    ///
    /// # Errors
    /// The first check that fails, as an [`AuthFailure`].
    pub fn verify<'h>(
        &self,
        claimed: Claim<'_>,
        record_key: Option<&[u8]>,
        value: &[u8],
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        now_ms: i64,
    ) -> Result<VerifiedTenant, AuthFailure> {
        let signature = SignatureParts::find(headers)?;
        let key = self
            .ring
            .get(signature.key_id)
            .ok_or_else(|| AuthFailure::UnknownKey {
                key_id: signature.key_id.to_owned(),
            })?;
        let mut mac = key.mac();
        SignedFields {
            key_id: signature.key_id,
            service_type: signature.service_type,
            service_id: signature.service_id,
            record_key,
            value,
            timestamp_ms: signature.timestamp_ms,
        }
        .feed(&mut mac);
        mac.verify_slice(&signature.tag)
            .map_err(|_| AuthFailure::BadSignature {
                key_id: key.id().to_owned(),
            })?;
        match key.validity_at(now_ms) {
            KeyValidity::Valid => {}
            KeyValidity::Retired { not_after_ms } => {
                return Err(AuthFailure::RetiredKey {
                    key_id: key.id().to_owned(),
                    not_after_ms,
                });
            }
            KeyValidity::NotYetValid { not_before_ms } => {
                return Err(AuthFailure::KeyNotYetValid {
                    key_id: key.id().to_owned(),
                    not_before_ms,
                });
            }
        }
        let signed = TenantIdentity {
            service_type: signature.service_type.to_owned(),
            service_id: signature.service_id.to_owned(),
        };
        if !key.belongs_to(&signed) {
            return Err(AuthFailure::KeyNotForTenant {
                key_id: key.id().to_owned(),
                tenant: signed.to_string(),
            });
        }
        if !signed.is(claimed.service_type, claimed.service_id) {
            return Err(AuthFailure::IdentityMismatch {
                signed: signed.to_string(),
                claimed: format!("{}:{}", claimed.service_type, claimed.service_id),
            });
        }
        self.check_freshness(signature.timestamp_ms, now_ms)?;
        Ok(VerifiedTenant {
            key_id: Arc::clone(key.shared_id()),
            signed_at_ms: signature.timestamp_ms,
        })
    }

    fn check_freshness(&self, signed_at_ms: i64, now_ms: i64) -> Result<(), AuthFailure> {
        let Freshness {
            max_age_ms,
            max_ahead_ms,
        } = self.freshness;
        let ahead = i128::from(signed_at_ms) - i128::from(now_ms);
        if ahead > i128::from(max_ahead_ms) {
            return Err(AuthFailure::FutureTimestamp {
                signed_at_ms,
                now_ms,
                max_ahead_ms,
            });
        }
        if let Some(max_age_ms) = max_age_ms
            && -ahead > i128::from(max_age_ms)
        {
            return Err(AuthFailure::StaleTimestamp {
                signed_at_ms,
                now_ms,
                max_age_ms,
            });
        }
        Ok(())
    }
}

/// The signature headers of a record, parsed.
struct SignatureParts<'h> {
    key_id: &'h str,
    tag: [u8; 32],
    service_type: &'h str,
    service_id: &'h str,
    timestamp_ms: i64,
}

impl<'h> SignatureParts<'h> {
    fn find(headers: impl IntoIterator<Item = (&'h str, &'h [u8])>) -> Result<Self, AuthFailure> {
        let mut found: [Option<&'h [u8]>; 4] = [None; 4];
        for (name, value) in headers {
            let Some(index) = HEADERS.iter().position(|known| *known == name) else {
                continue;
            };
            if found[index].replace(value).is_some() {
                // Two values: which one a reader takes differs between libraries; refuse both.
                return Err(malformed(HEADERS[index], "appears more than once"));
            }
        }
        if found.iter().all(Option::is_none) {
            return Err(AuthFailure::MissingSignature);
        }
        let [key_id, signature, identity, timestamp] = found;
        let present = |value: Option<&'h [u8]>, header| {
            value.ok_or_else(|| {
                malformed(
                    header,
                    "is missing while other signature headers are present",
                )
            })
        };
        let text = |value: &'h [u8], header| {
            std::str::from_utf8(value).map_err(|_| malformed(header, "is not UTF-8"))
        };
        let key_id = text(present(key_id, KEY_ID_HEADER)?, KEY_ID_HEADER)?;
        if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
            return Err(malformed(
                KEY_ID_HEADER,
                "is empty or longer than 256 bytes",
            ));
        }
        let tag = parse_signature(text(
            present(signature, SIGNATURE_HEADER)?,
            SIGNATURE_HEADER,
        )?)?;
        let identity = text(present(identity, IDENTITY_HEADER)?, IDENTITY_HEADER)?;
        if identity.len() > MAX_IDENTITY_LEN {
            return Err(malformed(IDENTITY_HEADER, "is longer than 1024 bytes"));
        }
        let Some((service_type, service_id)) =
            identity
                .split_once(':')
                .filter(|(service_type, service_id)| {
                    !service_type.is_empty() && !service_id.is_empty()
                })
        else {
            return Err(malformed(IDENTITY_HEADER, "is not SERVICE_TYPE:SERVICE_ID"));
        };
        let timestamp = text(present(timestamp, TIMESTAMP_HEADER)?, TIMESTAMP_HEADER)?;
        // Canonical form only (no `+`, no leading zeros), so one signed value has one spelling.
        let timestamp_ms = timestamp
            .parse::<i64>()
            .ok()
            .filter(|parsed| parsed.to_string() == timestamp)
            .ok_or_else(|| {
                malformed(
                    TIMESTAMP_HEADER,
                    "is not a decimal integer in canonical form",
                )
            })?;
        Ok(Self {
            key_id,
            tag,
            service_type,
            service_id,
            timestamp_ms,
        })
    }
}

fn parse_signature(text: &str) -> Result<[u8; 32], AuthFailure> {
    let Some((version, hex_tag)) = text.split_once(':') else {
        return Err(malformed(SIGNATURE_HEADER, "is not VERSION:HEX"));
    };
    if version != VERSION {
        return Err(AuthFailure::UnsupportedVersion {
            version: version.chars().take(16).collect(),
        });
    }
    let mut tag = [0_u8; 32];
    hex::decode_to_slice(hex_tag, &mut tag)
        .map_err(|_| malformed(SIGNATURE_HEADER, "is not 64 hex digits after the version"))?;
    Ok(tag)
}

fn malformed(header: &'static str, problem: &'static str) -> AuthFailure {
    AuthFailure::MalformedHeader { header, problem }
}
