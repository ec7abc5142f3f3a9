//! Signing and verifying records: the wire contract, every refusal, rotation, and (proptest)
//! that changing any signed part of a record makes verification fail.

use proptest::prelude::*;
use tenant_auth::{
    AuthFailure, Claim, Freshness, IDENTITY_HEADER, KEY_ID_HEADER, KeyRing, SIGNATURE_HEADER,
    Secret, Signer, TIMESTAMP_HEADER, TenantIdentity, Verifier,
};

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OTHER_SECRET: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
/// 2026-12-01T00:00:00Z.
const NOW: i64 = 1_796_083_200_000;
const DAY: i64 = 86_400_000;

/// FINANCE rotates from `finance-old` (retired 2026-12-02) to `finance-new` (valid from
/// 2026-12-01); `finance-twin` shares `finance-new`'s secret; MARKETING has a key for `m-1`
/// only.
fn ring() -> KeyRing {
    KeyRing::from_toml_str(&format!(
        r#"
        [[key]]
        id = "finance-old"
        service_type = "FINANCE"
        secret = "{OTHER_SECRET}"
        not_after = 2026-12-02T00:00:00Z

        [[key]]
        id = "finance-new"
        service_type = "FINANCE"
        secret = "{SECRET}"
        not_before = 2026-12-01T00:00:00Z

        [[key]]
        id = "finance-twin"
        service_type = "FINANCE"
        secret = "{SECRET}"

        [[key]]
        id = "marketing-m1"
        service_type = "MARKETING"
        service_id = "m-1"
        secret = "{OTHER_SECRET}"
        "#
    ))
    .expect("valid key file")
}

fn verifier() -> Verifier {
    Verifier::new(ring(), Freshness::default())
}

fn identity(service_type: &str, service_id: &str) -> TenantIdentity {
    TenantIdentity::new(service_type, service_id).expect("valid identity")
}

fn signer(key_id: &str, secret: &str, service_type: &str, service_id: &str) -> Signer {
    Signer::new(
        key_id,
        Secret::from_hex(secret).expect("valid secret"),
        identity(service_type, service_id),
    )
    .expect("valid signer")
}

fn finance_signer() -> Signer {
    signer("finance-new", SECRET, "FINANCE", "f-1")
}

type Headers = Vec<(String, Vec<u8>)>;

fn sign(signer: &Signer, key: Option<&[u8]>, value: &[u8], at: i64) -> Headers {
    signer
        .sign(key, value, at)
        .into_pairs()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn verify(
    verifier: &Verifier,
    claim: (&str, &str),
    key: Option<&[u8]>,
    value: &[u8],
    headers: &Headers,
    now: i64,
) -> Result<String, AuthFailure> {
    let claim = Claim {
        service_type: claim.0,
        service_id: claim.1,
    };
    let pairs = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()));
    verifier
        .verify(claim, key, value, pairs, now)
        .map(|verified| verified.key_id.to_string())
}

fn set_header(headers: &mut Headers, name: &str, value: &str) {
    for (existing, bytes) in headers.iter_mut() {
        if existing == name {
            *bytes = value.as_bytes().to_vec();
        }
    }
}

const KEY: Option<&[u8]> = Some(b"f-1:MARKETING");
const VALUE: &[u8] = b"\x00\x00\x00\x00\x01payload";

#[test]
fn signature_matches_the_documented_message_layout() {
    // Expected tags computed independently from the README's layout (Python hmac + struct).
    let signer = signer("finance-1", SECRET, "FINANCE", "f-1");
    let headers = signer.sign(KEY, VALUE, NOW);
    assert_eq!(
        headers.signature,
        "v1:18ab0e7e967784cf736d69c95463cab4993fc3594e057b95f3bb1d7663cfced7"
    );
    assert_eq!(headers.key_id, "finance-1");
    assert_eq!(headers.identity, "FINANCE:f-1");
    assert_eq!(headers.timestamp, "1796083200000");
    let null_key_empty_value = signer.sign(None, b"", -1);
    assert_eq!(
        null_key_empty_value.signature,
        "v1:aef191a7881ddcf75e14b20ac91041042651109dec9f1853b4b9eafe15412a9d"
    );
}

#[test]
fn a_signed_record_verifies_for_the_identity_it_claims() {
    let headers = sign(&finance_signer(), KEY, VALUE, NOW);
    let key_id = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(key_id.as_deref(), Ok("finance-new"));
    // The policy compares service types case-insensitively; so does the identity check.
    let key_id = verify(&verifier(), ("finance", "f-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(key_id.as_deref(), Ok("finance-new"));
}

#[test]
fn an_unsigned_record_is_missing_its_signature() {
    let headers = vec![("trace-id".to_owned(), b"abc".to_vec())];
    let result = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(result, Err(AuthFailure::MissingSignature));
}

#[test]
fn partial_repeated_or_garbled_headers_are_malformed() {
    let signed = sign(&finance_signer(), KEY, VALUE, NOW);
    let without_timestamp: Headers = signed
        .iter()
        .filter(|(name, _)| name != TIMESTAMP_HEADER)
        .cloned()
        .collect();
    let mut repeated = signed.clone();
    repeated.push((IDENTITY_HEADER.to_owned(), b"MARKETING:m-1".to_vec()));
    let mut garbled = signed.clone();
    set_header(&mut garbled, SIGNATURE_HEADER, "v1:not-hex");
    let mut no_id = signed.clone();
    set_header(&mut no_id, IDENTITY_HEADER, "FINANCE");
    let mut padded_timestamp = signed.clone();
    set_header(&mut padded_timestamp, TIMESTAMP_HEADER, &format!("0{NOW}"));
    for (headers, header) in [
        (without_timestamp, TIMESTAMP_HEADER),
        (padded_timestamp, TIMESTAMP_HEADER),
        (repeated, IDENTITY_HEADER),
        (garbled, SIGNATURE_HEADER),
        (no_id, IDENTITY_HEADER),
    ] {
        let result = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
        assert!(
            matches!(&result, Err(AuthFailure::MalformedHeader { header: found, .. }) if *found == header),
            "{header}: {result:?}"
        );
    }
}

#[test]
fn another_signature_version_is_unsupported() {
    let mut headers = sign(&finance_signer(), KEY, VALUE, NOW);
    set_header(&mut headers, SIGNATURE_HEADER, &format!("v2:{SECRET}"));
    let result = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(
        result,
        Err(AuthFailure::UnsupportedVersion {
            version: "v2".to_owned()
        })
    );
}

#[test]
fn a_key_not_in_the_ring_is_unknown() {
    let headers = sign(&signer("stolen", SECRET, "FINANCE", "f-1"), KEY, VALUE, NOW);
    let result = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(
        result,
        Err(AuthFailure::UnknownKey {
            key_id: "stolen".to_owned()
        })
    );
}

#[test]
fn a_signature_with_the_wrong_secret_is_bad() {
    let headers = sign(
        &signer("finance-new", OTHER_SECRET, "FINANCE", "f-1"),
        KEY,
        VALUE,
        NOW,
    );
    let result = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(
        result,
        Err(AuthFailure::BadSignature {
            key_id: "finance-new".to_owned()
        })
    );
}

#[test]
fn a_tag_differing_in_its_last_byte_is_bad() {
    let mut headers = sign(&finance_signer(), KEY, VALUE, NOW);
    let signature = &mut headers
        .iter_mut()
        .find(|(name, _)| name == SIGNATURE_HEADER)
        .expect("signature header")
        .1;
    let last = signature.last_mut().expect("non-empty");
    *last = if *last == b'0' { b'1' } else { b'0' };
    let result = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW);
    assert!(
        matches!(result, Err(AuthFailure::BadSignature { .. })),
        "{result:?}"
    );
}

#[test]
fn a_null_key_and_an_empty_key_are_different_records() {
    let headers = sign(&finance_signer(), None, VALUE, NOW);
    assert!(verify(&verifier(), ("FINANCE", "f-1"), None, VALUE, &headers, NOW).is_ok());
    let result = verify(
        &verifier(),
        ("FINANCE", "f-1"),
        Some(b""),
        VALUE,
        &headers,
        NOW,
    );
    assert!(
        matches!(result, Err(AuthFailure::BadSignature { .. })),
        "{result:?}"
    );
}

#[test]
fn a_tenant_signing_as_itself_but_claiming_another_tenant_is_a_mismatch() {
    // What `event-producer --spoof-percent` does: its own key and identity, another's claim.
    let headers = sign(&finance_signer(), KEY, VALUE, NOW);
    let result = verify(&verifier(), ("MARKETING", "m-1"), KEY, VALUE, &headers, NOW);
    assert_eq!(
        result,
        Err(AuthFailure::IdentityMismatch {
            signed: "FINANCE:f-1".to_owned(),
            claimed: "MARKETING:m-1".to_owned(),
        })
    );
    let other_id = verify(&verifier(), ("FINANCE", "f-2"), KEY, VALUE, &headers, NOW);
    assert!(
        matches!(other_id, Err(AuthFailure::IdentityMismatch { .. })),
        "{other_id:?}"
    );
}

#[test]
fn a_tenant_signing_another_identity_with_its_key_is_refused() {
    let as_marketing = sign(
        &signer("finance-new", SECRET, "MARKETING", "m-1"),
        KEY,
        VALUE,
        NOW,
    );
    let result = verify(
        &verifier(),
        ("MARKETING", "m-1"),
        KEY,
        VALUE,
        &as_marketing,
        NOW,
    );
    assert_eq!(
        result,
        Err(AuthFailure::KeyNotForTenant {
            key_id: "finance-new".to_owned(),
            tenant: "MARKETING:m-1".to_owned(),
        })
    );
    // marketing-m1 is restricted to the service id m-1.
    let as_m2 = sign(
        &signer("marketing-m1", OTHER_SECRET, "MARKETING", "m-2"),
        KEY,
        VALUE,
        NOW,
    );
    let result = verify(&verifier(), ("MARKETING", "m-2"), KEY, VALUE, &as_m2, NOW);
    assert!(
        matches!(result, Err(AuthFailure::KeyNotForTenant { .. })),
        "{result:?}"
    );
    let as_m1 = sign(
        &signer("marketing-m1", OTHER_SECRET, "MARKETING", "m-1"),
        KEY,
        VALUE,
        NOW,
    );
    assert!(verify(&verifier(), ("MARKETING", "m-1"), KEY, VALUE, &as_m1, NOW).is_ok());
}

#[test]
fn during_rotation_old_and_new_keys_verify_and_after_it_the_old_is_retired() {
    let verifier = verifier();
    let old = signer("finance-old", OTHER_SECRET, "FINANCE", "f-1");
    let new = finance_signer();
    let check = |signer: &Signer, at: i64| {
        let headers = sign(signer, KEY, VALUE, at);
        verify(&verifier, ("FINANCE", "f-1"), KEY, VALUE, &headers, at)
    };
    // Before the overlap: only the old key.
    assert_eq!(check(&old, NOW - DAY).as_deref(), Ok("finance-old"));
    assert_eq!(
        check(&new, NOW - DAY),
        Err(AuthFailure::KeyNotYetValid {
            key_id: "finance-new".to_owned(),
            not_before_ms: NOW,
        })
    );
    // The overlap, [NOW, NOW + DAY): both.
    for at in [NOW, NOW + DAY - 1] {
        assert_eq!(check(&old, at).as_deref(), Ok("finance-old"));
        assert_eq!(check(&new, at).as_deref(), Ok("finance-new"));
    }
    // From not_after on: the old key is refused, even for a valid signature.
    assert_eq!(
        check(&old, NOW + DAY),
        Err(AuthFailure::RetiredKey {
            key_id: "finance-old".to_owned(),
            not_after_ms: NOW + DAY,
        })
    );
    assert_eq!(check(&new, NOW + DAY).as_deref(), Ok("finance-new"));
    // And producers given both keys sign with the new one once it is valid.
    let f1 = identity("FINANCE", "f-1");
    let ring = ring();
    let chosen = |at| ring.signing_key_for(&f1, at).map(|key| key.id().to_owned());
    assert_eq!(chosen(NOW - DAY).as_deref(), Some("finance-twin"));
    assert_eq!(chosen(NOW).as_deref(), Some("finance-new"));
}

#[test]
fn signatures_too_old_or_too_far_ahead_are_refused() {
    let freshness = Freshness {
        max_age_ms: Some(60_000),
        max_ahead_ms: 5_000,
    };
    let verifier = Verifier::new(ring(), freshness);
    let at = |signed_at: i64| {
        let headers = sign(&finance_signer(), KEY, VALUE, signed_at);
        verify(
            &verifier,
            ("FINANCE", "f-1"),
            KEY,
            VALUE,
            &headers,
            NOW + 120_000,
        )
    };
    assert!(at(NOW + 60_000).is_ok());
    assert!(at(NOW + 125_000).is_ok());
    assert_eq!(
        at(NOW + 59_999),
        Err(AuthFailure::StaleTimestamp {
            signed_at_ms: NOW + 59_999,
            now_ms: NOW + 120_000,
            max_age_ms: 60_000,
        })
    );
    assert!(matches!(
        at(NOW + 125_001),
        Err(AuthFailure::FutureTimestamp { .. })
    ));
    let ageless = Verifier::new(
        ring(),
        Freshness {
            max_age_ms: None,
            max_ahead_ms: 0,
        },
    );
    let headers = sign(&finance_signer(), KEY, VALUE, NOW);
    assert!(
        verify(
            &ageless,
            ("FINANCE", "f-1"),
            KEY,
            VALUE,
            &headers,
            NOW + 365 * DAY
        )
        .is_ok()
    );
}

#[test]
fn failures_name_header_values_escaped() {
    let mut headers = sign(&finance_signer(), KEY, VALUE, NOW);
    set_header(&mut headers, KEY_ID_HEADER, "evil\nkey");
    let failure = verify(&verifier(), ("FINANCE", "f-1"), KEY, VALUE, &headers, NOW)
        .expect_err("unknown key");
    let text = failure.to_string();
    assert!(
        text.contains(r#""evil\nkey""#) && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(failure.kind(), "unknown-key");
}

#[test]
fn debug_of_signers_and_verifiers_shows_no_secret() {
    let shown = format!("{:?} {:?}", finance_signer(), verifier());
    for secret in [SECRET, OTHER_SECRET] {
        assert!(!shown.contains(&secret[..16]), "{shown}");
    }
    assert!(!shown.contains("0, 17, 34, 51"), "{shown}");
}

/// One change to a signed record.
#[derive(Debug, Clone)]
enum Tamper {
    ServiceType(String),
    ServiceId(String),
    Key(Option<Vec<u8>>),
    Value(Vec<u8>),
    Timestamp(i64),
    /// Another key id with the same secret and tenant (`finance-twin`): the key id is signed.
    KeyId,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        "[A-Z]{1,8}".prop_map(Tamper::ServiceType),
        "[a-z0-9:-]{1,12}".prop_map(Tamper::ServiceId),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)).prop_map(Tamper::Key),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Tamper::Value),
        any::<i64>().prop_map(Tamper::Timestamp),
        Just(Tamper::KeyId),
    ]
}

proptest! {
    #[test]
    fn changing_any_signed_part_fails_verification(
        service_id in "[a-z0-9:-]{1,12}",
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
        value in proptest::collection::vec(any::<u8>(), 0..64),
        offset_ms in -1_000_i64..1_000,
        change in tamper(),
    ) {
        let verifier = Verifier::new(ring(), Freshness { max_age_ms: None, max_ahead_ms: u64::MAX });
        let signed_at = NOW + offset_ms;
        let headers = sign(&signer("finance-new", SECRET, "FINANCE", &service_id), key.as_deref(), &value, signed_at);
        let claim = ("FINANCE", service_id.as_str());
        prop_assert!(verify(&verifier, claim, key.as_deref(), &value, &headers, NOW).is_ok());

        let mut tampered = headers.clone();
        let (mut tampered_key, mut tampered_value) = (key.clone(), value.clone());
        let unchanged = match &change {
            Tamper::ServiceType(service_type) => {
                set_header(&mut tampered, IDENTITY_HEADER, &format!("{service_type}:{service_id}"));
                service_type.eq_ignore_ascii_case("FINANCE")
            }
            Tamper::ServiceId(other) => {
                set_header(&mut tampered, IDENTITY_HEADER, &format!("FINANCE:{other}"));
                *other == service_id
            }
            Tamper::Key(other) => {
                tampered_key.clone_from(other);
                *other == key
            }
            Tamper::Value(other) => {
                tampered_value.clone_from(other);
                *other == value
            }
            Tamper::Timestamp(other) => {
                set_header(&mut tampered, TIMESTAMP_HEADER, &other.to_string());
                *other == signed_at
            }
            Tamper::KeyId => {
                set_header(&mut tampered, KEY_ID_HEADER, "finance-twin");
                false
            }
        };
        prop_assume!(!unchanged);
        let result = verify(&verifier, claim, tampered_key.as_deref(), &tampered_value, &tampered, NOW);
        prop_assert!(
            matches!(result, Err(AuthFailure::BadSignature { .. })),
            "{:?} gave {:?}", change, result
        );
    }
}
