//! The nonce search split across OS threads: each thread runs a [`Miner`] over its own slice of
//! the range, and the first solution found stops the others.
//!
//! Which solution wins depends on thread timing, so callers that need a reproducible block
//! (tests, the simulator) use [`Miner::search`] or [`crate::Template::solve`] instead.
#![forbid(unsafe_code)]

use super::miner::{Miner, CANCEL_CHECK_EVERY};
use crate::block::Header;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// Searches `range` split across `threads` OS threads; the first solution found cancels the rest.
/// Returns the lowest-found nonce of the thread that won, or `None` if none or cancelled.
pub fn search_parallel(
    header: &Header,
    range: Range<u64>,
    threads: usize,
    cancel: &AtomicBool,
) -> Option<u64> {
    let threads = threads.max(1) as u64;
    let miner = Miner::new(header);
    let span = (range.end - range.start) / threads;
    let found = AtomicBool::new(false);
    let stop = StopEither {
        a: cancel,
        b: &found,
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = range.start + t * span;
                let end = if t + 1 == threads {
                    range.end
                } else {
                    start + span
                };
                let miner = &miner;
                let stop = &stop;
                s.spawn(move || {
                    let r = search_until(miner, start..end, stop);
                    if r.is_some() {
                        stop.b.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .min()
    })
}

/// Stops a thread when either the caller cancels (`a`) or another thread found a nonce (`b`).
struct StopEither<'a> {
    a: &'a AtomicBool,
    b: &'a AtomicBool,
}

/// [`Miner::search`] over `range` in chunks, looking at both stop flags between chunks.
fn search_until(miner: &Miner, range: Range<u64>, stop: &StopEither<'_>) -> Option<u64> {
    let mut start = range.start;
    while start < range.end {
        let end = range.end.min(start.saturating_add(CANCEL_CHECK_EVERY));
        if let Some(n) = miner.search(start..end, &AtomicBool::new(false)) {
            return Some(n);
        }
        if stop.a.load(Ordering::Relaxed) || stop.b.load(Ordering::Relaxed) {
            return None;
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Hash32;

    #[test]
    fn parallel_search_finds_valid_nonce() {
        let h = Header {
            version: 1,
            difficulty: 12,
            height: 1,
            timestamp_ms: 99,
            prev: Hash32([7; 32]),
            data_hash: Hash32([9; 32]),
            nonce: 0,
        };
        let n = search_parallel(&h, 0..1 << 24, 2, &AtomicBool::new(false)).expect("found");
        assert!(Miner::new(&h).check(n));
    }

    #[test]
    fn a_cancelled_parallel_search_returns_none() {
        let mut h = Header::decode(&[0; 96]);
        h.difficulty = 200;
        assert_eq!(
            search_parallel(&h, 0..u64::MAX, 2, &AtomicBool::new(true)),
            None
        );
    }
}
