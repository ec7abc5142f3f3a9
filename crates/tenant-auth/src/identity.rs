//! Who a tenant service instance is, and how identities compare.

use std::fmt;

use crate::TenantAuthError;

/// Longest identity header (`SERVICE_TYPE:SERVICE_ID`) accepted; service types and ids are short
/// names. [`TenantIdentity::new`] refuses longer ones, so a signer never signs what the verifier
/// refuses to read.
pub(crate) const MAX_IDENTITY_LEN: usize = 1024;

/// A tenant service instance: its service type (e.g. `FINANCE`) and service id.
///
/// Compared like the tenant policy compares them: service types ASCII-case-insensitively after
/// trimming, service ids exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantIdentity {
    /// The service type, e.g. `FINANCE`.
    pub service_type: String,
    /// The service id, e.g. `producer-1`.
    pub service_id: String,
}

impl TenantIdentity {
    /// An identity that can be signed: a non-blank service type without `:` or control
    /// characters (the identity header is `TYPE:ID`, split at the first `:`), and a non-empty
    /// service id without control characters; `TYPE:ID` at most 1024 bytes (the verifier's
    /// limit).
    ///
    /// # Errors
    /// [`TenantAuthError::InvalidIdentity`] naming what is wrong.
    pub fn new(
        service_type: impl Into<String>,
        service_id: impl Into<String>,
    ) -> Result<Self, TenantAuthError> {
        let identity = Self {
            service_type: service_type.into(),
            service_id: service_id.into(),
        };
        let problem = if identity.service_type.trim().is_empty() {
            Some("the service type is blank")
        } else if identity.service_type.contains(':') {
            Some(
                "the service type contains `:`, which separates type and id in the identity header",
            )
        } else if identity.service_id.is_empty() {
            Some("the service id is empty")
        } else if identity.service_type.len() + 1 + identity.service_id.len() > MAX_IDENTITY_LEN {
            Some("is longer than 1024 bytes as `SERVICE_TYPE:SERVICE_ID`")
        } else if identity.service_type.chars().any(char::is_control)
            || identity.service_id.chars().any(char::is_control)
        {
            Some("contains a control character")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(TenantAuthError::InvalidIdentity {
                service_type: identity.service_type,
                service_id: identity.service_id,
                problem,
            }),
            None => Ok(identity),
        }
    }

    /// Whether this identity is the service type and id an event claims.
    pub fn is(&self, claimed_service_type: &str, claimed_service_id: &str) -> bool {
        same_service_type(&self.service_type, claimed_service_type)
            && self.service_id == claimed_service_id
    }
}

impl fmt::Display for TenantIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service_type, self.service_id)
    }
}

/// Service types compare as the tenant policy compares them: trimmed, ASCII-case-insensitively.
pub(crate) fn same_service_type(left: &str, right: &str) -> bool {
    left == right || left.trim().eq_ignore_ascii_case(right.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_types_compare_case_insensitively_and_ids_exactly() {
        let identity = TenantIdentity::new("FINANCE", "f-1").expect("valid");
        assert!(identity.is("finance", "f-1"));
        assert!(identity.is(" Finance ", "f-1"));
        assert!(!identity.is("FINANCE", "F-1"));
        assert!(!identity.is("MARKETING", "f-1"));
    }

    #[test]
    fn a_colon_in_the_service_type_is_refused_but_allowed_in_the_id() {
        assert!(TenantIdentity::new("FIN:ANCE", "f-1").is_err());
        assert!(TenantIdentity::new("FINANCE", "eu:1").is_ok());
        assert!(TenantIdentity::new(" ", "f-1").is_err());
        assert!(TenantIdentity::new("FINANCE", "").is_err());
    }
}
