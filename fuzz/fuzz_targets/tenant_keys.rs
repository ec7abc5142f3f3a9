//! The tenant key file parser on arbitrary text: never a panic, and a ring that parses is
//! consistent (every key found by its id, each key's signing identity finds a valid key).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tenant_auth::{KeyRing, KeyValidity, TenantIdentity};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ring = match KeyRing::from_toml_str(&text) {
        Ok(ring) => ring,
        Err(error) => {
            // Messages are built from the input and its positions: building them must not panic.
            let _ = error.to_string();
            return;
        }
    };
    assert_eq!(ring.len(), ring.keys().count());
    for key in ring.keys() {
        assert!(
            ring.get(key.id())
                .is_some_and(|found| found.id() == key.id())
        );
        let _ = format!("{key:?}");
        for now_ms in [i64::MIN, -1, 0, 1_800_000_000_000, i64::MAX] {
            let validity = key.validity_at(now_ms);
            let service_id = key.service_id().unwrap_or("any-id");
            let Ok(identity) = TenantIdentity::new(key.service_type(), service_id) else {
                continue;
            };
            if validity == KeyValidity::Valid && key.belongs_to(&identity) {
                let chosen = ring.signing_key_for(&identity, now_ms);
                assert!(
                    chosen.is_some_and(|chosen| chosen.belongs_to(&identity)
                        && chosen.validity_at(now_ms) == KeyValidity::Valid),
                    "no valid signing key for {identity} at {now_ms} although {} is",
                    key.id()
                );
            }
        }
    }
});
