//! Identity and quantity newtypes shared by every module: hashes, time, work, connection ids.
#![forbid(unsafe_code)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds on the driver's clock (wall clock in the node, virtual time in the simulator).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// The driver clock's origin.
    pub const ZERO: Millis = Millis(0);

    /// Adds a duration, saturating instead of wrapping (also available as `+`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, ms: Millis) -> Millis {
        Millis(self.0.saturating_add(ms.0))
    }

    /// Time elapsed since `earlier`, zero if `earlier` is in the future.
    pub fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }

    /// `s` seconds, saturating.
    pub fn from_secs(s: u64) -> Millis {
        Millis(s.saturating_mul(1000))
    }
}

impl std::ops::Add for Millis {
    type Output = Millis;
    fn add(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Driver-chosen identifier of one connection (not of a remote node: a node reached twice has two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Cumulative proof of work: the expected number of hash tries, `2^difficulty` per block.
///
/// Serialized as a decimal string: JSON numbers lose precision past 2^53 in many readers, and
/// serde's internally tagged enums cannot buffer 128-bit integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Work(pub u128);

impl Serialize for Work {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse::<u128>()
            .map(Work)
            .map_err(serde::de::Error::custom)
    }
}

impl Work {
    /// Work of one block mined at `difficulty` leading zero bits.
    pub fn of_difficulty(difficulty: u32) -> Work {
        Work(1u128.checked_shl(difficulty).unwrap_or(u128::MAX))
    }

    /// The sum, capped at `u128::MAX` (a chain of maximal difficulty reaches it).
    pub fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }
}

/// A SHA-256 digest: block hashes, data hashes and item ids. Prints and serializes as lowercase hex.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Hash32(pub [u8; 32]);

/// Byte-wise (lexicographic) order, compared as four big-endian words: the same order as
/// the derived one, without a `memcmp` call per comparison in the peers' ordered maps.
impl Ord for Hash32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let word = |h: &Hash32, i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h.0[i * 8..i * 8 + 8]);
            u64::from_be_bytes(b)
        };
        (0..4)
            .map(|i| word(self, i).cmp(&word(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Hash32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hash of a block header (double SHA-256).
pub type BlockHash = Hash32;

impl Hash32 {
    /// All zero bytes: the genesis block's `prev`.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// Number of leading zero bits, the quantity proof of work is measured in.
    pub fn leading_zero_bits(&self) -> u32 {
        let mut bits = 0;
        for b in self.0 {
            if b == 0 {
                bits += 8;
            } else {
                return bits + b.leading_zeros();
            }
        }
        bits
    }

    /// A well-mixed 64-bit key for hash tables and windows. It reads the last eight bytes
    /// (proof of work zeroes the first ones) and folds them through a 128-bit multiply, so
    /// the low bits a hash table indexes by depend on every input bit.
    pub fn key_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[24..]);
        let m = u128::from(u64::from_le_bytes(b)) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        (m as u64) ^ ((m >> 64) as u64)
    }

    /// Short form for logs: the first 8 hex digits.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Hash32, HexError> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(HexError::Length(bytes.len()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(HexError::Digit)?;
            let lo = hex_val(pair[1]).ok_or(HexError::Digit)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Hash32(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a hex string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Not 64 characters long (the length found).
    #[error("expected 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("invalid hex digit")]
    Digit,
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        // The buffer holds only ASCII hex digits.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl std::str::FromStr for Hash32 {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash32::from_hex(s)
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash32::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash32 {
    use sha2::{Digest, Sha256};
    Hash32(Sha256::digest(data).into())
}

/// SHA-256(SHA-256(data)), the block-hash function.
pub fn sha256d(data: &[u8]) -> Hash32 {
    sha256(&sha256(data).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_leading_zeros() {
        let h = sha256(b"abc");
        assert_eq!(
            h.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hash32::from_hex(&h.to_string()), Ok(h));
        assert_eq!(Hash32::from_hex("zz"), Err(HexError::Length(2)));
        let mut z = [0u8; 32];
        z[2] = 0x10;
        assert_eq!(Hash32(z).leading_zero_bits(), 19);
        assert_eq!(Hash32::ZERO.leading_zero_bits(), 256);
    }

    proptest::proptest! {
        #[test]
        fn hash_order_is_byte_order(
            a in proptest::array::uniform32(proptest::num::u8::ANY),
            i in 0usize..32,
            x in proptest::num::u8::ANY,
        ) {
            // `b` differs from `a` in one byte at most, anywhere, so every word position gets
            // to decide the order.
            let mut b = a;
            b[i] = x;
            proptest::prop_assert_eq!(Hash32(a).cmp(&Hash32(b)), a.cmp(&b));
            proptest::prop_assert_eq!(Hash32(b).cmp(&Hash32(a)), b.cmp(&a));
            proptest::prop_assert_eq!(Hash32(a).cmp(&Hash32(a)), std::cmp::Ordering::Equal);
        }
    }

    #[test]
    fn hex_reads_both_cases_and_every_digit() {
        let lower = "0123456789abcdef".repeat(4);
        let upper = lower.to_uppercase();
        let h = Hash32::from_hex(&lower).expect("lower case");
        assert_eq!(Hash32::from_hex(&upper), Ok(h));
        assert_eq!(upper.parse::<Hash32>(), Ok(h));
        assert_eq!(h.0[..8], [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(h.to_string(), lower);
        assert_eq!(h.short(), "01234567");
        assert_eq!(format!("{h:?}"), "01234567");
        let bad = format!("g{}", &lower[1..]);
        assert_eq!(Hash32::from_hex(&bad), Err(HexError::Digit));
        assert_eq!(bad.parse::<Hash32>(), Err(HexError::Digit));
    }

    #[test]
    fn millis_and_conn_ids_print_and_add() {
        assert_eq!(Millis(7) + Millis(5), Millis(12));
        assert_eq!(Millis(u64::MAX) + Millis(1), Millis(u64::MAX));
        assert_eq!(Millis(1500).to_string(), "1500ms");
        assert_eq!(ConnId(4).to_string(), "conn#4");
    }

    #[test]
    fn work_is_a_decimal_string_in_json() {
        let w = Work(u128::MAX - 1);
        let json = serde_json::to_string(&w).expect("serialize");
        assert_eq!(json, format!("\"{}\"", u128::MAX - 1));
        assert_eq!(serde_json::from_str::<Work>(&json).expect("deserialize"), w);
        assert!(serde_json::from_str::<Work>("\"x\"").is_err());
    }

    /// The key mixes the last eight bytes through the multiply: every one of them moves it,
    /// and so does each half of the product.
    #[test]
    fn key_u64_depends_on_every_byte_of_the_tail() {
        let base = sha256(b"key");
        let k = base.key_u64();
        let mut b = [0u8; 8];
        b.copy_from_slice(&base.0[24..]);
        let m = u128::from(u64::from_le_bytes(b)) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        assert_eq!(k, (m as u64) ^ ((m >> 64) as u64));
        for i in 24..32 {
            let mut h = base;
            h.0[i] ^= 1;
            assert_ne!(h.key_u64(), k, "byte {i}");
        }
        let mut head = base;
        head.0[0] ^= 0xff;
        assert_eq!(head.key_u64(), k, "proof-of-work bytes do not count");
    }

    #[test]
    fn work_saturates() {
        assert_eq!(Work::of_difficulty(3), Work(8));
        assert_eq!(Work::of_difficulty(200), Work(u128::MAX));
    }
}
