//! What operators see: the processor's phase, the background checks of broker and registry, the
//! reload counters, and the liveness and readiness verdicts built from them.
//!
//! The verdicts are pure functions of an [`Observation`], so every reason is unit-tested; the
//! HTTP handlers and the metrics only read state, they never do I/O.

use avro_codec::{RegistryError, SchemaId, SchemaRegistry};
use cli_support::now_ms;
use kafka_adapters::{KafkaAdmin, PartitionLag};
use pipeline::{PipelineStats, RoutingSnapshot};
use schema_registry::HttpSchemaRegistry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// Where the processor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, checking topics, preparing the routing table.
    Starting = 0,
    /// The pipeline loop runs.
    Running = 1,
    /// Draining in-flight records before exiting.
    Stopping = 2,
}

/// What start-up may be waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dependency {
    Broker,
    Registry,
}

/// The last answer of one background check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Check {
    /// Not answered yet.
    #[default]
    Pending,
    /// Answered at `at_ms` (Unix epoch milliseconds).
    Passed { at_ms: i64 },
    /// Failed at `at_ms`.
    Failed { at_ms: i64, error: String },
}

/// Limits the verdicts apply.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The loop must have turned within this.
    pub stall_after_ms: i64,
    /// A check older than this no longer counts as passed (the checker itself is stuck).
    pub check_stale_after_ms: i64,
}

/// Everything the verdicts look at, read at one moment.
#[derive(Clone, Debug)]
pub struct Observation {
    pub phase: Phase,
    pub now_ms: i64,
    /// Last turn of the pipeline loop, or when the phase became `Running` if later.
    pub last_turn_ms: i64,
    pub stuck_records: i64,
    pub broker: Check,
    pub registry: Check,
    /// What start-up waits for, one reason per dependency (empty once it is not waiting).
    pub waiting: Vec<String>,
}

impl Observation {
    /// How long the loop has not turned; 0 before it ever ran.
    pub fn loop_silence_ms(&self) -> i64 {
        if self.last_turn_ms == 0 {
            return 0;
        }
        (self.now_ms - self.last_turn_ms).max(0)
    }
}

/// A probe's answer: healthy or not, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reasons: Vec<String>,
}

impl Verdict {
    fn from_reasons(reasons: Vec<String>) -> Self {
        Self {
            ok: reasons.is_empty(),
            reasons,
        }
    }
}

/// Alive unless the pipeline loop stopped turning. Starting counts as alive: a slow start is for
/// readiness to report, and restarting would not make it faster.
pub fn liveness(observation: &Observation, limits: Limits) -> Verdict {
    let mut reasons = Vec::new();
    if observation.phase != Phase::Starting {
        let silent_ms = observation.loop_silence_ms();
        if silent_ms > limits.stall_after_ms {
            reasons.push(format!(
                "pipeline loop has not turned for {:.1} s (limit {:.1} s)",
                silent_ms as f64 / 1000.0,
                limits.stall_after_ms as f64 / 1000.0
            ));
        }
    }
    Verdict::from_reasons(reasons)
}

/// Ready when the loop runs and is live, broker and registry answered recently, and no record is
/// stuck past its retry budget. Owning no partition is ready: with more instances than input
/// partitions, the spare ones wait for an assignment.
pub fn readiness(observation: &Observation, limits: Limits) -> Verdict {
    let mut reasons = Vec::new();
    match observation.phase {
        Phase::Starting if observation.waiting.is_empty() => {
            reasons.push("starting: checking topics and preparing the routing table".to_owned())
        }
        Phase::Starting => reasons.extend(observation.waiting.iter().cloned()),
        Phase::Stopping => reasons.push("stopping: draining in-flight records".to_owned()),
        Phase::Running => {}
    }
    reasons.extend(liveness(observation, limits).reasons);
    for (name, check) in [
        ("broker", &observation.broker),
        ("schema registry", &observation.registry),
    ] {
        match check {
            Check::Pending => reasons.push(format!("{name} not checked yet")),
            Check::Failed { error, .. } => reasons.push(format!("{name} unreachable: {error}")),
            Check::Passed { at_ms } if observation.now_ms - at_ms > limits.check_stale_after_ms => {
                reasons.push(format!(
                    "{name} check is stale: last answer {:.1} s ago",
                    (observation.now_ms - at_ms) as f64 / 1000.0
                ));
            }
            Check::Passed { .. } => {}
        }
    }
    if observation.stuck_records > 0 {
        reasons.push(format!(
            "{} output record(s) past their retry budget; their partitions stop committing (the log names topic and error)",
            observation.stuck_records
        ));
    }
    Verdict::from_reasons(reasons)
}

/// State shared by the pipeline's owner, the checks, the reloader, the probes and the metrics.
#[derive(Debug)]
pub struct Ops {
    pub stats: Arc<PipelineStats>,
    pub processor_id: String,
    pub input_topic: String,
    pub limits: Limits,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// The git commit the binary was built from (the `build_info` metric), `unknown` unless
    /// the binary says ([`Ops::with_build_commit`]).
    pub build_commit: &'static str,
    phase: AtomicU8,
    running_since_ms: AtomicI64,
    checks: Mutex<Checks>,
}

#[derive(Debug, Default)]
struct Checks {
    broker: Check,
    registry: Check,
    lag: Vec<PartitionLag>,
    waiting: BTreeMap<Dependency, String>,
}

impl Ops {
    pub fn new(
        stats: Arc<PipelineStats>,
        processor_id: String,
        input_topic: String,
        limits: Limits,
    ) -> Self {
        Self {
            stats,
            processor_id,
            input_topic,
            limits,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            build_commit: "unknown",
            phase: AtomicU8::new(Phase::Starting as u8),
            running_since_ms: AtomicI64::new(0),
            checks: Mutex::new(Checks::default()),
        }
    }

    /// Names the git commit the binary was built from (shown by the `build_info` metric).
    pub fn with_build_commit(mut self, commit: &'static str) -> Self {
        self.build_commit = commit;
        self
    }

    pub fn set_phase(&self, phase: Phase) {
        if phase == Phase::Running {
            self.running_since_ms.store(now_ms(), Relaxed);
        }
        self.phase.store(phase as u8, Relaxed);
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Stopping,
        }
    }

    pub fn observe(&self) -> Observation {
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        Observation {
            phase: self.phase(),
            now_ms: now_ms(),
            last_turn_ms: self
                .stats
                .last_heartbeat_ms
                .load(Relaxed)
                .max(self.running_since_ms.load(Relaxed)),
            stuck_records: self.stats.stuck_records.load(Relaxed),
            broker: checks.broker.clone(),
            registry: checks.registry.clone(),
            waiting: checks.waiting.values().cloned().collect(),
        }
    }

    /// Start-up waits for `dependency` for `reason`, or (`None`) no longer does.
    pub fn set_waiting(&self, dependency: Dependency, reason: Option<String>) {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        match reason {
            Some(reason) => checks.waiting.insert(dependency, reason),
            None => checks.waiting.remove(&dependency),
        };
    }

    /// Per-partition lag of the group on the input topic, as of the last broker check.
    pub fn lag(&self) -> Vec<PartitionLag> {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lag
            .clone()
    }

    fn record_broker(&self, outcome: Result<Vec<PartitionLag>, String>) {
        let at_ms = now_ms();
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        let was_failing = matches!(checks.broker, Check::Failed { .. });
        match outcome {
            Ok(lag) => {
                if was_failing {
                    info!("Broker answers again.");
                }
                checks.broker = Check::Passed { at_ms };
                checks.lag = lag;
            }
            Err(error) => {
                if !was_failing {
                    warn!(%error, "Broker check failed; the processor reports not ready.");
                }
                checks.broker = Check::Failed { at_ms, error };
            }
        }
    }

    fn record_registry(&self, outcome: Result<(), String>) {
        let at_ms = now_ms();
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        let was_failing = matches!(checks.registry, Check::Failed { .. });
        match outcome {
            Ok(()) => {
                if was_failing {
                    info!("Schema registry answers again.");
                }
                checks.registry = Check::Passed { at_ms };
            }
            Err(error) => {
                if !was_failing {
                    warn!(%error, "Schema registry check failed; the processor reports not ready.");
                }
                checks.registry = Check::Failed { at_ms, error };
            }
        }
    }
}

/// Checks broker and registry every `interval`, each bounded by `timeout`: the group's positions
/// and watermarks on the input topic (which also feed the lag metric), and a registry lookup of
/// an output subject of the routing table in force.
pub async fn run_checks(
    ops: Arc<Ops>,
    admin: KafkaAdmin,
    group_id: String,
    registry: HttpSchemaRegistry,
    routing: watch::Receiver<Arc<RoutingSnapshot>>,
    interval: Duration,
    timeout: Duration,
) {
    let admin = admin.with_timeout(timeout);
    loop {
        let broker = async {
            match tokio::time::timeout(timeout, admin.partition_lag(&group_id, &ops.input_topic))
                .await
            {
                Ok(Ok(lag)) => Ok(lag),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            }
        };
        let subject = routing
            .borrow()
            .router()
            .output_targets()
            .next()
            .map(|target| target.subject.clone());
        let registry_check = async {
            match tokio::time::timeout(timeout, registry_answers(&registry, subject.as_deref()))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {timeout:?}")),
            }
        };
        let (broker, registry_outcome) = tokio::join!(broker, registry_check);
        ops.record_broker(broker);
        ops.record_registry(registry_outcome);
        tokio::time::sleep(interval).await;
    }
}

/// Whether the registry answers as a schema registry: any API answer counts, "not found"
/// included; no answer, a server error or refused credentials do not.
async fn registry_answers(
    registry: &HttpSchemaRegistry,
    subject: Option<&str>,
) -> Result<(), String> {
    let outcome = match subject {
        Some(subject) => registry.latest(subject).await.map(drop),
        None => registry.schema_by_id(SchemaId(1)).await.map(drop),
    };
    match outcome {
        Ok(())
        | Err(
            RegistryError::SubjectNotFound { .. }
            | RegistryError::VersionNotFound { .. }
            | RegistryError::SchemaNotFound { .. }
            | RegistryError::Rejected { .. },
        ) => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        stall_after_ms: 60_000,
        check_stale_after_ms: 13_000,
    };

    fn healthy() -> Observation {
        Observation {
            phase: Phase::Running,
            now_ms: 1_000_000,
            last_turn_ms: 999_990,
            stuck_records: 0,
            broker: Check::Passed { at_ms: 998_000 },
            registry: Check::Passed { at_ms: 998_000 },
            waiting: Vec::new(),
        }
    }

    #[test]
    fn running_loop_with_answering_dependencies_is_alive_and_ready() {
        assert_eq!(
            readiness(&healthy(), LIMITS),
            Verdict {
                ok: true,
                reasons: vec![]
            }
        );
        assert!(liveness(&healthy(), LIMITS).ok);
    }

    #[test]
    fn stalled_loop_is_neither_alive_nor_ready() {
        let stalled = Observation {
            last_turn_ms: 1_000_000 - 61_000,
            ..healthy()
        };
        let verdict = liveness(&stalled, LIMITS);
        assert!(!verdict.ok);
        assert_eq!(
            verdict.reasons,
            ["pipeline loop has not turned for 61.0 s (limit 60.0 s)"]
        );
        assert_eq!(readiness(&stalled, LIMITS).reasons, verdict.reasons);
    }

    #[test]
    fn starting_is_alive_but_not_ready_and_stopping_is_not_ready() {
        let starting = Observation {
            phase: Phase::Starting,
            last_turn_ms: 0,
            broker: Check::Pending,
            registry: Check::Pending,
            ..healthy()
        };
        assert!(liveness(&starting, LIMITS).ok);
        assert_eq!(
            readiness(&starting, LIMITS).reasons,
            [
                "starting: checking topics and preparing the routing table",
                "broker not checked yet",
                "schema registry not checked yet"
            ]
        );
        let waiting = Observation {
            waiting: vec![
                "waiting for the broker at b:9092: no answer".to_owned(),
                "waiting for the schema registry at http://r/: refused".to_owned(),
            ],
            ..starting.clone()
        };
        assert!(liveness(&waiting, LIMITS).ok, "waiting is alive");
        assert_eq!(
            readiness(&waiting, LIMITS).reasons,
            [
                "waiting for the broker at b:9092: no answer",
                "waiting for the schema registry at http://r/: refused",
                "broker not checked yet",
                "schema registry not checked yet"
            ]
        );
        let stopping = Observation {
            phase: Phase::Stopping,
            ..healthy()
        };
        assert_eq!(
            readiness(&stopping, LIMITS).reasons,
            ["stopping: draining in-flight records"]
        );
    }

    #[test]
    fn unreachable_or_stale_dependencies_and_stuck_records_are_not_ready() {
        let observation = Observation {
            broker: Check::Passed {
                at_ms: 1_000_000 - 20_000,
            },
            registry: Check::Failed {
                at_ms: 999_000,
                error: "cannot reach the schema registry".to_owned(),
            },
            stuck_records: 2,
            ..healthy()
        };
        let verdict = readiness(&observation, LIMITS);
        assert!(!verdict.ok);
        assert_eq!(
            verdict.reasons,
            [
                "broker check is stale: last answer 20.0 s ago",
                "schema registry unreachable: cannot reach the schema registry",
                "2 output record(s) past their retry budget; their partitions stop committing (the log names topic and error)"
            ]
        );
        assert!(liveness(&observation, LIMITS).ok, "alive all the same");
    }
}
