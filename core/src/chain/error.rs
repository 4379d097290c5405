//! Why a block is rejected: one variant per validation rule.
#![forbid(unsafe_code)]

use crate::block::{ItemId, MAX_DIFFICULTY};

/// Why a block was rejected. Every validation rule has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header's version is not [`HEADER_VERSION`](crate::block::HEADER_VERSION).
    #[error("unsupported header version {0}")]
    Version(u32),
    /// The canonical data encoding is over the network's
    /// [`block_data_limit`](crate::Params::block_data_limit).
    #[error("block data is {size} bytes, limit is {max}")]
    TooLarge {
        /// Canonical data bytes of the block.
        size: usize,
        /// The network's limit.
        max: usize,
    },
    /// The header's `data_hash` does not commit to the block's items.
    #[error("data hash does not match the block's items")]
    DataHash,
    /// The header asks for less work than the network requires.
    #[error("difficulty {got} is below the network minimum {min}")]
    DifficultyBelowMinimum {
        /// The header's difficulty.
        got: u32,
        /// The network's minimum.
        min: u32,
    },
    /// The header's difficulty is over [`MAX_DIFFICULTY`].
    #[error("difficulty {0} is above the maximum {MAX_DIFFICULTY}")]
    DifficultyTooHigh(u32),
    /// The hash does not meet the header's own difficulty.
    #[error("hash has {got} leading zero bits, difficulty requires {need}")]
    ProofOfWork {
        /// Leading zero bits of the block hash.
        got: u32,
        /// The header's difficulty.
        need: u32,
    },
    /// The timestamp is further ahead of the validator's `now` than the network allows.
    #[error("timestamp {timestamp_ms} is more than {max_future_ms}ms ahead of now ({now_ms})")]
    FromFuture {
        /// The header's timestamp.
        timestamp_ms: u64,
        /// The validator's clock.
        now_ms: u64,
        /// The network's bound.
        max_future_ms: u64,
    },
    /// The height is not the parent's plus one.
    #[error("height {got} does not follow parent height {parent}")]
    Height {
        /// The header's height.
        got: u64,
        /// The parent's height.
        parent: u64,
    },
    /// A height-0 block other than the network's genesis.
    #[error("a block at height 0 that is not this network's genesis")]
    FakeGenesis,
    /// An ancestor was found invalid, so this block can never join the best chain.
    #[error("parent block is invalid")]
    InvalidParent,
    /// An item the chain already holds, or one the block holds twice.
    #[error("item {0} is already in the chain or twice in the block")]
    DuplicateItem(ItemId),
}

impl BlockError {
    /// The rule's name without its details (`BadPow`, `DataHashMismatch`, ...), for
    /// per-kind counters.
    pub fn kind(&self) -> String {
        format!("{self:?}")
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect()
    }
}
