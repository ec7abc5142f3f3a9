//! What the test may do to the tracker, and how the steps are drawn from the model's state.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

use crate::reference::Model;

/// Partitions of the single input topic that the test uses; few, so that revoking and
/// re-assigning the same partition (and reusing its slot) happens often.
pub(crate) const PARTITIONS: i32 = 3;

#[derive(Clone, Debug)]
pub(crate) enum Transition {
    Assign(i32),
    Track {
        partition: i32,
        offset: i64,
        outputs: u32,
    },
    /// The operations below name a ticket by its index among all tickets ever issued.
    Ack(usize),
    Fail(usize),
    Resolve(usize),
    Retry(usize),
    AddOutputs(usize, u32),
    Revoke(i32),
    Lose(i32),
    /// Time passes, in milliseconds.
    Tick(u64),
    /// The consumer loop's periodic check: commit what `due_commit` offers, confirmed at once.
    CommitIfDue,
    /// A forced commit of everything committable (e.g. at shutdown).
    CommitNow,
}

pub(crate) fn strategy(model: &Model) -> BoxedStrategy<Transition> {
    let any_partition = 0..PARTITIONS;
    let assigned: Vec<i32> = model.partitions.keys().copied().collect();
    let mut choices: Vec<(u32, BoxedStrategy<Transition>)> = vec![
        (
            2,
            any_partition.clone().prop_map(Transition::Assign).boxed(),
        ),
        (1, track(model, any_partition.clone().boxed())),
        (
            1,
            any_partition.clone().prop_map(Transition::Revoke).boxed(),
        ),
        (1, any_partition.prop_map(Transition::Lose).boxed()),
        (3, (1..40u64).prop_map(Transition::Tick).boxed()),
        (3, Just(Transition::CommitIfDue).boxed()),
        (1, Just(Transition::CommitNow).boxed()),
    ];
    if !assigned.is_empty() {
        choices.push((12, track(model, select(assigned).boxed())));
    }
    // Most operations target records that can take them; the rest pick any ticket (stale
    // ones, complete ones, the wrong operation) so that the refusals are exercised too.
    let mut on_tickets = |weight: u32, tickets: Vec<usize>, make: fn(usize) -> Transition| {
        if !tickets.is_empty() {
            choices.push((weight, select(tickets).prop_map(make).boxed()));
        }
    };
    let all: Vec<usize> = (0..model.tickets.len()).collect();
    on_tickets(12, model.tickets_with_pending(), Transition::Ack);
    on_tickets(2, model.tickets_with_pending(), Transition::Fail);
    on_tickets(3, model.tickets_with_failed(), Transition::Resolve);
    on_tickets(1, model.tickets_with_failed(), Transition::Ack);
    on_tickets(2, model.tickets_with_failed(), Transition::Retry);
    on_tickets(1, all.clone(), Transition::Ack);
    on_tickets(1, all.clone(), Transition::Resolve);
    on_tickets(1, all.clone(), Transition::Retry);
    let incomplete = model.tickets_incomplete();
    if !incomplete.is_empty() {
        let add = (select(incomplete), 0..3u32)
            .prop_map(|(ticket, extra)| Transition::AddOutputs(ticket, extra));
        choices.push((1, add.boxed()));
    }
    if !all.is_empty() {
        let add = (select(all), 0..3u32)
            .prop_map(|(ticket, extra)| Transition::AddOutputs(ticket, extra));
        choices.push((1, add.boxed()));
    }
    Union::new_weighted(choices).boxed()
}

/// Tracks in a partition drawn by `partition`: mostly the next offset or a gap after it,
/// sometimes a repeated or older one, to check that they are refused.
fn track(model: &Model, partition: BoxedStrategy<i32>) -> BoxedStrategy<Transition> {
    let next_offsets: Vec<i64> = (0..PARTITIONS).map(|p| model.next_offset(p)).collect();
    let delta = prop_oneof![12 => 0..4i64, 1 => -3..0i64];
    let outputs = prop_oneof![1 => Just(0u32), 4 => Just(1u32), 2 => 2..4u32];
    (partition, delta, outputs)
        .prop_map(move |(partition, delta, outputs)| Transition::Track {
            partition,
            offset: next_offsets[partition as usize] + delta,
            outputs,
        })
        .boxed()
}

/// Shrinking removes steps; a later step may then name a ticket that no longer exists.
pub(crate) fn precondition(model: &Model, transition: &Transition) -> bool {
    match transition {
        Transition::Ack(ticket)
        | Transition::Fail(ticket)
        | Transition::Resolve(ticket)
        | Transition::Retry(ticket)
        | Transition::AddOutputs(ticket, _) => *ticket < model.tickets.len(),
        _ => true,
    }
}
