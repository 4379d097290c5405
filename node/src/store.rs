//! The crash-safe block store under `--data-dir`: every accepted block, in acceptance order.
//!
//! Blocks live in a redb table keyed by a sequence number (parents always precede children),
//! encoded canonically (96-byte header + canonical item encoding). A dedicated thread writes them
//! with group commit: whatever batches are queued when a transaction starts go into it, and each
//! commit is one fsync (redb's default `Durability::Immediate`). Only after the commit returns is
//! a block logged as `accepted` and counted in `stored_blocks`: that is the durability guarantee.
//!
//! Loading replays the table into a fresh [`Chain`], validating every block again. The first
//! entry that fails to decode or to connect ends the load with a logged error; it and every later
//! entry are removed, and the node fetches what is missing from its peers.

use crate::metrics::Metrics;
use rantai_core::block::{encode_items, HEADER_LEN};
use rantai_core::{Block, Chain, Header, Insert, Item, Millis, Params};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const GENESIS_KEY: &str = "genesis";
/// File name of the database inside the data directory.
pub const DB_FILE: &str = "chain.redb";
/// redb page cache.
const CACHE_BYTES: usize = 4 << 20;
/// Batches queued for the writer before the driver waits (backpressure on a slow disk).
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

/// Why a stored entry is not a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("item list is truncated")]
    Truncated,
    #[error("item text is not UTF-8")]
    Utf8,
    #[error("{0} trailing bytes after the items")]
    Trailing(usize),
}

/// Canonical encoding of a block for storage: header then item encoding.
pub fn encode_block(block: &Block) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.size());
    out.extend_from_slice(&block.header().encode());
    out.extend_from_slice(&encode_items(block.items()));
    out
}

/// Inverse of [`encode_block`]; never panics on arbitrary bytes.
pub fn decode_block(bytes: &[u8]) -> Result<Block, EntryError> {
    let (head, mut rest) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(EntryError::Short(bytes.len()))?;
    let header = Header::decode(head);
    let count = take_u32(&mut rest)? as usize;
    // Each item needs at least 12 bytes, so a huge count fails before allocating.
    if count > rest.len() / 12 {
        return Err(EntryError::Truncated);
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let (nonce, r) = rest.split_first_chunk::<8>().ok_or(EntryError::Truncated)?;
        rest = r;
        let len = take_u32(&mut rest)? as usize;
        if rest.len() < len {
            return Err(EntryError::Truncated);
        }
        let (text, r) = rest.split_at(len);
        rest = r;
        let text = std::str::from_utf8(text)
            .map_err(|_| EntryError::Utf8)?
            .to_string();
        items.push(Item {
            nonce: u64::from_le_bytes(*nonce),
            text,
        });
    }
    if !rest.is_empty() {
        return Err(EntryError::Trailing(rest.len()));
    }
    Ok(Block::new(header, items))
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, EntryError> {
    let (b, r) = rest.split_first_chunk::<4>().ok_or(EntryError::Truncated)?;
    *rest = r;
    Ok(u32::from_le_bytes(*b))
}

/// What loading a data directory found.
pub struct Loaded {
    pub chain: Chain,
    /// Entries replayed into the chain.
    pub blocks: u64,
    /// Why loading stopped early, if it did (the entries from there on were removed).
    pub stopped: Option<String>,
}

/// One accepted block on its way to disk, with the label of its sender for the log line.
#[derive(Debug)]
pub struct StoreEntry {
    pub block: Arc<Block>,
    pub from: String,
}

/// The driver's side of the store: queue batches, then [`StoreHandle::close`] to flush.
pub struct StoreHandle {
    tx: mpsc::Sender<Vec<StoreEntry>>,
    thread: std::thread::JoinHandle<()>,
}

/// Opens (or creates) the store in `dir`, replays it into a chain for `params`, and starts the
/// writer thread.
pub fn open(
    dir: &Path,
    params: &Arc<Params>,
    metrics: Arc<Metrics>,
    now: Millis,
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
    let (loaded, next_seq) = load(&db, params, now)?;
    metrics
        .blocks_stored
        .store(loaded.blocks, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(WRITE_QUEUE_BATCHES);
    let thread = std::thread::Builder::new()
        .name("rantai-store".into())
        .spawn(move || writer(db, rx, next_seq, metrics))
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
    }
    txn.commit()?;
    Ok(())
}

fn load(db: &Database, params: &Arc<Params>, now: Millis) -> Result<(Loaded, u64), StoreError> {
    let mut chain = Chain::new(params.clone());
    let mut blocks = 0u64;
    let mut next_seq = 0u64;
    let mut stopped: Option<(u64, String)> = None;
    {
        let txn = db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let seq = k.value();
            let block = match decode_block(v.value()) {
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
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(BLOCKS)?;
                table.retain_in(seq.., |_, _| false)?;
            }
            txn.commit()?;
            Some(why)
        }
    };
    Ok((
        Loaded {
            chain,
            blocks,
            stopped,
        },
        next_seq,
    ))
}

fn writer(
    db: Database,
    mut rx: mpsc::Receiver<Vec<StoreEntry>>,
    mut next_seq: u64,
    metrics: Arc<Metrics>,
) {
    // Bounded group: at most this many blocks per transaction.
    const MAX_GROUP: usize = 4096;
    while let Some(first) = rx.blocking_recv() {
        let mut group = first;
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(more) => group.extend(more),
                Err(_) => break,
            }
        }
        match write_group(&db, next_seq, &group) {
            Ok(()) => {
                next_seq += group.len() as u64;
                metrics
                    .blocks_stored
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                metrics.store_commits.fetch_add(1, Ordering::Relaxed);
                for e in &group {
                    crate::driver::log_accepted(&e.block, &e.from);
                }
            }
            Err(e) => {
                metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "store: writing {} blocks failed: {e}; they stay in memory only",
                    group.len()
                );
            }
        }
    }
    drop(db);
    tracing::debug!("store closed");
}

fn write_group(db: &Database, first_seq: u64, group: &[StoreEntry]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(BLOCKS)?;
        for (i, e) in group.iter().enumerate() {
            table.insert(first_seq + i as u64, encode_block(&e.block).as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

impl StoreHandle {
    /// Queues blocks for the next commit; waits only when the writer is far behind.
    pub async fn append(&self, batch: Vec<StoreEntry>) {
        if self.tx.send(batch).await.is_err() {
            tracing::error!("store writer is gone; blocks are no longer persisted");
        }
    }

    /// Flushes everything queued and closes the database.
    pub async fn close(self) {
        drop(self.tx);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
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
        let entries: Vec<StoreEntry> = chunk
            .iter()
            .map(|b| StoreEntry {
                block: b.clone(),
                from: String::new(),
            })
            .collect();
        write_group(&db, next + (i * 10_000) as u64, &entries)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64) -> Block {
        let items = vec![Item {
            nonce: n,
            text: format!("line {n} ✓"),
        }];
        let header = Header {
            version: 1,
            difficulty: 0,
            height: n,
            timestamp_ms: 7,
            prev: rantai_core::BlockHash::ZERO,
            data_hash: rantai_core::block::data_hash(&items),
            nonce: n,
        };
        Block::new(header, items)
    }

    #[test]
    fn encoding_roundtrips_and_rejects_garbage() {
        let b = block(3);
        let enc = encode_block(&b);
        assert_eq!(decode_block(&enc), Ok(b));
        assert_eq!(decode_block(&enc[..50]), Err(EntryError::Short(50)));
        assert_eq!(
            decode_block(&enc[..enc.len() - 1]),
            Err(EntryError::Truncated)
        );
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(decode_block(&long), Err(EntryError::Trailing(1)));
        let mut huge = enc[..HEADER_LEN].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_block(&huge), Err(EntryError::Truncated));
    }
}
