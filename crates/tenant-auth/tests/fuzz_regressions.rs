//! Inputs found by the fuzz targets (`fuzz/`, docs/FUZZING.md), kept as tests of the behaviour
//! they showed to be wrong.

use tenant_auth::{
    Claim, Freshness, KeyRing, Secret, Signer, TenantAuthError, TenantIdentity, Verifier,
};

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// 2026-12-01T00:00:00Z.
const NOW: i64 = 1_796_083_200_000;

fn verifier() -> Verifier {
    let ring = KeyRing::from_toml_str(&format!(
        "[[key]]\nid = \"finance\"\nservice_type = \"FINANCE\"\nsecret = \"{SECRET}\"\n"
    ))
    .expect("valid key file");
    Verifier::new(ring, Freshness::default())
}

/// Signs `value` as `FINANCE:<service_id>` and verifies it against the same claim.
fn sign_and_verify(service_id: &str) -> Result<(), String> {
    let identity = TenantIdentity::new("FINANCE", service_id).map_err(|error| error.to_string())?;
    let signer = Signer::new(
        "finance",
        Secret::from_hex(SECRET).expect("valid secret"),
        identity,
    )
    .map_err(|error| error.to_string())?;
    let headers = signer.sign(None, b"value", NOW).into_pairs();
    verifier()
        .verify(
            Claim {
                service_type: "FINANCE",
                service_id,
            },
            None,
            b"value",
            headers
                .iter()
                .map(|(name, value)| (*name, value.as_slice())),
            NOW,
        )
        .map(|_| ())
        .map_err(|failure| failure.to_string())
}

/// fuzz target `tenant_verify`, input `fuzz/corpus/tenant_verify/identity-longer-than-1024`: a
/// signer accepted an identity whose `ep.auth.identity` header (`TYPE:ID`) is over 1024 bytes,
/// which the verifier refuses to read, so every record it signed was dead-lettered as malformed.
/// Now the identity itself is refused, where the producer is configured.
#[test]
fn an_identity_too_long_for_the_verifier_cannot_be_made_or_signed() {
    // "FINANCE:" is 8 bytes: 1016 more is exactly the 1024 the verifier reads.
    let longest = "i".repeat(1016);
    assert_eq!(sign_and_verify(&longest), Ok(()));

    let too_long = "i".repeat(1017);
    let refused = TenantIdentity::new("FINANCE", too_long.as_str());
    assert!(
        matches!(refused, Err(TenantAuthError::InvalidIdentity { .. })),
        "{refused:?}"
    );
    // Built field by field, bypassing `new`: the signer checks again.
    let unchecked = TenantIdentity {
        service_type: "FINANCE".to_owned(),
        service_id: too_long,
    };
    let signer = Signer::new(
        "finance",
        Secret::from_hex(SECRET).expect("valid secret"),
        unchecked,
    );
    assert!(
        matches!(signer, Err(TenantAuthError::InvalidIdentity { .. })),
        "{signer:?}"
    );
}
