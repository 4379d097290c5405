//! SVG drawing shared by the charts the simulator writes: a run's charts ([`crate::charts`]),
//! a sweep's (`sweep.svg`) and the calibration CDFs.
//!
//! [`Svg`] writes one element per call, with fixed number formats, so a chart's file is a
//! function of its data only. Text is XML-escaped where it is written; the only font asked
//! for is the viewer's `sans-serif`. [`category_panel`] draws one panel of a categorical
//! chart: per category a mean with a ±1 sd bar and a faint dot per sample.

use std::fmt::{self, Display, Write as _};

/// Escapes text for SVG character data and attribute values.
pub fn xml_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number written with one decimal (`20.0`), where a coordinate is not plain `{}`.
#[derive(Debug, Clone, Copy)]
pub struct F1(pub f64);

impl Display for F1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

/// How a line is drawn: its colour, and dashed or solid (always 2 px wide).
#[derive(Debug, Clone, Copy)]
pub struct Stroke<'a> {
    pub color: &'a str,
    pub dashed: bool,
}

impl Display for Stroke<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r#"stroke="{}" stroke-width="2""#, self.color)?;
        if self.dashed {
            f.write_str(r#" stroke-dasharray="5,3""#)?;
        }
        Ok(())
    }
}

/// How a line is drawn, for charts that need more than [`Stroke`]: a width, and a dash pattern
/// (`""`: solid) so that curves lying on top of each other stay told apart.
#[derive(Debug, Clone, Copy)]
pub struct Pen<'a> {
    pub color: &'a str,
    pub width: f64,
    pub dash: &'a str,
}

impl Display for Pen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"stroke="{}" stroke-width="{}""#,
            self.color, self.width
        )?;
        if !self.dash.is_empty() {
            write!(f, r#" stroke-dasharray="{}""#, self.dash)?;
        }
        Ok(())
    }
}

/// An SVG document being written, one element per line.
pub struct Svg {
    s: String,
}

impl Svg {
    /// A `w` x `h` document on a white background.
    pub fn new(w: f64, h: f64) -> Svg {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        Svg { s }
    }

    /// The chart's title, centred on `x`.
    pub fn title(&mut self, x: impl Display, y: u32, text: &str) {
        let _ = writeln!(
            self.s,
            r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="14">{}</text>"#,
            xml_escape(text)
        );
    }

    /// A horizontal grid line from `x0` to `x1` at `y`, labelled left of `x0`.
    pub fn hgrid(&mut self, x0: f64, x1: f64, y: f64, label: impl Display) {
        let _ = writeln!(
            self.s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            x0 - 6.0,
            y + 4.0,
        );
    }

    /// A vertical grid line from `y0` to `y1` at `x`, labelled below `y1`.
    pub fn vgrid(&mut self, x: f64, y0: f64, y1: f64, label: impl Display) {
        let _ = writeln!(
            self.s,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            y1 + 16.0,
        );
    }

    /// The plot area's border.
    pub fn frame(&mut self, x: f64, y: f64, w: f64, h: f64) {
        let _ = writeln!(
            self.s,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="black"/>"#
        );
    }

    /// Text centred on `x` (axis titles, category labels).
    pub fn text_middle(&mut self, x: f64, y: f64, text: &str) {
        let _ = writeln!(
            self.s,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"#,
            xml_escape(text)
        );
    }

    /// A vertical axis title, centred on `y`.
    pub fn ylabel(&mut self, x: impl Display, y: f64, text: &str) {
        let _ = writeln!(
            self.s,
            r#"<text transform="translate({x},{y:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            xml_escape(text)
        );
    }

    /// A line through `points` (`x,y x,y ..`).
    pub fn polyline(&mut self, points: &str, stroke: Stroke) {
        let _ = writeln!(
            self.s,
            r#"<polyline points="{points}" fill="none" {stroke}/>"#
        );
    }

    /// A legend entry: a `len` px sample of the line at (`x`, `y`), its label, and an optional
    /// smaller note under the label.
    pub fn legend(
        &mut self,
        x: f64,
        y: f64,
        len: f64,
        stroke: Stroke,
        label: &str,
        note: Option<&str>,
    ) {
        let (tx, ty) = (x + len + 6.0, y + 4.0);
        let _ = write!(
            self.s,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" {stroke}/><text x="{tx}" y="{ty}">{}</text>"#,
            x + len,
            xml_escape(label)
        );
        if let Some(n) = note {
            let _ = write!(
                self.s,
                r#"<text x="{tx}" y="{}" font-size="10">{}</text>"#,
                y + 18.0,
                xml_escape(n)
            );
        }
        self.s.push('\n');
    }

    /// A sample point.
    fn dot(&mut self, x: f64, y: f64, color: &str) {
        let _ = writeln!(
            self.s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{color}" fill-opacity="0.3"/>"#
        );
    }

    /// A thin vertical bar (an error bar).
    fn vbar(&mut self, x: f64, y0: f64, y1: f64, color: &str) {
        let _ = writeln!(
            self.s,
            r#"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="{color}"/>"#
        );
    }

    /// A line through `points` drawn with `pen`.
    pub fn path(&mut self, points: &str, pen: Pen) {
        let _ = writeln!(
            self.s,
            r#"<polyline points="{points}" fill="none" {pen} stroke-linejoin="round"/>"#
        );
    }

    /// A line from (`x0`, `y0`) to (`x1`, `y1`).
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, pen: Pen) {
        let _ = writeln!(
            self.s,
            r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" {pen}/>"#
        );
    }

    /// A filled rectangle; `opacity` below 1 lets the grid and curves show through.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, opacity: f64) {
        let _ = writeln!(
            self.s,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" fill-opacity="{opacity}"/>"#,
            w.max(0.0),
            h.max(0.0)
        );
    }

    /// A hollow circle of radius `r` (a marker on a curve).
    pub fn ring(&mut self, x: f64, y: f64, r: f64, color: &str) {
        let _ = writeln!(
            self.s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="white" stroke="{color}" stroke-width="1.5"/>"#
        );
    }

    /// Text at (`x`, `y`) with an anchor (`start`, `middle`, `end`), a size and a colour.
    pub fn text(&mut self, x: f64, y: f64, anchor: &str, size: u32, color: &str, text: &str) {
        let _ = writeln!(
            self.s,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="{color}">{}</text>"#,
            xml_escape(text)
        );
    }

    /// A legend entry drawn with a [`Pen`]: a `len` px sample of the line and its label.
    pub fn legend_pen(&mut self, x: f64, y: f64, len: f64, pen: Pen, label: &str) {
        self.line(x, y, x + len, y, pen);
        self.text(x + len + 6.0, y + 4.0, "start", 12, "black", label);
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.s.push_str("</svg>\n");
        self.s
    }
}

/// One line of a categorical panel: per category, the mean, the sample sd and every sample.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub groups: Vec<(Option<f64>, Option<f64>, Vec<f64>)>,
}

/// Where a panel goes and how it is labelled.
pub struct Panel<'a> {
    pub x0: f64,
    pub y0: f64,
    pub w: f64,
    pub h: f64,
    pub ylabel: &'a str,
    /// The title under the categories.
    pub xlabel: &'a str,
    /// One label per category, left to right.
    pub categories: &'a [&'a str],
}

/// Draws a categorical panel: y from 0 to the largest sample or mean + sd, in four grid steps
/// of a round size; per series the means joined by a line, ±1 sd bars and faint sample dots.
pub fn category_panel(svg: &mut Svg, p: &Panel, series: &[Series]) {
    let Panel { x0, y0, w, h, .. } = *p;
    let ymax = series
        .iter()
        .flat_map(|se| {
            se.groups.iter().flat_map(|(m, sd, pts)| {
                pts.iter().copied().chain(m.zip(*sd).map(|(m, sd)| m + sd))
            })
        })
        .fold(0.0f64, f64::max);
    let step = round_step(if ymax > 0.0 { ymax * 1.05 / 4.0 } else { 0.25 });
    let ymax = step * 4.0;
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize + 1
    };
    let n = p.categories.len().max(1) as f64;
    let px = |i: usize| x0 + (i as f64 + 0.5) / n * w;
    let py = |v: f64| y0 + (1.0 - v / ymax) * h;
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        svg.hgrid(x0, x0 + w, py(v), format_args!("{v:.decimals$}"));
    }
    for (i, l) in p.categories.iter().enumerate() {
        svg.text_middle(px(i), y0 + h + 16.0, l);
    }
    svg.frame(x0, y0, w, h);
    svg.text_middle(x0 + w / 2.0, y0 + h + 40.0, p.xlabel);
    svg.ylabel(F1(x0 - 50.0), y0 + h / 2.0, p.ylabel);
    for se in series {
        let mut line = Vec::new();
        for (i, (mean, sd, pts)) in se.groups.iter().enumerate() {
            let x = px(i);
            for &v in pts {
                svg.dot(x, py(v), se.color);
            }
            if let Some(m) = mean {
                line.push(format!("{x:.1},{:.1}", py(*m)));
                if let Some(sd) = sd {
                    svg.vbar(x, py((m - sd).max(0.0)), py(m + sd), se.color);
                }
            }
        }
        let stroke = Stroke {
            color: se.color,
            dashed: false,
        };
        svg.polyline(&line.join(" "), stroke);
    }
}

/// The smallest round grid step (1, 2, 2.5 or 5 times a power of ten) of at least `raw`.
pub(crate) fn round_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|k| k * mag)
        .find(|&st| st >= raw)
        .unwrap_or(10.0 * mag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_steps_are_round() {
        assert_eq!(round_step(0.3), 0.5);
        assert_eq!(round_step(1.9), 2.0);
        assert_eq!(round_step(2.1), 2.5);
        assert_eq!(round_step(7.0), 10.0);
    }

    #[test]
    fn text_is_escaped_where_it_is_written() {
        let mut svg = Svg::new(10.0, 10.0);
        svg.text_middle(1.0, 2.0, "a<b & \"c\"");
        let s = svg.finish();
        assert!(s.contains("a&lt;b &amp; &quot;c&quot;"), "{s}");
        assert!(s.ends_with("</svg>\n"));
    }
}
