//! Chart tests on small real runs: the same report gives the same bytes, the time axis turns
//! logarithmic for one slow block, stale blocks are ringed, one curve per region.

use super::STALE;
use crate::{Builder, Latency, Millis, Report};

/// A small run with a preset (six regions, region latencies) and a few blocks.
fn run(seed: u64) -> Report {
    let mut b = Builder::new(60)
        .seed(seed)
        .mining(8, Millis::from_secs(5))
        .latency(Latency::Region);
    b.config_mut().preset = Some(&crate::presets::BITCOIN_2019);
    b.build().unwrap().run()
}

fn chart(r: &Report, name: &str) -> String {
    r.charts()
        .into_iter()
        .find(|c| c.0 == name)
        .map(|c| c.1)
        .unwrap()
}

fn rings(svg: &str) -> usize {
    svg.matches(&format!(r#"stroke="{STALE}" stroke-width="1.5""#))
        .count()
}

#[test]
fn same_report_same_bytes_and_every_chart_is_written() {
    let (a, b) = (run(3), run(3));
    let names: Vec<&str> = a.charts().iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        ["propagation.svg", "regions.svg", "traffic.svg", "tips.svg"]
    );
    assert_eq!(a.charts(), b.charts());
    assert_eq!(a.charts(), a.clone().charts());
    for (name, svg) in a.charts() {
        assert!(
            svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
            "{name}"
        );
        // No font file, no embedded images: only the viewer's sans-serif.
        assert!(
            !svg.contains("@font-face") && !svg.contains("<image"),
            "{name}"
        );
    }
    assert!(chart(&a, "propagation.svg").contains("60 peers, preset bitcoin-2019, relay"));
    assert!(chart(&a, "propagation.svg").contains("seed 3"));
}

#[test]
fn one_slow_block_turns_the_time_axis_logarithmic() {
    let mut r = run(4);
    let svg = chart(&r, "propagation.svg");
    assert!(!svg.contains("log scale"), "a few seconds spread: linear");
    assert!(svg.contains("delay after mining (ms)") || svg.contains("delay after mining (s)"));
    r.per_block[0].2 = Some(30 * 60_000);
    let svg = chart(&r, "propagation.svg");
    assert!(svg.contains("log scale"), "one block after 30 min");
}

#[test]
fn stale_blocks_are_ringed_on_every_curve_they_reach() {
    let mut r = run(5);
    // The legend's ring only.
    assert_eq!(rings(&chart(&r, "propagation.svg")), 1);
    let i = r.per_block.iter().position(|m| m.2.is_some()).unwrap();
    r.chart.stale = vec![false; r.per_block.len()];
    r.chart.stale[i] = true;
    // One ring on each of the three curves, the legend's ring besides.
    assert_eq!(rings(&chart(&r, "propagation.svg")), 3 + 1);
    // The tips chart ticks it in red along the top.
    assert!(chart(&r, "tips.svg").contains(&format!(r#"stroke="{STALE}" stroke-width="2""#)));
}

#[test]
fn the_region_chart_has_one_curve_per_region_with_peers() {
    let r = run(6);
    let regions = &r.chart.regions;
    assert!(regions.len() >= 3, "{regions:?}");
    assert_eq!(regions.iter().map(|g| g.peers).sum::<u32>(), 60);
    let svg = chart(&r, "regions.svg");
    assert_eq!(svg.matches("<polyline").count(), regions.len());
    for g in regions {
        assert!(svg.contains(&g.name), "{}", g.name);
    }
    // Every receiving peer's delay lands in its region.
    let pairs: u64 = regions.iter().map(|g| g.samples).sum();
    assert_eq!(pairs, r.propagation_ms.all_peers_samples);
}

#[test]
fn tips_and_partitions_are_recorded() {
    let b = Builder::new(20)
        .seed(2)
        .mining(6, Millis::from_secs(3))
        .partition(
            Millis::from_secs(2),
            Some(Millis::from_secs(12)),
            vec![(0..10).collect()],
        );
    let r = b.build().unwrap().run();
    use super::record::Mark;
    let marks: Vec<Mark> = r.chart.marks.iter().map(|m| m.1).collect();
    assert_eq!(marks, [Mark::Partition(0), Mark::Heal(0)]);
    assert!(r.chart.tips.buckets.iter().any(|b| b.max >= 2));
    let svg = chart(&r, "tips.svg");
    assert!(svg.contains("partition 0") && svg.contains(">heal<"));
}
