//! The wall clock, as the binaries read it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by the system clock: event timestamps, heartbeats and
/// "running since" figures. `0` for a clock set before 1970, `i64::MAX` past the year 292 million.
///
/// The pipeline reads time through its own `pipeline::Clock` trait instead, so its tests can
/// set it; this is for the binaries (and their tests) that just need the time now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_this_code_was_written_and_moves_forward() {
        // 2026-01-01T00:00:00Z.
        let written = 1_767_225_600_000;
        let first = now_ms();
        assert!(first > written, "{first}");
        assert!(now_ms() >= first);
    }
}
