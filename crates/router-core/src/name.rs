//! Destination names and how they compare.

use crate::RouterConfigError;
use std::fmt;

/// In policy rules, stands for every destination (`destinations = ["*"]`) or every service
/// type (`origin_service_type = "*"`). Reserved: it cannot name a destination.
pub const WILDCARD: &str = "*";

/// A destination name in canonical form: trimmed and ASCII upper-cased.
///
/// The prototype matched destination names case-sensitively, so events for `marketing` were
/// silently dropped while `MARKETING` was configured. Names in the routing table and the policy
/// are stored in this form, and lookups compare ASCII-case-insensitively against it. Non-ASCII
/// letters are kept as written and compare exactly: Unicode case folding depends on locale and
/// version, which a routing key must not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestinationName(Box<str>);

impl DestinationName {
    /// Normalises `raw`: trims whitespace and upper-cases ASCII letters.
    ///
    /// # Errors
    /// [`RouterConfigError::InvalidDestinationName`] when `raw` is blank, is the reserved
    /// [`WILDCARD`], or contains a control character.
    pub fn new(raw: &str) -> Result<Self, RouterConfigError> {
        let trimmed = raw.trim();
        let problem = if trimmed.is_empty() {
            Some("is blank")
        } else if trimmed == WILDCARD {
            Some("is reserved: `*` means \"every destination\" in policy rules")
        } else if trimmed.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(RouterConfigError::InvalidDestinationName {
                name: raw.to_owned(),
                reason,
            }),
            None => Ok(Self(trimmed.to_ascii_uppercase().into_boxed_str())),
        }
    }

    /// The canonical name, e.g. `MARKETING`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `raw`, as a producer wrote it, names this destination: surrounding whitespace is
    /// ignored and ASCII letters compare case-insensitively. Does not allocate.
    pub fn matches(&self, raw: &str) -> bool {
        self.0.eq_ignore_ascii_case(raw.trim())
    }
}

impl fmt::Display for DestinationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DestinationName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The canonical form of a name that compares case-insensitively: trimmed, ASCII upper-cased.
pub(crate) fn normalize(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

/// [`normalize`] reusing `raw`'s buffer: no allocation unless there is whitespace to trim.
pub(crate) fn normalize_owned(mut raw: String) -> String {
    let trimmed = raw.trim();
    if trimmed.len() != raw.len() {
        raw = trimmed.to_owned();
    }
    raw.make_ascii_uppercase();
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed_and_ascii_upper_cased() {
        let name = DestinationName::new("  Marketing\n").unwrap();
        assert_eq!(name.as_str(), "MARKETING");
        assert_eq!(name.to_string(), "MARKETING");
    }

    #[test]
    fn non_ascii_letters_are_kept_as_written() {
        assert_eq!(DestinationName::new("münchen").unwrap().as_str(), "MüNCHEN");
    }

    #[test]
    fn blank_wildcard_and_control_names_are_rejected() {
        for raw in ["", "   ", "*", " * ", "FIN\u{0}ANCE"] {
            let error = DestinationName::new(raw).unwrap_err();
            assert!(
                matches!(&error, RouterConfigError::InvalidDestinationName { name, .. } if name == raw),
                "{raw:?} gave {error:?}"
            );
        }
    }

    #[test]
    fn matches_ignores_case_and_surrounding_whitespace_only() {
        let name = DestinationName::new("FINANCE").unwrap();
        assert!(name.matches("finance"));
        assert!(name.matches(" FiNaNcE "));
        assert!(!name.matches("FINANCES"));
        assert!(!name.matches("FIN ANCE"));
    }

    #[test]
    fn owned_normalisation_agrees_with_borrowed() {
        for raw in ["marketing", " Marketing ", "MARKETING", "", "\tx"] {
            assert_eq!(normalize_owned(raw.to_owned()), normalize(raw));
        }
    }
}
