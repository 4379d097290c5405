//! Blocks, their canonical binary header and the data items they carry.
//!
//! The header has a fixed 96-byte little-endian layout, so a block hash never depends on a
//! serializer: `hash = SHA-256(SHA-256(header))`. The nonce sits in the last eight bytes, so the
//! first 64 bytes (one SHA-256 block) stay fixed while mining and their midstate is computed once.
//!
//! A block's canonical encoding (header, then the item count and items) is what its data hash
//! covers, what a `block` message carries and what the node's store writes. This module knows
//! nothing of mining or of messages: [`crate::pow`] and [`crate::message`] depend on it, never
//! the reverse.
#![forbid(unsafe_code)]

use crate::codec::{DecodeError, Reader};
use crate::types::{sha256, sha256d, BlockHash, Hash32, Millis, Work};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Byte length of the canonical header encoding.
pub const HEADER_LEN: usize = 96;
/// Header format version written into every header.
pub const HEADER_VERSION: u32 = 1;
/// Largest canonical data encoding (item count plus items) of any block: what makes a `block`
/// message exactly [`crate::message::MAX_FRAME_BYTES`] (4 MiB) long, a kind byte and the header
/// included. A network's own limit, [`crate::Params::max_block_data_bytes`], is capped by it,
/// so every valid block fits in one frame.
pub const MAX_BLOCK_DATA_BYTES: usize = (4 << 20) - 1 - HEADER_LEN;
/// Bytes of an item's encoding beyond its text: the nonce and the text length.
pub const ITEM_OVERHEAD: usize = 12;
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

    /// Bytes of this item's encoding, in a block's data and in an `items` message alike.
    pub fn encoded_len(&self) -> usize {
        ITEM_OVERHEAD + self.text.len()
    }

    /// The canonical encoding on its own (as in a block's data), e.g. to store the item.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf
    }

    /// Reads an item from exactly its canonical encoding ([`Item::encode`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Item, DecodeError> {
        let mut r = Reader::new(bytes);
        let item = Item::decode(&mut r)?;
        r.finish()?;
        Ok(item)
    }

    pub(crate) fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.nonce.to_le_bytes());
        buf.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        buf.extend_from_slice(self.text.as_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Item, DecodeError> {
        let nonce = r.u64("item nonce")?;
        let len = r.u32("item length")? as usize;
        let text = r.text(len, "item text")?;
        Ok(Item { nonce, text })
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
    /// [`Block::size`], computed with the data hash.
    size: usize,
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
        let data = encode_items(&items);
        let data_ok = sha256(&data) == header.data_hash;
        Block {
            header,
            items,
            hash,
            data_ok,
            size: HEADER_LEN + data.len(),
            chain_work: OnceLock::new(),
        }
    }

    /// Appends the canonical encoding, [`Block::size`] bytes: the header, the item count and
    /// the items.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&(self.items.len() as u32).to_le_bytes());
        for it in &self.items {
            it.encode_into(out);
        }
    }

    /// The canonical encoding as a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        self.encode_into(&mut out);
        out
    }

    /// Decodes exactly one canonical encoding; never panics, and allocates a small multiple
    /// of the input at most (a count is checked against the bytes left first). Validity
    /// (data hash, proof of work) is the chain's to check.
    pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
        let mut r = Reader::new(bytes);
        let block = Block::decode_from(&mut r)?;
        r.finish()?;
        Ok(block)
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Block, DecodeError> {
        let header = Header::decode(&r.array::<HEADER_LEN>("block header")?);
        let n = r.u32("item count")? as usize;
        let n = r.count(n, usize::MAX, ITEM_OVERHEAD, "block items")?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(Item::decode(r)?);
        }
        Ok(Block::new(header, items))
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

    /// Canonical size in bytes: header plus data encoding (computed once).
    pub fn size(&self) -> usize {
        self.size
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

    #[test]
    fn the_canonical_encoding_roundtrips_and_rejects_garbage() {
        let items = vec![Item {
            nonce: 3,
            text: "line 3 \u{1} ✓".into(),
        }];
        let b = Block::new(
            Header {
                version: 1,
                difficulty: 0,
                height: 3,
                timestamp_ms: 7,
                prev: Hash32::ZERO,
                data_hash: data_hash(&items),
                nonce: 3,
            },
            items,
        );
        let enc = b.encode();
        assert_eq!(enc.len(), b.size());
        assert_eq!(enc[HEADER_LEN..], encode_items(b.items()));
        assert_eq!(Block::decode(&enc), Ok(b.clone()));
        assert_eq!(
            Block::decode(&enc[..50]),
            Err(DecodeError::Truncated("block header"))
        );
        assert_eq!(
            Block::decode(&enc[..enc.len() - 1]),
            Err(DecodeError::Truncated("item text"))
        );
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(Block::decode(&long), Err(DecodeError::Trailing(1)));
        // A count no input could hold fails before anything is allocated for it.
        let mut huge = enc[..HEADER_LEN].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Block::decode(&huge),
            Err(DecodeError::Truncated("block items"))
        );
        let mut bad = enc.clone();
        let at = enc.len() - 3;
        bad[at] = 0xff;
        assert_eq!(Block::decode(&bad), Err(DecodeError::Utf8("item text")));
    }

    #[test]
    fn debug_shows_the_header_and_hash_and_timestamp_is_the_headers() {
        let b = Block::new(
            Header {
                version: 1,
                difficulty: 0,
                height: 2,
                timestamp_ms: 1234,
                prev: Hash32::ZERO,
                data_hash: data_hash(&[]),
                nonce: 0,
            },
            vec![],
        );
        assert_eq!(b.timestamp(), Millis(1234));
        let shown = format!("{b:?}");
        assert!(shown.starts_with("Block { header: Header {"), "{shown}");
        assert!(shown.contains("timestamp_ms: 1234"), "{shown}");
        assert!(shown.contains(&format!("hash: {:?}", b.hash())), "{shown}");
    }
}
