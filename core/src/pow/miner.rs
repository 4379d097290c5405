//! [`Miner`]: the nonce search for one header on the calling thread, pure, bounded by a nonce
//! range and cancellable.
//!
//! The header's first 64 bytes never change while the nonce does, so their SHA-256 midstate is
//! computed once; each try then costs one compression for the header's tail and one for the
//! outer hash, the minimum for double SHA-256 of a 96-byte header. The resulting hash is the
//! block hash ([`crate::block::Header::hash`]) and the target check is the validator's
//! (`leading_zero_bits >= difficulty`); the tests hold both to that.
#![forbid(unsafe_code)]

use super::kernel::{compress_portable, meets, ShaNi, H0};
use crate::block::{Block, Header, Template, HEADER_LEN, NONCE_OFFSET};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// How many tries run between two looks at the cancel flag.
pub(super) const CANCEL_CHECK_EVERY: u64 = 1 << 14;

/// Precomputed state for mining one header.
#[derive(Clone)]
pub struct Miner {
    midstate: [u32; 8],
    tail: [u8; 64],
    /// The tail block as big-endian message words; words 6 and 7 hold the nonce.
    tail_words: [u32; 16],
    difficulty: u32,
    shani: Option<ShaNi>,
}

impl Miner {
    /// Prepares a search over the nonces of `header` (its own nonce is ignored).
    pub fn new(header: &Header) -> Miner {
        let enc = header.encode();
        let mut midstate = H0;
        let mut head = [0u8; 64];
        head.copy_from_slice(&enc[..64]);
        compress_portable(&mut midstate, &head);
        let mut tail = [0u8; 64];
        tail[..HEADER_LEN - 64].copy_from_slice(&enc[64..]);
        tail[HEADER_LEN - 64] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
        let mut tail_words = [0u32; 16];
        for (i, w) in tail_words.iter_mut().enumerate() {
            *w = u32::from_be_bytes([
                tail[4 * i],
                tail[4 * i + 1],
                tail[4 * i + 2],
                tail[4 * i + 3],
            ]);
        }
        Miner {
            midstate,
            tail,
            tail_words,
            difficulty: header.difficulty,
            shani: ShaNi::detect(),
        }
    }

    /// Block hash words for `nonce` through the SHA extensions, when the CPU has them.
    #[inline]
    fn hash_words_fast(&self, nonce: u64) -> Option<[u32; 8]> {
        let sha = self.shani?;
        let mut w = self.tail_words;
        // The nonce is little-endian in the header; message words are read big-endian.
        w[6] = (nonce as u32).swap_bytes();
        w[7] = ((nonce >> 32) as u32).swap_bytes();
        let mut inner = self.midstate;
        sha.compress(&mut inner, &w);
        let mut outer = [0u32; 16];
        outer[..8].copy_from_slice(&inner);
        outer[8] = 0x8000_0000;
        outer[15] = 256;
        let mut out = H0;
        sha.compress(&mut out, &outer);
        Some(out)
    }

    /// Block hash words (big-endian order of the digest) for `nonce`.
    #[inline]
    fn hash_words(&self, tail: &mut [u8; 64], outer: &mut [u8; 64], nonce: u64) -> [u32; 8] {
        if let Some(words) = self.hash_words_fast(nonce) {
            return words;
        }
        tail[NONCE_OFFSET - 64..NONCE_OFFSET - 64 + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut inner = self.midstate;
        compress_portable(&mut inner, tail);
        for (i, w) in inner.iter().enumerate() {
            outer[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        let mut out = H0;
        compress_portable(&mut out, outer);
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
            if let Some(sha) = self.shani {
                let found = sha.search(
                    &self.midstate,
                    &self.tail_words,
                    self.difficulty,
                    nonce..chunk_end,
                );
                if found.is_some() {
                    return found;
                }
                nonce = chunk_end;
            }
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

/// Mining a template lives here rather than in `block`, which knows nothing of the miner.
impl Template {
    /// Searches nonces from 0 until the proof of work is met or `cancel` is set.
    pub fn solve(self, cancel: &AtomicBool) -> Option<Block> {
        let nonce = Miner::new(&self.header).search(0..u64::MAX, cancel)?;
        Some(self.into_block(nonce))
    }
}

/// The outer hash's padded block: 32 digest bytes, the `0x80` terminator, the 256-bit length.
fn outer_block() -> [u8; 64] {
    let mut outer = [0u8; 64];
    outer[32] = 0x80;
    outer[56..].copy_from_slice(&256u64.to_be_bytes());
    outer
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
    fn shani_path_matches_generic_path() {
        let mut m = Miner::new(&header(0));
        let Some(sha) = m.shani else {
            return;
        };
        let mut tail = m.tail;
        let mut outer = outer_block();
        for nonce in [0u64, 7, 1 << 40, u64::MAX - 3] {
            let fast = m.hash_words_fast(nonce).expect("sha extensions present");
            m.shani = None;
            let slow = m.hash_words(&mut tail, &mut outer, nonce);
            m.shani = Some(sha);
            assert_eq!(fast, slow, "nonce {nonce}");
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

    /// Both paths find the same first nonce, the one a plain hash of each header finds.
    #[test]
    fn both_paths_find_the_nonce_plain_hashing_finds() {
        let h = header(8);
        let fast = Miner::new(&h);
        let mut slow = fast.clone();
        slow.shani = None;
        let cancel = AtomicBool::new(false);
        let plain = (0..1u64 << 16)
            .find(|&n| {
                let mut hh = h;
                hh.nonce = n;
                hh.hash().leading_zero_bits() >= 8
            })
            .expect("2^16 tries find 8 bits");
        assert_eq!(fast.search(0..1 << 16, &cancel), Some(plain));
        assert_eq!(slow.search(0..1 << 16, &cancel), Some(plain));
    }
}
