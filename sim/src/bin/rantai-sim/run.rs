//! One run: the simulation with its progress bar, what `--out` writes, the outcome as an
//! exit status, and the Ctrl-C flag every run and sweep stops on.

use crate::cli::Cli;
use anyhow::Context;
use rantai_sim::config::keys::shell_quote;
use rantai_sim::config::SimConfig;
use rantai_sim::report::Outcome;
use rantai_sim::{sweep, Progress, Report, Sim};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub(crate) fn run(cli: &Cli, cfg: SimConfig) -> anyhow::Result<ExitCode> {
    let seed = cfg.seed;
    let blocks = cfg.blocks;
    let again = cli.check_determinism.then(|| cfg.clone());
    let mut sim = Sim::new(cfg).context("building the simulation")?;
    warn_isolated(&sim, None);
    sim.set_stop_flag(stop_flag());
    if let Some(dir) = &cli.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        sim.record_peer_delays();
        if cli.trace {
            let path = dir.join("events.jsonl");
            let f = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            sim.set_trace_writer(Box::new(std::io::BufWriter::with_capacity(1 << 20, f)));
        }
    }
    let show_progress = !cli.quiet && std::io::stderr().is_terminal();
    let report = if show_progress {
        let bar = indicatif::ProgressBar::new(blocks.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} blocks {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut cb = |p: Progress| {
            bar.set_position(p.mined);
            bar.set_message(format!(
                "{} events, t={}",
                p.events,
                rantai_sim::units::fmt_ms(p.now.0)
            ));
        };
        let r = sim.run_with_progress(&mut cb);
        bar.finish_and_clear();
        r
    } else {
        sim.run()
    };
    if let Some(e) = sim_trace_error(&sim) {
        anyhow::bail!("writing the event trace: {e}");
    }
    if let Some(dir) = &cli.out {
        write_run_files(dir, &sim, &report, &cli.view_blocks)?;
    }
    print_result(cli, &report, || report.summary())?;
    if let Some(path) = &cli.compare {
        compare(cli, &sim, path)?;
    }
    if let Some(cfg) = again.filter(|_| !report.engine.interrupted) {
        let mut sim = Sim::new(cfg).context("building the simulation")?;
        sim.set_stop_flag(stop_flag());
        let second = sim.run();
        if second.engine.interrupted {
            eprintln!("determinism check not made: interrupted");
            return Ok(exit_code(Outcome::Interrupted));
        }
        if second.deterministic_json() != report.deterministic_json() {
            eprintln!(
                "determinism check FAILED (seed {seed}): trace {} then {}; replay with:\n  {}",
                report.engine.trace_hash, second.engine.trace_hash, report.command
            );
            return Ok(ExitCode::from(1));
        }
        eprintln!(
            "determinism check passed: trace {} twice",
            report.engine.trace_hash
        );
    }
    if !report.invariants.ok {
        let argv: Vec<String> = std::env::args().map(|a| shell_quote(&a)).collect();
        eprintln!(
            "invariant violated (seed {seed}); replay with:\n  {}\nor, with every setting spelled out:\n  {}",
            argv.join(" "),
            report.command
        );
    } else if report.outcome != Outcome::Ok {
        eprintln!("{}", report.outcome_line());
    }
    Ok(exit_code(report.outcome))
}

/// The exit status of each outcome (documented in sim/README.md, "Exit status").
pub(crate) fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::InvariantViolated => ExitCode::from(1),
        Outcome::SettleDeadline => ExitCode::from(3),
        Outcome::Interrupted => ExitCode::from(130),
    }
}

/// The flag a first Ctrl-C (SIGINT or SIGTERM) sets, so runs stop at their next event and
/// write what they have; a second one exits at once with status 130.
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let installed = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: stopping at the next event and writing what ran (Ctrl-C again to quit now)");
        });
        if let Err(e) = installed {
            eprintln!("warning: Ctrl-C will not stop the run cleanly: {e}");
        }
        flag
    })
    .clone()
}

/// Warns about peers that no link reaches: a typo in a topology is better seen at the start
/// than as a block that never reaches them.
pub(crate) fn warn_isolated(sim: &Sim, run: Option<&sweep::Run>) {
    let lone = sim.isolated_peers();
    if !lone.is_empty() && sim.peer_count() > 1 {
        let shown: Vec<String> = lone.iter().take(10).map(u32::to_string).collect();
        let which = run.map_or(String::new(), |r| {
            format!(" in run {} (seed {})", r.index, r.cfg.seed)
        });
        eprintln!(
            "warning{which}: {} peer(s) have no link and will never receive a block: {}{}",
            lone.len(),
            shown.join(", "),
            if lone.len() > 10 { ", ..." } else { "" }
        );
    }
}

/// Prints `report` as one line of JSON (`--json`) or as its summary, plus where `--out` wrote.
pub(crate) fn print_result(
    cli: &Cli,
    report: &impl serde::Serialize,
    summary: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = if cli.json {
        format!("{}\n", serde_json::to_string(report)?)
    } else {
        let mut t = summary();
        if let Some(dir) = &cli.out {
            t.push_str(&format!("  wrote      {}\n", dir.display()));
        }
        t
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error of the simulation.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

pub(crate) fn sim_trace_error(sim: &Sim) -> Option<String> {
    sim.trace_error().map(str::to_string)
}

/// A run's files under `--out`: its report, charts and tables.
pub(crate) fn write_run_files(
    dir: &Path,
    sim: &Sim,
    report: &Report,
    view: &rantai_sim::view::ViewBlocks,
) -> anyhow::Result<()> {
    write_file(&dir.join("report.json"), &report.to_json())?;
    let page = rantai_sim::view::ViewData::from_sim(sim, report, view).html();
    write_file(&dir.join("view.html"), &page)?;
    for (name, svg) in report.charts() {
        write_file(&dir.join(name), &svg)?;
    }
    for (name, text) in sim.tables().csv_files().context("writing the tables")? {
        write_file(&dir.join(name), &text)?;
    }
    Ok(())
}

/// Writes `text` to `path` whole or not at all (a temporary file renamed over it), so a
/// process killed mid-write never leaves a truncated report behind.
pub(crate) fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// `--compare`: the run beside a testbed report of the same scenario.
pub(crate) fn compare(cli: &Cli, sim: &Sim, path: &std::path::Path) -> anyhow::Result<()> {
    use rantai_sim::calib;
    anyhow::ensure!(
        sim.config().schedule.is_some(),
        "--compare needs a scenario with a `schedule` (and a `links` file), as the testbed ran"
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tb: rantai_core::calib::CalibReport =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let ours = calib::sim_report(sim);
    anyhow::ensure!(
        tb.nodes == ours.nodes && tb.blocks.len() == ours.blocks.len(),
        "{} has {} nodes and {} blocks; this scenario {} and {}",
        path.display(),
        tb.nodes,
        tb.blocks.len(),
        ours.nodes,
        ours.blocks.len()
    );
    let rows = calib::compare(&tb, &ours);
    print!("{}", calib::table(&tb, &ours, &rows));
    if let Some(dir) = &cli.out {
        write_file(
            &dir.join("calibration.json"),
            &(serde_json::to_string_pretty(&ours)? + "\n"),
        )?;
        write_file(&dir.join("calibration.svg"), &calib::cdf_svg(&tb, &ours))?;
    }
    Ok(())
}
