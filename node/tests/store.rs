//! The block store: replay in acceptance order, and a corrupt entry ends loading cleanly.

mod common;

use common::{mined_chain, TempDir};
use rantai_core::Params;
use rantai_node::metrics::Metrics;
use rantai_node::store;
use redb::TableDefinition;
use std::sync::Arc;

#[tokio::test]
async fn corrupt_entry_stops_loading_there_and_is_removed() {
    let dir = TempDir::new("store");
    let params = Arc::new(Params::main());
    let blocks = mined_chain(10, "stored");
    store::write_blocks(dir.path(), &params, &blocks).expect("write");
    {
        let db = redb::Database::create(dir.path().join(store::DB_FILE)).expect("open");
        let txn = db.begin_write().expect("txn");
        {
            let table: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
            let mut t = txn.open_table(table).expect("table");
            t.insert(6u64, &b"definitely not a block"[..])
                .expect("corrupt");
        }
        txn.commit().expect("commit");
    }
    let now = rantai_node::unix_now();
    let (h, loaded) =
        store::open(dir.path(), &params, Arc::new(Metrics::default()), now, None).expect("opens");
    assert_eq!(loaded.blocks, 6, "entries 0..6 load");
    assert_eq!(loaded.chain.height(), 6);
    assert!(
        loaded
            .stopped
            .as_deref()
            .is_some_and(|s| s.contains("entry 6")),
        "{:?}",
        loaded.stopped
    );
    h.close().await;
    let (h, again) =
        store::open(dir.path(), &params, Arc::new(Metrics::default()), now, None).expect("opens");
    assert_eq!(again.blocks, 6);
    assert!(again.stopped.is_none(), "the bad tail was removed");
    h.close().await;
}

#[tokio::test]
async fn a_store_of_another_network_is_refused() {
    let dir = TempDir::new("othernet");
    let main = Arc::new(Params::main());
    store::write_blocks(dir.path(), &main, &mined_chain(1, "stored")).expect("write");
    let other = Arc::new(Params::new("elsewhere", 8));
    let r = store::open(
        dir.path(),
        &other,
        Arc::new(Metrics::default()),
        rantai_node::unix_now(),
        None,
    );
    assert!(matches!(r, Err(store::StoreError::WrongNetwork { .. })));
}

/// A node with a data directory keeps only its newest bodies in memory; the API and a peer
/// catching up still get every block whole, read back from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_bodies_are_served_from_the_store_to_the_api_and_to_peers() {
    use common::{fast_options, spawn_node, wait_async};
    use rantai_core::Block;
    use std::time::Duration;
    let dir = TempDir::new("evict");
    let params = Arc::new(Params::main());
    let blocks = mined_chain(40, "evicted");
    let data = dir.path().join("a");
    store::write_blocks(&data, &params, &blocks).expect("write");
    let a = spawn_node(rantai_node::NodeOptions {
        data_dir: Some(data),
        body_cache_blocks: 3,
        ..fast_options()
    })
    .await;
    let ca = a.client().clone();
    assert_eq!(ca.status().await.expect("alive").height, 40);
    // The API: one evicted block, and a page across evicted and held ones.
    let first = ca
        .block(blocks[0].hash())
        .await
        .expect("alive")
        .expect("known");
    assert_eq!(first.items[0].text, "evicted 0");
    assert!(first.in_best_chain);
    let page = ca.blocks(1, 100).await.expect("alive");
    let texts: Vec<_> = page
        .blocks
        .iter()
        .map(|b| b.items[0].text.clone())
        .collect();
    let want: Vec<_> = (0..40).map(|i| format!("evicted {i}")).collect();
    assert_eq!(texts, want);
    // A peer without a data directory catches up from `a`.
    let b = spawn_node(rantai_node::NodeOptions {
        peers: vec![a.local_addr().to_string()],
        ..fast_options()
    })
    .await;
    let cb = b.client().clone();
    wait_async(Duration::from_secs(20), "b catches up", || async {
        cb.status().await.is_ok_and(|s| s.height == 40)
    })
    .await;
    let chain: Vec<Arc<Block>> = cb.best_chain().await.expect("alive");
    assert_eq!(chain.len(), 41);
    for (got, sent) in chain[1..].iter().zip(&blocks) {
        assert_eq!(got.as_ref(), sent.as_ref());
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// Loading with a body cache keeps only the newest bodies; the rest are read back by hash,
/// also from a store written before the hash index existed (it is built at open).
#[tokio::test]
async fn loading_with_a_body_cache_keeps_only_the_newest_bodies() {
    let dir = TempDir::new("evict-load");
    let params = Arc::new(Params::main());
    let blocks = mined_chain(12, "old store");
    store::write_blocks(dir.path(), &params, &blocks).expect("write");
    {
        // As the store was before the hash index.
        let db = redb::Database::create(dir.path().join(store::DB_FILE)).expect("open");
        let txn = db.begin_write().expect("txn");
        let hashes: TableDefinition<&[u8], u64> = TableDefinition::new("hashes");
        txn.delete_table(hashes).expect("drop index");
        let meta: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
        txn.open_table(meta)
            .expect("meta")
            .remove("hashes_indexed")
            .expect("forget");
        txn.commit().expect("commit");
    }
    let now = rantai_node::unix_now();
    let (h, loaded) = store::open(
        dir.path(),
        &params,
        Arc::new(Metrics::default()),
        now,
        Some(3),
    )
    .expect("opens");
    assert_eq!(loaded.chain.height(), 12);
    let held: Vec<u64> = loaded
        .chain
        .blocks()
        .filter(|b| b.body().is_some())
        .map(|b| b.height())
        .collect();
    assert_eq!(held, vec![0, 10, 11, 12]);
    let unknown = rantai_core::BlockHash::ZERO;
    let got = h
        .loader()
        .load(vec![blocks[0].hash(), unknown, blocks[5].hash()])
        .await
        .expect("open");
    assert_eq!(got.blocks, vec![blocks[0].clone(), blocks[5].clone()]);
    assert_eq!(got.missing, vec![unknown]);
    let loader = h.loader();
    h.close().await;
    assert!(loader.load(vec![blocks[0].hash()]).await.is_err(), "closed");
}
