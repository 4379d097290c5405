//! Core benchmarks: mining throughput (against `openssl speed` measured in the same run),
//! validating and connecting 100,000 blocks, and a 1,000-block reorg.
//!
//! Run: `cargo bench --bench core`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rantai_core::block::{Header, Item};
use rantai_core::chain::{Chain, OrphanLimits};
use rantai_core::pow::{search_parallel, Miner};
use rantai_core::{Block, Hash32, Millis, Params, Template};
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

const NOW: Millis = Millis(2_000_000_000_000);

/// A header no nonce can satisfy, so searches run their whole range.
fn impossible_header() -> Header {
    Header {
        version: 1,
        difficulty: 255,
        height: 1,
        timestamp_ms: 1,
        prev: Hash32([1; 32]),
        data_hash: Hash32([2; 32]),
        nonce: 0,
    }
}

/// SHA-256 bytes/s of `openssl speed -evp sha256` on 16 KiB blocks, if openssl is installed.
fn openssl_sha256_bytes_per_sec() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "2",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "sha256   <n>k" in thousands of bytes per second.
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("sha256"))?;
    let v = line.split_whitespace().last()?.trim_end_matches('k');
    Some(v.parse::<f64>().ok()? * 1000.0)
}

fn mining(c: &mut Criterion) {
    let miner = Miner::new(&impossible_header());
    let cancel = AtomicBool::new(false);
    const TRIES: u64 = 1 << 22;

    // A direct measurement printed next to openssl's, for the README's ratio.
    let start = Instant::now();
    black_box(miner.search(0..TRIES * 4, &cancel));
    let one = (TRIES * 4) as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    black_box(search_parallel(
        &impossible_header(),
        0..TRIES * 8,
        2,
        &cancel,
    ));
    let two = (TRIES * 8) as f64 / start.elapsed().as_secs_f64();
    println!(
        "mining: {:.2} M tries/s on 1 thread, {:.2} M tries/s on 2 threads ({:.2}x)",
        one / 1e6,
        two / 1e6,
        two / one
    );
    match openssl_sha256_bytes_per_sec() {
        Some(bps) => {
            // Two 64-byte compressions per try.
            let bound = bps / 64.0 / 2.0;
            println!(
                "openssl sha256: {:.0} MB/s = {:.1} M compressions/s -> bound {:.2} M tries/s; rantai reaches {:.0}% of it",
                bps / 1e6,
                bps / 64.0 / 1e6,
                bound / 1e6,
                100.0 * one / bound
            );
        }
        None => println!("openssl not available: no reference figure"),
    }

    let mut g = c.benchmark_group("mining");
    g.throughput(Throughput::Elements(TRIES));
    g.sample_size(10);
    g.bench_function("tries_1_thread", |b| {
        b.iter(|| black_box(miner.search(0..TRIES, &cancel)))
    });
    g.throughput(Throughput::Elements(2 * TRIES));
    g.bench_function("tries_2_threads", |b| {
        b.iter(|| {
            black_box(search_parallel(
                &impossible_header(),
                0..2 * TRIES,
                2,
                &cancel,
            ))
        })
    });
    g.finish();
}

fn chain_of(params: &Params, from: &Block, n: usize, salt: u64) -> Vec<Arc<Block>> {
    let mut out: Vec<Arc<Block>> = Vec::with_capacity(n);
    let mut parent = from.clone();
    for i in 0..n {
        let item = Item {
            nonce: salt + i as u64,
            text: "bench".into(),
        };
        let b = Template::new(
            parent.header(),
            parent.hash(),
            params.min_difficulty,
            Millis(1 + i as u64),
            vec![item],
        )
        .solve(&AtomicBool::new(false))
        .expect("difficulty 0");
        parent = b.clone();
        out.push(Arc::new(b));
    }
    out
}

fn connect(c: &mut Criterion) {
    let params = Arc::new(Params::new("bench", 0));
    let g0 = params.genesis().as_ref().clone();
    let blocks = chain_of(&params, &g0, 100_000, 0);
    let mut g = c.benchmark_group("chain");
    g.sample_size(10);
    g.throughput(Throughput::Elements(blocks.len() as u64));
    g.bench_function("validate_connect_100k", |b| {
        b.iter_batched(
            || Chain::new(params.clone()),
            |mut chain| {
                for blk in &blocks {
                    chain.insert(blk.clone(), NOW).expect("valid");
                }
                assert_eq!(chain.height(), 100_000);
                chain
            },
            BatchSize::PerIteration,
        )
    });

    let a = chain_of(&params, &g0, 1000, 1_000_000);
    let bside = chain_of(&params, &g0, 1001, 2_000_000);
    g.throughput(Throughput::Elements(1));
    g.bench_function("reorg_1000", |b| {
        b.iter_batched(
            || {
                let mut chain = Chain::with_orphan_limits(params.clone(), OrphanLimits::default());
                for blk in a.iter().chain(&bside[..1000]) {
                    chain.insert(blk.clone(), NOW).expect("valid");
                }
                chain
            },
            |mut chain| {
                chain.insert(bside[1000].clone(), NOW).expect("valid");
                assert_eq!(chain.tip().hash(), bside[1000].hash());
                chain
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, mining, connect);
criterion_main!(benches);
