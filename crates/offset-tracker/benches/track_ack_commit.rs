//! Per-record cost of the consumer loop's tracker work: track, acknowledge out of order,
//! and a commit check every 1 000 records.
//!
//! `cargo bench -p offset-tracker --bench track_ack_commit`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use offset_tracker::{CommitPolicy, OffsetTracker, Ticket, TopicPartition};

const RECORDS: u64 = 100_000;
const PARTITIONS: i32 = 3;
/// Records in flight at once; acknowledgements arrive in random order within it.
const WINDOW: usize = 64;
const COMMIT_CHECK_EVERY: u64 = 1_000;

/// xorshift64: deterministic ack order without a dependency.
struct Shuffle(u64);

impl Shuffle {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// Runs `RECORDS` records through a fresh tracker; returns the commits made, so that the
/// work cannot be optimised away.
fn run(outputs: u32, offset_step: i64) -> usize {
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|partition| TopicPartition::new("input", partition))
        .collect();
    let mut tracker = OffsetTracker::new(CommitPolicy::default(), Duration::ZERO);
    for tp in &partitions {
        tracker.assign(tp.clone());
    }
    let mut window: Vec<(Ticket, u32)> = Vec::with_capacity(WINDOW + 1);
    let mut shuffle = Shuffle(0x9E37_79B9_7F4A_7C15);
    let mut commits = 0;
    for record in 0..RECORDS {
        // Consumers hand out runs of records per partition; 16 per run here.
        let tp = &partitions[(record / 16 % PARTITIONS as u64) as usize];
        let offset = (record / (16 * PARTITIONS as u64) * 16 + record % 16) as i64 * offset_step;
        let ticket = tracker
            .track(tp, offset, outputs)
            .expect("offsets increase");
        window.push((ticket, outputs));
        if window.len() > WINDOW {
            let index = shuffle.below(window.len());
            let (ticket, remaining) = &mut window[index];
            tracker.ack(*ticket).expect("ticket is in flight");
            *remaining -= 1;
            if *remaining == 0 {
                window.swap_remove(index);
            }
        }
        if record % COMMIT_CHECK_EVERY == 0 {
            let now = Duration::from_micros(record);
            if let Some(commit) = tracker.due_commit(now) {
                tracker.mark_committed(&commit, now);
                commits += 1;
            }
        }
    }
    black_box(tracker.total_in_flight());
    commits
}

fn track_ack_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("track_ack_commit");
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("one_output", |b| b.iter(|| run(black_box(1), 1)));
    group.bench_function("one_output_with_gaps", |b| b.iter(|| run(black_box(1), 3)));
    group.bench_function("fan_out_of_three", |b| b.iter(|| run(black_box(3), 1)));
    group.finish();
}

criterion_group!(benches, track_ack_commit);
criterion_main!(benches);
