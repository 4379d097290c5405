//! The subcommands beside a run: `vopr` (the fault campaign), `merge` (a sharded sweep's
//! outputs), `view` (a testbed report's web view) and `links` (a calibration links file).

use crate::run::write_file;
use crate::sweeps::{sweep_exit, write_sweep_files};
use anyhow::Context;
use clap::Parser;
use rantai_sim::sweep;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `rantai-sim vopr`: the fault campaign (see sim/README.md, "Fault campaign").
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim vopr",
    version,
    about = "Fault campaign: seeded random scenarios with a safety and a liveness phase"
)]
pub(crate) struct VoprCli {
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

pub(crate) fn parse_seed_range(s: &str) -> Result<std::ops::Range<u64>, String> {
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

pub(crate) fn vopr_main(args: Vec<String>) -> ExitCode {
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

/// `rantai-sim merge`: the shards of one sweep into one sweep.json and sweep.svg.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim merge",
    about = "Merge the --out directories of a sweep's shards (--shard I/N) into the sweep.json \
             and sweep.svg one process running the whole sweep would have written"
)]
pub(crate) struct MergeCli {
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

pub(crate) fn merge_main(args: Vec<String>) -> ExitCode {
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

/// `rantai-sim view`: the web view of a testbed's report of real nodes.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim view",
    version,
    about = "Write view.html, the web view of a run, from a `rantai-node testbed` report \
             (real nodes), as `--out` writes it for a simulated run"
)]
pub(crate) struct ViewCli {
    /// Directory to write view.html into (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The testbed's report (JSON).
    #[arg(value_name = "TESTBED.json")]
    report: PathBuf,
}

pub(crate) fn view_main(args: Vec<String>) -> ExitCode {
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

/// `rantai-sim links`: draws a links file for a calibration scenario.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim links",
    version,
    about = "Draw a calibration links file: a random topology with per-link latencies and \
             optional per-peer rates, for `rantai-node testbed` and the simulator's `links` key"
)]
pub(crate) struct LinksCli {
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

pub(crate) fn links_main(args: Vec<String>) -> ExitCode {
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
