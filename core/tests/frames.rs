//! The frame limit at its boundary: a payload of exactly `MAX_FRAME_BYTES` (4 MiB) is a message,
//! one byte more is refused, by the decoder from the length prefix alone and by
//! `Message::from_json` from the payload.

use rantai_core::message::MAX_FRAME_BYTES;
use rantai_core::{BlockHash, DecodeError, FrameDecoder, Message, Tip, Work};

/// A valid ping whose JSON is padded with an unknown field to exactly `len` bytes.
fn padded_ping_json(len: usize) -> Vec<u8> {
    let ping = Message::Ping {
        nonce: 7,
        tip: Tip {
            height: 0,
            hash: BlockHash::ZERO,
            work: Work(1),
        },
    };
    let mut json = ping.to_json();
    assert_eq!(json.pop(), Some(b'}'));
    json.extend_from_slice(br#","pad":""#);
    let pad = len - json.len() - 2;
    json.resize(json.len() + pad, b'x');
    json.extend_from_slice(b"\"}");
    assert_eq!(json.len(), len);
    json
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

#[test]
fn the_limit_is_four_mib() {
    assert_eq!(MAX_FRAME_BYTES, 4 * 1024 * 1024);
}

#[test]
fn a_frame_of_exactly_the_limit_is_decoded() {
    let json = padded_ping_json(MAX_FRAME_BYTES);
    assert!(matches!(
        Message::from_json(&json),
        Ok(Message::Ping { nonce: 7, .. })
    ));
    let mut dec = FrameDecoder::new();
    dec.extend(&frame(&json));
    match dec.next_message() {
        Ok(Some(Message::Ping { nonce: 7, .. })) => {}
        other => panic!("a 4 MiB frame is a message: {other:?}"),
    }
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn a_frame_one_byte_over_the_limit_is_refused() {
    let json = padded_ping_json(MAX_FRAME_BYTES + 1);
    assert_eq!(
        Message::from_json(&json).err(),
        Some(DecodeError::FrameTooLarge {
            len: MAX_FRAME_BYTES + 1,
            max: MAX_FRAME_BYTES
        })
    );
    // The decoder refuses from the prefix alone, before the payload arrives.
    let mut dec = FrameDecoder::new();
    dec.extend(&((MAX_FRAME_BYTES + 1) as u32).to_be_bytes());
    assert_eq!(
        dec.next_message().err(),
        Some(DecodeError::FrameTooLarge {
            len: MAX_FRAME_BYTES + 1,
            max: MAX_FRAME_BYTES
        })
    );
    // And with the whole frame there.
    let mut dec = FrameDecoder::new();
    dec.extend(&frame(&json));
    assert!(matches!(
        dec.next_message(),
        Err(DecodeError::FrameTooLarge { .. })
    ));
}

#[test]
fn a_prefix_of_exactly_the_limit_waits_for_its_payload() {
    let mut dec = FrameDecoder::new();
    dec.extend(&(MAX_FRAME_BYTES as u32).to_be_bytes());
    assert_eq!(dec.next_message(), Ok(None), "more bytes needed, no error");
}
