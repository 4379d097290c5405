//! The network and fault models a scenario names: topology, latency, bandwidth, partitions
//! and crashes.
//!
//! Each type parses its flag form with [`FromStr`] and prints the same form with [`Display`],
//! so `x.to_string().parse()` gives `x` back (except an explicit-groups partition, which only a
//! scenario file can state, and an edge-list topology, which names its file).

use crate::units::{
    fmt_duration, parse_duration, parse_probability, parse_rate, Bare, Rate, UnitError,
};
use rantai_core::Millis;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How peers are linked.
#[derive(Debug, Clone, PartialEq)]
pub enum Topology {
    /// Each peer dials `k` random others (Bitcoin-style); `None` draws each peer's outbound
    /// count from the preset's measured distribution (8 without a preset).
    Random {
        k: Option<u32>,
    },
    /// Every pair linked (refused above 2,000 peers: peers squared links).
    Mesh,
    Ring,
    Line,
    /// Peer 0 linked to every other.
    Star,
    /// Watts-Strogatz: ring lattice with `k` neighbours per peer, each rewired with probability `p`.
    SmallWorld {
        k: u32,
        p: f64,
    },
    /// Explicit undirected edges (the first id dials), e.g. loaded from an edge-list file.
    Edges {
        source: String,
        edges: Vec<(u32, u32)>,
    },
}

/// Why a topology was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("unknown topology {0:?}: expected random[:K], mesh, ring, line, star, small-world:K:P or file:PATH")]
    Unknown(String),
    #[error("random:K needs an integer K, got {0:?}")]
    RandomDegree(String),
    #[error("random:K needs K >= 1")]
    RandomDegreeZero,
    #[error("small-world:K:P needs an integer K, got {0:?}")]
    SmallWorldDegree(String),
    #[error("small-world:K:P needs a probability P, got {0:?}")]
    SmallWorldProbability(String),
    #[error("small-world:K:P needs K >= 2 and 0 <= P <= 1")]
    SmallWorldRange,
    #[error("cannot read {path}: {msg}")]
    Read { path: String, msg: String },
    #[error(transparent)]
    Edges(#[from] EdgesError),
}

impl Topology {
    /// Parses `random`, `random:K`, `mesh`, `ring`, `line`, `star`, `small-world:K:P`,
    /// `file:PATH`; a relative `PATH` is resolved against `base` (a scenario file's directory).
    pub fn parse_in(v: &str, base: Option<&Path>) -> Result<Topology, TopologyError> {
        let parts: Vec<&str> = v.split(':').collect();
        Ok(match parts.as_slice() {
            ["random"] => Topology::Random { k: None },
            ["random", k] => {
                let k: u32 = k
                    .parse()
                    .map_err(|_| TopologyError::RandomDegree(k.to_string()))?;
                if k == 0 {
                    return Err(TopologyError::RandomDegreeZero);
                }
                Topology::Random { k: Some(k) }
            }
            ["mesh"] => Topology::Mesh,
            ["ring"] => Topology::Ring,
            ["line"] => Topology::Line,
            ["star"] => Topology::Star,
            ["small-world", k, p] | ["small_world", k, p] => {
                let k: u32 = k
                    .parse()
                    .map_err(|_| TopologyError::SmallWorldDegree(k.to_string()))?;
                let p: f64 = p
                    .parse()
                    .map_err(|_| TopologyError::SmallWorldProbability(p.to_string()))?;
                if k < 2 || !(0.0..=1.0).contains(&p) {
                    return Err(TopologyError::SmallWorldRange);
                }
                Topology::SmallWorld { k, p }
            }
            ["file", ..] => {
                let rel = &v["file:".len()..];
                let path: PathBuf = match base {
                    Some(b) if Path::new(rel).is_relative() => b.join(rel),
                    _ => PathBuf::from(rel),
                };
                let text = std::fs::read_to_string(&path).map_err(|e| TopologyError::Read {
                    path: path.display().to_string(),
                    msg: e.to_string(),
                })?;
                Topology::Edges {
                    source: v.to_string(),
                    edges: parse_edges(&text)?,
                }
            }
            _ => return Err(TopologyError::Unknown(v.to_string())),
        })
    }
}

impl FromStr for Topology {
    type Err = TopologyError;

    /// As [`Topology::parse_in`], with `file:PATH` relative to the working directory.
    fn from_str(v: &str) -> Result<Topology, TopologyError> {
        Topology::parse_in(v, None)
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Random { k: None } => f.write_str("random"),
            Topology::Random { k: Some(k) } => write!(f, "random:{k}"),
            Topology::Mesh => f.write_str("mesh"),
            Topology::Ring => f.write_str("ring"),
            Topology::Line => f.write_str("line"),
            Topology::Star => f.write_str("star"),
            Topology::SmallWorld { k, p } => write!(f, "small-world:{k}:{p}"),
            Topology::Edges { source, .. } => f.write_str(source),
        }
    }
}

/// Why an edge list was refused; lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgesError {
    #[error("line {line}: bad peer index {text:?}")]
    BadIndex { line: usize, text: String },
    #[error("line {line}: self-loop {peer}-{peer}")]
    SelfLoop { line: usize, peer: u32 },
    #[error("line {line}: expected two peer indices")]
    NotAPair { line: usize },
}

/// Parses an edge list: one `A B` pair of peer indices per line; `#` starts a comment.
pub fn parse_edges(text: &str) -> Result<Vec<(u32, u32)>, EdgesError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let ids: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect();
        let parse = |s: &str| {
            s.parse::<u32>().map_err(|_| EdgesError::BadIndex {
                line: line_no,
                text: s.to_string(),
            })
        };
        match ids.as_slice() {
            [a, b] => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a == b {
                    return Err(EdgesError::SelfLoop {
                        line: line_no,
                        peer: a,
                    });
                }
                out.push((a, b));
            }
            _ => return Err(EdgesError::NotAPair { line: line_no }),
        }
    }
    Ok(out)
}

/// How one message's one-way latency is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    Const(Millis),
    /// Uniform in `[lo, hi]`.
    Uniform(Millis, Millis),
    /// Normal with mean and standard deviation (clamped at 1 ms).
    Normal {
        mean: Millis,
        sd: Millis,
    },
    /// Log-normal with the given median and sigma (heavy right tail).
    LogNormal {
        median: Millis,
        sigma: f64,
    },
    /// Per-region-pair Pareto around the preset's measured mean (SimBlock's model).
    Region,
}

/// Why a latency model was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatencyError {
    #[error("unknown latency model {0:?}: expected const:D, uniform:LO..HI, normal:MEAN:SD, lognormal:MEDIAN:SIGMA or region")]
    Unknown(String),
    #[error("uniform needs LO..HI, e.g. uniform:10ms..200ms")]
    UniformRange,
    #[error("uniform: LO must not exceed HI")]
    UniformOrder,
    #[error("lognormal sigma must be a number, got {0:?}")]
    Sigma(String),
    #[error("lognormal sigma must be between 0 and 5")]
    SigmaRange,
    #[error(transparent)]
    Unit(#[from] UnitError),
}

impl FromStr for Latency {
    type Err = LatencyError;

    /// Parses `const:50ms` (or just `50ms`), `uniform:10ms..200ms`, `normal:100ms:20ms`,
    /// `lognormal:80ms:0.6`, `region`.
    fn from_str(v: &str) -> Result<Latency, LatencyError> {
        let d = |s: &str| parse_duration(s, Bare::Refused);
        let parts: Vec<&str> = v.splitn(3, ':').collect();
        Ok(match parts.as_slice() {
            ["region"] => Latency::Region,
            ["const", x] => Latency::Const(d(x)?),
            ["uniform", r] => {
                let (lo, hi) = r.split_once("..").ok_or(LatencyError::UniformRange)?;
                let (lo, hi) = (d(lo)?, d(hi)?);
                if lo > hi {
                    return Err(LatencyError::UniformOrder);
                }
                Latency::Uniform(lo, hi)
            }
            ["normal", m, s] => Latency::Normal {
                mean: d(m)?,
                sd: d(s)?,
            },
            ["lognormal", m, s] => {
                let sigma: f64 = s.parse().map_err(|_| LatencyError::Sigma(s.to_string()))?;
                if !(0.0..=5.0).contains(&sigma) {
                    return Err(LatencyError::SigmaRange);
                }
                Latency::LogNormal {
                    median: d(m)?,
                    sigma,
                }
            }
            // A bare number says why it is refused; other words are unknown models.
            [x] if x.trim().parse::<f64>().is_ok() => Latency::Const(d(x)?),
            [x] => Latency::Const(d(x).map_err(|_| LatencyError::Unknown(v.to_string()))?),
            _ => return Err(LatencyError::Unknown(v.to_string())),
        })
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Const(m) => write!(f, "const:{}ms", m.0),
            Latency::Uniform(a, b) => write!(f, "uniform:{}ms..{}ms", a.0, b.0),
            Latency::Normal { mean, sd } => write!(f, "normal:{}ms:{}ms", mean.0, sd.0),
            Latency::LogNormal { median, sigma } => write!(f, "lognormal:{}ms:{sigma}", median.0),
            Latency::Region => f.write_str("region"),
        }
    }
}

/// Per-peer access bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub enum Bandwidth {
    /// The same rates for every peer (`None` = unlimited).
    Uniform { download: Rate, upload: Rate },
    /// The preset's per-region rates.
    Region,
}

impl FromStr for Bandwidth {
    type Err = UnitError;

    /// Parses `region`, `RATE` (both directions) or `DOWN/UP` (like an ISP plan:
    /// `50Mbps/10Mbps`).
    fn from_str(v: &str) -> Result<Bandwidth, UnitError> {
        if v == "region" {
            return Ok(Bandwidth::Region);
        }
        // The `/` between two rates, not one inside a unit (`20Mbit/s/5Mbit/s`).
        let split = v.match_indices('/').map(|(i, _)| i).find(|&i| {
            let rest = v[i + 1..].trim_start();
            rest.starts_with(|c: char| c.is_ascii_digit())
                || rest.eq_ignore_ascii_case("unlimited")
                || rest.eq_ignore_ascii_case("inf")
        });
        Ok(match split.map(|i| (&v[..i], &v[i + 1..])) {
            Some((d, u)) => Bandwidth::Uniform {
                download: parse_rate(d)?,
                upload: parse_rate(u)?,
            },
            None => {
                let x = parse_rate(v)?;
                Bandwidth::Uniform {
                    download: x,
                    upload: x,
                }
            }
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |x: &Rate| x.map_or("unlimited".to_string(), |v| format!("{v}bps"));
        match self {
            Bandwidth::Region => f.write_str("region"),
            Bandwidth::Uniform { download, upload } => write!(f, "{}/{}", r(download), r(upload)),
        }
    }
}

/// Which peers a partition separates.
#[derive(Debug, Clone, PartialEq)]
pub enum Groups {
    /// A seeded random `fraction` of the peers against the rest.
    Fraction(f64),
    /// Explicit groups of peer indices; peers not listed form one more group.
    Explicit(Vec<Vec<u32>>),
}

/// A network split at `at`, healed at `heal` (never if `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSpec {
    pub at: Millis,
    pub heal: Option<Millis>,
    pub groups: Groups,
    /// One-way: only messages from the first group to the others are dropped.
    pub oneway: bool,
}

/// Why a partition or crash flag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("expected START..END[:FRACTION][:oneway], got {0:?}")]
    PartitionForm(String),
    #[error("expected PEER@START[..END][:wipe], got {0:?}")]
    CrashForm(String),
    #[error("bad peer index {0:?}")]
    Peer(String),
    #[error(transparent)]
    Unit(#[from] UnitError),
}

impl FromStr for PartitionSpec {
    type Err = FaultError;

    /// Parses `START..END[:FRACTION][:oneway]`, e.g. `10m..30m`, `10m..30m:0.3:oneway`; an
    /// empty END never heals.
    fn from_str(v: &str) -> Result<PartitionSpec, FaultError> {
        let mut parts = v.split(':');
        let range = parts.next().unwrap_or("");
        let (a, b) = range
            .split_once("..")
            .ok_or_else(|| FaultError::PartitionForm(v.to_string()))?;
        let at = parse_duration(a, Bare::Seconds)?;
        let heal = if b.trim().is_empty() {
            None
        } else {
            Some(parse_duration(b, Bare::Seconds)?)
        };
        let mut fraction = 0.5;
        let mut oneway = false;
        for p in parts {
            if p == "oneway" {
                oneway = true;
            } else {
                fraction = parse_probability(p)?;
            }
        }
        Ok(PartitionSpec {
            at,
            heal,
            groups: Groups::Fraction(fraction),
            oneway,
        })
    }
}

impl fmt::Display for PartitionSpec {
    /// The flag form; explicit groups print as `:groups[[..]]`, which only documents them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..", fmt_duration(self.at.0))?;
        if let Some(h) = self.heal {
            f.write_str(&fmt_duration(h.0))?;
        }
        match &self.groups {
            Groups::Fraction(x) => write!(f, ":{x}")?,
            Groups::Explicit(g) => write!(f, ":groups{g:?}")?,
        }
        if self.oneway {
            f.write_str(":oneway")?;
        }
        Ok(())
    }
}

/// A peer crash at `at`, restarted at `restart` (never if `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct CrashSpec {
    pub peer: u32,
    pub at: Millis,
    pub restart: Option<Millis>,
    /// Restart with the chain it had (a node with a data directory) or from genesis.
    pub keep_chain: bool,
}

impl FromStr for CrashSpec {
    type Err = FaultError;

    /// Parses `PEER@START[..END][:wipe]`, e.g. `3@10m..20m` (restart keeping the chain) or
    /// `3@10m..20m:wipe` (restart from genesis).
    fn from_str(v: &str) -> Result<CrashSpec, FaultError> {
        let (body, keep_chain) = match v.strip_suffix(":wipe") {
            Some(b) => (b, false),
            None => (v.strip_suffix(":keep").unwrap_or(v), true),
        };
        let (peer, range) = body
            .split_once('@')
            .ok_or_else(|| FaultError::CrashForm(v.to_string()))?;
        let peer: u32 = peer
            .trim()
            .parse()
            .map_err(|_| FaultError::Peer(peer.to_string()))?;
        let (a, b) = match range.split_once("..") {
            Some((a, b)) => (a, Some(b)),
            None => (range, None),
        };
        let at = parse_duration(a, Bare::Seconds)?;
        let restart = match b {
            Some(b) if !b.trim().is_empty() => Some(parse_duration(b, Bare::Seconds)?),
            _ => None,
        };
        Ok(CrashSpec {
            peer,
            at,
            restart,
            keep_chain,
        })
    }
}

impl fmt::Display for CrashSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}..", self.peer, fmt_duration(self.at.0))?;
        if let Some(r) = self.restart {
            f.write_str(&fmt_duration(r.0))?;
        }
        if !self.keep_chain {
            f.write_str(":wipe")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_forms_print_as_they_parse() {
        for t in [
            "random",
            "random:8",
            "mesh",
            "ring",
            "line",
            "star",
            "small-world:4:0.25",
        ] {
            assert_eq!(t.parse::<Topology>().unwrap().to_string(), t);
        }
        for l in [
            "const:50ms",
            "uniform:10ms..200ms",
            "normal:100ms:20ms",
            "lognormal:80ms:0.6",
            "region",
        ] {
            assert_eq!(l.parse::<Latency>().unwrap().to_string(), l);
        }
        for b in ["region", "50000000bps/10000000bps", "unlimited/unlimited"] {
            assert_eq!(b.parse::<Bandwidth>().unwrap().to_string(), b);
        }
        for p in ["1m..2m:0.3:oneway", "1s..:0.5", "1m30s..1h:0.25"] {
            assert_eq!(p.parse::<PartitionSpec>().unwrap().to_string(), p);
        }
        for c in ["3@1m..2m:wipe", "4@1s..", "5@2s500ms..10m"] {
            assert_eq!(c.parse::<CrashSpec>().unwrap().to_string(), c);
        }
    }

    #[test]
    fn refusals_say_what_was_expected() {
        let e = "bogus".parse::<Topology>().unwrap_err().to_string();
        assert!(e.contains("expected random[:K]"), "{e}");
        let e = "uniform:50ms".parse::<Latency>().unwrap_err();
        assert_eq!(e, LatencyError::UniformRange);
        let e = "3".parse::<CrashSpec>().unwrap_err();
        assert_eq!(e, FaultError::CrashForm("3".into()));
        assert_eq!(
            parse_edges("0 1\n2 2\n").unwrap_err(),
            EdgesError::SelfLoop { line: 2, peer: 2 }
        );
    }
}
