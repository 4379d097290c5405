//! SVG drawing shared by the charts the simulator writes: a run's charts ([`crate::charts`]),
//! a sweep's (`sweep.svg`) and the calibration CDFs.
//!
//! [`Svg`] writes one element per call, with fixed number formats, so a chart's file is a
//! function of its data only. Text is XML-escaped where it is written; the only font asked
//! for is the viewer's `sans-serif`.

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

    /// A sample point of `color` (`opacity` 0.3: a faint one among many).
    pub fn dot_with(&mut self, x: f64, y: f64, r: f64, color: &str, opacity: f64) {
        let _ = writeln!(
            self.s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{color}" fill-opacity="{opacity}"/>"#
        );
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.s.push_str("</svg>\n");
        self.s
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
