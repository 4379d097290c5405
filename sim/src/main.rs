//! `rantai-sim`: run a simulated rantai network and print what happened.
//!
//! With no arguments it runs the default scenario (bitcoin-2019 preset, 1,000 peers, 100
//! blocks, announce relay). Flags override keys of a `--scenario` file; see sim/README.md.

use anyhow::Context;
use clap::{Arg, ArgAction, Parser};
use rantai_sim::config::keys::shell_quote;
use rantai_sim::config::keys::{Key, KEYS};
use rantai_sim::config::SimConfig;
use rantai_sim::report::Outcome;
use rantai_sim::{sweep, Progress, Report, Sim};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// mimalloc: a simulation makes millions of small, short-lived allocations (measured about
/// a quarter faster than the system allocator on the default scenario).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deterministic discrete-event simulator of a rantai peer-to-peer network.
#[derive(Parser, Debug)]
#[command(name = "rantai-sim", version, about, long_about = None)]
struct Cli {
    /// Scenario file (TOML); flags override its keys.
    #[arg(long, value_name = "FILE.toml")]
    scenario: Option<PathBuf>,
    /// The scenario keys given as flags (`--block-interval` for `block_interval`, ...).
    #[command(flatten)]
    keys: KeyFlags,
    /// Print the report as one JSON object on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Write report.json, the charts (propagation, regions, traffic, tips .svg), the tables
    /// (blocks, peers, miners .csv) and view.html into DIR (and events.jsonl with --trace).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Blocks whose per-peer arrivals view.html carries: auto (stale blocks and their rivals,
    /// then an even sample, about a million (block, peer) pairs in all), all, N (like auto,
    /// N blocks), or heights=H,H,..
    #[arg(long, value_name = "auto|all|N|heights=H,..", default_value = "auto")]
    view_blocks: rantai_sim::view::ViewBlocks,
    /// Also write the full event trace as JSON lines (needs --out).
    #[arg(long)]
    trace: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
    /// Run the scenario a second time and fail (exit 1) unless the report and trace hash
    /// are identical.
    #[arg(long)]
    check_determinism: bool,
    /// Sweep: run the scenario with N seeds (--seed, --seed + 1, ..) and summarise the spread.
    #[arg(long, value_name = "N")]
    seeds: Option<u64>,
    /// Sweep: run the scenario once per value of one scenario key, e.g. block-interval=5s,1m,10m.
    #[arg(long, value_name = "KEY=V1,V2,..")]
    sweep: Option<String>,
    /// Sweep runs executed at once, one thread each [default: available cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Sweep: run only slice I of N of the plan (1 <= I <= N; every N-th run), e.g. one job of
    /// a Slurm array; combine the slices' --out directories with `rantai-sim merge`.
    #[arg(long, value_name = "I/N", value_parser = sweep::Shard::parse)]
    shard: Option<sweep::Shard>,
    /// Compare the run with a `rantai-node testbed` report of the same scenario (`links` and
    /// `schedule` keys): side-by-side table on stdout; with --out also calibration.json (the
    /// simulator's side) and calibration.svg (both delay CDFs).
    #[arg(long, value_name = "TESTBED.json")]
    compare: Option<PathBuf>,
}

/// The scenario keys given on the command line: one flag per entry of [`KEYS`], with the
/// entry's value name and help; repeatable keys collect every use.
#[derive(Debug, Clone, Default)]
struct KeyFlags(Vec<(&'static Key, Vec<String>)>);

impl clap::FromArgMatches for KeyFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let given = KEYS.iter().filter_map(|k| {
            let values = m.get_many::<String>(k.name)?;
            Some((k, values.cloned().collect()))
        });
        Ok(KeyFlags(given.collect()))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = KeyFlags::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for KeyFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        KEYS.iter().fold(cmd, |cmd, k| {
            let action = if k.repeatable() {
                ArgAction::Append
            } else {
                ArgAction::Set
            };
            cmd.arg(
                Arg::new(k.name)
                    .long(k.flag())
                    .value_name(k.value_name)
                    .help(k.help)
                    .action(action),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        KeyFlags::augment_args(cmd)
    }
}

impl Cli {
    /// The scenario: defaults, then the file, then the flags.
    fn config(&self) -> Result<SimConfig, String> {
        let mut cfg = SimConfig::default();
        if let Some(path) = &self.scenario {
            cfg.apply_file(path)
                .map_err(|e| format!("scenario {}: {e}", path.display()))?;
        }
        // Single values first, then the lists, each list replacing the file's.
        let (lists, singles): (Vec<_>, Vec<_>) =
            self.keys.0.iter().partition(|(k, _)| k.repeatable());
        for (key, values) in singles.into_iter().chain(lists) {
            key.clear(&mut cfg);
            for v in values {
                cfg.apply(key.name, v, None)
                    .map_err(|e| format!("--{}: {e}", key.flag()))?;
            }
        }
        cfg.validate().map_err(|e| e.to_string())?;
        if self.trace && self.out.is_none() {
            return Err("--trace needs --out DIR".into());
        }
        if self.is_sweep() && self.check_determinism {
            return Err(
                "--check-determinism checks one run; it cannot be combined with --seeds or --sweep"
                    .into(),
            );
        }
        if self.jobs == Some(0) {
            return Err("--jobs: must be at least 1".into());
        }
        if self.shard.is_some() && !self.is_sweep() {
            return Err("--shard: slices a sweep; it needs --seeds or --sweep".into());
        }
        if self.jobs.is_some() && !self.is_sweep() {
            return Err("--jobs: a single run uses one thread; it needs --seeds or --sweep".into());
        }
        Ok(cfg)
    }

    fn is_sweep(&self) -> bool {
        self.seeds.is_some() || self.sweep.is_some()
    }

    /// The sweep's axis and runs, checked before anything runs.
    fn sweep_plan(
        &self,
        cfg: &SimConfig,
    ) -> Result<(Option<sweep::Axis>, Vec<sweep::Run>), String> {
        let axis = self
            .sweep
            .as_deref()
            .map(sweep::Axis::parse)
            .transpose()
            .map_err(|e| format!("--sweep: {e}"))?;
        let runs = sweep::plan(cfg, axis.as_ref(), self.seeds.unwrap_or(1))
            .map_err(|e| format!("--sweep/--seeds: {e}"))?;
        Ok((axis, runs))
    }
}

/// Prints a line on stdout, ignoring a closed pipe (`| head`).
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `rantai-sim vopr`: the fault campaign (see sim/README.md, "Fault campaign").
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim vopr",
    version,
    about = "Fault campaign: seeded random scenarios with a safety and a liveness phase"
)]
struct VoprCli {
    /// Seeds to run, A..B (B excluded) [default: 0..100].
    #[arg(long, value_name = "A..B", conflicts_with = "seed")]
    seeds: Option<String>,
    /// Run one seed and describe it in full.
    #[arg(long)]
    seed: Option<u64>,
    /// Runs at once, one thread each [default: available cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Start no new seed after this much wall time (e.g. 90s, 10m); the seeds that ran are
    /// reported as a range.
    #[arg(long, value_name = "DURATION")]
    budget: Option<String>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Print nothing per run, only failures and the summary.
    #[arg(long)]
    quiet: bool,
}

fn parse_seed_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got `{s}`"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("bad first seed `{a}`"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("bad end seed `{b}`"))?;
    if b <= a {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok(a..b)
}

fn vopr_main(args: Vec<String>) -> ExitCode {
    use rantai_sim::units::fmt_ms;
    use rantai_sim::vopr;
    let cli = match VoprCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let seeds = match (&cli.seeds, cli.seed) {
        (_, Some(s)) => s..s.saturating_add(1),
        (Some(r), None) => match parse_seed_range(r) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: --seeds: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => 0..100,
    };
    let budget = match cli
        .budget
        .as_deref()
        .map(|b| rantai_sim::units::parse_duration(b, rantai_sim::units::Bare::Seconds))
    {
        None => None,
        Some(Ok(d)) => Some(std::time::Duration::from_millis(d.0)),
        Some(Err(e)) => {
            eprintln!("error: --budget: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.jobs == Some(0) {
        eprintln!("error: --jobs: must be at least 1");
        return ExitCode::from(2);
    }
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let single = cli.seed.is_some();
    if !cli.json {
        say!(
            "rantai-sim vopr: seeds {}..{}, {} job{}{}",
            seeds.start,
            seeds.end,
            jobs,
            if jobs == 1 { "" } else { "s" },
            cli.budget
                .as_deref()
                .map_or(String::new(), |b| format!(", budget {b}"))
        );
    }
    let verbose = !cli.quiet && !cli.json;
    let print = |o: &vopr::Outcome| {
        if single && !cli.json {
            say!("  scenario   {}", o.scenario);
            say!(
                "  network    {} peers, {} links, diameter {}",
                o.peers,
                o.links,
                o.diameter
            );
            say!(
                "  safety     {} blocks mined, faults until {}",
                o.blocks_mined,
                fmt_ms(o.heal_at_ms)
            );
            say!(
                "  liveness   bound {} after the heal; {}",
                fmt_ms(o.liveness_bound_ms),
                o.live_after_ms
                    .map_or("never live".to_string(), |t| format!(
                        "live after {}",
                        fmt_ms(t)
                    ))
            );
            say!(
                "  items      {} submitted, {} lost with crashed holders",
                o.items_submitted,
                o.items_lost_to_crashes
            );
            say!(
                "  engine     {} events, {} messages, {} simulated",
                o.events,
                o.messages,
                fmt_ms(o.sim_time_ms)
            );
        }
        if !o.ok() {
            let mut lines = format!("FAIL seed {}: replay with `{}`", o.seed, o.replay());
            for f in &o.failures {
                lines.push_str(&format!("\n    {}: {}", f.kind.label(), f.detail));
            }
            if cli.json {
                eprintln!("  {lines}");
            } else {
                say!("  {lines}");
            }
        } else if verbose && !single {
            let live = o.live_after_ms.map_or("-".into(), fmt_ms);
            say!(
                "  ok   seed {} ({} events, live {} after heal)",
                o.seed,
                o.events,
                live
            );
        }
    };
    let s = vopr::campaign(seeds, jobs, budget, &print);
    if cli.json {
        match serde_json::to_string(&s) {
            Ok(j) => say!("{j}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        let kinds: Vec<String> = s
            .failures_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        say!(
            "  runs       {} (seeds {}..{}), {} passed, {} failed{}",
            s.runs,
            s.seeds_from,
            s.seeds_to,
            s.passed,
            s.failed,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" [{}]", kinds.join(", "))
            }
        );
        say!(
            "  engine     {} events, {} messages, {} simulated, wall {}{}",
            s.events,
            s.messages,
            fmt_ms(s.sim_time_ms),
            fmt_ms(s.wall_ms),
            if s.budget_exhausted {
                " (budget spent)"
            } else {
                ""
            }
        );
        if let Some(seed) = s.slowest_live_seed {
            say!(
                "  liveness   slowest heal-to-live {} (seed {}, {:.0}% of its bound); {} items lost with crashed holders",
                fmt_ms(s.slowest_live_after_ms),
                seed,
                s.slowest_live_bound_share * 100.0,
                s.items_lost_to_crashes
            );
        }
    }
    if s.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    rantai_sim::alloc::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("vopr") {
        return vopr_main(args[1..].to_vec());
    }
    if args.get(1).map(String::as_str) == Some("links") {
        return links_main(args[1..].to_vec());
    }
    if args.get(1).map(String::as_str) == Some("merge") {
        return merge_main(args[1..].to_vec());
    }
    if args.get(1).map(String::as_str) == Some("view") {
        return view_main(args[1..].to_vec());
    }
    let cli = Cli::parse();
    let cfg = match cli.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.is_sweep() {
        let (axis, runs) = match cli.sweep_plan(&cfg) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        return match run_sweep(&cli, axis.as_ref(), &runs) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    match run(&cli, cfg) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli, cfg: SimConfig) -> anyhow::Result<ExitCode> {
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
fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::InvariantViolated => ExitCode::from(1),
        Outcome::SettleDeadline => ExitCode::from(3),
        Outcome::Interrupted => ExitCode::from(130),
    }
}

/// The flag a first Ctrl-C (SIGINT or SIGTERM) sets, so runs stop at their next event and
/// write what they have; a second one exits at once with status 130.
fn stop_flag() -> Arc<AtomicBool> {
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
fn warn_isolated(sim: &Sim, run: Option<&sweep::Run>) {
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

/// Directory of one sweep run under `--out`: plan position, axis value, seed.
fn run_dir(out: &Path, index: usize, run: &sweep::Run) -> PathBuf {
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

fn run_sweep(
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
fn write_sweep_files(dir: &Path, report: &sweep::SweepReport) -> anyhow::Result<()> {
    write_file(
        &dir.join("sweep.json"),
        &serde_json::to_string_pretty(report)?,
    )?;
    write_file(&dir.join("sweep.svg"), &report.svg())
}

/// A sweep's exit status: the worst of its runs' outcomes (see [`exit_code`]).
fn sweep_exit(report: &sweep::SweepReport) -> anyhow::Result<ExitCode> {
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

/// `rantai-sim merge`: the shards of one sweep into one sweep.json and sweep.svg.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim merge",
    about = "Merge the --out directories of a sweep's shards (--shard I/N) into the sweep.json \
             and sweep.svg one process running the whole sweep would have written"
)]
struct MergeCli {
    /// Directory to write sweep.json and sweep.svg into (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the merged report as one JSON object on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// The shards' --out directories (each holding a sweep.json).
    #[arg(required = true, value_name = "SHARD_DIR")]
    dirs: Vec<PathBuf>,
}

/// `rantai-sim view`: the web view of a testbed's report of real nodes.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim view",
    version,
    about = "Write view.html, the web view of a run, from a `rantai-node testbed` report \
             (real nodes), as `--out` writes it for a simulated run"
)]
struct ViewCli {
    /// Directory to write view.html into (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The testbed's report (JSON).
    #[arg(value_name = "TESTBED.json")]
    report: PathBuf,
}

fn view_main(args: Vec<String>) -> ExitCode {
    let cli = ViewCli::parse_from(args);
    let done = (|| -> anyhow::Result<PathBuf> {
        let path = &cli.report;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let tb: rantai_core::calib::CalibReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testbed report", path.display()))?;
        std::fs::create_dir_all(&cli.out)
            .with_context(|| format!("creating {}", cli.out.display()))?;
        let page = cli.out.join("view.html");
        let view = rantai_sim::view::ViewData::from_calib(&tb)
            .with_context(|| format!("{} cannot be drawn", path.display()))?;
        write_file(&page, &view.html())?;
        Ok(page)
    })();
    match done {
        Ok(page) => {
            say!("wrote {}", page.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn merge_main(args: Vec<String>) -> ExitCode {
    let cli = MergeCli::parse_from(args);
    let merged = (|| -> anyhow::Result<sweep::SweepReport> {
        let mut parts = Vec::new();
        for d in &cli.dirs {
            let path = d.join("sweep.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let part: sweep::SweepReport = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a sweep report", path.display()))?;
            parts.push(part);
        }
        let merged = sweep::SweepReport::merge(parts)?;
        std::fs::create_dir_all(&cli.out)
            .with_context(|| format!("creating {}", cli.out.display()))?;
        write_sweep_files(&cli.out, &merged)?;
        Ok(merged)
    })();
    match merged {
        Ok(r) => {
            let text = if cli.json {
                serde_json::to_string(&r)
                    .map(|t| t + "\n")
                    .unwrap_or_default()
            } else {
                format!("{}  wrote      {}\n", r.summary(), cli.out.display())
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
            sweep_exit(&r).unwrap_or(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Prints `report` as one line of JSON (`--json`) or as its summary, plus where `--out` wrote.
fn print_result(
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

fn sim_trace_error(sim: &Sim) -> Option<String> {
    sim.trace_error().map(str::to_string)
}

/// A run's files under `--out`: its report, charts and tables.
fn write_run_files(
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
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// `--compare`: the run beside a testbed report of the same scenario.
fn compare(cli: &Cli, sim: &Sim, path: &std::path::Path) -> anyhow::Result<()> {
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

/// `rantai-sim links`: draws a links file for a calibration scenario.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim links",
    version,
    about = "Draw a calibration links file: a random topology with per-link latencies and \
             optional per-peer rates, for `rantai-node testbed` and the simulator's `links` key"
)]
struct LinksCli {
    /// Peers.
    #[arg(long, default_value_t = 20)]
    peers: u32,
    /// Outbound links each peer dials (the simulator's random:K topology).
    #[arg(long, default_value_t = 4)]
    degree: u32,
    /// One-way latency range per link, e.g. 20ms..150ms (uniform).
    #[arg(long, default_value = "20ms..150ms")]
    latency: String,
    /// Up and down rate range per peer, e.g. 10Mbit..50Mbit (uniform, each drawn on its own);
    /// unlimited without it.
    #[arg(long)]
    rate: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn links_main(args: Vec<String>) -> ExitCode {
    use rantai_core::calib::{parse_ms, parse_rate};
    let cli = match LinksCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let range = |s: &str, f: fn(&str) -> Option<u64>| {
        let (a, b) = s.split_once("..")?;
        let (a, b) = (f(a.trim())?, f(b.trim())?);
        (a <= b).then_some((a, b))
    };
    let Some(latency_ms) = range(&cli.latency, parse_ms) else {
        eprintln!(
            "error: --latency: expected LO..HI such as 20ms..150ms, got `{}`",
            cli.latency
        );
        return ExitCode::from(2);
    };
    let rate_bps = match cli.rate.as_deref().map(|r| (r, range(r, parse_rate))) {
        None => None,
        Some((_, Some(r))) => Some(r),
        Some((r, None)) => {
            eprintln!("error: --rate: expected LO..HI such as 10Mbit..50Mbit, got `{r}`");
            return ExitCode::from(2);
        }
    };
    if !(2..=rantai_core::calib::MAX_NODES).contains(&cli.peers) || cli.degree == 0 {
        eprintln!(
            "error: --peers must be 2 to {} and --degree at least 1",
            rantai_core::calib::MAX_NODES
        );
        return ExitCode::from(2);
    }
    let plan = rantai_sim::calib::LinksPlan {
        peers: cli.peers,
        degree: cli.degree,
        latency_ms,
        rate_bps,
        seed: cli.seed,
    };
    say!("{}", rantai_sim::calib::generate_links(&plan).trim_end());
    ExitCode::SUCCESS
}
