//! Sweeps: one scenario run over several seeds and, optionally, several values of one setting,
//! with the runs spread over worker threads and the results summarised per value.
//!
//! A single run answers "what happened with this seed"; a study needs the spread across seeds
//! and how it moves with a parameter (the stale rate against the block interval, say). Each run
//! is still an ordinary deterministic [`Sim`]; threads only change the wall time, never a
//! result, and the output lists runs in plan order, so a sweep's report is as reproducible as
//! a single run's.

use crate::config::{ConfigError, SimConfig};
use crate::report::Report;
use crate::sim::Sim;
use crate::units::fmt_ms;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Sweep report format version; bumped only when a key changes meaning or disappears.
pub const SWEEP_VERSION: u32 = 1;

/// Most runs one sweep may plan: a typo in `--seeds` should fail at once, not exhaust memory.
pub const MAX_RUNS: u64 = 100_000;

/// Keys a sweep cannot vary: the seed has its own axis, and list-valued settings (partitions,
/// crashes, hash-power shares) have no single-value form to put in a comma-separated list.
const NOT_SWEEPABLE: &[&str] = &["seed", "partition", "crash", "hashpower"];

/// The setting a sweep varies: a scenario key and the values it takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `KEY=V1,V2,..` (the CLI's `--sweep`). Keys are written as in scenario files or as
    /// flags (`block_interval` or `block-interval`); values are checked when the plan is built.
    pub fn parse(spec: &str) -> Result<Axis, ConfigError> {
        let bad = |msg: String| ConfigError::Invalid {
            key: "sweep".into(),
            msg,
        };
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| bad(format!("expected KEY=V1,V2,.., got {spec:?}")))?;
        let key = key.trim().trim_start_matches("--").replace('-', "_");
        if NOT_SWEEPABLE.contains(&key.as_str()) {
            return Err(bad(format!(
                "`{key}` cannot be swept (use --seeds for seeds; sweepable keys are the scalar scenario keys)"
            )));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad(format!("empty value in {spec:?}")));
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(bad(format!("value {v:?} is listed twice")));
            }
        }
        Ok(Axis { key, values })
    }
}

/// One run of a sweep: which value of the axis (if any) and the complete configuration.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index into the axis values (0 when there is no axis).
    pub group: usize,
    pub value: Option<String>,
    pub cfg: SimConfig,
}

/// Expands `base` into runs: for each axis value in order, `seeds` runs with seeds
/// `base.seed`, `base.seed + 1`, and so on. Every configuration is validated here, so a bad
/// value is reported before anything runs.
pub fn plan(base: &SimConfig, axis: Option<&Axis>, seeds: u64) -> Result<Vec<Run>, ConfigError> {
    if seeds == 0 {
        return Err(ConfigError::Invalid {
            key: "seeds".into(),
            msg: "must be at least 1".into(),
        });
    }
    let values: Vec<Option<&String>> = match axis {
        Some(a) => a.values.iter().map(Some).collect(),
        None => vec![None],
    };
    let bad_seeds = |msg: String| ConfigError::Invalid {
        key: "seeds".into(),
        msg,
    };
    if base.seed.checked_add(seeds - 1).is_none() {
        return Err(bad_seeds(format!(
            "{seeds} seeds from {} would overflow a 64-bit seed",
            base.seed
        )));
    }
    let total = seeds.saturating_mul(values.len() as u64);
    if total > MAX_RUNS {
        return Err(bad_seeds(format!(
            "{total} runs planned; at most {MAX_RUNS}"
        )));
    }
    let mut runs = Vec::new();
    let mut resolved: Vec<(SimConfig, &String)> = Vec::new();
    for (group, value) in values.into_iter().enumerate() {
        let mut cfg = base.clone();
        if let (Some(a), Some(v)) = (axis, value) {
            cfg.apply(&a.key, v, None)?;
            // Two spellings of one value (`5s` and `5`) would just repeat the same runs.
            if let Some((_, first)) = resolved.iter().find(|(c, _)| *c == cfg) {
                return Err(ConfigError::Invalid {
                    key: a.key.clone(),
                    msg: format!("{first:?} and {v:?} are the same setting"),
                });
            }
            resolved.push((cfg.clone(), v));
        }
        for k in 0..seeds {
            let mut c = cfg.clone();
            // Cannot overflow: checked for the last seed above.
            c.seed = base.seed.wrapping_add(k);
            c.validate()?;
            runs.push(Run {
                group,
                value: value.cloned(),
                cfg: c,
            });
        }
    }
    Ok(runs)
}

/// A run that could not be carried out: `prepare` or the trace writer failed, or the run
/// panicked (a bug worth replaying with `command`).
#[derive(Debug, thiserror::Error)]
#[error("run {index} (seed {seed}): {msg}; replay with: {command}")]
pub struct RunError {
    pub index: usize,
    pub seed: u64,
    pub msg: String,
    pub command: String,
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
        let err = |msg: String| RunError {
            index: i,
            seed: run.cfg.seed,
            msg,
            command: run.cfg.command_line(),
        };
        let one = || {
            let mut sim = Sim::new(run.cfg.clone()).map_err(|e| err(e.to_string()))?;
            prepare(i, &mut sim).map_err(err)?;
            let mut report = sim.run();
            report.wall.peak_rss_bytes = None;
            match sim.trace_error() {
                Some(e) => Err(err(format!("writing the event trace: {e}"))),
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
                Err(err(format!("panicked: {what}")))
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
            msg: "not run".into(),
            command: runs[i].cfg.command_line(),
        });
    }
    Ok(reports)
}

/// Mean, sample standard deviation and range of one measure across a group's runs. Runs
/// without the measure (no block reached 100% of peers, say) are left out; `n` counts the rest.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    fn of(xs: impl IntoIterator<Item = Option<f64>>) -> Spread {
        let v: Vec<f64> = xs.into_iter().flatten().collect();
        let n = v.len();
        if n == 0 {
            return Spread {
                n,
                mean: None,
                sd: None,
                min: None,
                max: None,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let sd = (n > 1)
            .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Spread {
            n,
            mean: Some(mean),
            sd,
            min: v.iter().copied().reduce(f64::min),
            max: v.iter().copied().reduce(f64::max),
        }
    }
}

/// The runs of one axis value, summarised (`groups[].*`).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The axis value as given (`null` without an axis).
    pub value: Option<String>,
    pub runs: usize,
    pub seeds: Vec<u64>,
    pub stale_rate: Spread,
    pub stale_blocks: Spread,
    /// Per-run medians across blocks of the delay until 50%, 90% and 100% of peers had a block.
    pub t50_median_ms: Spread,
    pub t90_median_ms: Spread,
    pub t100_median_ms: Spread,
    /// Per-run median delay over every (block, receiving peer) pair.
    pub all_peers_median_ms: Spread,
    pub reorgs: Spread,
    pub deepest_reorg: Spread,
    pub messages_per_block: Spread,
    pub bytes_per_block: Spread,
    /// Runs whose online peers ended on one tip.
    pub converged: usize,
    /// Time from the last block until the peers agreed, over the converged runs.
    pub agreed_after_last_block_ms: Spread,
    /// Runs without an invariant violation.
    pub invariants_ok: usize,
}

/// A sweep's result: the plan, one summary per axis value, and every run's full report.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub sweep_version: u32,
    /// The swept scenario key (`null`: only seeds vary).
    pub key: Option<String>,
    pub seeds: Vec<u64>,
    pub groups: Vec<Group>,
    /// Full reports in plan order (value by value, seed by seed).
    pub runs: Vec<SweepRun>,
    /// Wall-clock and memory figures, like a run report's `wall`.
    pub wall: SweepWall,
}

/// One entry of `runs`: its group (index into `groups`), axis value and report.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRun {
    pub group: usize,
    pub value: Option<String>,
    pub report: Report,
}

/// Nondeterministic figures of the whole sweep (`wall.*`).
#[derive(Debug, Clone, Serialize)]
pub struct SweepWall {
    pub wall_time_ms: u64,
    /// Runs executed at once.
    pub jobs: usize,
    /// Peak resident set of the process, all concurrent runs together.
    pub peak_rss_bytes: Option<u64>,
}

impl SweepReport {
    /// Groups `reports` (in plan order, as [`run_all`] returns them) by axis value.
    pub fn new(
        axis: Option<&Axis>,
        runs: &[Run],
        reports: Vec<Report>,
        jobs: usize,
        wall: std::time::Duration,
    ) -> SweepReport {
        let groups_n = runs.iter().map(|r| r.group + 1).max().unwrap_or(0);
        let mut seeds: Vec<u64> = runs.iter().map(|r| r.cfg.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let groups = (0..groups_n)
            .map(|g| {
                let members: Vec<&Report> = runs
                    .iter()
                    .zip(&reports)
                    .filter(|(r, _)| r.group == g)
                    .map(|(_, rep)| rep)
                    .collect();
                let f =
                    |get: fn(&Report) -> Option<f64>| Spread::of(members.iter().map(|r| get(r)));
                let ms = |x: Option<u64>| x.map(|v| v as f64);
                Group {
                    value: runs
                        .iter()
                        .find(|r| r.group == g)
                        .and_then(|r| r.value.clone()),
                    runs: members.len(),
                    seeds: members.iter().map(|r| r.seed).collect(),
                    stale_rate: f(|r| Some(r.blocks.stale_rate)),
                    stale_blocks: f(|r| Some(r.blocks.stale as f64)),
                    t50_median_ms: f(|r| r.propagation_ms.t50.median.map(|v| v as f64)),
                    t90_median_ms: f(|r| r.propagation_ms.t90.median.map(|v| v as f64)),
                    t100_median_ms: f(|r| r.propagation_ms.t100.median.map(|v| v as f64)),
                    all_peers_median_ms: f(|r| r.propagation_ms.all_peers.median.map(|v| v as f64)),
                    reorgs: f(|r| Some(r.reorgs.count as f64)),
                    deepest_reorg: f(|r| Some(r.reorgs.deepest as f64)),
                    messages_per_block: f(|r| Some(r.messages.per_block)),
                    bytes_per_block: f(|r| Some(r.messages.bytes_per_block)),
                    converged: members.iter().filter(|r| r.convergence.converged).count(),
                    agreed_after_last_block_ms: Spread::of(
                        members
                            .iter()
                            .map(|r| ms(r.convergence.after_last_block_ms)),
                    ),
                    invariants_ok: members.iter().filter(|r| r.invariants.ok).count(),
                }
            })
            .collect();
        SweepReport {
            sweep_version: SWEEP_VERSION,
            key: axis.map(|a| a.key.clone()),
            seeds,
            groups,
            runs: runs
                .iter()
                .zip(reports)
                .map(|(r, report)| SweepRun {
                    group: r.group,
                    value: r.value.clone(),
                    report,
                })
                .collect(),
            wall: SweepWall {
                wall_time_ms: wall.as_millis() as u64,
                jobs,
                peak_rss_bytes: crate::report::peak_rss_bytes(),
            },
        }
    }

    /// Whether every run kept every invariant.
    pub fn ok(&self) -> bool {
        self.runs.iter().all(|r| r.report.invariants.ok)
    }

    /// The sweep without its wall-clock and memory figures (the sweep's and each run's):
    /// identical for identical plans, whatever the number of jobs.
    pub fn deterministic_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("wall");
            if let Some(runs) = o.get_mut("runs").and_then(|r| r.as_array_mut()) {
                for r in runs {
                    if let Some(rep) = r.get_mut("report").and_then(|x| x.as_object_mut()) {
                        rep.remove("wall");
                    }
                }
            }
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// A readable table: one line per axis value, then one line per run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let first = self.runs.first().map(|r| &r.report.scenario);
        let label = self.key.as_deref().unwrap_or("scenario");
        let _ = writeln!(
            s,
            "rantai-sim sweep: {} x {} seeds = {} runs{}",
            match &self.key {
                Some(k) => format!("{k} over {} values", self.groups.len()),
                None => "one scenario".to_string(),
            },
            self.seeds.len(),
            self.runs.len(),
            first.map_or(String::new(), |sc| format!(
                "; {} peers, preset {}, relay {}",
                sc.peers, sc.preset, sc.relay
            )),
        );
        let pct = |x: &Spread| match (x.mean, x.sd) {
            (Some(m), Some(sd)) => format!("{:.2}% ± {:.2}", m * 100.0, sd * 100.0),
            (Some(m), None) => format!("{:.2}%", m * 100.0),
            _ => "-".into(),
        };
        let dur = |x: &Spread| match (x.mean, x.sd) {
            (Some(m), Some(sd)) => format!(
                "{} ± {}",
                fmt_ms(m.round() as u64),
                fmt_ms(sd.round() as u64)
            ),
            (Some(m), None) => fmt_ms(m.round() as u64),
            _ => "-".into(),
        };
        let num = |x: &Spread| match (x.mean, x.sd) {
            (Some(m), Some(sd)) => format!("{m:.1} ± {sd:.1}"),
            (Some(m), None) => format!("{m:.1}"),
            _ => "-".into(),
        };
        let w = self
            .groups
            .iter()
            .map(|g| g.value.as_deref().unwrap_or("-").len())
            .max()
            .unwrap_or(1)
            .max(label.len());
        let _ = writeln!(
            s,
            "  {label:<w$}  {:>4}  {:>16}  {:>17}  {:>17}  {:>17}  {:>13}  {:>9}  {:>10}",
            "runs",
            "stale rate",
            "t50 median",
            "t90 median",
            "t100 median",
            "reorgs",
            "converged",
            "invariants"
        );
        for g in &self.groups {
            let _ = writeln!(
                s,
                "  {:<w$}  {:>4}  {:>16}  {:>17}  {:>17}  {:>17}  {:>13}  {:>9}  {:>10}",
                g.value.as_deref().unwrap_or("-"),
                g.runs,
                pct(&g.stale_rate),
                dur(&g.t50_median_ms),
                dur(&g.t90_median_ms),
                dur(&g.t100_median_ms),
                num(&g.reorgs),
                format!("{}/{}", g.converged, g.runs),
                format!("{}/{} ok", g.invariants_ok, g.runs),
            );
        }
        let _ = writeln!(s, "  (mean ± sample standard deviation across seeds)");
        let _ = writeln!(s, "  runs:");
        for r in &self.runs {
            let rep = &r.report;
            let _ = writeln!(
                s,
                "    {:<w$}  seed {:<6} stale {:>3}/{:<4} t90 median {:>8}  reorgs {:>5}  {}  trace {}",
                r.value.as_deref().unwrap_or("-"),
                rep.seed,
                rep.blocks.stale,
                rep.blocks.mined,
                rep.propagation_ms
                    .t90
                    .median
                    .map_or("-".to_string(), fmt_ms),
                rep.reorgs.count,
                if rep.invariants.ok {
                    "ok"
                } else {
                    "VIOLATION"
                },
                rep.engine.trace_hash,
            );
        }
        let _ = writeln!(
            s,
            "  wall       {} for {} runs, {} at a time",
            fmt_ms(self.wall.wall_time_ms),
            self.runs.len(),
            self.wall.jobs
        );
        s
    }
}

/// One line of a sweep chart panel: per group, the mean, the sample sd and every run's value.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    groups: Vec<(Option<f64>, Option<f64>, Vec<f64>)>,
}

impl SweepReport {
    /// Two panels against the swept values: the stale rate, and the median delays until 50%,
    /// 90% and 100% of peers had a block; each point is the mean across seeds with a ±1 sd
    /// bar, and the faint dots are the single runs.
    pub fn svg(&self) -> String {
        let (pw, ph, ml, mt, mb, gap) = (360.0, 260.0, 70.0, 50.0, 70.0, 90.0);
        let w = ml + pw + gap + pw + 130.0;
        let h = mt + ph + mb;
        // Mean and sd come from the groups' own spreads; the dots from the runs, in the same
        // unit (`scale` turns a rate into % and milliseconds into seconds).
        let per_group = |spread: fn(&Group) -> &Spread,
                         get: fn(&Report) -> Option<f64>,
                         scale: f64|
         -> Vec<(Option<f64>, Option<f64>, Vec<f64>)> {
            self.groups
                .iter()
                .enumerate()
                .map(|(g, group)| {
                    let sp = spread(group);
                    let dots = self
                        .runs
                        .iter()
                        .filter(|r| r.group == g)
                        .filter_map(|r| get(&r.report).map(|v| v * scale))
                        .collect();
                    (sp.mean.map(|m| m * scale), sp.sd.map(|d| d * scale), dots)
                })
                .collect()
        };
        let stale = [Series {
            name: "stale rate",
            color: "#756bb1",
            groups: per_group(|g| &g.stale_rate, |r| Some(r.blocks.stale_rate), 100.0),
        }];
        let delays = [
            Series {
                name: "50% of peers",
                color: "#2b8cbe",
                groups: per_group(
                    |g| &g.t50_median_ms,
                    |r| r.propagation_ms.t50.median.map(|v| v as f64),
                    1e-3,
                ),
            },
            Series {
                name: "90% of peers",
                color: "#e6550d",
                groups: per_group(
                    |g| &g.t90_median_ms,
                    |r| r.propagation_ms.t90.median.map(|v| v as f64),
                    1e-3,
                ),
            },
            Series {
                name: "100% of peers",
                color: "#31a354",
                groups: per_group(
                    |g| &g.t100_median_ms,
                    |r| r.propagation_ms.t100.median.map(|v| v as f64),
                    1e-3,
                ),
            },
        ];
        let labels: Vec<&str> = self
            .groups
            .iter()
            .map(|g| g.value.as_deref().unwrap_or("all seeds"))
            .collect();
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="20" text-anchor="middle" font-size="14">{} ({} seeds per value; mean ± 1 sd, dots: single runs)</text>"#,
            w / 2.0,
            xml_escape(self.key.as_deref().unwrap_or("seeds")),
            self.seeds.len()
        );
        panel(
            &mut s,
            ml,
            mt,
            pw,
            ph,
            "stale rate (%)",
            &labels,
            &stale,
            self.key.as_deref(),
        );
        panel(
            &mut s,
            ml + pw + gap,
            mt,
            pw,
            ph,
            "median delay (s)",
            &labels,
            &delays,
            self.key.as_deref(),
        );
        for (i, se) in delays.iter().enumerate() {
            let (x, y) = (ml + 2.0 * pw + gap + 14.0, mt + 14.0 + i as f64 * 18.0);
            let _ = writeln!(
                s,
                r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                x + 18.0,
                se.color,
                x + 24.0,
                y + 4.0,
                se.name
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Draws one chart panel at (`x0`, `y0`): categorical x axis, y from 0 to the largest value.
#[allow(clippy::too_many_arguments)]
fn panel(
    s: &mut String,
    x0: f64,
    y0: f64,
    pw: f64,
    ph: f64,
    ylabel: &str,
    labels: &[&str],
    series: &[Series],
    key: Option<&str>,
) {
    let ymax = series
        .iter()
        .flat_map(|se| {
            se.groups.iter().flat_map(|(m, sd, pts)| {
                pts.iter().copied().chain(m.zip(*sd).map(|(m, sd)| m + sd))
            })
        })
        .fold(0.0f64, f64::max);
    // Four grid steps of a round size (1, 2, 2.5 or 5 times a power of ten).
    let raw = if ymax > 0.0 { ymax * 1.05 / 4.0 } else { 0.25 };
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|k| k * mag)
        .find(|&st| st >= raw)
        .unwrap_or(10.0 * mag);
    let ymax = step * 4.0;
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize + 1
    };
    let n = labels.len().max(1) as f64;
    let px = |i: usize| x0 + (i as f64 + 0.5) / n * pw;
    let py = |v: f64| y0 + (1.0 - v / ymax) * ph;
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.decimals$}</text>"##,
            x0 + pw,
            x0 - 6.0,
            y + 4.0,
        );
    }
    for (i, l) in labels.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(i),
            y0 + ph + 16.0,
            xml_escape(l)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        x0 + pw / 2.0,
        y0 + ph + 40.0,
        xml_escape(key.unwrap_or("runs"))
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{ylabel}</text>"#,
        x0 - 50.0,
        y0 + ph / 2.0
    );
    for se in series {
        let mut line = Vec::new();
        for (i, (mean, sd, pts)) in se.groups.iter().enumerate() {
            let x = px(i);
            for &v in pts {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{:.1}" r="2" fill="{}" fill-opacity="0.3"/>"#,
                    py(v),
                    se.color
                );
            }
            if let Some(m) = mean {
                line.push(format!("{x:.1},{:.1}", py(*m)));
                if let Some(sd) = sd {
                    let _ = writeln!(
                        s,
                        r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{}"/>"#,
                        py((m - sd).max(0.0)),
                        py(m + sd),
                        se.color
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            line.join(" "),
            se.color
        );
    }
}

fn xml_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_parsing() {
        let a = Axis::parse("block-interval=2s, 10s,1m").unwrap();
        assert_eq!(a.key, "block_interval");
        assert_eq!(a.values, ["2s", "10s", "1m"]);
        assert!(Axis::parse("block_interval").is_err());
        assert!(Axis::parse("block_interval=2s,,3s").is_err());
        assert!(Axis::parse("seed=1,2").is_err());
        assert!(Axis::parse("hashpower=1,2").is_err());
        let dup = Axis::parse("blocks=2,3,2").unwrap_err().to_string();
        assert!(dup.contains("listed twice"), "{dup}");
    }

    #[test]
    fn plan_orders_values_then_seeds_and_checks_every_value() {
        let mut base = SimConfig::small(10);
        base.seed = 40;
        let axis = Axis::parse("loss=0,0.1").unwrap();
        let runs = plan(&base, Some(&axis), 3).unwrap();
        let got: Vec<(usize, u64, f64)> = runs
            .iter()
            .map(|r| (r.group, r.cfg.seed, r.cfg.loss))
            .collect();
        assert_eq!(
            got,
            [
                (0, 40, 0.0),
                (0, 41, 0.0),
                (0, 42, 0.0),
                (1, 40, 0.1),
                (1, 41, 0.1),
                (1, 42, 0.1)
            ]
        );
        let err = plan(&base, Some(&Axis::parse("loss=0,2").unwrap()), 1).unwrap_err();
        assert!(err.to_string().contains("loss"), "{err}");
        let err = plan(&base, Some(&Axis::parse("block-interval=5s,5").unwrap()), 1).unwrap_err();
        assert!(err.to_string().contains("the same setting"), "{err}");
        let err = plan(&base, Some(&Axis::parse("bogus=1").unwrap()), 1).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        assert!(plan(&base, None, 0).is_err());
        base.seed = u64::MAX - 1;
        assert!(plan(&base, None, 2).is_ok());
        let err = plan(&base, None, 3).unwrap_err().to_string();
        assert!(err.contains("overflow"), "{err}");
        base.seed = 0;
        let err = plan(&base, None, u64::MAX).unwrap_err().to_string();
        assert!(err.contains("at most"), "{err}");
    }

    #[test]
    fn spread_statistics() {
        let s = Spread::of([Some(1.0), None, Some(3.0), Some(2.0)]);
        assert_eq!(s.n, 3);
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(s.sd, Some(1.0));
        assert_eq!((s.min, s.max), (Some(1.0), Some(3.0)));
        let one = Spread::of([Some(5.0)]);
        assert_eq!((one.mean, one.sd), (Some(5.0), None));
        assert_eq!(Spread::of([None]).mean, None);
    }
}
