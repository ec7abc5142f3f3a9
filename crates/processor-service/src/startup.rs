//! Start-up: the processor waits for the broker and the schema registry instead of exiting.
//!
//! A broker or registry that does not answer yet (it starts after the processor, or is down for
//! a while) is what a runtime outage is too: the processor waits for it with jittered, capped
//! backoff, says so in `/ready` and in a log line every few seconds, and goes on once both
//! answer. What waiting cannot fix exits with code 2 ([`Refused`]): the registry refusing the
//! credentials or the output schema, and topics still missing after
//! `kafka.missing_topics_wait_ms`. The decisions are pure functions, unit-tested below.

use crate::ops::{Dependency, Ops};
use crate::settings::Settings;
use anyhow::{Context, Result, bail};
use avro_codec::RegistryError;
use kafka_adapters::{AdapterError, TopicAdmin, TopicSpec, is_access_refusal_code};
use pipeline::{PipelineError, RoutingSnapshot};
use router_core::Router;
use schema_registry::HttpSchemaRegistry;
use std::fmt;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// A start-up failure that waiting cannot fix: the process exits with code 2, like a refused
/// configuration.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Whether `error` (or anything it wraps) is a [`Refused`], or the cluster refusing this
/// client's access ([`is_access_refusal`]): a configuration problem either way, exit code 2.
pub fn is_refused(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Refused>()) || is_access_refusal(error)
}

/// Whether `error` (or anything it wraps) is the cluster refusing this client for good: its
/// credentials (SASL authentication failed) or a missing ACL on a topic, the group, the
/// transactional id or the cluster (`kafka_adapters::is_access_refusal_code`). Retrying only
/// repeats the refusal until an operator changes credentials or ACLs; a consumer refused this
/// way stops with `AdapterError::ConsumerRefused`.
pub fn is_access_refusal(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<AdapterError>()
            .and_then(AdapterError::code)
            .is_some_and(is_access_refusal_code)
    })
}

/// First wait between two start-up attempts.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two start-up attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At most one "still waiting" log line per dependency this often.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Exponential backoff with equal jitter: the ceiling doubles per attempt up to [`MAX_BACKOFF`];
/// each wait lies between half the ceiling and the ceiling, so instances started together (a
/// rollout) do not hit a recovering broker or registry in lockstep.
#[derive(Debug)]
struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            ceiling: INITIAL_BACKOFF,
        }
    }

    /// The next wait, `unit` in `[0, 1)` choosing where between the bounds.
    fn next_with(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = ceiling.saturating_mul(2).min(MAX_BACKOFF);
        let half = ceiling / 2;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        half + (ceiling - half).mul_f64(unit)
    }

    fn next(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }
}

/// The log of one wait: a WARN line at the first failure, another at most every [`LOG_EVERY`],
/// and an INFO line when it ends.
#[derive(Debug)]
struct Progress {
    what: String,
    started: Instant,
    last_logged: Option<Instant>,
}

impl Progress {
    fn new(what: String) -> Self {
        Self {
            what,
            started: Instant::now(),
            last_logged: None,
        }
    }

    fn failed(&mut self, error: &str) {
        let now = Instant::now();
        let waited_s = format!("{:.0}", now.duration_since(self.started).as_secs_f64());
        match self.last_logged {
            None => warn!(%error, "Waiting for {} before starting.", self.what),
            Some(last) if now.duration_since(last) >= LOG_EVERY => {
                warn!(%error, waited_s, "Still waiting for {} before starting.", self.what);
            }
            Some(_) => return,
        }
        self.last_logged = Some(now);
    }

    fn done(&mut self) {
        if self.last_logged.take().is_some() {
            info!(
                waited_s = format!("{:.1}", self.started.elapsed().as_secs_f64()),
                "Done waiting for {}.", self.what
            );
        }
    }
}

/// How start-up treats topics the broker does not have.
#[derive(Clone, Debug)]
pub struct TopicRules {
    /// `kafka.create_missing_topics`: create every missing topic.
    pub create_missing: bool,
    /// Started with the prototype's command line: the dead-letter topic (which the prototype
    /// never had) is created with the broker's defaults when it is missing.
    pub prototype: bool,
    pub dead_letter_topic: String,
    /// `kafka.topic_partitions`.
    pub partitions: i32,
    /// `kafka.topic_replication`; `None`: the broker's default.
    pub replication: Option<i32>,
    /// `kafka.missing_topics_wait_ms`: how long other missing topics are waited for.
    pub missing_wait: Duration,
    pub bootstrap: String,
    /// librdkafka's `security.protocol`, when set: says whether an unreachable broker may in
    /// fact be refusing the credentials.
    pub security_protocol: Option<String>,
}

/// What to do about the topics the broker lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicAction {
    /// Nothing is missing.
    Ready,
    /// Create these; `prototype_dead_letter` when it is the prototype's dead-letter topic.
    Create {
        specs: Vec<TopicSpec>,
        prototype_dead_letter: bool,
    },
    /// Ask again later: these are missing (a deployment job may be creating them).
    Wait { missing: Vec<String> },
    /// Exit 2 with this message.
    Refuse(String),
}

/// The decision for `missing` topics, `waited` after they were first found missing.
pub fn decide_topics(missing: &[String], rules: &TopicRules, waited: Duration) -> TopicAction {
    if missing.is_empty() {
        return TopicAction::Ready;
    }
    let replication = rules
        .replication
        .unwrap_or(TopicSpec::BROKER_DEFAULT_REPLICATION);
    if rules.create_missing {
        return TopicAction::Create {
            specs: missing
                .iter()
                .map(|name| TopicSpec {
                    name: name.clone(),
                    partitions: rules.partitions,
                    replication,
                })
                .collect(),
            prototype_dead_letter: false,
        };
    }
    let others: Vec<String> = missing
        .iter()
        .filter(|topic| !(rules.prototype && **topic == rules.dead_letter_topic))
        .cloned()
        .collect();
    if others.is_empty() {
        return TopicAction::Create {
            specs: vec![TopicSpec {
                name: rules.dead_letter_topic.clone(),
                partitions: BROKER_DEFAULT_PARTITIONS,
                replication,
            }],
            prototype_dead_letter: true,
        };
    }
    if waited >= rules.missing_wait {
        return TopicAction::Refuse(format!(
            "topics missing on the broker at {}: {} (waited {:.0} s, kafka.missing_topics_wait_ms); \
             create them, or start with --create-missing-topics",
            rules.bootstrap,
            others.join(", "),
            waited.as_secs_f64()
        ));
    }
    TopicAction::Wait { missing: others }
}

/// The partition count that asks the broker for its `num.partitions` (KIP-464, Kafka 2.4+).
const BROKER_DEFAULT_PARTITIONS: i32 = -1;

/// Whether a registry error during start-up is final (exit 2) rather than something to wait out.
///
/// Final: refused credentials (they are read once at start, so the same ones can never pass),
/// an output schema the registry refuses (incompatible, invalid), a subject or schema it does not
/// have with `registry.auto_register = false`, any other 4xx, an answer that is not the registry
/// API (wrong URL) and an unusable client configuration. Waited out: no answer, a refused or
/// reset connection, a timeout, 5xx and 429.
pub fn registry_refuses(error: &RegistryError) -> bool {
    match error {
        RegistryError::Connect { .. }
        | RegistryError::Timeout { .. }
        | RegistryError::Server { .. } => false,
        RegistryError::Unauthorized { .. }
        | RegistryError::Incompatible { .. }
        | RegistryError::InvalidSchema { .. }
        | RegistryError::SubjectNotFound { .. }
        | RegistryError::VersionNotFound { .. }
        | RegistryError::SchemaNotFound { .. }
        | RegistryError::Rejected { .. }
        | RegistryError::InvalidResponse { .. }
        | RegistryError::Config { .. } => true,
        // A kind this code does not know yet: waiting keeps the reason visible in /ready and
        // the log, where a crash loop would hide it.
        _ => false,
    }
}

/// The topics of `topics` the broker lacks; an error when it does not answer.
async fn missing_topics(admin: &impl TopicAdmin, topics: &[String]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for topic in topics {
        let partitions = admin
            .partitions_of(topic)
            .await
            .with_context(|| format!("cannot read metadata of topic {topic}"))?;
        if partitions.is_none() {
            missing.push(topic.clone());
        }
    }
    Ok(missing)
}

/// Why start-up still waits for the broker: `error`, and with SASL a hint that a transport
/// failure may be a refused login. librdkafka reports a failed SASL authentication to the
/// admin client only as `BrokerTransportFailure` (the `Authentication` error goes to a queue
/// the admin client does not serve), the same as a broker that is down, so the wait cannot
/// tell them apart and goes on.
fn broker_wait_reason(error: &anyhow::Error, security_protocol: Option<&str>) -> String {
    let transport_failure = error.chain().any(|cause| {
        cause
            .downcast_ref::<AdapterError>()
            .and_then(AdapterError::code)
            == Some(kafka_adapters::KafkaErrorCode::BROKER_TRANSPORT_FAILURE)
    });
    let sasl = security_protocol.is_some_and(|protocol| {
        protocol.eq_ignore_ascii_case("SASL_SSL") || protocol.eq_ignore_ascii_case("SASL_PLAINTEXT")
    });
    match transport_failure && sasl {
        true => format!(
            "{error:#} (with security.protocol {} a refused login looks the same: check \
             sasl.username, sasl.password and sasl.mechanism)",
            security_protocol.unwrap_or_default()
        ),
        false => format!("{error:#}"),
    }
}

/// Waits until the broker answers and has every topic of `topics` (creating them as `rules`
/// say), reporting the wait in `/ready` and the log.
pub async fn wait_for_topics(
    admin: &impl TopicAdmin,
    topics: &[String],
    rules: &TopicRules,
    ops: &Ops,
) -> Result<()> {
    let bootstrap = &rules.bootstrap;
    let mut backoff = Backoff::new();
    let mut broker = Progress::new(format!("the broker at {bootstrap}"));
    let mut created = Progress::new(format!("topics on the broker at {bootstrap}"));
    let mut missing_since: Option<Instant> = None;
    loop {
        match missing_topics(admin, topics).await {
            Err(error) if is_access_refusal(&error) => {
                return Err(Refused(format!(
                    "the broker at {bootstrap} refuses this client: {error:#}. Check its \
                     credentials and that its user has the ACLs of docs/OPERATIONS.md \
                     (\"Broker security\"): READ on the input topic, WRITE on every output \
                     topic and the dead-letter topic"
                ))
                .into());
            }
            Err(error) => {
                let error = broker_wait_reason(&error, rules.security_protocol.as_deref());
                ops.set_waiting(
                    Dependency::Broker,
                    Some(format!("waiting for the broker at {bootstrap}: {error}")),
                );
                broker.failed(&error);
            }
            Ok(missing) => {
                broker.done();
                let waited = match missing.is_empty() {
                    true => Duration::ZERO,
                    false => missing_since.get_or_insert_with(Instant::now).elapsed(),
                };
                match decide_topics(&missing, rules, waited) {
                    TopicAction::Ready => {
                        created.done();
                        ops.set_waiting(Dependency::Broker, None);
                        return Ok(());
                    }
                    TopicAction::Create {
                        specs,
                        prototype_dead_letter,
                    } => {
                        let names: Vec<&str> =
                            specs.iter().map(|spec| spec.name.as_str()).collect();
                        if prototype_dead_letter {
                            warn!(
                                topic = %names.join(","),
                                "The dead-letter topic does not exist: started with the prototype's command line, the processor creates it with the broker's default partitions and replication (create it beforehand to choose them, or name another with --dead-letter-topic)."
                            );
                        } else {
                            warn!(
                                topics = %names.join(","),
                                partitions = rules.partitions,
                                replication = %rules
                                    .replication
                                    .map_or_else(|| "broker default".to_owned(), |factor| factor.to_string()),
                                "Creating missing topics."
                            );
                        }
                        admin
                            .create_topics(&specs)
                            .await
                            .context("cannot create the missing topics")?;
                        created.done();
                        ops.set_waiting(Dependency::Broker, None);
                        return Ok(());
                    }
                    TopicAction::Wait { missing } => {
                        let missing = missing.join(", ");
                        ops.set_waiting(
                            Dependency::Broker,
                            Some(format!(
                                "waiting for topics to be created on the broker at {bootstrap}: {missing} (refused after {:.0} s without them)",
                                rules.missing_wait.as_secs_f64()
                            )),
                        );
                        created.failed(&format!("missing: {missing}"));
                    }
                    TopicAction::Refuse(message) => return Err(Refused(message).into()),
                }
            }
        }
        tokio::time::sleep(backoff.next()).await;
    }
}

/// Waits until the registry gives the output schema an id under every output subject of
/// `router`, reporting the wait in `/ready` and the log. `registry` should fail fast (a short
/// timeout, no retries of its own): this loop retries.
pub async fn wait_for_registry(
    router: &Router,
    registry: &HttpSchemaRegistry,
    auto_register: bool,
    ops: &Ops,
) -> Result<RoutingSnapshot> {
    let url = registry.base_url().to_owned();
    let mut backoff = Backoff::new();
    let mut progress = Progress::new(format!("the schema registry at {url}"));
    loop {
        match RoutingSnapshot::resolve(router.clone(), registry, auto_register).await {
            Ok(snapshot) => {
                progress.done();
                ops.set_waiting(Dependency::Registry, None);
                return Ok(snapshot);
            }
            Err(PipelineError::OutputSchema { subject, source }) if registry_refuses(&source) => {
                return Err(Refused(format!(
                    "the schema registry at {url} refused the output schema of subject `{subject}`: {source}; waiting cannot fix this, so the processor does not start"
                ))
                .into());
            }
            Err(error) => {
                let error = error.to_string();
                ops.set_waiting(
                    Dependency::Registry,
                    Some(format!("waiting for the schema registry at {url}: {error}")),
                );
                progress.failed(&error);
            }
        }
        tokio::time::sleep(backoff.next()).await;
    }
}

/// A start-up failure that waiting cannot fix: exit code 2.
pub fn refuse(error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Refused(format!("{error:#}")))
}

/// Every topic the processor reads or writes must exist before it reads anything: otherwise
/// records would wait in the producer until they time out.
pub fn topics_to_check(router: &Router, settings: &Settings) -> Vec<String> {
    let mut topics: Vec<String> = router
        .output_targets()
        .map(|target| target.topic.clone())
        .collect();
    topics.push(settings.kafka.dead_letter_topic.clone());
    topics.push(settings.kafka.input_topic.clone());
    topics.sort();
    topics.dedup();
    topics
}

pub fn topic_rules(settings: &Settings, prototype: bool) -> TopicRules {
    let kafka = &settings.kafka;
    TopicRules {
        create_missing: kafka.create_missing_topics,
        prototype,
        dead_letter_topic: kafka.dead_letter_topic.clone(),
        partitions: kafka.topic_partitions,
        replication: kafka.topic_replication,
        missing_wait: Duration::from_millis(kafka.missing_topics_wait_ms),
        bootstrap: kafka.bootstrap_servers.clone(),
        security_protocol: kafka.properties.get("security.protocol").cloned(),
    }
}

/// The reloader's topic check: every topic a new routing table writes to must exist, or is
/// created when asked; missing ones refuse the table at once (the old one keeps routing).
pub async fn ensure_topics(
    admin: &impl TopicAdmin,
    router: &Router,
    settings: &Settings,
) -> Result<()> {
    let topics = topics_to_check(router, settings);
    let mut missing = Vec::new();
    for topic in &topics {
        let partitions = admin.partitions_of(topic).await.with_context(|| {
            format!(
                "cannot read metadata of topic {topic} from {}",
                settings.kafka.bootstrap_servers
            )
        })?;
        if partitions.is_none() {
            missing.push(topic.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !settings.kafka.create_missing_topics {
        bail!(
            "topics missing on the broker: {}; create them, or start with --create-missing-topics",
            missing.join(", ")
        );
    }
    // Absent: the broker's `default.replication.factor` (1 on the local stack's single broker).
    let replication = settings
        .kafka
        .topic_replication
        .unwrap_or(TopicSpec::BROKER_DEFAULT_REPLICATION);
    warn!(
        topics = %missing.join(","),
        partitions = settings.kafka.topic_partitions,
        replication = %settings
            .kafka
            .topic_replication
            .map_or_else(|| "broker default".to_owned(), |factor| factor.to_string()),
        "Creating missing topics."
    );
    let specs: Vec<TopicSpec> = missing
        .iter()
        .map(|name| TopicSpec {
            name: name.clone(),
            partitions: settings.kafka.topic_partitions,
            replication,
        })
        .collect();
    admin
        .create_topics(&specs)
        .await
        .context("cannot create the missing topics")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata_error(code: kafka_adapters::KafkaErrorCode) -> anyhow::Error {
        anyhow::Error::new(AdapterError::TopicRequest {
            operation: "fetching topic metadata",
            topic: "t".to_owned(),
            code,
        })
        .context("cannot read metadata of topic t")
    }

    #[test]
    fn the_cluster_refusing_access_is_a_refusal_and_a_transport_failure_is_not() {
        use kafka_adapters::KafkaErrorCode as C;
        for code in [
            C::TOPIC_AUTHORIZATION_FAILED,
            C::GROUP_AUTHORIZATION_FAILED,
            C::AUTHENTICATION,
        ] {
            assert!(is_refused(&metadata_error(code)), "{code:?}");
        }
        for code in [C::BROKER_TRANSPORT_FAILURE, C::UNKNOWN_TOPIC_OR_PARTITION] {
            assert!(!is_refused(&metadata_error(code)), "{code:?}");
        }
        assert!(is_refused(&anyhow::Error::new(Refused("r".to_owned()))));
    }

    fn rules() -> TopicRules {
        TopicRules {
            create_missing: false,
            prototype: false,
            dead_letter_topic: "in.dlq".to_owned(),
            partitions: 3,
            replication: None,
            missing_wait: Duration::from_secs(60),
            bootstrap: "broker:9092".to_owned(),
            security_protocol: None,
        }
    }

    #[test]
    fn a_transport_failure_with_sasl_hints_at_the_credentials() {
        use kafka_adapters::KafkaErrorCode as C;
        let transport = metadata_error(C::BROKER_TRANSPORT_FAILURE);
        let hinted = broker_wait_reason(&transport, Some("SASL_SSL"));
        assert!(
            hinted.contains("BrokerTransportFailure") && hinted.contains("sasl.password"),
            "{hinted}"
        );
        for protocol in [None, Some("SSL"), Some("PLAINTEXT")] {
            let plain = broker_wait_reason(&transport, protocol);
            assert!(!plain.contains("sasl.password"), "{plain}");
        }
        let other = broker_wait_reason(&metadata_error(C::REQUEST_TIMED_OUT), Some("SASL_SSL"));
        assert!(!other.contains("sasl.password"), "{other}");
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn backoff_is_jittered_doubles_and_is_capped() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.next_with(0.0), Duration::from_millis(100));
        assert_eq!(backoff.next_with(1.0), Duration::from_millis(400));
        assert_eq!(backoff.next_with(0.5), Duration::from_millis(600));
        for _ in 0..10 {
            backoff.next_with(0.0);
        }
        assert_eq!(backoff.next_with(1.0), MAX_BACKOFF);
        assert_eq!(backoff.next_with(0.0), MAX_BACKOFF / 2);
        assert_eq!(backoff.next_with(f64::NAN), MAX_BACKOFF / 2);
        let mut random = Backoff::new();
        for _ in 0..100 {
            let wait = random.next();
            assert!(
                wait >= INITIAL_BACKOFF / 2 && wait <= MAX_BACKOFF,
                "{wait:?}"
            );
        }
    }

    #[test]
    fn nothing_missing_is_ready() {
        assert_eq!(
            decide_topics(&[], &rules(), Duration::ZERO),
            TopicAction::Ready
        );
    }

    #[test]
    fn missing_topics_are_waited_for_then_refused() {
        let missing = names(&["out.finance", "in.dlq"]);
        assert_eq!(
            decide_topics(&missing, &rules(), Duration::from_secs(59)),
            TopicAction::Wait {
                missing: missing.clone()
            }
        );
        let TopicAction::Refuse(message) =
            decide_topics(&missing, &rules(), Duration::from_secs(60))
        else {
            panic!("refused after the wait");
        };
        assert_eq!(
            message,
            "topics missing on the broker at broker:9092: out.finance, in.dlq (waited 60 s, \
             kafka.missing_topics_wait_ms); create them, or start with --create-missing-topics"
        );
        let at_once = TopicRules {
            missing_wait: Duration::ZERO,
            ..rules()
        };
        assert!(matches!(
            decide_topics(&missing, &at_once, Duration::ZERO),
            TopicAction::Refuse(_)
        ));
    }

    #[test]
    fn create_missing_topics_creates_all_with_the_configured_partitions() {
        let create = TopicRules {
            create_missing: true,
            replication: Some(3),
            ..rules()
        };
        assert_eq!(
            decide_topics(&names(&["a", "in.dlq"]), &create, Duration::ZERO),
            TopicAction::Create {
                specs: vec![
                    TopicSpec {
                        name: "a".to_owned(),
                        partitions: 3,
                        replication: 3
                    },
                    TopicSpec {
                        name: "in.dlq".to_owned(),
                        partitions: 3,
                        replication: 3
                    },
                ],
                prototype_dead_letter: false,
            }
        );
    }

    #[test]
    fn prototype_mode_creates_only_the_dead_letter_topic_with_the_brokers_defaults() {
        let prototype = TopicRules {
            prototype: true,
            ..rules()
        };
        assert_eq!(
            decide_topics(&names(&["in.dlq"]), &prototype, Duration::ZERO),
            TopicAction::Create {
                specs: vec![TopicSpec {
                    name: "in.dlq".to_owned(),
                    partitions: -1,
                    replication: TopicSpec::BROKER_DEFAULT_REPLICATION,
                }],
                prototype_dead_letter: true,
            }
        );
        // Other missing topics are the prototype's own: waited for, then refused, as always.
        assert_eq!(
            decide_topics(&names(&["out", "in.dlq"]), &prototype, Duration::ZERO),
            TopicAction::Wait {
                missing: names(&["out"])
            }
        );
        // Outside prototype mode a missing dead-letter topic is like any other.
        assert_eq!(
            decide_topics(&names(&["in.dlq"]), &rules(), Duration::ZERO),
            TopicAction::Wait {
                missing: names(&["in.dlq"])
            }
        );
    }

    #[test]
    fn registry_outages_are_waited_out_and_refusals_are_final() {
        let request = || "GET http://registry/subjects/x".to_owned();
        let waited = [
            RegistryError::Timeout {
                request: request(),
                timeout: Duration::from_secs(1),
                attempts: 1,
            },
            RegistryError::Server {
                request: request(),
                status: 503,
                error_code: None,
                message: String::new(),
                attempts: 1,
            },
        ];
        for error in &waited {
            assert!(!registry_refuses(error), "{error}");
        }
        let refused = [
            RegistryError::Unauthorized {
                request: request(),
                status: 401,
                message: String::new(),
            },
            RegistryError::Unauthorized {
                request: request(),
                status: 403,
                message: String::new(),
            },
            RegistryError::Incompatible {
                subject: "x".to_owned(),
                message: String::new(),
            },
            RegistryError::SubjectNotFound {
                subject: "x".to_owned(),
                message: String::new(),
            },
            RegistryError::Rejected {
                request: request(),
                status: 404,
                error_code: None,
                message: String::new(),
            },
            RegistryError::InvalidResponse {
                request: request(),
                reason: String::new(),
            },
        ];
        for error in &refused {
            assert!(registry_refuses(error), "{error}");
        }
    }

    #[test]
    fn refusals_are_found_under_context() {
        let error = anyhow::Error::new(Refused("no".to_owned())).context("starting");
        assert!(is_refused(&error));
        assert!(!is_refused(&anyhow::anyhow!("other")));
    }
}
