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
