//! Compact per-connection storage for [`crate::Peer`]: a table keyed by [`ConnId`] and the
//! "this neighbour knows that hash" filter.
//!
//! Both sit on the path of every message a peer handles, so they are laid out for the cache:
//! the ids are one sorted array stored inline up to [`INLINE_IDS`] (a lookup reads the peer's
//! own memory), and a filter query reads one cache line instead of scanning a window.
#![forbid(unsafe_code)]

use crate::types::{ConnId, Hash32};
use smallvec::SmallVec;
use std::collections::{BTreeSet, VecDeque};
// Atomic, not `Cell`, so the peer stays `Sync`; relaxed loads and stores are plain moves.
use std::sync::atomic::{AtomicU32, Ordering};

/// Connection ids kept inside the table itself; more spill to the heap.
pub(crate) const INLINE_IDS: usize = 24;

/// Connections keyed by [`ConnId`], iterated in id order (as a `BTreeMap` would be, so the
/// order of sends never depends on insertion or hashing).
#[derive(Debug)]
pub(crate) struct ConnTable<V> {
    ids: SmallVec<[ConnId; INLINE_IDS]>,
    vals: Vec<V>,
    /// Position of the last id found: handling one message looks its sender up several
    /// times. Only a hint, checked against `ids` before use, so no update can make it wrong.
    last: AtomicU32,
}

impl<V> Default for ConnTable<V> {
    fn default() -> Self {
        ConnTable {
            ids: SmallVec::new(),
            vals: Vec::new(),
            last: AtomicU32::new(0),
        }
    }
}

impl<V> ConnTable<V> {
    fn pos(&self, id: &ConnId) -> Result<usize, usize> {
        let hint = self.last.load(Ordering::Relaxed) as usize;
        if self.ids.get(hint) == Some(id) {
            return Ok(hint);
        }
        let found = self.ids.binary_search(id);
        if let Ok(i) = found {
            self.last.store(i as u32, Ordering::Relaxed);
        }
        found
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn contains_key(&self, id: &ConnId) -> bool {
        self.pos(id).is_ok()
    }

    pub(crate) fn get(&self, id: &ConnId) -> Option<&V> {
        self.pos(id).ok().map(|i| &self.vals[i])
    }

    pub(crate) fn get_mut(&mut self, id: &ConnId) -> Option<&mut V> {
        match self.pos(id) {
            Ok(i) => Some(&mut self.vals[i]),
            Err(_) => None,
        }
    }

    /// Inserts or replaces; returns the replaced value.
    pub(crate) fn insert(&mut self, id: ConnId, v: V) -> Option<V> {
        match self.pos(&id) {
            Ok(i) => Some(std::mem::replace(&mut self.vals[i], v)),
            Err(i) => {
                if self.vals.len() == self.vals.capacity() {
                    // Grow by a quarter, not double: connections are few and long-lived, and a
                    // simulation holds hundreds of thousands of them.
                    let extra = (self.vals.len() / 4).max(2);
                    self.vals.reserve_exact(extra);
                    self.ids.reserve_exact(extra);
                }
                self.ids.insert(i, id);
                self.vals.insert(i, v);
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, id: &ConnId) -> Option<V> {
        let i = self.pos(id).ok()?;
        self.ids.remove(i);
        Some(self.vals.remove(i))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &ConnId> + '_ {
        self.ids.iter()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.vals.iter()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.vals.iter_mut()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ConnId, &V)> + '_ {
        self.ids.iter().zip(self.vals.iter())
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&ConnId, &mut V)> + '_ {
        self.ids.iter().zip(self.vals.iter_mut())
    }
}

/// Blocks requested and from whom, sorted by hash. While a block propagates a peer has one or
/// two requests out, so they live inline in the peer: the check every announcement makes
/// reads no other memory. Catch-up can hold more (bounded by the per-connection in-flight
/// limit); they spill to the heap.
#[derive(Debug, Default)]
pub(crate) struct Requested {
    entries: SmallVec<[(Hash32, ConnId); 2]>,
}

impl Requested {
    fn pos(&self, h: &Hash32) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(h))
    }

    pub(crate) fn get(&self, h: &Hash32) -> Option<&ConnId> {
        self.pos(h).ok().map(|i| &self.entries[i].1)
    }

    pub(crate) fn contains_key(&self, h: &Hash32) -> bool {
        self.pos(h).is_ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn insert(&mut self, h: Hash32, peer: ConnId) {
        match self.pos(&h) {
            Ok(i) => self.entries[i].1 = peer,
            Err(i) => self.entries.insert(i, (h, peer)),
        }
    }

    pub(crate) fn remove(&mut self, h: &Hash32) {
        if let Ok(i) = self.pos(h) {
            self.entries.remove(i);
            if self.entries.spilled() && self.entries.len() <= self.entries.inline_size() {
                // A catch-up burst is over: back inline, so its buffer is not kept for good.
                self.entries.shrink_to_fit();
            }
        }
    }
}

/// Slots of a [`KnownSet`]. Blocks arrive minutes apart, so a handful of recent hashes is what
/// matters; a small inline table keeps the relay loop free of pointer chasing.
pub(crate) const KNOWN_SLOTS: usize = 32;

/// Recent hashes a neighbour is known to have: a two-way set-associative table of 64-bit keys
/// stored inline in the connection (16 sets of 2, each set within one cache line).
///
/// A third key landing in a full set evicts that set's older key, so the filter can forget
/// (which costs one redundant announcement, or picks another neighbour to re-fetch from) but
/// claims a key only if 63 bits of it match one inserted, unlike a Bloom filter, whose false
/// positives would silently withhold announcements. An exact window would need a scan per
/// query; this needs one cache line.
#[derive(Debug)]
pub(crate) struct KnownSet {
    /// Keys with the lowest bit forced to 1, so 0 marks an empty slot.
    slots: [u64; KNOWN_SLOTS],
}

impl Default for KnownSet {
    fn default() -> Self {
        KnownSet {
            slots: [0; KNOWN_SLOTS],
        }
    }
}

impl KnownSet {
    pub(crate) fn contains(&self, h: &Hash32) -> bool {
        self.contains_key(h.key_u64())
    }

    pub(crate) fn insert(&mut self, h: &Hash32) {
        self.insert_key(h.key_u64());
    }

    pub(crate) fn contains_key(&self, key: u64) -> bool {
        two_way_contains(&self.slots, key)
    }

    pub(crate) fn insert_key(&mut self, key: u64) {
        two_way_insert(&mut self.slots, key);
    }
}

/// Index of the first slot of the key's set in a two-way table of `len` slots; slot
/// `set + 1` is the set's older entry.
fn two_way_set(len: usize, key: u64) -> usize {
    ((key >> 1) as usize % (len / 2)) * 2
}

fn two_way_contains(slots: &[u64], key: u64) -> bool {
    let (i, k) = (two_way_set(slots.len(), key), key | 1);
    (slots[i] == k) | (slots[i + 1] == k)
}

/// Inserts `key`, evicting its set's older entry when the set is full; false if it was there.
fn two_way_insert(slots: &mut [u64], key: u64) -> bool {
    let (i, k) = (two_way_set(slots.len(), key), key | 1);
    if slots[i] == k || slots[i + 1] == k {
        return false;
    }
    slots[i + 1] = slots[i];
    slots[i] = k;
    true
}

/// Most item ids a [`KnownItems`] remembers per neighbour: a block of up to this many items
/// that went between us and the neighbour goes to it as short ids alone.
pub(crate) const KNOWN_ITEMS_MAX: usize = 4096;

/// Pending items a neighbour is known to hold (it sent them, or we did), kept apart from the
/// block hashes of [`KnownSet`] so a burst of items cannot make us forget which blocks a
/// neighbour has. Compact relay sends these as short ids and prefills the rest.
///
/// Nothing is forgotten until [`KNOWN_ITEMS_MAX`] ids are held (then the oldest goes),
/// unlike [`KnownSet`]: an item forgotten costs its whole bytes in the next compact block,
/// not one redundant announcement. Ids are kept as 64-bit keys, so two ids sharing a key
/// (chance, or ground by a peer for its own items) count as one: the worst outcome is a short
/// id the neighbour cannot resolve, which costs one `get_block_items` round trip. A
/// neighbour that never gossips items costs nothing.
#[derive(Debug, Default)]
pub(crate) struct KnownItems {
    ids: BTreeSet<u64>,
    /// `ids` in insertion order, for eviction.
    order: VecDeque<u64>,
}

impl KnownItems {
    pub(crate) fn contains(&self, h: &Hash32) -> bool {
        self.ids.contains(&h.key_u64())
    }

    pub(crate) fn insert(&mut self, h: &Hash32) {
        let key = h.key_u64();
        if !self.ids.insert(key) {
            return;
        }
        if self.order.len() == KNOWN_ITEMS_MAX {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.order.push_back(key);
    }

    /// Approximate heap bytes held (for memory accounting).
    pub(crate) fn bytes(&self) -> usize {
        // A B-tree key costs about 1.5 slots with its node's slack.
        self.ids.len() * 12 + self.order.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_items_are_exact_and_bounded() {
        let h = |n: u32| crate::types::sha256(&n.to_le_bytes());
        let mut k = KnownItems::default();
        assert!(!k.contains(&h(1)));
        assert_eq!(k.bytes(), 0, "nothing allocated before the first item");
        for n in 0..KNOWN_ITEMS_MAX as u32 {
            k.insert(&h(n));
            k.insert(&h(n)); // twice: counted once
        }
        assert!(
            (0..KNOWN_ITEMS_MAX as u32).all(|n| k.contains(&h(n))),
            "exact"
        );
        assert!(!k.contains(&h(KNOWN_ITEMS_MAX as u32)));
        for n in 0..100_000 {
            k.insert(&h(n));
        }
        assert_eq!(k.order.len(), KNOWN_ITEMS_MAX, "bounded");
        assert_eq!(k.ids.len(), KNOWN_ITEMS_MAX);
        let lo = 100_000 - KNOWN_ITEMS_MAX as u32;
        assert!(
            (lo..100_000).all(|n| k.contains(&h(n))),
            "the newest are kept"
        );
        assert!(!k.contains(&h(lo - 1)), "the oldest went first");
    }

    #[test]
    fn requested_behaves_like_a_map() {
        let h = |n: u8| Hash32([n; 32]);
        let mut r = Requested::default();
        let mut reference = std::collections::BTreeMap::new();
        // Past the inline capacity and back, with replacements and misses.
        let ops = [(5, 1), (1, 2), (9, 3), (5, 4), (3, 5), (7, 6), (2, 7)];
        for (n, p) in ops {
            r.insert(h(n), ConnId(p));
            reference.insert(h(n), ConnId(p));
        }
        for n in [5, 4, 1, 9, 9, 3] {
            r.remove(&h(n));
            reference.remove(&h(n));
        }
        for n in 0..12 {
            assert_eq!(r.get(&h(n)), reference.get(&h(n)), "hash {n}");
            assert_eq!(r.contains_key(&h(n)), reference.contains_key(&h(n)));
        }
        let keys: Vec<_> = r.entries.iter().map(|e| e.0).collect();
        assert_eq!(keys, reference.keys().copied().collect::<Vec<_>>());
        assert!(!r.entries.spilled(), "back inline once small again");
    }

    #[test]
    fn table_grows_by_a_quarter_and_requested_goes_back_inline_at_its_inline_size() {
        // Hundreds of thousands of tables in a simulation: growth is a quarter of the length
        // (at least 2), not a doubling.
        let mut t = ConnTable::default();
        let mut id = 0;
        while t.len() < 40 || t.len() < t.vals.capacity() {
            t.insert(ConnId(id), id);
            id += 1;
        }
        let cap = t.vals.capacity();
        t.insert(ConnId(1_000), 0);
        assert_eq!(t.vals.capacity(), cap + cap / 4, "from {cap}");
        let mut t = ConnTable::default();
        t.insert(ConnId(1), 1u8);
        assert_eq!(t.vals.capacity(), 2, "at least 2 from empty");

        // Requested spills past 2 entries and shrinks back as soon as 2 are left, not 1.
        let h = |n: u8| Hash32([n; 32]);
        let mut r = Requested::default();
        for n in 0..3 {
            r.insert(h(n), ConnId(1));
        }
        assert!(r.entries.spilled());
        r.remove(&h(0));
        assert!(!r.entries.spilled(), "two entries fit inline");
        // Replacing an entry changes its holder, not its place.
        r.insert(h(2), ConnId(7));
        assert_eq!(r.get(&h(2)), Some(&ConnId(7)));
        assert_eq!(r.entries.len(), 2);
    }

    #[test]
    fn table_keeps_id_order_and_replaces() {
        let mut t = ConnTable::default();
        for id in [5u64, 1, 9, 3] {
            assert!(t.insert(ConnId(id), id * 10).is_none());
        }
        assert_eq!(t.insert(ConnId(9), 91), Some(90));
        let ids: Vec<u64> = t.keys().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 3, 5, 9]);
        assert_eq!(t.get(&ConnId(9)), Some(&91));
        assert_eq!(t.remove(&ConnId(3)), Some(30));
        assert!(!t.contains_key(&ConnId(3)));
        assert_eq!(t.len(), 3);
        *t.get_mut(&ConnId(1)).unwrap() += 1;
        let vals: Vec<u64> = t.values().copied().collect();
        assert_eq!(vals, vec![11, 50, 91]);
    }

    #[test]
    fn known_set_keeps_one_key_per_set_for_every_set_and_odd_keys_too() {
        let mut k = KnownSet::default();
        // One key for each of the 16 sets (the set is bits 1..5 of the key), all odd: all kept.
        let keys: Vec<u64> = (0..KNOWN_SLOTS as u64 / 2).map(|s| (s << 1) | 1).collect();
        for &key in &keys {
            k.insert_key(key);
        }
        for &key in &keys {
            assert!(k.contains_key(key), "key {key}");
        }
        assert!(!k.contains_key(keys[3] + 64), "same set, other key");
    }

    #[test]
    fn known_set_forgets_but_never_invents() {
        let mut k = KnownSet::default();
        assert!(!k.contains_key(0));
        assert!(!k.contains_key(42));
        k.insert_key(0);
        assert!(k.contains_key(0));
        // Slots store 63 bits; the lowest bit only marks the slot as taken. Three keys of one
        // set: the third evicts the oldest, and re-inserting a present key changes nothing.
        let sets = KNOWN_SLOTS as u64 / 2;
        let (a, b, c) = (2u64 << 1, (2 + sets) << 1, (2 + 2 * sets) << 1);
        k.insert_key(a);
        k.insert_key(b);
        k.insert_key(a);
        assert!(k.contains_key(a) && k.contains_key(b));
        k.insert_key(c);
        assert!(k.contains_key(b) && k.contains_key(c));
        assert!(!k.contains_key(a), "the set's oldest key is evicted");
    }
}
