//! Key rings: the keys each tenant may sign with, from the TOML key file.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use toml::value::{Datetime, Offset};
use zeroize::Zeroizing;

use crate::identity::same_service_type;
use crate::{Secret, Signer, TenantAuthError, TenantIdentity};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// One key, as given to [`KeyRing::from_keys`].
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Unique id, sent in the `ep.auth.key-id` header.
    pub id: String,
    /// The tenant's service type the key belongs to.
    pub service_type: String,
    /// When set, only this service id of the type may sign with the key.
    pub service_id: Option<String>,
    /// The secret.
    pub secret: Secret,
    /// First instant the key is valid (ms since the Unix epoch); `None`: always was.
    pub not_before_ms: Option<i64>,
    /// First instant the key is retired (ms since the Unix epoch); `None`: never.
    pub not_after_ms: Option<i64>,
}

/// Whether a key can be used at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValidity {
    /// Before `not_before`.
    NotYetValid {
        /// The key's `not_before`, ms since the Unix epoch.
        not_before_ms: i64,
    },
    /// In `[not_before, not_after)`.
    Valid,
    /// At or after `not_after`.
    Retired {
        /// The key's `not_after`, ms since the Unix epoch.
        not_after_ms: i64,
    },
}

/// A key of a [`KeyRing`]: who it belongs to, when it is valid, and its prepared HMAC state.
#[derive(Clone)]
pub struct Key {
    id: Arc<str>,
    service_type: Box<str>,
    service_id: Option<Box<str>>,
    not_before_ms: Option<i64>,
    not_after_ms: Option<i64>,
    /// HMAC-SHA256 with the secret already absorbed; cloned per record, so the key schedule is
    /// not recomputed on the hot path.
    mac: HmacSha256,
    secret: Secret,
}

impl Key {
    fn new(spec: KeySpec) -> Result<Self, TenantAuthError> {
        let invalid = |problem: &str| TenantAuthError::InvalidKey {
            key_id: spec.id.clone(),
            problem: problem.to_owned(),
        };
        if spec.id.trim().is_empty() || spec.id != spec.id.trim() {
            return Err(invalid("the id is blank or has surrounding whitespace"));
        }
        if spec.id.len() > crate::message::MAX_KEY_ID_LEN || spec.id.chars().any(char::is_control) {
            return Err(invalid(
                "the id is longer than 256 bytes or contains a control character",
            ));
        }
        if spec.service_type.trim().is_empty() || spec.service_type.contains(':') {
            return Err(invalid("service_type is blank or contains `:`"));
        }
        if spec.service_id.as_deref().is_some_and(str::is_empty) {
            return Err(invalid(
                "service_id is empty; omit it to allow every id of the type",
            ));
        }
        if let (Some(not_before), Some(not_after)) = (spec.not_before_ms, spec.not_after_ms)
            && not_before >= not_after
        {
            return Err(invalid("not_before is not earlier than not_after"));
        }
        let mac = HmacSha256::new_from_slice(spec.secret.expose())
            .map_err(|_| invalid("the secret cannot key HMAC-SHA256"))?;
        Ok(Self {
            id: Arc::from(spec.id.as_str()),
            service_type: spec.service_type.trim().into(),
            service_id: spec.service_id.map(String::into_boxed_str),
            not_before_ms: spec.not_before_ms,
            not_after_ms: spec.not_after_ms,
            mac,
            secret: spec.secret,
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn shared_id(&self) -> &Arc<str> {
        &self.id
    }

    /// The service type the key belongs to.
    pub fn service_type(&self) -> &str {
        &self.service_type
    }

    /// The one service id allowed to sign with the key, if restricted.
    pub fn service_id(&self) -> Option<&str> {
        self.service_id.as_deref()
    }

    /// Whether `identity` may sign with this key.
    pub fn belongs_to(&self, identity: &TenantIdentity) -> bool {
        same_service_type(&self.service_type, &identity.service_type)
            && self
                .service_id
                .as_deref()
                .is_none_or(|only| only == identity.service_id)
    }

    /// Whether the key can be used at `now_ms` (ms since the Unix epoch): valid in
    /// `[not_before, not_after)`.
    pub fn validity_at(&self, now_ms: i64) -> KeyValidity {
        match (self.not_before_ms, self.not_after_ms) {
            (Some(not_before_ms), _) if now_ms < not_before_ms => {
                KeyValidity::NotYetValid { not_before_ms }
            }
            (_, Some(not_after_ms)) if now_ms >= not_after_ms => {
                KeyValidity::Retired { not_after_ms }
            }
            _ => KeyValidity::Valid,
        }
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// A signer for `identity` with this key (whether the key belongs to it is not checked:
    /// the verifier refuses a signature by someone else's key, which tests rely on).
    ///
    /// # Errors
    /// [`TenantAuthError::InvalidIdentity`] when `identity` cannot be signed.
    pub fn signer(&self, identity: TenantIdentity) -> Result<Signer, TenantAuthError> {
        Signer::new(self.id.to_string(), self.secret.clone(), identity)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("service_type", &self.service_type)
            .field("service_id", &self.service_id)
            .field("not_before_ms", &self.not_before_ms)
            .field("not_after_ms", &self.not_after_ms)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// The keys the verifier accepts, by id. Immutable; a reload builds a new one.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<Arc<str>, Key>,
}

impl KeyRing {
    /// A ring of `specs`.
    ///
    /// # Errors
    /// [`TenantAuthError::InvalidKey`] or [`TenantAuthError::DuplicateKeyId`], naming the key.
    pub fn from_keys(specs: impl IntoIterator<Item = KeySpec>) -> Result<Self, TenantAuthError> {
        let mut keys = HashMap::new();
        for spec in specs {
            let key = Key::new(spec)?;
            if keys.contains_key(key.id()) {
                return Err(TenantAuthError::DuplicateKeyId {
                    key_id: key.id().to_owned(),
                });
            }
            keys.insert(Arc::clone(key.shared_id()), key);
        }
        Ok(Self { keys })
    }

    /// Parses a key file (format in the crate README).
    ///
    /// # Errors
    /// [`TenantAuthError::Syntax`] with the line, or an invalid key naming its id. No error
    /// message contains a secret.
    pub fn from_toml_str(text: &str) -> Result<Self, TenantAuthError> {
        let file: KeyFile = toml::from_str(text).map_err(|error| syntax(text, &error))?;
        let specs = file
            .key
            .into_iter()
            .map(RawKey::into_spec)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_keys(specs)
    }

    /// The key with `id`.
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.get(id)
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.values()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key `identity` should sign with at `now_ms`: among the keys that belong to it and
    /// are valid then, the newest (latest `not_before`; ties by id), so producers move to a new
    /// key by themselves once its `not_before` has passed.
    pub fn signing_key_for(&self, identity: &TenantIdentity, now_ms: i64) -> Option<&Key> {
        self.keys
            .values()
            .filter(|key| key.belongs_to(identity))
            .filter(|key| key.validity_at(now_ms) == KeyValidity::Valid)
            .max_by(|left, right| {
                (left.not_before_ms.unwrap_or(i64::MIN), &left.id)
                    .cmp(&(right.not_before_ms.unwrap_or(i64::MIN), &right.id))
            })
    }
}

/// The key file: `[[key]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    key: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    service_type: String,
    #[serde(default)]
    service_id: Option<String>,
    /// Hex; read into a zeroizing buffer at once.
    secret: String,
    #[serde(default)]
    not_before: Option<Datetime>,
    #[serde(default)]
    not_after: Option<Datetime>,
}

impl RawKey {
    fn into_spec(self) -> Result<KeySpec, TenantAuthError> {
        let secret_text = Zeroizing::new(self.secret);
        let id = self.id;
        let invalid = |problem: String| TenantAuthError::InvalidKey {
            key_id: id.clone(),
            problem,
        };
        let secret = Secret::from_hex(&secret_text).map_err(|error| match error {
            TenantAuthError::InvalidSecret { problem } => invalid(format!("secret {problem}")),
            other => other,
        })?;
        let not_before_ms = self
            .not_before
            .map(|at| unix_millis(&at))
            .transpose()
            .map_err(|problem| invalid(format!("not_before {problem}")))?;
        let not_after_ms = self
            .not_after
            .map(|at| unix_millis(&at))
            .transpose()
            .map_err(|problem| invalid(format!("not_after {problem}")))?;
        Ok(KeySpec {
            id,
            service_type: self.service_type,
            service_id: self.service_id,
            secret,
            not_before_ms,
            not_after_ms,
        })
    }
}

/// The parser's message and line, without the source excerpt its `Display` adds (the excerpt
/// could be a secret line).
fn syntax(text: &str, error: &toml::de::Error) -> TenantAuthError {
    let line = error.span().map_or(0, |span| {
        let end = span.start.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    TenantAuthError::Syntax {
        line,
        message: error.message().trim().to_owned(),
    }
}

/// Milliseconds since the Unix epoch of a TOML offset date-time (`2026-12-01T00:00:00Z`).
fn unix_millis(at: &Datetime) -> Result<i64, String> {
    let (Some(date), Some(time), Some(offset)) = (at.date, at.time, at.offset) else {
        return Err(format!(
            "`{at}` needs a date, a time and a UTC offset, e.g. 2026-12-01T00:00:00Z"
        ));
    };
    let days = days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    let offset_minutes = match offset {
        Offset::Z => 0,
        Offset::Custom { minutes } => i64::from(minutes),
    };
    let seconds = days * 86_400
        + i64::from(time.hour) * 3_600
        + i64::from(time.minute) * 60
        + i64::from(time.second)
        - offset_minutes * 60;
    Ok(seconds * 1_000 + i64::from(time.nanosecond / 1_000_000))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn ring(text: &str) -> Result<KeyRing, TenantAuthError> {
        KeyRing::from_toml_str(text)
    }

    #[test]
    fn the_example_key_file_parses() {
        let text = include_str!("../../../deploy/tenant-keys.example.toml");
        let ring = ring(text).expect("the example is valid");
        assert!(ring.len() >= 3);
        let finance = TenantIdentity::new("FINANCE", "producer-1").expect("identity");
        assert!(ring.keys().any(|key| key.belongs_to(&finance)));
    }

    #[test]
    fn toml_datetimes_become_unix_milliseconds() {
        let text = format!(
            "[[key]]\nid = \"k\"\nservice_type = \"FINANCE\"\nsecret = \"{SECRET}\"\n\
             not_before = 1970-01-02T00:00:00Z\nnot_after = 2026-12-01T01:00:00.250+01:00\n"
        );
        let ring = ring(&text).expect("valid");
        let key = ring.get("k").expect("present");
        assert_eq!(key.not_before_ms, Some(86_400_000));
        // 2026-12-01T00:00:00Z is 1_796_083_200 s after the epoch.
        assert_eq!(key.not_after_ms, Some(1_796_083_200_250));
    }

    #[test]
    fn a_local_datetime_is_refused_with_the_key_id() {
        let text = format!(
            "[[key]]\nid = \"fin-1\"\nservice_type = \"FINANCE\"\nsecret = \"{SECRET}\"\n\
             not_after = 2026-12-01T00:00:00\n"
        );
        let error = ring(&text).expect_err("no offset");
        let message = error.to_string();
        assert!(
            message.contains("key `fin-1`") && message.contains("UTC offset"),
            "{message}"
        );
    }

    #[test]
    fn a_short_secret_is_refused_with_the_key_id_and_without_the_secret() {
        let text = "[[key]]\nid = \"fin-1\"\nservice_type = \"FINANCE\"\nsecret = \"c0ffee00\"\n";
        let message = ring(text).expect_err("too short").to_string();
        assert!(message.contains("key `fin-1`"), "{message}");
        assert!(message.contains("at least 32"), "{message}");
        assert!(!message.contains("c0ffee00"), "{message}");
    }

    #[test]
    fn syntax_errors_give_the_line_but_not_the_source_text() {
        let text =
            format!("[[key]]\nid = \"fin-1\"\nservice_type = \"FINANCE\"\nsecret = {SECRET}\n");
        let error = ring(&text).expect_err("unquoted secret");
        let TenantAuthError::Syntax { line, .. } = &error else {
            panic!("not a syntax error: {error:?}");
        };
        assert_eq!(*line, 4);
        assert!(!error.to_string().contains("aabbcc"), "{error}");
    }

    #[test]
    fn duplicate_ids_and_unknown_fields_are_refused() {
        let twice = format!(
            "[[key]]\nid = \"k\"\nservice_type = \"A\"\nsecret = \"{SECRET}\"\n\
             [[key]]\nid = \"k\"\nservice_type = \"B\"\nsecret = \"{SECRET}\"\n"
        );
        assert!(matches!(
            ring(&twice),
            Err(TenantAuthError::DuplicateKeyId { key_id }) if key_id == "k"
        ));
        let typo = format!(
            "[[key]]\nid = \"k\"\nservice_type = \"A\"\nsecret = \"{SECRET}\"\nnot_afer = 2026-01-01T00:00:00Z\n"
        );
        assert!(
            ring(&typo)
                .expect_err("typo")
                .to_string()
                .contains("not_afer")
        );
    }

    #[test]
    fn an_inverted_validity_window_is_refused() {
        let text = format!(
            "[[key]]\nid = \"k\"\nservice_type = \"A\"\nsecret = \"{SECRET}\"\n\
             not_before = 2026-02-01T00:00:00Z\nnot_after = 2026-01-01T00:00:00Z\n"
        );
        assert!(
            ring(&text)
                .expect_err("inverted")
                .to_string()
                .contains("not_before")
        );
    }

    #[test]
    fn debug_of_a_ring_redacts_every_secret() {
        let text = format!("[[key]]\nid = \"k\"\nservice_type = \"A\"\nsecret = \"{SECRET}\"\n");
        let shown = format!("{:?}", ring(&text).expect("valid"));
        assert!(shown.contains("redacted"), "{shown}");
        assert!(
            !shown.contains("aabbcc") && !shown.contains("170, 187"),
            "{shown}"
        );
    }

    #[test]
    fn the_newest_valid_key_of_the_tenant_signs() {
        let text = format!(
            "[[key]]\nid = \"old\"\nservice_type = \"FINANCE\"\nsecret = \"{SECRET}\"\n\
             not_after = 1970-01-01T00:00:10Z\n\
             [[key]]\nid = \"new\"\nservice_type = \"FINANCE\"\nsecret = \"{SECRET}\"\n\
             not_before = 1970-01-01T00:00:05Z\n\
             [[key]]\nid = \"other-id\"\nservice_type = \"FINANCE\"\nservice_id = \"f-2\"\n\
             secret = \"{SECRET}\"\nnot_before = 1970-01-01T00:00:06Z\n"
        );
        let ring = ring(&text).expect("valid");
        let f1 = TenantIdentity::new("finance", "f-1").expect("identity");
        let at = |ms| ring.signing_key_for(&f1, ms).map(Key::id);
        assert_eq!(at(1_000), Some("old"));
        assert_eq!(at(7_000), Some("new"));
        assert_eq!(at(20_000), Some("new"));
        let marketing = TenantIdentity::new("MARKETING", "m-1").expect("identity");
        assert!(ring.signing_key_for(&marketing, 7_000).is_none());
    }
}
