//! Frame decoding for the node: the core's frame format (4-byte big-endian length + JSON,
//! length checked against [`MAX_FRAME_BYTES`] before anything is allocated).
//!
//! Workaround: `rantai_core::Message` is an internally tagged serde enum, and serde buffers such
//! enums in a form without 128-bit integers, so `Message::from_json` fails with "u128 is not
//! supported" on every message carrying a `Tip` (`hello`, `ping`, `pong`, `chain_hashes`).
//! [`decode`] tries the core first and falls back to a plain-struct parse for those four kinds.
//! Once the core fixes `Work`'s wire form, the fallback is simply never reached.

use rantai_core::message::MAX_FRAME_BYTES;
use rantai_core::{BlockHash, DecodeError, Message, Tip, Work};
use serde::Deserialize;

/// Parses one frame payload into a limit-checked message.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    match Message::from_json(bytes) {
        Err(DecodeError::Json(e)) if e.contains("u128") => decode_with_tip(bytes),
        other => other,
    }
}

#[derive(Deserialize)]
struct RawTip {
    height: u64,
    hash: BlockHash,
    work: u128,
}

impl From<RawTip> for Tip {
    fn from(t: RawTip) -> Tip {
        Tip {
            height: t.height,
            hash: t.hash,
            work: Work(t.work),
        }
    }
}

/// The fields of the four tip-carrying messages, parsed as a plain struct.
#[derive(Deserialize)]
struct RawTipMessage {
    #[serde(rename = "type")]
    kind: String,
    version: Option<u32>,
    genesis: Option<BlockHash>,
    node_id: Option<u64>,
    tip: RawTip,
    #[serde(default)]
    listen: Option<String>,
    nonce: Option<u64>,
    hashes: Option<Vec<BlockHash>>,
}

fn decode_with_tip(bytes: &[u8]) -> Result<Message, DecodeError> {
    let json_err = |e: &str| DecodeError::Json(e.to_string());
    let r: RawTipMessage = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let tip = Tip::from(r.tip);
    let msg = match r.kind.as_str() {
        "hello" => Message::Hello {
            version: r.version.ok_or_else(|| json_err("missing field `version`"))?,
            genesis: r.genesis.ok_or_else(|| json_err("missing field `genesis`"))?,
            node_id: r.node_id.ok_or_else(|| json_err("missing field `node_id`"))?,
            tip,
            listen: r.listen,
        },
        "ping" => Message::Ping {
            nonce: r.nonce.ok_or_else(|| json_err("missing field `nonce`"))?,
            tip,
        },
        "pong" => Message::Pong {
            nonce: r.nonce.ok_or_else(|| json_err("missing field `nonce`"))?,
            tip,
        },
        "chain_hashes" => Message::ChainHashes {
            hashes: r.hashes.ok_or_else(|| json_err("missing field `hashes`"))?,
            tip,
        },
        other => return Err(DecodeError::Json(format!("unknown variant `{other}` with a tip"))),
    };
    msg.check_limits()?;
    Ok(msg)
}

/// Incremental frame reader: feed bytes, take messages. Buffers at most one maximal frame plus
/// one read; an oversized length prefix is an error before any allocation.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next message; `Ok(None)` when more bytes are needed. After an `Err` the stream is
    /// unusable and the connection should be closed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let msg = decode(&avail[4..4 + len]);
        self.start += 4 + len;
        if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        msg.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rantai_core::Params;

    #[test]
    fn tip_messages_roundtrip_in_pieces() {
        let p = Params::main();
        let tip = Tip {
            height: 3,
            hash: p.genesis_hash(),
            work: Work(u128::from(u64::MAX) * 4),
        };
        let msgs = vec![
            Message::Hello {
                version: 1,
                genesis: p.genesis_hash(),
                node_id: 9,
                tip,
                listen: Some("127.0.0.1:1".into()),
            },
            Message::Ping { nonce: 1, tip },
            Message::Pong { nonce: 2, tip },
            Message::ChainHashes {
                hashes: vec![p.genesis_hash()],
                tip,
            },
            Message::GetAddr,
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(Message::to_frame).collect();
        let mut r = FrameReader::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(7) {
            r.extend(chunk);
            while let Some(m) = r.next_message().expect("valid") {
                out.push(m);
            }
        }
        assert_eq!(out, msgs);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let mut r = FrameReader::new();
        r.extend(&u32::MAX.to_be_bytes());
        assert!(matches!(r.next_message(), Err(DecodeError::FrameTooLarge { .. })));
        for body in [&b"{\"type\":\"nope\"}"[..], b"not json", b"{\"type\":\"ping\",\"tip\":{}}"] {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(body);
            let mut r = FrameReader::new();
            r.extend(&frame);
            assert!(matches!(r.next_message(), Err(DecodeError::Json(_))), "{body:?}");
        }
    }
}
