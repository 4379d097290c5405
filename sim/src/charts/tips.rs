//! `tips.svg`: how many distinct best tips the online peers held over the run (the most within
//! each time bucket of the recorded series), with partitions shaded from start to heal, heals,
//! crashes and restarts as vertical lines, and each mined block as a tick along the top (red:
//! stale).

use super::axis::{Axis, Quantity};
use super::record::Mark;
use super::{heading, Frame, PALETTE, STALE};
use crate::chart::{Pen, Svg};
use crate::report::Report;
use crate::units::fmt_ms;
use std::fmt::Write as _;

const PARTITION_FILL: &str = "#f4a582";
const HEAL: &str = "#1a9850";
const CRASH: &str = "#7f7f7f";

/// The chart as an SVG document.
pub(super) fn svg(r: &Report) -> String {
    let (w, h, ml, mr, mt, mb) = (800.0, 420.0, 72.0, 190.0, 58.0, 58.0);
    let series = &r.chart.tips;
    let end = r.engine.sim_time_ms.max(1) as f64;
    let top = series
        .buckets
        .iter()
        .map(|b| b.max)
        .chain([series.first, 2])
        .max()
        .unwrap_or(2);
    let f = Frame {
        x: ml,
        y: mt,
        w: w - ml - mr,
        h: h - mt - mb,
        xa: Axis::linear(0.0, end, true, Quantity::Millis),
        ya: Axis::count(f64::from(top)),
    };
    let mut svg = Svg::new(w, h);
    heading(
        &mut svg,
        w,
        &format!("Distinct tips over time: {}", r.chart_setting()),
        &format!(
            "best tips held by the online peers, the most within each {}; partitions {}, heals {}, crashes {}",
            fmt_ms(series.bucket_ms),
            r.faults.partitions,
            r.faults.heals,
            r.faults.crashes
        ),
    );
    // Partition bands first, under the grid's labels and the line.
    let marks = &r.chart.marks;
    for (i, &(t0, m)) in marks.iter().enumerate() {
        if let Mark::Partition(id) = m {
            let t1 = marks[i..]
                .iter()
                .find(|(_, x)| *x == Mark::Heal(id))
                .map_or(end, |x| x.0 as f64);
            let (x0, x1) = (f.px(t0 as f64), f.px(t1));
            svg.rect(x0, f.y, (x1 - x0).max(1.0), f.h, PARTITION_FILL, 0.35);
            let label = format!("partition {id}");
            svg.text(x0 + 3.0, f.y + 24.0, "start", 10, "#8c2d04", &label);
        }
    }
    f.draw(
        &mut svg,
        &f.xa.title("simulated time"),
        &f.ya.title("distinct tips"),
    );
    let (mut crashes, mut heals) = (false, false);
    for &(t, m) in marks {
        let x = f.px(t as f64);
        match m {
            Mark::Heal(_) => {
                heals = true;
                svg.line(x, f.y, x, f.y + f.h, heal_pen());
            }
            Mark::Crash(_) | Mark::Restart(_) => {
                crashes = true;
                svg.line(x, f.y + 10.0, x, f.y + f.h, crash_pen());
            }
            Mark::Partition(_) => {}
        }
    }
    // The step line: the count before the first bucket, then per bucket its peak for the
    // bucket's width and its closing count until the next bucket.
    let bw = series.bucket_ms as f64;
    let mut pts = format!("{:.1},{:.1}", f.px(0.0), f.py(f64::from(series.first)));
    let mut cur = series.first;
    for b in &series.buckets {
        let (x0, x1) = (f.px(b.at_ms as f64), f.px((b.at_ms as f64 + bw).min(end)));
        let _ = write!(
            pts,
            " {x0:.1},{:.1} {x0:.1},{:.1} {x1:.1},{:.1} {x1:.1},{:.1}",
            f.py(f64::from(cur)),
            f.py(f64::from(b.max)),
            f.py(f64::from(b.max)),
            f.py(f64::from(b.last)),
        );
        cur = b.last;
    }
    let _ = write!(pts, " {:.1},{:.1}", f.x + f.w, f.py(f64::from(cur)));
    svg.path(&pts, line_pen());
    // Mined blocks along the top edge.
    for (i, &t) in r.chart.mined_at_ms.iter().enumerate() {
        let x = f.px(t as f64);
        let stale = r.chart.stale.get(i).copied().unwrap_or(false);
        let pen = Pen {
            color: if stale { STALE } else { "#333333" },
            width: if stale { 2.0 } else { 1.0 },
            dash: "",
        };
        svg.line(x, f.y, x, f.y + if stale { 10.0 } else { 6.0 }, pen);
    }
    let (lx, len) = (f.x + f.w + 14.0, 26.0);
    let mut y = f.y + 14.0;
    svg.legend_pen(lx, y, len, line_pen(), "distinct tips");
    y += 24.0;
    if r.faults.partitions > 0 {
        svg.rect(lx, y - 7.0, len, 14.0, PARTITION_FILL, 0.35);
        svg.text(lx + len + 6.0, y + 4.0, "start", 12, "black", "partition");
        y += 24.0;
    }
    if heals {
        svg.legend_pen(lx, y, len, heal_pen(), "heal");
        y += 24.0;
    }
    if crashes {
        svg.legend_pen(lx, y, len, crash_pen(), "crash or restart");
        y += 24.0;
    }
    let tick = |c| Pen {
        color: c,
        width: 2.0,
        dash: "",
    };
    svg.line(
        lx + len / 2.0,
        y - 5.0,
        lx + len / 2.0,
        y + 5.0,
        tick("#333333"),
    );
    svg.text(lx + len + 6.0, y + 4.0, "start", 12, "black", "block mined");
    y += 22.0;
    svg.line(
        lx + len / 2.0,
        y - 5.0,
        lx + len / 2.0,
        y + 5.0,
        tick(STALE),
    );
    svg.text(lx + len + 6.0, y + 4.0, "start", 12, "black", "stale block");
    svg.finish()
}

fn line_pen() -> Pen<'static> {
    Pen {
        color: PALETTE[0],
        width: 2.0,
        dash: "",
    }
}

fn heal_pen() -> Pen<'static> {
    Pen {
        color: HEAL,
        width: 2.0,
        dash: "6,3",
    }
}

fn crash_pen() -> Pen<'static> {
    Pen {
        color: CRASH,
        width: 1.0,
        dash: "2,2",
    }
}
