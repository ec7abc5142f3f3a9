//! Exactly-once mode (`--delivery exactly-once`) on a real Apache Kafka: the processor SIGKILLed
//! again and again while transactions are open, and a second instance joining and leaving
//! mid-run. A `read_committed` reader of the outputs and the dead-letter topic must then see
//! every event exactly once: none missing, no duplicates (poison events included). And an
//! output topic deleted mid-run: the refusals abort a transaction, whose events are routed
//! again after the rewind, and the deleted destination's events are dead-lettered as `refused`.

mod support;

use pipeline::dead_letter_headers as headers;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Processor, SentEvent, World, allowed, payload_id};
use test_support::{BatchProducer, header, require_stack};

const EXACTLY_ONCE: &[&str] = &["--delivery", "exactly-once", "--commit-every", "2000"];
const IN_FLIGHT: &str = "event_processor_in_flight_records";
const POISON_EVERY: usize = 500;

fn only_allowed(events: Vec<SentEvent>) -> Vec<SentEvent> {
    events
        .into_iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect()
}

/// Produces `events` in chunks of `chunk` every `pace`, with one poison record (a value that
/// is not Avro, key `poison-<n>`) per [`POISON_EVERY`] events; returns how many poison records.
fn produce_paced(
    world: &Arc<World>,
    events: Vec<SentEvent>,
    chunk: usize,
    pace: Duration,
    produced: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<usize> {
    let world = Arc::clone(world);
    tokio::spawn(async move {
        let mut producer = BatchProducer::new(&world.kafka);
        let mut ticks = tokio::time::interval(pace);
        let mut poison = 0;
        let mut sent = 0;
        for events in events.chunks(chunk) {
            ticks.tick().await;
            let mut records = world.input_records(events);
            for index in sent..sent + events.len() {
                if index % POISON_EVERY == 0 {
                    let mut record = records[0].clone();
                    record.key = Some(format!("poison-{poison}").into_bytes());
                    record.payload = b"not avro at all".to_vec();
                    records.push(record);
                    poison += 1;
                }
            }
            producer
                .produce_and_wait(records, Duration::from_secs(120))
                .await;
            sent += events.len();
            produced.store(sent, Ordering::SeqCst);
        }
        poison
    })
}

/// The verification of a `read_committed` reader: every event routed exactly once, every
/// poison record dead-lettered exactly once.
async fn assert_exactly_once(world: &World, events: &[SentEvent], poison: usize, context: &str) {
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for id in world.routed_ids_committed().await {
        *copies.entry(id).or_default() += 1;
    }
    let missing: Vec<&str> = events
        .iter()
        .filter(|event| !copies.contains_key(&event.id))
        .map(|event| event.id.as_str())
        .collect();
    let duplicates: Vec<(&String, &usize)> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && duplicates.is_empty() && copies.len() == events.len(),
        "{context}: {} missing (e.g. {:?}), {} duplicated (e.g. {:?}), {} distinct of {}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        duplicates.len(),
        duplicates.iter().take(5).collect::<Vec<_>>(),
        copies.len(),
        events.len()
    );
    let mut dead: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for record in world.read_committed(&world.dead_letter).await {
        *dead.entry(record.key.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(
        dead.len(),
        poison,
        "{context}: poison records dead-lettered: {dead:?}"
    );
    assert!(
        dead.values().all(|count| *count == 1),
        "{context}: a poison record was dead-lettered twice: {dead:?}"
    );
}

/// Waits until the processor reports records in flight (read, outputs not all acknowledged:
/// its transaction is open), then SIGKILLs it. True when the gauge said so before the kill.
async fn kill_in_flight(processor: Processor) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = false;
    while Instant::now() < deadline {
        if processor.scrape().await.value(IN_FLIGHT, &[]) > 0.0 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    processor.crash();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_repeatedly_with_open_transactions_routes_every_event_exactly_once() {
    let stack = require_stack!();
    let started = Instant::now();
    let world = Arc::new(World::new(stack, "eos-kill", 3).await);
    let events = only_allowed(world.plan_events("eoskill", 57_000));
    assert!(events.len() >= 50_000);
    let produced = Arc::new(AtomicUsize::new(0));
    let producing = produce_paced(
        &world,
        events.clone(),
        150,
        Duration::from_millis(100),
        Arc::clone(&produced),
    );
    let mut kills_in_flight = 0;
    let mut kills = 0;
    let mut produced_at_kills = Vec::new();
    while kills_in_flight < 5 {
        let processor = world.start_processor_with("eos-kill-a", EXACTLY_ONCE, &[]);
        processor.wait_assigned().await;
        // A random point of its run: between 0.2 and 1.5 s after it got its partitions.
        let delay = Duration::from_millis(200 + rand_millis(1300));
        tokio::time::sleep(delay).await;
        let log = processor.log_path.clone();
        if kill_in_flight(processor).await {
            kills_in_flight += 1;
        }
        kills += 1;
        produced_at_kills.push(produced.load(Ordering::SeqCst));
        // The next incarnation (same processor id, so the same transactional.id: it fences
        // this one) logs to a fresh file, so that its log says where it listens and when it
        // got its partitions.
        let _ = std::fs::rename(&log, log.with_extension(format!("log.{kills}")));
        if kills >= 9 || produced.load(Ordering::SeqCst) == events.len() {
            break;
        }
    }
    let survivor = world.start_processor_with("eos-kill-a", EXACTLY_ONCE, &[]);
    let poison = producing.await.expect("producer task");
    world
        .wait_fully_committed(Duration::from_secs(120), || survivor.log())
        .await;
    assert_exactly_once(&world, &events, poison, &survivor.log()).await;
    let topics: Vec<String> = world.outputs.values().cloned().collect();
    let uncommitted_copies = world.routed_ids(&topics, false).await.len();
    let status = survivor.stop();
    assert!(status.success(), "clean stop: {status:?}");
    assert!(
        kills >= 5 && kills_in_flight >= 5,
        "{kills} kills, {kills_in_flight} of them with records in flight"
    );
    // Proof that kills hit open transactions with outputs written: their aborted copies are
    // in the output topics, where only a read_uncommitted reader sees them.
    assert!(
        uncommitted_copies > events.len(),
        "a read_uncommitted reader sees {uncommitted_copies} routed records for {} events: no \
         aborted copies",
        events.len()
    );
    eprintln!(
        "exactly-once kill test: {} events + {poison} poison, {kills} SIGKILLs ({kills_in_flight} \
         with records in flight) at produced counts {produced_at_kills:?}; a read_uncommitted \
         reader sees {uncommitted_copies} routed records ({} aborted copies); {:?}",
        events.len(),
        uncommitted_copies - events.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_instance_joining_and_leaving_mid_run_routes_every_event_exactly_once() {
    let stack = require_stack!();
    let started = Instant::now();
    let world = Arc::new(World::new(stack, "eos-rebalance", 4).await);
    let events = only_allowed(world.plan_events("eosrebalance", 24_000));
    let produced = Arc::new(AtomicUsize::new(0));
    let producing = produce_paced(
        &world,
        events.clone(),
        200,
        Duration::from_millis(50),
        Arc::clone(&produced),
    );
    let a = world.start_processor_with("eos-rebalance-a", EXACTLY_ONCE, &[]);
    a.wait_assigned().await;
    let b = world.start_processor_with("eos-rebalance-b", EXACTLY_ONCE, &[]);
    b.wait_assigned().await;
    let joined_at = produced.load(Ordering::SeqCst);
    let b_status = tokio::task::spawn_blocking(move || b.stop())
        .await
        .expect("b stops");
    let left_at = produced.load(Ordering::SeqCst);
    assert!(b_status.success(), "b left cleanly: {b_status:?}");
    let poison = producing.await.expect("producer task");
    assert!(
        left_at < events.len(),
        "b left while events still flowed ({left_at} of {})",
        events.len()
    );
    world
        .wait_fully_committed(Duration::from_secs(120), || a.log())
        .await;
    assert_exactly_once(&world, &events, poison, &a.log()).await;
    let status = a.stop();
    assert!(status.success(), "clean stop: {status:?}");
    eprintln!(
        "exactly-once rebalance test: {} events + {poison} poison; b joined at {joined_at}, left \
         at {left_at}; {:?}",
        events.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_topic_deleted_mid_run_aborts_a_transaction_and_every_event_lands_exactly_once() {
    let stack = require_stack!();
    let started = Instant::now();
    let world = World::new(stack, "eos-refused", 2).await;
    let processor = world.start_processor_with(
        "eos-refused-a",
        &[
            "--delivery",
            "exactly-once",
            "--producer-property",
            "topic.metadata.propagation.max.ms=1000",
        ],
        &[],
    );
    // Nothing goes to the topic to be deleted before it goes. (A topic deleted while the
    // transactional producer writes to it is another story: the producer keeps retrying to add
    // its partition to the transaction, the transaction stalls until transaction.timeout.ms,
    // and the abort fails for good on Kafka 4.4: exit code 3, see docs/OPERATIONS.md.)
    let before: Vec<SentEvent> = world
        .plan_events("before", 90)
        .into_iter()
        .filter(|event| event.destination != "LOGISTICS")
        .collect();
    world.produce(&before).await;
    world
        .wait_fully_committed(Duration::from_secs(120), || processor.log())
        .await;
    let deleted = world.outputs["LOGISTICS"].clone();
    // What the deleted topic held, read before it goes: routed once each.
    let routed_to_deleted = world.routed_ids(std::slice::from_ref(&deleted), true).await;
    let aborted_before = processor.scrape().await.value(
        "event_processor_transactions_total",
        &[("result", "aborted")],
    );
    assert_eq!(aborted_before, 0.0, "no abort before the deletion");
    kafka_adapters::kafka_admin(&world.kafka)
        .expect("admin client")
        .delete_topics(&[&deleted])
        .await
        .expect("output topic deleted");

    let after = world.plan_events("after", 90);
    world.produce(&after).await;
    world
        .wait_fully_committed(Duration::from_secs(120), || processor.log())
        .await;
    let scrape = processor.scrape().await;
    let aborted = scrape.value(
        "event_processor_transactions_total",
        &[("result", "aborted")],
    );
    let committed = scrape.value(
        "event_processor_transactions_total",
        &[("result", "committed")],
    );
    let log = processor.log();
    let status = processor.stop();
    assert!(status.success(), "clean stop: {status:?}\n{log}");
    assert!(
        aborted >= 1.0 && committed >= 2.0,
        "transactions: {aborted} aborted, {committed} committed\n{log}"
    );
    assert!(log.contains("Aborting the transaction"), "{log}");

    // A read_committed reader: every event exactly once, routed on its destination or
    // dead-lettered (unauthorized; refused for the deleted destination after the deletion).
    let others: Vec<String> = world
        .outputs
        .values()
        .filter(|topic| **topic != deleted)
        .cloned()
        .collect();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for id in world
        .routed_ids(&others, true)
        .await
        .into_iter()
        .chain(routed_to_deleted)
    {
        *copies.entry(id).or_default() += 1;
    }
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let mut unauthorized: BTreeMap<String, usize> = BTreeMap::new();
    let decoder = avro_codec::InputDecoder::new();
    for record in world.read_committed(&world.dead_letter).await {
        let value = record.payload.as_deref().expect("the input's value");
        let schema_id = avro_codec::InputDecoder::schema_id_of(value).expect("framed");
        if !decoder.is_loaded(schema_id) {
            decoder
                .load(schema_id, &world.registry)
                .await
                .expect("schema loads");
        }
        let id = payload_id(&decoder.decode(value).expect("the input event").payload).to_owned();
        match header(&record, headers::REASON) {
            Some("refused") => {
                assert_eq!(
                    header(&record, headers::OUTPUT_TOPIC),
                    Some(deleted.as_str())
                );
                let error = header(&record, headers::ERROR).unwrap_or_default();
                assert!(
                    error.contains(&deleted) && error.to_lowercase().contains("unknown"),
                    "the broker's error: {error}"
                );
                *refused.entry(id).or_default() += 1;
            }
            Some("unauthorized") => *unauthorized.entry(id).or_default() += 1,
            other => panic!("unexpected dead letter {other:?} for {id}"),
        }
    }
    let mut missing = Vec::new();
    for event in before.iter().chain(&after) {
        let expected = match (
            allowed(event.tenant, &event.destination),
            event.id.starts_with("after-") && event.destination == "LOGISTICS",
        ) {
            (false, _) => &unauthorized,
            (true, true) => &refused,
            (true, false) => &copies,
        };
        if !expected.contains_key(&event.id) {
            missing.push(event.id.as_str());
        }
    }
    let duplicates: Vec<_> = [&copies, &refused, &unauthorized]
        .iter()
        .flat_map(|counts| counts.iter().filter(|(_, n)| **n > 1))
        .collect();
    let landed = copies.len() + refused.len() + unauthorized.len();
    let events = before.len() + after.len();
    assert!(
        missing.is_empty() && duplicates.is_empty() && landed == events,
        "{} missing {missing:?}, duplicated {duplicates:?}, {landed} landed for {events} \
         events\n{log}",
        missing.len()
    );
    let refused_expected = after
        .iter()
        .filter(|event| event.destination == "LOGISTICS" && allowed(event.tenant, "LOGISTICS"))
        .count();
    assert_eq!(refused.len(), refused_expected);

    // The aborted transaction had written outputs of the events after the deletion: a
    // read_uncommitted reader sees those copies beside the ones routed again after the rewind.
    let mut uncommitted: BTreeMap<String, usize> = BTreeMap::new();
    for id in world.routed_ids(&others, false).await {
        *uncommitted.entry(id).or_default() += 1;
    }
    let routed_again: BTreeSet<&String> = uncommitted
        .iter()
        .filter(|(id, n)| **n > 1 && id.starts_with("after-") && copies.get(*id) == Some(&1))
        .map(|(id, _)| id)
        .collect();
    assert!(
        !routed_again.is_empty(),
        "no event of the aborted transaction was routed again after the rewind\n{log}"
    );
    eprintln!(
        "exactly-once refused-output test: {events} events, {} dead-lettered as refused, {} \
         unauthorized; {aborted} transactions aborted, {committed} committed; {} events of \
         aborted transactions routed again; {:?}",
        refused.len(),
        unauthorized.len(),
        routed_again.len(),
        started.elapsed()
    );
}

/// A pseudo-random number of milliseconds below `below`, from the clock (no extra dependency).
fn rand_millis(below: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::from(elapsed.subsec_nanos()))
        .unwrap_or(0);
    nanos % below.max(1)
}
