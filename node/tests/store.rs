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
