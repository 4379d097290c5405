//! `regions.svg`: per region of the receiving peer, the CDF of the delay from mining until a
//! peer of that region accepted a block (every block, every peer but its miner). One curve
//! per region that holds peers; a run without a preset has one region, "all peers".

use super::axis::{Axis, Quantity};
use super::{heading, percent_axis, Frame, DASHES, PALETTE};
use crate::chart::{Pen, Svg};
use crate::report::Report;
use std::fmt::Write as _;

/// The chart as an SVG document.
pub(super) fn svg(r: &Report) -> String {
    let (w, h, ml, mr, mt, mb) = (800.0, 470.0, 72.0, 210.0, 58.0, 58.0);
    let regions = &r.chart.regions;
    // The axis spans the regions' 5% points to their largest delays; a log axis starts at
    // their lowest 1% point.
    let at = |q: f64| {
        regions
            .iter()
            .filter_map(|g| g.cdf.iter().find(|x| x.1 >= q).map(|x| x.0))
            .filter(|&d| d > 0)
            .min()
    };
    let max = regions
        .iter()
        .filter_map(|g| g.cdf.last().map(|x| x.0))
        .max()
        .unwrap_or(1000) as f64;
    let floor = at(0.01).map_or(f64::INFINITY, |d| d as f64);
    let f = Frame {
        x: ml,
        y: mt,
        w: w - ml - mr,
        h: h - mt - mb,
        xa: Axis::auto(at(0.05).map(|d| d as f64), floor, max, Quantity::Millis),
        ya: percent_axis(),
    };
    let mut svg = Svg::new(w, h);
    heading(
        &mut svg,
        w,
        &format!("Propagation by region: {}", r.chart_setting()),
        "CDF of the delay until a peer of the region accepted a block (every block, peer pair)",
    );
    f.draw(
        &mut svg,
        &f.xa.title("delay after mining"),
        &f.ya.title("fraction of (block, peer) pairs"),
    );
    let (lx, len) = (f.x + f.w + 14.0, 26.0);
    for (i, g) in regions.iter().enumerate() {
        let pen = Pen {
            color: PALETTE[i % PALETTE.len()],
            width: 2.0,
            dash: DASHES[i % DASHES.len()],
        };
        let y = f.y + 14.0 + 38.0 * i as f64;
        svg.legend_pen(lx, y, len, pen, &g.name);
        let note = format!("{} peers, {} pairs", g.peers, g.samples);
        svg.text(lx + len + 6.0, y + 16.0, "start", 10, "#555", &note);
        if g.cdf.is_empty() {
            continue;
        }
        let mut pts = format!("{:.1},{:.1}", f.px(0.0), f.py(0.0));
        let mut prev = 0.0;
        for &(d, frac) in &g.cdf {
            let x = f.px(d as f64);
            let _ = write!(pts, " {x:.1},{:.1} {x:.1},{:.1}", f.py(prev), f.py(frac));
            prev = frac;
        }
        let _ = write!(pts, " {:.1},{:.1}", f.x + f.w, f.py(prev));
        svg.path(&pts, pen);
    }
    svg.finish()
}
