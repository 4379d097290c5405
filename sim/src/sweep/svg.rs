//! `sweep.svg`: two panels against the swept values, the stale rate and the median delays
//! until 50%, 90% and 100% of peers had a block; each point is the mean across seeds with a
//! ±1 sd bar, and the faint dots are the single runs.

use super::report::{Group, Spread, SweepReport};
use crate::chart::{category_panel, Panel, Series, Stroke, Svg, F1};
use crate::report::Report;

impl SweepReport {
    /// The sweep's chart as an SVG document.
    pub fn svg(&self) -> String {
        let (pw, ph, ml, mt, mb, gap) = (360.0, 260.0, 70.0, 50.0, 70.0, 90.0);
        let w = ml + pw + gap + pw + 130.0;
        let h = mt + ph + mb;
        // Mean and sd come from the groups' own spreads; the dots from the runs, in the same
        // unit (`scale` turns a rate into % and milliseconds into seconds).
        let per_group = |spread: fn(&Group) -> &Spread,
                         get: fn(&Report) -> Option<f64>,
                         scale: f64|
         -> Vec<(Option<f64>, Option<f64>, Vec<f64>)> {
            self.groups
                .iter()
                .enumerate()
                .map(|(g, group)| {
                    let sp = spread(group);
                    let dots = self
                        .runs
                        .iter()
                        .filter(|r| r.group == g)
                        .filter_map(|r| get(&r.report).map(|v| v * scale))
                        .collect();
                    (sp.mean.map(|m| m * scale), sp.sd.map(|d| d * scale), dots)
                })
                .collect()
        };
        let stale = [Series {
            name: "stale rate",
            color: "#756bb1",
            groups: per_group(|g| &g.stale_rate, |r| Some(r.blocks.stale_rate), 100.0),
        }];
        let delays = [
            Series {
                name: "50% of peers",
                color: "#2b8cbe",
                groups: per_group(
                    |g| &g.t50_median_ms,
                    |r| r.propagation_ms.t50.median.map(|v| v as f64),
                    1e-3,
                ),
            },
            Series {
                name: "90% of peers",
                color: "#e6550d",
                groups: per_group(
                    |g| &g.t90_median_ms,
                    |r| r.propagation_ms.t90.median.map(|v| v as f64),
                    1e-3,
                ),
            },
            Series {
                name: "100% of peers",
                color: "#31a354",
                groups: per_group(
                    |g| &g.t100_median_ms,
                    |r| r.propagation_ms.t100.median.map(|v| v as f64),
                    1e-3,
                ),
            },
        ];
        let categories: Vec<&str> = self
            .groups
            .iter()
            .map(|g| g.value.as_deref().unwrap_or("all seeds"))
            .collect();
        let xlabel = self.key.as_deref().unwrap_or("runs");
        let mut svg = Svg::new(w, h);
        svg.title(
            F1(w / 2.0),
            20,
            &format!(
                "{} ({} seeds per value; mean ± 1 sd, dots: single runs)",
                self.key.as_deref().unwrap_or("seeds"),
                self.seeds.len()
            ),
        );
        let panel = |x0: f64, ylabel| Panel {
            x0,
            y0: mt,
            w: pw,
            h: ph,
            ylabel,
            xlabel,
            categories: &categories,
        };
        category_panel(&mut svg, &panel(ml, "stale rate (%)"), &stale);
        category_panel(&mut svg, &panel(ml + pw + gap, "median delay (s)"), &delays);
        for (i, se) in delays.iter().enumerate() {
            let (x, y) = (ml + 2.0 * pw + gap + 14.0, mt + 14.0 + i as f64 * 18.0);
            let stroke = Stroke {
                color: se.color,
                dashed: false,
            };
            svg.legend(x, y, 18.0, stroke, se.name, None);
        }
        svg.finish()
    }
}
