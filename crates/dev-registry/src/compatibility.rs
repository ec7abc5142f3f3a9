//! Compatibility levels and the check a new version must pass before it is added to a subject.
//!
//! The rules are Confluent's: BACKWARD means the new schema can read data written with the latest
//! one, FORWARD the reverse, FULL both, and the `_TRANSITIVE` variants check against every version
//! instead of only the latest. Reading is Avro schema resolution as implemented by `apache-avro`.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

/// How a new schema version must relate to the versions already in its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum CompatibilityLevel {
    None,
    /// Confluent's default, kept here so that a schema change that would be refused in production
    /// is refused locally first.
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    const ALL: [Self; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Checks `candidate` against the existing versions of a subject, given oldest first.
    /// Returns one sentence per failed check; empty means the candidate may be registered.
    pub(crate) fn violations<'a>(
        self,
        candidate: &Schema,
        mut existing: impl DoubleEndedIterator<Item = (u32, &'a Schema)>,
    ) -> Vec<String> {
        let against: Vec<(u32, &Schema)> = if self.is_transitive() {
            existing.collect()
        } else {
            existing.next_back().into_iter().collect()
        };
        let mut violations = Vec::new();
        for (version, earlier) in against {
            if self.checks_backward()
                && let Err(reason) = fully_readable(earlier, candidate)
            {
                violations.push(format!(
                    "the new schema cannot read data written with version {version}: {reason}"
                ));
            }
            if self.checks_forward()
                && let Err(reason) = fully_readable(candidate, earlier)
            {
                violations.push(format!(
                    "version {version} cannot read data written with the new schema: {reason}"
                ));
            }
        }
        violations
    }
}

/// Confluent (like Java Avro) refuses a reader that can only read some of the writer's data, e.g.
/// a union missing one of the writer's branches; apache-avro calls that `Partial`, so only `Full`
/// passes.
fn fully_readable(writer: &Schema, reader: &Schema) -> Result<(), String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => {
            Err("only part of the data can be read (e.g. a union or enum misses a case)".to_owned())
        }
        Err(error) => Err(error.to_string()),
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Case-insensitive, as Confluent accepts `backward` as well as `BACKWARD`.
impl FromStr for CompatibilityLevel {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|level| level.name().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","fields":[{fields}]}}"#
        ))
        .expect("test schema parses")
    }

    #[test]
    fn parses_levels_case_insensitively() {
        assert_eq!(
            "backward_transitive".parse(),
            Ok(CompatibilityLevel::BackwardTransitive)
        );
        assert_eq!("NONE".parse(), Ok(CompatibilityLevel::None));
        assert_eq!("sideways".parse::<CompatibilityLevel>(), Err(()));
    }

    #[test]
    fn backward_allows_a_new_field_with_a_default_but_not_without() {
        let v1 = record(r#"{"name":"a","type":"string"}"#);
        let with_default =
            record(r#"{"name":"a","type":"string"},{"name":"b","type":"int","default":0}"#);
        let without_default = record(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        let level = CompatibilityLevel::Backward;
        assert!(
            level
                .violations(&with_default, [(1, &v1)].into_iter())
                .is_empty()
        );
        assert_eq!(
            level
                .violations(&without_default, [(1, &v1)].into_iter())
                .len(),
            1
        );
    }

    #[test]
    fn non_transitive_levels_check_only_the_latest_version() {
        let v1 = record(r#"{"name":"a","type":"string"}"#);
        let v2 = record(r#"{"name":"b","type":"string","default":""}"#);
        let v3 = record(r#"{"name":"b","type":"string"}"#);
        let history = [(1, &v1), (2, &v2)];
        assert!(
            CompatibilityLevel::Backward
                .violations(&v3, history.into_iter())
                .is_empty()
        );
        assert_eq!(
            CompatibilityLevel::BackwardTransitive
                .violations(&v3, history.into_iter())
                .len(),
            1
        );
    }

    #[test]
    fn forward_checks_that_old_readers_can_read_new_data() {
        let v1 = record(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        let dropped_b = record(r#"{"name":"a","type":"string"}"#);
        assert!(
            CompatibilityLevel::Backward
                .violations(&dropped_b, [(1, &v1)].into_iter())
                .is_empty()
        );
        assert_eq!(
            CompatibilityLevel::Forward
                .violations(&dropped_b, [(1, &v1)].into_iter())
                .len(),
            1
        );
        assert_eq!(
            CompatibilityLevel::Full
                .violations(&dropped_b, [(1, &v1)].into_iter())
                .len(),
            1
        );
    }

    #[test]
    fn none_accepts_anything() {
        let v1 = record(r#"{"name":"a","type":"string"}"#);
        let unrelated = Schema::Long;
        assert!(
            CompatibilityLevel::None
                .violations(&unrelated, [(1, &v1)].into_iter())
                .is_empty()
        );
    }
}
