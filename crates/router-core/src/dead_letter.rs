//! Why an event goes to the dead-letter topic, and how a dead letter says so: the reasons,
//! their machine codes (the DLQ `reason` header) and the `dlq.*` header names. The one owner of
//! the dead-letter vocabulary; the pipeline writes it, the tools read it.

use std::fmt;
use std::str::FromStr;

/// Why an input record is dead-lettered instead of routed.
///
/// [`crate::Router::decide`] produces [`UnknownDestination`](Self::UnknownDestination) and
/// [`Unauthorized`](Self::Unauthorized); the pipeline builds the others while reading the
/// record. They share one type so the dead-letter vocabulary is defined in one place: [`code`](Self::code)
/// is the stable machine value of the DLQ `reason` header, and `Display` is the human-readable
/// detail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The event's destination is not in the routing table.
    UnknownDestination {
        /// `destination_service_type` as the producer wrote it.
        destination: String,
    },
    /// The policy does not allow the event's origin to send to its destination.
    Unauthorized {
        /// `origin_service_type` as the producer wrote it.
        origin_service_type: String,
        /// `origin_service_id` as the producer wrote it.
        origin_service_id: String,
        /// The destination, in canonical form.
        destination: String,
    },
    /// The value is not a decodable `ProducerToProcessor` (bad framing, corrupt Avro, unknown
    /// schema id, ...).
    Undecodable {
        /// What the decoder reported.
        detail: String,
    },
    /// The value's writer schema cannot be resolved against the input contract.
    SchemaMismatch {
        /// Schema Registry id from the value's framing.
        schema_id: u32,
        /// What schema resolution reported.
        detail: String,
    },
    /// The value is larger than the configured limit.
    TooLarge {
        /// Size of the value in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The record has no value (a null value or tombstone).
    MissingValue,
    /// The broker (or the producer's own checks) permanently refused the output record routed
    /// for this event to one output topic: the topic is missing or not writable, or the record
    /// is too large or invalid for it. The other outputs of the event are routed as usual.
    Refused {
        /// The output topic that refused the record.
        topic: String,
        /// The broker's or the producer's error text.
        error: String,
    },
    /// The tenant's identity could not be authenticated: the record's signature headers are
    /// missing or do not verify, or the signed identity is not the one the event claims
    /// (policy mode `authentication = "hmac"`, crate `tenant-auth`).
    Unauthenticated {
        /// What verification reported (never a secret).
        detail: String,
    },
}

impl DeadLetterReason {
    /// Stable machine code, the value of the DLQ `reason` header.
    pub fn code(&self) -> DeadLetterCode {
        match self {
            Self::UnknownDestination { .. } => DeadLetterCode::UnknownDestination,
            Self::Unauthorized { .. } => DeadLetterCode::Unauthorized,
            Self::Undecodable { .. } => DeadLetterCode::Undecodable,
            Self::SchemaMismatch { .. } => DeadLetterCode::SchemaMismatch,
            Self::TooLarge { .. } => DeadLetterCode::TooLarge,
            Self::MissingValue => DeadLetterCode::MissingValue,
            Self::Refused { .. } => DeadLetterCode::Refused,
            Self::Unauthenticated { .. } => DeadLetterCode::Unauthenticated,
        }
    }
}

/// The machine code of a [`DeadLetterReason`]: the value of the [`headers::REASON`] header, the
/// `reason` label of the dead-letter metrics and what `dlq-replay --reason` selects by.
///
/// Codes never change meaning; new reasons get new codes (and a new variant here, at the end:
/// counters indexed by [`index`](Self::index) follow [`ALL`](Self::ALL)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DeadLetterCode {
    /// `unknown-destination`: [`DeadLetterReason::UnknownDestination`].
    UnknownDestination,
    /// `unauthorized`: [`DeadLetterReason::Unauthorized`].
    Unauthorized,
    /// `undecodable`: [`DeadLetterReason::Undecodable`].
    Undecodable,
    /// `schema-mismatch`: [`DeadLetterReason::SchemaMismatch`].
    SchemaMismatch,
    /// `too-large`: [`DeadLetterReason::TooLarge`].
    TooLarge,
    /// `missing-value`: [`DeadLetterReason::MissingValue`].
    MissingValue,
    /// `refused`: [`DeadLetterReason::Refused`].
    Refused,
    /// `unauthenticated`: [`DeadLetterReason::Unauthenticated`].
    Unauthenticated,
}

impl DeadLetterCode {
    /// Every code, in the order of [`index`](Self::index) (e.g. to pre-register metric labels,
    /// or to size a counter per code).
    pub const ALL: [Self; 8] = [
        Self::UnknownDestination,
        Self::Unauthorized,
        Self::Undecodable,
        Self::SchemaMismatch,
        Self::TooLarge,
        Self::MissingValue,
        Self::Refused,
        Self::Unauthenticated,
    ];

    /// The code as it is written in the [`headers::REASON`] header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownDestination => "unknown-destination",
            Self::Unauthorized => "unauthorized",
            Self::Undecodable => "undecodable",
            Self::SchemaMismatch => "schema-mismatch",
            Self::TooLarge => "too-large",
            Self::MissingValue => "missing-value",
            Self::Refused => "refused",
            Self::Unauthenticated => "unauthenticated",
        }
    }

    /// This code's position in [`ALL`](Self::ALL), for arrays with one counter per code.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DeadLetterCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeadLetterCode {
    type Err = UnknownDeadLetterCode;

    /// The code written `text` (exactly as [`as_str`](Self::as_str) writes it).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownDeadLetterCode {
                code: text.to_owned(),
            })
    }
}

/// A `reason` that is not one of the [`DeadLetterCode`]s (a typo, or a dead letter written by
/// a newer processor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{code}` is not a dead-letter reason code; known codes: unknown-destination, unauthorized, \
     undecodable, schema-mismatch, too-large, missing-value, refused"
)]
pub struct UnknownDeadLetterCode {
    /// The text that was not a code.
    pub code: String,
}

/// The names of the `dlq.*` headers: on every dead-letter record (written by the pipeline) and
/// on replayed records (written by dlq-replay). Values are UTF-8 text.
pub mod headers {
    /// The prefix every dead-letter header name starts with; a replay drops all such headers.
    pub const PREFIX: &str = "dlq.";
    /// Machine code of the reason, e.g. `unauthorized` ([`DeadLetterCode`](super::DeadLetterCode)).
    pub const REASON: &str = "dlq.reason";
    /// Human-readable explanation.
    pub const ERROR: &str = "dlq.error";
    /// Topic the event was read from.
    pub const SOURCE_TOPIC: &str = "dlq.source.topic";
    /// Partition the event was read from.
    pub const SOURCE_PARTITION: &str = "dlq.source.partition";
    /// Offset the event was read from.
    pub const SOURCE_OFFSET: &str = "dlq.source.offset";
    /// Schema id from the event's Confluent header, when it had one.
    pub const SCHEMA_ID: &str = "dlq.schema.id";
    /// Id of the processor instance that dead-lettered it.
    pub const PROCESSOR_ID: &str = "dlq.processor.id";
    /// On a `refused` dead letter: the output topic that refused the routed record.
    pub const OUTPUT_TOPIC: &str = "dlq.output.topic";
    /// `true` on a dead letter whose value was left out because the dead-letter topic refused
    /// the full copy as too large: the value is empty, [`VALUE_SIZE`] and [`VALUE_SHA256`]
    /// identify the original.
    pub const VALUE_OMITTED: &str = "dlq.value.omitted";
    /// Size in bytes of the left-out value.
    pub const VALUE_SIZE: &str = "dlq.value.size";
    /// SHA-256 of the left-out value, 64 lowercase hex digits.
    pub const VALUE_SHA256: &str = "dlq.value.sha256";
    /// `true` when the key and the input's own headers were left out too (they alone exceeded
    /// `max_record_bytes`); only the `dlq.*` headers remain.
    pub const KEY_AND_HEADERS_OMITTED: &str = "dlq.key-and-headers.omitted";
    /// On a record dlq-replay re-published (not on a dead letter):
    /// `<dead-letter topic>/<partition>/<offset>` it was replayed from.
    pub const REPLAYED_FROM: &str = "dlq.replayed-from";
    /// Longest [`ERROR`] value, in bytes; a longer detail is cut (at a character boundary) and
    /// ends with `…`. The detail can quote the event's own strings (an unknown destination, an
    /// origin id) and must not make a dead-letter copy larger than the producer can send.
    pub const ERROR_MAX_BYTES: usize = 1024;
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDestination { destination } => write!(
                f,
                "destination `{destination}` is not in the routing table; add it to the routing \
                 configuration or fix the producer's destination_service_type"
            ),
            Self::Unauthorized {
                origin_service_type,
                origin_service_id,
                destination,
            } => write!(
                f,
                "service `{origin_service_id}` of type `{origin_service_type}` is not allowed to \
                 send to destination `{destination}`; add a policy allow rule if it should be"
            ),
            Self::Undecodable { detail } => {
                write!(f, "the record value could not be decoded: {detail}")
            }
            Self::SchemaMismatch { schema_id, detail } => write!(
                f,
                "the record value's writer schema (id {schema_id}) does not match the input \
                 contract: {detail}"
            ),
            Self::TooLarge { size, limit } => write!(
                f,
                "the record (key, headers and value) is {size} bytes, over the limit of {limit} \
                 bytes"
            ),
            Self::MissingValue => f.write_str("the record has no value (null or tombstone)"),
            Self::Refused { topic, error } => write!(
                f,
                "output refused by the broker for topic `{topic}`: {error}"
            ),
            Self::Unauthenticated { detail } => {
                write!(f, "the tenant's identity is not authenticated: {detail}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> [DeadLetterReason; 8] {
        [
            DeadLetterReason::UnknownDestination {
                destination: "SALES".to_owned(),
            },
            DeadLetterReason::Unauthorized {
                origin_service_type: "FINANCE".to_owned(),
                origin_service_id: "svc-9".to_owned(),
                destination: "MARKETING".to_owned(),
            },
            DeadLetterReason::Undecodable {
                detail: "no magic byte".to_owned(),
            },
            DeadLetterReason::SchemaMismatch {
                schema_id: 7,
                detail: "missing field".to_owned(),
            },
            DeadLetterReason::TooLarge { size: 10, limit: 5 },
            DeadLetterReason::MissingValue,
            DeadLetterReason::Refused {
                topic: "processor.to.finance".to_owned(),
                error: "Broker: Topic authorization failed".to_owned(),
            },
            DeadLetterReason::Unauthenticated {
                detail: "signed as FINANCE:f-1 but the event claims MARKETING:m-1".to_owned(),
            },
        ]
    }

    #[test]
    fn each_reason_has_its_own_stable_code() {
        let codes = one_of_each().map(|reason| reason.code());
        assert_eq!(codes, DeadLetterCode::ALL);
        // The wire format: these strings are in dead-letter topics and metric labels already.
        assert_eq!(
            codes.map(DeadLetterCode::as_str),
            [
                "unknown-destination",
                "unauthorized",
                "undecodable",
                "schema-mismatch",
                "too-large",
                "missing-value",
                "refused",
                "unauthenticated",
            ]
        );
        for (index, code) in DeadLetterCode::ALL.into_iter().enumerate() {
            assert_eq!(code.index(), index);
        }
    }

    #[test]
    fn codes_read_back_from_their_text_and_nothing_else_does() {
        for code in DeadLetterCode::ALL {
            assert_eq!(code.as_str().parse::<DeadLetterCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        let unknown = "Unauthorized".parse::<DeadLetterCode>().unwrap_err();
        assert_eq!(unknown.code, "Unauthorized");
        assert!(unknown.to_string().contains("too-large"), "{unknown}");
    }

    #[test]
    fn display_carries_the_values() {
        let [
            unknown,
            unauthorized,
            undecodable,
            mismatch,
            too_large,
            missing,
            refused,
            unauthenticated,
        ] = one_of_each().map(|reason| reason.to_string());
        assert!(unknown.contains("`SALES`"), "{unknown}");
        assert!(unauthorized.contains("`svc-9`") && unauthorized.contains("`MARKETING`"));
        assert!(undecodable.contains("no magic byte"));
        assert!(mismatch.contains("id 7") && mismatch.contains("missing field"));
        assert!(too_large.contains("10 bytes") && too_large.contains("5 bytes"));
        assert!(missing.contains("no value"));
        assert!(
            refused.contains("`processor.to.finance`")
                && refused.contains("Broker: Topic authorization failed"),
            "{refused}"
        );
        assert!(
            unauthenticated.contains("signed as FINANCE:f-1"),
            "{unauthenticated}"
        );
    }
}
