//! `propagation.svg`: the CDF across blocks of the delay until 50%, 90% and 100% of peers had
//! each block, and (dashed) the CDF over every (block, peer) pair. Stale blocks are ringed
//! in red on the curves; the time axis turns logarithmic when one slow block would squash
//! the rest (see [`super::axis::LOG_RATIO`]).

use super::axis::{Axis, Quantity};
use super::{heading, percent_axis, Frame, DASHES, PALETTE, STALE};
use crate::chart::{Pen, Svg};
use crate::report::Report;
use std::fmt::Write as _;

/// The three per-block marks: label, colour, width and dash. Widths fall from first to last,
/// so a curve drawn over an identical one leaves the wider one showing at its sides.
const SERIES: [(&str, usize, f64); 3] = [
    ("50% of peers", 0, 6.0),
    ("90% of peers", 1, 3.5),
    ("100% of peers", 2, 2.0),
];

/// The chart as an SVG document.
pub(super) fn svg(r: &Report) -> String {
    let (w, h, ml, mr, mt, mb) = (800.0, 470.0, 72.0, 210.0, 58.0, 58.0);
    let marks: [Vec<(u64, bool)>; 3] = [0, 1, 2].map(|k| {
        let mut v: Vec<(u64, bool)> = r
            .per_block
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let d = [m.0, m.1, m.2][k]?;
                Some((d, r.chart.stale.get(i).copied().unwrap_or(false)))
            })
            .collect();
        v.sort_unstable();
        v
    });
    let all = marks.iter().flatten().map(|x| x.0);
    let min_pos = all.clone().filter(|&d| d > 0).min().map(|d| d as f64);
    let max = all
        .chain(r.all_cdf.last().map(|x| x.0))
        .max()
        .unwrap_or(1000) as f64;
    // A log axis may start below the marks so the (block, peer) curve shows its lowest 1%.
    let floor = r
        .all_cdf
        .iter()
        .find(|x| x.1 >= 0.01)
        .map_or(f64::INFINITY, |x| x.0.max(1) as f64);
    let f = Frame {
        x: ml,
        y: mt,
        w: w - ml - mr,
        h: h - mt - mb,
        xa: Axis::auto(min_pos, floor, max, Quantity::Millis),
        ya: percent_axis(),
    };
    let n = r.per_block.len().max(1) as f64;
    let stale_n = r.chart.stale.iter().filter(|&&s| s).count();
    let mut svg = Svg::new(w, h);
    heading(
        &mut svg,
        w,
        &format!("Block propagation: {}", r.chart_setting()),
        &format!(
            "CDF across {} blocks ({} stale) of the delay until 50%, 90% and 100% of peers had each",
            r.per_block.len(),
            stale_n
        ),
    );
    f.draw(
        &mut svg,
        &f.xa.title("delay after mining"),
        &f.ya.title("fraction of blocks"),
    );
    let left = f.px(0.0);
    if !r.all_cdf.is_empty() {
        let mut pts = format!("{left:.1},{:.1}", f.py(0.0));
        let mut prev = 0.0;
        for &(d, frac) in &r.all_cdf {
            let x = f.px(d as f64);
            let _ = write!(pts, " {x:.1},{:.1} {x:.1},{:.1}", f.py(prev), f.py(frac));
            prev = frac;
        }
        svg.path(&pts, all_pairs_pen());
    }
    let mut rings = Vec::new();
    for (v, &(_, k, width)) in marks.iter().zip(&SERIES) {
        let mut pts = format!("{left:.1},{:.1}", f.py(0.0));
        for (i, &(d, stale)) in v.iter().enumerate() {
            let x = f.px(d as f64);
            let (y0, y1) = (f.py(i as f64 / n), f.py((i + 1) as f64 / n));
            let _ = write!(pts, " {x:.1},{y0:.1} {x:.1},{y1:.1}");
            if stale {
                rings.push((x, y1));
            }
        }
        let _ = write!(pts, " {:.1},{:.1}", f.x + f.w, f.py(v.len() as f64 / n));
        svg.path(&pts, pen(k, width));
    }
    // Rings go on top of every curve.
    for (x, y) in rings {
        svg.ring(x, y, 4.0, STALE);
    }
    let (lx, len) = (f.x + f.w + 14.0, 26.0);
    let mut y = f.y + 14.0;
    for &(label, k, width) in &SERIES {
        svg.legend_pen(lx, y, len, pen(k, width), label);
        y += 22.0;
    }
    svg.legend_pen(lx, y, len, all_pairs_pen(), "each (block, peer)");
    svg.text(
        lx + len + 6.0,
        y + 16.0,
        "start",
        10,
        "#555",
        "fraction of pairs",
    );
    y += 40.0;
    svg.ring(lx + len / 2.0, y, 4.0, STALE);
    svg.text(lx + len + 6.0, y + 4.0, "start", 12, "black", "stale block");
    svg.text(
        lx + len + 6.0,
        y + 20.0,
        "start",
        10,
        "#555",
        &format!("{stale_n} of {} blocks", r.per_block.len()),
    );
    let never = r.per_block.iter().filter(|m| m.0.is_none()).count();
    if never > 0 {
        svg.text(
            lx + len + 6.0,
            y + 34.0,
            "start",
            10,
            "#555",
            &format!("{never} never reached 50%"),
        );
    }
    svg.finish()
}

fn pen(k: usize, width: f64) -> Pen<'static> {
    Pen {
        color: PALETTE[k],
        width,
        dash: DASHES[k],
    }
}

fn all_pairs_pen() -> Pen<'static> {
    Pen {
        color: "#555555",
        width: 1.5,
        dash: "5,3",
    }
}
