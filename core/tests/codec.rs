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
            Message::decode(&at.encode()).as_ref(),
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
            Message::decode(&over.encode()).err(),
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
    assert_eq!(frame.len(), 4 + msg.encoded_len());
    assert_eq!(
        u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize,
        msg.encode().len()
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
    assert_eq!(dec.next_message(), Err(DecodeError::UnknownKind(None)));
}

mod encoded_len {
    use super::*;
    use proptest::prelude::*;
    use rantai_core::block::{data_hash, Header, MAX_BLOCK_DATA_BYTES};
    use rantai_core::message::{MAX_FRAME_BYTES, MAX_ITEMS_MSG_BYTES};
    use rantai_core::{Block, Hash32};
    use std::sync::Arc;

    /// Text of any characters: control characters, quotes, backslashes, multi-byte.
    fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                (0u8..0x20).prop_map(char::from),
                Just('"'),
                Just('\\'),
                any::<char>()
            ],
            0..max,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    /// An address of at most `MAX_ADDR_LEN` bytes (a multi-byte character may not fit).
    fn addr() -> impl Strategy<Value = String> {
        text(MAX_ADDR_LEN).prop_map(|mut s| {
            while s.len() > MAX_ADDR_LEN {
                s.pop();
            }
            s
        })
    }

    fn hash() -> impl Strategy<Value = BlockHash> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    fn tip() -> impl Strategy<Value = Tip> {
        (any::<u64>(), hash(), any::<u128>()).prop_map(|(height, hash, w)| Tip {
            height,
            hash,
            work: Work(w),
        })
    }

    fn item() -> impl Strategy<Value = Item> {
        (any::<u64>(), text(40)).prop_map(|(nonce, text)| Item { nonce, text })
    }

    fn message() -> impl Strategy<Value = Message> {
        let hashes = |max| prop::collection::vec(hash(), 0..max);
        prop_oneof![
            (
                any::<u32>(),
                hash(),
                any::<u64>(),
                tip(),
                prop::option::of(addr())
            )
                .prop_map(|(version, genesis, node_id, tip, listen)| Message::Hello(
                    Box::new(Hello {
                        version,
                        genesis,
                        node_id,
                        tip,
                        listen
                    })
                )),
            (any::<u64>(), tip()).prop_map(|(nonce, tip)| Message::Ping { nonce, tip }),
            (any::<u64>(), tip()).prop_map(|(nonce, tip)| Message::Pong { nonce, tip }),
            hashes(MAX_HASHES + 1).prop_map(|h| Message::Inv { hashes: h.into() }),
            hashes(MAX_HASHES + 1).prop_map(|h| Message::GetBlocks { hashes: h.into() }),
            hashes(MAX_HASHES + 1).prop_map(|h| Message::NotFound { hashes: h.into() }),
            hashes(MAX_LOCATOR + 1).prop_map(|locator| Message::GetChain { locator }),
            (hashes(MAX_HASHES + 1), tip())
                .prop_map(|(hashes, tip)| Message::ChainHashes { hashes, tip }),
            prop::collection::vec(item(), 0..MAX_ITEMS_PER_MSG + 1)
                .prop_map(|items| Message::Items { items }),
            Just(Message::GetAddr),
            prop::collection::vec(addr(), 0..MAX_ADDRS_PER_MSG + 1)
                .prop_map(|addrs| Message::Addr { addrs }),
            (
                any::<u64>(),
                hash(),
                prop::collection::vec(item(), 0..20),
                any::<bool>()
            )
                .prop_map(|(nonce, prev, items, honest)| {
                    let header = Header {
                        version: 1,
                        difficulty: 3,
                        height: nonce % 1000,
                        timestamp_ms: nonce,
                        prev,
                        data_hash: if honest { data_hash(&items) } else { prev },
                        nonce,
                    };
                    Message::Block {
                        block: Arc::new(Block::new(header, items)),
                    }
                }),
        ]
    }

    fn check(m: &Message) {
        let payload = m.encode();
        assert_eq!(payload.len(), m.encoded_len(), "{}", m.kind());
        let frame = m.to_frame();
        assert_eq!(frame.len(), 4 + m.encoded_len(), "{}", m.kind());
        assert_eq!(frame[4..], payload);
        assert_eq!(Message::decode(&payload).as_ref(), Ok(m), "{}", m.kind());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The length is exact for every kind and any contents, and the bytes decode back.
        #[test]
        fn encoded_len_is_the_frame_payload_length(m in message()) {
            check(&m);
        }
    }

    /// The adversarial corners: every list at its limit, and the largest `items` message and
    /// block, filled with control characters (6 bytes each as JSON, one here).
    #[test]
    fn maximal_messages_have_exact_lengths_and_fit_a_frame() {
        let big_hash = Hash32([0xff; 32]);
        let t = Tip {
            height: u64::MAX,
            hash: big_hash,
            work: Work(u128::MAX),
        };
        let per_item = MAX_ITEMS_MSG_BYTES / MAX_ITEMS_PER_MSG;
        let mut items: Vec<Item> = (0..MAX_ITEMS_PER_MSG as u64)
            .map(|nonce| Item {
                nonce: u64::MAX - nonce,
                text: "\u{1}".repeat(per_item - 12),
            })
            .collect();
        let used: usize = items.iter().map(Item::encoded_len).sum();
        items[0]
            .text
            .push_str(&"\u{1f}".repeat(MAX_ITEMS_MSG_BYTES - used));
        let block_items = vec![Item {
            nonce: u64::MAX,
            text: "\u{0}".repeat(MAX_BLOCK_DATA_BYTES - 4 - 12),
        }];
        let header = Header {
            version: 1,
            difficulty: 0,
            height: u64::MAX,
            timestamp_ms: u64::MAX,
            prev: big_hash,
            data_hash: data_hash(&block_items),
            nonce: u64::MAX,
        };
        let maximal = vec![
            hello(MAX_ADDR_LEN),
            Message::Inv {
                hashes: vec![big_hash; MAX_HASHES].into(),
            },
            Message::ChainHashes {
                hashes: vec![big_hash; MAX_HASHES],
                tip: t,
            },
            Message::GetChain {
                locator: vec![big_hash; MAX_LOCATOR],
            },
            addrs(MAX_ADDRS_PER_MSG, MAX_ADDR_LEN),
            Message::Items { items },
            Message::Block {
                block: Arc::new(Block::new(header, block_items)),
            },
        ];
        for m in &maximal {
            assert_eq!(m.check_limits(), Ok(()), "{}", m.kind());
            assert!(m.encoded_len() <= MAX_FRAME_BYTES, "{}", m.kind());
            check(m);
        }
        // The largest `items` message and the largest block each fill a frame exactly.
        assert_eq!(maximal[5].encoded_len(), MAX_FRAME_BYTES);
        assert_eq!(maximal[6].encoded_len(), MAX_FRAME_BYTES);
    }
}
