//! The fault campaign (after TigerBeetle's VOPR): seeded random scenarios, each run in a
//! *safety* phase with faults and then a *liveness* phase that heals them and demands
//! convergence within a stated bound.
//!
//! Everything about a run follows from its seed: [`scenario`] draws the network, workload and
//! fault mix from documented distributions, and [`run`] replays it exactly. Checks:
//!
//! - **Safety**, continuously: no peer accepts a block no miner produced, or one whose parent it
//!   lacks; no miner produces an invalid block; no item twice in the final chain. A message storm
//!   (messages in flight beyond [`in_flight_cap`]) or traffic beyond [`traffic_cap`] fails the run
//!   too, before it can exhaust memory.
//! - **Liveness**: once every fault has fired, partitions heal and crashed peers restart (with
//!   their chain, or wiped, as the crash said); loss, duplication and reordering stay on. Miners
//!   keep mining while they hold pending items, and ties are broken. By
//!   [`liveness_bound`] after the heal, every online peer must sit on one tip whose chain holds
//!   every item that survived the faults exactly once.

use crate::config::{CrashSpec, Groups, PartitionSpec, SimConfig, Topology};
use crate::rng::stream;
use crate::sim::Sim;
use crate::units::fmt_ms;
use rand::Rng;
use rantai_core::{BlockHash, ItemId, Millis, RelayPolicy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why a campaign run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An invariant broke: a block nobody mined, a block without its parent, an invalid mined
    /// block, an item twice in the chain.
    Safety,
    /// Messages in flight or total traffic beyond the caps: a message storm.
    Storm,
    /// The healed network did not converge within the bound.
    Convergence,
    /// Converged, but items that survived the faults are not in the chain.
    ItemsLost,
}

impl FailureKind {
    /// Name used in summaries.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Safety => "safety",
            FailureKind::Storm => "storm",
            FailureKind::Convergence => "convergence",
            FailureKind::ItemsLost => "items_lost",
        }
    }
}

/// One failed check of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

/// What one campaign run did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub seed: u64,
    /// The scenario, as the plain simulator's flags (the liveness phase is the campaign's own).
    pub scenario: String,
    pub peers: u32,
    /// Links the caps count: the topology's, plus `max_outbound` per peer with discovery.
    pub links: usize,
    /// Longest shortest path of the topology, in hops.
    pub diameter: u32,
    pub events: u64,
    pub messages: u64,
    pub blocks_mined: u64,
    pub sim_time_ms: u64,
    /// When the faults ended and the liveness phase began.
    pub heal_at_ms: u64,
    /// The liveness deadline's distance from the heal.
    pub liveness_bound_ms: u64,
    /// Time from the heal until every check held; `None` if that never happened.
    pub live_after_ms: Option<u64>,
    pub items_submitted: u64,
    /// Items that no surviving peer held when the faults ended (their holders crashed).
    pub items_lost_to_crashes: u64,
    pub failures: Vec<Failure>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The command that replays this run.
    pub fn replay(&self) -> String {
        format!("rantai-sim vopr --seed {}", self.seed)
    }
}

/// Draws the scenario of campaign seed `seed`:
///
/// | setting | distribution |
/// |---|---|
/// | peers | 20..=200 |
/// | blocks | 10..=60, interval 2..=60 s |
/// | block size | bitcoin-2019's 535 kB (2 in 3) or 0 |
/// | topology | random (bitcoin-2019 degrees), ring, line, small-world:4:0.2, star |
/// | relay | announce, push or compact |
/// | loss | 0 (1 in 4) or 0..30 % |
/// | duplication, reordering | 0 (1 in 2) or 0..10 %, 0..20 % |
/// | partitions | 0..=2 in the mining span: 30 s..20 min, or never healing (1 in 4); a random fraction 0.1..0.9; one-way (1 in 3) |
/// | crashes | 0..=3 in the mining span: restart after 10 s..10 min (2 in 3) or never; chain kept or wiped (1 in 2) |
/// | items | 0 (1 in 4) or 1..=100 |
/// | discovery | on (1 in 3): peers also dial the addresses they learn |
/// | tcp_slow_start | on (1 in 3): the TCP window model |
///
/// Latency and bandwidth are bitcoin-2019's regional model; every other setting is the
/// simulator's default.
pub fn scenario(seed: u64) -> SimConfig {
    let mut r = stream(seed, "vopr", 0);
    let mut cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    cfg.peers = r.gen_range(20..=200);
    cfg.blocks = r.gen_range(10..=60);
    cfg.block_interval = Some(Millis::from_secs(r.gen_range(2..=60)));
    if r.gen_range(0..3) == 0 {
        cfg.block_size_bytes = Some(0);
    }
    cfg.topology = match r.gen_range(0..5) {
        0 => Topology::Random { k: None },
        1 => Topology::Ring,
        2 => Topology::Line,
        3 => Topology::SmallWorld { k: 4, p: 0.2 },
        _ => Topology::Star,
    };
    cfg.relay = Some(match r.gen_range(0..3) {
        0 => RelayPolicy::Announce,
        1 => RelayPolicy::Push,
        _ => RelayPolicy::Compact,
    });
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    cfg.loss = if r.gen_range(0..4) == 0 {
        0.0
    } else {
        round(r.gen_range(0.0..0.30))
    };
    cfg.duplicate = if r.gen() {
        0.0
    } else {
        round(r.gen_range(0.0..0.10))
    };
    cfg.reorder = if r.gen() {
        0.0
    } else {
        round(r.gen_range(0.0..0.20))
    };
    let span = (cfg.blocks * cfg.block_interval().0).max(1);
    for _ in 0..r.gen_range(0..=2) {
        let at = Millis(r.gen_range(0..span));
        let heal = if r.gen_range(0..4) == 0 {
            None
        } else {
            Some(at.add(Millis(r.gen_range(30_000..=1_200_000))))
        };
        cfg.partitions.push(PartitionSpec {
            at,
            heal,
            groups: Groups::Fraction(round(r.gen_range(0.1..0.9))),
            oneway: r.gen_range(0..3) == 0,
        });
    }
    for _ in 0..r.gen_range(0..=3) {
        let at = Millis(r.gen_range(0..span));
        let restart =
            (r.gen_range(0..3) != 0).then(|| at.add(Millis(r.gen_range(10_000..=600_000))));
        cfg.crashes.push(CrashSpec {
            peer: r.gen_range(0..cfg.peers),
            at,
            restart,
            keep_chain: r.gen(),
        });
    }
    cfg.items = if r.gen_range(0..4) == 0 {
        0
    } else {
        r.gen_range(1..=100)
    };
    cfg.discovery = r.gen_range(0..3) == 0;
    cfg.tcp_slow_start = r.gen_range(0..3) == 0;
    cfg
}

/// Links per peer, peers `0..n`.
fn degrees(n: u32, edges: &[(u32, u32)]) -> Vec<u32> {
    let mut deg = vec![0u32; n as usize];
    for &(a, b) in edges {
        deg[a as usize] += 1;
        deg[b as usize] += 1;
    }
    deg
}

/// Longest shortest path over `edges` between peers `0..n`; `None` if the graph is not connected.
pub fn diameter(n: u32, edges: &[(u32, u32)]) -> Option<u32> {
    let n = n as usize;
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a as usize].push(b as usize);
        adj[b as usize].push(a as usize);
    }
    let mut worst = 0;
    let mut dist = vec![u32::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    for start in 0..n {
        dist.iter_mut().for_each(|d| *d = u32::MAX);
        dist[start] = 0;
        queue.push_back(start);
        while let Some(x) = queue.pop_front() {
            for &y in &adj[x] {
                if dist[y] == u32::MAX {
                    dist[y] = dist[x] + 1;
                    queue.push_back(y);
                }
            }
        }
        worst = worst.max(*dist.iter().max()?);
    }
    (worst != u32::MAX).then_some(worst)
}

/// How long the healed network may take to converge with every surviving item mined, on top of
/// what [`run`] adds for bandwidth (the longest upload backlog at the heal and
/// [`catch_up_upload`]):
/// - a fixed allowance for re-dials, a keepalive round and mining the last items: 10 minutes
///   plus four block intervals;
/// - per hop of the diameter, two keepalive intervals (an announcement lost, then learned from
///   the next ping) and one request timeout (a peer stalling once);
/// - [`fanout_rounds`] keepalive intervals, so the last block reaches every neighbour of the
///   best-connected peer over lossy links.
pub fn liveness_bound(cfg: &SimConfig, diameter: u32, max_degree: u32) -> Millis {
    let ping = cfg.ping_interval().unwrap_or(Millis::from_secs(30)).0;
    let per_hop = 2 * ping + cfg.request_timeout.0;
    let fanout = fanout_rounds(cfg.loss, max_degree) * ping;
    Millis(600_000 + 4 * cfg.block_interval().0 + u64::from(diameter) * per_hop + fanout)
}

/// Keepalive rounds after which each of `degree` neighbours has, with probability 999 in
/// 1,000 for all of them together, completed a round trip that loses each message with
/// probability `loss`: `ln(degree * 1000) / -ln(1 - (1 - loss)^2)`, rounded up. (A neighbour
/// that missed a block learns of it from a keepalive and fetches it.) Zero without loss.
pub fn fanout_rounds(loss: f64, degree: u32) -> u64 {
    let fail = 1.0 - (1.0 - loss).powi(2);
    if fail <= 0.0 {
        return 0;
    }
    let rounds = (f64::from(degree.max(1)) * 1000.0).ln() / -fail.ln();
    rounds.ceil().clamp(0.0, 1000.0) as u64
}

/// Time the busiest uplink needs to send every block mined so far to each of its neighbours
/// once: after a long partition a hub may have to do exactly that, and no protocol converges
/// faster than its uplinks can carry the blocks.
pub fn catch_up_upload(sim: &Sim) -> Millis {
    let degree = degrees(sim.peer_count(), sim.edges());
    let bits = sim.mined() * sim.config().block_size_bytes() * 8;
    let worst_ms = (0..sim.peer_count())
        .filter_map(|i| {
            let bps = sim.upload_bps(i)?;
            let d = u64::from(degree[i as usize]);
            Some(bits.saturating_mul(d).saturating_mul(1000) / bps.max(1))
        })
        .max()
        .unwrap_or(0);
    Millis(worst_ms)
}

/// Most messages in flight at once before a run counts as a storm: 200 per link plus 10,000.
/// A link carries at most one batch of block requests (64) and their answers, catch-up and
/// keepalives at a time; a catch-up loop that duplication amplifies passes this in seconds.
pub fn in_flight_cap(links: usize) -> u64 {
    200 * links as u64 + 10_000
}

/// Most messages a run may send in all: per link, 40 per mined block, 10 per simulated minute
/// (keepalives, probes, catch-up) and 2 per item, plus 100. Honest runs stay far below.
pub fn traffic_cap(links: usize, blocks: u64, minutes: u64, items: u64) -> u64 {
    links as u64 * (40 * blocks + 10 * minutes + 2 * items + 100)
}

/// Runs campaign seed `seed`: the safety phase, the heal, the liveness phase, and every check.
pub fn run(seed: u64) -> Outcome {
    let cfg = scenario(seed);
    let command = cfg.command_line();
    let blocks = cfg.blocks;
    let interval = cfg.block_interval().0;
    let last_fault = cfg
        .partitions
        .iter()
        .flat_map(|p| [Some(p.at), p.heal])
        .chain(cfg.crashes.iter().flat_map(|c| [Some(c.at), c.restart]))
        .flatten()
        .max()
        .unwrap_or(Millis::ZERO);
    let mut sim = match Sim::new(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            // The generator only draws valid settings: a refusal is a bug in one of the two.
            return Outcome {
                seed,
                scenario: command,
                peers: cfg.peers,
                links: 0,
                diameter: 0,
                events: 0,
                messages: 0,
                blocks_mined: 0,
                sim_time_ms: 0,
                heal_at_ms: 0,
                liveness_bound_ms: 0,
                live_after_ms: None,
                items_submitted: 0,
                items_lost_to_crashes: 0,
                failures: vec![Failure {
                    kind: FailureKind::Safety,
                    detail: format!("the drawn scenario was refused: {e}"),
                }],
            };
        }
    };
    let n = sim.peer_count();
    // With discovery each peer may hold up to `max_outbound` connections of its own beyond the
    // topology's links: the caps count those too (a fixed number, so they do not loosen as
    // peers dial more addresses). The configured topology's diameter stays an upper bound.
    let links = sim.edges().len()
        + if cfg.discovery {
            n as usize * sim.peer_config().max_outbound
        } else {
            0
        };
    let diam = diameter(n, sim.edges());
    let mut failures = Vec::new();
    let storm = |s: &Sim| s.in_flight() > in_flight_cap(links);

    // Safety phase: every block mined (or a generous time passed) and every fault fired.
    let safety_end = Millis(
        (blocks * interval)
            .saturating_mul(8)
            .max(last_fault.0)
            .saturating_add(3_600_000),
    );
    sim.run_until(safety_end, |s| {
        storm(s) || (s.mined() >= blocks && s.scheduled_pending() == 0)
    });

    // Heal: partitions end, crashed peers restart; loss, duplication and reordering stay.
    let heal_at = sim.now();
    // Data already queued on an uplink must leave before the network can agree.
    let backlog = (0..n)
        .map(|i| sim.upload_backlog(i))
        .max()
        .unwrap_or(Millis::ZERO);
    let max_degree = degrees(n, sim.edges()).into_iter().max().unwrap_or(0);
    let bound = liveness_bound(&cfg, diam.unwrap_or(n), max_degree)
        .add(backlog)
        .add(catch_up_upload(&sim));
    let mut live_after = None;
    let mut lost_to_crashes = 0;
    if !storm(&sim) {
        sim.heal();
        for i in 0..n {
            if sim.peer(i).is_none() {
                let _ = sim.restart(i);
            }
        }
        sim.set_liveness_mining(true);
        let submitted: BTreeSet<ItemId> = sim.submitted_items().iter().copied().collect();
        let required = surviving_items(&sim, &submitted);
        lost_to_crashes = (submitted.len() - required.len()) as u64;
        let deadline = heal_at.add(bound);
        let mut checked_tip: Option<BlockHash> = None;
        let mut live = false;
        sim.run_until(deadline, |s| {
            if storm(s) {
                return true;
            }
            if !s.converged() || s.online() != n {
                return false;
            }
            let Some(tip) = s.chain(0).map(|c| c.tip().hash()) else {
                return false;
            };
            if checked_tip == Some(tip) {
                return false;
            }
            checked_tip = Some(tip);
            let chain = s.chain(0);
            live = chain.is_some_and(|c| required.iter().all(|id| c.contains_item(id)));
            live
        });
        if live {
            live_after = Some(sim.now().since(heal_at).0);
        } else if !storm(&sim) {
            let tips = sim.tips().len();
            let missing = sim.chain(0).map_or(required.len(), |c| {
                required.iter().filter(|id| !c.contains_item(id)).count()
            });
            if tips > 1 || sim.online() != n {
                failures.push(Failure {
                    kind: FailureKind::Convergence,
                    detail: format!(
                        "{tips} distinct tips over {} online peers {} after the heal (bound {}; diameter {})",
                        sim.online(),
                        fmt_ms(sim.now().since(heal_at).0),
                        fmt_ms(bound.0),
                        diam.map_or("disconnected".to_string(), |d| d.to_string()),
                    ),
                });
            }
            if missing > 0 {
                failures.push(Failure {
                    kind: FailureKind::ItemsLost,
                    detail: format!(
                        "{missing} of {} surviving items missing from peer 0's chain {} after the heal",
                        required.len(),
                        fmt_ms(sim.now().since(heal_at).0),
                    ),
                });
            }
        }
    }
    if storm(&sim) {
        failures.push(Failure {
            kind: FailureKind::Storm,
            detail: format!(
                "{} messages in flight at {} (cap {})",
                sim.in_flight(),
                fmt_ms(sim.now().0),
                in_flight_cap(links),
            ),
        });
    }
    let m = sim.metrics();
    let messages: u64 = m.msgs.iter().sum();
    let minutes = sim.now().0 / 60_000 + 1;
    let traffic = traffic_cap(links, sim.mined(), minutes, submitted_len(&sim));
    if messages > traffic {
        failures.push(Failure {
            kind: FailureKind::Storm,
            detail: format!("{messages} messages sent, cap {traffic}"),
        });
    }
    if m.violation_count > 0 {
        failures.push(Failure {
            kind: FailureKind::Safety,
            detail: format!(
                "{} invariant violations, first: {}",
                m.violation_count,
                m.violations.first().cloned().unwrap_or_default()
            ),
        });
    }
    if let Some(dups) = duplicated_items(&sim) {
        failures.push(Failure {
            kind: FailureKind::Safety,
            detail: format!("{dups} items appear more than once in peer 0's chain"),
        });
    }
    Outcome {
        seed,
        scenario: command,
        peers: n,
        links,
        diameter: diam.unwrap_or(u32::MAX),
        events: sim.events(),
        messages,
        blocks_mined: sim.mined(),
        sim_time_ms: sim.now().0,
        heal_at_ms: heal_at.0,
        liveness_bound_ms: bound.0,
        live_after_ms: live_after,
        items_submitted: submitted_len(&sim),
        items_lost_to_crashes: lost_to_crashes,
        failures,
    }
}

fn submitted_len(sim: &Sim) -> u64 {
    sim.submitted_items().len() as u64
}

/// Submitted items some online peer still holds, pending or in any block of its tree.
fn surviving_items(sim: &Sim, submitted: &BTreeSet<ItemId>) -> BTreeSet<ItemId> {
    let mut held = BTreeSet::new();
    for i in 0..sim.peer_count() {
        let Some(p) = sim.peer(i) else { continue };
        held.extend(p.pending_items().map(|it| it.id()));
        for b in p.chain().blocks() {
            held.extend(b.item_ids());
        }
    }
    held.intersection(submitted).copied().collect()
}

/// Items that occur more than once in peer 0's best chain (`None` if none do).
fn duplicated_items(sim: &Sim) -> Option<usize> {
    let chain = sim.chain(0)?;
    let mut seen: BTreeMap<ItemId, u32> = BTreeMap::new();
    for b in chain.best_chain() {
        for id in b.item_ids() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let dups = seen.values().filter(|&&c| c > 1).count();
    (dups > 0).then_some(dups)
}

/// Totals of a campaign.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// First seed, and one past the last seed that ran.
    pub seeds_from: u64,
    pub seeds_to: u64,
    pub runs: u64,
    pub passed: u64,
    pub failed: u64,
    /// Failed checks by kind (a run may fail more than one).
    pub failures_by_kind: BTreeMap<&'static str, u64>,
    pub events: u64,
    pub messages: u64,
    pub sim_time_ms: u64,
    /// Slowest heal-to-live time among passing runs, its seed, and its share of the bound.
    pub slowest_live_after_ms: u64,
    pub slowest_live_seed: Option<u64>,
    pub slowest_live_bound_share: f64,
    /// Items that did not survive because every peer holding them crashed.
    pub items_lost_to_crashes: u64,
    /// Whether the time budget stopped the campaign before its last seed.
    pub budget_exhausted: bool,
    pub failing: Vec<Outcome>,
    pub wall_ms: u64,
    pub jobs: usize,
}

/// Runs seeds `seeds` on `jobs` threads (each run single-threaded and independent), calling
/// `done` for each outcome as it finishes. With a `budget`, no new seed starts once it is spent;
/// the seeds that ran are always a prefix of the range, so a summary names them exactly.
pub fn campaign(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    budget: Option<std::time::Duration>,
    done: &(dyn Fn(&Outcome) + Sync),
) -> Summary {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;
    let started = std::time::Instant::now();
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if budget.is_some_and(|b| started.elapsed() >= b) {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                let outcome = run(seed);
                done(&outcome);
                if let Ok(mut r) = results.lock() {
                    r.push(outcome);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().unwrap_or_default();
    outcomes.sort_by_key(|o| o.seed);
    // Keep the contiguous prefix that ran, so "seeds A..B all passed" is exact.
    let mut end = seeds.start;
    for o in &outcomes {
        if o.seed != end {
            break;
        }
        end += 1;
    }
    outcomes.retain(|o| o.seed < end);
    let mut s = Summary {
        seeds_from: seeds.start,
        seeds_to: end,
        runs: outcomes.len() as u64,
        passed: 0,
        failed: 0,
        failures_by_kind: BTreeMap::new(),
        events: 0,
        messages: 0,
        sim_time_ms: 0,
        slowest_live_after_ms: 0,
        slowest_live_seed: None,
        slowest_live_bound_share: 0.0,
        items_lost_to_crashes: 0,
        budget_exhausted: end < seeds.end,
        failing: Vec::new(),
        wall_ms: started.elapsed().as_millis() as u64,
        jobs,
    };
    for o in outcomes {
        s.events += o.events;
        s.messages += o.messages;
        s.sim_time_ms += o.sim_time_ms;
        s.items_lost_to_crashes += o.items_lost_to_crashes;
        if o.ok() {
            s.passed += 1;
            if let Some(t) = o.live_after_ms {
                let share = t as f64 / o.liveness_bound_ms.max(1) as f64;
                if share > s.slowest_live_bound_share {
                    s.slowest_live_bound_share = share;
                    s.slowest_live_after_ms = t;
                    s.slowest_live_seed = Some(o.seed);
                }
            }
        } else {
            s.failed += 1;
            let kinds: BTreeSet<FailureKind> = o.failures.iter().map(|f| f.kind).collect();
            for k in kinds {
                *s.failures_by_kind.entry(k.label()).or_default() += 1;
            }
            s.failing.push(o);
        }
    }
    s
}
