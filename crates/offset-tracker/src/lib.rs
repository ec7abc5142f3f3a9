#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod partition;
mod tracker;
mod types;

pub use error::{Operation, TrackerError};
pub use tracker::OffsetTracker;
pub use types::{AckOutcome, Commit, CommitPolicy, CommitPosition, Ticket, TopicPartition};
