//! Per-record output lines, human or JSON.

use std::borrow::Cow;

use avro_codec::ProcessorToConsumer;
use serde::Serialize;

use crate::cli::Format;
use crate::feed::ConsumedRecord;

/// What a record turned out to be.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Content<'a> {
    /// An output record.
    Output(&'a ProcessorToConsumer),
    /// A record of the dead-letter topic.
    DeadLetter { dead_letter: DeadLetter<'a> },
    /// A value that cannot be read as an output record.
    Undecodable { error: String },
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeadLetter<'a> {
    /// The `dlq.reason` header.
    pub(crate) reason: Option<&'a str>,
    /// The `dlq.error` header.
    pub(crate) error: Option<&'a str>,
    /// The event id, when the value is a readable input record of `event-producer`.
    pub(crate) id: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<Cow<'a, str>>,
    #[serde(flatten)]
    content: &'a Content<'a>,
}

pub(crate) fn line(format: Format, record: &ConsumedRecord, content: &Content<'_>) -> String {
    match format {
        Format::Human => human_line(record, content),
        Format::Json => json_line(record, content),
    }
}

fn human_line(record: &ConsumedRecord, content: &Content<'_>) -> String {
    let key = record
        .key
        .as_deref()
        .map_or(Cow::Borrowed("<null>"), String::from_utf8_lossy);
    let position = format!(
        "{}[{}]@{} key={key}",
        record.topic, record.partition, record.offset
    );
    match content {
        Content::Output(output) => format!(
            "{position} producer={} processor={} destination={} produced_at={} processed_at={} latency_ms={} payload={:?}",
            output.producer_service_id,
            output.processor_service_id,
            output.destination_type,
            output.producer_event_timestamp,
            output.processor_event_timestamp,
            output
                .processor_event_timestamp
                .saturating_sub(output.producer_event_timestamp),
            output.payload,
        ),
        Content::DeadLetter { dead_letter } => format!(
            "{position} dead-letter reason={} id={} error={:?}",
            dead_letter.reason.unwrap_or("<none>"),
            dead_letter.id.unwrap_or("<unknown>"),
            dead_letter.error.unwrap_or(""),
        ),
        Content::Undecodable { error } => format!("{position} undecodable: {error}"),
    }
}

fn json_line(record: &ConsumedRecord, content: &Content<'_>) -> String {
    let line = JsonLine {
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        key: record.key.as_deref().map(String::from_utf8_lossy),
        content,
    };
    serde_json::to_string(&line).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn consumed(key: Option<&str>) -> ConsumedRecord {
        ConsumedRecord {
            topic: Arc::from("processor.to.finance"),
            partition: 1,
            offset: 42,
            key: key.map(|key| key.as_bytes().to_vec()),
            payload: None,
            headers: Vec::new(),
        }
    }

    fn output() -> ProcessorToConsumer {
        ProcessorToConsumer {
            producer_service_id: "f-1".to_owned(),
            processor_service_id: "event-processor-1".to_owned(),
            destination_type: "FINANCE".to_owned(),
            producer_event_timestamp: 1_650_000_000_000,
            processor_event_timestamp: 1_650_000_000_123,
            payload: "dummy-payload x".to_owned(),
        }
    }

    #[test]
    fn human_line_shows_position_key_and_fields() {
        let output = output();
        let text = line(
            Format::Human,
            &consumed(Some("f-1:FINANCE")),
            &Content::Output(&output),
        );
        assert_eq!(
            text,
            "processor.to.finance[1]@42 key=f-1:FINANCE producer=f-1 processor=event-processor-1 \
             destination=FINANCE produced_at=1650000000000 processed_at=1650000000123 \
             latency_ms=123 payload=\"dummy-payload x\""
        );
    }

    #[test]
    fn json_line_flattens_the_record_fields() {
        let output = output();
        let text = line(Format::Json, &consumed(None), &Content::Output(&output));
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({
                "topic": "processor.to.finance",
                "partition": 1,
                "offset": 42,
                "key": null,
                "producer_service_id": "f-1",
                "processor_service_id": "event-processor-1",
                "destination_type": "FINANCE",
                "producer_event_timestamp": 1_650_000_000_000_i64,
                "processor_event_timestamp": 1_650_000_000_123_i64,
                "payload": "dummy-payload x"
            })
        );
    }

    #[test]
    fn dead_letters_show_their_reason() {
        let content = Content::DeadLetter {
            dead_letter: DeadLetter {
                reason: Some("unauthorized"),
                error: Some("tenant MARKETING may not send to LOGISTICS"),
                id: Some("abc"),
            },
        };
        let human = line(Format::Human, &consumed(Some("m-1:LOGISTICS")), &content);
        assert!(
            human.ends_with(
                "dead-letter reason=unauthorized id=abc error=\"tenant MARKETING may not send to LOGISTICS\""
            ),
            "{human}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&line(Format::Json, &consumed(None), &content)).expect("JSON");
        assert_eq!(json["dead_letter"]["reason"], "unauthorized");
    }

    #[test]
    fn undecodable_values_show_the_error() {
        let content = Content::Undecodable {
            error: "first byte is 0x70".to_owned(),
        };
        assert!(
            line(Format::Human, &consumed(None), &content)
                .ends_with("key=<null> undecodable: first byte is 0x70")
        );
    }
}
