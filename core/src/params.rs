//! Network parameters and the deterministic genesis block.

#![forbid(unsafe_code)]

use crate::block::{data_hash, Block, Header, Item, HEADER_VERSION, MAX_BLOCK_DATA_BYTES};
use crate::types::BlockHash;
use std::sync::Arc;

/// Consensus parameters of one network. Every node of a network must use equal values.
#[derive(Clone, Debug)]
pub struct Params {
    /// Network name; it is part of the genesis block, so two names never share a chain.
    pub network: String,
    /// Minimum difficulty (leading zero bits) of any non-genesis block.
    pub min_difficulty: u32,
    /// Maximum canonical data size of one block, in bytes; capped at [`MAX_BLOCK_DATA_BYTES`]
    /// (see [`Params::block_data_limit`]), so a valid block always fits in a frame.
    pub max_block_data_bytes: usize,
    /// How far a block's timestamp may be ahead of the validator's `now`.
    pub max_future_ms: u64,
    genesis: Arc<Block>,
}

/// Fixed timestamp of every genesis block (2026-01-01T00:00:00Z), so genesis needs no clock.
pub const GENESIS_TIMESTAMP_MS: u64 = 1_767_225_600_000;

impl Params {
    /// Parameters for a network called `network`; its genesis block is derived from the name.
    pub fn new(network: &str, min_difficulty: u32) -> Params {
        let items = vec![Item {
            nonce: 0,
            text: format!("rantai genesis: {network}"),
        }];
        let header = Header {
            version: HEADER_VERSION,
            difficulty: 0,
            height: 0,
            timestamp_ms: GENESIS_TIMESTAMP_MS,
            prev: BlockHash::ZERO,
            data_hash: data_hash(&items),
            nonce: 0,
        };
        Params {
            network: network.to_string(),
            min_difficulty,
            max_block_data_bytes: 1 << 20,
            max_future_ms: 2 * 60 * 60 * 1000,
            genesis: Arc::new(Block::new(header, items)),
        }
    }

    /// The default network of `rantai-node`: blocks need at least 8 bits of work.
    pub fn main() -> Params {
        Params::new("rantai", 8)
    }

    /// A zero-difficulty network for tests and the simulator (no real proof of work).
    pub fn dev() -> Params {
        Params::new("rantai-dev", 0)
    }

    /// The block data limit in effect: `max_block_data_bytes`, at most
    /// [`MAX_BLOCK_DATA_BYTES`].
    pub fn block_data_limit(&self) -> usize {
        self.max_block_data_bytes.min(MAX_BLOCK_DATA_BYTES)
    }

    /// The network's genesis block, derived from its name: every chain of this network starts
    /// from it.
    pub fn genesis(&self) -> &Arc<Block> {
        &self.genesis
    }

    /// The genesis hash doubles as the network id in handshakes.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis.hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_deterministic_per_network() {
        assert_eq!(Params::main().genesis_hash(), Params::main().genesis_hash());
        assert_ne!(Params::main().genesis_hash(), Params::dev().genesis_hash());
    }
}
