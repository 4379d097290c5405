//! The charts a run writes with `--out`: `propagation.svg` (the CDF across blocks of the
//! time to reach 50%, 90% and 100% of peers), `regions.svg` (the delay CDF per receiving
//! peer's region), `traffic.svg` (messages and bytes per block by kind) and `tips.svg`
//! (distinct tips over time, with partitions, heals, crashes and restarts marked).
//!
//! Contract: a chart is a pure function of its [`Report`] (same report, same bytes) and
//! needs no font beyond the viewer's `sans-serif`. What the charts need beyond the report's
//! keys is recorded while the run goes ([`record`], without touching the simulation) and kept
//! in [`ChartData`], which is not serialized.

pub mod axis;
mod propagation;
pub mod record;
mod regions;
mod tips;
mod traffic;

use crate::chart::{Svg, F1};
use crate::config::SimConfig;
use crate::metrics::Metrics;
use crate::report::Report;
use crate::units::fmt_bytes;
use axis::Axis;
use rantai_core::Chain;
use record::{Mark, TipSeries};

/// Line colours, told apart also by colour-blind readers (Okabe-Ito).
pub(crate) const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#999999", "#000000",
];
/// Dash patterns paired with [`PALETTE`], so curves that coincide stay visible.
pub(crate) const DASHES: [&str; 8] = ["", "7,3", "2,2", "9,3,2,3", "4,4", "1,3", "12,4", "6,2"];
/// The colour of stale blocks wherever they are marked.
pub(crate) const STALE: &str = "#d62728";

/// Chart-only data of a run that the report's keys do not hold (not serialized).
#[derive(Debug, Clone, Default)]
pub struct ChartData {
    /// Per mined block (the order of `per_block`): off the final majority's best chain.
    pub stale: Vec<bool>,
    /// Per mined block: when it was mined, in ms.
    pub mined_at_ms: Vec<u64>,
    /// Delay CDF per region that holds peers, in region order.
    pub regions: Vec<RegionCdf>,
    /// Distinct tips of the online peers over time.
    pub tips: TipSeries,
    /// Partitions, heals, crashes and restarts, with the time (ms) they took effect.
    pub marks: Vec<(u64, Mark)>,
}

/// The (block, peer) delays of the peers of one region.
#[derive(Debug, Clone)]
pub struct RegionCdf {
    pub name: String,
    pub peers: u32,
    pub samples: u64,
    /// `(delay_ms, fraction of the region's delays <= delay_ms)`.
    pub cdf: Vec<(u64, f64)>,
}

impl ChartData {
    /// Reads the chart data off a finished run; `best` is the majority's chain (none: every
    /// block is stale, as in the report's `blocks.stale`).
    pub fn of(cfg: &SimConfig, m: &Metrics, best: Option<&Chain>) -> ChartData {
        let peers = m.charts.region_peers();
        let regions = m
            .charts
            .region_delays
            .iter()
            .enumerate()
            .filter(|(r, _)| peers[*r] > 0)
            .map(|(r, h)| RegionCdf {
                name: match cfg.preset {
                    Some(_) => crate::presets::REGIONS
                        .get(r)
                        .map_or(format!("region {r}"), |n| n.replace('_', " ")),
                    None => "all peers".into(),
                },
                peers: peers[r],
                samples: h.count(),
                cdf: h.cdf(),
            })
            .collect();
        ChartData {
            stale: m
                .blocks
                .iter()
                .map(|b| best.is_none_or(|c| !c.in_best_chain(&b.hash)))
                .collect(),
            mined_at_ms: m.blocks.iter().map(|b| b.mined_at.0).collect(),
            regions,
            tips: m.charts.tips.clone(),
            marks: m.charts.marks.clone(),
        }
    }
}

impl Report {
    /// Every chart of the run as (file name, SVG text), in the order `--out` writes them.
    pub fn charts(&self) -> Vec<(&'static str, String)> {
        vec![
            ("propagation.svg", propagation::svg(self)),
            ("regions.svg", regions::svg(self)),
            ("traffic.svg", traffic::svg(self)),
            ("tips.svg", tips::svg(self)),
        ]
    }

    /// The run in a few words for a chart's title: peers, preset, relay, block size, seed.
    pub(crate) fn chart_setting(&self) -> String {
        let sc = &self.scenario;
        format!(
            "{} peers, preset {}, relay {}, {} blocks, seed {}",
            sc.peers,
            sc.preset,
            sc.relay,
            fmt_bytes(sc.block_size_bytes),
            self.seed
        )
    }
}

/// A plot area and its two axes.
pub(crate) struct Frame {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub xa: Axis,
    pub ya: Axis,
}

impl Frame {
    /// Pixel column of value `v` on the x axis.
    pub fn px(&self, v: f64) -> f64 {
        self.x + self.xa.pos(v) * self.w
    }

    /// Pixel row of value `v` on the y axis.
    pub fn py(&self, v: f64) -> f64 {
        self.y + (1.0 - self.ya.pos(v)) * self.h
    }

    /// Grid lines with their tick labels, the border, and both axis titles.
    pub fn draw(&self, svg: &mut Svg, xtitle: &str, ytitle: &str) {
        for &t in &self.ya.ticks {
            svg.hgrid(self.x, self.x + self.w, self.py(t), self.ya.label(t));
        }
        for &t in &self.xa.ticks {
            svg.vgrid(self.px(t), self.y, self.y + self.h, self.xa.label(t));
        }
        svg.frame(self.x, self.y, self.w, self.h);
        svg.text_middle(self.x + self.w / 2.0, self.y + self.h + 38.0, xtitle);
        svg.ylabel(F1(self.x - 46.0), self.y + self.h / 2.0, ytitle);
    }
}

/// The title (14 px) and a grey subtitle line (11 px) over a chart `w` wide.
pub(crate) fn heading(svg: &mut Svg, w: f64, title: &str, subtitle: &str) {
    svg.text(w / 2.0, 20.0, "middle", 14, "black", title);
    svg.text(w / 2.0, 37.0, "middle", 11, "#555", subtitle);
}

/// A fraction axis, 0 to 100% in steps of 20%, reaching a little past both ends so the
/// curves' runs along 0% and 100% are not hidden by the frame.
pub(crate) fn percent_axis() -> Axis {
    Axis {
        scale: axis::Scale::Linear,
        lo: -0.025,
        hi: 1.025,
        ticks: (0..=5).map(|i| f64::from(i) / 5.0).collect(),
        unit: ("%", 0.01),
    }
}

#[cfg(test)]
mod tests;
