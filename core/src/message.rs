//! Wire messages and the length-prefixed frame codec shared by node, simulator and tests.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON. The length is
//! checked against [`MAX_FRAME_BYTES`] before anything is allocated.
#![forbid(unsafe_code)]

use crate::block::{Block, Item, BLOCK_WIRE_OVERHEAD, MAX_BLOCK_WIRE_BYTES};
use crate::types::{BlockHash, Work};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Protocol version spoken by this implementation.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest frame payload accepted (4 MiB): a maximal block encoded as JSON plus headroom.
pub const MAX_FRAME_BYTES: usize = MAX_BLOCK_WIRE_BYTES + BLOCK_WIRE_OVERHEAD;
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
/// (no allocation per announcement); encoded as a plain JSON array.
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

/// Everything one peer can say to another.
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
}

impl Message {
    /// Short name for logs and per-kind statistics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Inv { .. } => "inv",
            Message::GetBlocks { .. } => "get_blocks",
            Message::Block { .. } => "block",
            Message::NotFound { .. } => "not_found",
            Message::GetChain { .. } => "get_chain",
            Message::ChainHashes { .. } => "chain_hashes",
            Message::Items { .. } => "items",
            Message::GetAddr => "get_addr",
            Message::Addr { .. } => "addr",
        }
    }

    /// Checks list-length limits that serde cannot express. Decoding calls it.
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
            Message::Items { items } => too_long(items.len(), MAX_ITEMS_PER_MSG, "items"),
            Message::Addr { addrs } => {
                too_long(addrs.len(), MAX_ADDRS_PER_MSG, "addresses")?;
                addrs
                    .iter()
                    .try_for_each(|a| too_long(a.len(), MAX_ADDR_LEN, "address"))
            }
            Message::Ping { .. }
            | Message::Pong { .. }
            | Message::Block { .. }
            | Message::GetAddr => Ok(()),
        }
    }

    /// JSON payload (no frame header).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages always serialize")
    }

    /// Parses and limit-checks a JSON payload.
    pub fn from_json(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(DecodeError::FrameTooLarge {
                len: bytes.len(),
                max: MAX_FRAME_BYTES,
            });
        }
        let msg: Message =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        msg.check_limits()?;
        Ok(msg)
    }

    /// A complete frame: length prefix plus JSON.
    pub fn to_frame(&self) -> Vec<u8> {
        let json = self.to_json();
        let mut out = Vec::with_capacity(4 + json.len());
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(&json);
        out
    }
}

/// Why bytes from a peer are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix (or payload) is over [`MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The payload is not the JSON of a message (serde's error text).
    #[error("invalid message JSON: {0}")]
    Json(String),
    /// A list in the message is longer than its limit.
    #[error("{what}: {n} entries exceed the limit of {max}")]
    Limit {
        /// Which list.
        what: &'static str,
        /// Its length.
        n: usize,
        /// Its limit.
        max: usize,
    },
}

/// Incremental frame decoder: feed it bytes as they arrive, take messages out.
///
/// It never buffers more than one maximal frame plus one read, whatever the peer sends.
#[derive(Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder, at the start of a stream.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message; `Ok(None)` means more bytes are needed. After an `Err` the
    /// stream is unusable and the connection should be closed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(len) = self.peek_len()? else {
            return Ok(None);
        };
        if self.buffered() < 4 + len {
            return Ok(None);
        }
        let body = &self.buf[self.start + 4..self.start + 4 + len];
        let msg = Message::from_json(body);
        self.start += 4 + len;
        if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        msg.map(Some)
    }

    /// Length of the next frame once its prefix is complete; errors before any allocation.
    fn peek_len(&self) -> Result<Option<usize>, DecodeError> {
        if self.buffered() < 4 {
            return Ok(None);
        }
        let p = &self.buf[self.start..self.start + 4];
        let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip_in_pieces() {
        let msgs = vec![
            Message::GetAddr,
            Message::Inv {
                hashes: vec![BlockHash::ZERO; 3].into(),
            },
            Message::Addr {
                addrs: vec!["127.0.0.1:1".into()],
            },
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(Message::to_frame).collect();
        let mut dec = FrameDecoder::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(3) {
            dec.extend(chunk);
            while let Some(m) = dec.next_message().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out, msgs);
        assert_eq!(dec.buffered(), 0);
    }

    /// The wire format is flat JSON objects tagged by `type`, whatever Rust boxes inside.
    #[test]
    fn hello_and_inv_encode_flat() {
        let tip = Tip {
            height: 0,
            hash: BlockHash::ZERO,
            work: Work(1),
        };
        let hello = Message::Hello(Box::new(Hello {
            version: 1,
            genesis: BlockHash::ZERO,
            node_id: 9,
            tip,
            listen: None,
        }));
        let v: serde_json::Value = serde_json::from_slice(&hello.to_json()).unwrap();
        assert_eq!(v["type"], "hello");
        assert_eq!(v["node_id"], 9);
        assert_eq!(v["tip"]["work"], "1");
        let inv = Message::Inv {
            hashes: vec![BlockHash::ZERO].into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&inv.to_json()).unwrap();
        assert_eq!(v["hashes"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn every_kind_roundtrips_through_json() {
        use crate::block::{Block, Header, Item};
        let tip = Tip {
            height: 7,
            hash: BlockHash::ZERO,
            work: Work(u128::MAX - 5),
        };
        let block = Arc::new(Block::new(
            Header {
                version: 1,
                difficulty: 0,
                height: 1,
                timestamp_ms: 0,
                prev: BlockHash::ZERO,
                data_hash: BlockHash::ZERO,
                nonce: 0,
            },
            vec![Item {
                nonce: 1,
                text: "x".into(),
            }],
        ));
        let msgs = vec![
            Message::Hello(Box::new(Hello {
                version: PROTOCOL_VERSION,
                genesis: BlockHash::ZERO,
                node_id: u64::MAX,
                tip,
                listen: Some("127.0.0.1:3000".into()),
            })),
            Message::Ping { nonce: 1, tip },
            Message::Pong { nonce: 2, tip },
            Message::Inv {
                hashes: vec![BlockHash::ZERO].into(),
            },
            Message::GetBlocks {
                hashes: Hashes::new(),
            },
            Message::Block { block },
            Message::NotFound {
                hashes: Hashes::new(),
            },
            Message::GetChain {
                locator: vec![BlockHash::ZERO],
            },
            Message::ChainHashes {
                hashes: vec![],
                tip,
            },
            Message::Items {
                items: vec![Item {
                    nonce: 3,
                    text: "y".into(),
                }],
            },
            Message::GetAddr,
            Message::Addr { addrs: vec![] },
        ];
        for m in msgs {
            assert_eq!(
                Message::from_json(&m.to_json()).as_ref(),
                Ok(&m),
                "{}",
                m.kind()
            );
        }
    }

    #[test]
    fn a_maximal_block_message_fills_a_4_mib_frame() {
        assert_eq!(MAX_FRAME_BYTES, 4 << 20);
    }

    #[test]
    fn oversized_length_rejected_before_allocation() {
        let mut dec = FrameDecoder::new();
        dec.extend(&u32::MAX.to_be_bytes());
        assert!(matches!(
            dec.next_message(),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    /// The decoder's contract: whatever the peer sends, at most one frame plus one read is
    /// buffered, also when reads never end on a frame boundary.
    #[test]
    fn the_buffer_stays_bounded_when_reads_never_end_on_a_frame() {
        let frame = Message::Inv {
            hashes: vec![BlockHash::ZERO; 10].into(),
        }
        .to_frame();
        let stream = frame.repeat(1_000);
        let read = frame.len() + 7;
        let mut dec = FrameDecoder::new();
        let mut decoded = 0;
        for chunk in stream.chunks(read) {
            dec.extend(chunk);
            while dec.next_message().unwrap().is_some() {
                decoded += 1;
            }
            assert!(
                dec.buf.len() <= 2 * frame.len(),
                "{} bytes buffered after {decoded} frames",
                dec.buf.len()
            );
        }
        assert_eq!(decoded, 1_000);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn limits_enforced() {
        let m = Message::Inv {
            hashes: vec![BlockHash::ZERO; MAX_HASHES + 1].into(),
        };
        assert!(matches!(
            Message::from_json(&m.to_json()),
            Err(DecodeError::Limit { .. })
        ));
        assert!(matches!(
            Message::from_json(b"{\"type\":\"nope\"}"),
            Err(DecodeError::Json(_))
        ));
    }
}
