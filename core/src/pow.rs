//! Proof of work: a pure, bounded, cancellable nonce search.
//!
//! The header's first 64 bytes never change while the nonce does, so their SHA-256 midstate is
//! computed once; each try then costs one compression for the header's tail and one for the
//! outer hash, the minimum for double SHA-256 of a 96-byte header.

use crate::block::{Header, HEADER_LEN, NONCE_OFFSET};
use sha2::digest::generic_array::GenericArray;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// How many tries run between two looks at the cancel flag.
const CANCEL_CHECK_EVERY: u64 = 1 << 14;

/// Precomputed state for mining one header.
#[derive(Clone)]
pub struct Miner {
    midstate: [u32; 8],
    tail: [u8; 64],
    difficulty: u32,
}

impl Miner {
    pub fn new(header: &Header) -> Miner {
        let enc = header.encode();
        let mut midstate = H0;
        sha2::compress256(&mut midstate, &[*GenericArray::from_slice(&enc[..64])]);
        let mut tail = [0u8; 64];
        tail[..HEADER_LEN - 64].copy_from_slice(&enc[64..]);
        tail[HEADER_LEN - 64] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
        Miner {
            midstate,
            tail,
            difficulty: header.difficulty,
        }
    }

    /// Block hash words (big-endian order of the digest) for `nonce`.
    #[inline]
    fn hash_words(&self, tail: &mut [u8; 64], outer: &mut [u8; 64], nonce: u64) -> [u32; 8] {
        tail[NONCE_OFFSET - 64..NONCE_OFFSET - 64 + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut inner = self.midstate;
        sha2::compress256(&mut inner, &[*GenericArray::from_slice(&tail[..])]);
        for (i, w) in inner.iter().enumerate() {
            outer[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        let mut out = H0;
        sha2::compress256(&mut out, &[*GenericArray::from_slice(&outer[..])]);
        out
    }

    /// Whether `nonce` meets the header's difficulty.
    pub fn check(&self, nonce: u64) -> bool {
        let mut tail = self.tail;
        let mut outer = outer_block();
        meets(
            &self.hash_words(&mut tail, &mut outer, nonce),
            self.difficulty,
        )
    }

    /// Tries every nonce in `range` in order; returns the first that meets the difficulty, or
    /// `None` when the range is exhausted or `cancel` was set.
    pub fn search(&self, range: Range<u64>, cancel: &AtomicBool) -> Option<u64> {
        let mut tail = self.tail;
        let mut outer = outer_block();
        let mut nonce = range.start;
        while nonce < range.end {
            let chunk_end = range.end.min(nonce.saturating_add(CANCEL_CHECK_EVERY));
            while nonce < chunk_end {
                if meets(
                    &self.hash_words(&mut tail, &mut outer, nonce),
                    self.difficulty,
                ) {
                    return Some(nonce);
                }
                nonce += 1;
            }
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
        }
        None
    }
}

fn outer_block() -> [u8; 64] {
    let mut outer = [0u8; 64];
    outer[32] = 0x80;
    outer[56..].copy_from_slice(&256u64.to_be_bytes());
    outer
}

#[inline]
fn meets(words: &[u32; 8], difficulty: u32) -> bool {
    let mut need = difficulty;
    for w in words {
        if need == 0 {
            return true;
        }
        if need >= 32 {
            if *w != 0 {
                return false;
            }
            need -= 32;
        } else {
            return w.leading_zeros() >= need;
        }
    }
    need == 0
}

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
                    let r = miner.search_until(start..end, stop);
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

struct StopEither<'a> {
    a: &'a AtomicBool,
    b: &'a AtomicBool,
}

impl Miner {
    fn search_until(&self, range: Range<u64>, stop: &StopEither<'_>) -> Option<u64> {
        let mut start = range.start;
        while start < range.end {
            let end = range.end.min(start.saturating_add(CANCEL_CHECK_EVERY));
            if let Some(n) = self.search(start..end, &AtomicBool::new(false)) {
                return Some(n);
            }
            if stop.a.load(Ordering::Relaxed) || stop.b.load(Ordering::Relaxed) {
                return None;
            }
            start = end;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Hash32;

    fn header(difficulty: u32) -> Header {
        Header {
            version: 1,
            difficulty,
            height: 1,
            timestamp_ms: 99,
            prev: Hash32([7; 32]),
            data_hash: Hash32([9; 32]),
            nonce: 0,
        }
    }

    #[test]
    fn midstate_matches_plain_double_sha() {
        let h = header(0);
        let m = Miner::new(&h);
        let mut tail = m.tail;
        let mut outer = outer_block();
        for nonce in [0u64, 1, 12345, u64::MAX] {
            let words = m.hash_words(&mut tail, &mut outer, nonce);
            let mut bytes = [0u8; 32];
            for (i, w) in words.iter().enumerate() {
                bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
            }
            let mut hh = h;
            hh.nonce = nonce;
            assert_eq!(Hash32(bytes), hh.hash());
        }
    }

    #[test]
    fn search_finds_valid_nonce_and_respects_bounds() {
        let h = header(10);
        let m = Miner::new(&h);
        let cancel = AtomicBool::new(false);
        let n = m
            .search(0..1 << 20, &cancel)
            .expect("2^20 tries find 10 bits");
        let mut hh = h;
        hh.nonce = n;
        assert!(hh.hash().leading_zero_bits() >= 10);
        assert!(m.check(n));
        // Every nonce before the answer fails, so the search is exhaustive and ordered.
        assert!((0..n).all(|k| !m.check(k)));
        assert_eq!(m.search(0..n, &cancel), None);
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(Miner::new(&header(60)).search(0..u64::MAX, &cancel), None);
    }

    #[test]
    fn parallel_search_finds_valid_nonce() {
        let h = header(12);
        let n = search_parallel(&h, 0..1 << 24, 2, &AtomicBool::new(false)).expect("found");
        assert!(Miner::new(&h).check(n));
    }
}
