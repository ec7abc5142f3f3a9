//! Signature verification on arbitrary headers and values: never a panic; a genuine signature
//! verifies exactly when the key may be used; any change to the signed value is a bad signature.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tenant_auth::{
    AuthFailure, Claim, Freshness, HEADERS, KeyRing, KeyValidity, TenantIdentity, Verifier,
};

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let ring = KeyRing::from_toml_str(include_str!("../../deploy/tenant-keys.example.toml"))
        .expect("the example key file parses");
    Verifier::new(ring, Freshness::default())
});

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(input: &mut Unstructured<'_>) -> Result<()> {
    if input.arbitrary::<bool>()? {
        forged(input)
    } else {
        genuine(input)
    }
}

/// Headers made up by the fuzzer, mostly under the signature header names.
fn forged(input: &mut Unstructured<'_>) -> Result<()> {
    let service_type: &str = input.arbitrary()?;
    let service_id: &str = input.arbitrary()?;
    let record_key: Option<&[u8]> = input.arbitrary()?;
    let now_ms: i64 = input.arbitrary()?;
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for _ in 0..input.int_in_range(0..=6)? {
        let name = match input.int_in_range(0..=4)? {
            4 => input.arbitrary()?,
            known => HEADERS[known],
        };
        headers.push((name, input.arbitrary()?));
    }
    let value = input.bytes(input.len())?;
    let verdict = VERIFIER.verify(
        Claim {
            service_type,
            service_id,
        },
        record_key,
        value,
        headers.iter().copied(),
        now_ms,
    );
    if let Err(failure) = &verdict {
        let _ = (failure.to_string(), failure.kind());
    }
    // Without a secret no made-up signature can verify.
    assert!(verdict.is_err(), "forged headers verified: {headers:?}");
    Ok(())
}

/// A genuine signature by a key of the ring, checked, then checked again with the value changed.
fn genuine(input: &mut Unstructured<'_>) -> Result<()> {
    let keys: Vec<_> = VERIFIER.key_ring().keys().collect();
    let key = *input.choose(&keys)?;
    let Ok(identity) =
        TenantIdentity::new(input.arbitrary::<String>()?, input.arbitrary::<String>()?)
    else {
        return Ok(());
    };
    let Ok(signer) = key.signer(identity.clone()) else {
        return Ok(());
    };
    let record_key: Option<&[u8]> = input.arbitrary()?;
    let signed_at_ms: i64 = input.arbitrary()?;
    let value = input.bytes(input.len())?;
    let headers = signer.sign(record_key, value, signed_at_ms).into_pairs();
    let pairs = || {
        headers
            .iter()
            .map(|(name, value)| (*name, value.as_slice()))
    };
    let claim = Claim {
        service_type: &identity.service_type,
        service_id: &identity.service_id,
    };
    let verdict = VERIFIER.verify(claim, record_key, value, pairs(), signed_at_ms);
    // Every identity that can be made can be signed and read back (an identity header over the
    // verifier's 1024 bytes is refused by `TenantIdentity::new`, found by this target).
    let usable = key.validity_at(signed_at_ms) == KeyValidity::Valid && key.belongs_to(&identity);
    assert_eq!(
        verdict.is_ok(),
        usable,
        "genuine signature by {} for {identity}: {verdict:?}",
        key.id()
    );
    let mut changed = value.to_vec();
    changed.push(0);
    let verdict = VERIFIER.verify(claim, record_key, &changed, pairs(), signed_at_ms);
    assert!(
        matches!(verdict, Err(AuthFailure::BadSignature { .. })),
        "changed value not refused as a bad signature: {verdict:?}"
    );
    Ok(())
}
