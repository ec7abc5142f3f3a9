//! Why an event goes to the dead-letter topic: the vocabulary of the DLQ `reason` header.

use std::fmt;

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
    /// Every value [`code`](Self::code) can return, e.g. to pre-register metric labels.
    pub const CODES: [&'static str; 8] = [
        "unknown-destination",
        "unauthorized",
        "undecodable",
        "schema-mismatch",
        "too-large",
        "missing-value",
        "refused",
        "unauthenticated",
    ];

    /// Stable machine code, the value of the DLQ `reason` header. Codes never change meaning;
    /// new reasons get new codes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownDestination { .. } => "unknown-destination",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Undecodable { .. } => "undecodable",
            Self::SchemaMismatch { .. } => "schema-mismatch",
            Self::TooLarge { .. } => "too-large",
            Self::MissingValue => "missing-value",
            Self::Refused { .. } => "refused",
            Self::Unauthenticated { .. } => "unauthenticated",
        }
    }
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
        assert_eq!(codes, DeadLetterReason::CODES);
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
