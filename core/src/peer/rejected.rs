//! Recently rejected block hashes, so catch-up and announcements never fetch them in a loop.

use super::config::MAX_REJECTED;
use crate::types::BlockHash;
use std::collections::{BTreeSet, VecDeque};

/// The last [`MAX_REJECTED`] rejected hashes; the oldest is forgotten first.
#[derive(Debug, Default)]
pub(super) struct Rejected {
    set: BTreeSet<BlockHash>,
    /// The same hashes, oldest first.
    order: VecDeque<BlockHash>,
}

impl Rejected {
    /// Whether `hash` was rejected recently.
    #[inline]
    pub(super) fn contains(&self, hash: &BlockHash) -> bool {
        self.set.contains(hash)
    }

    /// Remembers `hash`, forgetting the oldest beyond the limit.
    pub(super) fn insert(&mut self, hash: BlockHash) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > MAX_REJECTED {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Hash32;

    fn h(i: usize) -> BlockHash {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        Hash32(b)
    }

    #[test]
    fn remembers_the_last_max_rejected_hashes_and_forgets_the_oldest_first() {
        let mut r = Rejected::default();
        assert!(!r.contains(&h(0)));
        for i in 0..MAX_REJECTED {
            r.insert(h(i));
        }
        // A repeat is not a new entry: it pushes nothing out.
        r.insert(h(0));
        assert!((0..MAX_REJECTED).all(|i| r.contains(&h(i))));
        r.insert(h(MAX_REJECTED));
        assert!(!r.contains(&h(0)), "the oldest goes first");
        assert!((1..=MAX_REJECTED).all(|i| r.contains(&h(i))));
        assert_eq!((r.set.len(), r.order.len()), (MAX_REJECTED, MAX_REJECTED));
    }
}
