//! Delivery through failures on a real Apache Kafka: group members joining and leaving while
//! events flow, the broker SIGKILLed and restarted mid-stream, and the processor SIGKILLed inside
//! a large producer batch. In each, every event must land on its destination's topic at least
//! once; duplicates are allowed (at-least-once) and reported.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Processor, Scrape, SentEvent, World, allowed};
use test_support::{BatchProducer, OwnBroker, Stack, require_stack};

const WAIT: Duration = Duration::from_secs(90);
const ROUTED: &str = "event_processor_events_routed_total";
const ASSIGNED: &str = "event_processor_assigned_partitions";

fn only_allowed(events: Vec<SentEvent>) -> Vec<SentEvent> {
    events
        .into_iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect()
}

fn routed_total(scrape: &Scrape) -> f64 {
    scrape.all(ROUTED).iter().map(|(_, value)| value).sum()
}

/// Per event id, every copy that landed: the destination of its topic and the instance that
/// routed it.
async fn copies_by_id(world: &World) -> BTreeMap<String, Vec<(&'static str, String)>> {
    let mut copies: BTreeMap<String, Vec<(&'static str, String)>> = BTreeMap::new();
    for (destination, output, _) in world.routed_now().await {
        copies
            .entry(support::payload_id(&output.payload).to_owned())
            .or_default()
            .push((destination, output.processor_service_id));
    }
    copies
}

/// Asserts that every one of `events` landed on its destination's topic and that nothing else
/// landed; returns the number of duplicate copies.
fn assert_none_missing(
    events: &[SentEvent],
    copies: &BTreeMap<String, Vec<(&'static str, String)>>,
    context: impl Fn() -> String,
) -> usize {
    let missing: Vec<&str> = events
        .iter()
        .filter(|event| !copies.contains_key(&event.id))
        .map(|event| event.id.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} events missing, e.g. {:?}\n{}",
        missing.len(),
        events.len(),
        &missing[..missing.len().min(5)],
        context()
    );
    for event in events {
        for (destination, _) in &copies[&event.id] {
            assert_eq!(
                *destination, event.destination,
                "{} landed on the topic of {destination}",
                event.id
            );
        }
    }
    let sent: BTreeSet<&str> = events.iter().map(|event| event.id.as_str()).collect();
    let strays: Vec<&String> = copies
        .keys()
        .filter(|id| !sent.contains(id.as_str()))
        .collect();
    assert!(strays.is_empty(), "events nobody sent: {strays:?}");
    copies.values().map(|landed| landed.len() - 1).sum()
}

/// The last lines of each log, for failure messages.
fn tails(logs: &[PathBuf]) -> String {
    logs.iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "--- {}:\n{}",
                path.display(),
                lines[lines.len().saturating_sub(15)..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Group churn: how many partitions, how many events at least, and how fast they are produced
/// while the group changes (the producer keeps going until the changes are over).
const CHURN_PARTITIONS: i32 = 6;
const CHURN_MIN_EVENTS: usize = 100_000;
const CHURN_CHUNK: usize = 1_000;
const CHURN_PACE: Duration = Duration::from_millis(200);

/// Waits until `members` share all input partitions, each owning some (the group settled on
/// exactly these members).
async fn wait_until_shared_by(members: &[&Processor], what: &str, logs: &[PathBuf]) {
    wait_until_members_share(members, CHURN_PARTITIONS, what, logs).await;
}

/// Waits until `members` share `partitions` input partitions, each owning some.
async fn wait_until_members_share(
    members: &[&Processor],
    partitions: i32,
    what: &str,
    logs: &[PathBuf],
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut owned = Vec::new();
        for member in members {
            owned.push(member.scrape().await.value(ASSIGNED, &[]));
        }
        if owned.iter().all(|count| *count > 0.0)
            && owned.iter().sum::<f64>() == f64::from(partitions)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the {} members did not share the {partitions} partitions within {WAIT:?} (owned: {owned:?})\n{}",
            members.len(),
            tails(logs)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `member` routed another 1,500 events since it was last asked: a crash then lands
/// in the middle of its work rather than right after the commit of a rebalance.
async fn routes_more(member: &Processor, name: &str) {
    let routed = routed_total(&member.scrape().await);
    member
        .wait_for_metrics(&format!("{name} routing on"), WAIT, |scrape| {
            routed_total(scrape) >= routed + 1_500.0
        })
        .await;
}

/// Three processor binaries in one group while more than 100,000 events flow: instances join
/// (cooperative rebalances), crash (SIGKILL: the group notices after the 6 s session timeout and
/// their uncommitted records are routed again by the new owners) and leave gracefully (drain and
/// commit first, then leave the group: see
/// `a_stopped_instance_leaves_the_group_so_its_partitions_move_at_once`), never more than three
/// at once. Each change waits until the group settled on the new members, with events still
/// being produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_joining_and_leaving_while_100k_events_flow_lose_none() {
    let stack = require_stack!();
    let started = Instant::now();
    let world = Arc::new(World::new(stack, "churn", CHURN_PARTITIONS).await);
    let planned = only_allowed(world.plan_events("churn", 360_000));
    let churn_over = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicUsize::new(0));
    let producing = {
        let (world, churn_over, produced) = (
            Arc::clone(&world),
            Arc::clone(&churn_over),
            Arc::clone(&produced),
        );
        tokio::spawn(async move {
            let mut producer = BatchProducer::new(&world.kafka);
            let mut pace = tokio::time::interval(CHURN_PACE);
            let mut sent = 0;
            for chunk in planned.chunks(CHURN_CHUNK) {
                let over = churn_over.load(Ordering::SeqCst);
                if over && sent >= CHURN_MIN_EVENTS {
                    break;
                }
                if !over {
                    pace.tick().await;
                }
                // A key per event: every partition carries traffic, whoever owns it.
                let mut records = world.input_records(chunk);
                for (record, event) in records.iter_mut().zip(chunk) {
                    record.key = Some(event.id.clone().into_bytes());
                }
                producer
                    .produce_and_wait(records, Duration::from_secs(120))
                    .await;
                sent += chunk.len();
                produced.store(sent, Ordering::SeqCst);
            }
            let mut planned = planned;
            planned.truncate(sent);
            planned
        })
    };

    let mut logs = Vec::new();
    let mut steps: Vec<(String, usize)> = Vec::new();
    let mut step = |what: &str, produced: &AtomicUsize| {
        steps.push((what.to_owned(), produced.load(Ordering::SeqCst)));
    };
    let start = |id: &str, logs: &mut Vec<PathBuf>| {
        let processor = world.start_processor(id);
        logs.push(processor.log_path.clone());
        processor
    };

    let a = start("churn-a", &mut logs);
    wait_until_shared_by(&[&a], "a alone", &logs).await;
    step("a owns every partition", &produced);
    let b = start("churn-b", &mut logs);
    wait_until_shared_by(&[&a, &b], "b joined", &logs).await;
    step("b joined", &produced);
    let c = start("churn-c", &mut logs);
    wait_until_shared_by(&[&a, &b, &c], "c joined", &logs).await;
    step("c joined", &produced);
    routes_more(&a, "a").await;
    a.crash();
    wait_until_shared_by(&[&b, &c], "a crashed", &logs).await;
    step("a crashed (SIGKILL), b and c took over", &produced);
    let d = start("churn-d", &mut logs);
    wait_until_shared_by(&[&b, &c, &d], "d joined", &logs).await;
    step("d joined", &produced);
    let stopping = tokio::task::spawn_blocking(move || b.stop());
    wait_until_shared_by(&[&c, &d], "b left", &logs).await;
    let b_status = stopping.await.expect("b stopped");
    assert!(b_status.success(), "b drained and left cleanly: {b_status}");
    step("b left (SIGTERM), c and d took over", &produced);
    let e = start("churn-e", &mut logs);
    wait_until_shared_by(&[&c, &d, &e], "e joined", &logs).await;
    step("e joined", &produced);
    routes_more(&c, "c").await;
    c.crash();
    wait_until_shared_by(&[&d, &e], "c crashed", &logs).await;
    step("c crashed (SIGKILL), d and e took over", &produced);
    let produced_during_churn = produced.load(Ordering::SeqCst);
    let producer_still_running = !producing.is_finished();
    churn_over.store(true, Ordering::SeqCst);
    let churn_took = started.elapsed();

    let events = producing.await.expect("producer finished");
    assert!(
        producer_still_running,
        "the producer ran out of events ({produced_during_churn}) before the group changes were over"
    );
    assert!(events.len() >= CHURN_MIN_EVENTS);
    let ends = world
        .wait_fully_committed(Duration::from_secs(180), || tails(&logs))
        .await;
    assert_eq!(ends.values().sum::<i64>(), events.len() as i64);
    let drained_at = started.elapsed();
    let (d_status, e_status) = tokio::join!(
        tokio::task::spawn_blocking(move || d.stop()),
        tokio::task::spawn_blocking(move || e.stop()),
    );
    assert!(d_status.expect("d stopped").success());
    assert!(e_status.expect("e stopped").success());

    let copies = copies_by_id(&world).await;
    let duplicates = assert_none_missing(&events, &copies, || tails(&logs));
    let mut by_instance: BTreeMap<&str, usize> = BTreeMap::new();
    for landed in copies.values() {
        for (_, instance) in landed {
            *by_instance.entry(instance.as_str()).or_default() += 1;
        }
    }
    assert!(
        world.read_all(&world.dead_letter).await.is_empty(),
        "nothing dead-lettered"
    );
    eprintln!(
        "group churn: {} events, {} copies, {duplicates} duplicates; per instance {by_instance:?}; \
         changes (events produced by then): {steps:?}; changes over after {churn_took:?} \
         ({produced_during_churn} events produced), all committed after {drained_at:?}, \
         verified after {:?}",
        events.len(),
        events.len() + duplicates,
        started.elapsed()
    );
    for instance in ["churn-a", "churn-b", "churn-c", "churn-d", "churn-e"] {
        assert!(
            by_instance.get(instance).is_some_and(|count| *count > 0),
            "{instance} routed events: {by_instance:?}"
        );
    }
}

/// SIGTERM: the instance drains, commits and leaves the group, so the others take its
/// partitions over at once, not after the session timeout (6 s here, 45 s by librdkafka's
/// default) during which nobody reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_leaves_the_group_so_its_partitions_move_at_once() {
    let stack = require_stack!();
    let world = World::new(stack, "leave", 4).await;
    let stayer = world.start_processor("processor-stays");
    let leaver = world.start_processor("processor-leaves");
    let logs = vec![stayer.log_path.clone(), leaver.log_path.clone()];
    wait_until_members_share(&[&stayer, &leaver], 4, "both joined", &logs).await;

    let leaver_log = leaver.log_path.clone();
    let status = tokio::task::spawn_blocking(move || leaver.stop())
        .await
        .expect("stopped");
    assert!(status.success(), "clean stop: {status}");
    let exited = Instant::now();
    wait_until_members_share(&[&stayer], 4, "the leaver's partitions moved", &logs).await;
    let moved_after = exited.elapsed();
    let left_log = std::fs::read_to_string(&leaver_log).unwrap_or_default();
    assert!(
        moved_after < Duration::from_secs(3),
        "the partitions moved {moved_after:?} after the stopped instance exited (session timeout \
         6 s): it did not leave the group; its consumer thread logged its stop: {}",
        left_log.contains("Kafka consumer thread stopped.")
    );
    assert!(stayer.stop().success());
}

/// The broker is SIGKILLed while the processor works through a backlog, and restarted on the
/// same data: the same processor process (no restart) routes everything, and nothing is lost.
/// The broker is one of the test's own; the registry is the shared one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sigkill_mid_stream_loses_nothing_and_the_same_processor_recovers() {
    let stack = require_stack!();
    let broker = Arc::new(
        tokio::task::spawn_blocking(|| OwnBroker::start("broker-crash"))
            .await
            .expect("the test's broker started"),
    );
    let own = Stack {
        kafka_bootstrap: broker.bootstrap(),
        registry_url: stack.registry_url,
    };
    let world = World::new(own, "broker-crash", 3).await;
    let started = Instant::now();
    // Slowed down (200 records in flight, outputs sent after 50 ms: a few thousand events per
    // second), so that the kill surely finds a backlog half done.
    let mut processor = world.start_processor_with(
        "processor-broker-crash",
        &["--producer-property", "linger.ms=50"],
        &[("EVENT_PROCESSOR__PIPELINE__MAX_IN_FLIGHT", "200")],
    );
    processor.wait_assigned().await;

    let before = only_allowed(world.plan_events("before", 22_500));
    world.produce(&before).await;
    processor
        .wait_for_metrics("routing under way", WAIT, |scrape| {
            routed_total(scrape) >= 1_000.0
        })
        .await;
    let killed = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || killed.kill())
        .await
        .expect("broker killed");
    let killed_at = started.elapsed();
    let not_ready = processor.wait_for_ready_status(503, WAIT).await;
    assert!(
        not_ready.to_string().contains("broker"),
        "not ready because of the broker: {not_ready}"
    );
    // An output counts as routed only once the broker acknowledged it: what the processor counts
    // once it noticed the outage is what it routed before the kill.
    let routed_at_kill = routed_total(&processor.scrape().await);
    assert!(
        routed_at_kill < before.len() as f64,
        "the kill landed while events were in flight: {routed_at_kill} of {} routed",
        before.len()
    );
    assert!(processor.is_running(), "the processor outlives the broker");

    let restarted = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || restarted.restart())
        .await
        .expect("broker restarted");
    let restarted_at = started.elapsed();
    let after = only_allowed(world.plan_events("after", 5_000));
    world.produce(&after).await;
    let ends = world
        .wait_fully_committed(Duration::from_secs(180), || processor.log())
        .await;
    assert_eq!(
        ends.values().sum::<i64>(),
        (before.len() + after.len()) as i64
    );
    let committed_at = started.elapsed();
    processor.wait_for_ready_status(200, WAIT).await;
    assert!(processor.is_running(), "the same process recovered");
    assert_eq!(processor.starts_logged(), 1, "started once");

    let events: Vec<SentEvent> = before.iter().chain(&after).cloned().collect();
    let copies = copies_by_id(&world).await;
    let duplicates = assert_none_missing(&events, &copies, || processor.log());
    assert!(
        copies
            .values()
            .flatten()
            .all(|(_, instance)| instance == "processor-broker-crash"),
        "one processor routed everything"
    );
    eprintln!(
        "broker crash: {} events ({} before the kill, {routed_at_kill} of them routed when it \
         landed), {duplicates} duplicates; killed after {killed_at:?}, back after \
         {restarted_at:?}, everything committed after {committed_at:?}",
        events.len(),
        before.len()
    );
    let status = processor.stop();
    assert!(status.success(), "clean stop after the recovery: {status}");
}

/// One large producer batch per partition (every record queued at once, a long linger, lz4):
/// the processor is SIGKILLed after it committed a position inside a batch, and a new one
/// resumes exactly there: it routes every event from the committed offset on, once, and none
/// before it; nothing is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_sigkill_inside_a_large_producer_batch_resumes_at_the_committed_offset() {
    let stack = require_stack!();
    let world = World::new(stack, "big-batch", 3).await;
    let events = only_allowed(world.plan_events("batch", 22_500));
    let batching = world
        .kafka
        .clone()
        .with("linger.ms", "1000")
        .with("batch.num.messages", "100000")
        .with("batch.size", "1000000");
    world.produce_with(&batching, &events).await;
    let positions = world.input_positions().await;
    assert_eq!(positions.len(), events.len());
    let ends: BTreeMap<i32, i64> = world
        .positions()
        .await
        .iter()
        .map(|position| (position.partition, position.high_watermark))
        .collect();

    // Slowed down (100 records in flight, outputs sent after 50 ms) and committing often, so
    // that the kill finds it mid-way with commits inside the batches.
    let first = world.start_processor_with(
        "processor-batch-1",
        &[
            "--commit-every",
            "300",
            "--producer-property",
            "linger.ms=50",
        ],
        &[("EVENT_PROCESSOR__PIPELINE__MAX_IN_FLIGHT", "100")],
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let committed = world.committed().await;
        let inside = committed.iter().any(|(partition, offset)| {
            offset.is_some_and(|offset| offset > 0 && offset < ends[partition])
        });
        if inside {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no commit inside a batch within {WAIT:?}: {committed:?} of {ends:?}; log:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.crash();
    let at_kill: BTreeMap<i32, i64> = world
        .committed()
        .await
        .into_iter()
        .map(|(partition, offset)| (partition, offset.unwrap_or(0)))
        .collect();
    assert!(
        at_kill
            .iter()
            .any(|(partition, offset)| *offset > 0 && *offset < ends[partition]),
        "killed with a committed offset inside a batch: {at_kill:?} of {ends:?}"
    );

    let second = world.start_processor("processor-batch-2");
    world.wait_fully_committed(WAIT, || second.log()).await;
    let copies = copies_by_id(&world).await;
    let duplicates = assert_none_missing(&events, &copies, || second.log());
    let by_second: BTreeSet<&str> = copies
        .iter()
        .filter(|(_, landed)| {
            landed
                .iter()
                .any(|(_, instance)| instance == "processor-batch-2")
        })
        .map(|(id, _)| id.as_str())
        .collect();
    let from_commit: BTreeSet<&str> = positions
        .iter()
        .filter(|(_, (partition, offset))| *offset >= at_kill[partition])
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        by_second.len(),
        from_commit.len(),
        "the new processor routes exactly the events from the committed offsets on"
    );
    assert!(by_second == from_commit, "the same events");
    for (id, landed) in &copies {
        let by_second = landed
            .iter()
            .filter(|(_, instance)| instance == "processor-batch-2")
            .count();
        assert!(
            by_second <= 1,
            "{id} routed {by_second} times by the new processor"
        );
    }
    eprintln!(
        "kill inside a batch: {} events, committed at the kill {at_kill:?} of {ends:?}; \
         the new processor routed {}, {duplicates} duplicates",
        events.len(),
        by_second.len()
    );
    assert!(second.stop().success());
}
