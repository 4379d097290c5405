//! Wire messages and the length-prefixed frame codec shared by node, simulator and tests.
//!
//! A frame is a 4-byte big-endian payload length, then the payload: one kind byte and the
//! message's fields in the binary encoding of [`crate::codec`] (little-endian integers,
//! counted lists, length-prefixed UTF-8). The encoding is canonical, so
//! [`Message::encoded_len`] is exact without encoding anything (the simulator counts bytes
//! with it), and nothing is escaped, so every valid block fits in one frame: the frame limit,
//! [`MAX_FRAME_BYTES`], is the size of the largest valid `block` message. The length is
//! checked against it before anything is allocated. JSON stays for the HTTP API and reports.
#![forbid(unsafe_code)]

use crate::block::{Block, Item, HEADER_LEN, ITEM_OVERHEAD, MAX_BLOCK_DATA_BYTES};
pub use crate::codec::DecodeError;
use crate::codec::Reader;
use crate::compact::{CompactBlock, MAX_BLOCK_ITEMS};
use crate::types::{BlockHash, Work};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Protocol version spoken by this implementation (2: the binary encoding; 3: compact blocks).
pub const PROTOCOL_VERSION: u32 = 3;
/// Largest frame payload accepted (4 MiB): exactly a `block` message carrying
/// [`MAX_BLOCK_DATA_BYTES`] of data, the largest valid message.
pub const MAX_FRAME_BYTES: usize = 1 + HEADER_LEN + MAX_BLOCK_DATA_BYTES;
/// Bytes of the frame header, the payload length.
pub const FRAME_HEADER_LEN: usize = 4;
/// Most bytes the items of one `items` message may take, so the message fits in a frame.
pub const MAX_ITEMS_MSG_BYTES: usize = MAX_FRAME_BYTES - 3;
/// Most hashes in one `Inv`, `GetBlocks`, `NotFound` or `ChainHashes`.
pub const MAX_HASHES: usize = 1000;
/// Most entries in a locator.
pub const MAX_LOCATOR: usize = 64;
/// Most items in one `Items` message.
pub const MAX_ITEMS_PER_MSG: usize = 256;
/// Most addresses in one `Addr`.
pub const MAX_ADDRS_PER_MSG: usize = 256;
/// Longest address string, in an `Addr` or a `Hello`'s listen address.
pub const MAX_ADDR_LEN: usize = 64;
/// Encoded bytes of a [`Tip`]: height, hash and work.
pub const TIP_LEN: usize = 8 + 32 + 16;

/// A peer's best chain as it claims it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// Height of the tip block.
    pub height: u64,
    /// Hash of the tip block.
    pub hash: BlockHash,
    /// Cumulative work of the chain ending there: what fork choice compares.
    pub work: Work,
}

/// Block hashes of an `inv`, `get_blocks` or `not_found`: usually one, so it is stored inline
/// (no allocation per announcement); on the wire a counted list like any other.
pub type Hashes = smallvec::SmallVec<[BlockHash; 1]>;

/// The handshake, first message on every connection in both directions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// Genesis hash: the network id.
    pub genesis: BlockHash,
    /// Random per-process id, to detect self and duplicate connections.
    pub node_id: u64,
    /// The sender's best chain.
    pub tip: Tip,
    /// Address the sender accepts connections on, if any.
    pub listen: Option<String>,
}

/// Everything one peer can say to another. The serde form (JSON tagged by `type`) is for
/// traces and tools; the wire uses [`Message::encode_into`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Boxed: the largest message and sent once per connection, so every other message (and
    /// every queue holding messages) stays small. Encoded flat, like the other variants.
    Hello(Box<Hello>),
    /// Keepalive and loss probe; answered with a `Pong` carrying the same nonce.
    Ping {
        /// Echoed in the `Pong`.
        nonce: u64,
        /// The sender's best chain, so a peer that missed an announcement learns of it.
        tip: Tip,
    },
    /// Answer to a `Ping`.
    Pong {
        /// The `Ping`'s nonce.
        nonce: u64,
        /// The sender's best chain.
        tip: Tip,
    },
    /// "I have these blocks" (announce relay).
    Inv {
        /// The announced blocks.
        hashes: Hashes,
    },
    /// Request full blocks by hash.
    GetBlocks {
        /// The wanted blocks.
        hashes: Hashes,
    },
    /// One whole block: an answer to `GetBlocks`, or pushed by the push relay policy.
    Block {
        /// The block; its hash is recomputed on decoding, never read from the wire.
        block: Arc<Block>,
    },
    /// Answer to `GetBlocks` for hashes the sender does not have.
    NotFound {
        /// The requested blocks the sender lacks.
        hashes: Hashes,
    },
    /// Catch-up request: the sender's locator; answered with `ChainHashes`.
    GetChain {
        /// Best-chain hashes at exponentially spaced heights, tip first.
        locator: Vec<BlockHash>,
    },
    /// Best-chain hashes following the fork point, lowest first (empty: nothing to add).
    ChainHashes {
        /// At most [`MAX_HASHES`] hashes, lowest first.
        hashes: Vec<BlockHash>,
        /// The sender's best chain, so the requester knows whether to ask again.
        tip: Tip,
    },
    /// Pending data items for miners.
    Items {
        /// At most [`MAX_ITEMS_PER_MSG`] items.
        items: Vec<Item>,
    },
    /// Asks for addresses of other nodes; answered with `Addr`.
    GetAddr,
    /// Addresses the sender knows nodes listen on.
    Addr {
        /// At most [`MAX_ADDRS_PER_MSG`] addresses of [`MAX_ADDR_LEN`] bytes each.
        addrs: Vec<String>,
    },
    /// Compact relay: asks the receiver to push new blocks to us as compact blocks at once
    /// (high bandwidth) or to stop doing so (back to announcements).
    SendCmpct {
        /// Push compact blocks at once (`true`), or announce (`false`).
        high_bandwidth: bool,
    },
    /// A block as header, short ids and prefilled items ([`CompactBlock`]); boxed like
    /// `Hello`, so other messages stay small.
    CmpctBlock(Box<CompactBlock>),
    /// Asks for one block as a compact block (low-bandwidth compact relay, after an `inv`).
    GetCmpct {
        /// The announced block.
        hash: BlockHash,
    },
    /// Asks for the items at these positions of a block sent compactly.
    GetBlockItems {
        /// The block.
        hash: BlockHash,
        /// Positions in the block, increasing.
        indexes: Vec<u32>,
    },
    /// The items a `get_block_items` asked for, in its order.
    BlockItems {
        /// The block.
        hash: BlockHash,
        /// The items.
        items: Vec<Item>,
    },
}

/// Names of the message kinds, indexed by [`Message::kind_index`] (also the kind byte on the
/// wire).
pub const KIND_NAMES: [&str; 17] = [
    "hello",
    "ping",
    "pong",
    "inv",
    "get_blocks",
    "block",
    "not_found",
    "get_chain",
    "chain_hashes",
    "items",
    "get_addr",
    "addr",
    "send_cmpct",
    "cmpct_block",
    "get_cmpct",
    "get_block_items",
    "block_items",
];

impl Message {
    /// Short name for logs and per-kind statistics.
    pub fn kind(&self) -> &'static str {
        KIND_NAMES[self.kind_index()]
    }

    /// Index of the message's kind in [`KIND_NAMES`]; the first byte of its encoding.
    #[inline]
    pub fn kind_index(&self) -> usize {
        match self {
            Message::Hello(_) => 0,
            Message::Ping { .. } => 1,
            Message::Pong { .. } => 2,
            Message::Inv { .. } => 3,
            Message::GetBlocks { .. } => 4,
            Message::Block { .. } => 5,
            Message::NotFound { .. } => 6,
            Message::GetChain { .. } => 7,
            Message::ChainHashes { .. } => 8,
            Message::Items { .. } => 9,
            Message::GetAddr => 10,
            Message::Addr { .. } => 11,
            Message::SendCmpct { .. } => 12,
            Message::CmpctBlock(_) => 13,
            Message::GetCmpct { .. } => 14,
            Message::GetBlockItems { .. } => 15,
            Message::BlockItems { .. } => 16,
        }
    }

    /// Checks the list-length limits. Decoding enforces them as it reads; a peer also checks
    /// messages that reach it without decoding (the simulator hands them over as values).
    pub fn check_limits(&self) -> Result<(), DecodeError> {
        let too_long = |n: usize, max: usize, what: &'static str| {
            if n > max {
                Err(DecodeError::Limit { what, n, max })
            } else {
                Ok(())
            }
        };
        match self {
            Message::Hello(h) => too_long(
                h.listen.as_ref().map_or(0, String::len),
                MAX_ADDR_LEN,
                "listen address",
            ),
            Message::Inv { hashes }
            | Message::GetBlocks { hashes }
            | Message::NotFound { hashes } => too_long(hashes.len(), MAX_HASHES, "hashes"),
            Message::ChainHashes { hashes, .. } => too_long(hashes.len(), MAX_HASHES, "hashes"),
            Message::GetChain { locator } => too_long(locator.len(), MAX_LOCATOR, "locator"),
            Message::Items { items } => {
                too_long(items.len(), MAX_ITEMS_PER_MSG, "items")?;
                too_long(
                    items.iter().map(Item::encoded_len).sum(),
                    MAX_ITEMS_MSG_BYTES,
                    "item bytes",
                )
            }
            Message::Addr { addrs } => {
                too_long(addrs.len(), MAX_ADDRS_PER_MSG, "addresses")?;
                addrs
                    .iter()
                    .try_for_each(|a| too_long(a.len(), MAX_ADDR_LEN, "address"))
            }
            Message::Block { block } => too_long(
                block.size() - HEADER_LEN,
                MAX_BLOCK_DATA_BYTES,
                "block bytes",
            ),
            Message::CmpctBlock(cb) => cb.check_limits(),
            Message::GetBlockItems { indexes, .. } => {
                too_long(indexes.len(), MAX_BLOCK_ITEMS, "item positions")
            }
            Message::BlockItems { items, .. } => {
                too_long(items.len(), MAX_BLOCK_ITEMS, "block items")?;
                too_long(
                    items.iter().map(Item::encoded_len).sum(),
                    MAX_BLOCK_DATA_BYTES,
                    "block item bytes",
                )
            }
            Message::Ping { .. }
            | Message::Pong { .. }
            | Message::GetAddr
            | Message::SendCmpct { .. }
            | Message::GetCmpct { .. } => Ok(()),
        }
    }

    /// Exact length of the payload [`Message::encode_into`] writes (the frame header not
    /// included), without encoding: constant time, except a sum over the entries of `items`
    /// and `addr`.
    pub fn encoded_len(&self) -> usize {
        const LIST: usize = 2;
        1 + match self {
            Message::Hello(h) => {
                4 + 32 + 8 + TIP_LEN + 1 + h.listen.as_ref().map_or(0, |l| 1 + l.len())
            }
            Message::Ping { .. } | Message::Pong { .. } => 8 + TIP_LEN,
            Message::Inv { hashes }
            | Message::GetBlocks { hashes }
            | Message::NotFound { hashes } => LIST + 32 * hashes.len(),
            Message::Block { block } => block.size(),
            Message::GetChain { locator } => LIST + 32 * locator.len(),
            Message::ChainHashes { hashes, .. } => LIST + 32 * hashes.len() + TIP_LEN,
            Message::Items { items } => LIST + items.iter().map(Item::encoded_len).sum::<usize>(),
            Message::GetAddr => 0,
            Message::Addr { addrs } => LIST + addrs.iter().map(|a| 1 + a.len()).sum::<usize>(),
            Message::SendCmpct { .. } => 1,
            Message::CmpctBlock(cb) => cb.encoded_len(),
            Message::GetCmpct { .. } => 32,
            Message::GetBlockItems { indexes, .. } => 32 + 4 + 4 * indexes.len(),
            Message::BlockItems { items, .. } => {
                32 + 4 + items.iter().map(Item::encoded_len).sum::<usize>()
            }
        }
    }

    /// Appends the payload: the kind byte, then the fields in order. The message must be
    /// within its limits ([`Message::check_limits`]); the counts are written truncated
    /// otherwise, and no peer would decode it.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.kind_index() as u8);
        let hashes = |out: &mut Vec<u8>, hs: &[BlockHash]| {
            out.extend_from_slice(&(hs.len() as u16).to_le_bytes());
            for h in hs {
                out.extend_from_slice(&h.0);
            }
        };
        match self {
            Message::Hello(h) => {
                out.extend_from_slice(&h.version.to_le_bytes());
                out.extend_from_slice(&h.genesis.0);
                out.extend_from_slice(&h.node_id.to_le_bytes());
                h.tip.encode_into(out);
                match &h.listen {
                    None => out.push(0),
                    Some(l) => {
                        out.push(1);
                        out.push(l.len() as u8);
                        out.extend_from_slice(l.as_bytes());
                    }
                }
            }
            Message::Ping { nonce, tip } | Message::Pong { nonce, tip } => {
                out.extend_from_slice(&nonce.to_le_bytes());
                tip.encode_into(out);
            }
            Message::Inv { hashes: hs }
            | Message::GetBlocks { hashes: hs }
            | Message::NotFound { hashes: hs } => hashes(out, hs),
            Message::Block { block } => block.encode_into(out),
            Message::GetChain { locator } => hashes(out, locator),
            Message::ChainHashes { hashes: hs, tip } => {
                hashes(out, hs);
                tip.encode_into(out);
            }
            Message::Items { items } => {
                out.extend_from_slice(&(items.len() as u16).to_le_bytes());
                for it in items {
                    it.encode_into(out);
                }
            }
            Message::GetAddr => {}
            Message::Addr { addrs } => {
                out.extend_from_slice(&(addrs.len() as u16).to_le_bytes());
                for a in addrs {
                    out.push(a.len() as u8);
                    out.extend_from_slice(a.as_bytes());
                }
            }
            Message::SendCmpct { high_bandwidth } => out.push(u8::from(*high_bandwidth)),
            Message::CmpctBlock(cb) => cb.encode_into(out),
            Message::GetCmpct { hash } => out.extend_from_slice(&hash.0),
            Message::GetBlockItems { hash, indexes } => {
                out.extend_from_slice(&hash.0);
                out.extend_from_slice(&(indexes.len() as u32).to_le_bytes());
                for i in indexes {
                    out.extend_from_slice(&i.to_le_bytes());
                }
            }
            Message::BlockItems { hash, items } => {
                out.extend_from_slice(&hash.0);
                out.extend_from_slice(&(items.len() as u32).to_le_bytes());
                for it in items {
                    it.encode_into(out);
                }
            }
        }
    }

    /// The payload as a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Decodes and limit-checks one payload; every byte must belong to the message.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(DecodeError::FrameTooLarge {
                len: bytes.len(),
                max: MAX_FRAME_BYTES,
            });
        }
        let Some((&kind, rest)) = bytes.split_first() else {
            return Err(DecodeError::UnknownKind(None));
        };
        let mut r = Reader::new(rest);
        let msg = match kind {
            0 => Message::Hello(Box::new(Hello {
                version: r.u32("version")?,
                genesis: r.hash("genesis")?,
                node_id: r.u64("node id")?,
                tip: Tip::decode(&mut r)?,
                listen: match r.u8("listen flag")? {
                    0 => None,
                    1 => {
                        let n = r.u8("listen address length")? as usize;
                        if n > MAX_ADDR_LEN {
                            return Err(DecodeError::Limit {
                                what: "listen address",
                                n,
                                max: MAX_ADDR_LEN,
                            });
                        }
                        Some(r.text(n, "listen address")?)
                    }
                    f => return Err(DecodeError::Flag(f, "listen address")),
                },
            })),
            1 => Message::Ping {
                nonce: r.u64("nonce")?,
                tip: Tip::decode(&mut r)?,
            },
            2 => Message::Pong {
                nonce: r.u64("nonce")?,
                tip: Tip::decode(&mut r)?,
            },
            3 => Message::Inv {
                hashes: decode_hashes(&mut r, MAX_HASHES, "hashes")?,
            },
            4 => Message::GetBlocks {
                hashes: decode_hashes(&mut r, MAX_HASHES, "hashes")?,
            },
            5 => Message::Block {
                block: Arc::new(Block::decode_from(&mut r)?),
            },
            6 => Message::NotFound {
                hashes: decode_hashes(&mut r, MAX_HASHES, "hashes")?,
            },
            7 => Message::GetChain {
                locator: decode_hashes(&mut r, MAX_LOCATOR, "locator")?,
            },
            8 => Message::ChainHashes {
                hashes: decode_hashes(&mut r, MAX_HASHES, "hashes")?,
                tip: Tip::decode(&mut r)?,
            },
            9 => {
                let n = r.u16("item count")? as usize;
                let n = r.count(n, MAX_ITEMS_PER_MSG, ITEM_OVERHEAD, "items")?;
                let items = (0..n)
                    .map(|_| Item::decode(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                Message::Items { items }
            }
            10 => Message::GetAddr,
            11 => {
                let n = r.u16("address count")? as usize;
                let n = r.count(n, MAX_ADDRS_PER_MSG, 1, "addresses")?;
                let addrs = (0..n)
                    .map(|_| {
                        let len = r.u8("address length")? as usize;
                        if len > MAX_ADDR_LEN {
                            return Err(DecodeError::Limit {
                                what: "address",
                                n: len,
                                max: MAX_ADDR_LEN,
                            });
                        }
                        r.text(len, "address")
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Message::Addr { addrs }
            }
            12 => Message::SendCmpct {
                high_bandwidth: match r.u8("high bandwidth flag")? {
                    0 => false,
                    1 => true,
                    f => return Err(DecodeError::Flag(f, "high bandwidth")),
                },
            },
            13 => Message::CmpctBlock(Box::new(CompactBlock::decode(&mut r)?)),
            14 => Message::GetCmpct {
                hash: r.hash("hash")?,
            },
            15 => {
                let hash = r.hash("hash")?;
                let n = r.u32("position count")? as usize;
                let n = r.count(n, MAX_BLOCK_ITEMS, 4, "item positions")?;
                let indexes = (0..n)
                    .map(|_| r.u32("item position"))
                    .collect::<Result<Vec<_>, _>>()?;
                Message::GetBlockItems { hash, indexes }
            }
            16 => {
                let hash = r.hash("hash")?;
                let n = r.u32("item count")? as usize;
                let n = r.count(n, MAX_BLOCK_ITEMS, ITEM_OVERHEAD, "block items")?;
                let items = (0..n)
                    .map(|_| Item::decode(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                let msg = Message::BlockItems { hash, items };
                msg.check_limits()?;
                msg
            }
            k => return Err(DecodeError::UnknownKind(Some(k))),
        };
        r.finish()?;
        Ok(msg)
    }

    /// A complete frame: length prefix plus payload.
    pub fn to_frame(&self) -> Vec<u8> {
        let len = self.encoded_len();
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + len);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        self.encode_into(&mut out);
        debug_assert_eq!(out.len(), FRAME_HEADER_LEN + len, "{}", self.kind());
        out
    }
}

/// A counted list of hashes, at most `max` of them.
fn decode_hashes<T: FromIterator<BlockHash>>(
    r: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    let n = r.u16(what)? as usize;
    let n = r.count(n, max, 32, what)?;
    (0..n).map(|_| r.hash(what)).collect()
}

impl Tip {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.work.0.to_le_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Tip, DecodeError> {
        Ok(Tip {
            height: r.u64("tip height")?,
            hash: r.hash("tip hash")?,
            work: Work(r.u128("tip work")?),
        })
    }
}

mod frame;
pub use frame::FrameDecoder;

#[cfg(test)]
mod tests;
