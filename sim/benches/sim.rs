//! Criterion benchmarks of whole simulations, and of one run on 1 and 2 threads.
//!
//! `cargo bench -p rantai-sim` — the bitcoin-2019 runs use 535 kB virtual blocks. Sizes are
//! kept small enough for criterion's repeated sampling; the 1,000 x 1,000 and
//! 10,000 x 1,000 targets are measured by the ignored `scale` test and the CLI (see README).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

// The same allocator as the `rantai-sim` binary, so these numbers match the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use rantai_sim::{Sim, SimConfig};

fn bitcoin(peers: u32, blocks: u64) -> SimConfig {
    SimConfig {
        peers,
        blocks,
        threads: Some(1),
        ..SimConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    rantai_sim::alloc::keep_freed_memory();
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for (peers, blocks) in [(200u32, 20u64), (1000, 10)] {
        // Events per run, measured once, so criterion reports events per second.
        let events = Sim::new(bitcoin(peers, blocks))
            .unwrap()
            .run()
            .engine
            .events;
        g.throughput(Throughput::Elements(events));
        g.bench_function(format!("bitcoin-2019/{peers}peers/{blocks}blocks"), |b| {
            b.iter(|| Sim::new(bitcoin(peers, blocks)).unwrap().run())
        });
    }
    let mut small = SimConfig::small(300);
    small.blocks = 30;
    small.block_interval = Some(rantai_sim::Millis::from_secs(5));
    let events = Sim::new(small.clone()).unwrap().run().engine.events;
    g.throughput(Throughput::Elements(events));
    g.bench_function("uniform-latency/300peers/30blocks", |b| {
        b.iter(|| Sim::new(small.clone()).unwrap().run())
    });
    g.finish();

    // The parallel engine: the same run (same bytes out) on 1 and 2 threads.
    let mut g = c.benchmark_group("threads");
    g.sample_size(10);
    let cfg = bitcoin(3000, 5);
    let events = Sim::new(cfg.clone()).unwrap().run().engine.events;
    g.throughput(Throughput::Elements(events));
    for threads in [1usize, 2] {
        let cfg = SimConfig {
            threads: Some(threads),
            ..cfg.clone()
        };
        g.bench_function(
            format!("bitcoin-2019/3000peers/5blocks/{threads}threads"),
            |b| b.iter(|| Sim::new(cfg.clone()).unwrap().run()),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
