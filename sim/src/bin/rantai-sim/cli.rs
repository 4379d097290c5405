//! The command line of a run or a sweep: the scenario keys as flags, and the checks that
//! need more than one flag.

use clap::{Arg, ArgAction, Parser};
use rantai_sim::config::keys::{Key, KEYS};
use rantai_sim::config::SimConfig;
use rantai_sim::sweep;
use std::path::PathBuf;

/// Deterministic discrete-event simulator of a rantai peer-to-peer network.
#[derive(Parser, Debug)]
#[command(
    name = "rantai-sim",
    version,
    about,
    long_about = None,
    after_help = "Subcommands (each with --help): vopr (the fault campaign), merge (a sharded \
                  sweep's outputs), view (a testbed report's web view), links (a calibration \
                  links file)."
)]
pub(crate) struct Cli {
    /// Scenario file (TOML); flags override its keys.
    #[arg(long, value_name = "FILE.toml")]
    pub(crate) scenario: Option<PathBuf>,
    /// The scenario keys given as flags (`--block-interval` for `block_interval`, ...).
    #[command(flatten)]
    pub(crate) keys: KeyFlags,
    /// Print the report as one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write report.json, the charts (propagation, regions, traffic, tips .svg), the tables
    /// (blocks, peers, miners .csv) and view.html into DIR (and events.jsonl with --trace).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Blocks whose per-peer arrivals view.html carries: auto (stale blocks and their rivals,
    /// then an even sample, about a million (block, peer) pairs in all), all, N (like auto,
    /// N blocks), or heights=H,H,..
    #[arg(long, value_name = "auto|all|N|heights=H,..", default_value = "auto")]
    pub(crate) view_blocks: rantai_sim::view::ViewBlocks,
    /// Also write the full event trace as JSON lines (needs --out).
    #[arg(long)]
    pub(crate) trace: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Run the scenario a second time and fail (exit 1) unless the report and trace hash
    /// are identical.
    #[arg(long)]
    pub(crate) check_determinism: bool,
    /// Sweep: run the scenario with N seeds (--seed, --seed + 1, ..) and summarise the spread.
    #[arg(long, value_name = "N")]
    pub(crate) seeds: Option<u64>,
    /// Sweep: run the scenario once per value of one scenario key, e.g. block-interval=5s,1m,10m.
    #[arg(long, value_name = "KEY=V1,V2,..")]
    pub(crate) sweep: Option<String>,
    /// Sweep runs executed at once, each with its share of the cores as threads [default: available cores].
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// Sweep: run only slice I of N of the plan (1 <= I <= N; every N-th run), e.g. one job of
    /// a Slurm array; combine the slices' --out directories with `rantai-sim merge`.
    #[arg(long, value_name = "I/N", value_parser = sweep::Shard::parse)]
    pub(crate) shard: Option<sweep::Shard>,
    /// Compare the run with a `rantai-node testbed` report of the same scenario (`links` and
    /// `schedule` keys): side-by-side table on stdout; with --out also calibration.json (the
    /// simulator's side) and calibration.svg (both delay CDFs).
    #[arg(long, value_name = "TESTBED.json")]
    pub(crate) compare: Option<PathBuf>,
}

/// The scenario keys given on the command line: one flag per entry of [`KEYS`], with the
/// entry's value name and help; repeatable keys collect every use.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyFlags(Vec<(&'static Key, Vec<String>)>);

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
    pub(crate) fn config(&self) -> Result<SimConfig, String> {
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
            return Err(
                "--jobs: runs several at once; it needs --seeds or --sweep (--threads for one run)"
                    .into(),
            );
        }
        Ok(cfg)
    }

    pub(crate) fn is_sweep(&self) -> bool {
        self.seeds.is_some() || self.sweep.is_some()
    }

    /// The sweep's axis and runs, checked before anything runs.
    pub(crate) fn sweep_plan(
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
