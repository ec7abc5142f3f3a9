//! Tenant authentication on the hot path: whether the identity an event claims is vouched for by
//! a signature in its headers (`tenant-auth`), checked after decoding and before the policy.

use std::sync::Arc;

use router_core::ProducerToProcessorRef;
use tenant_auth::{AuthFailure, Claim, Verifier};

/// What a failed verification does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticationMode {
    /// Count and log failures, route as if unsigned (for rolling signing out).
    Observe,
    /// Dead-letter every event whose identity is not vouched for, as `unauthenticated`.
    Enforce,
}

/// Whose clock says "now" when a signature's age and a key's validity are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningClock {
    /// The processor's clock: consumer lag ages records.
    WallClock,
    /// The record's Kafka timestamp (meant for topics with `LogAppendTime`), falling back to
    /// the processor's clock for a record without one.
    RecordTimestamp,
}

/// The tenant authentication in force: mode, key ring and clock. Part of the routing snapshot,
/// so a reloaded key file takes effect between two records like a reloaded routing table.
#[derive(Debug, Clone)]
pub struct TenantAuthentication {
    /// What a failure does.
    pub mode: AuthenticationMode,
    /// The keys and the freshness limits.
    pub verifier: Arc<Verifier>,
    /// Whose "now".
    pub clock: SigningClock,
}

impl TenantAuthentication {
    /// Verifies `event`'s claimed identity against the signature in `headers` over the record's
    /// key and `value` (the bytes as read).
    pub(crate) fn verify(
        &self,
        event: &ProducerToProcessorRef<'_>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(String, Vec<u8>)],
        record_timestamp_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), AuthFailure> {
        let now_ms = match self.clock {
            SigningClock::WallClock => now_ms,
            SigningClock::RecordTimestamp => record_timestamp_ms.unwrap_or(now_ms),
        };
        let claim = Claim {
            service_type: event.origin_service_type,
            service_id: event.origin_service_id,
        };
        let headers = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()));
        self.verifier
            .verify(claim, key, value, headers, now_ms)
            .map(|_| ())
    }
}
