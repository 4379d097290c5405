//! A sweep's execution: the planned runs spread over worker threads, the reports collected in
//! plan order whatever the number of threads, and the first failure named with its replay
//! command.

use super::plan::Run;
use crate::config::ConfigError;
use crate::report::Report;
use crate::sim::Sim;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A run that could not be carried out (a bug worth replaying with `command` when it panicked).
#[derive(Debug, thiserror::Error)]
#[error("run {index} (seed {seed}): {cause}; replay with: {command}")]
pub struct RunError {
    /// The run's position in the plan.
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
    /// The caller's `finished` could not keep the result (its message).
    #[error("{0}")]
    Finish(String),
    /// The simulation panicked, with the panic's message.
    #[error("panicked: {0}")]
    Panicked(String),
    /// An earlier run failed, so this one never started.
    #[error("not run")]
    NotRun,
}

/// Called on a freshly built simulation before it runs (to attach a trace writer, say).
pub type Prepare<'a> = &'a (dyn Fn(&Run, &mut Sim) -> Result<(), String> + Sync);
/// Called from the worker thread as each run ends, with its simulation and report (to write
/// its files at once, so an interrupted sweep keeps what finished).
pub type Finished<'a> = &'a (dyn Fn(&Run, &Sim, &Report) -> Result<(), String> + Sync);

/// What the caller hooks into a sweep's execution.
#[derive(Clone, Copy)]
pub struct Hooks<'a> {
    pub prepare: Prepare<'a>,
    pub finished: Finished<'a>,
    /// Once set, running simulations stop at their next event (their reports say
    /// `interrupted`) and no new run starts.
    pub stop: Option<&'a Arc<AtomicBool>>,
}

impl Default for Hooks<'_> {
    fn default() -> Self {
        Hooks {
            prepare: &|_, _| Ok(()),
            finished: &|_, _, _| Ok(()),
            stop: None,
        }
    }
}

/// Runs every run on up to `jobs` threads (a run without a `threads` setting gets its share
/// of the cores) and returns the reports in the order of `runs`
/// (`None`: not started because the stop flag was set).
///
/// After a failure no new run starts, and the failure with the lowest index is returned. A
/// run's `wall.peak_rss_bytes` is cleared: the process's high-water mark mixes concurrent
/// runs.
pub fn run_all(
    runs: &[Run],
    jobs: usize,
    hooks: Hooks<'_>,
) -> Result<Vec<Option<Report>>, RunError> {
    let next = AtomicUsize::new(0);
    let stopped = || hooks.stop.is_some_and(|f| f.load(Ordering::Relaxed));
    let results: Mutex<Vec<Option<Result<Report, RunError>>>> =
        Mutex::new((0..runs.len()).map(|_| None).collect());
    let worker = || loop {
        if stopped() {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(run) = runs.get(i) else { break };
        let err = |cause: RunFailure| RunError {
            index: run.index,
            seed: run.cfg.seed,
            cause,
            command: run.cfg.command_line(),
        };
        let one = || {
            let mut cfg = run.cfg.clone();
            if cfg.threads.is_none() && jobs > 1 {
                // Runs side by side share the cores: each takes its share of the threads it
                // would use alone (the result is the same for any thread count).
                cfg.threads = Some((crate::sim::default_threads(cfg.peers) / jobs).max(1));
            }
            let mut sim = Sim::new(cfg).map_err(|e| err(RunFailure::Build(Box::new(e))))?;
            if let Some(f) = hooks.stop {
                sim.set_stop_flag(f.clone());
            }
            (hooks.prepare)(run, &mut sim).map_err(|e| err(RunFailure::Prepare(e)))?;
            let mut report = sim.run();
            report.wall.peak_rss_bytes = None;
            if let Some(e) = sim.trace_error() {
                return Err(err(RunFailure::Trace(e.to_string())));
            }
            (hooks.finished)(run, &sim, &report).map_err(|e| err(RunFailure::Finish(e)))?;
            Ok(report)
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
            Some(Ok(rep)) => reports.push(Some(rep)),
            Some(Err(e)) => return Err(e),
            None => {
                missing = missing.or(Some(i));
                reports.push(None);
            }
        }
    }
    match missing {
        Some(i) if !stopped() => Err(RunError {
            index: runs[i].index,
            seed: runs[i].cfg.seed,
            cause: RunFailure::NotRun,
            command: runs[i].cfg.command_line(),
        }),
        _ => Ok(reports),
    }
}
