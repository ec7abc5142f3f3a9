//! Signing records: the producer's side.

use std::fmt;

use hmac::Mac;

use crate::keys::HmacSha256;
use crate::message::{
    self, IDENTITY_HEADER, KEY_ID_HEADER, MAX_KEY_ID_LEN, SIGNATURE_HEADER, SignedFields,
    TIMESTAMP_HEADER,
};
use crate::{Secret, TenantAuthError, TenantIdentity};

/// Signs records of one tenant identity with one key. `Debug` shows no key material.
#[derive(Clone)]
pub struct Signer {
    key_id: String,
    identity: TenantIdentity,
    identity_header: String,
    /// HMAC-SHA256 with the secret absorbed; cloned per record.
    mac: HmacSha256,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `identity` with the key `key_id` and its `secret`.
    ///
    /// # Errors
    /// [`TenantAuthError::InvalidIdentity`] when the identity cannot be put in the identity
    /// header; [`TenantAuthError::InvalidKey`] for a blank, over-long or control-character id.
    pub fn new(
        key_id: impl Into<String>,
        secret: Secret,
        identity: TenantIdentity,
    ) -> Result<Self, TenantAuthError> {
        let key_id = key_id.into();
        if key_id.trim().is_empty()
            || key_id != key_id.trim()
            || key_id.len() > MAX_KEY_ID_LEN
            || key_id.chars().any(char::is_control)
        {
            return Err(TenantAuthError::InvalidKey {
                key_id,
                problem: "the id is blank, padded, longer than 256 bytes or has a control \
                          character"
                    .to_owned(),
            });
        }
        let identity = TenantIdentity::new(identity.service_type, identity.service_id)?;
        let mac = HmacSha256::new_from_slice(secret.expose()).map_err(|_| {
            TenantAuthError::InvalidKey {
                key_id: key_id.clone(),
                problem: "the secret cannot key HMAC-SHA256".to_owned(),
            }
        })?;
        Ok(Self {
            identity_header: message::identity_header(&identity.service_type, &identity.service_id),
            key_id,
            identity,
            mac,
        })
    }

    /// The key id put in the headers.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The identity the signatures vouch for.
    pub fn identity(&self) -> &TenantIdentity {
        &self.identity
    }

    /// The signature headers for a record with `record_key` (`None`: null key) and `value`,
    /// signed at `timestamp_ms` (ms since the Unix epoch).
    pub fn sign(
        &self,
        record_key: Option<&[u8]>,
        value: &[u8],
        timestamp_ms: i64,
    ) -> SignatureHeaders {
        let mut mac = self.mac.clone();
        SignedFields {
            key_id: &self.key_id,
            service_type: &self.identity.service_type,
            service_id: &self.identity.service_id,
            record_key,
            value,
            timestamp_ms,
        }
        .feed(&mut mac);
        let tag = mac.finalize().into_bytes();
        SignatureHeaders {
            key_id: self.key_id.clone(),
            signature: message::signature_header(&tag),
            identity: self.identity_header.clone(),
            timestamp: timestamp_ms.to_string(),
        }
    }
}

/// The four header values of one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// Value of [`KEY_ID_HEADER`].
    pub key_id: String,
    /// Value of [`SIGNATURE_HEADER`]: `v1:` and the tag in lowercase hex.
    pub signature: String,
    /// Value of [`IDENTITY_HEADER`]: `SERVICE_TYPE:SERVICE_ID`.
    pub identity: String,
    /// Value of [`TIMESTAMP_HEADER`]: decimal ms since the Unix epoch.
    pub timestamp: String,
}

impl SignatureHeaders {
    /// `(name, value)` pairs, ready to append to a record's headers.
    pub fn into_pairs(self) -> [(&'static str, Vec<u8>); 4] {
        [
            (KEY_ID_HEADER, self.key_id.into_bytes()),
            (SIGNATURE_HEADER, self.signature.into_bytes()),
            (IDENTITY_HEADER, self.identity.into_bytes()),
            (TIMESTAMP_HEADER, self.timestamp.into_bytes()),
        ]
    }
}
