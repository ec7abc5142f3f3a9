//! `cargo xtask bench`: the processor measured beside the practical limit of the broker and
//! client, in one run, on one machine, against one private broker.
//!
//! Every scenario gets fresh topics and a fresh group on a private stack (Apache Kafka
//! and Apicurio on free ports), so figures come from a clean broker and the developer's stack is untouched:
//!
//! 1. throughput: N events are pre-produced, then drained through the system under test
//!    (`passthrough`, the processor, the processor with poison events), while an independent
//!    consumer (`bench-tools drain`) verifies every event id and times the first record → the
//!    last new one. Repeated, interleaved, median reported.
//! 2. latency (after one discarded warm-up run): the system under test runs first, events are
//!    produced at a fixed rate, the drain reports send time → read time percentiles.
//! 3. codec + routing on one thread, no I/O; and the processor's main loop on one thread with
//!    in-memory adapters (its own work per record, without librdkafka or a broker).
//!
//! The Kafka-facing work is done by `bins/bench-tools` (xtask does not link librdkafka); xtask
//! starts the processes, reads their JSON, and writes the report, the JSON results and the plot.

mod plot;
mod report;

use crate::process::display_command;
use crate::stack::Stack;
use crate::{flag_value, tools, workspace_root};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "\
usage: cargo xtask bench [--smoke] [--events N] [--partitions P] [--rates R1,R2,..] [--eos-intervals I1,..]
                         [--latency-secs S] [--repeat R] [--codec-secs S] [--out DIR]
                         [--profile release|debug] [--consumer-property K=V]..
                         [--producer-property K=V].. [--drain-property K=V]..
                         [--processor-config FILE] [--baseline-processor BINARY] [--rewrite]

  --smoke          a few thousand events, one latency rate, short runs; writes to target/bench/smoke
  --events N       events per throughput run (default 200000; smoke 5000)
  --partitions P   input topic partitions (default 3)
  --rates ...      fixed rates for the latency runs, events/s (default 1000,5000,20000; smoke 1000)
  --eos-intervals ...  transaction intervals of the exactly-once processor runs, ms
                   (default 100,1000; smoke 1000)
  --latency-secs   seconds per latency run (default 10; smoke 3)
  --repeat R       throughput runs per scenario, interleaved; the median is reported (default 3; smoke 1)
  --codec-secs S   seconds of the codec + routing loop (default 5; smoke 1)
  --out DIR        where to write BENCHMARKS.md, results.json and the plot
                   (default: docs/BENCHMARKS.md and docs/bench/; smoke: target/bench/smoke)
  --profile        build profile of the binaries (default release; smoke debug, already built by tests)
  --consumer-property K=V, --producer-property K=V
                   extra librdkafka properties for the processor and the passthrough alike (repeatable)
  --drain-property K=V
                   extra librdkafka properties for the measuring consumer (repeatable)
  --processor-config FILE
                   a processor config file (TOML, as deploy/processor.toml) under the bench's flags
  --baseline-processor BINARY
                   another event-processor binary (e.g. built at an earlier commit) run in every
                   throughput round beside this one, to compare them in the same run
  --rewrite        run nothing: rewrite the report and the plot from the last results.json";

const DESTINATIONS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];
const OUTPUT_PARTITIONS: u32 = 3;
const POISON_PERCENT: u64 = 10;
/// The processor's default transaction interval (`pipeline.commit_interval_ms`), the one the
/// exactly-once throughput goal is measured at.
pub(crate) const EOS_DEFAULT_INTERVAL_MS: u64 = 1000;
/// Latency runs leave the first second of events out of the percentiles (joins, first fetches).
const LATENCY_WARMUP_SECS: f64 = 1.0;

/// What this bench run does.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) smoke: bool,
    rewrite: bool,
    pub(crate) events: u64,
    pub(crate) partitions: u32,
    pub(crate) rates: Vec<u64>,
    /// Transaction intervals (ms) of the exactly-once processor runs.
    pub(crate) eos_intervals: Vec<u64>,
    pub(crate) latency_secs: f64,
    pub(crate) repeat: u32,
    pub(crate) codec_secs: f64,
    pub(crate) release: bool,
    /// librdkafka properties given to both systems under test, after the bench's own.
    pub(crate) consumer_properties: Vec<String>,
    pub(crate) producer_properties: Vec<String>,
    /// librdkafka properties of the drain, after the bench's own.
    pub(crate) drain_properties: Vec<String>,
    /// A processor config file; the bench's own flags still override it.
    pub(crate) processor_config: Option<PathBuf>,
    /// An older processor binary run beside this one in the throughput rounds.
    pub(crate) baseline_processor: Option<PathBuf>,
    out_dir: PathBuf,
    doc_path: PathBuf,
    command_line: String,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Self> {
        const FLAGS: [&str; 14] = [
            "--events",
            "--eos-intervals",
            "--partitions",
            "--rates",
            "--latency-secs",
            "--repeat",
            "--codec-secs",
            "--out",
            "--profile",
            "--consumer-property",
            "--producer-property",
            "--drain-property",
            "--processor-config",
            "--baseline-processor",
        ];
        let mut index = 0;
        while let Some(arg) = args.get(index) {
            match *arg {
                "--smoke" | "--rewrite" => index += 1,
                flag if FLAGS.contains(&flag) => index += 2,
                "--help" | "-h" => bail!("{USAGE}"),
                other => bail!("unknown argument `{other}`\n\n{USAGE}"),
            }
        }
        let smoke = args.contains(&"--smoke");
        let number = |name: &str, default: f64| -> Result<f64> {
            match flag_value(args, name)? {
                None => Ok(default),
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|value| *value > 0.0)
                    .with_context(|| format!("{name} {text}: expected a positive number")),
            }
        };
        let rates = match flag_value(args, "--rates")? {
            None if smoke => vec![1_000],
            None => vec![1_000, 5_000, 20_000],
            Some(list) => list
                .split(',')
                .map(|rate| {
                    rate.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|rate| *rate > 0)
                        .with_context(|| format!("--rates: `{rate}` is not a positive integer"))
                })
                .collect::<Result<_>>()?,
        };
        let eos_intervals = match flag_value(args, "--eos-intervals")? {
            None if smoke => vec![EOS_DEFAULT_INTERVAL_MS],
            None => vec![100, EOS_DEFAULT_INTERVAL_MS],
            Some(list) => list
                .split(',')
                .map(|interval| {
                    interval
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|interval| *interval > 0)
                        .with_context(|| {
                            format!("--eos-intervals: `{interval}` is not a positive integer")
                        })
                })
                .collect::<Result<_>>()?,
        };
        let release = match flag_value(args, "--profile")? {
            None => !smoke,
            Some("release") => true,
            Some("debug") => false,
            Some(other) => bail!("--profile {other}: use release or debug"),
        };
        let root = workspace_root();
        let out_dir = match flag_value(args, "--out")? {
            Some(dir) => PathBuf::from(dir),
            None if smoke => tools::target_dir().join("bench").join("smoke"),
            None => root.join("docs").join("bench"),
        };
        let doc_path = if flag_value(args, "--out")?.is_none() && !smoke {
            root.join("docs").join("BENCHMARKS.md")
        } else {
            out_dir.join("BENCHMARKS.md")
        };
        Ok(Self {
            smoke,
            rewrite: args.contains(&"--rewrite"),
            events: number("--events", if smoke { 5_000.0 } else { 200_000.0 })? as u64,
            partitions: number("--partitions", 3.0)? as u32,
            rates,
            eos_intervals,
            latency_secs: number("--latency-secs", if smoke { 3.0 } else { 10.0 })?,
            repeat: number("--repeat", if smoke { 1.0 } else { 3.0 })? as u32,
            codec_secs: number("--codec-secs", if smoke { 1.0 } else { 5.0 })?,
            release,
            consumer_properties: properties(args, "--consumer-property")?,
            producer_properties: properties(args, "--producer-property")?,
            drain_properties: properties(args, "--drain-property")?,
            processor_config: flag_value(args, "--processor-config")?
                .map(std::path::absolute)
                .transpose()
                .context("--processor-config: bad path")?,
            baseline_processor: flag_value(args, "--baseline-processor")?
                .map(std::path::absolute)
                .transpose()
                .context("--baseline-processor: bad path")?,
            out_dir,
            doc_path,
            command_line: std::iter::once("cargo xtask bench")
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
        })
    }
}

/// Every value of a repeatable `--name K=V` flag.
fn properties(args: &[&str], name: &str) -> Result<Vec<String>> {
    args.windows(2)
        .filter(|pair| pair[0] == name)
        .map(|pair| {
            if pair[1]
                .split_once('=')
                .is_some_and(|(key, _)| !key.is_empty())
            {
                Ok(pair[1].to_owned())
            } else {
                bail!("{name} `{}` is not KEY=VALUE", pair[1])
            }
        })
        .collect()
}

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let options = Options::parse(args)?;
    run(&options)
}

/// Runs the bench with `options` and writes its outputs; fails only when the bench itself
/// breaks (a process fails, an event is missing), never on the figures.
pub(crate) fn run(options: &Options) -> Result<()> {
    if options.rewrite {
        return rewrite(options);
    }
    let started = Instant::now();
    eprintln!(
        "==> building event-processor and bench-tools ({})",
        if options.release { "release" } else { "debug" }
    );
    let bin_dir = tools::build_binaries(&["event-processor", "bench-tools"], options.release)?;
    let run_dir =
        tools::target_dir()
            .join("bench")
            .join(if options.smoke { "smoke-run" } else { "run" });
    fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;

    let load_before = load_average();
    let stack = Stack::private("bench")?;
    let _stop_on_exit = StopOnDrop(stack.clone());
    stack
        .up()
        .context("starting the private bench stack failed")?;
    let bench = Bench {
        options,
        tools: bin_dir.join("bench-tools"),
        processor: bin_dir.join("event-processor"),
        bootstrap: stack.kafka_bootstrap(),
        registry: stack.registry_url(),
        broker: stack.broker.daemon(),
        run_dir,
    };

    if !options.smoke {
        // The broker is a JVM: its first runs are slower while it compiles its hot paths, and
        // that would fall on whichever system runs first. One discarded round warms it up.
        eprintln!("==> warm-up round (discarded)");
        for kind in [System::Passthrough, System::Processor { poison_percent: 0 }] {
            bench.throughput(kind)?;
        }
    }
    let mut throughput = Vec::new();
    for round in 1..=options.repeat {
        let exactly_once = options
            .eos_intervals
            .iter()
            .map(|interval_ms| System::ExactlyOnce {
                interval_ms: *interval_ms,
            });
        for kind in [
            System::Passthrough,
            System::Processor { poison_percent: 0 },
            System::Processor {
                poison_percent: POISON_PERCENT,
            },
            System::Authenticated,
        ]
        .into_iter()
        .chain(
            options
                .baseline_processor
                .as_ref()
                .map(|_| System::Baseline),
        )
        .chain(exactly_once)
        {
            eprintln!(
                "==> throughput {} (round {round}/{})",
                kind.name(),
                options.repeat
            );
            throughput.push(bench.throughput(kind)?);
        }
    }
    if let (false, Some(rate)) = (options.smoke, options.rates.first()) {
        // The same for the latency path, which the throughput runs do not warm: the first
        // latency run after them came out slower whichever system it was, and the second
        // still slower than the rest (docs/BENCHMARKS.md). One discarded run of each system.
        for kind in [System::Passthrough, System::Processor { poison_percent: 0 }] {
            eprintln!("==> latency warm-up run, {} (discarded)", kind.name());
            let warm_up = bench.latency(kind, *rate)?;
            eprintln!("    discarded: {}", warm_up["drain"]["latency_ms"]);
        }
    }
    let mut latency = Vec::new();
    for rate in &options.rates {
        let exactly_once = options
            .eos_intervals
            .iter()
            .map(|interval_ms| System::ExactlyOnce {
                interval_ms: *interval_ms,
            });
        for kind in [
            System::Processor { poison_percent: 0 },
            System::Passthrough,
            System::Broker,
        ]
        .into_iter()
        .chain(exactly_once)
        {
            eprintln!("==> latency {} at {rate} events/s", kind.name());
            latency.push(bench.latency(kind, *rate)?);
        }
    }
    eprintln!("==> codec + routing, one thread, {} s", options.codec_secs);
    let mut codec = bench.codec()?;
    eprintln!("==> processor loop, one thread, in-memory adapters");
    codec["pipeline_loop"] = bench.pipeline_loop()?;

    let mut machine = machine();
    machine["load_before"] = json!(load_before);
    machine["load_after"] = json!(load_average());
    let results = report::results(
        options,
        &machine,
        &throughput,
        &latency,
        &codec,
        started.elapsed(),
    );
    report::write_all(&results, &options.out_dir, &options.doc_path)?;
    eprintln!(
        "bench done in {:.0} s: {}, {} and {}",
        started.elapsed().as_secs_f64(),
        options.doc_path.display(),
        options.out_dir.join("results.json").display(),
        options.out_dir.join(plot::FILE_NAME).display()
    );
    Ok(())
}

/// Rewrites the report and the plot from the results a previous run saved (presentation only:
/// every figure still comes from that run).
fn rewrite(options: &Options) -> Result<()> {
    let path = options.out_dir.join("results.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let results: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    report::write_all(&results, &options.out_dir, &options.doc_path)
}

/// What is measured: the processor, the minimal consume → produce of the same bytes, or (for
/// latency) the broker alone: the drain reads the input topic, one hop instead of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Passthrough,
    Processor {
        poison_percent: u64,
    },
    /// The processor with `delivery = "exactly-once"`, a transaction every `interval_ms`.
    ExactlyOnce {
        interval_ms: u64,
    },
    /// The processor with tenant authentication (`authentication.mode = "hmac"`): every event
    /// is signed by the workload producer and verified before it is routed.
    Authenticated,
    /// `--baseline-processor`: another processor binary, with the default settings.
    Baseline,
    Broker,
}

impl System {
    /// Whether outputs become visible only when a transaction commits.
    fn transactional(self) -> bool {
        matches!(self, System::ExactlyOnce { .. })
    }

    fn name(self) -> String {
        match self {
            System::Passthrough => "passthrough".to_owned(),
            System::Broker => "broker".to_owned(),
            System::Processor { poison_percent: 0 } => "processor".to_owned(),
            System::Processor { poison_percent } => format!("processor-poison-{poison_percent}"),
            System::ExactlyOnce { interval_ms } => format!("processor-eos-{interval_ms}ms"),
            System::Authenticated => "processor-hmac".to_owned(),
            System::Baseline => "processor-baseline".to_owned(),
        }
    }
}

struct Bench<'a> {
    options: &'a Options,
    tools: PathBuf,
    processor: PathBuf,
    bootstrap: String,
    registry: String,
    /// The private stack's broker, whose CPU time the throughput runs report.
    broker: local_stack::Daemon,
    run_dir: PathBuf,
}

/// One scenario's topics and group.
struct Topics {
    name: String,
    input: String,
    outputs: Vec<(&'static str, String)>,
    dead_letter: String,
    group: String,
}

impl Bench<'_> {
    /// Pre-produces N events, then lets `system` route them while the drain verifies and times.
    fn throughput(&self, system: System) -> Result<Value> {
        let topics = self.topics(&system.name())?;
        let poison_percent = match system {
            System::Processor { poison_percent } => poison_percent,
            System::Passthrough
            | System::Broker
            | System::ExactlyOnce { .. }
            | System::Authenticated
            | System::Baseline => 0,
        };
        let signed = matches!(system, System::Authenticated);
        let produced = self.produce(&topics, self.options.events, poison_percent, None, signed)?;
        let ready = self.run_dir.join(format!("{}.ready", topics.name));
        let mut drain = self.start_drain(
            &topics,
            &drained_topics(system, &topics),
            self.options.events,
            0,
            &ready,
            system.transactional(),
        )?;
        wait_for_file(&ready, &mut drain, Duration::from_secs(30))?;
        let mut running = self.start(system, &topics)?;
        // CPU is counted from the assignment on, so start-up work (topic checks, the join, the
        // processor's first broker check) is not charged to the events.
        running.wait_assigned(Duration::from_secs(60))?;
        let assigned_unix_us = unix_micros();
        let broker_cpu_before = self.broker_cpu_seconds();
        let system_cpu_before = cpu_seconds(running.pid());
        let drained =
            drain.finish_while(Some(&mut running), self.drain_timeout(self.options.events))?;
        let broker_cpu = self
            .broker_cpu_seconds()
            .zip(broker_cpu_before)
            .map(|(after, before)| after - before);
        let system_cpu = cpu_seconds(running.pid())
            .zip(system_cpu_before)
            .map(|(after, before)| after - before);
        let peak_rss_kib = running.peak_rss_kib();
        let exit = running.stop()?;
        check_complete(&drained, &system.name(), &running.log)?;
        Ok(json!({
            "system": system.name(),
            "poison_percent": poison_percent,
            "events": self.options.events,
            "assigned_unix_us": assigned_unix_us,
            "produce": produced,
            "drain": drained,
            "peak_rss_kib": peak_rss_kib,
            "cpu_seconds": {
                "system": system_cpu,
                "broker": broker_cpu,
                "drain": drained["cpu_seconds"],
            },
            "exit": exit,
        }))
    }

    /// CPU time the bench's broker has used so far.
    fn broker_cpu_seconds(&self) -> Option<f64> {
        self.broker.running_pid().and_then(cpu_seconds)
    }

    /// Starts `system`, then produces at `rate` events/s while the drain times each event.
    fn latency(&self, system: System, rate: u64) -> Result<Value> {
        let topics = self.topics(&format!("{}-{rate}", system.name()))?;
        let count = ((rate as f64) * self.options.latency_secs).round().max(1.0) as u64;
        let warmup = ((rate as f64) * LATENCY_WARMUP_SECS).round() as u64;
        let ready = self.run_dir.join(format!("{}.ready", topics.name));
        let mut drain = self.start_drain(
            &topics,
            &drained_topics(system, &topics),
            count,
            warmup.min(count / 2),
            &ready,
            system.transactional(),
        )?;
        wait_for_file(&ready, &mut drain, Duration::from_secs(30))?;
        let mut running = match system {
            System::Broker => None,
            _ => Some(self.start(system, &topics)?),
        };
        if let Some(running) = running.as_mut() {
            running.wait_assigned(Duration::from_secs(60))?;
        }
        let produced = self.produce(
            &topics,
            count,
            0,
            Some(rate),
            matches!(system, System::Authenticated),
        )?;
        let drained = drain.finish_while(running.as_mut(), self.drain_timeout(count))?;
        let peak_rss_kib = running.as_ref().and_then(Running::peak_rss_kib);
        let exit = match running.as_mut() {
            Some(running) => running.stop()?,
            None => Value::Null,
        };
        let log = running
            .as_ref()
            .map_or(drain.log.clone(), |running| running.log.clone());
        check_complete(&drained, &system.name(), &log)?;
        Ok(json!({
            "system": system.name(),
            "rate": rate,
            "events": count,
            "warmup_events": warmup.min(count / 2),
            "produce": produced,
            "drain": drained,
            "peak_rss_kib": peak_rss_kib,
            "exit": exit,
        }))
    }

    fn codec(&self) -> Result<Value> {
        let mut command = Command::new(&self.tools);
        command.args(["codec", "--seconds", &self.options.codec_secs.to_string()]);
        json_output(&mut command)
    }

    /// `pipeline::run` on one thread with adapters that cost nothing: the processor's own work.
    fn pipeline_loop(&self) -> Result<Value> {
        let records = if self.options.smoke { 50_000 } else { 500_000 };
        let mut command = Command::new(&self.tools);
        command.args(["pipeline", "--records", &records.to_string()]);
        json_output(&mut command)
    }

    fn drain_timeout(&self, events: u64) -> Duration {
        // Generous: a broken run ends on the drain's idle timeout long before this.
        Duration::from_secs(120 + events / 1_000)
    }

    fn topics(&self, scenario: &str) -> Result<Topics> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let name = format!("bench-{scenario}-{nanos}");
        let topics = Topics {
            input: format!("{name}.in"),
            outputs: DESTINATIONS
                .iter()
                .map(|destination| {
                    (
                        *destination,
                        format!("{name}.to.{}", destination.to_lowercase()),
                    )
                })
                .collect(),
            dead_letter: format!("{name}.dlq"),
            group: format!("{name}.group"),
            name,
        };
        let mut input = Command::new(&self.tools);
        input
            .args(["topics", "--bootstrap-servers", &self.bootstrap])
            .args(["--partitions", &self.options.partitions.to_string()])
            .arg(&topics.input);
        json_output(&mut input)?;
        let mut outputs = Command::new(&self.tools);
        outputs
            .args(["topics", "--bootstrap-servers", &self.bootstrap])
            .args(["--partitions", &OUTPUT_PARTITIONS.to_string()])
            .args(topics.outputs.iter().map(|(_, topic)| topic))
            .arg(&topics.dead_letter);
        json_output(&mut outputs)?;
        Ok(topics)
    }

    fn produce(
        &self,
        topics: &Topics,
        count: u64,
        poison_percent: u64,
        rate: Option<u64>,
        signed: bool,
    ) -> Result<Value> {
        let mut command = Command::new(&self.tools);
        if signed {
            command
                .arg("produce")
                .arg("--sign-key-file")
                .arg(self.tenant_keys()?);
        } else {
            command.arg("produce");
        }
        command
            .args(["--bootstrap-servers", &self.bootstrap])
            .args(["--schema-registry-url", &self.registry])
            .args(["--topic", &topics.input])
            .args(["--count", &count.to_string()])
            .args(["--poison-percent", &poison_percent.to_string()]);
        if let Some(rate) = rate {
            command.args(["--rate", &rate.to_string()]);
        }
        json_output(&mut command)
    }

    fn start_drain(
        &self,
        topics: &Topics,
        read: &[String],
        expect: u64,
        skip_first: u64,
        ready: &Path,
        read_committed: bool,
    ) -> Result<Drain> {
        let _ = fs::remove_file(ready);
        let mut command = Command::new(&self.tools);
        command
            .args(["drain", "--bootstrap-servers", &self.bootstrap])
            .args(["--expect", &expect.to_string()])
            .args(["--skip-first", &skip_first.to_string()])
            .args([
                "--timeout-secs",
                &self.drain_timeout(expect).as_secs().to_string(),
            ])
            .arg("--ready-file")
            .arg(ready);
        for topic in read {
            command.args(["--topic", topic]);
        }
        if read_committed {
            // Only what a transaction committed counts: aborted copies would be duplicates, and
            // the wait for the commit is part of the latency a downstream reader sees.
            command.args(["--consumer-property", "isolation.level=read_committed"]);
        }
        for property in &self.options.drain_properties {
            command.args(["--consumer-property", property]);
        }
        let log = self.run_dir.join(format!("{}.drain.log", topics.name));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", display_command(&command)))?;
        Ok(Drain {
            child: Some(child),
            log,
        })
    }

    /// The key file of the authenticated runs: one key per tenant of the workload.
    fn tenant_keys(&self) -> Result<PathBuf> {
        let path = self.run_dir.join("tenant-keys.toml");
        if !path.exists() {
            let mut text = String::new();
            for (index, tenant) in ["FINANCE", "MARKETING", "LOGISTICS"].iter().enumerate() {
                // Fixed bench secrets: they protect nothing (a private stack on loopback).
                let secret: String = (0..32)
                    .map(|byte| format!("{:02x}", byte * 7 + index))
                    .collect();
                text.push_str(&format!(
                    "[[key]]\nid = \"{}-bench\"\nservice_type = \"{tenant}\"\nsecret = \"{secret}\"\n",
                    tenant.to_lowercase()
                ));
            }
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(path)
    }

    fn start(&self, system: System, topics: &Topics) -> Result<Running> {
        let log = self
            .run_dir
            .join(format!("{}.{}.log", topics.name, system.name()));
        let mut command = match system {
            System::Passthrough => {
                let mut command = Command::new(&self.tools);
                command
                    .args(["passthrough", "--bootstrap-servers", &self.bootstrap])
                    .args(["--input-topic", &topics.input])
                    .args(["--group-id", &topics.group]);
                for (destination, topic) in &topics.outputs {
                    command.args(["--output", &format!("{destination}={topic}")]);
                }
                command
            }
            System::Broker => bail!("the broker scenario runs no system under test"),
            System::Processor { .. }
            | System::ExactlyOnce { .. }
            | System::Authenticated
            | System::Baseline => {
                let routing = self.run_dir.join(format!("{}.routing.toml", topics.name));
                fs::write(&routing, routing_toml(&topics.outputs))
                    .with_context(|| format!("cannot write {}", routing.display()))?;
                let binary = match (system, &self.options.baseline_processor) {
                    (System::Baseline, Some(baseline)) => baseline,
                    _ => &self.processor,
                };
                let mut command = Command::new(binary);
                command
                    .args(["--processor-id", "event-processor-1"])
                    .args(["--bootstrap-servers", &self.bootstrap])
                    .args(["--schema-registry-url", &self.registry])
                    .args(["--input-topic", &topics.input])
                    .args(["--group-id", &topics.group])
                    .args(["--dead-letter-topic", &topics.dead_letter])
                    .arg("--routing-file")
                    .arg(&routing)
                    .args(["--log-level", "info"])
                    // Metrics and probes stay on, on a port of their own: 9464 may be taken.
                    .args(["--http-listen", "127.0.0.1:0"])
                    .env_remove("RUST_LOG")
                    .env_remove("EVENT_PROCESSOR_CONFIG");
                if let Some(config) = &self.options.processor_config {
                    command.arg("--config").arg(config);
                }
                for (name, _) in std::env::vars_os() {
                    if name.to_string_lossy().starts_with("EVENT_PROCESSOR__") {
                        command.env_remove(name);
                    }
                }
                if let System::Authenticated = system {
                    command
                        .env("EVENT_PROCESSOR__AUTHENTICATION__MODE", "hmac")
                        .env(
                            "EVENT_PROCESSOR__AUTHENTICATION__KEY_FILE",
                            self.tenant_keys()?,
                        )
                        // The backlog is produced before the processor starts: no age limit.
                        .env("EVENT_PROCESSOR__AUTHENTICATION__MAX_AGE_MS", "0");
                }
                if let System::ExactlyOnce { interval_ms } = system {
                    command.args(["--delivery", "exactly-once"]).env(
                        "EVENT_PROCESSOR__PIPELINE__COMMIT_INTERVAL_MS",
                        interval_ms.to_string(),
                    );
                }
                command
            }
        };
        for property in &self.options.consumer_properties {
            command.args(["--consumer-property", property]);
        }
        for property in &self.options.producer_properties {
            command.args(["--producer-property", property]);
        }
        let stdout = Stdio::piped();
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log_file(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", display_command(&command)))?;
        Ok(Running {
            name: system.name(),
            child: Some(child),
            log,
        })
    }
}

/// The drain process: its JSON comes on stdout when it ends.
struct Drain {
    child: Option<Child>,
    log: PathBuf,
}

impl Drain {
    /// Waits for the drain's verdict, failing early when `running` dies meanwhile.
    fn finish_while(
        &mut self,
        mut running: Option<&mut Running>,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(child) = self.child.as_mut() else {
                bail!("the drain already finished");
            };
            if let Some(status) = child.try_wait()? {
                let mut stdout = String::new();
                if let Some(mut pipe) = child.stdout.take() {
                    pipe.read_to_string(&mut stdout)?;
                }
                self.child = None;
                if !status.success() {
                    bail!(
                        "the drain failed ({status}); log {}:\n{}",
                        self.log.display(),
                        tail(&self.log)
                    );
                }
                return last_json_line(&stdout).with_context(|| {
                    format!("the drain printed no result (log {})", self.log.display())
                });
            }
            if let Some(running) = running.as_deref_mut()
                && let Some(status) = running.exited()?
            {
                bail!(
                    "{} exited ({status}) before the drain saw every event; log {}:\n{}",
                    running.name,
                    running.log.display(),
                    tail(&running.log)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the drain did not finish within {timeout:?} (log {})",
                    self.log.display()
                );
            }
            // Short: the exactly-once throughput is timed from this moment.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn is_running(&mut self) -> Result<bool> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?.is_none()),
            None => Ok(false),
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The system under test, a child process stopped with SIGTERM (a graceful drain and commit).
struct Running {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => Ok(None),
        }
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn wait_assigned(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains("Partitions assigned")
            {
                return Ok(());
            }
            if let Some(status) = self.exited()? {
                bail!(
                    "{} exited ({status}) before joining; log:\n{}",
                    self.name,
                    tail(&self.log)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} got no partitions within {timeout:?}; log:\n{}",
                    self.name,
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for the graceful stop; returns its JSON line (passthrough) or status.
    fn stop(&mut self) -> Result<Value> {
        let Some(mut child) = self.child.take() else {
            bail!("{} is not running", self.name);
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} did not stop within 60 s of SIGTERM; log:\n{}",
                    self.name,
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stdout = String::new();
        if let Some(mut pipe) = child.stdout.take() {
            pipe.read_to_string(&mut stdout)?;
        }
        if !status.success() {
            bail!(
                "{} failed ({status}); log {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log)
            );
        }
        Ok(last_json_line(&stdout).unwrap_or_else(|| json!({ "status": status.to_string() })))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn check_complete(drained: &Value, name: &str, log: &Path) -> Result<()> {
    let missing = drained["missing"].as_u64().unwrap_or(u64::MAX);
    if missing != 0 {
        bail!(
            "{name}: {missing} events never arrived (drain outcome {}); log {}",
            drained["outcome"],
            log.display()
        );
    }
    Ok(())
}

/// What the drain reads: the input itself for the broker alone, else every output topic and the
/// dead-letter topic.
fn drained_topics(system: System, topics: &Topics) -> Vec<String> {
    match system {
        System::Broker => vec![topics.input.clone()],
        _ => topics
            .outputs
            .iter()
            .map(|(_, topic)| topic.clone())
            .chain(std::iter::once(topics.dead_letter.clone()))
            .collect(),
    }
}

fn wait_for_file(path: &Path, drain: &mut Drain, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if !drain.is_running()? {
            bail!(
                "the drain stopped before it was ready; log:\n{}",
                tail(&drain.log)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the drain was not ready within {timeout:?}; log:\n{}",
                tail(&drain.log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Runs a bench-tools command to completion and parses the JSON it prints.
fn json_output(command: &mut Command) -> Result<Value> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", display_command(command)))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}",
            display_command(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    last_json_line(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("{} printed no JSON result", display_command(command)))
}

fn last_json_line(stdout: &str) -> Option<Value> {
    stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line.trim()).ok())
}

fn log_file(path: &Path) -> Result<fs::File> {
    fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Every tenant may reach every destination, under the deny-by-default policy production uses,
/// so the policy check runs for every event.
fn routing_toml(outputs: &[(&'static str, String)]) -> String {
    let mut toml = String::from("version = 1\n");
    for (destination, topic) in outputs {
        toml.push_str(&format!(
            "[destinations.{destination}]\noutputs = [{{ topic = \"{topic}\" }}]\n"
        ));
    }
    toml.push_str("[policy]\nmode = \"deny-by-default\"\n");
    for tenant in DESTINATIONS {
        toml.push_str(&format!(
            "[[policy.allow]]\norigin_service_type = \"{tenant}\"\ndestinations = [\"*\"]\n"
        ));
    }
    toml
}

/// The machine the figures come from.
fn machine() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_kib = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpu": model,
        "cores": cores,
        "memory_gib": memory_kib.map(|kib| (kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": kernel,
        "rustc": command_line_output(Command::new("rustc").arg("--version")),
        "broker": format!("Apache Kafka {} (single node, KRaft)", local_stack::KAFKA_VERSION),
        "registry": format!("Apicurio Registry {}", local_stack::APICURIO_VERSION),
        "commit": command_line_output(Command::new("git").args(["rev-parse", "--short", "HEAD"])),
    })
}

/// Microseconds since the Unix epoch, as the drain stamps its records.
fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// User + system CPU time of a process so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces): state is field 3, utime 14.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    command_line_output(Command::new("getconf").arg("CLK_TCK"))
        .and_then(|text| text.parse().ok())
        .unwrap_or(100.0)
}

/// The 1-minute load average: other work on the machine skews every figure.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn command_line_output(command: &mut Command) -> Option<String> {
    let output = command.stderr(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

struct StopOnDrop(Stack);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Err(error) = self.0.down() {
            eprintln!("warning: stopping the bench stack failed: {error:#}");
        }
    }
}
