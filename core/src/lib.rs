//! rantai-core: blocks, canonical hashing, proof of work, fork choice and the sans-IO peer
//! protocol shared by the real node (`rantai-node`) and the simulator (`rantai-sim`).
//!
//! Nothing here performs IO, reads a clock or uses a global RNG: time arrives as
//! [`Millis`] arguments, randomness from a driver-seeded RNG, and messages as [`Input`]s.

pub mod block;
pub mod chain;
pub mod message;
pub mod params;
pub mod peer;
pub mod pow;
pub mod types;

pub use block::{Block, Header, Item, ItemId, Template};
pub use chain::{BlockError, Chain, Insert, TipChange};
pub use message::{DecodeError, FrameDecoder, Message, Tip};
pub use params::Params;
pub use peer::{
    Config, Direction, DisconnectReason, Event, Input, Output, Peer, RelayPolicy, SubmitError,
};
pub use types::{BlockHash, Hash32, Millis, PeerId, Work};
