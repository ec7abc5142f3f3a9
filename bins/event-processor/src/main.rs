//! `event-processor`: reads settings, builds the real adapters and runs the pipeline.
//!
//! This binary only wires parts together (composition root); the behaviour lives in the crates:
//! the pipeline in `pipeline`, and what runs around it (settings, start-up waits, the metrics and
//! probes endpoint, the background checks, the routing reload) in `processor-service`.

mod version;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches};
use cli_support::LogFormat;
use kafka_adapters::ConsumerSettings;
use pipeline::{PipelineParts, PipelineStats, SystemClock};
use processor_service::ops::{Ops, Phase};
use processor_service::settings::{
    self, Cli, Settings, translate_prototype_args, uses_prototype_flags,
};
use processor_service::startup::{self, refuse, topic_rules, topics_to_check};
use processor_service::{check, http, ops, probe, reload};
use schema_registry::{CachedRegistry, HttpSchemaRegistry};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

/// mimalloc instead of glibc's malloc: cheaper for the buffers the main loop allocates per
/// record and for freeing records the consumer thread allocated (no arena lock). Built with
/// `no_thp`: on transparent huge pages its arenas raised peak RSS markedly. The bench tools use it
/// too, so the passthrough compares like for like (docs/BENCHMARKS.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let prototype = uses_prototype_flags(&args);
    let matches = Cli::command()
        .version(version::VERSION)
        .get_matches_from(translate_prototype_args(args));
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Some(url) = &cli.probe {
        return probe::run(url);
    }
    let settings = match Settings::load(&cli) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        return check::run(&settings);
    }
    let log_format = match settings.log.json {
        true => LogFormat::Json,
        false => LogFormat::Plain,
    };
    // `Settings::load` checked the level already; this cannot fail.
    if let Err(error) = cli_support::init_logging(&settings.log.level, log_format) {
        eprintln!("error: log.level: {error:#}");
        return ExitCode::from(2);
    }
    let runtime = match cli_support::start_runtime(ExitCode::FAILURE) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run(settings, prototype)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!("{error:#}");
            eprintln!("error: {error:#}");
            // A refusal (configuration, or the cluster refusing credentials or ACLs: a consumer
            // stopped with `ConsumerRefused`) is 2 before a fatal transaction error is 3.
            match startup::is_refused(&error) {
                true => ExitCode::from(2),
                false if is_fatal_transaction(&error) => ExitCode::from(EXIT_TRANSACTION_FATAL),
                false => ExitCode::FAILURE,
            }
        }
    }
}

/// Exit code of a fatal transaction error in exactly-once mode (typically a producer fenced by a
/// newer instance with the same `transactional.id`): restart the process.
const EXIT_TRANSACTION_FATAL: u8 = 3;

/// Limit of each transaction call (init, send offsets, commit, abort) in exactly-once mode.
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn is_fatal_transaction(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<pipeline::PipelineError>()
        .is_some_and(pipeline::PipelineError::is_fatal_transaction)
}

async fn run(settings: Settings, prototype: bool) -> Result<()> {
    // Installed first: SIGHUP's default action ends the process.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    let stats = Arc::new(PipelineStats::default());
    let ops = Arc::new(
        Ops::new(
            Arc::clone(&stats),
            settings.processor_id.clone(),
            settings.kafka.input_topic.clone(),
            settings.limits(),
        )
        .with_build_commit(version::GIT_COMMIT),
    );
    let endpoint = match settings.http.enabled {
        true => Some(http::start(settings.http_listen()?, Arc::clone(&ops)).await?),
        false => None,
    };

    // Listening from here on: a stop while start-up waits exits at once and cleanly.
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(stop_on_signals(stop));

    // Configuration mistakes found here are refusals (exit 2), as in `Settings::load`.
    let (router, routing_text) = settings.load_router().map_err(refuse)?;
    let key_file_text = settings.read_key_file().map_err(refuse)?;
    let authentication = settings
        .tenant_authentication(key_file_text.as_deref())
        .map_err(refuse)?;
    let registry = CachedRegistry::new(
        HttpSchemaRegistry::new(settings.registry_config().map_err(refuse)?)
            .context("cannot create the schema registry client")
            .map_err(refuse)?,
    );
    let check_timeout = Duration::from_millis(settings.health.check_timeout_ms);
    // Start-up asks once per attempt and fails fast; `startup` retries with its own backoff.
    let mut startup_config = settings.registry_config().map_err(refuse)?;
    startup_config.timeout = check_timeout;
    startup_config.max_retries = 0;
    let startup_registry = HttpSchemaRegistry::new(startup_config)
        .context("cannot create the schema registry client")
        .map_err(refuse)?;
    let shared = settings.kafka.client(&Default::default());
    let admin =
        kafka_adapters::kafka_admin(&shared).context("cannot create the Kafka admin client")?;

    let topics = topics_to_check(&router, &settings);
    let rules = topic_rules(&settings, prototype);
    let startup_admin = admin.clone().with_timeout(check_timeout);
    let prepared = async {
        tokio::try_join!(
            startup::wait_for_topics(&startup_admin, &topics, &rules, &ops),
            startup::wait_for_registry(
                &router,
                &startup_registry,
                settings.registry.auto_register,
                &ops
            ),
        )
    };
    let mut stopped = shutdown.clone();
    let snapshot = tokio::select! {
        prepared = prepared => prepared?.1.with_authentication(authentication),
        _ = stopped.wait_for(|stop| *stop) => {
            info!("Stopped during start-up: nothing was read or committed.");
            ops.set_phase(Phase::Stopping);
            if let Some(endpoint) = endpoint {
                endpoint.stop().await;
            }
            return Ok(());
        }
    };
    let (routing_updates, routing) = watch::channel(Arc::new(snapshot));
    let mut background = Vec::new();
    match (&settings.routing.file, routing_text) {
        (Some(path), Some(text)) => {
            let reloader = reload::Reloader {
                path: path.clone(),
                poll: match settings.routing.reload_poll_ms {
                    0 => None,
                    ms => Some(Duration::from_millis(ms)),
                },
                settings: settings.clone(),
                admin: admin.clone(),
                registry: CachedRegistry::new(
                    HttpSchemaRegistry::new(settings.registry_config()?)
                        .context("cannot create the schema registry client")?,
                ),
                updates: routing_updates,
                ops: Arc::clone(&ops),
                applied: reload::fingerprint(&text, key_file_text.as_deref()),
            };
            background.push(tokio::spawn(reloader.run(hangup)));
        }
        _ => background.push(tokio::spawn(reload::ignore_hangups(hangup))),
    }
    // The checks only feed the endpoint (readiness, lag): without it they would be wasted.
    if endpoint.is_some() {
        let mut probe_config = settings.registry_config()?;
        probe_config.timeout = check_timeout;
        probe_config.max_retries = 0;
        background.push(tokio::spawn(ops::run_checks(
            Arc::clone(&ops),
            admin.clone(),
            settings.kafka.group_id.clone(),
            HttpSchemaRegistry::new(probe_config)
                .context("cannot create the schema registry client")?,
            routing.clone(),
            Duration::from_millis(settings.health.check_interval_ms),
            check_timeout,
        )));
    }

    let (report_sender, reports) = mpsc::unbounded_channel();
    let producer_config = settings.kafka.client(&settings.kafka.producer_properties);
    let exactly_once = settings.pipeline.delivery == settings::Delivery::ExactlyOnce;
    let sink = match exactly_once {
        // One transactional producer per instance (KIP-447); its id must be stable across
        // restarts so that a restarted instance fences the previous incarnation.
        true => {
            let transactional_id = format!("{}.{}", settings.kafka.group_id, settings.processor_id);
            kafka_adapters::kafka_transactional_producer(
                &producer_config,
                &transactional_id,
                TRANSACTION_CALL_TIMEOUT,
                report_sender,
            )
            .await
        }
        false => kafka_adapters::kafka_producer(&producer_config, report_sender),
    }
    .context("cannot create the Kafka producer")?;
    let mut consumer_config = settings.kafka.client(&settings.kafka.consumer_properties);
    if exactly_once {
        // Never route the outputs of a transaction that is open or aborted upstream.
        consumer_config = consumer_config.with("isolation.level", "read_committed");
    }
    let (source, committer) = kafka_adapters::kafka_consumer(
        &consumer_config,
        ConsumerSettings {
            // Below max.poll.interval.ms: `Settings::load` refused anything else.
            revoke_timeout: settings.revoke_timeout(),
            ..ConsumerSettings::new(
                settings.kafka.group_id.clone(),
                vec![settings.kafka.input_topic.clone()],
            )
        },
    )
    .context("cannot create the Kafka consumer")?;
    let committer = match exactly_once {
        true => committer.transactional(&sink, TRANSACTION_CALL_TIMEOUT),
        false => committer,
    };

    let parts = PipelineParts {
        source,
        sink,
        reports,
        committer,
        registry,
        routing,
        clock: Arc::new(SystemClock),
        stats: Arc::clone(&stats),
    };
    info!(
        processor_id = %settings.processor_id,
        input_topic = %settings.kafka.input_topic,
        group_id = %settings.kafka.group_id,
        "Event processor starting."
    );
    ops.set_phase(Phase::Running);
    let outcome = pipeline::run(settings.pipeline_config(), parts, shutdown).await;
    ops.set_phase(Phase::Stopping);
    for task in background {
        task.abort();
    }
    if let Some(endpoint) = endpoint {
        endpoint.stop().await;
    }
    let summary = outcome?;
    info!(
        consumed = stats.consumed.load(std::sync::atomic::Ordering::Relaxed),
        routed = stats.routed.load(std::sync::atomic::Ordering::Relaxed),
        dead_lettered = stats.dead_lettered_total(),
        abandoned_in_flight = summary.abandoned_in_flight,
        final_commit_ok = summary.final_commit_ok,
        "Event processor stopped."
    );
    if summary.abandoned_in_flight > 0 || !summary.final_commit_ok {
        bail!(
            "stopped with {} input records not delivered (they will be routed again on restart)",
            summary.abandoned_in_flight
        );
    }
    Ok(())
}

/// First SIGTERM or SIGINT: drain and stop. A second one: exit at once.
async fn stop_on_signals(stop: watch::Sender<bool>) {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                warn!(%error, "Cannot listen for SIGTERM; only Ctrl-C stops the processor.");
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop.send(true);
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    info!("Stop requested: draining in-flight records (send the signal again to exit at once).");
    let _ = stop.send(true);
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("second stop signal: exiting without draining");
    std::process::exit(130);
}
