//! Chart axes: a value range mapped onto `0..=1`, linear or logarithmic, with round tick
//! values and a unit picked from the range, so a label reads `250 ms`-sized numbers rather
//! than `0.2500`.
//!
//! Contract: the range always ends strictly past the largest value, so the last step of a
//! curve is drawn inside the frame, never on its edge; every tick is a round number (a small
//! integer times 1, 2, 2.5 or 5 times a power of ten on a linear axis, 1, 2 or 5 times a power
//! of ten on a log axis).

use crate::chart::round_step;

/// A time axis turns logarithmic when its largest value is more than this many times its
/// smallest positive one: one slow block would otherwise squash every other curve into a
/// vertical line at the left edge.
pub const LOG_RATIO: f64 = 30.0;

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

/// What the axis's values measure; decides the unit of its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Milliseconds, labelled in ms, s, min or h.
    Millis,
    /// Bytes, labelled in B, kB, MB or GB.
    Bytes,
    /// A plain number.
    Plain,
}

/// A value range with its scale, ticks and label unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
    /// Tick values, ascending, all within `lo..=hi`.
    pub ticks: Vec<f64>,
    /// The unit's name (`""` for plain numbers) and how many values make one unit.
    pub unit: (&'static str, f64),
}

impl Axis {
    /// A linear axis over `min..=max` (from 0 when `from_zero`), about five round steps, ending
    /// one step fraction past `max`.
    pub fn linear(min: f64, max: f64, from_zero: bool, q: Quantity) -> Axis {
        let lo_raw = if from_zero { 0.0 } else { min };
        let span = (max - lo_raw).abs();
        let span = if span > 0.0 { span } else { max.abs().max(1.0) };
        // Steps are round in the unit the labels are written in (0.5 h, not 1,800,000 ms).
        let unit = unit_for(q, max.abs().max(lo_raw.abs()) * 1.02);
        let step = round_step(span / unit.1 / 5.0) * unit.1;
        // A margin of 2% keeps a step at `max` (or `min`) off the frame.
        let k_hi = ((max + span * 0.02) / step).ceil();
        let mut k_lo = if from_zero {
            0.0
        } else {
            ((lo_raw - span * 0.02) / step).floor()
        };
        if !from_zero && min >= 0.0 && k_lo < 0.0 {
            k_lo = 0.0;
        }
        let k_hi = k_hi.max(k_lo + 1.0);
        let ticks = (k_lo as i64..=k_hi as i64)
            .map(|k| k as f64 * step)
            .collect();
        let (lo, hi) = (k_lo * step, k_hi * step);
        Axis {
            scale: Scale::Linear,
            lo,
            hi,
            ticks,
            unit,
        }
    }

    /// A logarithmic axis from the last 1, 2 or 5 times a power of ten at least 5% below `min`
    /// (positive) to the first one at least 5% past `max`.
    pub fn log(min: f64, max: f64, q: Quantity) -> Axis {
        let min = if min > 0.0 { min } else { 1.0 };
        let max = max.max(min * 10.0);
        // `m` times ten to the `e`, as the nearest double to the decimal (no drift from
        // repeated multiplication).
        let val = |m: u32, e: i32| format!("{m}e{e}").parse::<f64>().unwrap_or(f64::NAN);
        let floor = min / 1.05;
        let e0 = floor.log10().floor() as i32;
        let lo = [5, 2, 1]
            .iter()
            .map(|&m| val(m, e0))
            .find(|&v| v <= floor)
            .unwrap_or(val(1, e0));
        let target = max * 1.05;
        let mut all = Vec::new();
        let mut e = e0;
        let hi = 'outer: loop {
            for m in [1, 2, 5] {
                let v = val(m, e);
                if v < lo {
                    continue;
                }
                all.push(v);
                if v >= target {
                    break 'outer v;
                }
            }
            e += 1;
        };
        let decades = (hi / lo).log10();
        let ticks = if decades > 3.0 {
            let mut t: Vec<f64> = all
                .iter()
                .copied()
                .filter(|v| is_power_of_ten(*v))
                .collect();
            if t.last() != Some(&hi) {
                t.push(hi);
            }
            t
        } else {
            all
        };
        // Minutes and hours would turn 1-2-5 ticks into 0.0333 min: powers of ten only.
        let unit = match unit_for(q, hi) {
            ("min" | "h", _) => ("s", 1e3),
            u => u,
        };
        Axis {
            scale: Scale::Log,
            lo,
            hi,
            ticks,
            unit,
        }
    }

    /// A time (or other positive) axis: logarithmic when `max` is more than [`LOG_RATIO`]
    /// times `min_positive`, else linear from zero. `log_floor` is where a log axis may start
    /// (at most `min_positive`), so a curve with a few tiny values is not cut short.
    pub fn auto(min_positive: Option<f64>, log_floor: f64, max: f64, q: Quantity) -> Axis {
        match min_positive {
            Some(m) if m > 0.0 && max / m > LOG_RATIO => Axis::log(log_floor.min(m), max, q),
            _ => Axis::linear(0.0, max.max(1.0), true, q),
        }
    }

    /// A count axis from zero past `max`, in whole steps (no tick at 2.5 tips).
    pub fn count(max: f64) -> Axis {
        let raw = max.max(1.0) / 5.0;
        let mag = 10f64.powf(raw.log10().floor()).max(1.0);
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|k| k * mag)
            .find(|&st| st >= raw)
            .unwrap_or(10.0 * mag);
        let k_hi = (max / step).floor() + 1.0;
        Axis {
            scale: Scale::Linear,
            lo: 0.0,
            hi: k_hi * step,
            ticks: (0..=k_hi as i64).map(|k| k as f64 * step).collect(),
            unit: ("", 1.0),
        }
    }

    /// Where `v` lies on the axis, from 0 (`lo`) to 1 (`hi`); values past the ends sit on them
    /// (on a log axis, zero sits at `lo`).
    pub fn pos(&self, v: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln()),
        };
        f.clamp(0.0, 1.0)
    }

    /// A tick's label in the axis unit, without the unit (`0.5`, `20`).
    pub fn label(&self, v: f64) -> String {
        num(v / self.unit.1)
    }

    /// An axis title with its unit and scale: `delay after mining (s, log scale)`.
    pub fn title(&self, what: &str) -> String {
        let log = self.scale == Scale::Log;
        match (self.unit.0, log) {
            ("", false) => what.to_string(),
            ("", true) => format!("{what} (log scale)"),
            (u, false) => format!("{what} ({u})"),
            (u, true) => format!("{what} ({u}, log scale)"),
        }
    }
}

fn is_power_of_ten(x: f64) -> bool {
    let l = x.log10();
    (l - l.round()).abs() < 1e-9
}

/// The unit whose labels read best for values up to `hi`.
fn unit_for(q: Quantity, hi: f64) -> (&'static str, f64) {
    match q {
        Quantity::Millis if hi <= 2_000.0 => ("ms", 1.0),
        Quantity::Millis if hi <= 300_000.0 => ("s", 1e3),
        Quantity::Millis if hi <= 10_800_000.0 => ("min", 6e4),
        Quantity::Millis => ("h", 3.6e6),
        Quantity::Bytes if hi < 2e3 => ("B", 1.0),
        Quantity::Bytes if hi < 2e6 => ("kB", 1e3),
        Quantity::Bytes if hi < 2e9 => ("MB", 1e6),
        Quantity::Bytes => ("GB", 1e9),
        Quantity::Plain => ("", 1.0),
    }
}

/// A number as short as it goes: at most six significant decimals, no trailing zeros.
pub fn num(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1, 2, 2.5 or 5 times a power of ten.
    fn is_round(v: f64) -> bool {
        let mag = 10f64.powf(v.abs().log10().floor());
        let m = v.abs() / mag;
        [1.0, 2.0, 2.5, 5.0].iter().any(|k| (m - k).abs() < 1e-9)
    }

    /// Every tick a whole multiple of one step that is round in the axis unit.
    fn ticks_are_round(a: &Axis) -> bool {
        let step = (a.ticks[1] - a.ticks[0]) / a.unit.1;
        is_round(step)
            && a.ticks.iter().all(|t| {
                let k = t / a.unit.1 / step;
                (k - k.round()).abs() < 1e-6
            })
    }

    #[test]
    fn linear_ticks_are_round_and_end_past_the_largest_value() {
        for (max, q) in [
            (1234.0, Quantity::Millis),
            (7.3, Quantity::Plain),
            (0.037, Quantity::Plain),
            (99_999.0, Quantity::Millis),
            (5000.0, Quantity::Millis),
        ] {
            let a = Axis::linear(0.0, max, true, q);
            assert!(a.hi > max, "{max}: {a:?}");
            assert_eq!(a.ticks.first(), Some(&0.0));
            assert!(ticks_are_round(&a), "{a:?}");
            assert!(a.ticks.len() >= 3 && a.ticks.len() <= 12, "{a:?}");
        }
        // Labels are round in the unit too: 0, 1, 2, .. seconds, not 0.0, 1.2, 2.4.
        let a = Axis::linear(0.0, 5000.0, true, Quantity::Millis);
        assert_eq!(a.unit.0, "s");
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4", "5", "6"]);
        // Round in hours, not in milliseconds.
        let a = Axis::linear(0.0, 5.5 * 3_600_000.0, true, Quantity::Millis);
        assert_eq!(a.unit.0, "h");
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["0", "2", "4", "6"]);
    }

    #[test]
    fn log_ticks_are_one_two_five_decades() {
        let a = Axis::log(120.0, 60_000.0, Quantity::Millis);
        assert_eq!((a.lo, a.hi), (100.0, 100_000.0));
        assert_eq!(a.ticks.first(), Some(&100.0));
        assert!(a.ticks.iter().all(|&t| is_round(t)), "{a:?}");
        assert!(a.ticks.contains(&1000.0) && a.ticks.contains(&10_000.0));
        // A smallest value on a decade is not put on the frame's edge.
        let b = Axis::log(10.0, 1000.0, Quantity::Plain);
        assert_eq!(b.lo, 5.0);
        assert!(b.pos(10.0) > 0.05);
        let wide = Axis::log(1.0, 5e7, Quantity::Millis);
        assert!(wide.ticks.iter().all(|&t| is_round(t)), "{wide:?}");
        assert!(wide.ticks.len() <= 10, "{wide:?}");
    }

    #[test]
    fn a_time_axis_turns_logarithmic_past_thirty_fold() {
        let narrow = Axis::auto(Some(200.0), 200.0, 5_000.0, Quantity::Millis);
        assert_eq!(narrow.scale, Scale::Linear);
        let wide = Axis::auto(Some(200.0), 200.0, 60_000.0, Quantity::Millis);
        assert_eq!(wide.scale, Scale::Log);
        assert!(wide.hi > 60_000.0 && wide.lo <= 200.0);
        // Positions follow the logarithm: 1 s lies as far from 100 ms as 10 s from 1 s.
        let (a, b, c) = (wide.pos(100.0), wide.pos(1000.0), wide.pos(10_000.0));
        assert!(((b - a) - (c - b)).abs() < 1e-9);
        assert_eq!(wide.title("delay"), "delay (s, log scale)");
    }

    #[test]
    fn numbers_are_written_short() {
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(-0.0), "0");
    }
}
