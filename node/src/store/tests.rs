//! Unit tests of the store: reopen, recovery, pending items, network checks.

use super::*;
use rantai_core::{Item, Template};

/// A fresh temporary directory, removed on drop (also when a test panics).
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        let dir =
            std::env::temp_dir().join(format!("rantai-store-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempPath(dir)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database file in a fresh temporary directory; the database closes before the
/// directory goes.
struct TempDb {
    db: Database,
    _dir: TempPath,
}

impl TempDb {
    fn new(tag: &str) -> TempDb {
        let dir = TempPath::new(tag);
        let db = Database::create(dir.0.join(DB_FILE)).expect("database");
        TempDb { db, _dir: dir }
    }
}

fn chain_of(n: u64, params: &Params) -> Vec<Arc<Block>> {
    let mut parent = params.genesis().clone();
    (1..=n)
        .map(|i| {
            let items = vec![Item {
                nonce: i,
                text: format!("line {i}"),
            }];
            let t = Template::new(parent.header(), parent.hash(), 0, Millis(i), items);
            parent = Arc::new(t.into_block(i));
            parent.clone()
        })
        .collect()
}

fn index_state(db: &Database) -> (u64, Vec<(BlockHash, u64)>) {
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    let hashes = txn.open_table(HASHES).expect("hashes");
    let entries = hashes
        .iter()
        .expect("iterate")
        .map(|e| {
            let (k, v) = e.expect("entry");
            let h: [u8; 32] = k.value().try_into().expect("32-byte key");
            (rantai_core::Hash32(h), v.value())
        })
        .collect();
    (indexed(&meta).expect("indexed"), entries)
}

/// A stored item stays until a stored block carries it, also when both share a commit.
#[test]
fn pending_items_stay_until_a_stored_block_carries_them() {
    let params = Params::dev();
    let t = TempDb::new("pending");
    check_network(&t.db, &params).expect("fresh store");
    let blocks = chain_of(2, &params);
    let first = blocks[0].items()[0].clone();
    let second = blocks[1].items()[0].clone();
    let waiting = Item {
        nonce: 99,
        text: "waiting".into(),
    };
    write_group(&t.db, 0, &[], &[&first, &waiting], 0).expect("items");
    let want = vec![first.clone(), waiting.clone()];
    assert_eq!(load_pending(&t.db).expect("load"), (want, 2));
    write_group(&t.db, 0, &unlabelled(&blocks[..1]), &[], 2).expect("block 1");
    assert_eq!(
        load_pending(&t.db).expect("load"),
        (vec![waiting.clone()], 2)
    );
    write_group(&t.db, 1, &unlabelled(&blocks[1..]), &[&second], 2).expect("block 2");
    assert_eq!(load_pending(&t.db).expect("load"), (vec![waiting], 2));
}

/// Pending items load in the order they were submitted (not by id), entries written
/// without a number load first, and a restart drops entries that a stored block carries.
#[test]
fn pending_items_load_in_submission_order_without_what_blocks_carry() {
    let params = Arc::new(Params::dev());
    let dir = TempPath::new("pending-order");
    let blocks = chain_of(1, &params);
    let carried = blocks[0].items()[0].clone();
    let mut lines: Vec<Item> = (0..6)
        .map(|i| Item {
            nonce: i,
            text: format!("typed {i}"),
        })
        .collect();
    // Submission order opposite to id order, so an id-ordered load would show.
    lines.sort_by_key(|it| std::cmp::Reverse(it.id()));
    let old = Item {
        nonce: 7,
        text: "written before numbers".into(),
    };
    {
        let db = Database::create(dir.0.join(DB_FILE)).expect("database");
        check_network(&db, &params).expect("fresh store");
        write_group(&db, 0, &unlabelled(&blocks), &[], 0).expect("block");
        let refs: Vec<&Item> = lines.iter().collect();
        write_group(&db, 1, &[], &refs[..3], 0).expect("first items");
        // Accepted while the block carrying it was in flight: stored as pending after it.
        write_group(&db, 1, &[], &[&carried], 3).expect("carried item");
        write_group(&db, 1, &[], &refs[3..], 4).expect("more items");
        let txn = db.begin_write().expect("write");
        {
            let mut pending = txn.open_table(PENDING).expect("pending");
            pending
                .insert(&old.id().0[..], old.encode().as_slice())
                .expect("old entry");
        }
        txn.commit().expect("commit");
    }
    let metrics = Arc::new(Metrics::default());
    let (store, loaded) = open(&dir.0, &params, metrics, Millis(0), None).expect("open");
    let mut want = vec![old];
    want.extend(lines);
    assert_eq!(loaded.pending, want);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(store.close());
    let db = Database::open(dir.0.join(DB_FILE)).expect("reopen");
    assert_eq!(
        load_pending(&db).expect("load"),
        (want, 7),
        "carried entry removed"
    );
}

/// The hash index covers exactly the entries below `next_seq`: writes keep it current,
/// a store written without it gets it built, and entries cut off after corruption leave it.
#[test]
fn the_hash_index_covers_exactly_the_entries_below_next_seq() {
    let params = Params::dev();
    let t = TempDb::new("index");
    check_network(&t.db, &params).expect("fresh store");
    let blocks = chain_of(5, &params);
    write_group(&t.db, 0, &unlabelled(&blocks), &[], 0).expect("write");
    let want = |n: usize| -> Vec<(BlockHash, u64)> {
        let mut v: Vec<(BlockHash, u64)> = blocks[..n]
            .iter()
            .enumerate()
            .map(|(i, b)| (b.hash(), i as u64))
            .collect();
        v.sort();
        v
    };
    assert_eq!(index_state(&t.db), (5, want(5)), "kept current by writes");
    // Blocks from 3 on were cut off: their hashes leave the index.
    index_hashes(&t.db, 3).expect("shrink");
    assert_eq!(index_state(&t.db), (3, want(3)));
    // A store whose index covers nothing gets it built from the blocks.
    {
        let txn = t.db.begin_write().expect("write");
        txn.open_table(HASHES)
            .expect("hashes")
            .retain(|_, _| false)
            .expect("clear");
        txn.open_table(META)
            .expect("meta")
            .insert(INDEXED_KEY, &0u64.to_le_bytes()[..])
            .expect("reset");
        txn.commit().expect("commit");
    }
    assert_eq!(index_state(&t.db), (0, vec![]));
    index_hashes(&t.db, 5).expect("build");
    assert_eq!(index_state(&t.db), (5, want(5)));
}

/// An index entry left behind (the process stopped between truncating the blocks and
/// updating the index) may point at a sequence number a newer block now holds: a read by
/// the old hash reports it missing, never hands out the other block.
#[test]
fn a_stale_index_entry_never_returns_another_block() {
    let params = Params::dev();
    let t = TempDb::new("stale");
    check_network(&t.db, &params).expect("fresh store");
    let blocks = chain_of(5, &params);
    write_group(&t.db, 0, &unlabelled(&blocks[..4]), &[], 0).expect("write");
    // Entry 3 is cut off without touching the index; another block then takes seq 3.
    let txn = t.db.begin_write().expect("write");
    txn.open_table(BLOCKS)
        .expect("blocks")
        .retain_in(3.., |_, _| false)
        .expect("truncate");
    txn.commit().expect("commit");
    let mut other = chain_of(4, &Params::new("other", 0));
    write_group(&t.db, 3, &unlabelled(&other[3..]), &[], 0).expect("write");
    let read = read_blocks(&t.db, vec![blocks[3].hash(), blocks[2].hash()]);
    assert_eq!(read.missing, vec![blocks[3].hash()]);
    assert_eq!(read.blocks, vec![blocks[2].clone()]);
    let read = read_blocks(&t.db, vec![other[3].hash()]);
    assert_eq!(read.blocks, vec![other.remove(3)]);
}

/// Group commit: batches queued when a transaction starts share it, up to 4,096 blocks.
#[test]
fn queued_batches_share_one_commit_up_to_the_group_bound() {
    let params = Params::dev();
    let dir = TempPath::new("group");
    let db = Database::create(dir.0.join(DB_FILE)).expect("database");
    check_network(&db, &params).expect("fresh store");
    let blocks = chain_of(4_097, &params);
    let (tx, rx) = mpsc::channel(5_000);
    for b in &blocks {
        tx.try_send(StoreCmd::Append(unlabelled(std::slice::from_ref(b))))
            .expect("queued");
    }
    drop(tx);
    let metrics = Arc::new(Metrics::default());
    writer(db, rx, 0, 0, metrics.clone());
    assert_eq!(metrics.blocks_stored.load(Ordering::Relaxed), 4_097);
    assert_eq!(metrics.store_commits.load(Ordering::Relaxed), 2);
}

/// `write_blocks` appends after what a store holds, in chunks of 10,000 blocks.
#[test]
fn write_blocks_appends_in_order_across_chunks() {
    let params = Arc::new(Params::dev());
    let dir = TempPath::new("write-blocks");
    let blocks = chain_of(10_003, &params);
    write_blocks(&dir.0, &params, &blocks[..2]).expect("first");
    write_blocks(&dir.0, &params, &blocks[2..]).expect("append");
    let db = Database::open(dir.0.join(DB_FILE)).expect("open");
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(BLOCKS).expect("blocks");
    assert_eq!(table.len().expect("len"), 10_003);
    for seq in [0u64, 1, 2, 10_001, 10_002] {
        let b = Block::decode(table.get(seq).expect("get").expect("entry").value());
        assert_eq!(
            b.map(|b| b.hash()),
            Ok(blocks[seq as usize].hash()),
            "seq {seq}"
        );
    }
}

/// A read that fails (here: a store without the hash table) reports every block it did
/// not return as missing, so the caller asks peers for them.
#[test]
fn a_failed_read_reports_every_block_missing() {
    let t = TempDb::new("failed-read");
    let blocks = chain_of(2, &Params::dev());
    let hashes: Vec<BlockHash> = blocks.iter().map(|b| b.hash()).collect();
    let read = read_blocks(&t.db, hashes.clone());
    assert!(read.blocks.is_empty());
    assert_eq!(read.missing, hashes);
}
