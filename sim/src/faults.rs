//! Scheduled faults: the configuration's partitions and crashes as events, and the fault
//! horizon a run settles after.
//!
//! Contract: every injected fault is counted (in [`crate::metrics::FaultCounts`]) and traced
//! when it takes effect; the run's settle deadline counts from the later of the last block
//! and the last fault, planned or fired.

use crate::config::SimConfig;
use crate::event::GlobalEv;
use crate::time::SimTime;

/// The configured partitions and crashes as `(time, event)`, in configuration order (each
/// partition's start before its heal, each crash before its restart).
pub(crate) fn plan(cfg: &SimConfig) -> Vec<(SimTime, GlobalEv)> {
    let mut out = Vec::new();
    for (i, p) in cfg.partitions.iter().enumerate() {
        out.push((p.at.into(), GlobalEv::Partition(i as u32)));
        if let Some(h) = p.heal {
            out.push((h.into(), GlobalEv::Heal(i as u32)));
        }
    }
    for (i, c) in cfg.crashes.iter().enumerate() {
        out.push((c.at.into(), GlobalEv::Crash(i as u32)));
        if let Some(r) = c.restart {
            out.push((r.into(), GlobalEv::Restart(i as u32)));
        }
    }
    out
}

/// Scheduled faults and submissions still to fire, and when faults last took effect.
#[derive(Debug, Default)]
pub(crate) struct FaultClock {
    pending: u64,
    last_fault_at: SimTime,
}

impl FaultClock {
    /// A scheduled event was planned; a fault also moves the horizon to `at`.
    pub(crate) fn planned(&mut self, at: SimTime, is_fault: bool) {
        self.pending += 1;
        if is_fault {
            self.last_fault_at = self.last_fault_at.max(at);
        }
    }

    /// A planned event fired.
    pub(crate) fn fired_planned(&mut self) {
        self.pending -= 1;
    }

    /// A fault (planned or scripted) took effect at `now`.
    pub(crate) fn took_effect(&mut self, now: SimTime) {
        self.last_fault_at = self.last_fault_at.max(now);
    }

    /// Planned events not yet fired.
    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    /// The latest fault, planned or fired.
    pub(crate) fn last_fault_at(&self) -> SimTime {
        self.last_fault_at
    }
}
