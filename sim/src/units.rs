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

/// Parses a duration. A bare number is taken in `bare_unit_ms` milliseconds (1000 for seconds).
pub fn parse_duration(s: &str, bare_unit_ms: f64) -> Result<Millis, UnitError> {
    let err = || UnitError {
        what: "duration",
        value: s.to_string(),
        hint: "expected a number with a unit: ms, s, m, h (e.g. 150ms, 2s, 10m)",
    };
    let (v, unit) = split_number(s).ok_or_else(err)?;
    let factor = match unit {
        "" => bare_unit_ms,
        "ms" => 1.0,
        "s" | "sec" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(err()),
    };
    let ms = (v * factor).round();
    if ms > 1e15 {
        return Err(err());
    }
    Ok(Millis(ms as u64))
}

/// A transfer rate in bits per second; `None` means unlimited.
pub type Rate = Option<u64>;

/// Parses a rate: `20Mbps`, `512kbps`, `1Gbps`, `800bps`, a bare number of bits per second,
/// or `unlimited`.
pub fn parse_rate(s: &str) -> Result<Rate, UnitError> {
    let err = || UnitError {
        what: "rate",
        value: s.to_string(),
        hint: "expected bits per second with a unit (e.g. 20Mbps, 512kbps, 1Gbps) or `unlimited`",
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("inf") {
        return Ok(None);
    }
    let (v, unit) = split_number(t).ok_or_else(err)?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "bps" => 1.0,
        "kbps" | "kbit/s" => 1e3,
        "mbps" | "mbit/s" => 1e6,
        "gbps" | "gbit/s" => 1e9,
        _ => return Err(err()),
    };
    let bps = (v * factor).round();
    if !(1.0..=1e15).contains(&bps) {
        return Err(err());
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
    fn durations() {
        assert_eq!(parse_duration("150ms", 1000.0), Ok(Millis(150)));
        assert_eq!(parse_duration("2s", 1000.0), Ok(Millis(2000)));
        assert_eq!(parse_duration("10m", 1000.0), Ok(Millis(600_000)));
        assert_eq!(parse_duration("600", 1000.0), Ok(Millis(600_000)));
        assert_eq!(parse_duration("0.5", 1000.0), Ok(Millis(500)));
        assert!(parse_duration("abc", 1000.0).is_err());
        assert!(parse_duration("5 parsecs", 1000.0).is_err());
        assert!(parse_duration("-5s", 1000.0).is_err());
    }

    #[test]
    fn rates_and_sizes() {
        assert_eq!(parse_rate("20Mbps"), Ok(Some(20_000_000)));
        assert_eq!(parse_rate("512kbps"), Ok(Some(512_000)));
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert!(parse_rate("fast").is_err());
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
