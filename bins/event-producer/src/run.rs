//! One run: check the topic, get the value schema id, send every scheduled record without
//! waiting on any single delivery, collect every delivery report, and summarize.
//!
//! Every record the sink accepts gets exactly one delivery report (a kafka-adapters
//! guarantee), so the run ends when the in-flight table is empty; `message.timeout.ms` bounds
//! how long that can take when the broker goes away.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use avro_codec::{InputEncoder, PRODUCER_TO_PROCESSOR_SCHEMA, SchemaRegistry};
use cli_support::now_ms;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kafka_adapters::{DeliveryReport, DeliveryTag, KafkaRecordSink, OutboundRecord, RecordSink};
use schema_registry::{HttpSchemaRegistry, RegistryClientConfig};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{info, warn};
use uuid::Uuid;

use crate::cli::Settings;
use crate::events::{Schedule, Slot, Tenant, event_record, is_spoofed, poison_key, poison_value};
use crate::manifest::{ManifestEntry, ManifestWriter};
use crate::pacing::Pacer;

/// Delivery failures logged one by one; later ones are only counted.
const LOGGED_FAILURES: u64 = 5;

/// Margin on top of `message.timeout.ms` before a missing delivery report counts as lost.
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// What a run did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    pub(crate) topic: String,
    /// Records the producer accepted (events and poison values).
    pub(crate) sent: u64,
    pub(crate) events_sent: u64,
    pub(crate) poison_sent: u64,
    /// Events sent claiming another tenant's identity (`--spoof-percent`).
    pub(crate) spoofed_sent: u64,
    pub(crate) acknowledged: u64,
    /// Records refused, not delivered, or without a report in time.
    pub(crate) failed: u64,
    pub(crate) first_failure: Option<String>,
    /// Scheduled sends skipped because the run was interrupted.
    pub(crate) unsent: u64,
    pub(crate) elapsed: Duration,
}

impl Summary {
    /// Every scheduled record was acknowledged by the broker.
    pub(crate) fn all_delivered(&self) -> bool {
        self.failed == 0 && self.unsent == 0
    }

    fn rate_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            // Precision loss only beyond 2^53 records.
            #[allow(clippy::cast_precision_loss)]
            let acknowledged = self.acknowledged as f64;
            acknowledged / seconds
        } else {
            0.0
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary: topic={} sent={} acknowledged={} failed={} events={} poison={} elapsed_s={:.3} rate_per_s={:.1}",
            self.topic,
            self.sent,
            self.acknowledged,
            self.failed,
            self.events_sent,
            self.poison_sent,
            self.elapsed.as_secs_f64(),
            self.rate_per_second(),
        )?;
        if self.spoofed_sent > 0 {
            write!(f, " spoofed={}", self.spoofed_sent)?;
        }
        if self.unsent > 0 {
            write!(f, " interrupted=true unsent={}", self.unsent)?;
        }
        Ok(())
    }
}

/// Runs the producer until every scheduled record is acknowledged or failed, or `stop` is set
/// (then the records already sent are still waited for).
///
/// # Errors
/// Setup failures (broker or topic unusable, registry unusable, manifest not writable) and a
/// delivery-report channel that stops answering. Failed deliveries are not errors: they are
/// counted in the [`Summary`].
pub(crate) async fn run(settings: &Settings, stop: &AtomicBool) -> Result<Summary> {
    check_topic(settings).await?;
    let encoder = input_encoder(settings).await?;
    let manifest = settings
        .manifest
        .as_deref()
        .map(ManifestWriter::create)
        .transpose()?;
    let (report_sender, reports) = tokio::sync::mpsc::unbounded_channel();
    let sink = kafka_adapters::kafka_producer(&settings.kafka, report_sender)
        .context("cannot create the Kafka producer")?;
    let schedule = Schedule::new(
        settings.tenants.len(),
        settings.destinations.len(),
        settings.count_per_tenant,
        settings.poison,
    );
    info!(
        topic = %settings.topic,
        schema_id = %encoder.schema_id(),
        events = settings.event_count(),
        poison = settings.poison,
        signed = settings.auth.is_some(),
        spoof_percent = settings.auth.as_ref().map_or(0, |auth| auth.spoof_percent),
        "Producing."
    );
    let mut producer = Producer {
        settings,
        encoder,
        sink,
        reports,
        in_flight: HashMap::new(),
        next_tag: 0,
        manifest,
        progress: progress_bar(settings, schedule.len()),
        summary: Summary {
            topic: settings.topic.clone(),
            ..Summary::default()
        },
    };
    let started = Instant::now();
    producer.send_all(schedule, stop).await?;
    producer.await_all_reports().await?;
    producer.summary.elapsed = started.elapsed();
    producer.finish().await
}

/// Fails early and clearly when the broker is unreachable or the topic missing, instead of
/// letting every record time out.
async fn check_topic(settings: &Settings) -> Result<()> {
    let bootstrap = &settings.kafka.bootstrap_servers;
    let missing = cli_support::missing_topics(
        &settings.kafka,
        [settings.topic.as_str()],
        settings.connect_timeout,
    )
    .await?;
    if !missing.is_empty() {
        bail!(
            "topic `{}` does not exist on the broker at {bootstrap}; create it first \
             (`cargo xtask stack up` creates the standard topics)",
            settings.topic
        );
    }
    Ok(())
}

/// Registers the input schema under `<topic>-value` (idempotent), or looks it up where the
/// registry does not let producers register.
async fn input_encoder(settings: &Settings) -> Result<InputEncoder> {
    let url = &settings.registry_url;
    let subject = settings.value_subject();
    let registry = HttpSchemaRegistry::new(
        RegistryClientConfig::new(url.clone())
            .with_timeout(settings.connect_timeout)
            .with_max_retries(2),
    )
    .with_context(|| format!("cannot create the schema registry client for {url}"))?;
    let registered = InputEncoder::register(&registry, &subject).await;
    let error = match registered {
        Ok(encoder) => return Ok(encoder),
        Err(error) if error.is_transient() => {
            return Err(error).with_context(|| {
                format!("cannot reach the schema registry at {url}; check --schema-registry-url and that it is up")
            });
        }
        Err(error) => error,
    };
    match registry
        .lookup(&subject, PRODUCER_TO_PROCESSOR_SCHEMA)
        .await
    {
        Ok(found) => {
            warn!(%subject, schema_id = %found.id, %error, "Cannot register the input schema; using the registered one.");
            Ok(InputEncoder::new(found.id))
        }
        Err(_) => Err(error).with_context(|| {
            format!("cannot register or find the input schema under subject `{subject}` at {url}")
        }),
    }
}

fn progress_bar(settings: &Settings, length: u64) -> ProgressBar {
    if !settings.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} acknowledged ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr()).with_style(style)
}

/// A record waiting for its delivery report.
#[derive(Debug, Clone)]
enum Pending {
    Event {
        id: Uuid,
        tenant: usize,
        destination: usize,
        /// Claims the tenant's spoof identity while signed as the tenant.
        spoofed: bool,
    },
    Poison,
}

struct Producer<'a> {
    settings: &'a Settings,
    encoder: InputEncoder,
    sink: KafkaRecordSink,
    reports: UnboundedReceiver<DeliveryReport>,
    in_flight: HashMap<DeliveryTag, Pending>,
    next_tag: DeliveryTag,
    manifest: Option<ManifestWriter>,
    progress: ProgressBar,
    summary: Summary,
}

impl Producer<'_> {
    async fn send_all(&mut self, schedule: Schedule, stop: &AtomicBool) -> Result<()> {
        let total = schedule.len();
        let mut pacer = self.settings.rate.map(Pacer::new);
        let mut events = 0_u64;
        for (position, slot) in (0..).zip(schedule) {
            if stop.load(Ordering::Relaxed) {
                self.summary.unsent = total - position;
                warn!(
                    unsent = self.summary.unsent,
                    "Interrupted: waiting for the records already sent."
                );
                break;
            }
            if let Some(pacer) = &mut pacer {
                let wait = pacer.reserve(Instant::now());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            self.take_ready_reports()?;
            while self.in_flight.len() >= self.settings.max_in_flight {
                self.await_report().await?;
            }
            let (record, pending) = self.build(slot, events);
            if matches!(slot, Slot::Event { .. }) {
                events += 1;
            }
            self.send(record, pending).await?;
            if !self.settings.pause.is_zero() {
                tokio::time::sleep(self.settings.pause).await;
            }
        }
        Ok(())
    }

    /// The built-in poison text, or the `--poison-values` value whose turn it is.
    fn poison_payload(&self, number: u64) -> Vec<u8> {
        let values = &self.settings.poison_values;
        usize::try_from(number)
            .ok()
            .and_then(|number| values.get(number % values.len().max(1)))
            .cloned()
            .unwrap_or_else(|| poison_value(number))
    }

    /// The record of `slot`; `event_number` counts the events before it (poison not included).
    fn build(&self, slot: Slot, event_number: u64) -> (OutboundRecord, Pending) {
        let topic: Arc<str> = Arc::from(self.settings.topic.as_str());
        match slot {
            Slot::Event {
                tenant,
                destination,
            } => {
                let id = Uuid::new_v4();
                let auth = self.settings.auth.as_ref();
                let spoofed = auth.is_some_and(|auth| is_spoofed(event_number, auth.spoof_percent));
                let claimed = self.claimed_identity(tenant, spoofed);
                let destination_name = &self.settings.destinations[destination];
                let now = now_ms();
                let event = event_record(claimed, destination_name, id, now);
                let key = claimed.key_for(destination_name).into_bytes();
                let payload = self.encoder.encode_to_vec(&event);
                // A spoofed event is signed by its real sender: what a tenant with its own key
                // but someone else's identity in the payload would write.
                let headers = auth.map_or_else(Vec::new, |auth| {
                    auth.signers[tenant]
                        .sign(Some(&key), &payload, now)
                        .into_pairs()
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value))
                        .collect()
                });
                let record = OutboundRecord {
                    topic,
                    key: Some(key),
                    payload,
                    headers,
                };
                let pending = Pending::Event {
                    id,
                    tenant,
                    destination,
                    spoofed,
                };
                (record, pending)
            }
            Slot::Poison { number } => {
                let record = OutboundRecord {
                    topic,
                    key: Some(poison_key(number).into_bytes()),
                    payload: self.poison_payload(number),
                    headers: Vec::new(),
                };
                (record, Pending::Poison)
            }
        }
    }

    /// Enqueues `record`; when the local queue is full, waits for delivery reports and tries
    /// again.
    async fn send(&mut self, mut record: OutboundRecord, pending: Pending) -> Result<()> {
        let tag = self.next_tag;
        self.next_tag += 1;
        loop {
            match self.sink.send(record, tag) {
                Ok(()) => {
                    self.summary.sent += 1;
                    match pending {
                        Pending::Event { spoofed, .. } => {
                            self.summary.events_sent += 1;
                            self.summary.spoofed_sent += u64::from(spoofed);
                        }
                        Pending::Poison => self.summary.poison_sent += 1,
                    }
                    self.in_flight.insert(tag, pending);
                    return Ok(());
                }
                Err(rejected) if rejected.queue_full => {
                    record = rejected.record;
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.await_report().await?;
                    }
                }
                Err(rejected) => {
                    self.record_failure(&rejected.error.to_string());
                    return Ok(());
                }
            }
        }
    }

    fn take_ready_reports(&mut self) -> Result<()> {
        while let Ok(report) = self.reports.try_recv() {
            self.handle(report)?;
        }
        Ok(())
    }

    async fn await_report(&mut self) -> Result<()> {
        let patience = self.settings.delivery_timeout + REPORT_GRACE;
        match tokio::time::timeout(patience, self.reports.recv()).await {
            Ok(Some(report)) => self.handle(report),
            Ok(None) => bail!("the producer stopped reporting deliveries"),
            Err(_) => bail!(
                "no delivery report within {patience:?} with {} records in flight; the Kafka producer is stuck",
                self.in_flight.len()
            ),
        }
    }

    /// Waits for the report of every record sent; those without one in time count as failed.
    async fn await_all_reports(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.settings.delivery_timeout + REPORT_GRACE;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(report)) => self.handle(report)?,
                Ok(None) => bail!("the producer stopped reporting deliveries"),
                Err(_) => {
                    let lost = self.in_flight.len();
                    for _ in 0..lost {
                        self.record_failure("no delivery report before the deadline");
                    }
                    self.in_flight.clear();
                }
            }
        }
        Ok(())
    }

    fn handle(&mut self, report: DeliveryReport) -> Result<()> {
        let Some(pending) = self.in_flight.remove(&report.tag) else {
            warn!(
                tag = report.tag,
                "Delivery report for an unknown record; ignored."
            );
            return Ok(());
        };
        self.progress.inc(1);
        let delivered = match report.result {
            Ok(delivered) => delivered,
            Err(failure) => {
                self.record_failure(&failure.error.to_string());
                return Ok(());
            }
        };
        self.summary.acknowledged += 1;
        let (
            Some(manifest),
            Pending::Event {
                id,
                tenant,
                destination,
                spoofed,
            },
        ) = (&mut self.manifest, pending)
        else {
            return Ok(());
        };
        let claimed = claimed_identity(self.settings, tenant, spoofed);
        let destination = &self.settings.destinations[destination];
        manifest.write(&ManifestEntry {
            id: id.to_string(),
            tenant_type: &claimed.service_type,
            tenant_id: &claimed.service_id,
            destination,
            key: claimed.key_for(destination),
            partition: delivered.partition,
            offset: delivered.offset,
            expected_dead_letter: spoofed.then_some(UNAUTHENTICATED),
        })
    }

    fn claimed_identity(&self, tenant: usize, spoofed: bool) -> &Tenant {
        claimed_identity(self.settings, tenant, spoofed)
    }

    fn record_failure(&mut self, error: &str) {
        self.summary.failed += 1;
        if self.summary.first_failure.is_none() {
            self.summary.first_failure = Some(error.to_owned());
        }
        if self.summary.failed <= LOGGED_FAILURES {
            warn!(topic = %self.settings.topic, %error, "A record was not delivered.");
        } else if self.summary.failed == LOGGED_FAILURES + 1 {
            warn!("More records were not delivered; only counting them from now on.");
        }
    }

    async fn finish(self) -> Result<Summary> {
        self.progress.finish_and_clear();
        if let Some(manifest) = self.manifest {
            manifest.finish()?;
        }
        // Dropping the producer blocks briefly while librdkafka shuts down.
        let sink = self.sink;
        let _ = tokio::task::spawn_blocking(move || drop(sink)).await;
        Ok(self.summary)
    }
}

/// The dead-letter reason an authenticating processor gives a spoofed event.
const UNAUTHENTICATED: &str = "unauthenticated";

/// The identity the tenant's event claims: its own, or for a spoofed event, its spoof target.
fn claimed_identity(settings: &Settings, tenant: usize, spoofed: bool) -> &Tenant {
    match &settings.auth {
        Some(auth) if spoofed => &auth.spoof_as[tenant],
        _ => &settings.tenants[tenant],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_names_counts_elapsed_and_rate() {
        let summary = Summary {
            topic: "producer.to.processor".to_owned(),
            sent: 12,
            events_sent: 10,
            poison_sent: 2,
            acknowledged: 12,
            elapsed: Duration::from_millis(500),
            ..Summary::default()
        };
        assert_eq!(
            summary.to_string(),
            "summary: topic=producer.to.processor sent=12 acknowledged=12 failed=0 events=10 poison=2 elapsed_s=0.500 rate_per_s=24.0"
        );
        assert!(summary.all_delivered());
    }

    #[test]
    fn an_interrupted_run_is_not_all_delivered() {
        let summary = Summary {
            unsent: 3,
            ..Summary::default()
        };
        assert!(!summary.all_delivered());
        assert!(summary.to_string().ends_with("interrupted=true unsent=3"));
    }
}
