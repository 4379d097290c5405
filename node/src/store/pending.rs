//! Pending items kept across restarts (`PENDING`): each stored with its submission number,
//! so a restarted node re-offers them in the order they were typed.

use super::{StoreError, PENDING};
use rantai_core::Item;
use redb::{Database, ReadableDatabase, ReadableTable};

/// The stored pending items in submission order, and the number the next one gets; an entry
/// that does not decode is logged and skipped.
pub(super) fn load_pending(db: &Database) -> Result<(Vec<Item>, u64), StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(PENDING)?;
    let mut items = Vec::new();
    for entry in table.iter()? {
        let (_, v) = entry?;
        match decode_pending(v.value()) {
            Ok(numbered) => items.push(numbered),
            Err(e) => tracing::error!("store: a pending item is corrupt ({e}); skipped"),
        }
    }
    items.sort_by_key(|&(n, _)| n);
    let next = items.last().map_or(0, |&(n, _)| n + 1);
    Ok((items.into_iter().map(|(_, it)| it).collect(), next))
}

/// A `PENDING` value: the submission number and the item.
pub(super) fn decode_pending(v: &[u8]) -> Result<(u64, Item), rantai_core::DecodeError> {
    let numbered = v.split_first_chunk::<8>().and_then(|(n, rest)| {
        let item = Item::from_bytes(rest).ok()?;
        Some((u64::from_le_bytes(*n), item))
    });
    match numbered {
        Some(n) => Ok(n),
        None => Item::from_bytes(v).map(|it| (0, it)),
    }
}

pub(super) fn encode_pending(number: u64, item: &Item) -> Vec<u8> {
    let mut v = number.to_le_bytes().to_vec();
    v.extend_from_slice(&item.encode());
    v
}

/// Removes the entries of `items` from `PENDING`.
pub(super) fn remove_pending(db: &Database, items: &[Item]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut pending = txn.open_table(PENDING)?;
        for it in items {
            pending.remove(&it.id().0[..])?;
        }
    }
    txn.commit()?;
    Ok(())
}
