//! The crate's one error type.

use std::fmt;
use std::sync::Arc;

/// Everything the tracker refuses. None of these changes the tracker's state: the call that
/// returned it had no effect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// `track` on a partition that is not assigned.
    #[error(
        "partition {topic}[{partition}] is not assigned to the offset tracker; \
         call assign() when the consumer receives it, before tracking its records"
    )]
    NotAssigned {
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
    },

    /// `track` with an offset that is not above the partition's last tracked offset.
    #[error(
        "offset {offset} of {topic}[{partition}] is not above the last tracked offset \
         {last_tracked}; track each consumed record once, in the order the consumer returned them"
    )]
    OffsetNotIncreasing {
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The offset passed to `track`.
        offset: i64,
        /// The last offset tracked in this partition.
        last_tracked: i64,
    },

    /// `track` with an offset outside `0..i64::MAX`, which no Kafka record has.
    #[error(
        "offset {offset} of {topic}[{partition}] is not a Kafka record offset \
         (expected 0 <= offset < i64::MAX)"
    )]
    InvalidOffset {
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The offset passed to `track`.
        offset: i64,
    },

    /// A ticket whose offset was never tracked in its partition. Tickets returned by `track`
    /// never cause this; a ticket from another tracker can.
    #[error(
        "{operation}: offset {offset} of {topic}[{partition}] was never tracked; \
         use the ticket that track() returned for this record"
    )]
    NotTracked {
        /// What was attempted.
        operation: Operation,
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The ticket's offset.
        offset: i64,
    },

    /// The record is already complete: it got more acknowledgements than it had outputs.
    #[error(
        "{operation}: the record at offset {offset} of {topic}[{partition}] is already complete, \
         so it received more acknowledgements than it has outputs; pass the full output count \
         to track() and call add_outputs() before the last output is acknowledged"
    )]
    AlreadyComplete {
        /// What was attempted.
        operation: Operation,
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The ticket's offset.
        offset: i64,
    },

    /// `ack` or `fail` on a record none of whose outputs is pending: the remaining ones failed.
    #[error(
        "{operation}: the record at offset {offset} of {topic}[{partition}] has no pending output \
         ({failed} failed output(s) wait for resolve() or retry()); more acknowledgements than outputs"
    )]
    NoPendingOutput {
        /// What was attempted.
        operation: Operation,
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The ticket's offset.
        offset: i64,
        /// Outputs of the record reported failed and not yet resolved or retried.
        failed: u32,
    },

    /// `resolve` or `retry` on a record none of whose outputs was reported failed.
    #[error(
        "{operation}: the record at offset {offset} of {topic}[{partition}] has no failed output \
         ({pending} pending); report the failure with fail() first"
    )]
    NoFailedOutput {
        /// What was attempted.
        operation: Operation,
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The ticket's offset.
        offset: i64,
        /// Outputs of the record still pending.
        pending: u32,
    },

    /// `add_outputs` would take the record's unresolved outputs past `u32::MAX`.
    #[error(
        "add_outputs: the record at offset {offset} of {topic}[{partition}] would have more than \
         u32::MAX unresolved outputs ({unresolved} pending or failed + {extra} extra)"
    )]
    TooManyOutputs {
        /// Topic of the partition.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// The ticket's offset.
        offset: i64,
        /// Outputs already pending or failed.
        unresolved: u32,
        /// Outputs asked for.
        extra: u32,
    },

    /// A ticket that this tracker did not issue.
    #[error(
        "{operation}: the ticket for offset {offset} was not issued by this offset tracker; \
         pass tickets back to the tracker that returned them"
    )]
    ForeignTicket {
        /// What was attempted.
        operation: Operation,
        /// The ticket's offset.
        offset: i64,
    },
}

/// The per-record call that an error refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`OffsetTracker::ack`](crate::OffsetTracker::ack).
    Ack,
    /// [`OffsetTracker::fail`](crate::OffsetTracker::fail).
    Fail,
    /// [`OffsetTracker::resolve`](crate::OffsetTracker::resolve).
    Resolve,
    /// [`OffsetTracker::retry`](crate::OffsetTracker::retry).
    Retry,
    /// [`OffsetTracker::add_outputs`](crate::OffsetTracker::add_outputs).
    AddOutputs,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Ack => "ack",
            Operation::Fail => "fail",
            Operation::Resolve => "resolve",
            Operation::Retry => "retry",
            Operation::AddOutputs => "add_outputs",
        })
    }
}
