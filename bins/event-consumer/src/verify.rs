//! End-to-end verification of a producer manifest against what the output topics hold. Pure:
//! fed with observations, it answers whether every id arrived once on its destination's topic.
//!
//! - **missing**: a manifest id seen on no output topic (nor, with `accept_dead_lettered`, on
//!   the dead-letter topic);
//! - **duplicate**: every sighting of an id after its first (at-least-once delivery allows
//!   them, so they are reported but do not fail the verification);
//! - **misrouted**: a sighting of an id on a topic other than its destination's;
//! - **unexpected**: a record whose payload names no manifest id (earlier runs, other tenants).
//!
//! A manifest id with `expected_dead_letter` (the producer's spoofed events) must instead be on
//! the dead-letter topic with that reason: until then it is missing, and a sighting of it on any
//! output topic is misrouted (a spoofed event was routed).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::cli::DestinationTopics;
use crate::manifest::ManifestEntry;

/// How many examples each list of the report keeps.
pub(crate) const EXAMPLES: usize = 10;

/// Prefix of the producer's payloads; the event id follows it.
const PAYLOAD_PREFIX: &str = "dummy-payload ";

/// The event id in a payload written by `event-producer`.
pub(crate) fn payload_id(payload: &str) -> Option<&str> {
    payload
        .strip_prefix(PAYLOAD_PREFIX)
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

#[derive(Debug, Clone)]
struct Expected {
    /// Upper-cased, so manifests spelling a destination differently still group together.
    destination: String,
    topic: String,
    tenant: Option<String>,
    /// The reason it must be dead-lettered with, instead of routed.
    dead_letter: Option<String>,
}

/// Checks observations against a manifest.
#[derive(Debug)]
pub(crate) struct Verifier {
    /// Manifest order, for stable examples.
    order: Vec<String>,
    expected: HashMap<String, Expected>,
    accept_dead_lettered: bool,
    sightings: HashMap<String, u64>,
    received_on_destination: HashSet<String>,
    dead_lettered: HashSet<String>,
    /// Ids dead-lettered with the reason their manifest entry expects.
    dead_lettered_as_expected: HashSet<String>,
    duplicates: Examples<String>,
    misrouted: Examples<Misroute>,
    unexpected: u64,
    /// Ids accounted for (seen anywhere, or dead-lettered when that is accepted).
    resolved: HashSet<String>,
}

impl Verifier {
    pub(crate) fn new(
        manifest: &[ManifestEntry],
        topics: &DestinationTopics,
        accept_dead_lettered: bool,
    ) -> Self {
        let expected = manifest
            .iter()
            .map(|entry| {
                let tenant = match (&entry.tenant_type, &entry.tenant_id) {
                    (Some(service_type), Some(id)) => Some(format!("{service_type}:{id}")),
                    _ => None,
                };
                let expected = Expected {
                    destination: entry.destination.trim().to_uppercase(),
                    topic: topics.topic_of(&entry.destination),
                    tenant,
                    dead_letter: entry.expected_dead_letter.clone(),
                };
                (entry.id.clone(), expected)
            })
            .collect();
        Self {
            order: manifest.iter().map(|entry| entry.id.clone()).collect(),
            expected,
            accept_dead_lettered,
            sightings: HashMap::new(),
            received_on_destination: HashSet::new(),
            dead_lettered: HashSet::new(),
            dead_lettered_as_expected: HashSet::new(),
            duplicates: Examples::default(),
            misrouted: Examples::default(),
            unexpected: 0,
            resolved: HashSet::new(),
        }
    }

    /// Destinations of the manifest, each once.
    pub(crate) fn destinations(&self) -> impl Iterator<Item = &str> {
        let mut destinations: Vec<&str> = self
            .expected
            .values()
            .map(|expected| expected.destination.as_str())
            .collect();
        destinations.sort_unstable();
        destinations.dedup();
        destinations.into_iter()
    }

    /// A record with `payload` was read from output topic `topic`.
    pub(crate) fn observe(&mut self, topic: &str, payload: &str) {
        let Some(id) = payload_id(payload) else {
            self.unexpected += 1;
            return;
        };
        let Some(expected) = self.expected.get(id) else {
            self.unexpected += 1;
            return;
        };
        let sightings = self.sightings.entry(id.to_owned()).or_default();
        *sightings += 1;
        if *sightings > 1 {
            self.duplicates.push(id.to_owned());
        }
        if let Some(reason) = &expected.dead_letter {
            self.misrouted.push(Misroute {
                id: id.to_owned(),
                tenant: expected.tenant.clone(),
                destination: expected.destination.clone(),
                expected_topic: format!("the dead-letter topic ({reason})"),
                topic: topic.to_owned(),
            });
        } else if topic == expected.topic {
            self.received_on_destination.insert(id.to_owned());
        } else {
            self.misrouted.push(Misroute {
                id: id.to_owned(),
                tenant: expected.tenant.clone(),
                destination: expected.destination.clone(),
                expected_topic: expected.topic.clone(),
                topic: topic.to_owned(),
            });
        }
        self.resolved.insert(id.to_owned());
    }

    /// A dead-letter record of the event `id` (when its value could be read) was seen, with
    /// `reason` in its `dlq.reason` header.
    pub(crate) fn observe_dead_letter(&mut self, id: Option<&str>, reason: Option<&str>) {
        let Some((id, expected)) = id.and_then(|id| self.expected.get_key_value(id)) else {
            return;
        };
        self.dead_lettered.insert(id.clone());
        if expected.dead_letter.is_some() && expected.dead_letter.as_deref() == reason {
            self.dead_lettered_as_expected.insert(id.clone());
            self.resolved.insert(id.clone());
        } else if self.accept_dead_lettered {
            self.resolved.insert(id.clone());
        }
    }

    /// Every manifest id is accounted for: reading further cannot make anything less missing.
    pub(crate) fn complete(&self) -> bool {
        self.resolved.len() == self.expected.len()
    }

    pub(crate) fn report(&self) -> VerificationReport {
        let mut per_destination: BTreeMap<String, DestinationReport> = BTreeMap::new();
        let mut missing = Examples::default();
        let mut missing_dead_lettered = 0;
        for id in &self.order {
            let Some(expected) = self.expected.get(id) else {
                continue;
            };
            if expected.dead_letter.is_some() {
                if !self.resolved.contains(id) {
                    missing.push(id.clone());
                }
                continue;
            }
            let tally = per_destination
                .entry(expected.destination.clone())
                .or_insert_with(|| DestinationReport {
                    topic: expected.topic.clone(),
                    ..DestinationReport::default()
                });
            tally.expected += 1;
            if self.received_on_destination.contains(id) {
                tally.received += 1;
            } else {
                tally.missing += 1;
            }
            if !self.resolved.contains(id) {
                missing.push(id.clone());
                if self.dead_lettered.contains(id) {
                    missing_dead_lettered += 1;
                }
            }
        }
        let ok = missing.count == 0 && self.misrouted.count == 0;
        VerificationReport {
            ok,
            expected: u64::try_from(self.order.len()).unwrap_or(u64::MAX),
            received: u64::try_from(self.received_on_destination.len()).unwrap_or(u64::MAX),
            per_destination,
            missing,
            missing_dead_lettered,
            dead_lettered: u64::try_from(self.dead_lettered.len()).unwrap_or(u64::MAX),
            expected_dead_letters: u64::try_from(
                self.expected
                    .values()
                    .filter(|expected| expected.dead_letter.is_some())
                    .count(),
            )
            .unwrap_or(u64::MAX),
            dead_lettered_as_expected: u64::try_from(self.dead_lettered_as_expected.len())
                .unwrap_or(u64::MAX),
            duplicates: self.duplicates.clone(),
            misrouted: self.misrouted.clone(),
            unexpected: self.unexpected,
        }
    }
}

/// A count and its first few instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Examples<T> {
    pub(crate) count: u64,
    pub(crate) first: Vec<T>,
}

impl<T> Default for Examples<T> {
    fn default() -> Self {
        Self {
            count: 0,
            first: Vec::new(),
        }
    }
}

impl<T> Examples<T> {
    fn push(&mut self, example: T) {
        self.count += 1;
        if self.first.len() < EXAMPLES {
            self.first.push(example);
        }
    }
}

/// An id seen on a topic that is not its destination's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Misroute {
    pub(crate) id: String,
    /// `TYPE:ID` of the tenant, when the manifest says.
    pub(crate) tenant: Option<String>,
    pub(crate) destination: String,
    pub(crate) expected_topic: String,
    pub(crate) topic: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct DestinationReport {
    pub(crate) topic: String,
    pub(crate) expected: u64,
    /// Distinct ids seen on `topic`.
    pub(crate) received: u64,
    /// Ids not seen on `topic` (missing or misrouted).
    pub(crate) missing: u64,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct VerificationReport {
    /// Nothing missing and nothing misrouted.
    pub(crate) ok: bool,
    pub(crate) expected: u64,
    /// Distinct manifest ids seen on their destination's topic.
    pub(crate) received: u64,
    pub(crate) per_destination: BTreeMap<String, DestinationReport>,
    pub(crate) missing: Examples<String>,
    /// Missing ids that are on the dead-letter topic.
    pub(crate) missing_dead_lettered: u64,
    /// Manifest ids found on the dead-letter topic.
    pub(crate) dead_lettered: u64,
    /// Manifest ids that must be dead-lettered (`expected_dead_letter`)…
    pub(crate) expected_dead_letters: u64,
    /// …and those found there with the expected reason.
    pub(crate) dead_lettered_as_expected: u64,
    pub(crate) duplicates: Examples<String>,
    pub(crate) misrouted: Examples<Misroute>,
    pub(crate) unexpected: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, destination: &str) -> ManifestEntry {
        ManifestEntry {
            id: id.to_owned(),
            destination: destination.to_owned(),
            tenant_type: Some("FINANCE".to_owned()),
            tenant_id: Some("f-1".to_owned()),
            expected_dead_letter: None,
        }
    }

    #[test]
    fn an_event_expected_as_a_dead_letter_must_be_there_with_its_reason_and_nowhere_else() {
        let spoofed = |id: &str| ManifestEntry {
            expected_dead_letter: Some("unauthenticated".to_owned()),
            ..entry(id, "MARKETING")
        };
        let manifest = [
            entry("genuine", "MARKETING"),
            spoofed("s1"),
            spoofed("s2"),
            spoofed("s3"),
        ];
        let mut verifier = verifier(&manifest, false);
        verifier.observe("processor.to.marketing", &payload("genuine"));
        verifier.observe_dead_letter(Some("s1"), Some("unauthenticated"));
        verifier.observe_dead_letter(Some("s2"), Some("unauthorized"));
        verifier.observe("processor.to.marketing", &payload("s3"));
        let report = verifier.report();
        assert!(!report.ok);
        assert_eq!(report.expected_dead_letters, 3);
        assert_eq!(report.dead_lettered_as_expected, 1);
        assert_eq!(
            report.missing.first,
            ["s2"],
            "dead-lettered, but for another reason"
        );
        assert_eq!(report.misrouted.count, 1);
        assert_eq!(
            report.misrouted.first[0].id, "s3",
            "a spoofed event was routed"
        );
        assert_eq!(report.per_destination["MARKETING"].expected, 1);
    }

    fn verifier(entries: &[ManifestEntry], accept_dead_lettered: bool) -> Verifier {
        Verifier::new(entries, &DestinationTopics::default(), accept_dead_lettered)
    }

    fn payload(id: &str) -> String {
        format!("dummy-payload {id}")
    }

    #[test]
    fn every_id_on_its_destination_topic_verifies() {
        let mut verifier = verifier(&[entry("a", "FINANCE"), entry("b", "MARKETING")], false);
        assert!(!verifier.complete());
        verifier.observe("processor.to.finance", &payload("a"));
        verifier.observe("processor.to.marketing", &payload("b"));
        assert!(verifier.complete());
        let report = verifier.report();
        assert!(report.ok);
        assert_eq!(report.received, 2);
        assert_eq!(report.per_destination["FINANCE"].received, 1);
        assert_eq!(
            report.per_destination["MARKETING"].topic,
            "processor.to.marketing"
        );
    }

    #[test]
    fn an_id_never_seen_is_missing_and_fails() {
        let mut verifier = verifier(&[entry("a", "FINANCE"), entry("b", "FINANCE")], false);
        verifier.observe("processor.to.finance", &payload("a"));
        assert!(!verifier.complete());
        let report = verifier.report();
        assert!(!report.ok);
        assert_eq!(report.missing.count, 1);
        assert_eq!(report.missing.first, ["b"]);
        assert_eq!(report.per_destination["FINANCE"].missing, 1);
    }

    #[test]
    fn an_id_on_another_destinations_topic_is_misrouted_and_fails() {
        let mut verifier = verifier(&[entry("a", "FINANCE")], false);
        verifier.observe("processor.to.marketing", &payload("a"));
        assert!(verifier.complete(), "seen, although on the wrong topic");
        let report = verifier.report();
        assert!(!report.ok);
        assert_eq!(report.missing.count, 0);
        assert_eq!(report.misrouted.count, 1);
        assert_eq!(
            report.misrouted.first[0],
            Misroute {
                id: "a".to_owned(),
                tenant: Some("FINANCE:f-1".to_owned()),
                destination: "FINANCE".to_owned(),
                expected_topic: "processor.to.finance".to_owned(),
                topic: "processor.to.marketing".to_owned(),
            }
        );
        assert_eq!(report.per_destination["FINANCE"].received, 0);
    }

    #[test]
    fn duplicates_are_counted_but_do_not_fail() {
        let mut verifier = verifier(&[entry("a", "FINANCE")], false);
        for _ in 0..3 {
            verifier.observe("processor.to.finance", &payload("a"));
        }
        let report = verifier.report();
        assert!(report.ok);
        assert_eq!(report.duplicates.count, 2);
        assert_eq!(report.duplicates.first, ["a", "a"]);
        assert_eq!(report.per_destination["FINANCE"].received, 1);
    }

    #[test]
    fn records_of_other_runs_are_unexpected_not_failures() {
        let mut verifier = verifier(&[entry("a", "FINANCE")], false);
        verifier.observe("processor.to.finance", &payload("zzz"));
        verifier.observe("processor.to.finance", "something else entirely");
        verifier.observe("processor.to.finance", &payload("a"));
        let report = verifier.report();
        assert!(report.ok);
        assert_eq!(report.unexpected, 2);
    }

    #[test]
    fn destination_topic_mapping_decides_where_an_id_belongs() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "event-consumer",
            "--verify",
            "m",
            "--destination-topic",
            "FINANCE=ledger",
        ])
        .expect("flags");
        let settings = crate::cli::Settings::from_cli(cli).expect("settings");
        let mut verifier = Verifier::new(
            &[entry("a", "finance")],
            &settings.destination_topics,
            false,
        );
        verifier.observe("processor.to.finance", &payload("a"));
        assert_eq!(verifier.report().misrouted.count, 1);
        verifier.observe("ledger", &payload("a"));
        assert_eq!(verifier.report().per_destination["FINANCE"].received, 1);
    }

    #[test]
    fn dead_lettered_ids_stay_missing_unless_accepted() {
        let entries = [entry("a", "LOGISTICS")];
        let mut strict = verifier(&entries, false);
        strict.observe_dead_letter(Some("a"), Some("unauthorized"));
        let report = strict.report();
        assert!(!report.ok);
        assert_eq!(report.missing_dead_lettered, 1);
        assert_eq!(report.dead_lettered, 1);

        let mut lenient = verifier(&entries, true);
        lenient.observe_dead_letter(Some("a"), Some("unauthorized"));
        lenient.observe_dead_letter(None, None);
        assert!(lenient.complete());
        let report = lenient.report();
        assert!(report.ok);
        assert_eq!(report.missing.count, 0);
        assert_eq!(report.per_destination["LOGISTICS"].missing, 1);
    }

    #[test]
    fn examples_are_capped_but_counts_are_not() {
        let entries: Vec<ManifestEntry> = (0..25)
            .map(|i| entry(&format!("id-{i:02}"), "FINANCE"))
            .collect();
        let report = verifier(&entries, false).report();
        assert_eq!(report.missing.count, 25);
        assert_eq!(report.missing.first.len(), EXAMPLES);
        assert_eq!(report.missing.first[0], "id-00", "manifest order");
    }

    #[test]
    fn payload_id_is_the_text_after_the_prefix() {
        assert_eq!(
            payload_id("dummy-payload 00000000-0000-0000-0000-000000000000"),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(payload_id("dummy-payload "), None);
        assert_eq!(payload_id("other 123"), None);
    }
}
