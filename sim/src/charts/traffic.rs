//! `traffic.svg`: per message kind, the messages and the bytes sent per mined block, as two
//! bar panels side by side (the report's `messages.by_kind` divided by `blocks.mined`).

use super::axis::{Axis, Quantity};
use super::{heading, PALETTE};
use crate::chart::Svg;
use crate::report::Report;
use crate::units::fmt_bytes;

/// A message kind with its messages and bytes per block.
type Kind<'a> = (&'a str, f64, f64);
/// A bar panel: left edge, axis title, quantity, and which figure of a kind it shows.
type Panel = (f64, &'static str, Quantity, fn(&Kind) -> f64);

/// The chart as an SVG document.
pub(super) fn svg(r: &Report) -> String {
    let (ml, pw, gap, mt, row) = (150.0, 260.0, 60.0, 66.0, 24.0);
    let kinds: Vec<Kind> = {
        let per = r.blocks.mined.max(1) as f64;
        r.messages
            .by_kind
            .iter()
            .map(|(k, v)| (k.as_str(), v.count as f64 / per, v.bytes as f64 / per))
            .collect()
    };
    let ph = row * kinds.len().max(1) as f64;
    let (w, h) = (ml + 2.0 * pw + gap + 40.0, mt + ph + 62.0);
    let mut svg = Svg::new(w, h);
    heading(
        &mut svg,
        w,
        &format!("Traffic per block: {}", r.chart_setting()),
        &format!(
            "messages and bytes sent, by kind, divided by the {} blocks mined",
            r.blocks.mined
        ),
    );
    if r.blocks.mined == 0 || kinds.is_empty() {
        svg.text(w / 2.0, mt + 20.0, "middle", 12, "black", "no blocks mined");
        return svg.finish();
    }
    for (i, (k, ..)) in kinds.iter().enumerate() {
        let y = mt + row * (i as f64 + 0.5) + 4.0;
        svg.text(ml - 8.0, y, "end", 12, "black", k);
    }
    let panels: [Panel; 2] = [
        (ml, "messages per block", Quantity::Plain, |k| k.1),
        (ml + pw + gap, "bytes per block", Quantity::Bytes, |k| k.2),
    ];
    for (p, &(x0, title, q, get)) in panels.iter().enumerate() {
        let max = kinds.iter().map(get).fold(0.0, f64::max);
        // Room right of the longest bar for its value.
        let xa = Axis::linear(0.0, max * 1.3, true, q);
        let px = |v: f64| x0 + xa.pos(v) * pw;
        for &t in &xa.ticks {
            svg.vgrid(px(t), mt, mt + ph, xa.label(t));
        }
        svg.frame(x0, mt, pw, ph);
        svg.text_middle(x0 + pw / 2.0, mt + ph + 38.0, &xa.title(title));
        for (i, k) in kinds.iter().enumerate() {
            let v = get(k);
            let y = mt + row * i as f64 + 4.0;
            svg.rect(x0, y, px(v) - x0, row - 8.0, PALETTE[p * 2], 0.85);
            let text = if p == 0 {
                super::axis::num((v * 10.0).round() / 10.0)
            } else {
                fmt_bytes(v.round() as u64)
            };
            svg.text(px(v) + 4.0, y + row / 2.0, "start", 10, "#333", &text);
        }
    }
    svg.finish()
}
