//! The block tree: validation, fork choice by cumulative work, reorgs and the orphan pool.
//!
//! Every valid block ever seen is kept. The best chain is the one with the most cumulative
//! work; ties keep the block seen first. A block whose parent is unknown waits in a bounded
//! orphan pool and connects when the parent arrives. Items (user data) may appear at most once
//! in a chain; that contextual rule is checked when a block joins the best chain.
//!
//! With a body cache ([`Chain::set_body_cache`]) only blocks within that many heights of the
//! tip keep their items in memory; older ones become [`ChainBlock::Evicted`] (header, work and
//! item ids), and whoever needs their items loads them from the driver's store. Without one
//! (the default) every body stays. The tip and genesis always keep theirs.
#![forbid(unsafe_code)]

mod error;
mod orphans;

pub use error::BlockError;
pub use orphans::OrphanLimits;
use orphans::Orphans;

use crate::block::{Block, Header, ItemId, HEADER_LEN, HEADER_VERSION, MAX_DIFFICULTY};
use crate::body::{ChainBlock, EvictedBlock};
use crate::params::Params;
use crate::types::{BlockHash, Millis, Work};
use hashbrown::HashTable;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What inserting one block did.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    /// Already in the tree or the orphan pool.
    Duplicate,
    /// Parent unknown: the block waits in the orphan pool.
    Orphan,
    /// The block (and possibly orphans waiting on it) joined the tree.
    Accepted(Accepted),
}

/// How a tip of the block tree stands (like bitcoind's `getchaintips` status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TipStatus {
    /// The best tip.
    Active,
    /// A valid side branch: all its blocks passed validation, it has no more work than the best.
    ValidFork,
    /// The tip or one of its ancestors was found invalid when the branch was tried.
    Invalid,
}

/// A block of the tree with no child in it: the end of the best chain or of a side branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTip {
    /// The tip block's hash.
    pub hash: BlockHash,
    /// The tip block's height.
    pub height: u64,
    /// Cumulative work up to and including this block.
    pub work: Work,
    /// Blocks from the fork with the best chain up to this tip (0 for the best tip).
    pub branch_len: u64,
    /// Best tip, valid side branch, or invalid.
    pub status: TipStatus,
}

/// Blocks that joined the tree in one insert and what happened to the best chain.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Newly connected blocks, parents before children.
    pub connected: Vec<Arc<Block>>,
    /// Set when the best tip moved.
    pub tip_change: Option<TipChange>,
    /// Orphans or best-chain candidates found invalid along the way.
    pub rejected: Vec<(BlockHash, BlockError)>,
}

/// A move of the best tip. `left` is empty for a plain extension; otherwise it is a reorg.
/// Blocks deeper than the body cache come without their bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipChange {
    /// Blocks that left the best chain, old tip first.
    pub left: Vec<ChainBlock>,
    /// Blocks that joined the best chain, lowest first.
    pub joined: Vec<ChainBlock>,
}

const NONE: u32 = u32::MAX;

/// One block of the tree. Its cumulative work lives in the shared block
/// ([`Block::chain_work`]) or in the evicted form, which keeps an entry at 24 bytes.
struct Entry {
    block: ChainBlock,
    parent: u32,
    invalid: bool,
}

impl Entry {
    fn work(&self) -> Work {
        self.block.chain_work()
    }

    fn hash(&self) -> BlockHash {
        self.block.hash()
    }

    fn height(&self) -> u64 {
        self.block.height()
    }
}

/// Which entries still hold a body, oldest height first, for a chain that evicts.
struct BodyCache {
    /// Bodies are kept for blocks less than this many heights below the tip (at least 1).
    depth: u64,
    /// (height, entry) of every entry holding a body, genesis excepted.
    held: BTreeSet<(u64, u32)>,
    /// Heap bytes of the header-only forms made so far.
    evicted_bytes: usize,
}

/// Entries remembered by [`Chain`]'s recent-lookup cache.
const RECENT: usize = 4;

/// A tree of valid blocks rooted at the network's genesis, with the best chain indexed by height.
pub struct Chain {
    params: Arc<Params>,
    entries: Vec<Entry>,
    /// Hash -> entry index. Stores only the `u32`; the key is read from the entry, which keeps
    /// the per-block cost of the index near 5 bytes instead of 37.
    index: HashTable<u32>,
    /// The last few blocks attached, as (hash key, entry), checked before `index`: in a
    /// running network nearly every lookup (announcements, requests) is of the newest block.
    recent: [(u64, u32); RECENT],
    recent_next: usize,
    best: Vec<u32>,
    /// Items of the best chain: attacker-chosen ids, so an ordered map (no hash flooding).
    items: BTreeMap<ItemId, u64>,
    orphans: Orphans,
    bodies: Option<BodyCache>,
}

impl Chain {
    /// A chain holding only the network's genesis, with the default orphan limits.
    pub fn new(params: Arc<Params>) -> Chain {
        Chain::with_orphan_limits(params, OrphanLimits::default())
    }

    /// A chain holding only the network's genesis, with an orphan pool bounded by `limits`.
    pub fn with_orphan_limits(params: Arc<Params>, limits: OrphanLimits) -> Chain {
        let genesis = params.genesis().clone();
        genesis.record_chain_work(genesis.header().work());
        let genesis_key = genesis.hash().key_u64();
        let mut index = HashTable::new();
        index.insert_unique(genesis_key, 0, |_| 0);
        let mut items = BTreeMap::new();
        for it in genesis.items() {
            items.insert(it.id(), 0);
        }
        Chain {
            entries: vec![Entry {
                block: ChainBlock::Full(genesis),
                parent: NONE,
                invalid: false,
            }],
            recent: [(genesis_key, 0); RECENT],
            recent_next: 0,
            index,
            best: vec![0],
            items,
            orphans: Orphans::new(limits),
            bodies: None,
            params,
        }
    }

    /// Keeps bodies only for blocks less than `depth` heights below the tip (a depth of 0
    /// counts as 1: the tip always keeps its body); `None` keeps every body (the default).
    /// Evicts at once, then after every insert. Turning the cache off does not bring evicted
    /// bodies back.
    pub fn set_body_cache(&mut self, depth: Option<u64>) {
        let evicted_bytes = self.bodies.as_ref().map_or(0, |b| b.evicted_bytes);
        self.bodies = depth.map(|d| BodyCache {
            depth: d.max(1),
            evicted_bytes,
            held: self
                .entries
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, e)| !e.block.is_evicted())
                .map(|(i, e)| (e.height(), i as u32))
                .collect(),
        });
        self.evict_bodies();
    }

    /// The body cache depth, if bodies are evicted.
    pub fn body_cache(&self) -> Option<u64> {
        self.bodies.as_ref().map(|b| b.depth)
    }

    /// Replaces the bodies of blocks at or below `tip height - depth` by their header-only form.
    fn evict_bodies(&mut self) {
        let tip_height = self.height();
        let Some(cache) = &mut self.bodies else {
            return;
        };
        // Each step removes one entry from `held`, so this is bounded by its size.
        while let Some(&(h, i)) = cache.held.first() {
            if h.saturating_add(cache.depth) > tip_height {
                break;
            }
            cache.held.pop_first();
            let e = &mut self.entries[i as usize];
            if let ChainBlock::Full(b) = &e.block {
                let evicted = EvictedBlock::of(b);
                cache.evicted_bytes += evicted.heap_bytes();
                e.block = ChainBlock::Evicted(Arc::new(evicted));
            }
        }
    }

    /// Makes room for `additional` more blocks in the tree, its index and the best chain, so a
    /// driver that knows how long a run is (a simulation, a node loading its store) does not
    /// regrow them block by block. Lists are rounded up to the power of two that growing one
    /// block at a time would reach anyway, so if the blocks do arrive, reserving costs no more
    /// memory than growing. Callers bound `additional` (it claims memory at once).
    ///
    /// # Panics
    ///
    /// Like [`Vec::reserve`], if the new capacity overflows `usize`.
    pub fn reserve(&mut self, additional: usize) {
        let want = |len: usize| {
            let total = len.saturating_add(additional);
            total.checked_next_power_of_two().unwrap_or(total) - len
        };
        self.entries.reserve_exact(want(self.entries.len()));
        self.best.reserve_exact(want(self.best.len()));
        let entries = &self.entries;
        self.index
            .reserve(additional, |&i| entries[i as usize].hash().key_u64());
    }

    /// The network parameters blocks are validated against.
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    /// Checks every rule that needs no other block: version, size, data hash, difficulty
    /// bounds, proof of work, timestamp bound.
    pub fn check_block(&self, block: &Block, now: Millis) -> Result<(), BlockError> {
        let h = block.header();
        let size = block.size() - HEADER_LEN;
        let max = self.params.block_data_limit();
        if h.version == HEADER_VERSION && h.height != 0 && size > max {
            return Err(BlockError::TooLarge { size, max });
        }
        self.header_rules(h, block.hash(), now)?;
        if !block.data_hash_matches() {
            return Err(BlockError::DataHash);
        }
        Ok(())
    }

    /// The rules a header alone must keep: version, not a second genesis, difficulty bounds,
    /// proof of work, timestamp bound. A compact block's header is checked with this before
    /// its items are fetched.
    pub fn check_header(&self, h: &Header, now: Millis) -> Result<(), BlockError> {
        self.header_rules(h, h.hash(), now)
    }

    /// [`Chain::check_header`] with the header's hash already computed.
    fn header_rules(&self, h: &Header, hash: BlockHash, now: Millis) -> Result<(), BlockError> {
        if h.version != HEADER_VERSION {
            return Err(BlockError::Version(h.version));
        }
        if h.height == 0 {
            return Err(BlockError::FakeGenesis);
        }
        if h.difficulty < self.params.min_difficulty {
            return Err(BlockError::DifficultyBelowMinimum {
                got: h.difficulty,
                min: self.params.min_difficulty,
            });
        }
        if h.difficulty > MAX_DIFFICULTY {
            return Err(BlockError::DifficultyTooHigh(h.difficulty));
        }
        let got = hash.leading_zero_bits();
        if got < h.difficulty {
            return Err(BlockError::ProofOfWork {
                got,
                need: h.difficulty,
            });
        }
        if h.timestamp_ms > now.0.saturating_add(self.params.max_future_ms) {
            return Err(BlockError::FromFuture {
                timestamp_ms: h.timestamp_ms,
                now_ms: now.0,
                max_future_ms: self.params.max_future_ms,
            });
        }
        Ok(())
    }

    /// Validates and inserts a block. `Err` means this block is invalid; orphans that it
    /// connects and that turn out invalid are reported in [`Accepted::rejected`] instead.
    pub fn insert(&mut self, block: Arc<Block>, now: Millis) -> Result<Insert, BlockError> {
        let hash = block.hash();
        if self.lookup(&hash).is_some() || self.orphans.contains(&hash) {
            return Ok(Insert::Duplicate);
        }
        self.check_block(&block, now)?;
        let Some(parent) = self.lookup(&block.prev()) else {
            self.orphans.add(block);
            return Ok(Insert::Orphan);
        };
        let mut acc = Accepted::default();
        let first = self.attach(parent, block.clone())?;
        acc.connected.push(block);
        let mut queue = vec![first];
        while let Some(p) = queue.pop() {
            let phash = self.entries[p as usize].hash();
            for child in self.orphans.take_children(&phash) {
                let chash = child.hash();
                match self.attach(p, child.clone()) {
                    Ok(idx) => {
                        acc.connected.push(child);
                        queue.push(idx);
                    }
                    Err(e) => acc.rejected.push((chash, e)),
                }
            }
        }
        self.choose_best(&mut acc);
        self.evict_bodies();
        Ok(Insert::Accepted(acc))
    }

    fn attach(&mut self, parent: u32, block: Arc<Block>) -> Result<u32, BlockError> {
        let p = &self.entries[parent as usize];
        if p.invalid {
            return Err(BlockError::InvalidParent);
        }
        let ph = p.height();
        if block.height() != ph + 1 {
            return Err(BlockError::Height {
                got: block.height(),
                parent: ph,
            });
        }
        let idx = u32::try_from(self.entries.len()).expect("fewer than 2^32 blocks");
        block.record_chain_work(p.work().saturating_add(block.header().work()));
        let entries = &self.entries;
        let key = block.hash().key_u64();
        self.index
            .insert_unique(key, idx, |&i| entries[i as usize].hash().key_u64());
        self.recent[self.recent_next] = (key, idx);
        self.recent_next = (self.recent_next + 1) % RECENT;
        if let Some(cache) = &mut self.bodies {
            cache.held.insert((block.height(), idx));
        }
        self.entries.push(Entry {
            block: ChainBlock::Full(block),
            parent,
            invalid: false,
        });
        Ok(idx)
    }

    /// Moves the tip to the most-work valid block if it beats the current tip.
    fn choose_best(&mut self, acc: &mut Accepted) {
        let mut candidate = acc
            .connected
            .iter()
            .filter_map(|b| self.lookup(&b.hash()))
            .fold(None::<u32>, |best, i| match best {
                Some(b) if self.entries[b as usize].work() >= self.entries[i as usize].work() => {
                    Some(b)
                }
                _ => Some(i),
            });
        // Each failed activation marks at least one block invalid, so this loop is bounded.
        while let Some(target) = candidate {
            if self.entries[target as usize].work() <= self.tip_work() {
                return;
            }
            match self.activate(target) {
                Ok(change) => {
                    // One insert moves the tip at most once: this is its only move.
                    debug_assert!(acc.tip_change.is_none());
                    acc.tip_change = Some(change);
                    return;
                }
                Err((bad, err)) => {
                    acc.rejected.push((self.entries[bad as usize].hash(), err));
                    candidate = self.best_valid_candidate();
                }
            }
        }
    }

    /// Makes `hash`, a block in the tree with exactly the tip's work, the best tip: how a peer
    /// settles an equal-work tie that no new block broke (fork choice otherwise keeps the first
    /// seen). `Ok(None)` if `hash` is the tip, unknown, or not of equal work; an error names a
    /// block on its branch that turned out invalid (marked so, with its descendants).
    pub fn adopt_equal_work(
        &mut self,
        hash: &BlockHash,
    ) -> Result<Option<TipChange>, (BlockHash, BlockError)> {
        let Some(i) = self.lookup(hash) else {
            return Ok(None);
        };
        if self.is_best(i) || self.entries[i as usize].work() != self.tip_work() {
            return Ok(None);
        }
        let change = self
            .activate(i)
            .map_err(|(bad, err)| (self.entries[bad as usize].hash(), err))?;
        self.evict_bodies();
        Ok(Some(change))
    }

    /// Full scan for the most-work block with no known-invalid ancestor; only after a failure.
    fn best_valid_candidate(&self) -> Option<u32> {
        let mut best: Option<u32> = None;
        for (i, e) in self.entries.iter().enumerate() {
            // An invalid block is skipped by `has_invalid_ancestor`, which starts at itself.
            if e.work() <= self.tip_work() {
                continue;
            }
            if best.is_some_and(|b| self.entries[b as usize].work() >= e.work()) {
                continue;
            }
            if !self.has_invalid_ancestor(i as u32) {
                best = Some(i as u32);
            }
        }
        best
    }

    fn has_invalid_ancestor(&self, mut i: u32) -> bool {
        while i != NONE && !self.is_best(i) {
            if self.entries[i as usize].invalid {
                return true;
            }
            i = self.entries[i as usize].parent;
        }
        false
    }

    fn lookup(&self, hash: &BlockHash) -> Option<u32> {
        let key = hash.key_u64();
        for &(k, i) in &self.recent {
            if k == key && self.entries[i as usize].hash() == *hash {
                return Some(i);
            }
        }
        self.index
            .find(key, |&i| self.entries[i as usize].hash() == *hash)
            .copied()
    }

    fn is_best(&self, idx: u32) -> bool {
        let h = self.entries[idx as usize].height() as usize;
        self.best.get(h) == Some(&idx)
    }

    /// Makes `target` the tip. On a contextual failure the old best chain is restored and the
    /// offending block (and its descendants on the path) are marked invalid.
    fn activate(&mut self, target: u32) -> Result<TipChange, (u32, BlockError)> {
        let mut path = Vec::new();
        let mut cur = target;
        while !self.is_best(cur) {
            if self.entries[cur as usize].invalid {
                for &p in &path {
                    self.entries[p as usize].invalid = true;
                }
                return Err((target, BlockError::InvalidParent));
            }
            path.push(cur);
            cur = self.entries[cur as usize].parent;
        }
        let fork_height = self.entries[cur as usize].height() as usize;
        let left: Vec<u32> = self.best[fork_height + 1..].iter().rev().copied().collect();
        for &i in &left {
            self.unindex_items(i);
        }
        self.best.truncate(fork_height + 1);
        for (n, &i) in path.iter().rev().enumerate() {
            if let Err(e) = self.index_items(i) {
                // Undo: drop what joined, restore what left.
                for &j in path.iter().rev().take(n) {
                    self.unindex_items(j);
                }
                for &j in path.iter().rev().skip(n) {
                    self.entries[j as usize].invalid = true;
                }
                self.best.truncate(fork_height + 1);
                for &j in left.iter().rev() {
                    self.index_items(j)
                        .expect("blocks that were in the best chain stay valid there");
                    self.best.push(j);
                }
                return Err((i, e));
            }
            self.best.push(i);
        }
        let blocks = |v: &mut dyn Iterator<Item = &u32>| -> Vec<ChainBlock> {
            v.map(|&i| self.entries[i as usize].block.clone()).collect()
        };
        Ok(TipChange {
            left: blocks(&mut left.iter()),
            joined: blocks(&mut path.iter().rev()),
        })
    }

    fn index_items(&mut self, idx: u32) -> Result<(), BlockError> {
        let block = &self.entries[idx as usize].block;
        let height = block.height();
        let ids = block.item_ids();
        for (n, &id) in ids.iter().enumerate() {
            if self.items.contains_key(&id) {
                for earlier in &ids[..n] {
                    self.items.remove(earlier);
                }
                return Err(BlockError::DuplicateItem(id));
            }
            self.items.insert(id, height);
        }
        Ok(())
    }

    fn unindex_items(&mut self, idx: u32) {
        for id in self.entries[idx as usize].block.item_ids() {
            self.items.remove(&id);
        }
    }

    /// The best tip, always with its body: a block becomes the tip only when it is freshly
    /// connected, and the body cache keeps at least the tip's height.
    pub fn tip(&self) -> &Arc<Block> {
        let i = *self.best.last().expect("genesis is always there");
        self.entries[i as usize]
            .block
            .body()
            .expect("the tip keeps its body")
    }

    /// Height of the best tip.
    pub fn height(&self) -> u64 {
        (self.best.len() - 1) as u64
    }

    /// Cumulative work of the best chain.
    pub fn tip_work(&self) -> Work {
        self.entries[*self.best.last().expect("genesis") as usize].work()
    }

    /// The network's genesis block, the root of the tree.
    pub fn genesis(&self) -> &Arc<Block> {
        self.entries[0]
            .block
            .body()
            .expect("genesis is never evicted")
    }

    /// Any valid block in the tree (best chain or side branch), with or without its body.
    pub fn get(&self, hash: &BlockHash) -> Option<&ChainBlock> {
        let e = &self.entries[self.lookup(hash)? as usize];
        (!e.invalid).then_some(&e.block)
    }

    /// The whole block, if it is a valid block of the tree whose body is held in memory.
    pub fn body(&self, hash: &BlockHash) -> Option<&Arc<Block>> {
        self.get(hash)?.body()
    }

    /// Cumulative work up to and including `hash`.
    pub fn work_of(&self, hash: &BlockHash) -> Option<Work> {
        self.lookup(hash).map(|i| self.entries[i as usize].work())
    }

    /// Whether the block is in the tree (valid or later found invalid) or in the orphan pool.
    pub fn knows(&self, hash: &BlockHash) -> bool {
        self.lookup(hash).is_some() || self.orphans.contains(hash)
    }

    /// Whether the block is in the tree, valid or later found invalid (not the orphan pool).
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.lookup(hash).is_some()
    }

    /// Whether the block is on the best chain.
    pub fn in_best_chain(&self, hash: &BlockHash) -> bool {
        self.lookup(hash).is_some_and(|i| self.is_best(i))
    }

    /// The best-chain block at `height`.
    pub fn at_height(&self, height: u64) -> Option<&ChainBlock> {
        let i = *self.best.get(usize::try_from(height).ok()?)?;
        Some(&self.entries[i as usize].block)
    }

    /// The best chain from genesis to tip.
    pub fn best_chain(
        &self,
    ) -> impl DoubleEndedIterator<Item = &ChainBlock> + ExactSizeIterator + '_ {
        self.best.iter().map(|&i| &self.entries[i as usize].block)
    }

    /// Every valid block in the tree in the order it was accepted (parents before children).
    pub fn blocks(&self) -> impl Iterator<Item = &ChainBlock> + '_ {
        self.entries.iter().filter(|e| !e.invalid).map(|e| &e.block)
    }

    /// Number of blocks in the tree, genesis included.
    pub fn tree_len(&self) -> usize {
        self.entries.len()
    }

    /// Blocks waiting in the orphan pool for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Whether an item is in the best chain.
    pub fn contains_item(&self, id: &ItemId) -> bool {
        self.items.contains_key(id)
    }

    /// Height of the best-chain block holding the item.
    pub fn item_height(&self, id: &ItemId) -> Option<u64> {
        self.items.get(id).copied()
    }

    /// Where the missing ancestry of an orphan begins: the unknown parent of its oldest
    /// pooled ancestor.
    pub fn orphan_root(&self, hash: &BlockHash) -> Option<BlockHash> {
        self.orphans.root(hash)
    }

    /// Hashes of the best chain at exponentially spaced heights, tip first, genesis last.
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut h = self.height() as i64;
        let mut step = 1i64;
        while h > 0 {
            out.push(self.entries[self.best[h as usize] as usize].hash());
            if out.len() >= 10 {
                step *= 2;
            }
            h -= step;
        }
        out.push(self.genesis().hash());
        out
    }

    /// Height of the first locator entry on our best chain (0 if none: genesis is shared).
    pub fn find_fork(&self, locator: &[BlockHash]) -> u64 {
        locator
            .iter()
            .find_map(|h| self.lookup(h).filter(|&i| self.is_best(i)))
            .map(|i| self.entries[i as usize].height())
            .unwrap_or(0)
    }

    /// Up to `limit` best-chain hashes above `height`, lowest first.
    pub fn hashes_after(&self, height: u64, limit: usize) -> Vec<BlockHash> {
        let start = (height as usize + 1).min(self.best.len());
        let end = start.saturating_add(limit).min(self.best.len());
        self.best[start..end]
            .iter()
            .map(|&i| self.entries[i as usize].hash())
            .collect()
    }

    /// Every tip of the tree (blocks without children, valid or not), the best tip first and
    /// the rest by height, highest first. Read-only; two passes over the tree, so an API may
    /// ask it of a tree with many long side branches.
    pub fn tips(&self) -> Vec<ChainTip> {
        let n = self.entries.len();
        let mut has_child = vec![false; n];
        // Per entry: the height where its branch leaves the best chain, and whether a block
        // between there and it is invalid. Parents come before children in `entries`, so
        // one pass in order sees every parent's values first.
        let mut fork_height = vec![0u64; n];
        let mut invalid = vec![false; n];
        for (i, e) in self.entries.iter().enumerate() {
            if self.is_best(i as u32) {
                fork_height[i] = e.height();
            } else {
                let p = e.parent as usize;
                fork_height[i] = fork_height[p];
                invalid[i] = e.invalid || invalid[p];
            }
            if e.parent != NONE {
                has_child[e.parent as usize] = true;
            }
        }
        // The best tip counts even when a child of it was found invalid.
        let best = *self.best.last().expect("genesis") as usize;
        let mut tips: Vec<ChainTip> = (0..n)
            .filter(|&i| !has_child[i] || i == best)
            .map(|i| {
                let e = &self.entries[i];
                let status = if i == best {
                    TipStatus::Active
                } else if invalid[i] {
                    TipStatus::Invalid
                } else {
                    TipStatus::ValidFork
                };
                ChainTip {
                    hash: e.hash(),
                    height: e.height(),
                    work: e.work(),
                    branch_len: e.height() - fork_height[i],
                    status,
                }
            })
            .collect();
        tips.sort_by_key(|t| (t.status != TipStatus::Active, std::cmp::Reverse(t.height)));
        tips
    }

    /// Hashes of valid tree blocks whose hex form starts with `prefix` (hex digits, either
    /// case), at most `limit`: how an API resolves the short hashes logs print.
    pub fn hashes_with_prefix(&self, prefix: &str, limit: usize) -> Vec<BlockHash> {
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let Some(want) = prefix.bytes().map(nibble).collect::<Option<Vec<u8>>>() else {
            return Vec::new();
        };
        if want.len() > 64 {
            return Vec::new();
        }
        let matches = |h: &BlockHash| {
            want.iter().enumerate().all(|(i, &d)| {
                let b = h.0[i / 2];
                d == if i % 2 == 0 { b >> 4 } else { b & 0xf }
            })
        };
        self.entries
            .iter()
            .filter(|e| !e.invalid)
            .map(Entry::hash)
            .filter(matches)
            .take(limit)
            .collect()
    }

    /// Approximate heap bytes of the tree's bookkeeping (not the shared block bodies; the
    /// header-only forms of evicted ones are counted).
    pub fn bookkeeping_bytes(&self) -> usize {
        let slot = std::mem::size_of::<u32>() + 1;
        // B-tree leaves run about two-thirds full.
        let item_slot = std::mem::size_of::<(ItemId, u64)>() * 3 / 2;
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.index.capacity() * slot
            + self.best.capacity() * 4
            + self.items.len() * item_slot
            + self.orphans.bytes
            + self
                .bodies
                .as_ref()
                .map_or(0, |b| b.held.len() * 32 + b.evicted_bytes)
    }
}
