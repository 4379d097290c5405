//! Sweeps: one scenario run over several seeds and, optionally, several values of one setting,
//! with the runs spread over worker threads and the results summarised per value.
//!
//! A single run answers "what happened with this seed"; a study needs the spread across seeds
//! and how it moves with a parameter (the stale rate against the block interval, say). Each run
//! is still an ordinary deterministic [`Sim`](crate::Sim); threads only change the wall time,
//! never a result, and the output lists runs in plan order, so a sweep's report is as
//! reproducible as a single run's.
//!
//! [`plan`] builds and checks every run first, [`run_all`] executes them, and [`SweepReport`]
//! summarises them (JSON, table, `sweep.svg`).

mod exec;
mod plan;
mod report;
mod svg;

pub use exec::{run_all, Finished, Hooks, Prepare, RunError, RunFailure};
pub use plan::{plan, Axis, PlanError, Run, Shard, MAX_RUNS};
pub use report::{Group, MergeError, Spread, SweepReport, SweepRun, SweepWall, SWEEP_VERSION};
