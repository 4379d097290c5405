//! `sweep.svg`: two panels against the swept values, the stale rate and the median delays
//! until 50%, 90% and 100% of peers had a block. Each point is the mean across seeds with its
//! 95% confidence interval (Student's t), the faint dots are the single runs, and each panel
//! carries its own legend.
//!
//! When every swept value is a number, a duration or a size, the x axis is numeric (positions
//! proportional to the values, durations on a time scale, logarithmic past a 30-fold range);
//! otherwise the values are evenly spaced categories in the order given.

use super::report::{Group, Spread, SweepReport};
use crate::chart::{Pen, Svg, F1};
use crate::charts::axis::{Axis, Quantity, LOG_RATIO};
use crate::charts::{DASHES, PALETTE};
use crate::report::Report;
use crate::units::{parse_duration, parse_size, Bare};
use std::fmt::Write as _;

/// How the swept values lie along the x axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum XScale {
    /// Evenly spaced labels, in the order given.
    Categories(Vec<String>),
    /// Each group's value on a numeric axis.
    Numeric { axis: Axis, values: Vec<f64> },
}

impl XScale {
    /// The scale of a sweep's group values: numeric when every value reads as a plain number,
    /// else as a duration, else as a size; categories otherwise (or with fewer than two).
    pub(crate) fn of(values: &[Option<&str>]) -> XScale {
        let cats = || {
            XScale::Categories(
                values
                    .iter()
                    .map(|v| v.unwrap_or("all seeds").to_string())
                    .collect(),
            )
        };
        let Some(vs) = values.iter().copied().collect::<Option<Vec<&str>>>() else {
            return cats();
        };
        if vs.len() < 2 {
            return cats();
        }
        let all =
            |f: &dyn Fn(&str) -> Option<f64>| vs.iter().map(|v| f(v)).collect::<Option<Vec<f64>>>();
        let parsed: Option<(Vec<f64>, Quantity)> =
            all(&|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                .map(|x| (x, Quantity::Plain))
                .or_else(|| {
                    all(&|v| parse_duration(v, Bare::Seconds).ok().map(|m| m.0 as f64))
                        .map(|x| (x, Quantity::Millis))
                })
                .or_else(|| {
                    all(&|v| parse_size(v).ok().map(|b| b as f64)).map(|x| (x, Quantity::Bytes))
                });
        let Some((values, q)) = parsed else {
            return cats();
        };
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let axis = if min > 0.0 && max / min > LOG_RATIO {
            Axis::log(min, max, q)
        } else {
            // A margin so the end values' bars and dots clear the frame.
            let pad = (max - min).max(max.abs() * 0.1).max(1e-9) * 0.06;
            let lo = if min >= 0.0 {
                (min - pad).max(0.0)
            } else {
                min - pad
            };
            Axis::linear(lo, max + pad, false, q)
        };
        XScale::Numeric { axis, values }
    }

    /// Where group `i` lies, from 0 (left edge) to 1 (right edge).
    pub(crate) fn pos(&self, i: usize) -> f64 {
        match self {
            XScale::Categories(c) => (i as f64 + 0.5) / c.len().max(1) as f64,
            XScale::Numeric { axis, values } => axis.pos(values[i]),
        }
    }
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (exact to three
/// decimals up to 30, then a close approximation tending to 1.96).
pub(crate) fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.96 + 2.4 / df as f64,
    }
}

/// A mean and the half-width of its 95% confidence interval (none with fewer than two runs).
fn ci95(s: &Spread) -> (Option<f64>, Option<f64>) {
    let half =
        s.sd.filter(|_| s.n > 1)
            .map(|sd| t95(s.n - 1) * sd / (s.n as f64).sqrt());
    (s.mean, half)
}

/// One measure across the groups: per group its mean, 95% half-width and single runs.
struct Line<'a> {
    name: &'a str,
    pen: Pen<'a>,
    groups: Vec<(Option<f64>, Option<f64>, Vec<f64>)>,
}

/// A panel's place, titles and y quantity.
struct PanelAt<'a> {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    ytitle: &'a str,
    q: Quantity,
    /// The largest value the measure can take (100 for a rate in %): intervals stop there.
    cap: f64,
}

impl SweepReport {
    /// The sweep's chart as an SVG document.
    pub fn svg(&self) -> String {
        let (pw, ph, ml, mt, gap) = (360.0, 260.0, 80.0, 64.0, 110.0);
        let w = ml + pw + gap + pw + 40.0;
        let h = mt + ph + 120.0;
        let per_group = |spread: fn(&Group) -> &Spread,
                         get: fn(&Report) -> Option<f64>,
                         scale: f64|
         -> Vec<(Option<f64>, Option<f64>, Vec<f64>)> {
            self.groups
                .iter()
                .enumerate()
                .map(|(g, group)| {
                    let (mean, half) = ci95(spread(group));
                    let dots = self
                        .runs
                        .iter()
                        .filter(|r| r.group == g)
                        .filter_map(|r| get(&r.report).map(|v| v * scale))
                        .collect();
                    (mean.map(|m| m * scale), half.map(|d| d * scale), dots)
                })
                .collect()
        };
        let pen = |k: usize| Pen {
            color: PALETTE[k],
            width: 2.0,
            dash: DASHES[k],
        };
        let stale = [Line {
            name: "stale rate",
            pen: Pen {
                color: "#6a51a3",
                width: 2.0,
                dash: "",
            },
            groups: per_group(|g| &g.stale_rate, |r| Some(r.blocks.stale_rate), 100.0),
        }];
        let delays = [
            Line {
                name: "50% of peers",
                pen: pen(0),
                groups: per_group(
                    |g| &g.t50_median_ms,
                    |r| r.propagation_ms.t50.median.map(|v| v as f64),
                    1.0,
                ),
            },
            Line {
                name: "90% of peers",
                pen: pen(1),
                groups: per_group(
                    |g| &g.t90_median_ms,
                    |r| r.propagation_ms.t90.median.map(|v| v as f64),
                    1.0,
                ),
            },
            Line {
                name: "100% of peers",
                pen: pen(2),
                groups: per_group(
                    |g| &g.t100_median_ms,
                    |r| r.propagation_ms.t100.median.map(|v| v as f64),
                    1.0,
                ),
            },
        ];
        let values: Vec<Option<&str>> = self.groups.iter().map(|g| g.value.as_deref()).collect();
        let x = XScale::of(&values);
        let xtitle = match (&x, self.key.as_deref()) {
            (XScale::Numeric { axis, .. }, Some(k)) => axis.title(k),
            (_, k) => k.unwrap_or("runs").to_string(),
        };
        let mut svg = Svg::new(w, h);
        // The fixed settings; the swept one is on the x axis.
        let setting = self.runs.first().map_or(String::new(), |r| {
            let sc = &r.report.scenario;
            let parts: Vec<String> = [
                ("peers", format!("{} peers", sc.peers)),
                ("preset", format!("preset {}", sc.preset)),
                ("relay", format!("relay {}", sc.relay)),
            ]
            .into_iter()
            .filter(|(k, _)| self.key.as_deref() != Some(*k))
            .map(|(_, v)| v)
            .collect();
            format!(": {}", parts.join(", "))
        });
        svg.text(
            w / 2.0,
            20.0,
            "middle",
            14,
            "black",
            &format!(
                "Sweep of {}{setting}",
                self.key.as_deref().unwrap_or("seeds")
            ),
        );
        svg.text(
            w / 2.0,
            37.0,
            "middle",
            11,
            "#555",
            &format!(
                "{} seeds per value: mean with its 95% confidence interval (Student's t); dots: single runs",
                self.seeds.len()
            ),
        );
        let at = |x0: f64, ytitle, q, cap| PanelAt {
            x0,
            y0: mt,
            w: pw,
            h: ph,
            ytitle,
            q,
            cap,
        };
        panel(
            &mut svg,
            &at(ml, "stale rate (%)", Quantity::Plain, 100.0),
            &x,
            &xtitle,
            &stale,
        );
        let delay_at = at(
            ml + pw + gap,
            "median delay",
            Quantity::Millis,
            f64::INFINITY,
        );
        panel(&mut svg, &delay_at, &x, &xtitle, &delays);
        svg.finish()
    }
}

/// Draws one panel: the y axis from zero past the largest run or interval end, the x axis of
/// `x`, per line its confidence bars, run dots and means joined in x order, and a legend
/// under the x title.
fn panel(svg: &mut Svg, p: &PanelAt, x: &XScale, xtitle: &str, lines: &[Line]) {
    let PanelAt { x0, y0, w, h, .. } = *p;
    let ymax = lines
        .iter()
        .flat_map(|l| {
            l.groups.iter().flat_map(|(m, half, pts)| {
                pts.iter()
                    .copied()
                    .chain(m.map(|m| (m + half.unwrap_or(0.0)).min(p.cap)))
            })
        })
        .fold(0.0f64, f64::max);
    let mut ya = Axis::linear(0.0, if ymax > 0.0 { ymax } else { 1.0 }, true, p.q);
    // A little room under zero, so a line of zeros is not hidden by the frame.
    ya.lo = -0.03 * ya.hi;
    let py = |v: f64| y0 + (1.0 - ya.pos(v)) * h;
    let px = |i: usize| x0 + x.pos(i) * w;
    for &t in &ya.ticks {
        svg.hgrid(x0, x0 + w, py(t), ya.label(t));
    }
    match x {
        XScale::Categories(c) => {
            for (i, l) in c.iter().enumerate() {
                svg.text_middle(px(i), y0 + h + 16.0, l);
            }
        }
        XScale::Numeric { axis, .. } => {
            for &t in &axis.ticks {
                svg.vgrid(x0 + axis.pos(t) * w, y0, y0 + h, axis.label(t));
            }
        }
    }
    svg.frame(x0, y0, w, h);
    svg.text_middle(x0 + w / 2.0, y0 + h + 38.0, xtitle);
    svg.ylabel(F1(x0 - 52.0), y0 + h / 2.0, &ya.title(p.ytitle));
    let n = lines.len() as f64;
    for (k, l) in lines.iter().enumerate() {
        // Bars and dots of different lines sit a few pixels apart, so equal ones stay visible.
        let dx = (k as f64 - (n - 1.0) / 2.0) * 5.0;
        let mut order: Vec<usize> = (0..l.groups.len()).collect();
        order.sort_by(|&a, &b| x.pos(a).total_cmp(&x.pos(b)));
        let mut pts = String::new();
        for i in order {
            let (mean, half, dots) = &l.groups[i];
            let cx = px(i) + dx;
            for &v in dots {
                svg.dot_with(cx, py(v), 2.0, l.pen.color, 0.3);
            }
            if let Some(m) = mean {
                if let Some(hw) = half {
                    ci_bar(
                        svg,
                        cx,
                        py((m - hw).max(0.0)),
                        py((m + hw).min(p.cap)),
                        l.pen.color,
                    );
                }
                svg.dot_with(cx, py(*m), 3.0, l.pen.color, 1.0);
                let _ = write!(
                    pts,
                    "{}{cx:.1},{:.1}",
                    if pts.is_empty() { "" } else { " " },
                    py(*m)
                );
            }
        }
        svg.path(&pts, l.pen);
    }
    // The legend: each line, then what a bar and a dot mean.
    let (mut lx, mut ly) = (x0, y0 + h + 62.0);
    let len = 24.0;
    let next = |lx: &mut f64, ly: &mut f64| {
        *lx += w / 3.0;
        if *lx > x0 + w - 20.0 {
            *lx = x0;
            *ly += 20.0;
        }
    };
    for l in lines {
        svg.legend_pen(lx, ly, len, l.pen, l.name);
        next(&mut lx, &mut ly);
    }
    ci_bar(svg, lx + len / 2.0, ly - 7.0, ly + 7.0, "#333333");
    svg.text(lx + len + 6.0, ly + 4.0, "start", 12, "black", "95% CI");
    next(&mut lx, &mut ly);
    svg.dot_with(lx + len / 2.0, ly, 2.5, "#333333", 0.4);
    svg.text(lx + len + 6.0, ly + 4.0, "start", 12, "black", "single run");
}

/// A vertical confidence bar with short caps.
fn ci_bar(svg: &mut Svg, x: f64, y0: f64, y1: f64, color: &str) {
    let pen = Pen {
        color,
        width: 1.2,
        dash: "",
    };
    svg.line(x, y0, x, y1, pen);
    svg.line(x - 3.0, y0, x + 3.0, y0, pen);
    svg.line(x - 3.0, y1, x + 3.0, y1, pen);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_sweep_gets_a_numeric_axis() {
        // Durations on a time scale: positions proportional to the values.
        let x = XScale::of(&[Some("2s"), Some("10s"), Some("1m")]);
        let XScale::Numeric { axis, values } = &x else {
            panic!("{x:?}")
        };
        assert_eq!(values, &[2000.0, 10_000.0, 60_000.0]);
        assert_eq!(axis.title("block_interval"), "block_interval (s)");
        let (a, b, c) = (x.pos(0), x.pos(1), x.pos(2));
        assert!(((b - a) / (c - a) - 8.0 / 58.0).abs() < 1e-9, "{a} {b} {c}");
        assert!(a > 0.0 && c < 1.0, "the end values clear the frame");
        // Plain numbers, out of order: still placed by value.
        let x = XScale::of(&[Some("0.1"), Some("0"), Some("0.05")]);
        assert!(x.pos(1) < x.pos(2) && x.pos(2) < x.pos(0));
        assert!(((x.pos(2) - x.pos(1)) - (x.pos(0) - x.pos(2))).abs() < 1e-9);
        // Sizes; and a 100-fold range turns logarithmic.
        let x = XScale::of(&[Some("10kB"), Some("1MB")]);
        assert!(
            matches!(&x, XScale::Numeric { axis, .. } if axis.scale == crate::charts::axis::Scale::Log)
        );
    }

    #[test]
    fn other_sweeps_keep_categories() {
        let x = XScale::of(&[Some("push"), Some("compact"), Some("announce")]);
        assert!(matches!(x, XScale::Categories(_)));
        assert_eq!((x.pos(0), x.pos(2)), (1.0 / 6.0, 5.0 / 6.0));
        assert!(matches!(XScale::of(&[None]), XScale::Categories(_)));
        assert!(matches!(XScale::of(&[Some("5s")]), XScale::Categories(_)));
    }

    #[test]
    fn confidence_intervals_use_students_t() {
        assert_eq!(t95(1), 12.706);
        assert_eq!(t95(30), 2.042);
        assert!((t95(120) - 1.98).abs() < 0.005);
        let s = Spread {
            n: 4,
            mean: Some(10.0),
            sd: Some(2.0),
            min: None,
            max: None,
        };
        let (m, half) = ci95(&s);
        assert_eq!(m, Some(10.0));
        assert!((half.unwrap() - 3.182).abs() < 1e-9);
    }
}
