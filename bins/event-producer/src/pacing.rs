//! Rate limiting of sends (`--rate`): interval pacing with a bounded catch-up.
//!
//! Each send reserves the next slot of a schedule spaced `1 / rate` apart. Timers are coarse
//! (about a millisecond), so at high rates every sleep overshoots; sends that fall behind the
//! schedule go at once until they catch up, which keeps the average at the rate. After a stall
//! (e.g. waiting for a full queue) the schedule restarts at most [`MAX_LAG`] in the past, so
//! the burst that follows is at most `rate × MAX_LAG` sends.

use std::time::{Duration, Instant};

/// How far behind schedule sends may be and still be sent at once to catch up.
pub(crate) const MAX_LAG: Duration = Duration::from_millis(100);

/// Spaces sends to at most a given rate.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    interval: Duration,
    next_due: Option<Instant>,
}

impl Pacer {
    /// A pacer for `rate` sends per second (positive and finite; checked by the settings).
    pub(crate) fn new(rate: f64) -> Self {
        Self {
            interval: Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::ZERO),
            next_due: None,
        }
    }

    /// Reserves the next send slot and says how long to wait from `now` until it is due.
    pub(crate) fn reserve(&mut self, now: Instant) -> Duration {
        let due = match self.next_due {
            None => now,
            Some(next_due) => next_due.max(now.checked_sub(MAX_LAG).unwrap_or(now)),
        };
        self.next_due = Some(due + self.interval);
        due.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `count` times, sleeping as told plus `overshoot` per sleep; returns the time taken.
    fn run(rate: f64, count: u32, overshoot: Duration) -> Duration {
        let start = Instant::now();
        let mut now = start;
        let mut pacer = Pacer::new(rate);
        for _ in 0..count {
            let wait = pacer.reserve(now);
            if !wait.is_zero() {
                now += wait + overshoot;
            }
        }
        now - start
    }

    #[test]
    fn first_send_goes_at_once_and_the_next_ones_are_spaced_by_the_interval() {
        let mut pacer = Pacer::new(10.0);
        let now = Instant::now();
        assert_eq!(pacer.reserve(now), Duration::ZERO);
        assert_eq!(pacer.reserve(now), Duration::from_millis(100));
        assert_eq!(pacer.reserve(now), Duration::from_millis(200));
    }

    #[test]
    fn n_sends_at_rate_r_take_n_minus_one_intervals() {
        let elapsed = run(1000.0, 1001, Duration::ZERO);
        assert!(
            elapsed.abs_diff(Duration::from_secs(1)) < Duration::from_micros(10),
            "{elapsed:?}"
        );
    }

    #[test]
    fn oversleeping_timers_do_not_lower_the_average_rate() {
        // 20 µs intervals with a 1 ms timer overshoot: late sends catch up without waiting.
        let elapsed = run(50_000.0, 50_001, Duration::from_millis(1));
        assert!(
            elapsed < Duration::from_millis(1_010),
            "50 000 sends at 50 000/s took {elapsed:?}"
        );
        assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    }

    #[test]
    fn a_stall_allows_a_burst_of_at_most_the_lag_worth_of_sends() {
        let mut pacer = Pacer::new(100.0);
        let start = Instant::now();
        pacer.reserve(start);
        let after_stall = start + Duration::from_secs(10);
        let immediate = (0..1000)
            .take_while(|_| pacer.reserve(after_stall).is_zero())
            .count();
        // 100 ms of lag at 100/s: the slot at the lag boundary plus 10 more.
        assert_eq!(immediate, 11);
    }
}
