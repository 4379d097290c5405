//! Sweeps from the command line: the runs of a plan (or of one `--shard`), their files
//! written as they finish, and the sweep's exit status.

use crate::cli::Cli;
use crate::run::{exit_code, print_result, stop_flag, warn_isolated, write_file, write_run_files};
use anyhow::Context;
use rantai_sim::report::Outcome;
use rantai_sim::{sweep, Report, Sim};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// Directory of one sweep run under `--out`: plan position, axis value, seed.
pub(crate) fn run_dir(out: &Path, index: usize, run: &sweep::Run) -> PathBuf {
    debug_assert_eq!(index, run.index);
    // Bounded, so a long value (a topology file path, say) still makes a valid file name; the
    // index prefix keeps names unique.
    let value: String = run
        .value
        .as_deref()
        .unwrap_or("run")
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.join(format!("{index:03}-{value}-seed{}", run.cfg.seed))
}

pub(crate) fn run_sweep(
    cli: &Cli,
    axis: Option<&sweep::Axis>,
    plan: &[sweep::Run],
) -> anyhow::Result<ExitCode> {
    let runs = match cli.shard {
        Some(s) => s.select(plan),
        None => plan.to_vec(),
    };
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, runs.len().max(1));
    if let Some(dir) = &cli.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(runs.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} runs",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        // Runs of big networks take minutes: keep the clock moving between them.
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    let started = std::time::Instant::now();
    let stop = stop_flag();
    // Finished runs so far, kept so that sweep.json is rewritten as each one ends: an
    // interrupted (or killed) sweep keeps every run that finished.
    // With the time of the last rewrite.
    type Done = (Vec<(usize, Report)>, Option<std::time::Instant>);
    let done: std::sync::Mutex<Done> = std::sync::Mutex::new((Vec::new(), None));
    let report_of = |done: Vec<(usize, Report)>, interrupted: bool| {
        let mut r = sweep::SweepReport::new(axis, plan, done, jobs, started.elapsed());
        r.shard = cli.shard;
        r.interrupted = interrupted;
        r
    };
    let prepare = |run: &sweep::Run, sim: &mut Sim| -> Result<(), String> {
        warn_isolated(sim, Some(run));
        if let Some(dir) = &cli.out {
            sim.record_peer_delays();
            let d = run_dir(dir, run.index, run);
            std::fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            if cli.trace {
                let path = d.join("events.jsonl");
                let f = std::fs::File::create(&path)
                    .map_err(|e| format!("creating {}: {e}", path.display()))?;
                sim.set_trace_writer(Box::new(std::io::BufWriter::with_capacity(1 << 20, f)));
            }
        }
        Ok(())
    };
    let finished = |run: &sweep::Run, sim: &Sim, report: &Report| -> Result<(), String> {
        if let Some(b) = &bar {
            b.inc(1);
        }
        if let Some(dir) = &cli.out {
            write_run_files(&run_dir(dir, run.index, run), sim, report, &cli.view_blocks)
                .map_err(|e| format!("{e:#}"))?;
        }
        if report.engine.interrupted {
            return Ok(());
        }
        let mut d = done
            .lock()
            .map_err(|_| "a sweep worker panicked".to_string())?;
        d.0.push((run.index, report.clone()));
        // Rewritten at most once a second (each rewrite holds every finished run), and
        // always after the first: the final write below holds all of them.
        let due =
            d.1.is_none_or(|t: std::time::Instant| t.elapsed().as_secs() >= 1);
        if let (Some(dir), true) = (&cli.out, due) {
            let partial = report_of(d.0.clone(), false);
            write_sweep_files(dir, &partial).map_err(|e| format!("{e:#}"))?;
            d.1 = Some(std::time::Instant::now());
        }
        Ok(())
    };
    let hooks = sweep::Hooks {
        prepare: &prepare,
        finished: &finished,
        stop: Some(&stop),
    };
    let result = sweep::run_all(&runs, jobs, hooks);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result?;
    let interrupted = stop.load(Ordering::Relaxed);
    let (done, _) = done.into_inner().unwrap_or_else(|p| p.into_inner());
    let report = report_of(done, interrupted);
    if let Some(dir) = &cli.out {
        write_sweep_files(dir, &report)?;
    }
    print_result(cli, &report, || report.summary())?;
    sweep_exit(&report)
}

/// `sweep.json` and `sweep.svg` under `dir`.
pub(crate) fn write_sweep_files(dir: &Path, report: &sweep::SweepReport) -> anyhow::Result<()> {
    write_file(
        &dir.join("sweep.json"),
        &serde_json::to_string_pretty(report)?,
    )?;
    write_file(&dir.join("sweep.svg"), &report.svg())
}

/// A sweep's exit status: the worst of its runs' outcomes (see [`exit_code`]).
pub(crate) fn sweep_exit(report: &sweep::SweepReport) -> anyhow::Result<ExitCode> {
    let failing: Vec<&str> = report
        .runs
        .iter()
        .filter(|r| !r.report.invariants.ok)
        .map(|r| r.report.command.as_str())
        .collect();
    if !failing.is_empty() {
        eprintln!("invariant violated; replay the failing runs with:");
        for c in failing {
            eprintln!("  {c}");
        }
        return Ok(exit_code(Outcome::InvariantViolated));
    }
    if report.interrupted {
        eprintln!(
            "interrupted: {} of {} runs finished and are in sweep.json",
            report.runs.len(),
            report.planned_runs
        );
        return Ok(exit_code(Outcome::Interrupted));
    }
    let late = report
        .runs
        .iter()
        .filter(|r| r.report.outcome == Outcome::SettleDeadline)
        .count();
    if late > 0 {
        eprintln!(
            "{late} run(s) hit the settle deadline before the network went quiet; raise `settle`"
        );
        return Ok(exit_code(Outcome::SettleDeadline));
    }
    Ok(ExitCode::SUCCESS)
}
