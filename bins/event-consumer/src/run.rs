//! One run: check the topics, read them until idle, `--max` or (with a manifest) every id
//! seen, print each record, and summarize.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Stdout, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use router_core::dead_letter_headers;
use serde::Serialize;
use tracing::{info, warn};

use crate::cli::{Format, Settings};
use crate::decode::Decoders;
use crate::feed::{ConsumedRecord, Feed};
use crate::manifest::read_manifest;
use crate::print::{Content, DeadLetter, line};
use crate::verify::{VerificationReport, Verifier, payload_id};

/// How long a consumer group may take to get its first partitions before the run gives up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(90);

/// Undecodable records logged one by one; later ones are only counted.
const LOGGED_UNDECODABLE: u64 = 5;

/// Why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StopReason {
    /// Every manifest id was accounted for.
    AllSeen,
    /// No new record for the idle timeout.
    IdleTimeout,
    /// `--max` records were read.
    Max,
    /// Ctrl-C.
    Interrupted,
}

impl StopReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::AllSeen => "all_seen",
            Self::IdleTimeout => "idle_timeout",
            Self::Max => "max",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Dead letters read, by their `dlq.reason` header (`unknown` without one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct DeadLetterCounts {
    pub(crate) total: u64,
    pub(crate) by_reason: BTreeMap<String, u64>,
}

/// What a run read, and the verification result with a manifest. Written by `--summary-json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// No verification, or a verification that passed.
    pub(crate) ok: bool,
    pub(crate) stopped_by: StopReason,
    pub(crate) elapsed_ms: u64,
    pub(crate) records_read: u64,
    pub(crate) per_topic: BTreeMap<String, u64>,
    /// Records of output topics that are not readable `ProcessorToConsumer` values.
    pub(crate) undecodable: u64,
    pub(crate) dead_letters: DeadLetterCounts,
    pub(crate) verification: Option<VerificationReport>,
}

impl Summary {
    /// The summary for a person: a headline, then counts per topic, dead letters and the
    /// verification.
    pub(crate) fn human(&self) -> String {
        let mut text = format!(
            "summary: records={} undecodable={} dead_letters={} stopped_by={} elapsed_s={:.3}\n",
            self.records_read,
            self.undecodable,
            self.dead_letters.total,
            self.stopped_by.as_str(),
            Duration::from_millis(self.elapsed_ms).as_secs_f64(),
        );
        for (topic, count) in &self.per_topic {
            let _ = writeln!(text, "  {topic}: {count} records");
        }
        if !self.dead_letters.by_reason.is_empty() {
            let reasons: Vec<String> = self
                .dead_letters
                .by_reason
                .iter()
                .map(|(reason, count)| format!("{reason}={count}"))
                .collect();
            let _ = writeln!(text, "  dead letters by reason: {}", reasons.join(" "));
        }
        if let Some(report) = &self.verification {
            write_verification(&mut text, report);
        }
        text
    }
}

fn write_verification(text: &mut String, report: &VerificationReport) {
    let _ = writeln!(
        text,
        "verification: {} expected={} received={} missing={} duplicates={} misrouted={} unexpected={} dead_lettered={}",
        if report.ok { "OK" } else { "FAILED" },
        report.expected,
        report.received,
        report.missing.count,
        report.duplicates.count,
        report.misrouted.count,
        report.unexpected,
        report.dead_lettered,
    );
    for (destination, tally) in &report.per_destination {
        let _ = writeln!(
            text,
            "  {destination} on {}: expected={} received={} missing={}",
            tally.topic, tally.expected, tally.received, tally.missing
        );
    }
    if report.expected_dead_letters > 0 {
        let _ = writeln!(
            text,
            "  expected dead letters (e.g. spoofed events): {} of {} dead-lettered with the expected reason",
            report.dead_lettered_as_expected, report.expected_dead_letters
        );
    }
    if report.missing.count > 0 {
        let _ = writeln!(
            text,
            "  missing ids ({} of them on the dead-letter topic), first {}: {}",
            report.missing_dead_lettered,
            report.missing.first.len(),
            report.missing.first.join(" ")
        );
    }
    if report.duplicates.count > 0 {
        let _ = writeln!(
            text,
            "  duplicated ids, first {}: {}",
            report.duplicates.first.len(),
            report.duplicates.first.join(" ")
        );
    }
    for misroute in &report.misrouted.first {
        let _ = writeln!(
            text,
            "  misrouted: {} (destination {}{}) belongs on {} but was on {}",
            misroute.id,
            misroute.destination,
            misroute
                .tenant
                .as_deref()
                .map(|tenant| format!(", tenant {tenant}"))
                .unwrap_or_default(),
            misroute.expected_topic,
            misroute.topic
        );
    }
}

/// Reads until a stop condition; returns the summary (also written to `--summary-json`).
///
/// # Errors
/// Unusable broker, topics, registry, manifest or output file.
pub(crate) async fn run(settings: &Settings, stop: &AtomicBool) -> Result<Summary> {
    let mut verifier = match &settings.verify {
        Some(path) => Some(Verifier::new(
            &read_manifest(path)?,
            &settings.destination_topics,
            settings.accept_dead_lettered,
        )),
        None => None,
    };
    let topics = settings.topics_to_read(verifier.iter().flat_map(Verifier::destinations));
    check_topics(settings, &topics).await?;
    let decoders = Decoders::new(&settings.registry_url, settings.connect_timeout)?;
    let feed = match &settings.group {
        Some(group) => Feed::with_group(&settings.kafka, group, topics.clone())?,
        None => Feed::without_group(&settings.kafka, topics.clone()),
    };
    info!(topics = %topics.join(","), "Reading.");
    let mut reader = Reader {
        settings,
        decoders,
        out: BufWriter::new(std::io::stdout()),
        records_read: 0,
        per_topic: BTreeMap::new(),
        undecodable: 0,
        dead_letters: DeadLetterCounts::default(),
    };
    let started = Instant::now();
    let stopped_by = reader.read(feed, verifier.as_mut(), stop).await?;
    let summary = Summary {
        ok: verifier
            .as_ref()
            .is_none_or(|verifier| verifier.report().ok),
        stopped_by,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        records_read: reader.records_read,
        per_topic: reader.per_topic,
        undecodable: reader.undecodable,
        dead_letters: reader.dead_letters,
        verification: verifier.as_ref().map(Verifier::report),
    };
    if let Some(path) = &settings.summary_json {
        write_summary_json(path, &summary)?;
    }
    Ok(summary)
}

/// Fails early and clearly on an unreachable broker or a missing topic.
async fn check_topics(settings: &Settings, topics: &[String]) -> Result<()> {
    let bootstrap = &settings.kafka.bootstrap_servers;
    let missing = cli_support::missing_topics(
        &settings.kafka,
        topics.iter().map(String::as_str),
        settings.connect_timeout,
    )
    .await?;
    if !missing.is_empty() {
        bail!(
            "topics missing on the broker at {bootstrap}: {}; check --topics, --destination-topic \
             and --dead-letter-topic (or pass --no-dead-letter-topic)",
            missing.join(", ")
        );
    }
    Ok(())
}

fn write_summary_json(path: &Path, summary: &Summary) -> Result<()> {
    let json = serde_json::to_string_pretty(summary).context("cannot serialize the summary")?;
    std::fs::write(path, json + "\n")
        .with_context(|| format!("cannot write summary file {}", path.display()))
}

struct Reader<'a> {
    settings: &'a Settings,
    decoders: Decoders,
    out: BufWriter<Stdout>,
    records_read: u64,
    per_topic: BTreeMap<String, u64>,
    undecodable: u64,
    dead_letters: DeadLetterCounts,
}

impl Reader<'_> {
    async fn read(
        &mut self,
        mut feed: Feed,
        mut verifier: Option<&mut Verifier>,
        stop: &AtomicBool,
    ) -> Result<StopReason> {
        let started = Instant::now();
        let mut last_news: Option<Instant> = None;
        let stopped_by = loop {
            if stop.load(Ordering::Relaxed) {
                break StopReason::Interrupted;
            }
            if !self.settings.until_idle && verifier.as_deref().is_some_and(Verifier::complete) {
                break StopReason::AllSeen;
            }
            let batch = feed.next_batch().await?;
            if batch.is_empty() {
                if !feed.is_ready() {
                    if started.elapsed() >= JOIN_TIMEOUT {
                        bail!(
                            "the consumer group got no partitions within {JOIN_TIMEOUT:?}; is \
                             another member holding them, or are the group settings too slow for \
                             this broker (try --kafka-property session.timeout.ms=6000)?"
                        );
                    }
                    continue;
                }
                // Idle time counts from the first moment records could arrive.
                let last = *last_news.get_or_insert_with(Instant::now);
                if last.elapsed() >= self.settings.idle_timeout {
                    break StopReason::IdleTimeout;
                }
                continue;
            }
            last_news = Some(Instant::now());
            let reached_max = self
                .handle_batch(&batch, &mut feed, verifier.as_deref_mut())
                .await?;
            self.out.flush().context("cannot write to stdout")?;
            feed.checkpoint().await;
            if reached_max {
                break StopReason::Max;
            }
        };
        self.out.flush().context("cannot write to stdout")?;
        feed.close().await;
        Ok(stopped_by)
    }

    /// Handles records in order; true when `--max` was reached (the rest is left unprocessed).
    async fn handle_batch(
        &mut self,
        batch: &[ConsumedRecord],
        feed: &mut Feed,
        mut verifier: Option<&mut Verifier>,
    ) -> Result<bool> {
        for record in batch {
            self.handle(record, verifier.as_deref_mut()).await?;
            feed.processed(record);
            if self
                .settings
                .max
                .is_some_and(|max| self.records_read >= max)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn handle(
        &mut self,
        record: &ConsumedRecord,
        verifier: Option<&mut Verifier>,
    ) -> Result<()> {
        self.records_read += 1;
        *self.per_topic.entry(record.topic.to_string()).or_default() += 1;
        let value = record.payload.as_deref().unwrap_or_default();
        if self.settings.dead_letter_topic.as_deref() == Some(&*record.topic) {
            return self.handle_dead_letter(record, value, verifier).await;
        }
        match self.decoders.output(value).await? {
            Ok(output) => {
                if let Some(verifier) = verifier {
                    verifier.observe(&record.topic, &output.payload);
                }
                self.print(record, &Content::Output(&output))
            }
            Err(error) => {
                self.undecodable += 1;
                if self.undecodable <= LOGGED_UNDECODABLE {
                    warn!(
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        %error,
                        "A record of an output topic cannot be decoded."
                    );
                }
                self.print(
                    record,
                    &Content::Undecodable {
                        error: error.to_string(),
                    },
                )
            }
        }
    }

    async fn handle_dead_letter(
        &mut self,
        record: &ConsumedRecord,
        value: &[u8],
        verifier: Option<&mut Verifier>,
    ) -> Result<()> {
        let reason = record.header(dead_letter_headers::REASON);
        let error = record.header(dead_letter_headers::ERROR);
        // Dead letters keep the input value: when it is an event of ours, it names its id.
        let input = self.decoders.input(value).await?.ok();
        let id = input.as_ref().and_then(|input| payload_id(&input.payload));
        self.dead_letters.total += 1;
        *self
            .dead_letters
            .by_reason
            .entry(reason.clone().unwrap_or_else(|| "unknown".to_owned()))
            .or_default() += 1;
        if let Some(verifier) = verifier {
            verifier.observe_dead_letter(id, reason.as_deref());
        }
        let dead_letter = DeadLetter {
            reason: reason.as_deref(),
            error: error.as_deref(),
            id,
        };
        self.print(record, &Content::DeadLetter { dead_letter })
    }

    fn print(&mut self, record: &ConsumedRecord, content: &Content<'_>) -> Result<()> {
        if self.settings.quiet {
            return Ok(());
        }
        writeln!(self.out, "{}", line(self.settings.format, record, content))
            .context("cannot write to stdout")
    }
}

/// Where the summary goes: after human lines on stdout, but not into a JSON-lines stream.
pub(crate) fn print_summary(settings: &Settings, summary: &Summary) {
    match settings.format {
        Format::Human => print!("{}", summary.human()),
        Format::Json => eprint!("{}", summary.human()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{DestinationReport, Examples, Misroute};

    #[test]
    fn human_summary_lists_topics_dead_letters_and_verification_problems() {
        let summary = Summary {
            ok: false,
            stopped_by: StopReason::IdleTimeout,
            elapsed_ms: 1500,
            records_read: 3,
            per_topic: BTreeMap::from([("processor.to.finance".to_owned(), 2)]),
            undecodable: 0,
            dead_letters: DeadLetterCounts {
                total: 1,
                by_reason: BTreeMap::from([("undecodable".to_owned(), 1)]),
            },
            verification: Some(VerificationReport {
                ok: false,
                expected: 3,
                received: 1,
                per_destination: BTreeMap::from([(
                    "FINANCE".to_owned(),
                    DestinationReport {
                        topic: "processor.to.finance".to_owned(),
                        expected: 3,
                        received: 1,
                        missing: 2,
                    },
                )]),
                missing: Examples {
                    count: 1,
                    first: vec!["id-3".to_owned()],
                },
                missing_dead_lettered: 0,
                dead_lettered: 0,
                expected_dead_letters: 0,
                dead_lettered_as_expected: 0,
                duplicates: Examples::default(),
                misrouted: Examples {
                    count: 1,
                    first: vec![Misroute {
                        id: "id-2".to_owned(),
                        tenant: None,
                        destination: "FINANCE".to_owned(),
                        expected_topic: "processor.to.finance".to_owned(),
                        topic: "processor.to.marketing".to_owned(),
                    }],
                },
                unexpected: 0,
            }),
        };
        assert_eq!(
            summary.human(),
            "summary: records=3 undecodable=0 dead_letters=1 stopped_by=idle_timeout elapsed_s=1.500\n\
             \x20 processor.to.finance: 2 records\n\
             \x20 dead letters by reason: undecodable=1\n\
             verification: FAILED expected=3 received=1 missing=1 duplicates=0 misrouted=1 unexpected=0 dead_lettered=0\n\
             \x20 FINANCE on processor.to.finance: expected=3 received=1 missing=2\n\
             \x20 missing ids (0 of them on the dead-letter topic), first 1: id-3\n\
             \x20 misrouted: id-2 (destination FINANCE) belongs on processor.to.finance but was on processor.to.marketing\n"
        );
        let json = serde_json::to_value(&summary).expect("serializable");
        assert_eq!(json["stopped_by"], "idle_timeout");
        assert_eq!(json["verification"]["missing"]["first"][0], "id-3");
    }
}
