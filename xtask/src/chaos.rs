//! `cargo xtask chaos [--quick] [SCENARIO…]`: the processor under faults, with a real workload
//! and an end-to-end verification (docs/RELIABILITY.md).
//!
//! One private stack (`chaos/cluster.rs`) serves every scenario; each scenario runs twice, in
//! at-least-once and in exactly-once mode, on its own topics and group. The workload is the
//! sample producer (three tenants, one of whose routes the policy refuses, plus poison values);
//! the verdict is the sample consumer's verification of the producer's manifest (missing,
//! duplicates, misrouted) and the dead-letter topic's reasons. The binaries are black boxes
//! driven through their command lines, logs and `/metrics`.

mod cluster;
mod hostile;
mod processor;
mod proxy;
mod rendezvous;
mod run;
mod scenarios;

use crate::{tools, workspace_root};
use anyhow::{Result, bail};
use run::{Delivery, Verification};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask chaos [--quick] [--only at-least-once|exactly-once] [SCENARIO…]

Runs each scenario (default: all) in at-least-once and in exactly-once mode against a private
stack and prints one row per run; exits non-zero if any event is missing or misrouted, any
exactly-once run has duplicates, or a scenario's own check fails.

scenarios:
  processor-kills   SIGKILL the processor at random points (20 kills, 1M events; quick: 3)
  broker-crash      SIGKILL the broker and restart it, twice
  registry-outage   stop the schema registry under load (30 s; quick: 8 s), restart the
                    processor while it is down, bring the registry back
  group-churn       three processors, one leaving or joining every 5 s (cooperative-sticky)
  network-faults    cut and stall the processor's broker connections through a TCP proxy,
                    once longer than the session timeout
  garbage           hostile input values (100k; quick: 5k) mixed with good events
  slow-output       one output topic refuses the processor's writes (ACL) for a while

--quick   fewer events, kills and shorter outages: the CI run (a few minutes)
--only    run one delivery mode only";

/// Scenario names, in the order they run.
pub(crate) const SCENARIOS: [&str; 7] = [
    "processor-kills",
    "broker-crash",
    "registry-outage",
    "group-churn",
    "network-faults",
    "garbage",
    "slow-output",
];

pub(crate) fn command(args: &[&str]) -> Result<()> {
    if args.iter().any(|arg| matches!(*arg, "--help" | "-h")) {
        println!("{USAGE}");
        return Ok(());
    }
    let quick = args.contains(&"--quick");
    let mut modes = vec![Delivery::AtLeastOnce, Delivery::ExactlyOnce];
    let mut chosen: Vec<&str> = Vec::new();
    let mut rest = args.iter().copied();
    while let Some(arg) = rest.next() {
        match arg {
            "--quick" => {}
            "--only" => match rest.next() {
                Some("at-least-once") => modes = vec![Delivery::AtLeastOnce],
                Some("exactly-once") => modes = vec![Delivery::ExactlyOnce],
                other => bail!("--only needs at-least-once or exactly-once, not {other:?}"),
            },
            name if SCENARIOS.contains(&name) => chosen.push(name),
            other => bail!("unknown scenario or flag `{other}`\n\n{USAGE}"),
        }
    }
    if chosen.is_empty() {
        chosen = SCENARIOS.to_vec();
    }
    let started = Instant::now();
    let bin = tools::build_binaries(
        &["event-processor", "event-producer", "event-consumer"],
        false,
    )?;
    let cluster = cluster::Cluster::start()?;
    let scale = Scale { quick };
    let mut outcomes = Vec::new();
    for scenario in &chosen {
        // The modes run side by side (halving the time); faults of the shared stack hit both.
        let shared = rendezvous::Rendezvous::new(modes.len());
        let run_one = |delivery: Delivery| {
            eprintln!("\n==> chaos: {scenario} ({})", delivery.flag());
            let run_started = Instant::now();
            let result = scenarios::run(scenario, &cluster, &bin, delivery, &scale, &shared);
            shared.leave();
            let outcome = result
                .unwrap_or_else(|error| Outcome::broken(scenario, delivery, &format!("{error:#}")));
            eprintln!(
                "    {scenario} ({}): {} in {:.0} s{}",
                delivery.flag(),
                if outcome.ok() { "passed" } else { "FAILED" },
                run_started.elapsed().as_secs_f64(),
                outcome
                    .problems
                    .iter()
                    .map(|problem| format!("\n    problem: {problem}"))
                    .collect::<String>()
            );
            outcome
        };
        let lanes: Vec<Outcome> = std::thread::scope(|scope| {
            let lanes: Vec<_> = modes
                .iter()
                .map(|delivery| scope.spawn(|| run_one(*delivery)))
                .collect();
            lanes
                .into_iter()
                .zip(&modes)
                .map(|(lane, delivery)| {
                    lane.join().unwrap_or_else(|_| {
                        Outcome::broken(scenario, *delivery, "the run panicked")
                    })
                })
                .collect()
        });
        outcomes.extend(lanes);
    }
    cluster.stop();
    let table = table(&outcomes);
    let machine = machine();
    let report = format!(
        "`{}` on {machine}, {} s in all\n\n{table}",
        std::iter::once("cargo xtask chaos")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        started.elapsed().as_secs()
    );
    let report_file = workspace_root()
        .join(".stack")
        .join("chaos")
        .join("report.md");
    std::fs::write(&report_file, &report)?;
    println!("\n{report}");
    println!("(also in {})", report_file.display());
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|outcome| !outcome.ok())
        .map(|outcome| format!("{} ({})", outcome.scenario, outcome.delivery.flag()))
        .collect();
    if !failed.is_empty() {
        bail!("chaos runs failed: {}", failed.join(", "));
    }
    println!("chaos OK: nothing lost, nothing misrouted, no duplicate in exactly-once mode");
    Ok(())
}

/// How big a run is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) quick: bool,
}

impl Scale {
    /// `quick` in the CI run, `full` otherwise.
    pub(crate) fn pick<T>(self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// One scenario run's row.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) scenario: String,
    pub(crate) delivery: Delivery,
    pub(crate) events: u64,
    pub(crate) faults: u64,
    pub(crate) verification: Option<Verification>,
    /// The longest time from a fault's end to the processor routing again.
    pub(crate) recover: Option<Duration>,
    pub(crate) problems: Vec<String>,
    pub(crate) notes: Vec<String>,
}

impl Outcome {
    pub(crate) fn new(scenario: &str, delivery: Delivery) -> Self {
        Self {
            scenario: scenario.to_owned(),
            delivery,
            events: 0,
            faults: 0,
            verification: None,
            recover: None,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn broken(scenario: &str, delivery: Delivery, error: &str) -> Self {
        let mut outcome = Self::new(scenario, delivery);
        outcome.problems.push(format!("the run broke: {error}"));
        outcome
    }

    pub(crate) fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub(crate) fn recovered_in(&mut self, took: Duration) {
        self.recover = Some(self.recover.map_or(took, |longest| longest.max(took)));
    }

    pub(crate) fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The checks every scenario makes on the verification: nothing missing or misrouted, no
    /// duplicate in exactly-once mode, every unauthorized event dead-lettered, no good event
    /// dead-lettered but for `extra_reason` (e.g. `refused`), every dead letter with a reason
    /// from `reasons`, and every one of the `poison` values dead-lettered as undecodable.
    pub(crate) fn judge(
        &mut self,
        verification: Verification,
        poison: u64,
        extra_reason: Option<&str>,
        reasons: &[&str],
    ) {
        let v = &verification;
        self.events = v.expected;
        let exactly_once = self.delivery == Delivery::ExactlyOnce;
        if v.expected == 0 {
            self.problem("the manifest is empty: no event was acknowledged");
        }
        if v.missing > 0 {
            self.problem(format!(
                "{} events missing (neither on their topic nor dead-lettered), first: {}",
                v.missing,
                v.first_missing.join(" ")
            ));
        }
        if v.misrouted > 0 {
            self.problem(format!(
                "{} events misrouted, first: {}",
                v.misrouted,
                v.first_misrouted.join(" ")
            ));
        }
        if exactly_once && v.duplicates > 0 {
            self.problem(format!(
                "{} duplicates in exactly-once mode (read_committed)",
                v.duplicates
            ));
        }
        let extra = v
            .dead_lettered_events
            .saturating_sub(v.unauthorized_expected);
        match extra_reason {
            None if v.dead_lettered_events != v.unauthorized_expected => self.problem(format!(
                "{} events dead-lettered, {} expected (the unauthorized ones): good events were dead-lettered",
                v.dead_lettered_events, v.unauthorized_expected
            )),
            Some(reason) if extra > v.reason(reason) => self.problem(format!(
                "{extra} good events dead-lettered but only {} dead letters say `{reason}`",
                v.reason(reason)
            )),
            _ => {}
        }
        let exact_or_more = |found: u64, expected: u64| {
            if exactly_once {
                found == expected
            } else {
                found >= expected
            }
        };
        if !exact_or_more(v.reason("unauthorized"), v.unauthorized_expected) {
            self.problem(format!(
                "{} dead letters say `unauthorized`, {} unauthorized events were sent",
                v.reason("unauthorized"),
                v.unauthorized_expected
            ));
        }
        if poison > 0 && !exact_or_more(v.reason("undecodable"), poison) {
            self.problem(format!(
                "{} dead letters say `undecodable`, {poison} poison values were sent",
                v.reason("undecodable")
            ));
        }
        for (reason, count) in &v.dead_letters_by_reason {
            if !reasons.contains(&reason.as_str()) {
                self.problem(format!("{count} dead letters with reason `{reason}`"));
            }
        }
        self.verification = Some(verification);
    }
}

fn table(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "| scenario | mode | events | faults | missing | duplicates | misrouted | dead-lettered | recovered in | result |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for outcome in outcomes {
        let figure = |pick: fn(&Verification) -> u64| {
            outcome
                .verification
                .as_ref()
                .map_or("-".to_owned(), |v| pick(v).to_string())
        };
        let dead_lettered = outcome.verification.as_ref().map_or("-".to_owned(), |v| {
            let total: u64 = v.dead_letters_by_reason.values().sum();
            let reasons: Vec<String> = v
                .dead_letters_by_reason
                .iter()
                .map(|(reason, count)| format!("{reason} {count}"))
                .collect();
            format!("{total} ({})", reasons.join(", "))
        });
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            outcome.scenario,
            outcome.delivery.short(),
            outcome.events,
            outcome.faults,
            figure(|v| v.missing),
            figure(|v| v.duplicates),
            figure(|v| v.misrouted),
            dead_lettered,
            outcome.recover.map_or("-".to_owned(), |took| format!(
                "{:.1} s",
                took.as_secs_f64()
            )),
            if outcome.ok() { "ok" } else { "FAILED" },
        );
    }
    let notes: Vec<String> = outcomes
        .iter()
        .flat_map(|outcome| {
            outcome
                .notes
                .iter()
                .chain(&outcome.problems)
                .map(move |note| {
                    // One line each, so that the list stays a Markdown list.
                    let note: String = note.split_whitespace().collect::<Vec<_>>().join(" ");
                    let short: String = note.chars().take(600).collect();
                    format!(
                        "- {} ({}): {short}",
                        outcome.scenario,
                        outcome.delivery.short()
                    )
                })
        })
        .collect();
    if !notes.is_empty() {
        let _ = write!(text, "\n{}\n", notes.join("\n"));
    }
    text
}

/// CPU model and count, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{cores} × {cpu}")
}
