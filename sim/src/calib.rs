//! Calibration against real nodes: the simulator's side of a scenario that also ran on the
//! testbed (`rantai-node testbed`), in the same [`CalibReport`] form, and the side-by-side
//! comparison `rantai-sim --compare testbed-report.json` prints and draws.

use crate::chart::{Stroke, Svg, F1};
use crate::net::KIND_NAMES;
use crate::{Sim, SimConfig};
use rantai_core::calib::{CalibBlock, CalibReport, KindCount};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The tolerance of the small-block target: a simulated value agrees with the testbed's when
/// within this share or [`ABS_TOLERANCE_MS`] of it.
pub const REL_TOLERANCE: f64 = 0.05;
/// See [`REL_TOLERANCE`].
pub const ABS_TOLERANCE_MS: f64 = 5.0;

/// The finished run's calibration report: its scheduled blocks in schedule order (those a
/// crash skipped, and those the run ended before, are left out or reach nobody).
pub fn sim_report(sim: &Sim) -> CalibReport {
    let m = sim.metrics();
    let schedule = sim.config().schedule.iter().flat_map(|s| s.blocks.iter());
    let blocks = schedule
        .zip(&m.scheduled)
        .map(|(s, mined)| {
            let rec = mined.and_then(|h| m.blocks.iter().find(|b| b.hash == h));
            CalibBlock {
                miner: s.node,
                bytes: s.bytes,
                hash: rec.map(|b| b.hash.to_string()).unwrap_or_default(),
                // A skipped block (its peer was down) reached nobody.
                arrival_ms: rec.map_or_else(
                    || vec![None; sim.peer_count() as usize],
                    |b| b.arrivals.clone(),
                ),
                ..CalibBlock::default()
            }
            .with_marks()
        })
        .collect();
    let messages = KIND_NAMES
        .iter()
        .enumerate()
        .filter(|&(k, _)| m.msgs[k] > 0)
        .map(|(k, name)| {
            let c = KindCount {
                count: m.msgs[k],
                bytes: m.bytes[k],
            };
            (name.to_string(), c)
        })
        .collect();
    let best: Vec<rantai_core::BlockHash> = sim
        .majority_tip()
        .and_then(|(_, node)| sim.chain(node))
        .map(|c| c.best_chain().map(|b| b.hash()).collect())
        .unwrap_or_default();
    let stale = m.blocks.iter().filter(|b| !best.contains(&b.hash)).count() as u64;
    CalibReport {
        source: "sim".into(),
        nodes: sim.peer_count(),
        relay: sim.config().relay().as_str().into(),
        blocks,
        messages,
        stale,
    }
}

/// What [`generate_links`] draws: a `random:degree` topology over `peers`, each link's
/// latency uniform in `latency_ms`, and optionally each peer's up and down rates uniform in
/// `rate_bps` (drawn separately).
#[derive(Debug, Clone, PartialEq)]
pub struct LinksPlan {
    pub peers: u32,
    pub degree: u32,
    pub latency_ms: (u64, u64),
    pub rate_bps: Option<(u64, u64)>,
    pub seed: u64,
}

/// A links file for a calibration scenario, drawn from the seed (the simulator's own random
/// topology; latencies from stream `calib-latency`, rates from `calib-rate`).
pub fn generate_links(plan: &LinksPlan) -> String {
    use rand::Rng;
    let cfg = SimConfig {
        peers: plan.peers,
        seed: plan.seed,
        preset: None,
        topology: crate::config::Topology::Random {
            k: Some(plan.degree),
        },
        ..SimConfig::default()
    };
    let edges = crate::net::build_topology(&cfg);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} peers, random:{} topology, latency {}..{} ms, seed {} (rantai-sim links)",
        plan.peers, plan.degree, plan.latency_ms.0, plan.latency_ms.1, plan.seed
    );
    if let Some((lo, hi)) = plan.rate_bps {
        let mut rng = crate::rng::stream(plan.seed, "calib-rate", 0);
        for i in 0..plan.peers {
            // Whole kbit/s where that loses nothing the parser could read back.
            let rate = |bps: u64| match bps {
                0..1000 => format!("{bps}bit"),
                _ => format!("{}kbit", bps / 1000),
            };
            let (up, down) = (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi));
            let _ = writeln!(s, "node {i} up {} down {}", rate(up), rate(down));
        }
    }
    let mut rng = crate::rng::stream(plan.seed, "calib-latency", 0);
    for (a, b) in edges {
        let lat = rng.gen_range(plan.latency_ms.0..=plan.latency_ms.1);
        let _ = writeln!(s, "{a} {b} {lat}ms");
    }
    s
}

/// Every (block, node) delay except the miner's own, sorted.
pub fn pair_delays(r: &CalibReport) -> Vec<u64> {
    let mut d: Vec<u64> = r
        .blocks
        .iter()
        .flat_map(|b| {
            b.arrival_ms
                .iter()
                .enumerate()
                .filter(move |&(j, _)| j as u32 != b.miner)
                .filter_map(|(_, t)| *t)
        })
        .collect();
    d.sort_unstable();
    d
}

/// The `q` quantile (nearest rank) of sorted samples.
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// One compared value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub what: String,
    pub testbed: Option<f64>,
    pub sim: Option<f64>,
    /// Delays are judged against [`REL_TOLERANCE`] or [`ABS_TOLERANCE_MS`]; counts must match.
    pub delay: bool,
}

impl Row {
    /// `(sim - testbed) / testbed`.
    pub fn rel_error(&self) -> Option<f64> {
        match (self.testbed, self.sim) {
            (Some(t), Some(s)) if t != 0.0 => Some((s - t) / t),
            _ => None,
        }
    }

    /// Whether the two agree within the target.
    pub fn agrees(&self) -> bool {
        match (self.testbed, self.sim) {
            (Some(t), Some(s)) if self.delay => {
                (s - t).abs() <= ABS_TOLERANCE_MS.max(REL_TOLERANCE * t.abs())
            }
            (Some(t), Some(s)) => t == s,
            (None, None) => true,
            _ => false,
        }
    }
}

/// The rows of the comparison: per block t50/t90/t100, the (block, node) delay median, p90
/// and mean, then frames and bytes per message kind and stale blocks.
pub fn compare(tb: &CalibReport, sim: &CalibReport) -> Vec<Row> {
    let ms = |v: Option<u64>| v.map(|v| v as f64);
    let mut rows = Vec::new();
    for (k, (a, b)) in tb.blocks.iter().zip(&sim.blocks).enumerate() {
        for (name, x, y) in [
            ("t50", a.t50, b.t50),
            ("t90", a.t90, b.t90),
            ("t100", a.t100, b.t100),
        ] {
            rows.push(Row {
                what: format!("block {k} {name} ms"),
                testbed: ms(x),
                sim: ms(y),
                delay: true,
            });
        }
    }
    let (dt, ds) = (pair_delays(tb), pair_delays(sim));
    let mean = |d: &[u64]| (!d.is_empty()).then(|| d.iter().sum::<u64>() as f64 / d.len() as f64);
    for (name, x, y) in [
        (
            "pairs median ms",
            ms(quantile(&dt, 0.5)),
            ms(quantile(&ds, 0.5)),
        ),
        (
            "pairs p90 ms",
            ms(quantile(&dt, 0.9)),
            ms(quantile(&ds, 0.9)),
        ),
        ("pairs mean ms", mean(&dt), mean(&ds)),
    ] {
        rows.push(Row {
            what: name.into(),
            testbed: x,
            sim: y,
            delay: true,
        });
    }
    let kinds: std::collections::BTreeSet<&String> =
        tb.messages.keys().chain(sim.messages.keys()).collect();
    let get = |m: &BTreeMap<String, KindCount>, k: &str| m.get(k).copied().unwrap_or_default();
    for k in kinds {
        let (a, b) = (get(&tb.messages, k), get(&sim.messages, k));
        rows.push(Row {
            what: format!("{k} messages"),
            testbed: Some(a.count as f64),
            sim: Some(b.count as f64),
            delay: false,
        });
        rows.push(Row {
            what: format!("{k} bytes"),
            testbed: Some(a.bytes as f64),
            sim: Some(b.bytes as f64),
            delay: false,
        });
    }
    rows.push(Row {
        what: "stale blocks".into(),
        testbed: Some(tb.stale as f64),
        sim: Some(sim.stale as f64),
        delay: false,
    });
    rows
}

/// The comparison as a table.
pub fn table(tb: &CalibReport, sim: &CalibReport, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "calibration: {} nodes, {} blocks, relay {} (testbed) / {} (sim)",
        tb.nodes,
        tb.blocks.len(),
        tb.relay,
        sim.relay
    );
    let _ = writeln!(
        s,
        "  {:<28} {:>12} {:>12} {:>9}  agrees",
        "", "testbed", "sim", "error"
    );
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for r in rows {
        let err = r
            .rel_error()
            .map_or("-".to_string(), |e| format!("{:+.1}%", e * 100.0));
        let _ = writeln!(
            s,
            "  {:<28} {:>12} {:>12} {:>9}  {}",
            r.what,
            fmt(r.testbed),
            fmt(r.sim),
            err,
            if r.agrees() { "yes" } else { "NO" }
        );
    }
    let agree = rows.iter().filter(|r| r.agrees()).count();
    let _ = writeln!(
        s,
        "  {agree} of {} rows agree (delays within {:.0}% or {ABS_TOLERANCE_MS} ms; counts exactly)",
        rows.len(),
        REL_TOLERANCE * 100.0
    );
    s
}

/// Both (block, node) delay CDFs on one chart.
pub fn cdf_svg(tb: &CalibReport, sim: &CalibReport) -> String {
    let (dt, ds) = (pair_delays(tb), pair_delays(sim));
    let (w, h) = (720.0, 420.0);
    let (x0, y0, pw, ph) = (70.0, 40.0, 600.0, 300.0);
    let largest = dt.iter().chain(&ds).copied().max().unwrap_or(1).max(1) as f64;
    let step = crate::chart::round_step(largest / 5.0);
    let ticks = (largest / step).ceil().max(1.0) as usize;
    let xmax = step * ticks as f64;
    let mut svg = Svg::new(w, h);
    svg.title(
        F1(x0 + pw / 2.0),
        24,
        &format!(
            "(block, node) delays: {} nodes, {} blocks, relay {}",
            tb.nodes,
            tb.blocks.len(),
            tb.relay
        ),
    );
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        svg.hgrid(
            x0,
            x0 + pw,
            y0 + (1.0 - v) * ph,
            format_args!("{:.0}%", v * 100.0),
        );
    }
    for i in 0..=ticks {
        let t = step * i as f64;
        svg.vgrid(x0 + t / xmax * pw, y0, y0 + ph, format_args!("{t:.0}"));
    }
    svg.frame(x0, y0, pw, ph);
    svg.text_middle(x0 + pw / 2.0, y0 + ph + 36.0, "delay after the miner (ms)");
    svg.ylabel(F1(x0 - 50.0), y0 + ph / 2.0, "share of (block, node) pairs");
    for (d, color, dashed) in [(&dt, "#1f77b4", false), (&ds, "#d62728", true)] {
        let n = d.len().max(1) as f64;
        let mut pts = vec![format!("{x0:.1},{:.1}", y0 + ph)];
        for (i, &v) in d.iter().enumerate() {
            let x = x0 + v as f64 / xmax * pw;
            pts.push(format!("{x:.1},{:.1}", y0 + (1.0 - i as f64 / n) * ph));
            pts.push(format!(
                "{x:.1},{:.1}",
                y0 + (1.0 - (i + 1) as f64 / n) * ph
            ));
        }
        svg.polyline(&pts.join(" "), Stroke { color, dashed });
    }
    let stroke = |color, dashed| Stroke { color, dashed };
    svg.legend(
        x0 + 10.0,
        y0 + ph + 56.0,
        30.0,
        stroke("#1f77b4", false),
        "testbed (real nodes)",
        None,
    );
    svg.legend(
        x0 + 260.0,
        y0 + ph + 56.0,
        30.0,
        stroke("#d62728", true),
        "simulator",
        None,
    );
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(arrivals: &[&[Option<u64>]]) -> CalibReport {
        CalibReport {
            source: "x".into(),
            nodes: arrivals[0].len() as u32,
            relay: "announce".into(),
            blocks: arrivals
                .iter()
                .map(|a| {
                    CalibBlock {
                        arrival_ms: a.to_vec(),
                        ..CalibBlock::default()
                    }
                    .with_marks()
                })
                .collect(),
            ..CalibReport::default()
        }
    }

    #[test]
    fn rows_judge_delays_by_tolerance_and_counts_exactly() {
        let tb = report(&[&[Some(0), Some(100), Some(200), Some(300)]]);
        let close = report(&[&[Some(0), Some(104), Some(207), Some(314)]]);
        let far = report(&[&[Some(0), Some(120), Some(260), Some(300)]]);
        assert_eq!(
            pair_delays(&tb),
            vec![100, 200, 300],
            "the miner's own 0 left out"
        );
        let rows = compare(&tb, &close);
        assert!(rows.iter().all(Row::agrees), "{rows:?}");
        let rows = compare(&tb, &far);
        let t50 = rows
            .iter()
            .find(|r| r.what == "block 0 t50 ms")
            .expect("row");
        assert_eq!((t50.testbed, t50.sim), (Some(100.0), Some(120.0)));
        assert!(!t50.agrees());
        assert!((t50.rel_error().expect("error") - 0.2).abs() < 1e-9);
        let mut counted = tb.clone();
        counted.messages.insert(
            "inv".into(),
            KindCount {
                count: 3,
                bytes: 90,
            },
        );
        let rows = compare(&counted, &tb);
        let inv = rows.iter().find(|r| r.what == "inv messages").expect("row");
        assert!(!inv.agrees(), "a missing kind is a difference");
        let text = table(&counted, &tb, &rows);
        assert!(text.contains("inv messages"), "{text}");
    }

    #[test]
    fn generated_links_parse_with_the_plan_s_ranges() {
        let plan = LinksPlan {
            peers: 20,
            degree: 4,
            latency_ms: (20, 150),
            rate_bps: Some((10_000_000, 50_000_000)),
            seed: 3,
        };
        let text = generate_links(&plan);
        assert_eq!(text, generate_links(&plan), "deterministic");
        let l = rantai_core::calib::Links::parse(&text).expect("parses");
        assert_eq!(l.nodes, 20);
        assert!(l.links.len() >= 20 * 4 / 2, "{} links", l.links.len());
        assert!(l.links.iter().all(|k| (20..=150).contains(&k.latency_ms)));
        assert!(l.access.iter().all(|a| {
            [a.up_bps, a.down_bps]
                .iter()
                .all(|r| r.is_some_and(|r| (10_000_000..=50_000_000).contains(&r)))
        }));
    }

    #[test]
    fn the_chart_has_both_curves_and_is_deterministic() {
        let tb = report(&[&[Some(0), Some(100), Some(200)]]);
        let sim = report(&[&[Some(0), Some(90), Some(210)]]);
        let a = cdf_svg(&tb, &sim);
        assert_eq!(a, cdf_svg(&tb, &sim));
        assert_eq!(a.matches("<polyline").count(), 2);
        assert!(a.contains("testbed (real nodes)") && a.contains("simulator"));
    }
}
