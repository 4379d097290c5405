//! Simulated time: milliseconds since the start of the run, a type of its own so that it
//! cannot be mixed up with the peers' clock.
//!
//! Peers see the simulated time offset to the genesis timestamp, so mined blocks carry
//! realistic timestamps after their genesis block; the engine, reports and traces count from
//! the start of the run. [`SimTime::to_peer`] and [`SimTime::from_peer`] are the only places
//! where one becomes the other.

use rantai_core::Millis;

/// Where simulated time zero lies on the peers' clock: the genesis block's timestamp.
pub const PEER_EPOCH_MS: u64 = rantai_core::params::GENESIS_TIMESTAMP_MS;

/// A point in simulated time, in milliseconds since the start of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

impl SimTime {
    /// The start of the run.
    pub const ZERO: SimTime = SimTime(0);

    /// The time `t` after the start of the run.
    #[inline]
    pub const fn from_millis(t: Millis) -> SimTime {
        SimTime(t.0)
    }

    /// Time since the start of the run, the unit of reports, traces and the public API.
    #[inline]
    pub const fn as_millis(self) -> Millis {
        Millis(self.0)
    }

    /// The same instant on the peers' clock.
    #[inline]
    pub const fn to_peer(self) -> Millis {
        Millis(self.0 + PEER_EPOCH_MS)
    }

    /// A peer's clock reading as simulated time (a reading before the start is the start).
    #[inline]
    pub const fn from_peer(t: Millis) -> SimTime {
        SimTime(t.0.saturating_sub(PEER_EPOCH_MS))
    }

    /// Microseconds since the start, the unit of bandwidth bookkeeping.
    #[inline]
    pub const fn as_micros(self) -> u64 {
        self.0 * 1000
    }

    /// The first millisecond at or after `us` microseconds since the start.
    #[inline]
    pub const fn from_micros_ceil(us: u64) -> SimTime {
        SimTime(us.div_ceil(1000))
    }

    /// `d` later, saturating.
    #[inline]
    pub const fn add(self, d: Millis) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl From<Millis> for SimTime {
    #[inline]
    fn from(t: Millis) -> SimTime {
        SimTime::from_millis(t)
    }
}

impl From<SimTime> for Millis {
    #[inline]
    fn from(t: SimTime) -> Millis {
        t.as_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_clock_round_trip() {
        let t = SimTime::from_millis(Millis(1234));
        assert_eq!(t.to_peer().0, PEER_EPOCH_MS + 1234);
        assert_eq!(SimTime::from_peer(t.to_peer()), t);
        assert_eq!(SimTime::from_peer(Millis(5)), SimTime::ZERO);
        assert_eq!(SimTime::from_micros_ceil(1_000_001), SimTime(1001));
    }
}
