//! The routing-file parsers on arbitrary text: never a panic, and a router that parses routes
//! each of its own destinations, under any ASCII case, and names no unknown one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use router_core::{DeadLetterReason, Decision, Router};

fuzz_target!(|data: &[u8]| {
    // Lossy rather than skipping invalid UTF-8: every mutation still exercises the parsers.
    let text = String::from_utf8_lossy(data);
    let parsed = [
        Router::from_toml_str(&text),
        Router::from_prototype_json(&text),
    ];
    for router in parsed.iter().flatten() {
        check_router(router);
    }
    // The same text parsed twice is the same configuration.
    if let (Ok(first), Ok(second)) = (Router::from_toml_str(&text), Router::from_toml_str(&text)) {
        assert_eq!(
            first.version(),
            second.version(),
            "version is not deterministic"
        );
    }
});

fn check_router(router: &Router) {
    let origins = [
        ("FINANCE", "producer-1"),
        ("*", "x"),
        ("", ""),
        ("marketing", "m-1"),
    ];
    for destination in router.destinations() {
        let name = destination.as_str();
        assert_eq!(router.table().resolve(name), Some(destination));
        assert!(
            router.outputs(&name.to_ascii_lowercase()).is_some(),
            "case-insensitive lookup fails for {name:?}"
        );
        assert!(
            router.outputs(&format!(" {name}\t")).is_some(),
            "padded lookup fails for {name:?}"
        );
        for (origin_type, origin_id) in origins {
            match router.decide_for(origin_type, origin_id, name) {
                Decision::Route(outputs) => {
                    assert_eq!(Some(outputs), router.outputs(name));
                }
                Decision::DeadLetter(DeadLetterReason::Unauthorized { destination, .. }) => {
                    assert_eq!(destination, name);
                }
                other => panic!("configured destination {name:?} not routed: {other:?}"),
            }
        }
    }
    for unknown in ["", "*", "NO SUCH DESTINATION \u{1F600}"] {
        if router.table().resolve(unknown).is_none() {
            assert!(
                matches!(
                    router.decide_for("FINANCE", "producer-1", unknown),
                    Decision::DeadLetter(DeadLetterReason::UnknownDestination { .. })
                ),
                "unknown destination {unknown:?} not dead-lettered as such"
            );
        }
    }
    let _ = router.output_topics();
    let _ = format!("{:016x}", router.version());
}
