//! A sweep's report: per axis value the spread of each measure across seeds, then every run's
//! full report in plan order; as JSON (`sweep.json`, `--json`) and as a readable table.

use super::plan::{Axis, Run, Shard};
use crate::report::Report;
use crate::units::fmt_ms;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Sweep report format version; bumped only when a key changes meaning or disappears.
pub const SWEEP_VERSION: u32 = 1;

/// Mean, sample standard deviation and range of one measure across a group's runs. Runs
/// without the measure (no block reached 100% of peers, say) are left out; `n` counts the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub sweep_version: u32,
    /// The swept scenario key (`null`: only seeds vary).
    pub key: Option<String>,
    pub seeds: Vec<u64>,
    /// Runs in the whole plan; `runs` holds fewer for one shard or an interrupted sweep.
    pub planned_runs: usize,
    /// The slice of the plan this process ran (`--shard I/N`; absent for the whole plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Stopped by Ctrl-C: `runs` holds the runs that finished.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// One per axis value, in plan order (a value without finished runs has `runs: 0`).
    pub groups: Vec<Group>,
    /// Full reports in plan order (value by value, seed by seed).
    pub runs: Vec<SweepRun>,
    /// Wall-clock and memory figures, like a run report's `wall`.
    pub wall: SweepWall,
}

/// One entry of `runs`: its plan position, group (index into `groups`), axis value and report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRun {
    pub index: usize,
    pub group: usize,
    pub value: Option<String>,
    pub report: Report,
}

/// Nondeterministic figures of the whole sweep (`wall.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepWall {
    /// For merged shards: the longest shard's.
    pub wall_time_ms: u64,
    /// Runs executed at once (merged shards: summed).
    pub jobs: usize,
    /// Peak resident set of the process, all concurrent runs together (merged: the largest).
    pub peak_rss_bytes: Option<u64>,
}

/// Why shard outputs could not be merged into one sweep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("{0} differs between the shards: they come from different sweeps")]
    Mismatch(&'static str),
    #[error("run {0} of the plan appears twice (a shard given twice?)")]
    Duplicate(usize),
    #[error("{missing} of {planned} planned runs are missing (plan positions {first}): merge every shard, after each finished")]
    Incomplete {
        missing: usize,
        planned: usize,
        first: String,
    },
}

/// A replay command without its `--seed N`: what the runs of one axis value share.
fn without_seed(command: &str) -> String {
    let mut words = command.split(' ');
    let mut kept = Vec::new();
    while let Some(w) = words.next() {
        if w == "--seed" {
            words.next();
        } else {
            kept.push(w);
        }
    }
    kept.join(" ")
}

impl SweepReport {
    /// The report of `plan` (the whole plan, for the axis values and seeds) from the finished
    /// runs in `done` as `(plan position, report)`, in any order.
    pub fn new(
        axis: Option<&Axis>,
        plan: &[Run],
        done: Vec<(usize, Report)>,
        jobs: usize,
        wall: std::time::Duration,
    ) -> SweepReport {
        let groups_n = plan.iter().map(|r| r.group + 1).max().unwrap_or(0);
        let values = (0..groups_n)
            .map(|g| {
                plan.iter()
                    .find(|r| r.group == g)
                    .and_then(|r| r.value.clone())
            })
            .collect();
        let mut seeds: Vec<u64> = plan.iter().map(|r| r.cfg.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let entries = done
            .into_iter()
            .filter_map(|(i, report)| {
                let r = plan.iter().find(|r| r.index == i)?;
                Some(SweepRun {
                    index: i,
                    group: r.group,
                    value: r.value.clone(),
                    report,
                })
            })
            .collect();
        SweepReport::from_entries(
            axis.map(|a| a.key.clone()),
            values,
            seeds,
            plan.len(),
            entries,
            SweepWall {
                wall_time_ms: wall.as_millis() as u64,
                jobs,
                peak_rss_bytes: crate::report::peak_rss_bytes(),
            },
        )
    }

    /// Groups `entries` by axis value (`values`, one per group) and sorts them by plan position.
    fn from_entries(
        key: Option<String>,
        values: Vec<Option<String>>,
        seeds: Vec<u64>,
        planned_runs: usize,
        mut entries: Vec<SweepRun>,
        wall: SweepWall,
    ) -> SweepReport {
        entries.sort_by_key(|e| e.index);
        let groups = values
            .into_iter()
            .enumerate()
            .map(|(g, value)| {
                let members: Vec<&Report> = entries
                    .iter()
                    .filter(|e| e.group == g)
                    .map(|e| &e.report)
                    .collect();
                let f =
                    |get: fn(&Report) -> Option<f64>| Spread::of(members.iter().map(|r| get(r)));
                let ms = |x: Option<u64>| x.map(|v| v as f64);
                Group {
                    value,
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
            key,
            seeds,
            planned_runs,
            shard: None,
            interrupted: false,
            groups,
            runs: entries,
            wall,
        }
    }

    /// Combines the outputs of the shards of one sweep (`--shard I/N`, each complete) into
    /// the report one process running the whole plan would have written (`wall` aside).
    pub fn merge(parts: Vec<SweepReport>) -> Result<SweepReport, MergeError> {
        let first = parts.first().ok_or(MergeError::Empty)?;
        let values: Vec<Option<String>> = first.groups.iter().map(|g| g.value.clone()).collect();
        let (key, seeds, planned) = (first.key.clone(), first.seeds.clone(), first.planned_runs);
        for p in &parts {
            if p.sweep_version != first.sweep_version {
                return Err(MergeError::Mismatch("sweep_version"));
            }
            if p.key != key {
                return Err(MergeError::Mismatch("the swept key"));
            }
            if p.seeds != seeds {
                return Err(MergeError::Mismatch("the seed list"));
            }
            if p.planned_runs != planned {
                return Err(MergeError::Mismatch("the number of planned runs"));
            }
            if p.groups.iter().map(|g| &g.value).ne(values.iter()) {
                return Err(MergeError::Mismatch("the swept values"));
            }
        }
        let wall = SweepWall {
            wall_time_ms: parts.iter().map(|p| p.wall.wall_time_ms).max().unwrap_or(0),
            jobs: parts.iter().map(|p| p.wall.jobs).sum(),
            peak_rss_bytes: parts.iter().filter_map(|p| p.wall.peak_rss_bytes).max(),
        };
        if planned as u64 > super::MAX_RUNS {
            return Err(MergeError::Mismatch("the number of planned runs"));
        }
        let mut seen = vec![false; planned];
        // Per axis value, the scenario every run of it replays (its command without the seed):
        // shards run with other flags are different sweeps, whatever their plan's shape.
        let mut scenario: Vec<Option<String>> = vec![None; values.len()];
        let mut entries = Vec::new();
        for e in parts.into_iter().flat_map(|p| p.runs) {
            match seen.get_mut(e.index) {
                Some(s) if *s => return Err(MergeError::Duplicate(e.index)),
                Some(s) => *s = true,
                None => return Err(MergeError::Mismatch("the number of planned runs")),
            }
            let cmd = without_seed(&e.report.command);
            match scenario.get_mut(e.group) {
                Some(Some(c)) if *c != cmd => return Err(MergeError::Mismatch("the scenario")),
                Some(slot) => *slot = Some(cmd),
                None => return Err(MergeError::Mismatch("the swept values")),
            }
            entries.push(e);
        }
        let missing: Vec<usize> = (0..planned).filter(|&i| !seen[i]).collect();
        if !missing.is_empty() {
            let mut shown: Vec<String> = missing.iter().take(5).map(usize::to_string).collect();
            if missing.len() > 5 {
                shown.push("...".into());
            }
            return Err(MergeError::Incomplete {
                missing: missing.len(),
                planned,
                first: shown.join(", "),
            });
        }
        Ok(SweepReport::from_entries(
            key, values, seeds, planned, entries, wall,
        ))
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
            "rantai-sim sweep: {} x {} seeds = {} runs{}{}",
            match &self.key {
                Some(k) => format!("{k} over {} values", self.groups.len()),
                None => "one scenario".to_string(),
            },
            self.seeds.len(),
            self.planned_runs,
            match (self.shard, self.interrupted) {
                (_, true) => format!(" (INTERRUPTED: {} finished)", self.runs.len()),
                (Some(s), false) =>
                    format!(" (shard {}/{}: {} runs)", s.index, s.count, self.runs.len()),
                (None, false) => String::new(),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

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
