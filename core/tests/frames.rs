//! The frame limit at its boundary: a payload of exactly `MAX_FRAME_BYTES` (4 MiB) is a message,
//! one byte more is refused, by the decoder from the length prefix alone and by
//! `Message::decode` from the payload.

use rantai_core::message::MAX_FRAME_BYTES;
use rantai_core::{DecodeError, FrameDecoder, Item, Message};

/// The payload of a valid `items` message of exactly `len` bytes: one item, its text filling
/// what the kind byte, the count and the item's nonce and length leave.
fn items_payload(len: usize) -> Vec<u8> {
    let msg = Message::Items {
        items: vec![Item {
            nonce: 7,
            text: "x".repeat(len - 15),
        }],
    };
    let payload = msg.encode();
    assert_eq!(payload.len(), len);
    assert_eq!(msg.encoded_len(), len);
    payload
}

fn is_the_item(m: &Message) -> bool {
    matches!(m, Message::Items { items } if items.len() == 1 && items[0].nonce == 7)
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
    let payload = items_payload(MAX_FRAME_BYTES);
    assert!(Message::decode(&payload).is_ok_and(|m| is_the_item(&m)));
    let mut dec = FrameDecoder::new();
    dec.extend(&frame(&payload));
    match dec.next_message() {
        Ok(Some(m)) if is_the_item(&m) => {}
        other => panic!(
            "a 4 MiB frame is a message: {:?}",
            other.map(|m| m.map(|m| m.kind()))
        ),
    }
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn a_frame_one_byte_over_the_limit_is_refused() {
    let payload = items_payload(MAX_FRAME_BYTES + 1);
    assert_eq!(
        Message::decode(&payload).err(),
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
    dec.extend(&frame(&payload));
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
