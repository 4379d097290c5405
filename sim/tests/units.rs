//! The units table in sim/README.md ("Units") is what the parsers do: every accepted spelling
//! reads as the value the table gives, every refused one is refused with a reason.

use rantai_sim::units::{parse_duration, parse_rate, parse_size, Bare};
use rantai_sim::SimConfig;

/// Rows `| `written` | kind | rest |` between the README's `<!-- units:NAME -->` markers.
fn rows(name: &str) -> Vec<(String, String, String)> {
    let readme = include_str!("../README.md");
    let start = format!("<!-- units:{name} -->");
    let end = format!("<!-- /units:{name} -->");
    let body = readme
        .split_once(&start)
        .and_then(|(_, r)| r.split_once(&end))
        .map(|(b, _)| b)
        .unwrap_or_else(|| panic!("README has no {start} table"));
    let rows: Vec<(String, String, String)> = body
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let written = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((
                written.to_string(),
                cells[1].to_string(),
                cells[2].to_string(),
            ))
        })
        .collect();
    assert!(rows.len() >= 5, "{name}: {} rows", rows.len());
    rows
}

/// The first whole number in `text`.
fn number(text: &str) -> u64 {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number in {text:?}"))
}

#[test]
fn every_accepted_spelling_reads_as_the_readme_says() {
    for (written, kind, meaning) in rows("accepted") {
        let want = number(&meaning);
        let got = match kind.as_str() {
            "rate" => parse_rate(&written).map(|r| r.unwrap_or(0)),
            "duration" => parse_duration(&written, Bare::Seconds).map(|d| d.0),
            "size" => parse_size(&written),
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(got, Ok(want), "`{written}` ({kind})");
    }
}

#[test]
fn every_refused_spelling_is_refused_with_a_reason() {
    for (written, kind, _) in rows("refused") {
        let e = match kind.as_str() {
            "rate" => parse_rate(&written).map(|_| ()),
            "duration" => parse_duration(&written, Bare::Seconds).map(|_| ()),
            "latency" => {
                let mut c = SimConfig::default();
                let e = c.apply("latency", &written, None).expect_err("refused");
                assert!(e.to_string().contains("ambiguous"), "{e}");
                c.apply("reorder_delay", &written, None)
                    .map_err(|e| {
                        assert!(e.to_string().contains("ambiguous"), "{e}");
                    })
                    .expect_err("refused");
                continue;
            }
            other => panic!("unknown kind {other}"),
        }
        .expect_err(&written);
        assert!(!e.hint.is_empty(), "`{written}`: {e}");
    }
}

#[test]
fn bandwidth_takes_rates_with_slashes_in_their_units() {
    let mut c = SimConfig::default();
    c.apply("bandwidth", "50Mbit/s/10Mbit/s", None)
        .expect("down/up");
    assert!(c.command_line().contains("--bandwidth"));
    let b = format!("{:?}", c.bandwidth);
    assert!(b.contains("50000000") && b.contains("10000000"), "{b}");
    c.apply("bandwidth", "2.5MB/s", None).expect("both ways");
    assert!(format!("{:?}", c.bandwidth).contains("20000000"));
    assert!(c.apply("bandwidth", "10MB", None).is_err());
}
