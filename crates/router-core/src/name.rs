//! Destination names and how they compare.

use crate::RouterConfigError;
use std::borrow::Cow;
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
        // The exact spelling first: producers nearly always use the canonical name.
        *self.0 == *raw || self.0.eq_ignore_ascii_case(trim(raw))
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
    trim(raw).to_ascii_uppercase()
}

/// `str::trim`, skipping its Unicode scan when both ends are visible ASCII, as they nearly
/// always are: a name starting and ending with such a byte has no whitespace to trim (every
/// Unicode whitespace character other than ASCII's is encoded with non-ASCII bytes).
#[inline]
pub(crate) fn trim(raw: &str) -> &str {
    let visible_ascii = |byte: &u8| byte.is_ascii() && !matches!(byte, b'\t'..=b'\r' | b' ');
    match (raw.as_bytes().first(), raw.as_bytes().last()) {
        (Some(first), Some(last)) if visible_ascii(first) && visible_ascii(last) => raw,
        _ => raw.trim(),
    }
}

/// [`normalize`] without allocating when `raw` is already normalised (the producers' usual
/// spelling).
pub(crate) fn normalize_borrowed(raw: &str) -> Cow<'_, str> {
    let trimmed = trim(raw);
    if trimmed.len() == raw.len() && !raw.bytes().any(|byte| byte.is_ascii_lowercase()) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(trimmed.to_ascii_uppercase())
    }
}

/// [`normalize`] reusing `raw`'s buffer: no allocation unless there is whitespace to trim.
pub(crate) fn normalize_owned(mut raw: String) -> String {
    let trimmed = trim(&raw);
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
            assert_eq!(normalize_borrowed(raw), normalize(raw));
        }
        assert!(matches!(normalize_borrowed("MARKETING"), Cow::Borrowed(_)));
    }

    #[test]
    fn fast_trim_agrees_with_str_trim() {
        let samples = [
            "",
            " ",
            "x",
            " x",
            "x ",
            "\u{0b}x\u{0c}",
            "\u{a0}FINANCE",
            "FINANCE\u{2003}",
            "\u{85}x",
            "é",
            "a b",
            "\u{1f}x\u{1c}",
            "\r\nMARKETING\t",
        ];
        for raw in samples {
            assert_eq!(trim(raw), raw.trim(), "{raw:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_trim_agrees_with_str_trim_on_any_text(raw in "\\PC{0,3}[\\s\\x00-\\x7f]{0,3}\\PC{0,3}") {
            proptest::prop_assert_eq!(trim(&raw), raw.trim());
        }
    }
}
