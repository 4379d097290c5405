//! Every list limit of a message at its boundary (exactly the limit decodes, one more is refused
//! naming the list), and the frame decoder across reads: a frame waits for its last byte, a
//! partly read frame survives the next read, and an empty frame is an error, not a wait.

use rantai_core::message::{
    Hello, MAX_ADDRS_PER_MSG, MAX_ADDR_LEN, MAX_HASHES, MAX_ITEMS_PER_MSG, MAX_LOCATOR,
    PROTOCOL_VERSION,
};
use rantai_core::{BlockHash, DecodeError, FrameDecoder, Item, Message, Tip, Work};

fn tip() -> Tip {
    Tip {
        height: 3,
        hash: BlockHash::ZERO,
        work: Work(4),
    }
}

fn hello(listen_len: usize) -> Message {
    Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: BlockHash::ZERO,
        node_id: 5,
        tip: tip(),
        listen: Some("a".repeat(listen_len)),
    }))
}

fn items(n: usize) -> Message {
    Message::Items {
        items: (0..n as u64)
            .map(|nonce| Item {
                nonce,
                text: "i".into(),
            })
            .collect(),
    }
}

fn addrs(n: usize, len: usize) -> Message {
    Message::Addr {
        addrs: vec!["a".repeat(len); n],
    }
}

/// A list limit: what the error calls the list, its limit, a message with `n` entries in it.
type Limit = (&'static str, usize, fn(usize) -> Message);

fn limits() -> Vec<Limit> {
    vec![
        ("listen address", MAX_ADDR_LEN, hello),
        ("hashes", MAX_HASHES, |n| Message::Inv {
            hashes: vec![BlockHash::ZERO; n].into(),
        }),
        ("hashes", MAX_HASHES, |n| Message::GetBlocks {
            hashes: vec![BlockHash::ZERO; n].into(),
        }),
        ("hashes", MAX_HASHES, |n| Message::NotFound {
            hashes: vec![BlockHash::ZERO; n].into(),
        }),
        ("hashes", MAX_HASHES, |n| Message::ChainHashes {
            hashes: vec![BlockHash::ZERO; n],
            tip: tip(),
        }),
        ("locator", MAX_LOCATOR, |n| Message::GetChain {
            locator: vec![BlockHash::ZERO; n],
        }),
        ("items", MAX_ITEMS_PER_MSG, items),
        ("addresses", MAX_ADDRS_PER_MSG, |n| addrs(n, 9)),
        ("address", MAX_ADDR_LEN, |n| addrs(2, n)),
    ]
}

#[test]
fn every_list_limit_decodes_at_the_limit_and_refuses_one_more() {
    for (what, max, make) in limits() {
        let at = make(max);
        assert_eq!(at.check_limits(), Ok(()), "{what}: exactly {max}");
        assert_eq!(
            Message::from_json(&at.to_json()).as_ref(),
            Ok(&at),
            "{what}: exactly {max}"
        );
        let over = make(max + 1);
        let refused = DecodeError::Limit {
            what,
            n: max + 1,
            max,
        };
        assert_eq!(
            over.check_limits(),
            Err(refused.clone()),
            "{what}: {} entries",
            max + 1
        );
        assert_eq!(
            Message::from_json(&over.to_json()).err(),
            Some(refused),
            "{what}: {} entries",
            max + 1
        );
    }
}

#[test]
fn a_frame_is_a_message_only_once_its_last_byte_is_read() {
    let msg = Message::Ping {
        nonce: 11,
        tip: tip(),
    };
    let frame = msg.to_frame();
    assert_eq!(frame.len(), 4 + msg.to_json().len());
    assert_eq!(
        u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize,
        msg.to_json().len()
    );
    let mut dec = FrameDecoder::new();
    for (i, byte) in frame.iter().enumerate() {
        assert_eq!(dec.next_message(), Ok(None), "{i} bytes read");
        dec.extend(&[*byte]);
        assert_eq!(dec.buffered(), i + 1);
    }
    assert_eq!(dec.next_message(), Ok(Some(msg)));
    assert_eq!(dec.buffered(), 0);
    assert_eq!(dec.next_message(), Ok(None));
}

#[test]
fn a_partly_read_frame_survives_the_next_read() {
    // A small frame followed by most of a large one: after the small one is taken, the rest of
    // the large one is still buffered and the next read completes it.
    let small = Message::GetAddr;
    let large = items(200);
    let mut bytes = small.to_frame();
    let large_frame = large.to_frame();
    let split = large_frame.len() - 10;
    bytes.extend_from_slice(&large_frame[..split]);
    let mut dec = FrameDecoder::new();
    dec.extend(&bytes);
    assert_eq!(dec.next_message(), Ok(Some(small)));
    assert_eq!(dec.buffered(), split);
    assert_eq!(dec.next_message(), Ok(None));
    dec.extend(&large_frame[split..]);
    assert_eq!(dec.buffered(), large_frame.len());
    assert_eq!(dec.next_message(), Ok(Some(large)));
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn an_empty_frame_is_an_error_not_a_wait() {
    let mut dec = FrameDecoder::new();
    dec.extend(&0u32.to_be_bytes());
    assert!(matches!(dec.next_message(), Err(DecodeError::Json(_))));
}
