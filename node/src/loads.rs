//! Reads of evicted block bodies that the core asked for ([`rantai_core::Output::LoadBlocks`]),
//! on their way to the store thread and back.
//!
//! Bounds: at most [`MAX_LOADS_IN_FLIGHT`] reads are at the store thread at once, and the
//! answer channel holds that many, so the store thread never waits on the driver; at most
//! [`MAX_SERVE_LOADS_WAITING`] reads for serving peers wait behind them, and a further one is
//! refused (the core answers the asker `not_found`). Reads to requeue items are never refused:
//! the core asks for them only on a reorg or at start, and losing them would lose items.

use crate::store::{LoadedBlocks, StoreHandle};
use rantai_core::{BlockHash, LoadPurpose};
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// Store reads of evicted bodies outstanding at once.
pub(crate) const MAX_LOADS_IN_FLIGHT: usize = 16;
/// Reads to serve peers' `get_blocks` that may wait for the store; beyond that a request for
/// evicted blocks is answered `not_found` (the asker fetches them elsewhere or later).
pub(crate) const MAX_SERVE_LOADS_WAITING: usize = 64;

/// An answered read.
pub(crate) type Loaded = (LoadPurpose, LoadedBlocks);

/// Reads waiting for the store thread and reads it has not answered yet.
pub(crate) struct Loads {
    waiting: VecDeque<(Vec<BlockHash>, LoadPurpose)>,
    in_flight: usize,
    tx: mpsc::Sender<Loaded>,
}

impl Loads {
    /// An empty queue and the receiver of its answers.
    pub(crate) fn new() -> (Loads, mpsc::Receiver<Loaded>) {
        let (tx, rx) = mpsc::channel(MAX_LOADS_IN_FLIGHT);
        let loads = Loads {
            waiting: VecDeque::new(),
            in_flight: 0,
            tx,
        };
        (loads, rx)
    }

    /// Queues a read; a read to serve a peer beyond [`MAX_SERVE_LOADS_WAITING`] is refused
    /// and its hashes handed back.
    pub(crate) fn queue(
        &mut self,
        hashes: Vec<BlockHash>,
        purpose: LoadPurpose,
    ) -> Result<(), Vec<BlockHash>> {
        if matches!(purpose, LoadPurpose::Serve(_)) {
            let waiting_serves = self
                .waiting
                .iter()
                .filter(|(_, p)| matches!(p, LoadPurpose::Serve(_)))
                .count();
            if waiting_serves >= MAX_SERVE_LOADS_WAITING {
                return Err(hashes);
            }
        }
        self.waiting.push_back((hashes, purpose));
        Ok(())
    }

    /// Hands waiting reads to the store thread, up to the in-flight bound.
    pub(crate) async fn send(&mut self, store: &StoreHandle) {
        while self.in_flight < MAX_LOADS_IN_FLIGHT {
            let Some((hashes, purpose)) = self.waiting.pop_front() else {
                return;
            };
            self.in_flight += 1;
            let tx = self.tx.clone();
            // The channel holds MAX_LOADS_IN_FLIGHT answers: this never finds it full.
            let reply = Box::new(move |found| {
                let _ = tx.try_send((purpose, found));
            });
            store.load(hashes, reply).await;
        }
    }

    /// Counts an answer taken from the receiver.
    pub(crate) fn answered(&mut self) {
        self.in_flight -= 1;
    }
}
