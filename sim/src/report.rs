//! The run report: a serde struct with stable keys (see sim/README.md) and a human summary;
//! its charts are drawn in [`crate::charts`].
//!
//! Contract: the report is a pure read of a finished run ([`RunView`]); it changes nothing
//! and checks nothing (the end-of-run invariants are [`crate::checker`]'s). Everything except
//! the `wall` object is a pure function of the scenario and seed.

use crate::charts::ChartData;
use crate::checker::EndState;
use crate::config::{bandwidth_str, latency_str, topology_str, SimConfig};
use crate::metrics::{quantile, CompactCounts, FaultCounts, Metrics};
use crate::net::KIND_NAMES;
use crate::units::{fmt_bytes, fmt_ms};
use rantai_core::{Chain, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Report format version; bumped only when a key changes meaning or disappears.
pub const REPORT_VERSION: u32 = 1;

/// One block's delays until 50%, 90% and 100% of peers had it (`None`: never).
pub type Marks = (Option<u64>, Option<u64>, Option<u64>);

/// The complete result of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub report_version: u32,
    pub seed: u64,
    /// A command line that replays this run.
    pub command: String,
    /// How the run ended.
    pub outcome: Outcome,
    pub scenario: ScenarioSummary,
    pub blocks: BlocksReport,
    pub propagation_ms: PropagationReport,
    pub reorgs: ReorgReport,
    pub messages: MessagesReport,
    pub redundancy: RedundancyReport,
    /// Compact relay: how received compact blocks ended (absent without compact relay).
    #[serde(default, skip_serializing_if = "CompactCounts::is_empty")]
    pub compact: CompactCounts,
    pub faults: FaultCounts,
    pub items: ItemsReport,
    pub convergence: ConvergenceReport,
    pub invariants: InvariantsReport,
    pub engine: EngineReport,
    /// Wall-clock and memory figures: the only fields that differ between identical runs.
    pub wall: WallReport,
    /// Per-block (t50, t90, t100) delays for the chart; not serialized.
    #[serde(skip)]
    pub per_block: Vec<Marks>,
    /// CDF of all (block, peer) delays for the chart; not serialized.
    #[serde(skip)]
    pub all_cdf: Vec<(u64, f64)>,
    /// What the other charts need (see [`crate::charts`]); not serialized.
    #[serde(skip)]
    pub chart: ChartData,
}

/// The resolved scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub peers: u32,
    /// Links of the topology (configured peers).
    pub links: usize,
    /// With `discovery`: whether peers learned addresses and dialled them, and how many links
    /// that added (absent when off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discovery: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_links: Option<usize>,
    pub miners: u32,
    pub blocks_target: u64,
    pub block_interval_ms: u64,
    pub block_size_bytes: u64,
    pub preset: String,
    pub topology: String,
    pub latency: String,
    pub bandwidth: String,
    pub relay: String,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub partitions: usize,
    pub crashes: usize,
    pub items: u32,
    pub ping_interval_ms: Option<u64>,
    /// How long the run waits for the network to go quiet after the last block or fault.
    pub settle_ms: u64,
    /// Every setting of the peer protocol the simulated peers ran (`scenario.peer_config.*`),
    /// so a run can be compared with a node's `GET /status` `config` key by key.
    pub peer_config: rantai_core::ConfigSummary,
}

/// Mined blocks and their fate (`blocks.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlocksReport {
    pub mined: u64,
    pub in_best_chain: u64,
    pub stale: u64,
    pub stale_rate: f64,
    pub final_height: u64,
    /// Blocks mined after the target only to break a final tie between equal-work tips.
    pub tiebreak: u64,
    /// Rejections reported by peers, by error kind.
    pub rejected: BTreeMap<String, u64>,
}

/// Summary statistics of one propagation mark across blocks, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stat {
    pub median: Option<u64>,
    pub p90: Option<u64>,
    pub mean: Option<f64>,
    pub max: Option<u64>,
}

/// Block propagation delays (`propagation_ms.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PropagationReport {
    pub blocks_measured: usize,
    pub reached_50: usize,
    pub reached_90: usize,
    pub reached_100: usize,
    pub t50: Stat,
    pub t90: Stat,
    pub t100: Stat,
    /// Delay from mining to acceptance over every (block, receiving peer) pair, the quantity
    /// Decker and Wattenhofer measured; quantiles are exact (nearest rank).
    pub all_peers: Stat,
    /// Number of (block, receiving peer) pairs behind `all_peers`.
    pub all_peers_samples: u64,
}

/// Reorgs summed over all peers (`reorgs.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReorgReport {
    /// Reorg events summed over all peers.
    pub count: u64,
    /// Most blocks abandoned by one reorg.
    pub deepest: u64,
}

/// Messages and bytes of one message kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindStat {
    pub count: u64,
    pub bytes: u64,
}

/// Traffic (`messages.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesReport {
    pub total: u64,
    pub bytes: u64,
    pub per_block: f64,
    pub bytes_per_block: f64,
    pub by_kind: BTreeMap<String, KindStat>,
}

/// Redundant deliveries (`redundancy.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedundancyReport {
    /// Full blocks delivered to peers that had already accepted them.
    pub duplicate_block_deliveries: u64,
    /// Announced hashes of blocks the receiving peer had already accepted.
    pub redundant_inv_hashes: u64,
}

/// Submitted data items in the final best chain (`items.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemsReport {
    pub submitted: u64,
    pub refused: u64,
    pub in_chain: u64,
    pub missing: u64,
    pub duplicated: u64,
}

/// Whether and when the online peers agreed (`convergence.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConvergenceReport {
    pub converged: bool,
    /// Whether convergence was required (no partition left open, online peers connected).
    pub expected: bool,
    pub distinct_tips: usize,
    pub online_peers: u32,
    pub last_block_ms: Option<u64>,
    pub last_heal_ms: Option<u64>,
    /// When the last tip change happened (all online peers agreed from then on).
    pub agreed_at_ms: Option<u64>,
    /// `agreed_at_ms` minus the time the last block was mined.
    pub after_last_block_ms: Option<u64>,
    /// Time from the last heal until all online peers first shared one tip.
    pub after_last_heal_ms: Option<u64>,
}

/// Invariant violations (`invariants.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvariantsReport {
    pub ok: bool,
    pub violations_total: u64,
    pub violations: Vec<String>,
}

/// Engine counters (`engine.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineReport {
    /// Events popped from the queue, cancelled ones included.
    pub events: u64,
    /// Timer, mining and dial events that had been superseded (cancelled lazily).
    pub cancelled_events: u64,
    pub sim_time_ms: u64,
    /// Hash of the full event trace (computed with or without `--trace`).
    pub trace_hash: String,
    /// The run hit its deadline before the network went quiet.
    pub timed_out: bool,
    /// The run was stopped from outside before its end (Ctrl-C).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The smallest one-way latency any message can have, in ms (the latency model's floor,
    /// or a links file's shortest link): within this much virtual time no event at one peer
    /// can affect another, so peers could run in parallel for it.
    #[serde(default)]
    pub lookahead_ms: u64,
    /// Rounds of `lookahead_ms` the events fell into, each starting at the earliest pending
    /// event, and the mean events per round: how much work a conservative parallel engine
    /// would find between two barriers.
    #[serde(default)]
    pub rounds: u64,
    #[serde(default)]
    pub events_per_round: f64,
}

/// How a run ended (`outcome`), each with its own exit code in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran to its end: quiet and converged (or not expected to converge), every invariant kept.
    Ok,
    /// An invariant was violated: a bug, replay it with `command`.
    InvariantViolated,
    /// The `settle` deadline passed before the connected network went quiet; convergence
    /// and missing items were not judged (raise `settle`); safety invariants were.
    SettleDeadline,
    /// Stopped from outside (Ctrl-C) before its end: the report covers what ran.
    Interrupted,
}

impl Outcome {
    /// The outcome of a run from its flags (a violation outranks the rest).
    pub fn of(ok: bool, interrupted: bool, late: bool) -> Outcome {
        if !ok {
            Outcome::InvariantViolated
        } else if interrupted {
            Outcome::Interrupted
        } else if late {
            Outcome::SettleDeadline
        } else {
            Outcome::Ok
        }
    }
}

/// Nondeterministic wall-clock and memory figures (`wall.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WallReport {
    pub wall_time_ms: u64,
    pub events_per_sec: f64,
    pub peak_rss_bytes: Option<u64>,
    /// Worker threads the run used (nothing outside `wall` depends on it).
    #[serde(default)]
    pub threads: usize,
    /// Share of the rounds' wall time that workers spent waiting for the slowest shard at
    /// the barrier (0 with one thread).
    #[serde(default)]
    pub barrier_wait_share: f64,
}

fn stat(mut v: Vec<u64>) -> Stat {
    v.sort_unstable();
    Stat {
        median: quantile(&v, 0.5),
        p90: quantile(&v, 0.9),
        mean: (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64),
        max: v.last().copied(),
    }
}

/// Peak resident set size of this process (VmHWM), if the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What a report reads of a finished run. [`Sim::run`](crate::Sim::run) fills it in after the
/// end-of-run checks ([`crate::checker`]); the report only reads it.
pub struct RunView<'a> {
    /// The configuration the run ran.
    pub cfg: &'a SimConfig,
    /// The peer protocol's settings every simulated peer ran.
    pub peer_config: rantai_core::ConfigSummary,
    /// Everything measured while running, invariant violations included.
    pub metrics: &'a Metrics,
    /// The best chain of the majority tip's holder, if any peer is online.
    pub best_chain: Option<&'a Chain>,
    /// The state the end-of-run checks judged.
    pub end: EndState,
    /// Number of links of the topology.
    pub links: usize,
    /// Links added when peers dialled addresses they learned (discovery).
    pub learned_links: usize,
    /// Online peers at the end.
    pub online: u32,
    /// Virtual time at the end.
    pub now: Millis,
    /// Blocks mined past the target to break a tie between equal-work tips.
    pub tiebreak_blocks: u64,
    /// When the last partition healed.
    pub last_heal_at: Option<Millis>,
    /// First moment after the last heal when all online peers shared one tip.
    pub agreed_after_heal: Option<Millis>,
    /// Hash of the event trace.
    pub trace_hash: String,
    /// The run hit its deadline before the network went quiet.
    pub timed_out: bool,
    /// The run hit its deadline while the online peers were connected and so expected to
    /// converge (a network left split never goes quiet: that is not a late run).
    pub settle_deadline: bool,
    /// The run was stopped from outside before its end.
    pub interrupted: bool,
    /// The latency floor (see [`EngineReport::lookahead_ms`]).
    pub lookahead_ms: u64,
    /// Worker threads.
    pub threads: usize,
    /// Share of the parallel rounds' worker time spent waiting at the barrier.
    pub barrier_wait_share: f64,
}

/// The report of a finished run; `wall` is the wall-clock time it took.
pub fn build(run: &RunView<'_>, wall: Duration) -> Report {
    let cfg = run.cfg;
    let m = run.metrics;
    let ref_chain = run.best_chain;

    // Blocks and staleness against the majority chain.
    let mined = m.blocks.len() as u64;
    let in_best = ref_chain.map_or(0, |c| {
        m.blocks.iter().filter(|b| c.in_best_chain(&b.hash)).count() as u64
    });
    let final_height = ref_chain.map_or(0, |c| c.height());

    let per_block: Vec<Marks> = m.blocks.iter().map(|b| (b.t50, b.t90, b.t100)).collect();
    let col =
        |f: fn(&Marks) -> Option<u64>| -> Vec<u64> { per_block.iter().filter_map(f).collect() };
    let (t50, t90, t100) = (col(|x| x.0), col(|x| x.1), col(|x| x.2));

    let total_msgs: u64 = m.msgs.iter().sum();
    let total_bytes: u64 = m.bytes.iter().sum();
    let by_kind: BTreeMap<String, KindStat> = KIND_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| m.msgs[*i] > 0)
        .map(|(i, k)| {
            (
                k.to_string(),
                KindStat {
                    count: m.msgs[i],
                    bytes: m.bytes[i],
                },
            )
        })
        .collect();
    let per = |x: u64| {
        if mined > 0 {
            x as f64 / mined as f64
        } else {
            0.0
        }
    };

    let EndState {
        converged,
        expected,
        distinct_tips,
        items: tally,
    } = run.end;
    let last_block = m.blocks.last().map(|b| b.mined_at.0);
    let agreed_at = converged.then_some(m.last_tip_change.0);
    let last_heal = run.last_heal_at.map(|t| t.0);
    let events = m.events;
    let wall_ms = wall.as_millis() as u64;
    Report {
        report_version: REPORT_VERSION,
        seed: cfg.seed,
        command: cfg.command_line(),
        outcome: Outcome::of(m.violation_count == 0, run.interrupted, run.settle_deadline),
        scenario: ScenarioSummary {
            peers: cfg.peers,
            links: run.links,
            discovery: cfg.discovery,
            learned_links: cfg.discovery.then_some(run.learned_links),
            miners: cfg.miners(),
            blocks_target: cfg.blocks,
            block_interval_ms: cfg.block_interval().0,
            block_size_bytes: cfg.block_size_bytes(),
            preset: cfg.preset.map_or("none".into(), |p| p.name.to_string()),
            topology: match &cfg.links {
                Some(l) => format!("links:{}", l.source),
                None => topology_str(&cfg.topology),
            },
            latency: match &cfg.links {
                Some(_) => "links".into(),
                None => latency_str(&cfg.latency()),
            },
            bandwidth: match &cfg.links {
                Some(_) => "links".into(),
                None => bandwidth_str(&cfg.bandwidth()),
            },
            relay: cfg.relay().as_str().into(),
            loss: cfg.loss,
            duplicate: cfg.duplicate,
            reorder: cfg.reorder,
            partitions: cfg.partitions.len(),
            crashes: cfg.crashes.len(),
            items: cfg.items,
            ping_interval_ms: cfg.ping_interval().map(|p| p.0),
            settle_ms: cfg.settle.0,
            peer_config: run.peer_config.clone(),
        },
        blocks: BlocksReport {
            mined,
            in_best_chain: in_best,
            stale: mined - in_best,
            stale_rate: if mined > 0 {
                (mined - in_best) as f64 / mined as f64
            } else {
                0.0
            },
            final_height,
            tiebreak: run.tiebreak_blocks,
            rejected: m.rejected_blocks.clone(),
        },
        propagation_ms: PropagationReport {
            blocks_measured: m.blocks.len(),
            reached_50: t50.len(),
            reached_90: t90.len(),
            reached_100: t100.len(),
            t50: stat(t50),
            t90: stat(t90),
            t100: stat(t100),
            all_peers: Stat {
                median: m.delays.quantile(0.5),
                p90: m.delays.quantile(0.9),
                mean: m.delays.mean(),
                max: m.delays.max(),
            },
            all_peers_samples: m.delays.count(),
        },
        reorgs: ReorgReport {
            count: m.reorgs,
            deepest: m.deepest_reorg,
        },
        messages: MessagesReport {
            total: total_msgs,
            bytes: total_bytes,
            per_block: per(total_msgs),
            bytes_per_block: per(total_bytes),
            by_kind,
        },
        redundancy: RedundancyReport {
            duplicate_block_deliveries: m.dup_block_deliveries,
            redundant_inv_hashes: m.redundant_inv_hashes,
        },
        compact: m.compact.clone(),
        faults: m.faults.clone(),
        items: ItemsReport {
            submitted: m.items_submitted.len() as u64,
            refused: m.items_refused,
            in_chain: tally.in_chain,
            missing: tally.missing,
            duplicated: tally.duplicated,
        },
        convergence: ConvergenceReport {
            converged,
            expected,
            distinct_tips,
            online_peers: run.online,
            last_block_ms: last_block,
            last_heal_ms: last_heal,
            agreed_at_ms: agreed_at,
            after_last_block_ms: agreed_at.zip(last_block).map(|(a, b)| a.saturating_sub(b)),
            after_last_heal_ms: run
                .agreed_after_heal
                .zip(last_heal)
                .map(|(a, b)| a.0.saturating_sub(b)),
        },
        invariants: InvariantsReport {
            ok: m.violation_count == 0,
            violations_total: m.violation_count,
            violations: m.violations.clone(),
        },
        engine: EngineReport {
            events,
            cancelled_events: m.cancelled_events,
            sim_time_ms: run.now.0,
            trace_hash: run.trace_hash.clone(),
            timed_out: run.timed_out,
            interrupted: run.interrupted,
            lookahead_ms: run.lookahead_ms,
            rounds: m.rounds,
            events_per_round: if m.rounds > 0 {
                events as f64 / m.rounds as f64
            } else {
                0.0
            },
        },
        wall: WallReport {
            wall_time_ms: wall_ms,
            events_per_sec: if wall.as_secs_f64() > 0.0 {
                (events as f64 / wall.as_secs_f64()).round()
            } else {
                0.0
            },
            peak_rss_bytes: peak_rss_bytes(),
            threads: run.threads,
            barrier_wait_share: run.barrier_wait_share,
        },
        per_block,
        all_cdf: m.delays.cdf(),
        chart: ChartData::of(cfg, m, ref_chain),
    }
}

impl Report {
    /// The report as pretty JSON (stable key order: struct order, maps sorted).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report without the `wall` object: identical across runs of the same seed.
    pub fn deterministic_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("wall");
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// A readable multi-line summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let sc = &self.scenario;
        let opt = |x: Option<u64>| x.map_or("-".to_string(), fmt_ms);
        let _ = writeln!(
            s,
            "rantai-sim: {} peers, {} links, {} miners, preset {}, relay {}, seed {}",
            sc.peers, sc.links, sc.miners, sc.preset, sc.relay, self.seed
        );
        let _ = writeln!(
            s,
            "  network    topology {}, latency {}, bandwidth {}",
            sc.topology, sc.latency, sc.bandwidth
        );
        let _ = writeln!(
            s,
            "  blocks     {} mined{} (interval {}, size {}), {} in best chain, {} stale ({:.2}%), height {}",
            self.blocks.mined,
            if self.blocks.tiebreak > 0 {
                format!(
                    ", {} of them past the target to break a final tie",
                    self.blocks.tiebreak
                )
            } else {
                String::new()
            },
            fmt_ms(sc.block_interval_ms),
            fmt_bytes(sc.block_size_bytes),
            self.blocks.in_best_chain,
            self.blocks.stale,
            self.blocks.stale_rate * 100.0,
            self.blocks.final_height
        );
        let p = &self.propagation_ms;
        let _ = writeln!(
            s,
            "  propagation (median / p90 across {} blocks)  50%: {} / {}   90%: {} / {}   100%: {} / {}",
            p.blocks_measured,
            opt(p.t50.median),
            opt(p.t50.p90),
            opt(p.t90.median),
            opt(p.t90.p90),
            opt(p.t100.median),
            opt(p.t100.p90)
        );
        let _ = writeln!(
            s,
            "             each (block, peer) pair: median {}, p90 {}, mean {}",
            opt(p.all_peers.median),
            opt(p.all_peers.p90),
            p.all_peers
                .mean
                .map_or("-".to_string(), |m| fmt_ms(m.round() as u64))
        );
        let _ = writeln!(
            s,
            "  forks      {} reorgs summed over peers (deepest {}), {} duplicate block deliveries, {} redundant announcements",
            self.reorgs.count,
            self.reorgs.deepest,
            self.redundancy.duplicate_block_deliveries,
            self.redundancy.redundant_inv_hashes
        );
        let _ = writeln!(
            s,
            "  traffic    {} messages, {} ({:.0} msgs and {} per block)",
            self.messages.total,
            fmt_bytes(self.messages.bytes),
            self.messages.per_block,
            fmt_bytes(self.messages.bytes_per_block as u64)
        );
        let kinds: Vec<String> = self
            .messages
            .by_kind
            .iter()
            .map(|(k, v)| format!("{k} {}", v.count))
            .collect();
        let _ = writeln!(s, "             {}", kinds.join(", "));
        let f = &self.faults;
        if f.lost + f.duplicated + f.delayed + f.partitions + f.crashes > 0
            || !f.disconnects.is_empty()
        {
            let d: Vec<String> = f
                .disconnects
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                s,
                "  faults     lost {}, duplicated {}, delayed {}, partitions {} (healed {}, {} drops), crashes {} (restarts {}), disconnects [{}], dials {} ok / {} failed",
                f.lost,
                f.duplicated,
                f.delayed,
                f.partitions,
                f.heals,
                f.partition_drops,
                f.crashes,
                f.restarts,
                d.join(", "),
                f.dials_ok,
                f.dials_failed
            );
        }
        if self.items.submitted > 0 {
            let _ = writeln!(
                s,
                "  items      {} submitted, {} in chain, {} missing, {} duplicated",
                self.items.submitted,
                self.items.in_chain,
                self.items.missing,
                self.items.duplicated
            );
        }
        let c = &self.convergence;
        let _ = writeln!(
            s,
            "  converged  {} ({} tips over {} online peers){}{}",
            if c.converged { "yes" } else { "NO" },
            c.distinct_tips,
            c.online_peers,
            c.after_last_block_ms.map_or(String::new(), |x| format!(
                ", agreed {} after the last block",
                fmt_ms(x)
            )),
            c.after_last_heal_ms.map_or(String::new(), |x| format!(
                ", {} after the last heal",
                fmt_ms(x)
            ))
        );
        let _ = writeln!(
            s,
            "  invariants {}",
            if self.invariants.ok {
                "ok".to_string()
            } else {
                format!("{} VIOLATED", self.invariants.violations_total)
            }
        );
        for v in &self.invariants.violations {
            let _ = writeln!(s, "    - {v}");
        }
        let w = &self.wall;
        let _ = writeln!(
            s,
            "  engine     {} events, {} simulated in {} wall ({:.2} M events/s), peak RSS {}, trace {}{}",
            self.engine.events,
            fmt_ms(self.engine.sim_time_ms),
            fmt_ms(w.wall_time_ms),
            w.events_per_sec / 1e6,
            w.peak_rss_bytes.map_or("-".into(), fmt_bytes),
            self.engine.trace_hash,
            if self.engine.timed_out { " (hit the settle deadline)" } else { "" }
        );
        let _ = writeln!(
            s,
            "             lookahead {} (latency floor): {} rounds of {:.0} events on average; {} thread{}{}",
            fmt_ms(self.engine.lookahead_ms),
            self.engine.rounds,
            self.engine.events_per_round,
            w.threads,
            if w.threads == 1 { "" } else { "s" },
            if w.threads > 1 {
                format!(", {:.0}% of worker time waiting at barriers", w.barrier_wait_share * 100.0)
            } else {
                String::new()
            }
        );
        let _ = writeln!(s, "  outcome    {}", self.outcome_line());
        s
    }

    /// The outcome in words, with what to do about it.
    pub fn outcome_line(&self) -> String {
        match self.outcome {
            Outcome::Ok => "ok".into(),
            Outcome::InvariantViolated => "invariant violated (a bug: replay it)".into(),
            Outcome::SettleDeadline => format!(
                "settle deadline: the network was still busy or split {} after the last block \
                 or fault; convergence was not judged (raise `settle`, e.g. --settle {})",
                fmt_ms(self.scenario.settle_ms),
                crate::units::fmt_duration(self.scenario.settle_ms.saturating_mul(4).max(60_000))
            ),
            Outcome::Interrupted => format!(
                "interrupted at {} simulated: the figures cover what ran, convergence was not judged",
                fmt_ms(self.engine.sim_time_ms)
            ),
        }
    }
}
