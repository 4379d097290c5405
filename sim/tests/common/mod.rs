//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rantai_sim::{Millis, Sim};

/// Whether every online peer has the same best tip as peer `reference`.
pub fn all_on_tip_of(sim: &Sim, reference: u32) -> bool {
    let Some(tip) = sim.chain(reference).map(|c| c.tip().hash()) else {
        return false;
    };
    (0..sim.peer_count()).all(|i| sim.chain(i).is_none_or(|c| c.tip().hash() == tip))
}

/// Runs until all online peers agree, for at most `limit` of virtual time.
pub fn settle(sim: &mut Sim, limit: Millis) -> bool {
    let deadline = sim.now().add(limit);
    sim.run_until(deadline, |s| s.converged() && s.events() > 0)
}
