//! rantai-core: blocks, canonical hashing, proof of work, fork choice and the sans-IO peer
//! protocol shared by the real node (`rantai-node`) and the simulator (`rantai-sim`).
//!
//! # The sans-IO contract
//!
//! Nothing here touches the network or the disk, reads a clock or uses a global RNG. Everything
//! arrives as an input: time as [`Millis`] arguments (`now`), randomness from the seed a driver
//! gives each [`Peer`], and bytes as decoded [`Message`]s inside [`Input`]s. Everything leaves
//! as an [`Output`] the driver drains with [`Peer::poll`]. So the same calls give the same
//! outputs in the TCP node and in the simulator, and a simulated run replays from its seed.
//! The one exception is mining ([`pow`]), which a driver runs on threads of its choosing.
//!
//! # Layout
//!
//! - [`types`]: identity and quantity newtypes ([`BlockHash`], [`Millis`], [`Work`]).
//! - [`block`]: the canonical header, items, [`Block`] and [`Template`]; [`body`]: a block as
//!   the chain holds it, with or without its items.
//! - [`pow`]: the nonce search (the crate's only `unsafe`, the SHA-extension kernel, is there).
//! - [`chain`]: validation, fork choice, reorgs, the orphan pool; [`params`]: network constants
//!   and genesis.
//! - [`compact`]: compact blocks (short ids, rebuilding from the pending pool).
//! - [`message`]: wire messages and the frame codec; [`codec`]: the binary encoding's
//!   primitives and its error type.
//! - [`peer`]: the protocol state machine, [`Peer`].
//! - [`calib`]: the links, schedule and report formats of calibration runs (testbed and
//!   simulator).
//!
//! ```
//! use rantai_core::{Config, Direction, Input, Millis, Output, Params, Peer, ConnId};
//!
//! // Two peers on the zero-difficulty dev network, wired back to back by hand.
//! let mut a = Peer::new(Config::new(Params::dev()), 1);
//! let mut b = Peer::new(Config::new(Params::dev()), 2);
//! let now = Millis(0);
//! a.handle(now, Input::Connected { peer: ConnId(1), direction: Direction::Outbound, addr: None });
//! b.handle(now, Input::Connected { peer: ConnId(1), direction: Direction::Inbound, addr: None });
//!
//! // `a` mines a block carrying a submitted line.
//! a.submit(now, "hello".into()).unwrap();
//! let block = a.block_template(now).into_block(0);
//! a.handle(now, Input::Mined(block));
//!
//! // Move messages until both are quiet: the driver's whole job.
//! for _ in 0..20 {
//!     let mut moved = false;
//!     for (from, to) in [(0, 1), (1, 0)] {
//!         let (src, dst) = if from == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
//!         let mut msgs = Vec::new();
//!         while let Some(out) = src.poll() {
//!             if let Output::Send { msg, .. } = out {
//!                 msgs.push(msg);
//!             }
//!         }
//!         for msg in msgs {
//!             moved = true;
//!             dst.handle(now, Input::Message { peer: ConnId(1), msg });
//!         }
//!         let _ = to;
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//! assert_eq!(b.chain().height(), 1);
//! assert_eq!(b.chain().tip().items()[0].text, "hello");
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod block;
pub mod body;
pub mod calib;
pub mod chain;
pub mod codec;
pub mod compact;
#[allow(unsafe_code)] // a prefetch intrinsic; hint.rs states why it is sound
pub mod hint;
pub mod message;
pub mod params;
pub mod peer;
pub mod pow;
pub mod types;

pub use block::{Block, Header, Item, ItemId, Template};
pub use body::{ChainBlock, EvictedBlock};
pub use chain::{BlockError, Chain, ChainTip, Insert, TipChange, TipStatus};
pub use compact::CompactBlock;
pub use message::{DecodeError, FrameDecoder, Hashes, Message, Tip};
pub use params::Params;
pub use peer::{
    CompactOutcome, Config, ConfigSummary, Direction, DisconnectReason, Event, Input, LoadPurpose,
    MinePolicy, Output, ParseMinePolicyError, ParseRelayPolicyError, Peer, RelayPolicy,
    SubmitError, Violation,
};
pub use types::{BlockHash, ConnId, Hash32, Millis, Work};

// A driver may move a peer or its chain to another thread, or share them behind a lock.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Peer>();
    send_sync::<Chain>();
    send_sync::<Block>();
};
