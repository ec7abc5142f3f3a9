#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use kafka_adapters::{
    AdapterError, DeliveryReport, KafkaConfig, OutboundRecord, ReadUntil, RecordSink, TopicRecord,
    read_topic,
};
use pipeline::dead_letter_headers;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Header added to every replayed record: `<dead-letter topic>/<partition>/<offset>`
/// ([`dead_letter_headers::REPLAYED_FROM`], named here too for the tool's users).
pub const REPLAYED_FROM_HEADER: &str = dead_letter_headers::REPLAYED_FROM;

/// A failed delivery is sent again this many times before the replay gives up.
const MAX_ATTEMPTS: u32 = 5;

/// What to replay, and where to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// The dead-letter topic to read.
    pub dead_letter_topic: String,
    /// Where the records go, normally the processor's input topic.
    pub target_topic: String,
    /// Only records whose `dlq.reason` is one of these (e.g. `unauthorized`); empty: all.
    pub reasons: Vec<String>,
    /// Only these dead-letter partitions; empty: all.
    pub partitions: Vec<i32>,
    /// The first dead-letter offset to consider, per partition.
    pub from_offsets: FromOffsets,
    /// Select and report, produce nothing.
    pub dry_run: bool,
    /// Longest wait for reading the dead-letter topic to its end.
    pub read_timeout: Duration,
    /// Longest wait for every replayed record to be acknowledged.
    pub delivery_timeout: Duration,
}

impl ReplayOptions {
    /// Everything in `dead_letter_topic` to `target_topic`, with 60 s read and delivery timeouts.
    pub fn new(dead_letter_topic: impl Into<String>, target_topic: impl Into<String>) -> Self {
        Self {
            dead_letter_topic: dead_letter_topic.into(),
            target_topic: target_topic.into(),
            reasons: Vec::new(),
            partitions: Vec::new(),
            from_offsets: FromOffsets::default(),
            dry_run: false,
            read_timeout: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(60),
        }
    }

    /// Whether `record` (read from partition `record.partition`) is to be replayed.
    pub fn selects(&self, record: &TopicRecord) -> bool {
        let partition_ok =
            self.partitions.is_empty() || self.partitions.contains(&record.partition);
        let offset_ok = record.offset >= self.from_offsets.start_of(record.partition);
        let reason_ok = self.reasons.is_empty()
            || reason_of(record).is_some_and(|reason| self.reasons.iter().any(|r| r == reason));
        partition_ok && offset_ok && reason_ok
    }
}

/// Start offsets: one for every partition (`120`) and/or per partition (`0:120`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FromOffsets {
    all: Option<i64>,
    per_partition: BTreeMap<i32, i64>,
}

impl FromOffsets {
    /// Parses `--from-offset` values: `OFFSET` for every partition, `PARTITION:OFFSET` for one
    /// (which wins over the former).
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, ReplayError> {
        let mut offsets = Self::default();
        for spec in specs {
            let spec = spec.as_ref().trim();
            let bad = || ReplayError::BadFromOffset {
                spec: spec.to_owned(),
            };
            match spec.split_once(':') {
                Some((partition, offset)) => {
                    let partition: i32 = partition.trim().parse().map_err(|_| bad())?;
                    let offset: i64 = offset.trim().parse().map_err(|_| bad())?;
                    if partition < 0 || offset < 0 {
                        return Err(bad());
                    }
                    offsets.per_partition.insert(partition, offset);
                }
                None => {
                    let offset: i64 = spec.parse().map_err(|_| bad())?;
                    if offset < 0 {
                        return Err(bad());
                    }
                    offsets.all = Some(offset);
                }
            }
        }
        Ok(offsets)
    }

    /// The first offset of `partition` to consider.
    pub fn start_of(&self, partition: i32) -> i64 {
        self.per_partition
            .get(&partition)
            .copied()
            .or(self.all)
            .unwrap_or(0)
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Dead-letter records read.
    pub read: usize,
    /// Records selected, per reason (`unknown` when a record has no `dlq.reason` header).
    pub selected_by_reason: BTreeMap<String, usize>,
    /// The selected records' positions, in replay order: (partition, offset, reason).
    pub selected: Vec<(i32, i64, String)>,
    /// Records produced and acknowledged (0 on a dry run).
    pub replayed: usize,
    /// Per dead-letter partition, the offset after the last record read: pass these as
    /// `--from-offset PARTITION:OFFSET` so the next replay starts after this one.
    pub next_offsets: BTreeMap<i32, i64>,
}

impl ReplaySummary {
    /// Records selected in total.
    pub fn selected_total(&self) -> usize {
        self.selected.len()
    }
}

/// Why a replay failed. Records acknowledged before the failure stay produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A `--from-offset` value is neither `OFFSET` nor `PARTITION:OFFSET`.
    #[error("bad start offset `{spec}`: expected OFFSET or PARTITION:OFFSET, both non-negative")]
    BadFromOffset {
        /// The value given.
        spec: String,
    },
    /// The dead-letter topic could not be read.
    #[error("cannot read dead-letter topic {topic}: {source}")]
    Read {
        /// The topic.
        topic: String,
        /// What the client said.
        #[source]
        source: Box<AdapterError>,
    },
    /// The producer could not be created.
    #[error("cannot create the producer: {0}")]
    Producer(#[source] Box<AdapterError>),
    /// A record could not be delivered to the target topic.
    #[error(
        "cannot replay dead-letter record {dead_letter_topic}/{partition}/{offset} to {target_topic} \
         ({delivered} records delivered before): {source}"
    )]
    Delivery {
        /// The dead-letter topic.
        dead_letter_topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Where it was going.
        target_topic: String,
        /// Records acknowledged before the failure.
        delivered: usize,
        /// What the broker said.
        #[source]
        source: Box<AdapterError>,
    },
    /// Not every record was acknowledged in time.
    #[error(
        "only {delivered} of {total} replayed records were acknowledged within {timeout:?}; \
         replaying again may duplicate the acknowledged ones (the processor routes duplicates again)"
    )]
    Timeout {
        /// Records acknowledged.
        delivered: usize,
        /// Records selected.
        total: usize,
        /// The delivery timeout.
        timeout: Duration,
    },
}

/// The `dlq.reason` header of a dead-letter record.
pub fn reason_of(record: &TopicRecord) -> Option<&str> {
    header(record, dead_letter_headers::REASON)
}

/// The last header named `name`: the processor adds its `dlq.*` headers after the input's own,
/// so an input header of the same name (a replayed event's) does not shadow them.
fn header<'a>(record: &'a TopicRecord, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

/// The input record a dead-letter record turns back into: its key and value, its headers but the
/// `dlq.*` ones, and [`REPLAYED_FROM_HEADER`].
pub fn replay_record(
    dead_letter_topic: &str,
    record: &TopicRecord,
    target_topic: &Arc<str>,
) -> OutboundRecord {
    let mut headers: Vec<(String, Vec<u8>)> = record
        .headers
        .iter()
        .filter(|(key, _)| !key.starts_with(dead_letter_headers::PREFIX))
        .cloned()
        .collect();
    headers.push((
        REPLAYED_FROM_HEADER.to_owned(),
        format!("{dead_letter_topic}/{}/{}", record.partition, record.offset).into_bytes(),
    ));
    OutboundRecord {
        topic: Arc::clone(target_topic),
        key: record.key.clone(),
        payload: record.payload.clone().unwrap_or_default(),
        headers,
    }
}

/// Reads the dead-letter topic, selects records as `options` says and (unless a dry run)
/// produces them to the target topic, returning once the broker acknowledged every one.
pub async fn replay(
    kafka: &KafkaConfig,
    options: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let records = read_topic(
        kafka,
        &options.dead_letter_topic,
        ReadUntil::End,
        options.read_timeout,
    )
    .await
    .map_err(|source| ReplayError::Read {
        topic: options.dead_letter_topic.clone(),
        source: Box::new(source),
    })?;
    let mut summary = ReplaySummary {
        read: records.len(),
        ..ReplaySummary::default()
    };
    for record in &records {
        let next = summary.next_offsets.entry(record.partition).or_insert(0);
        *next = (*next).max(record.offset + 1);
    }
    let selected: Vec<&TopicRecord> = records
        .iter()
        .filter(|record| options.selects(record))
        .collect();
    for record in &selected {
        let reason = reason_of(record).unwrap_or("unknown").to_owned();
        *summary
            .selected_by_reason
            .entry(reason.clone())
            .or_default() += 1;
        summary
            .selected
            .push((record.partition, record.offset, reason));
    }
    if options.dry_run || selected.is_empty() {
        return Ok(summary);
    }
    summary.replayed = produce_all(kafka, options, &selected).await?;
    Ok(summary)
}

/// Produces `selected` in order and waits for every acknowledgement, re-sending failed
/// deliveries a few times.
async fn produce_all(
    kafka: &KafkaConfig,
    options: &ReplayOptions,
    selected: &[&TopicRecord],
) -> Result<usize, ReplayError> {
    let (report_sender, mut reports) = mpsc::unbounded_channel::<DeliveryReport>();
    let sink = kafka_adapters::kafka_producer(kafka, report_sender)
        .map_err(|error| ReplayError::Producer(Box::new(error)))?;
    let target: Arc<str> = Arc::from(options.target_topic.as_str());
    let deadline = Instant::now() + options.delivery_timeout;
    let mut attempts = vec![0u32; selected.len()];
    let mut waiting: Vec<(usize, OutboundRecord)> = Vec::new();
    let mut next = 0;
    let mut delivered = 0;
    let fail = |tag: usize, delivered: usize, source: AdapterError| ReplayError::Delivery {
        dead_letter_topic: options.dead_letter_topic.clone(),
        partition: selected[tag].partition,
        offset: selected[tag].offset,
        target_topic: options.target_topic.clone(),
        delivered,
        source: Box::new(source),
    };
    while delivered < selected.len() {
        // Send what waits for a retry first, then new records, until the local queue is full.
        let mut queue_full = false;
        while !queue_full {
            let (tag, record) = match waiting.pop() {
                Some(entry) => entry,
                None if next < selected.len() => {
                    let record = replay_record(&options.dead_letter_topic, selected[next], &target);
                    next += 1;
                    (next - 1, record)
                }
                None => break,
            };
            attempts[tag] += 1;
            if let Err(rejected) = sink.send(record, tag) {
                if !rejected.queue_full {
                    return Err(fail(tag, delivered, rejected.error));
                }
                attempts[tag] -= 1;
                waiting.push((rejected.tag, rejected.record));
                queue_full = true;
            }
        }
        let report = match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) | Err(_) => {
                return Err(ReplayError::Timeout {
                    delivered,
                    total: selected.len(),
                    timeout: options.delivery_timeout,
                });
            }
        };
        match report.result {
            Ok(_) => delivered += 1,
            Err(failure) if failure.retriable && attempts[report.tag] < MAX_ATTEMPTS => {
                tracing::warn!(error = %failure.error, attempt = attempts[report.tag], "Delivery failed; sending again.");
                waiting.push((report.tag, failure.record));
            }
            Err(failure) => return Err(fail(report.tag, delivered, failure.error)),
        }
    }
    let _ = sink.flush(Duration::from_secs(5)).await;
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_letter(partition: i32, offset: i64, reason: &str) -> TopicRecord {
        TopicRecord {
            partition,
            offset,
            key: Some(format!("key-{offset}").into_bytes()),
            payload: Some(vec![0, 0, 0, 0, 7, offset as u8]),
            headers: vec![
                (
                    dead_letter_headers::REASON.to_owned(),
                    reason.as_bytes().to_vec(),
                ),
                (
                    dead_letter_headers::SOURCE_OFFSET.to_owned(),
                    b"99".to_vec(),
                ),
                ("traceparent".to_owned(), b"00-abc-01".to_vec()),
            ],
            timestamp_ms: Some(1),
        }
    }

    #[test]
    fn replayed_record_keeps_key_value_and_foreign_headers_and_names_its_origin() {
        let target: Arc<str> = Arc::from("input");
        let record = replay_record("input.dlq", &dead_letter(2, 41, "unauthorized"), &target);
        assert_eq!(&*record.topic, "input");
        assert_eq!(record.key.as_deref(), Some(&b"key-41"[..]));
        assert_eq!(record.payload, vec![0, 0, 0, 0, 7, 41]);
        assert_eq!(
            record.headers,
            vec![
                ("traceparent".to_owned(), b"00-abc-01".to_vec()),
                (REPLAYED_FROM_HEADER.to_owned(), b"input.dlq/2/41".to_vec()),
            ]
        );
    }

    #[test]
    fn original_headers_are_replayed_byte_for_byte_and_the_processors_reason_wins() {
        // A dead letter as the processor writes it: the input's headers first (here a replayed
        // event's, with its own `dlq.*` leftovers), then the processor's `dlq.*` headers.
        let mut record = dead_letter(0, 7, "undecodable");
        let processor_headers = std::mem::take(&mut record.headers);
        record.headers = vec![
            ("bin".to_owned(), vec![0xff, 0x00, 0x80]),
            (
                dead_letter_headers::REASON.to_owned(),
                b"unauthorized".to_vec(),
            ),
            (REPLAYED_FROM_HEADER.to_owned(), b"input.dlq/0/1".to_vec()),
            ("bin".to_owned(), b"again".to_vec()),
        ];
        record.headers.extend(processor_headers);
        assert_eq!(reason_of(&record), Some("undecodable"));
        let replayed = replay_record("input.dlq", &record, &Arc::from("input"));
        assert_eq!(
            replayed.headers,
            vec![
                ("bin".to_owned(), vec![0xff, 0x00, 0x80]),
                ("bin".to_owned(), b"again".to_vec()),
                ("traceparent".to_owned(), b"00-abc-01".to_vec()),
                (REPLAYED_FROM_HEADER.to_owned(), b"input.dlq/0/7".to_vec()),
            ]
        );
    }

    #[test]
    fn selects_by_reason_partition_and_start_offset() {
        let mut options = ReplayOptions::new("dlq", "input");
        let unauthorized = dead_letter(0, 5, "unauthorized");
        let undecodable = dead_letter(1, 5, "undecodable");
        assert!(options.selects(&unauthorized) && options.selects(&undecodable));

        options.reasons = vec!["unauthorized".to_owned()];
        assert!(options.selects(&unauthorized));
        assert!(!options.selects(&undecodable));

        options.reasons.clear();
        options.partitions = vec![1];
        assert!(!options.selects(&unauthorized));
        assert!(options.selects(&undecodable));

        options.partitions.clear();
        options.from_offsets = FromOffsets::parse(&["6", "1:5"]).expect("valid");
        assert!(!options.selects(&unauthorized), "partition 0 starts at 6");
        assert!(options.selects(&undecodable), "partition 1 starts at 5");
    }

    #[test]
    fn record_without_a_reason_is_selected_only_without_a_reason_filter() {
        let mut record = dead_letter(0, 0, "unauthorized");
        record.headers.clear();
        let mut options = ReplayOptions::new("dlq", "input");
        assert!(options.selects(&record));
        options.reasons = vec!["unauthorized".to_owned()];
        assert!(!options.selects(&record));
    }

    #[test]
    fn start_offsets_parse_or_say_what_is_wrong() {
        let offsets = FromOffsets::parse(&["10", "2:3"]).expect("valid");
        assert_eq!(offsets.start_of(0), 10);
        assert_eq!(offsets.start_of(2), 3);
        assert_eq!(FromOffsets::default().start_of(4), 0);
        for bad in ["x", "1:", ":4", "-1", "0:-2", "1:2:3"] {
            let error = FromOffsets::parse(&[bad]).expect_err(bad);
            assert!(error.to_string().contains(bad), "{error}");
        }
    }
}
