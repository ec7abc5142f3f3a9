//! Lets the two delivery-mode runs of a scenario share one fault: both run side by side, meet
//! before each fault, one of them injects it (the broker crash, the proxy cut…) and both measure
//! their own recovery after it. A run that ends early (it failed) leaves, and the other goes on
//! alone, injecting the faults itself.

use anyhow::{Result, bail};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a run waits for the other at a fault before it gives up.
const MEETING_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(crate) struct Rendezvous {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    /// Runs still taking part.
    lanes: usize,
    /// Runs waiting at the current fault.
    arrived: usize,
    /// Faults injected so far.
    generation: u64,
    /// Whether the last fault failed to inject.
    failed: bool,
}

impl Rendezvous {
    pub(crate) fn new(lanes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                lanes,
                arrived: 0,
                generation: 0,
                failed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Waits until every run still taking part is here; the last one to arrive runs `fault`
    /// while the others wait for it to finish. Returns once the fault is done.
    pub(crate) fn fault(&self, fault: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.arrived += 1;
        let generation = state.generation;
        let deadline = Instant::now() + MEETING_TIMEOUT;
        loop {
            if state.generation != generation {
                if state.failed {
                    bail!("the other run failed to inject the shared fault");
                }
                return Ok(());
            }
            if state.arrived >= state.lanes {
                drop(state);
                let result = fault();
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.arrived = 0;
                state.generation += 1;
                state.failed = result.is_err();
                self.changed.notify_all();
                return result;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.arrived -= 1;
                bail!("the other run did not reach the shared fault within {MEETING_TIMEOUT:?}");
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// This run takes no further part (it finished or failed).
    pub(crate) fn leave(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.lanes = state.lanes.saturating_sub(1);
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn two_runs_share_each_fault_once() {
        let rendezvous = Rendezvous::new(2);
        let injected = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..3 {
                        rendezvous
                            .fault(|| {
                                injected.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            })
                            .expect("fault");
                    }
                    rendezvous.leave();
                });
            }
        });
        assert_eq!(injected.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_run_left_alone_injects_the_faults_itself() {
        let rendezvous = Rendezvous::new(2);
        let injected = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            scope.spawn(|| rendezvous.leave());
            scope.spawn(|| {
                for _ in 0..2 {
                    rendezvous
                        .fault(|| {
                            injected.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .expect("fault");
                }
            });
        });
        assert_eq!(injected.load(Ordering::SeqCst), 2);
    }
}
