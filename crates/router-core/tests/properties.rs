//! Properties of routing decisions against a reference model that works on upper-cased copies.

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use router_core::{
    AllowRule, DeadLetterReason, Decision, OutputTarget, Policy, ProducerToProcessor, Router,
    RoutingTable, map_borrowed, map_into_output, map_to_output,
};

const DESTINATIONS: [&str; 5] = ["FINANCE", "MARKETING", "LOGISTICS", "SALES", "HR"];
const SERVICE_TYPES: [&str; 3] = ["FINANCE", "MARKETING", "OPS"];
const SERVICE_IDS: [&str; 3] = ["svc-1", "svc-2", "Svc-1"];

/// One allow rule of the model: upper-case type (`None` = any), ids, destinations (`None` = all).
#[derive(Debug, Clone)]
struct ModelRule {
    origin_service_type: Option<&'static str>,
    origin_service_ids: Option<Vec<&'static str>>,
    destinations: Option<Vec<&'static str>>,
}

#[derive(Debug, Clone)]
struct Setup {
    destinations: Vec<&'static str>,
    rules: Vec<ModelRule>,
}

impl Setup {
    fn router(&self) -> Router {
        let table = RoutingTable::new(self.destinations.iter().map(|name| {
            let topic = format!("processor.to.{}", name.to_lowercase());
            (
                name.to_lowercase(),
                vec![OutputTarget::with_default_subject(topic)],
            )
        }))
        .expect("model destinations are distinct and valid");
        let rules = self
            .rules
            .iter()
            .map(|rule| {
                let destinations = rule.destinations.clone().unwrap_or_else(|| vec!["*"]);
                let built = AllowRule::new(rule.origin_service_type.unwrap_or("*"), destinations);
                match &rule.origin_service_ids {
                    Some(ids) => built.only_ids(ids.iter().copied()),
                    None => built,
                }
            })
            .collect();
        Router::new(table, Policy::deny_by_default(rules))
            .expect("model rules name only configured destinations")
    }

    /// The model: `None` for an unknown destination, else whether some rule allows the event.
    fn allows(&self, event: &ProducerToProcessor) -> Option<bool> {
        let destination = event.destination_service_type.trim().to_ascii_uppercase();
        let origin_type = event.origin_service_type.trim().to_ascii_uppercase();
        if !self.destinations.contains(&destination.as_str()) {
            return None;
        }
        Some(self.rules.iter().any(|rule| {
            rule.origin_service_type
                .is_none_or(|granted| granted == origin_type)
                && rule
                    .origin_service_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&event.origin_service_id.as_str()))
                && rule
                    .destinations
                    .as_ref()
                    .is_none_or(|names| names.contains(&destination.as_str()))
        }))
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    subsequence(DESTINATIONS.to_vec(), 1..=DESTINATIONS.len()).prop_flat_map(|destinations| {
        let rule = (
            proptest::option::of(select(SERVICE_TYPES.to_vec())),
            proptest::option::of(subsequence(SERVICE_IDS.to_vec(), 1..=SERVICE_IDS.len())),
            proptest::option::of(subsequence(destinations.clone(), 1..=destinations.len())),
        )
            .prop_map(|(origin_service_type, origin_service_ids, destinations)| {
                ModelRule {
                    origin_service_type,
                    origin_service_ids,
                    destinations,
                }
            });
        let rules = proptest::collection::vec(rule, 1..5);
        (Just(destinations), rules).prop_map(|(destinations, rules)| Setup {
            destinations,
            rules,
        })
    })
}

/// `name` with ASCII case flipped where `flips` says, and optional surrounding whitespace.
fn respelled(name: &str, flips: &[bool], padded: bool) -> String {
    let body: String = name
        .chars()
        .zip(flips.iter().chain(std::iter::repeat(&false)))
        .map(|(c, &flip)| if flip { c.to_ascii_lowercase() } else { c })
        .collect();
    if padded { format!(" {body}\t") } else { body }
}

fn event() -> impl Strategy<Value = ProducerToProcessor> {
    let names = DESTINATIONS
        .iter()
        .chain(["UNKNOWN"].iter())
        .copied()
        .collect::<Vec<_>>();
    (
        select(
            SERVICE_TYPES
                .iter()
                .chain(["NOBODY"].iter())
                .copied()
                .collect::<Vec<_>>(),
        ),
        proptest::collection::vec(any::<bool>(), 12),
        select(
            SERVICE_IDS
                .iter()
                .chain(["svc-9"].iter())
                .copied()
                .collect::<Vec<_>>(),
        ),
        select(names),
        proptest::collection::vec(any::<bool>(), 12),
        any::<bool>(),
    )
        .prop_map(
            |(origin_type, type_flips, origin_id, destination, flips, padded)| {
                ProducerToProcessor {
                    origin_service_id: origin_id.to_owned(),
                    origin_service_type: respelled(origin_type, &type_flips, false),
                    destination_service_type: respelled(destination, &flips, padded),
                    event_timestamp: 0,
                    payload: String::new(),
                }
            },
        )
}

proptest! {
    #[test]
    fn denied_event_never_routes(setup in setup(), events in proptest::collection::vec(event(), 1..20)) {
        let router = setup.router();
        for event in &events {
            if setup.allows(event) != Some(true) {
                let decision = router.decide(event);
                prop_assert!(!decision.is_route(), "{event:?} was routed: {decision:?}");
            }
        }
    }

    #[test]
    fn decision_agrees_with_reference_model(setup in setup(), events in proptest::collection::vec(event(), 1..20)) {
        let router = setup.router();
        for event in &events {
            let decision = router.decide(event);
            let destination = event.destination_service_type.trim().to_ascii_uppercase();
            match (setup.allows(event), decision) {
                (Some(true), Decision::Route(targets)) => {
                    let topic = format!("processor.to.{}", destination.to_lowercase());
                    prop_assert_eq!(targets, [OutputTarget::with_default_subject(topic)]);
                }
                (Some(false), Decision::DeadLetter(DeadLetterReason::Unauthorized { destination: reported, .. })) => {
                    prop_assert_eq!(reported, destination);
                }
                (None, Decision::DeadLetter(DeadLetterReason::UnknownDestination { destination: reported })) => {
                    prop_assert_eq!(reported, event.destination_service_type.clone());
                }
                (expected, decision) => {
                    prop_assert!(false, "{event:?}: model says {expected:?}, router says {decision:?}");
                }
            }
        }
    }

    #[test]
    fn lookup_agrees_with_a_linear_case_insensitive_scan(
        names in proptest::collection::btree_set("[a-zA-Z_ ]{1,8}", 1..30),
        probes in proptest::collection::vec("[a-zA-Zé_ ]{0,9}", 1..30),
    ) {
        let mut seen = std::collections::BTreeSet::new();
        let names: Vec<String> = names
            .into_iter()
            .filter(|name| !name.trim().is_empty() && seen.insert(name.trim().to_ascii_uppercase()))
            .collect();
        prop_assume!(!names.is_empty());
        let table = RoutingTable::new(names.iter().enumerate().map(|(n, name)| {
            (name.as_str(), vec![OutputTarget::with_default_subject(format!("t{n}"))])
        }))
        .unwrap();
        for probe in probes.iter().map(String::as_str).chain(names.iter().map(String::as_str)) {
            let expected = table.iter().find(|(name, _)| name.matches(probe)).map(|(_, outputs)| outputs);
            prop_assert_eq!(table.outputs(probe), expected, "probe {:?}", probe);
        }
    }

    #[test]
    fn version_ignores_destination_order(setup in setup(), rotation in 0usize..5) {
        let mut rotated = setup.clone();
        let by = rotation % rotated.destinations.len();
        rotated.destinations.rotate_left(by);
        rotated.rules.reverse();
        prop_assert_eq!(setup.router().version(), rotated.router().version());
    }

    #[test]
    fn moving_borrowing_and_cloning_mappings_agree(
        origin_service_id in ".{0,12}",
        origin_service_type in ".{0,12}",
        destination_service_type in "\\s{0,2}[a-zA-Z\u{e9}]{1,10}\\s{0,2}",
        event_timestamp in any::<i64>(),
        payload in ".{0,40}",
        processed_at in any::<i64>(),
    ) {
        let input = ProducerToProcessor {
            origin_service_id,
            origin_service_type,
            destination_service_type,
            event_timestamp,
            payload,
        };
        let cloned = map_to_output(&input, "processor-1", processed_at);
        prop_assert_eq!(&cloned.destination_type, &input.destination_service_type.trim().to_ascii_uppercase());
        let borrowed = map_borrowed(&input.borrowed(), "processor-1", processed_at);
        prop_assert_eq!(borrowed.to_owned_record(), cloned.clone());
        prop_assert_eq!(borrowed, cloned.borrowed());
        prop_assert_eq!(map_into_output(input, "processor-1", processed_at), cloned);
    }
}
