//! What the block tree holds of one block: the whole block, or, once its body was evicted to
//! bound memory, the header with what chain logic still needs (hash, cumulative work, size and
//! the item ids that the duplicate-item rule and the pending pool work with).
//!
//! A [`ChainBlock`] never passes for a complete block: code that needs the items asks
//! [`ChainBlock::body`] and handles `None` (a driver with a store loads the body from disk).
#![forbid(unsafe_code)]

use crate::block::{Block, Header, ItemId};
use crate::types::{BlockHash, Work};
use std::sync::Arc;

/// A block of the tree, with or without its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainBlock {
    /// The whole block, shared with messages and events.
    Full(Arc<Block>),
    /// Only the header and item ids: the body lives in the driver's store.
    Evicted(Arc<EvictedBlock>),
}

/// A block whose body was dropped from memory.
#[derive(Debug, PartialEq, Eq)]
pub struct EvictedBlock {
    header: Header,
    hash: BlockHash,
    chain_work: Work,
    /// [`Block::size`] of the evicted block.
    size: usize,
    item_ids: Box<[ItemId]>,
}

impl EvictedBlock {
    /// The header-only form of `block`, which a chain has attached (its work is recorded).
    pub(crate) fn of(block: &Block) -> EvictedBlock {
        EvictedBlock {
            header: *block.header(),
            hash: block.hash(),
            chain_work: block.chain_work(),
            size: block.size(),
            item_ids: block.items().iter().map(|it| it.id()).collect(),
        }
    }

    /// Heap bytes of this form behind its `Arc` (two counters, the struct, the id list).
    pub(crate) fn heap_bytes(&self) -> usize {
        16 + std::mem::size_of::<EvictedBlock>() + std::mem::size_of_val(&*self.item_ids)
    }
}

impl ChainBlock {
    /// The whole block, if its body is held.
    pub fn body(&self) -> Option<&Arc<Block>> {
        match self {
            ChainBlock::Full(b) => Some(b),
            ChainBlock::Evicted(_) => None,
        }
    }

    /// Whether the body was dropped from memory.
    pub fn is_evicted(&self) -> bool {
        matches!(self, ChainBlock::Evicted(_))
    }

    /// The header, held in both forms.
    pub fn header(&self) -> &Header {
        match self {
            ChainBlock::Full(b) => b.header(),
            ChainBlock::Evicted(e) => &e.header,
        }
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        match self {
            ChainBlock::Full(b) => b.hash(),
            ChainBlock::Evicted(e) => e.hash,
        }
    }

    /// The header's height.
    pub fn height(&self) -> u64 {
        self.header().height
    }

    /// The parent's hash.
    pub fn prev(&self) -> BlockHash {
        self.header().prev
    }

    /// [`Block::size`]: header plus canonical data bytes.
    pub fn size(&self) -> usize {
        match self {
            ChainBlock::Full(b) => b.size(),
            ChainBlock::Evicted(e) => e.size,
        }
    }

    /// Cumulative work from genesis through this block.
    pub(crate) fn chain_work(&self) -> Work {
        match self {
            ChainBlock::Full(b) => b.chain_work(),
            ChainBlock::Evicted(e) => e.chain_work,
        }
    }

    /// Ids of the block's items, in block order.
    pub fn item_ids(&self) -> Vec<ItemId> {
        match self {
            ChainBlock::Full(b) => b.items().iter().map(|it| it.id()).collect(),
            ChainBlock::Evicted(e) => e.item_ids.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{data_hash, Item};
    use crate::types::Hash32;

    /// Both forms of one block answer every question alike, except whether the body is held.
    #[test]
    fn the_header_only_form_answers_like_the_whole_block() {
        let items = vec![Item {
            nonce: 1,
            text: "x".into(),
        }];
        let block = Block::new(
            Header {
                version: 1,
                difficulty: 0,
                height: 5,
                timestamp_ms: 9,
                prev: Hash32([4; 32]),
                data_hash: data_hash(&items),
                nonce: 2,
            },
            items,
        );
        block.record_chain_work(Work(77));
        let full = ChainBlock::Full(Arc::new(block.clone()));
        let evicted = ChainBlock::Evicted(Arc::new(EvictedBlock::of(&block)));
        for b in [&full, &evicted] {
            assert_eq!(b.header(), block.header());
            assert_eq!(b.hash(), block.hash());
            assert_eq!(b.height(), 5);
            assert_eq!(b.prev(), Hash32([4; 32]));
            assert_eq!(b.size(), block.size());
            assert_eq!(b.chain_work(), Work(77));
            assert_eq!(b.item_ids(), vec![block.items()[0].id()]);
        }
        assert!(!full.is_evicted() && full.body().is_some());
        assert!(evicted.is_evicted() && evicted.body().is_none());
    }
}
