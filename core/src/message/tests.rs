//! Unit tests of the message codec and the frame decoder.

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

fn tip() -> Tip {
    Tip {
        height: 7,
        hash: crate::types::Hash32([7; 32]),
        work: Work(u128::MAX - 5),
    }
}

/// The layout is the documented one, byte for byte: kind, then little-endian fields.
#[test]
fn inv_and_ping_have_the_documented_layout() {
    let inv = Message::Inv {
        hashes: vec![crate::types::Hash32([9; 32])].into(),
    };
    let mut want = vec![3, 1, 0];
    want.extend([9; 32]);
    assert_eq!(inv.encode(), want);
    let ping = Message::Ping {
        nonce: 0x0102,
        tip: tip(),
    };
    let mut want = vec![1, 2, 1, 0, 0, 0, 0, 0, 0];
    want.extend(7u64.to_le_bytes());
    want.extend([7; 32]);
    want.extend((u128::MAX - 5).to_le_bytes());
    assert_eq!(ping.encode(), want);
    assert_eq!(Message::GetAddr.to_frame(), [0, 0, 0, 1, 10]);
}

#[test]
fn every_kind_roundtrips_with_its_exact_length() {
    use crate::block::{Block, Header, Item};
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
            text: "x\u{1}\"".into(),
        }],
    ));
    let msgs = vec![
        Message::Hello(Box::new(Hello {
            version: PROTOCOL_VERSION,
            genesis: BlockHash::ZERO,
            node_id: u64::MAX,
            tip: tip(),
            listen: Some("127.0.0.1:3000".into()),
        })),
        Message::Hello(Box::new(Hello {
            version: PROTOCOL_VERSION,
            genesis: BlockHash::ZERO,
            node_id: 1,
            tip: tip(),
            listen: None,
        })),
        Message::Ping {
            nonce: 1,
            tip: tip(),
        },
        Message::Pong {
            nonce: 2,
            tip: tip(),
        },
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
            tip: tip(),
        },
        Message::Items {
            items: vec![Item {
                nonce: 3,
                text: "y".into(),
            }],
        },
        Message::GetAddr,
        Message::Addr {
            addrs: vec!["a".into(), String::new()],
        },
    ];
    for m in msgs {
        let bytes = m.encode();
        assert_eq!(bytes.len(), m.encoded_len(), "{}", m.kind());
        assert_eq!(bytes[0] as usize, m.kind_index());
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&m), "{}", m.kind());
    }
}

/// The largest valid block message is exactly one maximal frame.
#[test]
fn a_maximal_block_message_fills_a_4_mib_frame() {
    use crate::block::{data_hash, Header};
    assert_eq!(MAX_FRAME_BYTES, 4 << 20);
    let items = vec![Item {
        nonce: 0,
        text: "\u{1}".repeat(MAX_BLOCK_DATA_BYTES - 4 - ITEM_OVERHEAD),
    }];
    let header = Header {
        version: 1,
        difficulty: 0,
        height: 1,
        timestamp_ms: 0,
        prev: BlockHash::ZERO,
        data_hash: data_hash(&items),
        nonce: 0,
    };
    let m = Message::Block {
        block: Arc::new(Block::new(header, items)),
    };
    assert_eq!(m.check_limits(), Ok(()));
    let frame = m.to_frame();
    assert_eq!(frame.len(), FRAME_HEADER_LEN + MAX_FRAME_BYTES);
    let mut dec = FrameDecoder::new();
    dec.extend(&frame);
    assert_eq!(dec.next_message().as_ref(), Ok(&Some(m)));
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
        Message::decode(&m.encode()),
        Err(DecodeError::Limit { .. })
    ));
    assert_eq!(
        Message::decode(&[99]),
        Err(DecodeError::UnknownKind(Some(99)))
    );
    assert_eq!(Message::decode(&[]), Err(DecodeError::UnknownKind(None)));
    assert_eq!(Message::decode(&[10, 0]), Err(DecodeError::Trailing(1)));
}
