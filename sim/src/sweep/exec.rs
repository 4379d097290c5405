//! A sweep's execution: the planned runs spread over worker threads, the reports collected in
//! plan order whatever the number of threads, and the first failure named with its replay
//! command.

use super::plan::Run;
use crate::config::ConfigError;
use crate::report::Report;
use crate::sim::Sim;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A run that could not be carried out (a bug worth replaying with `command` when it panicked).
#[derive(Debug, thiserror::Error)]
#[error("run {index} (seed {seed}): {cause}; replay with: {command}")]
pub struct RunError {
    pub index: usize,
    pub seed: u64,
    pub cause: RunFailure,
    pub command: String,
}

/// What went wrong with one run.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The simulation could not be built from its configuration.
    #[error("{0}")]
    Build(Box<ConfigError>),
    /// The caller's `prepare` refused the run (its message).
    #[error("{0}")]
    Prepare(String),
    /// The event trace could not be written.
    #[error("writing the event trace: {0}")]
    Trace(String),
    /// The simulation panicked, with the panic's message.
    #[error("panicked: {0}")]
    Panicked(String),
    /// An earlier run failed, so this one never started.
    #[error("not run")]
    NotRun,
}

/// Runs every run on up to `jobs` threads and returns the reports in plan order.
///
/// `prepare` is called on each freshly built simulation before it runs (to attach a trace
/// writer, say); `done` after each run ends, failed or not, from the worker thread. After a
/// failure no new run starts, and the failure with the lowest index is returned. A run's
/// `wall.peak_rss_bytes` is cleared: the process's high-water mark mixes concurrent runs.
pub fn run_all(
    runs: &[Run],
    jobs: usize,
    prepare: &(dyn Fn(usize, &mut Sim) -> Result<(), String> + Sync),
    done: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Report>, RunError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Report, RunError>>>> =
        Mutex::new((0..runs.len()).map(|_| None).collect());
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(run) = runs.get(i) else { break };
        let err = |cause: RunFailure| RunError {
            index: i,
            seed: run.cfg.seed,
            cause,
            command: run.cfg.command_line(),
        };
        let one = || {
            let mut sim =
                Sim::new(run.cfg.clone()).map_err(|e| err(RunFailure::Build(Box::new(e))))?;
            prepare(i, &mut sim).map_err(|e| err(RunFailure::Prepare(e)))?;
            let mut report = sim.run();
            report.wall.peak_rss_bytes = None;
            match sim.trace_error() {
                Some(e) => Err(err(RunFailure::Trace(e.to_string()))),
                None => Ok(report),
            }
        };
        // A panic is a bug in the simulator or the protocol: keep which run it was.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(one)).unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(err(RunFailure::Panicked(what)))
            });
        let failed = result.is_err();
        if let Ok(mut r) = results.lock() {
            r[i] = Some(result);
        }
        done(i);
        if failed {
            // Stop handing out work; runs already started finish.
            next.store(runs.len(), Ordering::Relaxed);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..jobs.clamp(1, runs.len().max(1)) {
            s.spawn(worker);
        }
        worker();
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    // The lowest-index failure is the one to report; runs skipped after it have no result.
    let mut reports = Vec::with_capacity(runs.len());
    let mut missing = None;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(rep)) => reports.push(rep),
            Some(Err(e)) => return Err(e),
            None => missing = missing.or(Some(i)),
        }
    }
    if let Some(i) = missing {
        return Err(RunError {
            index: i,
            seed: runs[i].cfg.seed,
            cause: RunFailure::NotRun,
            command: runs[i].cfg.command_line(),
        });
    }
    Ok(reports)
}
