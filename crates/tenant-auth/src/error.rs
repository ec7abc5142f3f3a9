//! Errors of building key rings and signers. Verification outcomes are [`crate::AuthFailure`].

/// A key file, a secret or a signer identity is unusable. Messages name the key id, never the
/// secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantAuthError {
    /// The key file is not valid TOML or does not have the key file's shape.
    #[error("key file, line {line}: {message}")]
    Syntax {
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// What the TOML parser reported (its message only, never the source line, which may
        /// hold a secret).
        message: String,
    },
    /// A key entry is invalid.
    #[error("key `{key_id}`: {problem}")]
    InvalidKey {
        /// The key's id (`<missing>` when the entry has none).
        key_id: String,
        /// What is wrong, e.g. "secret is shorter than 32 bytes".
        problem: String,
    },
    /// Two entries share a key id; ids must be unique in a key ring.
    #[error("key `{key_id}` is defined twice; key ids must be unique")]
    DuplicateKeyId {
        /// The repeated id.
        key_id: String,
    },
    /// A secret given directly (not in a key file) is unusable.
    #[error("secret: {problem}")]
    InvalidSecret {
        /// What is wrong, e.g. "is not hex".
        problem: String,
    },
    /// A service type or id cannot be signed.
    #[error("identity `{service_type}:{service_id}`: {problem}")]
    InvalidIdentity {
        /// The service type.
        service_type: String,
        /// The service id.
        service_id: String,
        /// What is wrong.
        problem: &'static str,
    },
}
