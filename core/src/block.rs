//! Blocks, their canonical binary header and the data items they carry.
//!
//! The header has a fixed 96-byte little-endian layout, so a block hash never depends on a
//! serializer: `hash = SHA-256(SHA-256(header))`. The nonce sits in the last eight bytes, so the
//! first 64 bytes (one SHA-256 block) stay fixed while mining and their midstate is computed once.
//!
//! This module knows nothing of mining or of the wire codec: [`crate::pow`] and
//! [`crate::message`] depend on it, never the reverse.
#![forbid(unsafe_code)]

use crate::types::{sha256, sha256d, BlockHash, Hash32, Millis, Work};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Byte length of the canonical header encoding.
pub const HEADER_LEN: usize = 96;
/// Header format version written into every header.
pub const HEADER_VERSION: u32 = 1;
/// Upper bound on a header's difficulty, so cumulative work can never overflow `u128` in practice.
pub const MAX_DIFFICULTY: u32 = 96;

/// Offset of the nonce inside the header encoding.
pub(crate) const NONCE_OFFSET: usize = 88;

/// Block header: everything that is hashed and proven by work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header format, [`HEADER_VERSION`] for every valid block.
    pub version: u32,
    /// Required leading zero bits of the block hash.
    pub difficulty: u32,
    /// Distance from genesis (height 0).
    pub height: u64,
    /// Supplied by the caller (the miner's `now`), never read from a clock here.
    pub timestamp_ms: u64,
    /// Hash of the parent block.
    pub prev: BlockHash,
    /// SHA-256 of the canonical encoding of the block's items.
    pub data_hash: Hash32,
    /// The value the miner varies until the hash meets the difficulty.
    pub nonce: u64,
}

impl Header {
    /// The canonical 96-byte encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..8].copy_from_slice(&self.difficulty.to_le_bytes());
        b[8..16].copy_from_slice(&self.height.to_le_bytes());
        b[16..24].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        b[24..56].copy_from_slice(&self.prev.0);
        b[56..88].copy_from_slice(&self.data_hash.0);
        b[NONCE_OFFSET..96].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// Decodes the canonical encoding (any 96 bytes decode; validity is checked elsewhere).
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let h32_at = |i: usize| {
            let mut x = [0u8; 32];
            x.copy_from_slice(&b[i..i + 32]);
            Hash32(x)
        };
        Header {
            version: u32_at(0),
            difficulty: u32_at(4),
            height: u64_at(8),
            timestamp_ms: u64_at(16),
            prev: h32_at(24),
            data_hash: h32_at(56),
            nonce: u64_at(NONCE_OFFSET),
        }
    }

    /// Double SHA-256 of the canonical encoding.
    pub fn hash(&self) -> BlockHash {
        sha256d(&self.encode())
    }

    /// Proof of work this header claims: `2^difficulty` expected tries.
    pub fn work(&self) -> Work {
        Work::of_difficulty(self.difficulty)
    }
}

/// Identity of a data item: SHA-256 of its canonical encoding (nonce and text).
pub type ItemId = Hash32;

/// One piece of user data (a typed line). The nonce makes two submissions of the same text two
/// distinct items, so "exactly once in the chain" is well defined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Chosen by the submitter so equal texts make distinct items.
    pub nonce: u64,
    /// The user's line.
    pub text: String,
}

impl Item {
    /// The item's identity: SHA-256 of its canonical encoding.
    pub fn id(&self) -> ItemId {
        let mut buf = Vec::with_capacity(12 + self.text.len());
        self.encode_into(&mut buf);
        sha256(&buf)
    }

    /// Bytes this item adds to a block's data.
    pub fn encoded_len(&self) -> usize {
        12 + self.text.len()
    }

    /// Upper bound of the bytes this item takes in a JSON message (`{"nonce":..,"text":".."},`
    /// with the text escaped): what decides whether a block fits in a frame. A control
    /// character costs up to 6 bytes there, one in the canonical encoding.
    pub fn wire_len(&self) -> usize {
        ITEM_WIRE_OVERHEAD + json_escaped_len(&self.text)
    }

    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.nonce.to_le_bytes());
        buf.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        buf.extend_from_slice(self.text.as_bytes());
    }
}

/// Canonical data encoding: item count, then each item. Its SHA-256 is the header's `data_hash`.
pub fn encode_items(items: &[Item]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4 + items.iter().map(Item::encoded_len).sum::<usize>());
    buf.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for it in items {
        it.encode_into(&mut buf);
    }
    buf
}

/// SHA-256 of the canonical data encoding.
pub fn data_hash(items: &[Item]) -> Hash32 {
    sha256(&encode_items(items))
}

/// JSON bytes of an item beyond its escaped text: braces, keys, a 20-digit nonce, quotes
/// and a separator.
pub const ITEM_WIRE_OVERHEAD: usize = 48;

/// Room a block message needs beyond its items' [`Item::wire_len`]: the message envelope and
/// the header, whose hashes are 64 hex digits each. The real figure is under 600 bytes.
pub const BLOCK_WIRE_OVERHEAD: usize = 4096;

/// Most bytes a block's items may take in JSON: a valid block always fits in one frame, so
/// every block a peer accepts can be relayed. The frame limit,
/// [`crate::message::MAX_FRAME_BYTES`] (4 MiB), is this plus [`BLOCK_WIRE_OVERHEAD`].
pub const MAX_BLOCK_WIRE_BYTES: usize = (4 << 20) - BLOCK_WIRE_OVERHEAD;

/// Length of `s` as serde_json writes it inside quotes: `"` and `\\` and the short escapes
/// (`\n` ...) take 2 bytes, other control characters 6 (`\u001f`), everything else itself.
pub fn json_escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// Upper bound of the JSON bytes of a block's items (see [`MAX_BLOCK_WIRE_BYTES`]).
pub fn items_wire_len(items: &[Item]) -> usize {
    items.iter().map(Item::wire_len).sum()
}

/// Byte size of the canonical data encoding, the quantity the size limit applies to.
pub fn data_len(items: &[Item]) -> usize {
    4 + items.iter().map(Item::encoded_len).sum::<usize>()
}

/// A header plus its items, with the hash and the data-hash check computed once at
/// construction.
///
/// Blocks are immutable (apart from the cumulative-work cache, set once) and shared
/// (`Arc<Block>`) between a chain, messages and peers, so a block shared by many peers (the
/// simulator) is hashed once, not once per peer.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "BlockWire", into = "BlockWire")]
pub struct Block {
    header: Header,
    items: Vec<Item>,
    hash: BlockHash,
    /// Whether `header.data_hash` is the SHA-256 of the items' canonical encoding.
    data_ok: bool,
    /// Cumulative work from genesis through this block, set by the first chain that attaches
    /// it. It depends only on the block's ancestry, which its hash commits to, so it is the
    /// same in every chain: a shared block carries it once instead of every chain storing 16
    /// bytes for it.
    chain_work: OnceLock<Work>,
}

/// Blocks are equal when their contents are; the cached work is not part of a block's value.
impl PartialEq for Block {
    fn eq(&self, other: &Block) -> bool {
        self.header == other.header && self.items == other.items
    }
}

impl Eq for Block {}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("header", &self.header)
            .field("items", &self.items)
            .field("hash", &self.hash)
            .field("data_ok", &self.data_ok)
            .finish_non_exhaustive()
    }
}

/// Serialized form: the hash is derived, never trusted from the wire.
#[derive(Serialize, Deserialize)]
struct BlockWire {
    header: Header,
    items: Vec<Item>,
}

impl From<BlockWire> for Block {
    fn from(w: BlockWire) -> Block {
        Block::new(w.header, w.items)
    }
}

impl From<Block> for BlockWire {
    fn from(b: Block) -> BlockWire {
        BlockWire {
            header: b.header,
            items: b.items,
        }
    }
}

impl Block {
    /// Assembles a block; nothing is validated here.
    pub fn new(header: Header, items: Vec<Item>) -> Block {
        let hash = header.hash();
        let data_ok = data_hash(&items) == header.data_hash;
        Block {
            header,
            items,
            hash,
            data_ok,
            chain_work: OnceLock::new(),
        }
    }

    /// The header, which the hash commits to.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The data items, in block order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The block hash, computed once at construction.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// Whether the header commits to exactly these items (checked once, at construction).
    pub fn data_hash_matches(&self) -> bool {
        self.data_ok
    }

    /// Records the block's cumulative work, computed by a chain attaching it. The first value
    /// recorded is kept: every chain computes the same.
    pub(crate) fn record_chain_work(&self, work: Work) {
        let kept = *self.chain_work.get_or_init(|| work);
        debug_assert_eq!(kept, work, "cumulative work depends only on ancestry");
    }

    /// Cumulative work recorded by [`Block::record_chain_work`]; zero if no chain attached it.
    pub(crate) fn chain_work(&self) -> Work {
        debug_assert!(
            self.chain_work.get().is_some(),
            "read before a chain attached it"
        );
        self.chain_work.get().copied().unwrap_or_default()
    }

    /// The header's height.
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The parent's hash.
    pub fn prev(&self) -> BlockHash {
        self.header.prev
    }

    /// The header's timestamp, as the miner's `now`.
    pub fn timestamp(&self) -> Millis {
        Millis(self.header.timestamp_ms)
    }

    /// Canonical size in bytes: header plus data encoding.
    pub fn size(&self) -> usize {
        HEADER_LEN + data_len(&self.items)
    }
}

/// A block waiting for a nonce: what a driver mines ([`Template::solve`], or a
/// [`crate::pow::Miner`] on the header), then turns into a block with [`Template::into_block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The header to mine; only its nonce changes.
    pub header: Header,
    /// The items the header's `data_hash` commits to.
    pub items: Vec<Item>,
}

impl Template {
    /// Builds a template on top of `parent` carrying `items`.
    pub fn new(
        parent: &Header,
        parent_hash: BlockHash,
        difficulty: u32,
        now: Millis,
        items: Vec<Item>,
    ) -> Template {
        let header = Header {
            version: HEADER_VERSION,
            difficulty,
            height: parent.height + 1,
            timestamp_ms: now.0,
            prev: parent_hash,
            data_hash: data_hash(&items),
            nonce: 0,
        };
        Template { header, items }
    }

    /// The block with `nonce` filled in.
    pub fn into_block(self, nonce: u64) -> Block {
        let mut header = self.header;
        header.nonce = nonce;
        Block::new(header, self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let h = Header {
            version: 1,
            difficulty: 7,
            height: 42,
            timestamp_ms: 1234,
            prev: sha256(b"p"),
            data_hash: sha256(b"d"),
            nonce: 0xdead_beef,
        };
        assert_eq!(Header::decode(&h.encode()), h);
        assert_eq!(h.hash(), sha256d(&h.encode()));
    }

    #[test]
    fn block_json_recomputes_hash() {
        let items = vec![Item {
            nonce: 1,
            text: "hi".into(),
        }];
        let b = Block::new(
            Header {
                version: 1,
                difficulty: 0,
                height: 1,
                timestamp_ms: 5,
                prev: Hash32::ZERO,
                data_hash: data_hash(&items),
                nonce: 3,
            },
            items,
        );
        let json = serde_json::to_string(&b).unwrap();
        let back: Block = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.hash(), b.header().hash());
    }
}
