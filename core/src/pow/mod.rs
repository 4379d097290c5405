//! Proof of work: a pure, bounded, cancellable nonce search.
//!
//! This module depends on [`crate::block`] (the header layout), never the reverse: a block knows
//! its hash, not how it was mined.
//!
//! - [`Miner`] (`miner.rs`): the search for one header on the calling thread, and
//!   [`crate::Template::solve`].
//! - [`search_parallel`] (`search.rs`): the same search split across OS threads.
//! - `kernel.rs`: SHA-256 compression (x86 SHA extensions when present, else the `sha2` crate)
//!   and the target check on digest words. It is the only module here that uses `unsafe`, and
//!   documents why; the others forbid it (this file cannot, as `forbid` would reach the kernel).

mod kernel;
mod miner;
mod search;

pub use miner::Miner;
pub use search::search_parallel;
