//! Parsing of values the way people write them: durations (`150ms`, `2s`, `10m`, `1h`),
//! rates (`20Mbps`, `512kbps`, `unlimited`) and sizes (`535000`, `535kB`, `1MB`, `1MiB`).

use rantai_core::Millis;

/// Why a value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {hint}")]
pub struct UnitError {
    /// Kind of value expected ("duration", "rate", "size", ...).
    pub what: &'static str,
    /// The text as given.
    pub value: String,
    /// What would have been accepted.
    pub hint: &'static str,
}

fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    let num: String = s[..end].chars().filter(|&c| c != '_').collect();
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v, s[end..].trim()))
}

/// What a bare number (no unit) means for a duration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// Seconds: run-time keys (`block_interval = 600`, partition and crash times, `settle`).
    Seconds,
    /// Refused: keys people give in milliseconds (latencies, `reorder_delay`), where a bare
    /// `50` would read as seconds to some and milliseconds to others.
    Refused,
}

/// Units of a duration, longest first so `ms` is not read as `m`.
const DURATION_UNITS: [(&str, f64); 10] = [
    ("ms", 1.0),
    ("sec", 1000.0),
    ("secs", 1000.0),
    ("s", 1000.0),
    ("min", 60_000.0),
    ("mins", 60_000.0),
    ("m", 60_000.0),
    ("hours", 3_600_000.0),
    ("hr", 3_600_000.0),
    ("h", 3_600_000.0),
];

/// Parses a duration: a number with a unit (`150ms`, `2s`, `1.5min`, `10m`, `2h`), or several
/// in a row (`1m30s`, `1h 30m`). A bare number follows `bare`.
pub fn parse_duration(s: &str, bare: Bare) -> Result<Millis, UnitError> {
    let err = |hint| UnitError {
        what: "duration",
        value: s.to_string(),
        hint,
    };
    let units_hint =
        "expected a number with a unit: ms, s, m (minutes), h, or several in a row such as 1m30s";
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        return match bare {
            Bare::Seconds if v.is_finite() && v >= 0.0 && v * 1000.0 <= 1e15 => {
                Ok(Millis((v * 1000.0).round() as u64))
            }
            Bare::Seconds => Err(err(units_hint)),
            Bare::Refused => Err(err(
                "a bare number is ambiguous here (seconds or milliseconds?): write a unit, e.g. 50ms",
            )),
        };
    }
    let mut rest = t;
    let mut total = 0.0;
    while !rest.is_empty() {
        let (v, after) = split_number(rest).ok_or_else(|| err(units_hint))?;
        let (unit, factor) = DURATION_UNITS
            .iter()
            .find(|(u, _)| {
                after.starts_with(u)
                    && !after[u.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
            })
            .ok_or_else(|| err(units_hint))?;
        total += v * factor;
        rest = after[unit.len()..].trim_start();
    }
    if total > 1e15 {
        return Err(err(units_hint));
    }
    Ok(Millis(total.round() as u64))
}

/// A transfer rate in bits per second; `None` means unlimited.
pub type Rate = Option<u64>;

/// Rate units: bits per second, then bytes per second (`B`, as ns-3 and `tc` read it).
const RATE_UNITS: [(&str, f64); 34] = [
    ("bps", 1.0),
    ("bit/s", 1.0),
    ("b/s", 1.0),
    ("bit", 1.0),
    ("kbps", 1e3),
    ("Kbps", 1e3),
    ("kbit/s", 1e3),
    ("Kbit/s", 1e3),
    ("kb/s", 1e3),
    ("kbit", 1e3),
    ("Mbps", 1e6),
    ("mbps", 1e6),
    ("Mbit/s", 1e6),
    ("Mb/s", 1e6),
    ("Mbit", 1e6),
    ("Gbps", 1e9),
    ("gbps", 1e9),
    ("Gbit/s", 1e9),
    ("Gb/s", 1e9),
    ("Gbit", 1e9),
    ("Bps", 8.0),
    ("B/s", 8.0),
    ("kBps", 8e3),
    ("KBps", 8e3),
    ("kB/s", 8e3),
    ("KB/s", 8e3),
    ("MBps", 8e6),
    ("MB/s", 8e6),
    ("GBps", 8e9),
    ("GB/s", 8e9),
    ("KiB/s", 8.0 * 1024.0),
    ("MiB/s", 8.0 * 1024.0 * 1024.0),
    ("Kibit/s", 1024.0),
    ("Mibit/s", 1024.0 * 1024.0),
];

/// Spellings refused with a reason: a size where a rate belongs, or a prefix without a unit.
const RATE_AMBIGUOUS: [(&str, &str); 12] = [
    (
        "",
        "a bare number is ambiguous (bits or bytes per second?): write e.g. 20Mbit/s or 2.5MB/s",
    ),
    ("k", "k of what? write kbit/s or kB/s"),
    ("K", "K of what? write kbit/s or kB/s"),
    ("M", "M of what? write Mbit/s or MB/s"),
    ("G", "G of what? write Gbit/s or GB/s"),
    (
        "kB",
        "kB is a size, not a rate: write kB/s (kilobytes per second) or kbit/s",
    ),
    (
        "KB",
        "KB is a size, not a rate: write KB/s (kilobytes per second) or kbit/s",
    ),
    (
        "MB",
        "MB is a size, not a rate: write MB/s (megabytes per second) or Mbit/s",
    ),
    (
        "GB",
        "GB is a size, not a rate: write GB/s (gigabytes per second) or Gbit/s",
    ),
    (
        "Mb",
        "Mb could be read as megabits or megabytes: write Mbit/s or MB/s",
    ),
    (
        "Gb",
        "Gb could be read as gigabits or gigabytes: write Gbit/s or GB/s",
    ),
    (
        "MBPS",
        "MBPS could be read as megabits or megabytes per second: write Mbit/s or MB/s",
    ),
];

/// Parses a rate in bits per second: `20Mbit/s`, `20Mbps`, `20Mb/s`, `20 Mbit` (megabits),
/// `2.5MB/s` or `2.5MBps` (megabytes: times 8), `1Gbit`, `unlimited`. Ambiguous spellings (a
/// bare number, `10M`, `10MB`, `10Mb`) are refused, saying why.
pub fn parse_rate(s: &str) -> Result<Rate, UnitError> {
    let err = |hint| UnitError {
        what: "rate",
        value: s.to_string(),
        hint,
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("inf") {
        return Ok(None);
    }
    let (v, unit) = split_number(t).ok_or_else(|| {
        err("expected a number and a unit, e.g. 20Mbit/s, 20Mbps, 2.5MB/s, or `unlimited`")
    })?;
    if let Some((_, why)) = RATE_AMBIGUOUS.iter().find(|(u, _)| *u == unit) {
        return Err(err(why));
    }
    let factor = RATE_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            err("unknown unit: bits per second are bps, kbit/s, Mbit/s, Mbps, Mb/s, Gbit; bytes per second are B/s, kB/s, MB/s, MBps")
        })?;
    let bps = (v * factor).round();
    if !(1.0..=1e15).contains(&bps) {
        return Err(err("expected at least 1 bit per second"));
    }
    Ok(Some(bps as u64))
}

/// Parses a size in bytes: `535000`, `535kB` (1000), `1MB`, `4KiB` (1024), `1MiB`.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError {
        what: "size",
        value: s.to_string(),
        hint: "expected bytes, optionally with a unit: B, kB, MB, GB, KiB, MiB (e.g. 535kB)",
    };
    let (v, unit) = split_number(s).ok_or_else(err)?;
    let factor = match unit {
        "" | "B" | "b" => 1.0,
        "kB" | "KB" | "k" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = (v * factor).round();
    if bytes > 1e15 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// Parses a probability: `0.2`, or a percentage `20%`.
pub fn parse_probability(s: &str) -> Result<f64, UnitError> {
    let err = || UnitError {
        what: "probability",
        value: s.to_string(),
        hint: "expected a number between 0 and 1, or a percentage like 20%",
    };
    let t = s.trim();
    let v = if let Some(p) = t.strip_suffix('%') {
        p.trim().parse::<f64>().map_err(|_| err())? / 100.0
    } else {
        t.parse::<f64>().map_err(|_| err())?
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(err());
    }
    Ok(v)
}

/// Formats milliseconds for humans: `850ms`, `12.4s`, `3m20s`.
pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Formats milliseconds exactly, as a user would type them and [`parse_duration`] reads
/// them back: `0s`, `850ms`, `2s`, `10m`, `1m30s`, `1h5m`, `2s500ms`.
pub fn fmt_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Formats a byte count for humans: `512 B`, `535.0 kB`, `1.2 GB`.
pub fn fmt_bytes(b: u64) -> String {
    let f = b as f64;
    if f < 1e3 {
        format!("{b} B")
    } else if f < 1e6 {
        format!("{:.1} kB", f / 1e3)
    } else if f < 1e9 {
        format!("{:.1} MB", f / 1e6)
    } else {
        format!("{:.2} GB", f / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_durations_read_back() {
        for (ms, text) in [
            (0, "0s"),
            (850, "850ms"),
            (2000, "2s"),
            (600_000, "10m"),
            (90_000, "1m30s"),
            (3_900_000, "1h5m"),
            (2500, "2s500ms"),
            (3_600_001, "1h1ms"),
        ] {
            assert_eq!(fmt_duration(ms), text);
            assert_eq!(
                parse_duration(text, Bare::Refused),
                Ok(Millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s, Bare::Seconds);
        assert_eq!(d("150ms"), Ok(Millis(150)));
        assert_eq!(d("2s"), Ok(Millis(2000)));
        assert_eq!(d("10m"), Ok(Millis(600_000)));
        assert_eq!(d("600"), Ok(Millis(600_000)));
        assert_eq!(d("0.5"), Ok(Millis(500)));
        assert_eq!(d("1m30s"), Ok(Millis(90_000)));
        assert_eq!(d("1h 30m"), Ok(Millis(5_400_000)));
        assert_eq!(d("1m500ms"), Ok(Millis(60_500)));
        assert!(d("abc").is_err());
        assert!(d("5 parsecs").is_err());
        assert!(d("-5s").is_err());
        assert!(d("5mo").is_err(), "not minutes");
        assert!(d("1m30").is_err(), "a trailing bare number");
        let e = parse_duration("50", Bare::Refused).unwrap_err();
        assert!(e.hint.contains("ambiguous"), "{e}");
        assert_eq!(parse_duration("50ms", Bare::Refused), Ok(Millis(50)));
    }

    #[test]
    fn rates_and_sizes() {
        assert_eq!(parse_rate("20Mbps"), Ok(Some(20_000_000)));
        assert_eq!(parse_rate("512kbps"), Ok(Some(512_000)));
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert_eq!(
            parse_rate("10MBps"),
            Ok(Some(80_000_000)),
            "megabytes, as ns-3 reads it"
        );
        assert_eq!(parse_rate("10Mb/s"), Ok(Some(10_000_000)));
        assert_eq!(parse_rate("20 Mbit"), Ok(Some(20_000_000)));
        assert!(parse_rate("fast").is_err());
        for bad in ["20", "10M", "10MB", "10Mb", "10MBPS"] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.hint.contains("write"), "{bad}: {e}");
        }
        assert_eq!(parse_size("535000"), Ok(535_000));
        assert_eq!(parse_size("535kB"), Ok(535_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert!(parse_size("3 apples").is_err());
        assert_eq!(parse_probability("20%"), Ok(0.2));
        assert_eq!(parse_probability("0.05"), Ok(0.05));
        assert!(parse_probability("2").is_err());
    }
}
