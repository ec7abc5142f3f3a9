//! Routing behaviour through the public API.

use router_core::{
    AllowRule, DEFAULT_OUTPUT_SUBJECT, DeadLetterReason, Decision, OutputTarget, Policy,
    ProcessorToConsumer, ProducerToProcessor, Router, RouterConfig, RouterConfigError,
    RoutingTable, map_into_output, map_to_output,
};
use std::sync::Arc;

/// `-destination_configurations` exactly as in the prototype's README (shell quoting removed).
const SEED_JSON: &str = r#"{"FINANCE": {"output_topic": "processor.to.finance", "output_subject": "processor.to.consumer-value"}, "MARKETING": {"output_topic": "processor.to.marketing", "output_subject": "processor.to.consumer-value"}, "LOGISTICS": {"output_topic": "processor.to.logistics", "output_subject": "processor.to.consumer-value"}}"#;

const TOML: &str = r#"
version = 1

[destinations.FINANCE]
outputs = [{ topic = "processor.to.finance", subject = "processor.to.consumer-value" }]

[destinations.MARKETING]
outputs = [{ topic = "processor.to.marketing" }]

[destinations.LOGISTICS]
outputs = [
    { topic = "processor.to.logistics" },
    { topic = "processor.to.logistics.audit" },
]

[policy]
mode = "deny-by-default"

[[policy.allow]]
origin_service_type = "FINANCE"
origin_service_ids = ["svc-1", "svc-2"]
destinations = ["MARKETING", "LOGISTICS"]

[[policy.allow]]
origin_service_type = "MARKETING"
destinations = ["*"]
"#;

fn event(origin_type: &str, origin_id: &str, destination: &str) -> ProducerToProcessor {
    ProducerToProcessor {
        origin_service_id: origin_id.to_owned(),
        origin_service_type: origin_type.to_owned(),
        destination_service_type: destination.to_owned(),
        event_timestamp: 1_650_000_000_000,
        payload: "dummy-payload 00000000-0000-0000-0000-000000000000".to_owned(),
    }
}

fn topics<'a>(decision: &Decision<'a>) -> Vec<&'a str> {
    decision
        .targets()
        .unwrap_or_else(|| panic!("expected a route, got {decision:?}"))
        .iter()
        .map(|target| target.topic.as_str())
        .collect()
}

#[test]
fn prototype_json_loads_seed_configuration() {
    let router = Router::from_prototype_json(SEED_JSON).unwrap();

    let names: Vec<&str> = router.destinations().map(|name| name.as_str()).collect();
    assert_eq!(names, ["FINANCE", "MARKETING", "LOGISTICS"]);
    for (destination, topic) in [
        ("FINANCE", "processor.to.finance"),
        ("MARKETING", "processor.to.marketing"),
        ("LOGISTICS", "processor.to.logistics"),
    ] {
        assert_eq!(
            router.outputs(destination).unwrap(),
            [OutputTarget::new(topic, "processor.to.consumer-value")]
        );
    }
    assert_eq!(
        router.output_topics().into_iter().collect::<Vec<_>>(),
        [
            "processor.to.finance",
            "processor.to.logistics",
            "processor.to.marketing"
        ]
    );
    assert_eq!(router.policy(), &Policy::AllowAll);
}

#[test]
fn toml_destinations_keep_document_order() {
    let router = Router::from_toml_str(TOML).unwrap();
    let names: Vec<&str> = router.destinations().map(|name| name.as_str()).collect();
    assert_eq!(names, ["FINANCE", "MARKETING", "LOGISTICS"]);
}

#[test]
fn destination_matches_case_insensitively() {
    // The prototype's own README sends to `marketing` while configuring `MARKETING`.
    let router = Router::from_prototype_json(SEED_JSON).unwrap();
    for spelling in ["MARKETING", "marketing", "Marketing", " marketing\t"] {
        let decision = router.decide(&event("financial", "123456", spelling));
        assert_eq!(
            topics(&decision),
            ["processor.to.marketing"],
            "{spelling:?}"
        );
    }
}

#[test]
fn unknown_destination_goes_to_dead_letter() {
    let router = Router::from_prototype_json(SEED_JSON).unwrap();
    let decision = router.decide(&event("FINANCE", "svc-1", "Sales"));
    let Decision::DeadLetter(reason) = decision else {
        panic!("expected dead letter, got {decision:?}");
    };
    assert_eq!(reason.code().as_str(), "unknown-destination");
    assert_eq!(
        reason,
        DeadLetterReason::UnknownDestination {
            destination: "Sales".to_owned()
        }
    );
}

#[test]
fn unknown_destination_is_reported_even_when_the_sender_has_no_rights() {
    let router = Router::from_toml_str(TOML).unwrap();
    let decision = router.decide(&event("NOBODY", "x", "SALES"));
    assert!(
        matches!(
            decision,
            Decision::DeadLetter(DeadLetterReason::UnknownDestination { .. })
        ),
        "{decision:?}"
    );
}

#[test]
fn deny_by_default_blocks_unlisted_tenant() {
    let router = Router::from_toml_str(TOML).unwrap();
    let decision = router.decide(&event("logistics", "svc-1", "marketing"));
    assert_eq!(
        decision,
        Decision::DeadLetter(DeadLetterReason::Unauthorized {
            origin_service_type: "logistics".to_owned(),
            origin_service_id: "svc-1".to_owned(),
            destination: "MARKETING".to_owned(),
        })
    );
    let Decision::DeadLetter(reason) = decision else {
        unreachable!()
    };
    assert_eq!(reason.code().as_str(), "unauthorized");
}

#[test]
fn deny_by_default_blocks_destinations_the_rule_does_not_list() {
    let router = Router::from_toml_str(TOML).unwrap();
    let decision = router.decide(&event("FINANCE", "svc-1", "FINANCE"));
    assert!(!decision.is_route(), "{decision:?}");
}

#[test]
fn allow_rule_restricted_to_ids_blocks_other_ids() {
    let router = Router::from_toml_str(TOML).unwrap();
    for allowed in ["svc-1", "svc-2"] {
        let decision = router.decide(&event("finance", allowed, "MARKETING"));
        assert_eq!(topics(&decision), ["processor.to.marketing"], "{allowed}");
    }
    for other in ["svc-3", "SVC-1", "svc-1 ", ""] {
        let decision = router.decide(&event("FINANCE", other, "MARKETING"));
        assert!(
            matches!(
                decision,
                Decision::DeadLetter(DeadLetterReason::Unauthorized { .. })
            ),
            "{other:?} gave {decision:?}"
        );
    }
}

#[test]
fn wildcard_rule_allows_every_destination() {
    let router = Router::from_toml_str(TOML).unwrap();
    for destination in ["FINANCE", "MARKETING", "LOGISTICS"] {
        let decision = router.decide(&event("MARKETING", "any-id", destination));
        assert!(decision.is_route(), "{destination}: {decision:?}");
    }
}

#[test]
fn allow_all_mode_routes_every_known_destination() {
    let toml = r#"
        version = 1
        [destinations.FINANCE]
        outputs = [{ topic = "processor.to.finance" }]
        [destinations.MARKETING]
        outputs = [{ topic = "processor.to.marketing" }]
        [policy]
        mode = "allow-all"
    "#;
    let router = Router::from_toml_str(toml).unwrap();
    for (origin_type, origin_id) in [("FINANCE", "svc-1"), ("UNHEARD-OF", ""), ("", "x")] {
        for destination in ["FINANCE", "MARKETING"] {
            let decision = router.decide(&event(origin_type, origin_id, destination));
            assert!(
                decision.is_route(),
                "{origin_type}/{origin_id} → {destination}"
            );
        }
    }
    assert!(
        !router
            .decide(&event("FINANCE", "svc-1", "SALES"))
            .is_route()
    );
}

#[test]
fn fan_out_routes_to_every_output() {
    let router = Router::from_toml_str(TOML).unwrap();
    let decision = router.decide(&event("FINANCE", "svc-2", "Logistics"));
    assert_eq!(
        decision.targets().unwrap(),
        [
            OutputTarget::with_default_subject("processor.to.logistics"),
            OutputTarget::with_default_subject("processor.to.logistics.audit"),
        ]
    );
}

#[test]
fn policy_rule_naming_unknown_destination_is_rejected() {
    let toml = TOML.replace(
        "destinations = [\"*\"]",
        "destinations = [\"MARKETING\", \"SALES\"]",
    );
    let error = Router::from_toml_str(&toml).unwrap_err();
    assert_eq!(
        error,
        RouterConfigError::UnknownDestinationInPolicy {
            destination: "SALES".to_owned(),
            rule_index: 2,
            known: vec![
                "FINANCE".to_owned(),
                "LOGISTICS".to_owned(),
                "MARKETING".to_owned()
            ],
        }
    );
    assert!(
        error.to_string().starts_with(
            "unknown destination `SALES` in policy rule 2; known: FINANCE, LOGISTICS, MARKETING"
        ),
        "{error}"
    );
}

#[test]
fn colliding_destination_names_are_rejected() {
    let json = r#"{"FINANCE": {"output_topic": "a"}, " finance": {"output_topic": "b"}}"#;
    let error = RoutingTable::from_prototype_json(json).unwrap_err();
    assert_eq!(
        error,
        RouterConfigError::DuplicateDestination {
            first: "FINANCE".to_owned(),
            second: " finance".to_owned(),
            normalized: "FINANCE".to_owned(),
        }
    );
    assert!(
        error.to_string().contains("`FINANCE` and ` finance`"),
        "{error}"
    );

    let toml = "version = 1\n[destinations.Finance]\noutputs = [{ topic = \"a\" }]\n\
                [destinations.FINANCE]\noutputs = [{ topic = \"b\" }]\n[policy]\nmode = \"allow-all\"\n";
    let error = Router::from_toml_str(toml).unwrap_err();
    assert!(
        matches!(&error, RouterConfigError::DuplicateDestination { first, second, .. }
            if first == "Finance" && second == "FINANCE"),
        "{error:?}"
    );
}

#[test]
fn empty_routing_table_is_rejected() {
    assert_eq!(
        Router::from_prototype_json("{}").unwrap_err(),
        RouterConfigError::EmptyRoutingTable
    );
    assert_eq!(
        Router::from_toml_str("version = 1\n[destinations]\n[policy]\nmode = \"allow-all\"\n")
            .unwrap_err(),
        RouterConfigError::EmptyRoutingTable
    );
}

#[test]
fn invalid_topic_name_in_toml_is_rejected() {
    let toml = TOML.replace("processor.to.marketing", "processor/to/marketing");
    let error = Router::from_toml_str(&toml).unwrap_err();
    assert!(
        matches!(&error, RouterConfigError::InvalidTopicName { destination, topic, .. }
            if destination == "MARKETING" && topic == "processor/to/marketing"),
        "{error:?}"
    );
}

#[test]
fn prototype_json_and_equivalent_toml_have_the_same_version() {
    let toml = r#"
        version = 1
        [destinations.LOGISTICS]
        outputs = [{ topic = "processor.to.logistics" }]
        [destinations.finance]
        outputs = [{ topic = "processor.to.finance", subject = "processor.to.consumer-value" }]
        [destinations.Marketing]
        outputs = [{ topic = "processor.to.marketing" }]
        [policy]
        mode = "allow-all"
    "#;
    let from_json = Router::from_prototype_json(SEED_JSON).unwrap();
    let from_toml = Router::from_toml_str(toml).unwrap();
    assert_eq!(from_json.version(), from_toml.version());
    assert_ne!(
        from_json.version(),
        Router::from_toml_str(TOML).unwrap().version()
    );
}

#[test]
fn router_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Router>();
    assert_send_sync::<RouterConfig>();
    assert_send_sync::<DeadLetterReason>();

    let router = Arc::new(Router::from_prototype_json(SEED_JSON).unwrap());
    let handles: Vec<_> = ["finance", "marketing"]
        .into_iter()
        .map(|destination| {
            let router = Arc::clone(&router);
            std::thread::spawn(move || router.decide(&event("X", "y", destination)).is_route())
        })
        .collect();
    for handle in handles {
        assert!(handle.join().unwrap());
    }
}

#[test]
fn programmatic_configuration_matches_toml() {
    let table = RoutingTable::new([
        (
            "FINANCE",
            vec![OutputTarget::new(
                "processor.to.finance",
                DEFAULT_OUTPUT_SUBJECT,
            )],
        ),
        (
            "MARKETING",
            vec![OutputTarget::with_default_subject("processor.to.marketing")],
        ),
        (
            "LOGISTICS",
            vec![
                OutputTarget::with_default_subject("processor.to.logistics"),
                OutputTarget::with_default_subject("processor.to.logistics.audit"),
            ],
        ),
    ])
    .unwrap();
    let policy = Policy::deny_by_default(vec![
        AllowRule::new("FINANCE", ["MARKETING", "LOGISTICS"]).only_ids(["svc-1", "svc-2"]),
        AllowRule::new("MARKETING", ["*"]),
    ]);
    let built = Router::new(table, policy).unwrap();
    let loaded = Router::from_toml_str(TOML).unwrap();
    assert_eq!(built.version(), loaded.version());
    assert_eq!(built.policy(), loaded.policy());
}

#[test]
fn mapping_copies_fields_per_wire_contract() {
    // The golden vectors of the wire contract: this input maps to this output.
    let input = ProducerToProcessor {
        origin_service_id: "producer-1".to_owned(),
        origin_service_type: "FINANCE".to_owned(),
        destination_service_type: "MARKETING".to_owned(),
        event_timestamp: 1_650_000_000_000,
        payload: "x".to_owned(),
    };
    let expected = ProcessorToConsumer {
        producer_service_id: "producer-1".to_owned(),
        processor_service_id: "event-processor-1".to_owned(),
        destination_type: "MARKETING".to_owned(),
        producer_event_timestamp: 1_650_000_000_000,
        processor_event_timestamp: 1_650_000_000_123,
        payload: "x".to_owned(),
    };
    assert_eq!(
        map_to_output(&input, "event-processor-1", 1_650_000_000_123),
        expected
    );
    assert_eq!(
        map_into_output(input, "event-processor-1", 1_650_000_000_123),
        expected
    );
}

#[test]
fn mapping_writes_the_canonical_destination_name() {
    let input = event("FINANCE", "svc-1", " marketing ");
    assert_eq!(map_to_output(&input, "p", 0).destination_type, "MARKETING");
    assert_eq!(map_into_output(input, "p", 0).destination_type, "MARKETING");
}

#[test]
fn readme_routing_file_example_loads_and_routes_as_described() {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").expect("README has a TOML example") + "```toml\n".len();
    let length = readme[start..].find("```").expect("TOML example is closed");
    let router = Router::from_toml_str(&readme[start..start + length]).unwrap();

    let fan_out = router.decide(&event("FINANCE", "svc-1", "LOGISTICS"));
    assert_eq!(
        topics(&fan_out),
        ["processor.to.logistics", "processor.to.logistics.audit"]
    );
    assert!(
        !router
            .decide(&event("FINANCE", "svc-3", "MARKETING"))
            .is_route()
    );
    assert!(
        router
            .decide(&event("MARKETING", "any", "FINANCE"))
            .is_route()
    );
    assert_eq!(
        router.outputs("MARKETING").unwrap(),
        [OutputTarget::with_default_subject("processor.to.marketing")]
    );
}
