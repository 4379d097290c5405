//! The library example of sim/README.md, compiled and run. The test below holds the README's
//! code between its markers, and a second test checks that the README still shows exactly
//! that code (layout aside), so the documentation cannot drift from code that works.

#[test]
fn readme_library_example_runs_and_converges() -> Result<(), Box<dyn std::error::Error>> {
    // README example begins
    use rantai_sim::{Builder, Millis, Sim, Topology};

    let mut sim = Builder::new(40) // no preset, 20..100 ms, unlimited bandwidth
        .seed(3)
        .topology(Topology::SmallWorld { k: 4, p: 0.0 })
        .ping_interval(Some(Millis::from_secs(5)))
        .build()?;
    sim.run_for(Millis::from_secs(5)); // handshakes
    sim.partition(vec![(0..20).collect(), (20..40).collect()]);
    let a = sim.mine(0)?; // mine on demand, or .mining(blocks, interval)
    let b = sim.mine(20)?;
    sim.run_for(Millis::from_secs(10));
    sim.heal();
    // Equal work on both sides: core's tie rule settles on the greater tip (mined on or adopted).
    let settled = sim.run_until(sim.now().add(Millis::from_secs(600)), |s| s.converged());
    assert!(settled && sim.chain(30).unwrap().contains(&a.max(b)));
    let id = sim.submit(7, "hello")?; // peer 7 mines its own item
    let deadline = sim.now().add(Millis::from_secs(3600));
    let has_item = move |s: &Sim| s.chain(7).is_some_and(|c| c.contains_item(&id));
    sim.run_until(deadline, has_item);
    sim.crash(7, true)?; // keep its chain
    sim.restart(7)?;
    let report = sim.run(); // run the configured scenario to its end
    assert!(report.invariants.ok && report.convergence.converged);
    // README example ends
    Ok(())
}

/// The words between `begin` and `end` in `text`: layout (rustfmt's, the README's aligned
/// comments) does not count, every token does.
fn between<'a>(text: &'a str, begin: &str, end: &str) -> Vec<&'a str> {
    let start = text.find(begin).expect("begin marker") + begin.len();
    let stop = start + text[start..].find(end).expect("end marker");
    text[start..stop].split_whitespace().collect()
}

#[test]
fn readme_shows_the_example_this_file_runs() {
    let readme = include_str!("../README.md");
    let shown = between(readme, "## Library API\n\n```rust\n", "```");
    let this = include_str!("readme_example.rs");
    let run = between(this, "// README example begins\n", "// README example ends");
    assert_eq!(
        shown, run,
        "sim/README.md's Library API example differs from this test"
    );
}
