//! In-memory stand-ins for the adapters, for unit tests of code written against the traits
//! (cargo feature `testing`).
//!
//! Every fake is a cheap `Clone` handle on shared state: give one clone to the code under
//! test and keep another to script and observe it.
//!
//! - [`FakeSource`]: script events (records, assignments, revokes, losses, errors) and await the
//!   answer to a revoke through [`PendingRevoke`].
//! - [`FakeSink`]: records what was sent and controls completion: acknowledge at once or hold
//!   records until acknowledged or failed one by one, fail the next records or records
//!   matching a rule (retriable or not, or with a given Kafka error code), reject sends with "queue full".
//! - [`FakeCommitter`]: records commits, can fail the next ones, and can be awaited.

mod committer;
mod sink;
mod source;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use committer::FakeCommitter;
pub use sink::{Completion, FakeSink, SentRecord};
pub use source::{FakeSource, PendingRevoke};

use crate::types::InboundRecord;

/// A consumed record for tests: no key, no timestamp, no headers.
pub fn inbound_record(topic: &str, partition: i32, offset: i64, payload: &[u8]) -> InboundRecord {
    InboundRecord {
        topic: Arc::from(topic),
        partition,
        offset,
        key: None,
        payload: Some(payload.to_vec()),
        timestamp_ms: None,
        headers: Vec::new(),
    }
}

/// Fakes never leave their state half-updated, so a panic elsewhere does not poison it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
