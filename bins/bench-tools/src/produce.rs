//! `produce`: writes the workload to the input topic, as fast as the producer goes or at a fixed
//! rate, and waits until the broker acknowledged every event.

use crate::events::{self, is_poison, key_of, now_us};
use anyhow::{Context, Result, bail};
use avro_codec::InputEncoder;
use kafka_adapters::{KafkaConfig, OutboundRecord, RecordSink};
use schema_registry::{HttpSchemaRegistry, RegistryClientConfig};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What `produce` was asked to do.
#[derive(Debug)]
pub(crate) struct ProduceArgs {
    pub(crate) kafka: KafkaConfig,
    pub(crate) registry_url: String,
    pub(crate) topic: String,
    pub(crate) count: u64,
    pub(crate) poison_percent: u64,
    /// Events per second; `None`: as fast as the producer accepts them.
    pub(crate) rate: Option<f64>,
    /// Sign each event as its tenant with the keys of this key file.
    pub(crate) sign_key_file: Option<std::path::PathBuf>,
}

/// One signer per tenant identity of the workload, from a tenant key file.
struct Signers {
    ring: tenant_auth::KeyRing,
    by_identity: std::collections::HashMap<(String, String), tenant_auth::Signer>,
}

impl Signers {
    fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let ring = tenant_auth::KeyRing::from_toml_str(&text).context("invalid key file")?;
        Ok(Self {
            ring,
            by_identity: std::collections::HashMap::new(),
        })
    }

    /// The signature headers of `event` (with `key` and `value`) at `now_ms`.
    fn sign(
        &mut self,
        event: &router_core::ProducerToProcessor,
        key: &[u8],
        value: &[u8],
        now_ms: i64,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let identity = (
            event.origin_service_type.clone(),
            event.origin_service_id.clone(),
        );
        if !self.by_identity.contains_key(&identity) {
            let tenant = tenant_auth::TenantIdentity::new(&identity.0, &identity.1)?;
            let signer = self
                .ring
                .signing_key_for(&tenant, now_ms)
                .with_context(|| format!("no key for {}:{}", identity.0, identity.1))?
                .signer(tenant)?;
            self.by_identity.insert(identity.clone(), signer);
        }
        let signer = &self.by_identity[&identity];
        Ok(signer
            .sign(Some(key), value, now_ms)
            .into_pairs()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect())
    }
}

/// How long to wait for reports once everything is sent before calling the run failed.
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);
/// Wait before producing; see `run`.
const PRODUCER_WARMUP: Duration = Duration::from_secs(1);

pub(crate) async fn run(args: ProduceArgs) -> Result<serde_json::Value> {
    let registry = HttpSchemaRegistry::new(RegistryClientConfig::new(args.registry_url.clone()))
        .context("cannot create the schema registry client")?;
    let subject = format!("{}-value", args.topic);
    let encoder = InputEncoder::register(&registry, &subject)
        .await
        .with_context(|| format!("cannot register the input schema under {subject}"))?;
    let (report_sender, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let sink = kafka_adapters::kafka_producer(&args.kafka, report_sender)
        .context("cannot create the producer")?;
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    // The idempotent producer gets its producer id in the background (~0.5 s on the local
    // broker) and holds records until then: let that pass before the clock starts.
    tokio::time::sleep(PRODUCER_WARMUP).await;

    let mut signers = args
        .sign_key_file
        .as_deref()
        .map(Signers::load)
        .transpose()?;
    let mut next_id = 0u64;
    let mut acknowledged = 0u64;
    let mut poison = 0u64;
    let mut value_bytes = 0u64;
    let mut key_bytes = 0u64;
    let mut resend: VecDeque<(usize, OutboundRecord)> = VecDeque::new();
    // Send time per id, for the broker's acknowledgement latency (send → delivery report).
    let mut sent_at_us: Vec<i64> = Vec::with_capacity(usize::try_from(args.count)?);
    let mut ack_latencies_us: Vec<i64> = Vec::with_capacity(usize::try_from(args.count)?);
    let started = Instant::now();
    let due = |id: u64| {
        args.rate
            .map(|rate| started + Duration::from_secs_f64(id as f64 / rate))
    };
    while acknowledged < args.count {
        while let Some((tag, record)) = resend.pop_front() {
            if let Err(rejected) = sink.send(record, tag) {
                if !rejected.queue_full {
                    bail!("the producer refused a record: {}", rejected.error);
                }
                resend.push_front((rejected.tag, rejected.record));
                break;
            }
        }
        while resend.is_empty() && next_id < args.count {
            if due(next_id).is_some_and(|due| due > Instant::now()) {
                break;
            }
            let sent_at = now_us();
            sent_at_us.push(sent_at);
            let event = events::event(next_id, sent_at);
            let key = key_of(&event);
            let mut value = encoder.encode_to_vec(&event);
            if is_poison(next_id, args.poison_percent) {
                events::poison(&mut value);
                poison += 1;
            }
            value_bytes += value.len() as u64;
            key_bytes += key.len() as u64;
            let headers = match signers.as_mut() {
                Some(signers) => signers.sign(&event, &key, &value, sent_at / 1000)?,
                None => Vec::new(),
            };
            let record = OutboundRecord {
                topic: Arc::clone(&topic),
                key: Some(key),
                payload: value,
                headers,
            };
            let tag = usize::try_from(next_id)?;
            next_id += 1;
            if let Err(rejected) = sink.send(record, tag) {
                if !rejected.queue_full {
                    bail!("the producer refused a record: {}", rejected.error);
                }
                resend.push_back((rejected.tag, rejected.record));
            }
        }
        let wake = if !resend.is_empty() {
            Instant::now() + Duration::from_millis(1)
        } else if next_id < args.count {
            due(next_id).unwrap_or_else(|| Instant::now() + Duration::from_millis(1))
        } else {
            Instant::now() + REPORT_TIMEOUT
        };
        tokio::select! {
            report = reports.recv() => {
                let Some(report) = report else { bail!("the producer's delivery reports stopped") };
                let mut acks = Acks { acknowledged: &mut acknowledged, resend: &mut resend, sent_at_us: &sent_at_us, latencies_us: &mut ack_latencies_us };
                acks.handle(report)?;
                while let Ok(report) = reports.try_recv() {
                    acks.handle(report)?;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if next_id >= args.count && resend.is_empty() {
                    bail!("no delivery report for {REPORT_TIMEOUT:?}: {acknowledged} of {} acknowledged", args.count);
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    sink.flush(Duration::from_secs(10))
        .await
        .context("flushing the producer")?;
    let count = args.count.max(1) as f64;
    ack_latencies_us.sort_unstable();
    Ok(json!({
        "topic": args.topic,
        "count": args.count,
        "poison": poison,
        "seconds": seconds,
        "events_per_sec": args.count as f64 / seconds.max(1e-9),
        "target_rate": args.rate,
        "value_bytes_mean": value_bytes as f64 / count,
        "key_bytes_mean": key_bytes as f64 / count,
        "ack_latency_ms": crate::drain::latency_summary(&ack_latencies_us),
    }))
}

/// Where delivery reports go.
struct Acks<'a> {
    acknowledged: &'a mut u64,
    resend: &'a mut VecDeque<(usize, OutboundRecord)>,
    sent_at_us: &'a [i64],
    latencies_us: &'a mut Vec<i64>,
}

impl Acks<'_> {
    fn handle(&mut self, report: kafka_adapters::DeliveryReport) -> Result<()> {
        match report.result {
            Ok(_) => {
                *self.acknowledged += 1;
                if let Some(sent_at) = self.sent_at_us.get(report.tag) {
                    self.latencies_us.push(now_us() - sent_at);
                }
            }
            Err(failure) if failure.retriable => {
                self.resend.push_back((report.tag, failure.record))
            }
            Err(failure) => bail!("producing failed: {}", failure.error),
        }
        Ok(())
    }
}
