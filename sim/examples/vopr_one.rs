fn main() {
    for a in std::env::args().skip(1) {
        let o = rantai_sim::vopr::run(a.parse().unwrap());
        println!(
            "{} ok={} live_after={:?} bound={} {:?}",
            o.seed,
            o.ok(),
            o.live_after_ms,
            o.liveness_bound_ms,
            o.failures
        );
    }
}
