//! The crash-safe block store under `--data-dir`: every accepted block, in acceptance order.
//!
//! Blocks live in a redb table keyed by a sequence number (parents always precede children),
//! in their canonical encoding ([`Block::encode`]: 96-byte header, then the items). A dedicated thread writes them
//! with group commit: whatever batches are queued when a transaction starts go into it, and each
//! commit is one fsync (redb's default `Durability::Immediate`). Only after the commit returns is
//! a block logged as `accepted` and counted in `stored_blocks`: that is the durability guarantee.
//!
//! Loading replays the table into a fresh [`Chain`], validating every block again. The first
//! entry that fails to decode or to connect ends the load with a logged error; it and every later
//! entry are removed, and the node fetches what is missing from its peers. With a body cache the
//! chain drops old bodies while it loads, so a restart never holds every body at once.
//!
//! Items typed at this node are stored too (`PENDING`, keyed by item id, numbered in
//! submission order) before the user is told they were accepted, in the same group commits as
//! blocks; a stored block that carries one removes it in its own transaction (from then on the
//! block holds it: a side-branch block gives its items back to the pool at start). At start
//! the node mines them again, in the order they were submitted; entries that a loaded block
//! already carries are removed.
//!
//! A second table maps block hashes to sequence numbers, so the same thread answers reads of
//! bodies the chain evicted ([`StoreHandle::load`], [`StoreLoader`]) in order with the writes:
//! a read queued after a block's write finds it. Stores written before that table existed get
//! it built at open.

use crate::metrics::Metrics;
use pending::{encode_pending, load_pending, remove_pending};
use rantai_core::block::HEADER_LEN;
use rantai_core::{Block, BlockHash, Chain, Header, Insert, Item, Millis, Params};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

mod pending;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Block hash -> sequence number in `BLOCKS`.
const HASHES: TableDefinition<&[u8], u64> = TableDefinition::new("hashes");
/// Item id -> submission number (little-endian u64), then the item's canonical encoding:
/// accepted here, not yet in a stored block. (Entries without the number, written before it
/// existed, load as number 0.)
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
const GENESIS_KEY: &str = "genesis";
/// Meta key: how many `BLOCKS` entries (from sequence 0) `HASHES` covers, little-endian u64.
const INDEXED_KEY: &str = "hashes_indexed";
/// File name of the database inside the data directory.
pub const DB_FILE: &str = "chain.redb";
/// redb page cache.
const CACHE_BYTES: usize = 4 << 20;
/// Commands queued for the store thread before the driver waits (backpressure on a slow disk).
const WRITE_QUEUE_BATCHES: usize = 256;

/// Why the store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("data directory belongs to another network (genesis {found}, expected {expected})")]
    WrongNetwork { found: String, expected: String },
}

macro_rules! impl_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
impl_from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The `accepted block` log line. With a store it is written only once the block's commit
/// returned (the durability guarantee); without one, as soon as the core accepts the block.
pub fn log_accepted(block: &Block, from: &str) {
    tracing::info!(
        "accepted block {} {}… from {}",
        block.height(),
        block.hash().short(),
        from
    );
}

/// What loading a data directory found.
pub struct Loaded {
    pub chain: Chain,
    /// Entries replayed into the chain.
    pub blocks: u64,
    /// Why loading stopped early, if it did (the entries from there on were removed).
    pub stopped: Option<String>,
    /// Items accepted here that no stored block carries yet, to be mined again.
    pub pending: Vec<Item>,
}

/// An item accepted from a user, on its way to disk; `stored` runs on the store thread once
/// its commit returned (or failed, logged: it then stays in memory only, as blocks do).
pub struct PendingItem {
    pub item: Item,
    pub stored: Box<dyn FnOnce() + Send>,
}

/// One accepted block on its way to disk, with the label of its sender for the log line.
#[derive(Debug)]
pub struct StoreEntry {
    pub block: Arc<Block>,
    pub from: String,
}

/// What a read of stored blocks found.
#[derive(Debug, Default)]
pub struct LoadedBlocks {
    pub blocks: Vec<Arc<Block>>,
    /// Hashes not in the store, or whose entry could not be read (logged).
    pub missing: Vec<BlockHash>,
}

/// Where the answer of a read goes; called on the store thread, so it must not block.
pub type LoadReply = Box<dyn FnOnce(LoadedBlocks) + Send>;

enum StoreCmd {
    Append(Vec<StoreEntry>),
    Items(Vec<PendingItem>),
    Load {
        hashes: Vec<BlockHash>,
        reply: LoadReply,
    },
}

/// The driver's side of the store: queue batches and reads, then [`StoreHandle::close`] to
/// flush.
pub struct StoreHandle {
    tx: mpsc::Sender<StoreCmd>,
    thread: std::thread::JoinHandle<()>,
}

/// Reads stored blocks from outside the driver (the HTTP API) without keeping the store open:
/// after [`StoreHandle::close`] every read fails.
#[derive(Clone, Debug)]
pub struct StoreLoader {
    tx: mpsc::WeakSender<StoreCmd>,
}

/// The store is closed.
#[derive(Debug, thiserror::Error)]
#[error("the store is closed")]
pub struct StoreClosed;

impl StoreLoader {
    /// Reads `hashes` on the store thread.
    pub async fn load(&self, hashes: Vec<BlockHash>) -> Result<LoadedBlocks, StoreClosed> {
        let tx = self.tx.upgrade().ok_or(StoreClosed)?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        let reply: LoadReply = Box::new(move |r| {
            let _ = reply.send(r);
        });
        tx.send(StoreCmd::Load { hashes, reply })
            .await
            .map_err(|_| StoreClosed)?;
        drop(tx);
        rx.await.map_err(|_| StoreClosed)
    }
}

/// Opens (or creates) the store in `dir`, replays it into a chain for `params` that keeps
/// bodies as [`Chain::set_body_cache`] with `body_cache` says, and starts the store thread.
pub fn open(
    dir: &Path,
    params: &Arc<Params>,
    metrics: Arc<Metrics>,
    now: Millis,
    body_cache: Option<u64>,
) -> Result<(StoreHandle, Loaded), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    // The store is read once at start and then only appended to: a small page cache suffices,
    // and keeps the node's memory close to the chain itself.
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(dir.join(DB_FILE))?;
    check_network(&db, params)?;
    let (mut loaded, next_seq) = load(&db, params, now, body_cache)?;
    let (pending, next_item) = load_pending(&db)?;
    let (held, pending): (Vec<Item>, Vec<Item>) = pending
        .into_iter()
        .partition(|it| loaded.chain.contains_item(&it.id()));
    if !held.is_empty() {
        remove_pending(&db, &held)?;
        tracing::info!(
            "store: {} pending items are in stored blocks; removed",
            held.len()
        );
    }
    loaded.pending = pending;
    index_hashes(&db, next_seq)?;
    metrics
        .blocks_stored
        .store(loaded.blocks, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(WRITE_QUEUE_BATCHES);
    let thread = std::thread::Builder::new()
        .name("rantai-store".into())
        .spawn(move || writer(db, rx, next_seq, next_item, metrics))
        .map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok((StoreHandle { tx, thread }, loaded))
}

fn check_network(db: &Database, params: &Params) -> Result<(), StoreError> {
    let expected = params.genesis_hash();
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta.get(GENESIS_KEY)?.map(|g| g.value().to_vec());
        match found {
            Some(g) if g != expected.0 => {
                let found: String = g.iter().map(|b| format!("{b:02x}")).collect();
                return Err(StoreError::WrongNetwork {
                    found,
                    expected: expected.to_string(),
                });
            }
            Some(_) => {}
            None => {
                meta.insert(GENESIS_KEY, &expected.0[..])?;
            }
        }
        txn.open_table(BLOCKS)?;
        txn.open_table(HASHES)?;
        txn.open_table(PENDING)?;
    }
    txn.commit()?;
    Ok(())
}

fn indexed(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<u64, StoreError> {
    let v = meta.get(INDEXED_KEY)?;
    let n = v
        .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
        .map_or(0, u64::from_le_bytes);
    Ok(n)
}

/// Makes `HASHES` cover exactly the entries below `next_seq`: drops entries of removed blocks
/// and indexes blocks written before the table existed (reading only their headers).
fn index_hashes(db: &Database, next_seq: u64) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let done = indexed(&meta)?;
        let mut hashes = txn.open_table(HASHES)?;
        match done.cmp(&next_seq) {
            std::cmp::Ordering::Equal => return Ok(()),
            std::cmp::Ordering::Greater => hashes.retain(|_, seq| seq < next_seq)?,
            std::cmp::Ordering::Less => {
                // Entries from next_seq on may be left from appends the index never covered
                // (a store written before the index existed), then cut off: drop them too.
                hashes.retain(|_, seq| seq < next_seq)?;
                tracing::info!("store: indexing {} blocks by hash", next_seq - done);
                let blocks = txn.open_table(BLOCKS)?;
                for entry in blocks.range(done..next_seq)? {
                    let (k, v) = entry?;
                    if let Some(head) = v.value().first_chunk::<HEADER_LEN>() {
                        hashes.insert(&Header::decode(head).hash().0[..], k.value())?;
                    }
                }
            }
        }
        meta.insert(INDEXED_KEY, &next_seq.to_le_bytes()[..])?;
    }
    txn.commit()?;
    Ok(())
}

fn load(
    db: &Database,
    params: &Arc<Params>,
    now: Millis,
    body_cache: Option<u64>,
) -> Result<(Loaded, u64), StoreError> {
    let mut chain = Chain::new(params.clone());
    chain.set_body_cache(body_cache);
    let mut blocks = 0u64;
    let mut next_seq = 0u64;
    let mut stopped: Option<(u64, String)> = None;
    {
        let txn = db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let seq = k.value();
            let block = match Block::decode(v.value()) {
                Ok(b) => b,
                Err(e) => {
                    stopped = Some((seq, format!("entry {seq} is corrupt: {e}")));
                    break;
                }
            };
            let hash = block.hash();
            match chain.insert(Arc::new(block), now) {
                Ok(Insert::Accepted(_)) | Ok(Insert::Duplicate) => {}
                Ok(Insert::Orphan) => {
                    stopped = Some((
                        seq,
                        format!(
                            "entry {seq} (block {}) has no parent before it",
                            hash.short()
                        ),
                    ));
                    break;
                }
                Err(e) => {
                    stopped = Some((
                        seq,
                        format!("entry {seq} (block {}) is invalid: {e}", hash.short()),
                    ));
                    break;
                }
            }
            blocks += 1;
            next_seq = seq + 1;
        }
    }
    let stopped = match stopped {
        None => None,
        Some((seq, why)) => {
            tracing::error!("store: {why}; loading stopped there, removing entries from {seq} on");
            // The hash index drops the removed entries in `index_hashes`, which `open` runs
            // next (and again at the next open, should the process stop in between).
            let txn = db.begin_write()?;
            txn.open_table(BLOCKS)?.retain_in(seq.., |_, _| false)?;
            txn.commit()?;
            Some(why)
        }
    };
    Ok((
        Loaded {
            chain,
            blocks,
            stopped,
            pending: Vec::new(),
        },
        next_seq,
    ))
}

fn writer(
    db: Database,
    mut rx: mpsc::Receiver<StoreCmd>,
    mut next_seq: u64,
    mut next_item: u64,
    metrics: Arc<Metrics>,
) {
    // Bounded group: at most this many blocks per transaction.
    const MAX_GROUP: usize = 4096;
    let mut next = rx.blocking_recv();
    while let Some(cmd) = next.take() {
        let (mut group, mut items) = match cmd {
            StoreCmd::Load { hashes, reply } => {
                reply(read_blocks(&db, hashes));
                next = rx.blocking_recv();
                continue;
            }
            StoreCmd::Append(first) => (first, Vec::new()),
            StoreCmd::Items(first) => (Vec::new(), first),
        };
        // A read queued behind these writes waits for them, so it finds what they hold.
        while group.len() + items.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(StoreCmd::Append(more)) => group.extend(more),
                Ok(StoreCmd::Items(more)) => items.extend(more),
                Ok(load) => {
                    next = Some(load);
                    break;
                }
                Err(_) => break,
            }
        }
        let pending: Vec<&Item> = items.iter().map(|p| &p.item).collect();
        match write_group(&db, next_seq, &group, &pending, next_item) {
            Ok(()) => {
                next_seq += group.len() as u64;
                next_item += pending.len() as u64;
                metrics
                    .blocks_stored
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                metrics.store_commits.fetch_add(1, Ordering::Relaxed);
                for e in &group {
                    log_accepted(&e.block, &e.from);
                }
            }
            Err(e) => {
                metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "store: writing {} blocks and {} items failed: {e}; they stay in memory only",
                    group.len(),
                    items.len()
                );
            }
        }
        for p in items {
            (p.stored)();
        }
        if next.is_none() {
            next = rx.blocking_recv();
        }
    }
    drop(db);
    tracing::debug!("store closed");
}

/// Writes `items` (accepted here, numbered from `first_item`), then `group` (blocks from
/// `first_seq` on), in one transaction; a block takes the items it carries out of `PENDING`.
fn write_group(
    db: &Database,
    first_seq: u64,
    group: &[StoreEntry],
    items: &[&Item],
    first_item: u64,
) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(BLOCKS)?;
        let mut hashes = txn.open_table(HASHES)?;
        let mut meta = txn.open_table(META)?;
        let mut pending = txn.open_table(PENDING)?;
        for (n, it) in (first_item..).zip(items) {
            pending.insert(&it.id().0[..], encode_pending(n, it).as_slice())?;
        }
        let indexed_before = indexed(&meta)? == first_seq;
        for (i, e) in group.iter().enumerate() {
            let seq = first_seq + i as u64;
            table.insert(seq, e.block.encode().as_slice())?;
            hashes.insert(&e.block.hash().0[..], seq)?;
            if !pending.is_empty()? {
                for it in e.block.items() {
                    pending.remove(&it.id().0[..])?;
                }
            }
        }
        if indexed_before {
            let end = first_seq + group.len() as u64;
            meta.insert(INDEXED_KEY, &end.to_le_bytes()[..])?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Reads blocks by hash; a block that cannot be read is logged and reported missing.
fn read_blocks(db: &Database, hashes: Vec<BlockHash>) -> LoadedBlocks {
    let mut out = LoadedBlocks::default();
    let read = |out: &mut LoadedBlocks| -> Result<(), StoreError> {
        let txn = db.begin_read()?;
        let by_hash = txn.open_table(HASHES)?;
        let blocks = txn.open_table(BLOCKS)?;
        for h in &hashes {
            let Some(seq) = by_hash.get(&h.0[..])?.map(|g| g.value()) else {
                out.missing.push(*h);
                continue;
            };
            let entry = blocks.get(seq)?;
            match entry.map(|g| Block::decode(g.value())) {
                Some(Ok(b)) if b.hash() == *h => out.blocks.push(Arc::new(b)),
                Some(Err(e)) => {
                    tracing::error!("store: entry {seq} (block {}) is corrupt: {e}", h.short());
                    out.missing.push(*h);
                }
                _ => out.missing.push(*h),
            }
        }
        Ok(())
    };
    if let Err(e) = read(&mut out) {
        tracing::error!("store: reading {} blocks failed: {e}", hashes.len());
        let found: std::collections::BTreeSet<BlockHash> =
            out.blocks.iter().map(|b| b.hash()).collect();
        out.missing = hashes.into_iter().filter(|h| !found.contains(h)).collect();
    }
    out
}

impl StoreHandle {
    /// Queues items accepted from users for the next commit (ahead of any block queued
    /// later); each one's `stored` runs once it is on disk.
    pub async fn append_items(&self, items: Vec<PendingItem>) {
        if let Err(mpsc::error::SendError(StoreCmd::Items(items))) =
            self.tx.send(StoreCmd::Items(items)).await
        {
            tracing::error!("store writer is gone; items are no longer persisted");
            for p in items {
                (p.stored)();
            }
        }
    }

    /// Queues blocks for the next commit; waits only when the writer is far behind.
    pub async fn append(&self, batch: Vec<StoreEntry>) {
        if self.tx.send(StoreCmd::Append(batch)).await.is_err() {
            tracing::error!("store writer is gone; blocks are no longer persisted");
        }
    }

    /// Queues a read of `hashes` behind the queued writes; `reply` gets the answer on the
    /// store thread. If the store thread is gone, `reply` gets every hash as missing at once.
    pub async fn load(&self, hashes: Vec<BlockHash>, reply: LoadReply) {
        if let Err(mpsc::error::SendError(cmd)) =
            self.tx.send(StoreCmd::Load { hashes, reply }).await
        {
            tracing::error!("store thread is gone; cannot read stored blocks");
            if let StoreCmd::Load { hashes, reply } = cmd {
                reply(LoadedBlocks {
                    blocks: Vec::new(),
                    missing: hashes,
                });
            }
        }
    }

    /// A reader for the HTTP API that does not keep the store open.
    pub fn loader(&self) -> StoreLoader {
        StoreLoader {
            tx: self.tx.downgrade(),
        }
    }

    /// Flushes everything queued and closes the database.
    pub async fn close(self) {
        drop(self.tx);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Store entries for `blocks` with no sender to log.
fn unlabelled(blocks: &[Arc<Block>]) -> Vec<StoreEntry> {
    blocks
        .iter()
        .map(|b| StoreEntry {
            block: b.clone(),
            from: String::new(),
        })
        .collect()
}

/// Writes `blocks` (parents first) as a fresh store in `dir`; for tools and benchmarks that
/// prepare a data directory without running a node.
pub fn write_blocks(
    dir: &Path,
    params: &Arc<Params>,
    blocks: &[Arc<Block>],
) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let db = Database::create(dir.join(DB_FILE))?;
    check_network(&db, params)?;
    let next = {
        let txn = db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let last = table.last()?.map(|(k, _)| k.value());
        last.map_or(0, |k| k + 1)
    };
    for (i, chunk) in blocks.chunks(10_000).enumerate() {
        write_group(&db, next + (i * 10_000) as u64, &unlabelled(chunk), &[], 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
