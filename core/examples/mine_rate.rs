//! Prints mining tries per second on one and on all cores: `cargo run --release -p rantai-core --example mine_rate`.

use rantai_core::block::Header;
use rantai_core::pow::{search_parallel, Miner};
use rantai_core::Hash32;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() {
    let header = Header {
        version: 1,
        difficulty: 255,
        height: 1,
        timestamp_ms: 1,
        prev: Hash32([1; 32]),
        data_hash: Hash32([2; 32]),
        nonce: 0,
    };
    let cancel = AtomicBool::new(false);
    let n = 1u64 << 25;
    let t = Instant::now();
    let _ = Miner::new(&header).search(0..n, &cancel);
    let one = n as f64 / t.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let t = Instant::now();
    let _ = search_parallel(&header, 0..n * threads as u64, threads, &cancel);
    let all = (n * threads as u64) as f64 / t.elapsed().as_secs_f64();
    println!(
        "1 thread: {:.2} M tries/s; {threads} threads: {:.2} M tries/s ({:.2}x)",
        one / 1e6,
        all / 1e6,
        all / one
    );
}
