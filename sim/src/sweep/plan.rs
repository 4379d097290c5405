//! A sweep's plan: the axis (one scenario key and its values) and the list of runs, every
//! configuration built and validated before anything runs.

use crate::config::{keys, ConfigError, SimConfig};

/// Most runs one sweep may plan: a typo in `--seeds` should fail at once, not exhaust memory.
pub const MAX_RUNS: u64 = 100_000;

/// Why a sweep could not be planned. The messages name the flag's key the way a refused
/// scenario value does (`invalid value for `seeds`: ..`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("invalid value for `sweep`: expected KEY=V1,V2,.., got {0:?}")]
    Form(String),
    #[error("invalid value for `sweep`: `{0}` cannot be swept (use --seeds for seeds; every scalar scenario key can be swept except seed, hashpower, partition, crash, links, schedule and threads)")]
    NotSweepable(String),
    #[error("invalid value for `sweep`: empty value in {0:?}")]
    EmptyValue(String),
    #[error("invalid value for `sweep`: value {0:?} is listed twice")]
    ListedTwice(String),
    /// Two spellings of one setting (`5s` and `5`) would only repeat the same runs.
    #[error("invalid value for `{key}`: {first:?} and {second:?} are the same setting")]
    SameSetting {
        key: String,
        first: String,
        second: String,
    },
    #[error("invalid value for `seeds`: must be at least 1")]
    NoSeeds,
    #[error("invalid value for `seeds`: {seeds} seeds from {first} would overflow a 64-bit seed")]
    SeedOverflow { seeds: u64, first: u64 },
    #[error("invalid value for `seeds`: {total} runs planned; at most {MAX_RUNS}")]
    TooManyRuns { total: u64 },
    /// A value the key refuses, or a run's configuration that does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The setting a sweep varies: a scenario key and the values it takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `KEY=V1,V2,..` (the CLI's `--sweep`). Keys are written as in scenario files or as
    /// flags (`block_interval` or `block-interval`); an unknown key and the values are checked
    /// when the plan is built.
    pub fn parse(spec: &str) -> Result<Axis, PlanError> {
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| PlanError::Form(spec.to_string()))?;
        let key = key.trim().trim_start_matches("--").replace('-', "_");
        if keys::find(&key).is_some_and(|k| !k.sweepable) {
            return Err(PlanError::NotSweepable(key));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(PlanError::EmptyValue(spec.to_string()));
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(PlanError::ListedTwice(v.clone()));
            }
        }
        Ok(Axis { key, values })
    }
}

/// One run of a sweep: which value of the axis (if any) and the complete configuration.
#[derive(Debug, Clone)]
pub struct Run {
    /// Position in the whole plan (kept when a shard takes a slice of it).
    pub index: usize,
    /// Index into the axis values (0 when there is no axis).
    pub group: usize,
    pub value: Option<String>,
    pub cfg: SimConfig,
}

/// Expands `base` into runs: for each axis value in order, `seeds` runs with seeds
/// `base.seed`, `base.seed + 1`, and so on. Every configuration is validated here, so a bad
/// value is reported before anything runs.
pub fn plan(base: &SimConfig, axis: Option<&Axis>, seeds: u64) -> Result<Vec<Run>, PlanError> {
    if seeds == 0 {
        return Err(PlanError::NoSeeds);
    }
    let values: Vec<Option<&String>> = match axis {
        Some(a) => a.values.iter().map(Some).collect(),
        None => vec![None],
    };
    if base.seed.checked_add(seeds - 1).is_none() {
        return Err(PlanError::SeedOverflow {
            seeds,
            first: base.seed,
        });
    }
    let total = seeds.saturating_mul(values.len() as u64);
    if total > MAX_RUNS {
        return Err(PlanError::TooManyRuns { total });
    }
    let mut runs = Vec::new();
    let mut resolved: Vec<(SimConfig, &String)> = Vec::new();
    for (group, value) in values.into_iter().enumerate() {
        let mut cfg = base.clone();
        if let (Some(a), Some(v)) = (axis, value) {
            cfg.apply(&a.key, v, None)?;
            if let Some((_, first)) = resolved.iter().find(|(c, _)| *c == cfg) {
                return Err(PlanError::SameSetting {
                    key: a.key.clone(),
                    first: first.to_string(),
                    second: v.clone(),
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
                index: runs.len(),
                group,
                value: value.cloned(),
                cfg: c,
            });
        }
    }
    Ok(runs)
}

/// One slice of a plan for one machine or job: shard `index` of `count` (1-based, as
/// `--shard 2/4` writes it) takes the runs whose plan position is `index - 1` modulo `count`,
/// so every value and seed is spread over the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` with 1 <= I <= N.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid value for `shard`: expected I/N with 1 <= I <= N, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The runs of `plan` in this shard, in plan order.
    pub fn select(&self, plan: &[Run]) -> Vec<Run> {
        plan.iter()
            .filter(|r| r.index % self.count == self.index - 1)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_plan_without_overlap() {
        let base = SimConfig::small(10);
        let plan = plan(&base, Some(&Axis::parse("loss=0,0.1,0.2").unwrap()), 3).unwrap();
        let mut seen: Vec<usize> = (1..=4)
            .flat_map(|i| Shard { index: i, count: 4 }.select(&plan))
            .map(|r| r.index)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<_>>());
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn axis_parsing() {
        let a = Axis::parse("block-interval=2s, 10s,1m").unwrap();
        assert_eq!(a.key, "block_interval");
        assert_eq!(a.values, ["2s", "10s", "1m"]);
        assert!(Axis::parse("block_interval").is_err());
        assert!(Axis::parse("block_interval=2s,,3s").is_err());
        assert_eq!(
            Axis::parse("seed=1,2"),
            Err(PlanError::NotSweepable("seed".into()))
        );
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
}
