//! The routing table: destination name → output topics, with case-insensitive lookup.

use crate::RouterConfigError;
use crate::hash::folded_hash;
use crate::name::DestinationName;
use crate::ordered::Entries;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Schema Registry subject of the output schema when a configuration names none; the subject
/// the prototype registered `ProcessorToConsumer` under.
pub const DEFAULT_OUTPUT_SUBJECT: &str = "processor.to.consumer-value";

/// Longest topic name Kafka accepts.
const MAX_TOPIC_LEN: usize = 249;

/// One place a routed event is written: a Kafka topic, and the Schema Registry subject whose
/// schema id frames the value written there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutputTarget {
    /// Kafka topic the output record is produced to.
    pub topic: String,
    /// Schema Registry subject of the output schema for this topic.
    pub subject: String,
}

impl OutputTarget {
    /// An output to `topic` framed with the schema of `subject`.
    pub fn new(topic: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            subject: subject.into(),
        }
    }

    /// An output to `topic` under [`DEFAULT_OUTPUT_SUBJECT`].
    pub fn with_default_subject(topic: impl Into<String>) -> Self {
        Self::new(topic, DEFAULT_OUTPUT_SUBJECT)
    }
}

/// Validated map from destination names to their outputs. Immutable once built.
///
/// Guarantees, checked when it is built: at least one destination; names unique after
/// normalisation (see [`DestinationName`]); every destination has at least one output, no
/// topic twice; topic names follow Kafka's rules; subjects are not blank; a topic is written
/// under one subject only.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    destinations: Vec<Destination>,
    /// `(folded_hash(name), position in destinations)`, sorted: lookups hash the producer's
    /// name without allocating, binary-search, then confirm with a case-insensitive compare.
    index: Vec<(u64, usize)>,
}

#[derive(Debug, Clone)]
struct Destination {
    name: DestinationName,
    outputs: Vec<OutputTarget>,
}

impl RoutingTable {
    /// Builds a table from `(destination name, outputs)` pairs, in the order given.
    ///
    /// # Errors
    /// [`RouterConfigError::EmptyRoutingTable`], [`RouterConfigError::InvalidDestinationName`],
    /// [`RouterConfigError::DuplicateDestination`], [`RouterConfigError::NoOutputs`],
    /// [`RouterConfigError::InvalidTopicName`], [`RouterConfigError::InvalidSubject`],
    /// [`RouterConfigError::DuplicateOutputTopic`] or [`RouterConfigError::ConflictingSubjects`].
    pub fn new<I, N>(entries: I) -> Result<Self, RouterConfigError>
    where
        I: IntoIterator<Item = (N, Vec<OutputTarget>)>,
        N: AsRef<str>,
    {
        let mut destinations = Vec::new();
        let mut written_as: HashMap<DestinationName, String> = HashMap::new();
        for (raw, outputs) in entries {
            let raw = raw.as_ref();
            let name = DestinationName::new(raw)?;
            if let Some(first) = written_as.get(&name) {
                return Err(RouterConfigError::DuplicateDestination {
                    first: first.clone(),
                    second: raw.to_owned(),
                    normalized: name.as_str().to_owned(),
                });
            }
            check_outputs(&name, &outputs)?;
            written_as.insert(name.clone(), raw.to_owned());
            destinations.push(Destination { name, outputs });
        }
        if destinations.is_empty() {
            return Err(RouterConfigError::EmptyRoutingTable);
        }
        check_one_subject_per_topic(&destinations)?;
        let mut index: Vec<(u64, usize)> = destinations
            .iter()
            .enumerate()
            .map(|(position, destination)| (folded_hash(destination.name.as_str()), position))
            .collect();
        index.sort_unstable();
        Ok(Self {
            destinations,
            index,
        })
    }

    /// Reads the prototype's `-destination_configurations` JSON:
    /// `{"FINANCE": {"output_topic": "processor.to.finance", "output_subject": "processor.to.consumer-value"}, ...}`.
    ///
    /// Each destination gets exactly one output; a missing `output_subject` means
    /// [`DEFAULT_OUTPUT_SUBJECT`]. Other keys in an entry are ignored, as the prototype did.
    /// A name given twice (in any case) is an error rather than "last one wins".
    ///
    /// # Errors
    /// [`RouterConfigError::InvalidJson`] with the position of the problem, or any error of
    /// [`RoutingTable::new`].
    pub fn from_prototype_json(json: &str) -> Result<Self, RouterConfigError> {
        let entries: Entries<String, PrototypeOutput> =
            serde_json::from_str(json).map_err(|error| RouterConfigError::InvalidJson {
                line: error.line(),
                column: error.column(),
                detail: error.to_string(),
            })?;
        Self::new(entries.0.into_iter().map(|(name, output)| {
            let target = OutputTarget::new(output.output_topic, output.output_subject);
            (name, vec![target])
        }))
    }

    /// The outputs of the destination `destination` names, compared as [`DestinationName::matches`]
    /// does. Does not allocate.
    pub fn outputs(&self, destination: &str) -> Option<&[OutputTarget]> {
        self.position(destination)
            .map(|position| self.destinations[position].outputs.as_slice())
    }

    /// The canonical name of the destination `destination` names, if the table has it.
    pub fn resolve(&self, destination: &str) -> Option<&DestinationName> {
        self.position(destination)
            .map(|position| &self.destinations[position].name)
    }

    /// Destination names, in configuration order.
    pub fn destination_names(&self) -> impl ExactSizeIterator<Item = &DestinationName> {
        self.destinations
            .iter()
            .map(|destination| &destination.name)
    }

    /// Each destination with its outputs, in configuration order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&DestinationName, &[OutputTarget])> {
        self.destinations
            .iter()
            .map(|destination| (&destination.name, destination.outputs.as_slice()))
    }

    /// Every output of every destination, in configuration order. A topic that several
    /// destinations write appears once per destination.
    pub fn output_targets(&self) -> impl Iterator<Item = &OutputTarget> {
        self.destinations
            .iter()
            .flat_map(|destination| destination.outputs.iter())
    }

    /// The distinct output topics, sorted: what must exist before routing starts.
    pub fn output_topics(&self) -> BTreeSet<&str> {
        self.output_targets()
            .map(|target| target.topic.as_str())
            .collect()
    }

    /// Position of the destination `raw` names. The hot path of every routing decision.
    pub(crate) fn position(&self, raw: &str) -> Option<usize> {
        if self.destinations.len() <= crate::hash::EXACT_SCAN_MAX
            && let Some(position) = self
                .destinations
                .iter()
                .position(|destination| destination.name.as_str() == raw)
        {
            return Some(position);
        }
        let needle = crate::name::trim(raw);
        let hash = folded_hash(needle);
        let first = self.index.partition_point(|&(key, _)| key < hash);
        self.index[first..]
            .iter()
            .take_while(|&&(key, _)| key == hash)
            .map(|&(_, position)| position)
            .find(|&position| self.destinations[position].name.matches(needle))
    }

    /// The destination at `position`, which [`RoutingTable::position`] returned.
    pub(crate) fn entry(&self, position: usize) -> (&DestinationName, &[OutputTarget]) {
        let destination = &self.destinations[position];
        (&destination.name, &destination.outputs)
    }

    /// Position of a destination by its canonical name, for compiling policies.
    pub(crate) fn position_of(&self, name: &DestinationName) -> Option<usize> {
        self.position(name.as_str())
    }

    pub(crate) fn len(&self) -> usize {
        self.destinations.len()
    }

    /// Canonical names, sorted: the "known destinations" listed in error messages.
    pub(crate) fn sorted_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .destination_names()
            .map(|name| name.as_str().to_owned())
            .collect();
        names.sort_unstable();
        names
    }
}

/// One entry of the prototype's `destination_configurations` JSON.
#[derive(Debug, Deserialize)]
struct PrototypeOutput {
    output_topic: String,
    #[serde(default = "default_subject")]
    output_subject: String,
}

pub(crate) fn default_subject() -> String {
    DEFAULT_OUTPUT_SUBJECT.to_owned()
}

fn check_outputs(
    name: &DestinationName,
    outputs: &[OutputTarget],
) -> Result<(), RouterConfigError> {
    if outputs.is_empty() {
        return Err(RouterConfigError::NoOutputs {
            destination: name.as_str().to_owned(),
        });
    }
    for (position, output) in outputs.iter().enumerate() {
        if let Err(reason) = check_topic_name(&output.topic) {
            return Err(RouterConfigError::InvalidTopicName {
                destination: name.as_str().to_owned(),
                topic: output.topic.clone(),
                reason,
            });
        }
        if output.subject.trim().is_empty() {
            return Err(RouterConfigError::InvalidSubject {
                destination: name.as_str().to_owned(),
                subject: output.subject.clone(),
            });
        }
        if outputs[..position]
            .iter()
            .any(|earlier| earlier.topic == output.topic)
        {
            return Err(RouterConfigError::DuplicateOutputTopic {
                destination: name.as_str().to_owned(),
                topic: output.topic.clone(),
            });
        }
    }
    Ok(())
}

/// Kafka's topic naming rules (`org.apache.kafka.common.internals.Topic.validate`).
fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("it is empty".to_owned());
    }
    if topic == "." || topic == ".." {
        return Err("`.` and `..` are reserved".to_owned());
    }
    let length = topic.chars().count();
    if length > MAX_TOPIC_LEN {
        return Err(format!("it is {length} characters long"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    match topic.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(format!("it contains {c:?}")),
        None => Ok(()),
    }
}

/// Output records are framed with their subject's schema id; one topic written under two
/// subjects would carry records of two schema lineages, and a consumer of that topic could not
/// tell which subject to evolve.
fn check_one_subject_per_topic(destinations: &[Destination]) -> Result<(), RouterConfigError> {
    let mut subjects: HashMap<&str, &str> = HashMap::new();
    for output in destinations
        .iter()
        .flat_map(|destination| &destination.outputs)
    {
        match subjects.get(output.topic.as_str()) {
            Some(&first) if first != output.subject => {
                return Err(RouterConfigError::ConflictingSubjects {
                    topic: output.topic.clone(),
                    first_subject: first.to_owned(),
                    second_subject: output.subject.clone(),
                });
            }
            Some(_) => {}
            None => {
                subjects.insert(&output.topic, &output.subject);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(names: &[&str]) -> RoutingTable {
        RoutingTable::new(names.iter().map(|name| {
            let topic = format!("processor.to.{}", name.trim().to_lowercase());
            (*name, vec![OutputTarget::with_default_subject(topic)])
        }))
        .unwrap()
    }

    #[test]
    fn lookup_finds_each_destination_in_any_case() {
        let table = table(&["FINANCE", "marketing", "Logistics"]);
        for (raw, topic) in [
            ("finance", "processor.to.finance"),
            ("MARKETING", "processor.to.marketing"),
            (" logistics ", "processor.to.logistics"),
        ] {
            assert_eq!(table.outputs(raw).unwrap()[0].topic, topic, "{raw}");
        }
        assert_eq!(table.outputs("SALES"), None);
        assert_eq!(table.resolve("Marketing").unwrap().as_str(), "MARKETING");
    }

    #[test]
    fn lookup_agrees_below_and_above_the_exact_scan_limit() {
        for count in [
            1,
            crate::hash::EXACT_SCAN_MAX,
            crate::hash::EXACT_SCAN_MAX + 1,
            40,
        ] {
            let names: Vec<String> = (0..count).map(|index| format!("DEST{index}")).collect();
            let table = table(&names.iter().map(String::as_str).collect::<Vec<_>>());
            for (position, name) in names.iter().enumerate() {
                let folded = format!(" {} ", name.to_lowercase());
                assert_eq!(table.position(name), Some(position), "{name} of {count}");
                assert_eq!(
                    table.position(&folded),
                    Some(position),
                    "{folded} of {count}"
                );
            }
            assert_eq!(table.position("DEST"), None, "of {count}");
        }
    }

    #[test]
    fn lookup_confirms_names_after_hash_match() {
        let table = table(&["A"]);
        // Forge an index entry whose hash matches "B" but points at "A".
        let forged = RoutingTable {
            index: vec![(folded_hash("B"), 0)],
            ..table
        };
        assert_eq!(forged.position("B"), None);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        let longest = "t".repeat(249);
        for valid in ["a", "processor.to.finance", "A_b-C.9", longest.as_str()] {
            assert_eq!(check_topic_name(valid), Ok(()), "{valid}");
        }
        let too_long = "t".repeat(250);
        for invalid in [
            "",
            ".",
            "..",
            "with space",
            "slash/topic",
            "ü",
            too_long.as_str(),
        ] {
            assert!(check_topic_name(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn invalid_topic_error_names_destination_topic_and_rule() {
        let error = RoutingTable::new([(
            "finance",
            vec![OutputTarget::with_default_subject("bad topic")],
        )])
        .unwrap_err();
        assert_eq!(
            error,
            RouterConfigError::InvalidTopicName {
                destination: "FINANCE".to_owned(),
                topic: "bad topic".to_owned(),
                reason: "it contains ' '".to_owned(),
            }
        );
    }

    #[test]
    fn destination_without_outputs_is_rejected() {
        let error = RoutingTable::new([("FINANCE", vec![])]).unwrap_err();
        assert!(
            matches!(error, RouterConfigError::NoOutputs { destination } if destination == "FINANCE")
        );
    }

    #[test]
    fn blank_subject_is_rejected() {
        let error =
            RoutingTable::new([("FINANCE", vec![OutputTarget::new("t", " ")])]).unwrap_err();
        assert!(
            matches!(error, RouterConfigError::InvalidSubject { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn repeated_topic_within_a_destination_is_rejected() {
        let outputs = vec![
            OutputTarget::with_default_subject("t"),
            OutputTarget::with_default_subject("t"),
        ];
        let error = RoutingTable::new([("FINANCE", outputs)]).unwrap_err();
        assert!(
            matches!(error, RouterConfigError::DuplicateOutputTopic { topic, .. } if topic == "t")
        );
    }

    #[test]
    fn topic_shared_by_destinations_must_share_its_subject() {
        let same = RoutingTable::new([
            ("A", vec![OutputTarget::new("shared", "s")]),
            ("B", vec![OutputTarget::new("shared", "s")]),
        ]);
        assert!(same.is_ok());
        let error = RoutingTable::new([
            ("A", vec![OutputTarget::new("shared", "s1")]),
            ("B", vec![OutputTarget::new("shared", "s2")]),
        ])
        .unwrap_err();
        assert_eq!(
            error,
            RouterConfigError::ConflictingSubjects {
                topic: "shared".to_owned(),
                first_subject: "s1".to_owned(),
                second_subject: "s2".to_owned(),
            }
        );
    }

    #[test]
    fn output_topics_are_distinct_and_sorted() {
        let table = RoutingTable::new([
            (
                "B",
                vec![
                    OutputTarget::with_default_subject("z"),
                    OutputTarget::with_default_subject("a"),
                ],
            ),
            ("A", vec![OutputTarget::with_default_subject("a")]),
        ])
        .unwrap();
        assert_eq!(
            table.output_topics().into_iter().collect::<Vec<_>>(),
            ["a", "z"]
        );
        assert_eq!(table.output_targets().count(), 3);
    }

    #[test]
    fn prototype_json_without_subject_uses_the_default() {
        let table =
            RoutingTable::from_prototype_json(r#"{"FINANCE": {"output_topic": "f"}}"#).unwrap();
        assert_eq!(
            table.outputs("FINANCE").unwrap(),
            [OutputTarget::new("f", DEFAULT_OUTPUT_SUBJECT)]
        );
    }

    #[test]
    fn prototype_json_syntax_error_reports_its_position() {
        let error = RoutingTable::from_prototype_json("{\n  \"FINANCE\": {\"output_topic\": }\n}")
            .unwrap_err();
        assert!(
            matches!(error, RouterConfigError::InvalidJson { line: 2, column, .. } if column > 1),
            "{error:?}"
        );
    }

    #[test]
    fn prototype_json_that_is_not_an_object_is_rejected() {
        let error = RoutingTable::from_prototype_json(r#"["FINANCE"]"#).unwrap_err();
        assert!(
            matches!(error, RouterConfigError::InvalidJson { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn prototype_json_repeating_a_key_is_rejected_not_overwritten() {
        let json = r#"{"FINANCE": {"output_topic": "a"}, "FINANCE": {"output_topic": "b"}}"#;
        let error = RoutingTable::from_prototype_json(json).unwrap_err();
        assert!(
            matches!(error, RouterConfigError::DuplicateDestination { .. }),
            "{error:?}"
        );
    }
}
