//! The one error type of this crate: everything that can be wrong with a routing configuration.

/// Why a routing configuration was rejected.
///
/// Every variant carries the offending values as fields, and its message says what failed and
/// what to change. Routing decisions never fail; they return [`crate::Decision::DeadLetter`]
/// instead, so this type only appears when a configuration is built or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterConfigError {
    /// The prototype's `destination_configurations` JSON did not parse or had the wrong shape.
    #[error(
        "destination configuration JSON is invalid at line {line}, column {column}: {detail}; \
         expected an object like {{\"FINANCE\": {{\"output_topic\": \"processor.to.finance\", \
         \"output_subject\": \"processor.to.consumer-value\"}}}}"
    )]
    InvalidJson {
        /// 1-based line of the error in the JSON text.
        line: usize,
        /// 1-based column of the error in the JSON text.
        column: usize,
        /// What the JSON parser reported.
        detail: String,
    },

    /// The routing TOML did not parse or had the wrong shape (unknown keys are rejected too).
    #[error(
        "routing TOML is invalid{}: {detail}; see the router-core README for the format",
        location(*line, *column)
    )]
    InvalidToml {
        /// 1-based line of the error, when the parser could tell.
        line: Option<usize>,
        /// 1-based column of the error, when the parser could tell.
        column: Option<usize>,
        /// What the TOML parser reported.
        detail: String,
    },

    /// The routing TOML has no top-level `version` key.
    #[error("routing TOML has no `version`; add `version = {supported}` at the top of the file")]
    MissingVersion {
        /// The format version this crate reads.
        supported: u32,
    },

    /// The routing TOML declares a format version this crate does not read.
    #[error(
        "routing TOML declares `version = {found}`, but this router-core reads only version \
         {supported}; convert the file or upgrade router-core"
    )]
    UnsupportedVersion {
        /// The version the file declares.
        found: i64,
        /// The format version this crate reads.
        supported: u32,
    },

    /// The routing table has no destinations, so every event would be dead-lettered.
    #[error(
        "the routing table is empty, so every event would be dead-lettered; configure at least \
         one destination"
    )]
    EmptyRoutingTable,

    /// A destination name is empty, reserved, or contains control characters.
    #[error("destination name `{name}` {reason}; use a name such as `FINANCE`")]
    InvalidDestinationName {
        /// The name as written in the configuration.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Two destination entries are the same name once trimmed and upper-cased.
    #[error(
        "destinations `{first}` and `{second}` are both `{normalized}` once trimmed and \
         upper-cased; destination names match case-insensitively, so keep one entry and merge \
         their outputs"
    )]
    DuplicateDestination {
        /// The earlier entry, as written.
        first: String,
        /// The later entry, as written.
        second: String,
        /// The name both normalise to.
        normalized: String,
    },

    /// A destination has no outputs.
    #[error("destination `{destination}` has no outputs; give it at least one output topic")]
    NoOutputs {
        /// The destination, normalised.
        destination: String,
    },

    /// An output topic name breaks Kafka's topic naming rules.
    #[error(
        "output topic `{topic}` of destination `{destination}` is not a valid Kafka topic name: \
         {reason}; topic names are 1 to 249 characters of a-z, A-Z, 0-9, `.`, `_` and `-`, and \
         not `.` or `..`"
    )]
    InvalidTopicName {
        /// The destination, normalised.
        destination: String,
        /// The topic as written.
        topic: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// An output subject is empty or blank.
    #[error(
        "output subject `{subject}` of destination `{destination}` is blank; name the Schema \
         Registry subject of the output schema, e.g. `processor.to.consumer-value`, or omit it \
         to use that default"
    )]
    InvalidSubject {
        /// The destination, normalised.
        destination: String,
        /// The subject as written.
        subject: String,
    },

    /// One destination lists the same output topic twice, which would write each event twice.
    #[error(
        "destination `{destination}` lists output topic `{topic}` more than once, which would \
         write every event to it twice; remove the repeated output"
    )]
    DuplicateOutputTopic {
        /// The destination, normalised.
        destination: String,
        /// The repeated topic.
        topic: String,
    },

    /// Two outputs write the same topic under different subjects, so its records would carry
    /// schema ids of two subjects.
    #[error(
        "output topic `{topic}` is written with subject `{first_subject}` and with subject \
         `{second_subject}`; use one subject per topic"
    )]
    ConflictingSubjects {
        /// The topic written under two subjects.
        topic: String,
        /// The subject seen first.
        first_subject: String,
        /// The subject seen later.
        second_subject: String,
    },

    /// A policy rule names a destination the routing table does not have.
    #[error(
        "unknown destination `{destination}` in policy rule {rule_index}; known: {}; add it to \
         the routing table or fix the rule",
        known.join(", ")
    )]
    UnknownDestinationInPolicy {
        /// The destination as written in the rule.
        destination: String,
        /// 1-based position of the rule among the allow rules.
        rule_index: usize,
        /// Normalised names of the destinations the table has, sorted.
        known: Vec<String>,
    },

    /// A policy rule is malformed (blank service type, empty id or destination list, ...).
    #[error("policy rule {rule_index} is invalid: {reason}")]
    InvalidPolicyRule {
        /// 1-based position of the rule among the allow rules.
        rule_index: usize,
        /// What is wrong and what to do.
        reason: &'static str,
    },

    /// `mode = "allow-all"` together with allow rules: the rules would be silently ignored.
    #[error(
        "policy mode is allow-all, which ignores allow rules, but {rule_count} rule(s) are \
         configured; set `mode = \"deny-by-default\"` to enforce them or remove them"
    )]
    RulesWithAllowAll {
        /// How many allow rules were configured.
        rule_count: usize,
    },

    /// Deny-by-default without a single allow rule would dead-letter every event.
    #[error(
        "policy mode is deny-by-default (the default when [policy] is absent) and there are no \
         allow rules, so every event would be dead-lettered; add [[policy.allow]] rules or set \
         `mode = \"allow-all\"` under [policy]"
    )]
    NoAllowRules,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}
