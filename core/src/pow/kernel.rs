//! SHA-256 compression for the miner, and the target check on digest words.
//!
//! Two paths give bit-identical results: [`ShaNi`], the x86 SHA extensions hashing two nonces
//! interleaved, and [`compress_portable`], the `sha2` crate. A [`ShaNi`] value exists only where
//! the CPU has the extensions, so callers choose the path without `unsafe`.
//!
//! # Why this module needs `unsafe`
//!
//! The SHA extensions are reached through `std::arch` intrinsics, and functions compiled with
//! `#[target_feature]` may only run on a CPU that has those features; both are `unsafe` to call.
//! One invariant upholds every `unsafe` block here: a [`ShaNi`] can only be made by
//! [`ShaNi::detect`], which returns one only after the CPU reported the sha, sse2, ssse3 and
//! sse4.1 features at run time, and each `unsafe` call is either made through a `ShaNi` or from
//! a function compiled with those same features. Memory accesses are unaligned loads and stores
//! of 16 bytes within fixed-size arrays (`[u32; 8]`, `[u32; 16]`, the 64-entry `K`), at offsets
//! the types bound. The crate denies `unsafe` everywhere else, except for one prefetch
//! intrinsic in `hint`.
#![allow(unsafe_code)]

use sha2::digest::generic_array::GenericArray;
use std::ops::Range;

/// SHA-256 initial state.
pub(super) const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// One SHA-256 compression of the 64-byte `block` into `state`, without CPU-specific code.
#[inline]
pub(super) fn compress_portable(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, &[*GenericArray::from_slice(block)]);
}

/// Whether digest `words` (the hash as big-endian words) have at least `difficulty` leading
/// zero bits: the same answer as [`crate::Hash32::leading_zero_bits`] `>= difficulty`, without
/// converting the words to bytes.
#[inline]
pub(super) fn meets(words: &[u32; 8], difficulty: u32) -> bool {
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

/// Proof that this CPU has the SHA extensions (and the SSE levels the kernel uses): only
/// [`ShaNi::detect`] makes one, so its methods are safe to call.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShaNi {
    #[cfg(target_arch = "x86_64")]
    _detected: (),
    /// Off x86-64 no value can be made, so the methods are statically unreachable.
    #[cfg(not(target_arch = "x86_64"))]
    never: std::convert::Infallible,
}

#[cfg(target_arch = "x86_64")]
impl ShaNi {
    /// `Some` when the CPU reports the sha, sse2, ssse3 and sse4.1 features.
    pub(super) fn detect() -> Option<ShaNi> {
        let present = is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1");
        present.then_some(ShaNi { _detected: () })
    }

    /// One compression of the 16 message words `w` into `state`.
    #[inline]
    pub(super) fn compress(self, state: &mut [u32; 8], w: &[u32; 16]) {
        // SAFETY: `self` exists only if `detect` found the features `x86::compress` needs.
        unsafe { x86::compress(state, w) }
    }

    /// The first nonce in `range` whose double SHA-256 meets `difficulty`, given the midstate
    /// of the header's first 64 bytes and its tail block as message words (nonce in words 6
    /// and 7).
    #[inline]
    pub(super) fn search(
        self,
        midstate: &[u32; 8],
        tail: &[u32; 16],
        difficulty: u32,
        range: Range<u64>,
    ) -> Option<u64> {
        // SAFETY: `self` exists only if `detect` found the features `x86::search` needs.
        unsafe { x86::search(midstate, tail, difficulty, range) }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl ShaNi {
    /// Never: the SHA-extension kernel is x86-64 only.
    pub(super) fn detect() -> Option<ShaNi> {
        None
    }

    pub(super) fn compress(self, _state: &mut [u32; 8], _w: &[u32; 16]) {
        match self.never {}
    }

    pub(super) fn search(
        self,
        _midstate: &[u32; 8],
        _tail: &[u32; 16],
        _difficulty: u32,
        _range: Range<u64>,
    ) -> Option<u64> {
        match self.never {}
    }
}

/// SHA-256 compression with the x86 SHA extensions (two rounds per `sha256rnds2`).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{meets, H0};
    use std::arch::x86_64::*;
    use std::ops::Range;

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

    /// The first nonce in `range` whose double SHA-256 meets `difficulty`.
    ///
    /// # Safety
    /// The CPU must support the sha, sse2, ssse3 and sse4.1 features ([`super::ShaNi`]).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn search(
        midstate: &[u32; 8],
        tail: &[u32; 16],
        difficulty: u32,
        range: Range<u64>,
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
            let mut out = [H0, H0];
            compress2(&mut out, &outer);
            for l in 0..2 {
                if pair[l] < range.end && pair[l] >= nonce && meets(&out[l], difficulty) {
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
    /// The CPU must support the sha, sse2, ssse3 and sse4.1 features ([`super::ShaNi`]).
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
    /// The CPU must support the sha, sse2, ssse3 and sse4.1 features ([`super::ShaNi`]).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress(state: &mut [u32; 8], w: &[u32; 16]) {
        let mut both = [*state, *state];
        compress2(&mut both, &[*w, *w]);
        *state = both[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Hash32;

    /// The miner's target check and the validator's (`leading_zero_bits`) agree, so a nonce
    /// the miner accepts is a block the chain accepts and the reverse.
    #[test]
    fn meets_agrees_with_leading_zero_bits() {
        for zeros in 0..=256usize {
            let mut bytes = [0xffu8; 32];
            for bit in 0..zeros {
                bytes[bit / 8] &= !(0x80 >> (bit % 8));
            }
            let mut words = [0u32; 8];
            for (w, b) in words.iter_mut().zip(bytes.chunks_exact(4)) {
                *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            }
            let lz = Hash32(bytes).leading_zero_bits();
            assert_eq!(lz as usize, zeros);
            for difficulty in 0..=260 {
                assert_eq!(
                    meets(&words, difficulty),
                    lz >= difficulty,
                    "{zeros} {difficulty}"
                );
            }
        }
    }

    #[test]
    fn shani_compression_matches_portable() {
        let Some(sha) = ShaNi::detect() else {
            return;
        };
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let mut words = [0u32; 16];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        let (mut fast, mut slow) = (H0, H0);
        sha.compress(&mut fast, &words);
        compress_portable(&mut slow, &block);
        assert_eq!(fast, slow);
    }
}
