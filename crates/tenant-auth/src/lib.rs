#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod identity;
mod keys;
mod message;
mod secret;
mod sign;
mod verify;

pub use error::TenantAuthError;
pub use identity::TenantIdentity;
pub use keys::{Key, KeyRing, KeySpec, KeyValidity};
pub use message::{
    HEADERS, IDENTITY_HEADER, KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, VERSION,
};
pub use secret::{MIN_SECRET_LEN, Secret};
pub use sign::{SignatureHeaders, Signer};
pub use verify::{AuthFailure, Claim, Freshness, VerifiedTenant, Verifier};
