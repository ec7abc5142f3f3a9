//! Key secrets: at least 32 bytes, redacted in `Debug`, zeroized on drop.

use std::fmt;

use zeroize::Zeroizing;

use crate::TenantAuthError;

/// Shortest secret accepted: the output size of SHA-256. Shorter HMAC keys weaken the MAC.
pub const MIN_SECRET_LEN: usize = 32;

/// A key's secret bytes. `Debug` shows only the length; the bytes are zeroized when dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret from its bytes.
    ///
    /// # Errors
    /// [`TenantAuthError::InvalidSecret`] when shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, TenantAuthError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(TenantAuthError::InvalidSecret {
                problem: format!(
                    "is {} bytes; at least {MIN_SECRET_LEN} are required (e.g. `openssl rand -hex 32`)",
                    bytes.len()
                ),
            });
        }
        Ok(Self(bytes))
    }

    /// A secret written in hex (as in key files); surrounding whitespace is ignored, so a file
    /// made with `openssl rand -hex 32 > FILE` can be read as it is.
    ///
    /// # Errors
    /// [`TenantAuthError::InvalidSecret`] when not hex or too short. The message never contains
    /// the text.
    pub fn from_hex(text: &str) -> Result<Self, TenantAuthError> {
        let bytes = hex::decode(text.trim()).map_err(|_| TenantAuthError::InvalidSecret {
            problem: "is not an even number of hex digits (0-9, a-f)".to_owned(),
        })?;
        Self::new(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = Secret::from_hex(HEX_SECRET).expect("valid");
        let shown = format!("{secret:?} {secret:#?}");
        assert!(shown.contains("redacted 32 bytes"), "{shown}");
        assert!(!shown.to_lowercase().contains("aabbcc"), "{shown}");
        assert!(!shown.contains("170"), "{shown}");
    }

    #[test]
    fn short_secrets_are_refused() {
        let error = Secret::from_hex("00112233").expect_err("4 bytes");
        assert!(error.to_string().contains("4 bytes"), "{error}");
    }

    #[test]
    fn bad_hex_is_refused_without_echoing_it() {
        let text = format!("{}zz", &HEX_SECRET[2..]);
        let error = Secret::from_hex(&text).expect_err("not hex");
        assert!(!error.to_string().contains(&text[..10]), "{error}");
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let secret = Secret::from_hex(&format!("  {HEX_SECRET}\n")).expect("valid");
        assert_eq!(secret.expose().len(), 32);
    }
}
