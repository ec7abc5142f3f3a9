//! Hot reload of the routing file, on SIGHUP and when its content changes.
//!
//! A new table is parsed, validated, checked against the broker (every output topic must exist)
//! and resolved against the registry (output schema ids) before anything changes; only then is it
//! published on the watch channel the pipeline reads. The pipeline swaps it in between two
//! batches, so records already decided keep their outputs and every later record uses the new
//! table. An invalid file changes nothing: one error line, one failure counted, old table kept.

use crate::ops::Ops;
use crate::settings::Settings;
use anyhow::{Context, Result};
use avro_codec::SchemaRegistry;
use kafka_adapters::TopicAdmin;
use pipeline::RoutingSnapshot;
use router_core::Router;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::signal::unix::Signal;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// A file seen changed is read again after this pause, and reloaded only if it did not change
/// meanwhile: an editor writing in place is not caught half-way.
const SETTLE: Duration = Duration::from_millis(100);

/// Why a reload was attempted, for the log.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Signal,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FileChanged => "file-change",
        }
    }
}

/// Watches one routing file and publishes each valid new table, checking its topics with `admin`
/// and resolving its output schemas with `registry` before anything changes.
pub struct Reloader<A, R> {
    pub path: PathBuf,
    /// `None`: reload only on SIGHUP.
    pub poll: Option<Duration>,
    pub settings: Settings,
    /// Checks (and, when configured, creates) the topics a new table writes to.
    pub admin: A,
    /// Resolves (and, when configured, registers) the output schemas.
    pub registry: R,
    pub updates: watch::Sender<Arc<RoutingSnapshot>>,
    pub ops: Arc<Ops>,
    /// Fingerprint of the file content in force (read at start or at the last good reload).
    pub applied: u64,
}

impl<A, R> std::fmt::Debug for Reloader<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl<A: TopicAdmin, R: SchemaRegistry> Reloader<A, R> {
    /// Reloads on every SIGHUP, and when the file's content differs from the content in force
    /// (a content rejected once is not retried until it changes again or SIGHUP comes).
    pub async fn run(mut self, mut hangup: impl ReloadRequests) {
        let mut rejected: Option<u64> = None;
        let mut poll = self.poll.map(|every| {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        loop {
            let trigger = tokio::select! {
                signal = hangup.recv() => match signal {
                    Some(()) => Trigger::Signal,
                    None => return,
                },
                _ = tick(&mut poll) => Trigger::FileChanged,
            };
            let sources = match self.read_sources().await {
                Ok(sources) => sources,
                Err(error) => {
                    let fingerprint = u64::MAX;
                    if matches!(trigger, Trigger::Signal) || rejected != Some(fingerprint) {
                        rejected = Some(fingerprint);
                        self.reject(trigger, &error);
                    }
                    continue;
                }
            };
            let fingerprint = fingerprint(&sources.routing, sources.keys.as_deref());
            if let Trigger::FileChanged = trigger {
                if fingerprint == self.applied || Some(fingerprint) == rejected {
                    continue;
                }
                tokio::time::sleep(SETTLE).await;
                match self.read_sources().await {
                    Ok(again) if again == sources => {}
                    _ => continue,
                }
            }
            let started = std::time::Instant::now();
            match self.prepare(&sources).await {
                Ok(snapshot) => {
                    rejected = None;
                    self.applied = fingerprint;
                    self.publish(trigger, snapshot, started.elapsed());
                }
                Err(error) => {
                    rejected = Some(fingerprint);
                    self.reject(trigger, &error);
                }
            }
        }
    }

    /// The routing file and, with tenant authentication, the key file.
    async fn read_sources(&self) -> Result<Sources> {
        let routing = tokio::fs::read_to_string(&self.path)
            .await
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let keys = match &self.settings.authentication.key_file {
            Some(path) => Some(
                tokio::fs::read_to_string(path)
                    .await
                    .with_context(|| format!("cannot read the key file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(Sources { routing, keys })
    }

    /// Everything that can fail, before anything changes.
    async fn prepare(&self, sources: &Sources) -> Result<RoutingSnapshot> {
        let router = Router::from_toml_str(&sources.routing).context("invalid routing table")?;
        let authentication = self
            .settings
            .tenant_authentication(sources.keys.as_deref())?;
        crate::startup::ensure_topics(&self.admin, &router, &self.settings).await?;
        let snapshot =
            RoutingSnapshot::resolve(router, &self.registry, self.settings.registry.auto_register)
                .await
                .context("cannot prepare the output schemas")?;
        Ok(snapshot.with_authentication(authentication))
    }

    fn publish(&self, trigger: Trigger, snapshot: RoutingSnapshot, prepared_in: Duration) {
        let version = snapshot.router().version();
        let snapshot_keys = snapshot
            .authentication()
            .map_or(0, |authentication| authentication.verifier.key_ring().len());
        let previous = self.updates.borrow().router().version();
        // The pipeline holds the receiver for as long as it runs; after it stopped there is
        // nothing left to route.
        if self.updates.send(Arc::new(snapshot)).is_err() {
            warn!("Routing table validated but the pipeline has stopped; not applied.");
            return;
        }
        self.ops.reloads_ok.fetch_add(1, Relaxed);
        info!(
            file = %self.path.display(),
            trigger = %trigger.as_str(),
            version = %format!("{version:016x}"),
            previous_version = %format!("{previous:016x}"),
            prepared_ms = prepared_in.as_millis() as u64,
            tenant_keys = snapshot_keys,
            "Routing table reloaded; records decided from now on use it."
        );
    }

    fn reject(&self, trigger: Trigger, error: &anyhow::Error) {
        self.ops.reloads_failed.fetch_add(1, Relaxed);
        let kept = self.updates.borrow().router().version();
        error!(
            file = %self.path.display(),
            trigger = %trigger.as_str(),
            kept_version = %format!("{kept:016x}"),
            "Routing file rejected, the routing table in force is kept: {error:#}"
        );
    }
}

/// The next poll tick, or never when polling is off.
async fn tick(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// What asks for a reload besides a changed file: SIGHUP in the processor, a channel in tests.
pub trait ReloadRequests: Send {
    /// The next request; `None` when no more will come.
    fn recv(&mut self) -> impl std::future::Future<Output = Option<()>> + Send;
}

impl ReloadRequests for Signal {
    fn recv(&mut self) -> impl std::future::Future<Output = Option<()>> + Send {
        Signal::recv(self)
    }
}

impl ReloadRequests for tokio::sync::mpsc::Receiver<()> {
    fn recv(&mut self) -> impl std::future::Future<Output = Option<()>> + Send {
        tokio::sync::mpsc::Receiver::recv(self)
    }
}

/// What a reload reads.
#[derive(PartialEq, Eq)]
struct Sources {
    routing: String,
    /// The tenant key file, when tenant authentication is on.
    keys: Option<String>,
}

/// Fingerprint of the routing file's and the key file's contents (to notice changes; not
/// cryptographic, and never logged).
pub fn fingerprint(routing: &str, keys: Option<&str>) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    routing.hash(&mut hasher);
    keys.hash(&mut hasher);
    hasher.finish()
}

/// With routing from the command line there is nothing to reload; SIGHUP is logged, not fatal
/// (its default action would end the process).
pub async fn ignore_hangups(mut hangup: Signal) {
    while hangup.recv().await.is_some() {
        warn!(
            "SIGHUP received, but routing comes from --destination-configurations: nothing to reload. Use a routing file (routing.file) to change routing without a restart."
        );
    }
}
