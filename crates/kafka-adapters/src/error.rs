//! The boundary between librdkafka's errors and the ports' [`AdapterError`]: rdkafka's error
//! codes become [`KafkaErrorCode`] numbers, its errors boxed sources.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use ports::{AdapterError, KafkaErrorCode};

/// The ports' code for one of rdkafka's codes (the same `rd_kafka_resp_err_t` number).
pub(crate) fn kafka_code(code: RDKafkaErrorCode) -> KafkaErrorCode {
    KafkaErrorCode::new(code as i32)
}

/// The error code inside a librdkafka error, if it carries one.
pub(crate) fn kafka_code_of(error: &KafkaError) -> Option<KafkaErrorCode> {
    error.rdkafka_error_code().map(kafka_code)
}

/// The error code inside a librdkafka error, `Fail` when it carries none.
pub(crate) fn code_of(error: &KafkaError) -> KafkaErrorCode {
    kafka_code_of(error).unwrap_or(KafkaErrorCode::FAIL)
}

/// A transaction call's error, classified as librdkafka classifies it. An error that is not a
/// transaction error (e.g. a flush timeout before the commit) counts as requiring an abort.
pub(crate) fn transaction_error(operation: &'static str, error: &KafkaError) -> AdapterError {
    match error {
        KafkaError::Transaction(rd) => AdapterError::Transaction {
            operation,
            code: kafka_code(rd.code()),
            reason: rd.to_string(),
            fatal: rd.is_fatal(),
            requires_abort: rd.txn_requires_abort(),
            retriable: rd.is_retriable(),
        },
        other => AdapterError::Transaction {
            operation,
            code: code_of(other),
            reason: other.to_string(),
            fatal: false,
            requires_abort: true,
            retriable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaRespErr;

    use super::*;

    /// The ports' code table was generated from librdkafka's headers; the linked librdkafka
    /// must agree on every number, name and description.
    #[test]
    fn error_codes_read_as_librdkafka_reads_them() {
        for &code in KafkaErrorCode::ALL {
            let native = RDKafkaRespErr::try_from(code.get())
                .unwrap_or_else(|_| panic!("librdkafka does not know {code:?}"));
            let librdkafka = RDKafkaErrorCode::from(native);
            assert_eq!(kafka_code(librdkafka), code, "{librdkafka:?}");
            assert_eq!(code.to_string(), librdkafka.to_string());
        }
    }

    #[test]
    fn every_code_librdkafka_names_is_in_the_table() {
        for number in -200..200 {
            let Ok(native) = RDKafkaRespErr::try_from(number) else {
                continue;
            };
            let librdkafka = RDKafkaErrorCode::from(native);
            let name = format!("{librdkafka:?}");
            if matches!(name.as_str(), "Begin" | "End" | "EndAll") {
                continue;
            }
            assert_eq!(
                KafkaErrorCode::new(number).name(),
                Some(name.as_str()),
                "code {number}"
            );
        }
    }

    #[test]
    fn a_librdkafka_error_keeps_its_code_and_text() {
        let error = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let text = error.to_string();
        let adapter = AdapterError::Request {
            operation: "producing",
            topic: None,
            code: kafka_code_of(&error),
            source: Box::new(error),
        };
        assert!(adapter.to_string().contains(&text), "{adapter}");
        assert_eq!(adapter.code(), Some(KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE));
        assert!(std::error::Error::source(&adapter).is_some());
    }
}
