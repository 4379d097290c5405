//! Protocol time: the `now` handed to the core, read from one monotonic tokio clock, so the
//! core's timers never jump when the wall clock is stepped and tests can run on tokio's paused
//! time (`#[tokio::test(start_paused = true)]`).
//!
//! The core stamps the blocks it asks us to mine with `now` and checks received blocks'
//! timestamps against it, so protocol time is kept on the Unix scale: the wall clock read once
//! at start plus the monotonic time elapsed since. That start reading ([`unix_now`]) is the only
//! place the node reads the wall clock for the protocol. A block timestamp is therefore wall
//! time as of start plus elapsed time: on a host that suspends (the monotonic clock stops), it
//! lags the wall clock by the time suspended.

use rantai_core::Millis;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Deadlines further out than this are treated as this far out (no `Instant` overflow).
const MAX_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Wall-clock milliseconds since the Unix epoch (a clock set before 1970 reads as 0).
pub fn unix_now() -> Millis {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(d.as_millis() as u64)
}

/// One node's protocol clock: a tokio `Instant` origin and the Unix time it stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
    origin_ms: Millis,
}

impl Clock {
    /// A clock that reads the wall clock's time now and advances with tokio's.
    pub(crate) fn start() -> Clock {
        Clock {
            origin: Instant::now(),
            origin_ms: unix_now(),
        }
    }

    /// The protocol `now`.
    pub(crate) fn now(&self) -> Millis {
        let elapsed = self.elapsed().as_millis() as u64;
        Millis(self.origin_ms.0.saturating_add(elapsed))
    }

    /// Time since [`Clock::start`] (the node's uptime).
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    /// The instant at which [`Clock::now`] reads `t` (the origin for any earlier `t`).
    pub(crate) fn instant(&self, t: Millis) -> Instant {
        let offset = Duration::from_millis(t.0.saturating_sub(self.origin_ms.0));
        self.origin + offset.min(MAX_DEADLINE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn protocol_time_follows_tokio_time_from_the_wall_clock_at_start() {
        let clock = Clock::start();
        let t0 = clock.now();
        assert!(t0.0.abs_diff(unix_now().0) < 1000);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now().0 - t0.0, 3_600_000);
        assert_eq!(clock.elapsed(), Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_maps_back_to_the_instant_it_reads_at() {
        let clock = Clock::start();
        let deadline = Millis(clock.now().0 + 1500);
        tokio::time::sleep_until(clock.instant(deadline)).await;
        assert!(clock.now() >= deadline);
        assert_eq!(clock.instant(Millis(0)), clock.origin);
        // A deadline far beyond any run does not overflow.
        let _ = clock.instant(Millis(u64::MAX));
    }
}
