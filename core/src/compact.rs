//! Compact blocks, after BIP 152: a block sent as its header, a 6-byte short id per item and
//! the few items the sender expects the receiver to lack ("prefilled"). A receiver whose
//! pending pool already holds the items rebuilds the block from it and saves nearly all the
//! bytes; it asks for the items it lacks by position.
//!
//! Short ids are SipHash-2-4 of the item id under a key derived from the header and a salt the
//! sender picks, so nobody can make two items collide in advance for every block. A collision
//! can still happen by chance; then the rebuilt data does not match the header's data hash and
//! the receiver falls back to the whole block.

use crate::block::{Header, Item, ItemId, HEADER_LEN, ITEM_OVERHEAD, MAX_BLOCK_DATA_BYTES};
use crate::codec::{DecodeError, Reader};
use crate::types::BlockHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hash::Hasher;

/// Bytes of a short id on the wire.
pub const SHORT_ID_LEN: usize = 6;
/// Most items a valid block can hold (each takes at least [`ITEM_OVERHEAD`] bytes): the bound
/// on short ids, prefilled items and requested positions of one block.
pub const MAX_BLOCK_ITEMS: usize = MAX_BLOCK_DATA_BYTES / ITEM_OVERHEAD;
/// Bytes of a prefilled item's position.
const INDEX_LEN: usize = 4;

/// The low 48 bits of an item's keyed hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShortId(pub [u8; SHORT_ID_LEN]);

/// The SipHash key of one compact block: the first 16 bytes of SHA-256(header || salt).
#[derive(Clone, Copy, Debug)]
pub struct ShortIdKey {
    k0: u64,
    k1: u64,
}

impl ShortIdKey {
    /// The key for a block with this header, sent with this salt.
    pub fn new(header: &Header, salt: u64) -> ShortIdKey {
        let mut h = Sha256::new();
        h.update(header.encode());
        h.update(salt.to_le_bytes());
        let d = h.finalize();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[i..i + 8]);
            u64::from_le_bytes(w)
        };
        ShortIdKey {
            k0: word(0),
            k1: word(8),
        }
    }

    /// The short id of an item under this key.
    pub fn short_id(&self, id: &ItemId) -> ShortId {
        let mut s = siphasher::sip::SipHasher24::new_with_keys(self.k0, self.k1);
        s.write(&id.0);
        let b = s.finish().to_le_bytes();
        let mut out = [0u8; SHORT_ID_LEN];
        out.copy_from_slice(&b[..SHORT_ID_LEN]);
        ShortId(out)
    }
}

/// An item sent in full inside a compact block, at its position in the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefilledItem {
    /// Position of the item in the block.
    pub index: u32,
    /// The item.
    pub item: Item,
}

/// A block as its header, short ids of the items the receiver likely has, and the rest in
/// full. Positions not prefilled take the short ids in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The block's header; its hash is the block's.
    pub header: Header,
    /// The sender's salt of the short-id key.
    pub salt: u64,
    /// Short ids of the items not prefilled, in block order.
    pub short_ids: Vec<ShortId>,
    /// Items sent whole, by increasing position.
    pub prefilled: Vec<PrefilledItem>,
}

/// Why a compact block cannot be rebuilt from the pool at all: the whole block is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildError {
    /// Two of the block's short ids are equal, so neither names one item.
    DuplicateShortIds,
}

/// A compact block rebuilt as far as the pool allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Every position of the block, `None` where the pool had no (unambiguous) item.
    pub slots: Vec<Option<Item>>,
}

impl Rebuilt {
    /// Positions still missing, increasing.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Fills the missing positions with `items`, in order; `None` unless there is exactly one
    /// item per missing position.
    pub fn fill(mut self, items: Vec<Item>) -> Option<Vec<Item>> {
        let mut given = items.into_iter();
        for slot in self.slots.iter_mut().filter(|s| s.is_none()) {
            *slot = Some(given.next()?);
        }
        if given.next().is_some() {
            return None;
        }
        self.slots.into_iter().collect()
    }
}

impl CompactBlock {
    /// The compact form of a block with `header` and `items`; `prefill(i, item)` says which
    /// positions go whole.
    pub fn new(
        header: &Header,
        items: &[Item],
        salt: u64,
        mut prefill: impl FnMut(usize, &Item) -> bool,
    ) -> CompactBlock {
        let key = ShortIdKey::new(header, salt);
        let mut short_ids = Vec::with_capacity(items.len());
        let mut prefilled = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if prefill(i, it) {
                prefilled.push(PrefilledItem {
                    index: i as u32,
                    item: it.clone(),
                });
            } else {
                short_ids.push(key.short_id(&it.id()));
            }
        }
        CompactBlock {
            header: *header,
            salt,
            short_ids,
            prefilled,
        }
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// Items in the block.
    pub fn item_count(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }

    /// Exact encoded length.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + 8
            + 4
            + SHORT_ID_LEN * self.short_ids.len()
            + 4
            + self
                .prefilled
                .iter()
                .map(|p| INDEX_LEN + p.item.encoded_len())
                .sum::<usize>()
    }

    /// Checks the bounds every valid block keeps: at most [`MAX_BLOCK_ITEMS`] items, prefilled
    /// data within [`MAX_BLOCK_DATA_BYTES`], prefilled positions increasing and inside the block.
    pub fn check_limits(&self) -> Result<(), DecodeError> {
        let n = self.item_count();
        if n > MAX_BLOCK_ITEMS {
            return Err(DecodeError::Limit {
                what: "compact block items",
                n,
                max: MAX_BLOCK_ITEMS,
            });
        }
        let bytes: usize = self.prefilled.iter().map(|p| p.item.encoded_len()).sum();
        if bytes > MAX_BLOCK_DATA_BYTES {
            return Err(DecodeError::Limit {
                what: "prefilled bytes",
                n: bytes,
                max: MAX_BLOCK_DATA_BYTES,
            });
        }
        let mut next = 0usize;
        for p in &self.prefilled {
            let i = p.index as usize;
            if i < next || i >= n {
                return Err(DecodeError::Limit {
                    what: "prefilled position",
                    n: i,
                    max: n.saturating_sub(1),
                });
            }
            next = i + 1;
        }
        Ok(())
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.salt.to_le_bytes());
        out.extend_from_slice(&(self.short_ids.len() as u32).to_le_bytes());
        for s in &self.short_ids {
            out.extend_from_slice(&s.0);
        }
        out.extend_from_slice(&(self.prefilled.len() as u32).to_le_bytes());
        for p in &self.prefilled {
            out.extend_from_slice(&p.index.to_le_bytes());
            p.item.encode_into(out);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<CompactBlock, DecodeError> {
        let header = Header::decode(&r.array::<HEADER_LEN>("compact header")?);
        let salt = r.u64("salt")?;
        let n = r.u32("short id count")? as usize;
        let n = r.count(n, MAX_BLOCK_ITEMS, SHORT_ID_LEN, "short ids")?;
        let short_ids = (0..n)
            .map(|_| r.array::<SHORT_ID_LEN>("short id").map(ShortId))
            .collect::<Result<Vec<_>, _>>()?;
        let m = r.u32("prefilled count")? as usize;
        let m = r.count(
            m,
            MAX_BLOCK_ITEMS - n,
            INDEX_LEN + ITEM_OVERHEAD,
            "prefilled items",
        )?;
        let prefilled = (0..m)
            .map(|_| {
                Ok(PrefilledItem {
                    index: r.u32("prefilled position")?,
                    item: Item::decode(r)?,
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let cb = CompactBlock {
            header,
            salt,
            short_ids,
            prefilled,
        };
        cb.check_limits()?;
        Ok(cb)
    }

    /// Rebuilds the block's items from `pool` (items the receiver holds). A short id that two
    /// pool items share is left missing (asked for), as is one no pool item has.
    pub fn rebuild<'a>(
        &self,
        pool: impl Iterator<Item = &'a Item>,
    ) -> Result<Rebuilt, RebuildError> {
        let key = ShortIdKey::new(&self.header, self.salt);
        // Position of each short id; equal ids make the block unrebuildable.
        let mut wanted: BTreeMap<ShortId, usize> = BTreeMap::new();
        for (k, s) in self.short_ids.iter().enumerate() {
            if wanted.insert(*s, k).is_some() {
                return Err(RebuildError::DuplicateShortIds);
            }
        }
        let mut found: Vec<Option<&Item>> = vec![None; self.short_ids.len()];
        let mut ambiguous = vec![false; self.short_ids.len()];
        for it in pool {
            if let Some(&k) = wanted.get(&key.short_id(&it.id())) {
                if found[k].is_some_and(|f| f != it) {
                    ambiguous[k] = true;
                }
                found[k] = Some(it);
            }
        }
        let mut slots = Vec::with_capacity(self.item_count());
        let mut pre = self.prefilled.iter().peekable();
        let mut next_short = 0;
        for i in 0..self.item_count() {
            if let Some(p) = pre.next_if(|p| p.index as usize == i) {
                slots.push(Some(p.item.clone()));
            } else {
                let k = next_short;
                next_short += 1;
                let it = found.get(k).copied().flatten().filter(|_| !ambiguous[k]);
                slots.push(it.cloned());
            }
        }
        Ok(Rebuilt { slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Template;
    use crate::params::Params;
    use crate::types::Millis;

    fn items(n: u64) -> Vec<Item> {
        (0..n)
            .map(|k| Item {
                nonce: k,
                text: format!("item {k}"),
            })
            .collect()
    }

    fn header(items: &[Item]) -> Header {
        let g = Params::dev().genesis().clone();
        *Template::new(g.header(), g.hash(), 0, Millis(1), items.to_vec())
            .into_block(0)
            .header()
    }

    #[test]
    fn rebuilds_from_a_full_pool_a_partial_one_and_an_empty_one() {
        let all = items(6);
        let h = header(&all);
        let cb = CompactBlock::new(&h, &all, 42, |i, _| i == 0);
        assert_eq!(cb.short_ids.len(), 5);
        let full = cb.rebuild(all.iter()).expect("no duplicates");
        assert!(full.missing().is_empty());
        assert_eq!(full.fill(vec![]), Some(all.clone()));
        let partial = cb.rebuild(all[..3].iter()).expect("no duplicates");
        assert_eq!(partial.missing(), vec![3, 4, 5]);
        assert_eq!(partial.clone().fill(all[3..].to_vec()), Some(all.clone()));
        assert_eq!(partial.clone().fill(all[3..5].to_vec()), None, "one short");
        assert_eq!(partial.fill(all[2..].to_vec()), None, "one too many");
        let empty = cb.rebuild(std::iter::empty()).expect("no duplicates");
        assert_eq!(
            empty.missing(),
            vec![1, 2, 3, 4, 5],
            "the prefilled one is there"
        );
    }

    #[test]
    fn short_ids_depend_on_the_salt_and_equal_ones_refuse_a_rebuild() {
        let all = items(2);
        let h = header(&all);
        let id = all[0].id();
        assert_ne!(
            ShortIdKey::new(&h, 1).short_id(&id),
            ShortIdKey::new(&h, 2).short_id(&id)
        );
        let mut cb = CompactBlock::new(&h, &all, 1, |_, _| false);
        cb.short_ids[1] = cb.short_ids[0];
        assert_eq!(cb.rebuild(all.iter()), Err(RebuildError::DuplicateShortIds));
    }

    #[test]
    fn encoding_is_exact_and_limits_are_checked() {
        let all = items(4);
        let h = header(&all);
        let cb = CompactBlock::new(&h, &all, 9, |i, _| i % 2 == 1);
        let mut out = Vec::new();
        cb.encode_into(&mut out);
        assert_eq!(out.len(), cb.encoded_len());
        let mut r = Reader::new(&out);
        assert_eq!(CompactBlock::decode(&mut r), Ok(cb.clone()));
        r.finish().expect("every byte read");
        let mut bad = cb.clone();
        bad.prefilled[1].index = bad.prefilled[0].index;
        assert!(bad.check_limits().is_err(), "positions must increase");
        let mut bad = cb;
        bad.prefilled[1].index = 4;
        assert!(bad.check_limits().is_err(), "position past the end");
    }
}
