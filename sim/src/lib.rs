//! rantai-sim: a deterministic discrete-event simulator of many `rantai-core` peers.
//!
//! The simulator drives the real [`rantai_core::Peer`] state machines (no second copy of the
//! protocol) over an in-memory network with latency, bandwidth, loss, partitions and crashes,
//! and measures block propagation, forks and convergence. The same configuration and seed
//! always produce the same trace and report.
//!
//! Script a scenario from Rust with the [`Builder`]:
//! ```
//! use rantai_sim::{Builder, Millis};
//! let mut sim = Builder::new(20).seed(7).build().unwrap();
//! sim.run_for(Millis::from_secs(5)); // handshakes
//! let block = sim.mine(3).unwrap();
//! assert!(sim.run_until(Millis::from_secs(60), |s| (0..20).all(|i| s.chain(i).unwrap().contains(&block))));
//! ```

//!
//! The engine's modules, each with its contract in its module doc: [`sim`] (the run loop and
//! event routing, with the scripting API), `sched` (clock and event queue), `event`, `node`
//! (a peer's life), [`net`] (links, partitions, the per-message model, topology), `mining`,
//! `faults`, `workload`, [`checker`] (invariants, convergence), `prefetch` (cache hints),
//! [`time`]; then [`metrics`], [`trace`] and [`report`] (a pure read of a finished run), and
//! [`calib`] (a run beside the real-node testbed's), and [`view`] (the run's web page).

pub mod alloc;
mod builder;
pub mod calib;
mod chart;
pub mod charts;
pub mod checker;
pub mod config;
mod event;
mod faults;
pub mod metrics;
mod mining;
pub mod net;
mod node;
mod pool;
mod prefetch;
pub mod presets;
pub mod report;
pub mod rng;
mod sched;
pub mod sim;
pub mod sweep;
pub mod tables;
pub mod time;
pub mod trace;
pub mod units;
pub mod view;
pub mod vopr;
mod workload;

pub use builder::Builder;
pub use config::{
    Bandwidth, ConfigError, CrashSpec, Groups, Latency, PartitionSpec, SimConfig, Topology,
};
pub use rantai_core::{BlockHash, Millis, RelayPolicy};
pub use report::Report;
pub use sim::{Progress, Sim, SimError};
pub use time::SimTime;
