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
    /// The tail block as big-endian message words; words 6 and 7 hold the nonce.
    tail_words: [u32; 16],
    difficulty: u32,
    shani: bool,
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
            shani: shani::available(),
        }
    }

    /// Block hash words for `nonce` through the SHA extensions, when the CPU has them.
    #[inline]
    fn hash_words_fast(&self, nonce: u64) -> Option<[u32; 8]> {
        if !self.shani {
            return None;
        }
        let mut w = self.tail_words;
        // The nonce is little-endian in the header; message words are read big-endian.
        w[6] = (nonce as u32).swap_bytes();
        w[7] = ((nonce >> 32) as u32).swap_bytes();
        let mut inner = self.midstate;
        let mut outer = [0u32; 16];
        // SAFETY: `shani` is true only when the CPU reports the sha, sse2, ssse3 and sse4.1 features.
        unsafe {
            shani::compress(&mut inner, &w);
            outer[..8].copy_from_slice(&inner);
            outer[8] = 0x8000_0000;
            outer[15] = 256;
            let mut out = H0;
            shani::compress(&mut out, &outer);
            Some(out)
        }
    }

    /// Block hash words (big-endian order of the digest) for `nonce`.
    #[inline]
    fn hash_words(&self, tail: &mut [u8; 64], outer: &mut [u8; 64], nonce: u64) -> [u32; 8] {
        if let Some(words) = self.hash_words_fast(nonce) {
            return words;
        }
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
            if self.shani {
                // SAFETY: `shani` is set only when the CPU has the required features.
                let found = unsafe {
                    shani::search(
                        &self.midstate,
                        &self.tail_words,
                        self.difficulty,
                        nonce..chunk_end,
                    )
                };
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

/// SHA-256 compression with the x86 SHA extensions (two rounds per `sha256rnds2`).
#[cfg(target_arch = "x86_64")]
mod shani {
    use std::arch::x86_64::*;

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    pub fn available() -> bool {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }

    /// The first nonce in `range` whose double SHA-256 meets `difficulty`.
    ///
    /// # Safety
    /// The CPU must support the sha, sse2, ssse3 and sse4.1 features ([`available`]).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn search(
        midstate: &[u32; 8],
        tail: &[u32; 16],
        difficulty: u32,
        range: std::ops::Range<u64>,
    ) -> Option<u64> {
        // Two nonces per step: SHA rounds are latency-bound, so two independent hash chains
        // keep the SHA unit busy while each waits on its own previous round.
        let mut w = [*tail, *tail];
        let mut outer = [[0u32; 16]; 2];
        for o in &mut outer {
            o[8] = 0x8000_0000;
            o[15] = 256;
        }
        let mut nonce = range.start;
        while nonce < range.end {
            let pair = [nonce, nonce.wrapping_add(1)];
            for l in 0..2 {
                w[l][6] = (pair[l] as u32).swap_bytes();
                w[l][7] = ((pair[l] >> 32) as u32).swap_bytes();
            }
            let mut inner = [*midstate, *midstate];
            compress2(&mut inner, &w);
            for l in 0..2 {
                outer[l][..8].copy_from_slice(&inner[l]);
            }
            let mut out = [super::H0, super::H0];
            compress2(&mut out, &outer);
            for l in 0..2 {
                if pair[l] < range.end && pair[l] >= nonce && super::meets(&out[l], difficulty) {
                    return Some(pair[l]);
                }
            }
            nonce = match nonce.checked_add(2) {
                Some(n) => n,
                None => break,
            };
        }
        None
    }

    /// Message words and state of one of the two interleaved hash chains.
    #[derive(Clone, Copy)]
    struct Lane {
        s0: __m128i,
        s1: __m128i,
        m0: __m128i,
        m1: __m128i,
        m2: __m128i,
        m3: __m128i,
    }

    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load(state: &[u32; 8], w: &[u32; 16]) -> Lane {
        let abcd = _mm_loadu_si128(state.as_ptr() as *const __m128i);
        let efgh = _mm_loadu_si128(state.as_ptr().add(4) as *const __m128i);
        let cdab = _mm_shuffle_epi32::<0xB1>(abcd);
        let hgfe = _mm_shuffle_epi32::<0x1B>(efgh);
        Lane {
            s0: _mm_alignr_epi8::<8>(cdab, hgfe),
            s1: _mm_blend_epi16::<0xF0>(hgfe, cdab),
            m0: _mm_loadu_si128(w.as_ptr() as *const __m128i),
            m1: _mm_loadu_si128(w.as_ptr().add(4) as *const __m128i),
            m2: _mm_loadu_si128(w.as_ptr().add(8) as *const __m128i),
            m3: _mm_loadu_si128(w.as_ptr().add(12) as *const __m128i),
        }
    }

    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store(state: &mut [u32; 8], l: &Lane, save: &Lane) {
        let a = _mm_add_epi32(l.s0, save.s0);
        let b = _mm_add_epi32(l.s1, save.s1);
        let feba = _mm_shuffle_epi32::<0x1B>(a);
        let dchg = _mm_shuffle_epi32::<0xB1>(b);
        _mm_storeu_si128(
            state.as_mut_ptr() as *mut __m128i,
            _mm_blend_epi16::<0xF0>(feba, dchg),
        );
        _mm_storeu_si128(
            state.as_mut_ptr().add(4) as *mut __m128i,
            _mm_alignr_epi8::<8>(dchg, feba),
        );
    }

    /// Four rounds on both lanes. `c` holds this group's words, `p` the previous group's,
    /// `n` the next group's; the flags say whether the schedule still needs msg2 / msg1.
    macro_rules! group {
        ($a:ident, $b:ident, $i:literal, $c:ident, $p:ident, $n:ident, $msg2:literal, $msg1:literal) => {
            let k = _mm_loadu_si128(K.as_ptr().add(4 * $i) as *const __m128i);
            let mut xa = _mm_add_epi32($a.$c, k);
            let mut xb = _mm_add_epi32($b.$c, k);
            $a.s1 = _mm_sha256rnds2_epu32($a.s1, $a.s0, xa);
            $b.s1 = _mm_sha256rnds2_epu32($b.s1, $b.s0, xb);
            if $msg2 {
                $a.$n = _mm_sha256msg2_epu32(
                    _mm_add_epi32($a.$n, _mm_alignr_epi8::<4>($a.$c, $a.$p)),
                    $a.$c,
                );
                $b.$n = _mm_sha256msg2_epu32(
                    _mm_add_epi32($b.$n, _mm_alignr_epi8::<4>($b.$c, $b.$p)),
                    $b.$c,
                );
            }
            xa = _mm_shuffle_epi32::<0x0E>(xa);
            xb = _mm_shuffle_epi32::<0x0E>(xb);
            $a.s0 = _mm_sha256rnds2_epu32($a.s0, $a.s1, xa);
            $b.s0 = _mm_sha256rnds2_epu32($b.s0, $b.s1, xb);
            if $msg1 {
                $a.$p = _mm_sha256msg1_epu32($a.$p, $a.$c);
                $b.$p = _mm_sha256msg1_epu32($b.$p, $b.$c);
            }
        };
    }

    /// Two independent compressions, interleaved instruction by instruction.
    ///
    /// # Safety
    /// The CPU must support the sha, sse2, ssse3 and sse4.1 features ([`available`]).
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress2(state: &mut [[u32; 8]; 2], w: &[[u32; 16]; 2]) {
        let mut a = load(&state[0], &w[0]);
        let mut b = load(&state[1], &w[1]);
        let (sa, sb) = (a, b);
        group!(a, b, 0, m0, m3, m1, false, false);
        group!(a, b, 1, m1, m0, m2, false, true);
        group!(a, b, 2, m2, m1, m3, false, true);
        group!(a, b, 3, m3, m2, m0, true, true);
        group!(a, b, 4, m0, m3, m1, true, true);
        group!(a, b, 5, m1, m0, m2, true, true);
        group!(a, b, 6, m2, m1, m3, true, true);
        group!(a, b, 7, m3, m2, m0, true, true);
        group!(a, b, 8, m0, m3, m1, true, true);
        group!(a, b, 9, m1, m0, m2, true, true);
        group!(a, b, 10, m2, m1, m3, true, true);
        group!(a, b, 11, m3, m2, m0, true, true);
        group!(a, b, 12, m0, m3, m1, true, true);
        group!(a, b, 13, m1, m0, m2, true, false);
        group!(a, b, 14, m2, m1, m3, true, false);
        group!(a, b, 15, m3, m2, m0, false, false);
        store(&mut state[0], &a, &sa);
        store(&mut state[1], &b, &sb);
    }

    /// One compression of the 16 message words `w` into `state` (the non-hot path: it runs the
    /// two-lane kernel with both lanes equal).
    ///
    /// # Safety
    /// The CPU must support the sha, sse2, ssse3 and sse4.1 features ([`available`]).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn compress(state: &mut [u32; 8], w: &[u32; 16]) {
        let mut both = [*state, *state];
        compress2(&mut both, &[*w, *w]);
        *state = both[0];
    }
}

/// Portable stand-in: no SHA extensions, so the generic path is always used.
#[cfg(not(target_arch = "x86_64"))]
mod shani {
    pub fn available() -> bool {
        false
    }
    pub unsafe fn compress(_state: &mut [u32; 8], _w: &[u32; 16]) {
        unreachable!("available() is false")
    }
    pub unsafe fn search(
        _: &[u32; 8],
        _: &[u32; 16],
        _: u32,
        _: std::ops::Range<u64>,
    ) -> Option<u64> {
        unreachable!("available() is false")
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
    fn shani_path_matches_generic_path() {
        let mut m = Miner::new(&header(0));
        if !m.shani {
            return;
        }
        let mut tail = m.tail;
        let mut outer = outer_block();
        for nonce in [0u64, 7, 1 << 40, u64::MAX - 3] {
            let fast = m.hash_words_fast(nonce).expect("sha extensions present");
            m.shani = false;
            let slow = m.hash_words(&mut tail, &mut outer, nonce);
            m.shani = true;
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

    #[test]
    fn parallel_search_finds_valid_nonce() {
        let h = header(12);
        let n = search_parallel(&h, 0..1 << 24, 2, &AtomicBool::new(false)).expect("found");
        assert!(Miner::new(&h).check(n));
    }
}
