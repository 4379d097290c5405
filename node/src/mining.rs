//! The local miner: runs the proof-of-work search for the core's [`Template`] on a blocking
//! thread and hands the block back to the driver over a bounded channel.
//!
//! At most one search runs at a time. Each search is a numbered job; starting a new one or
//! stopping cancels the old one through its flag, and a block from any job but the current one
//! is dropped, so a block found for a stale template never reaches the core.

use rantai_core::pow::Miner;
use rantai_core::{Block, BlockHash, Template};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A found block and the job it was mined for.
pub(crate) type Mined = (u64, Block);

/// Found blocks not yet taken by the driver.
const MINED_QUEUE: usize = 8;

/// The driver's side of the miner.
pub(crate) struct Mining {
    tx: mpsc::Sender<Mined>,
    last_job: u64,
    current: Option<(u64, Arc<AtomicBool>)>,
    /// The last block mined here, so its acceptance is logged as the local miner's.
    own_mined: Option<BlockHash>,
}

impl Mining {
    /// A miner and the receiver on which its blocks arrive.
    pub(crate) fn new() -> (Mining, mpsc::Receiver<Mined>) {
        let (tx, rx) = mpsc::channel(MINED_QUEUE);
        let mining = Mining {
            tx,
            last_job: 0,
            current: None,
            own_mined: None,
        };
        (mining, rx)
    }

    /// Cancels any running search and starts one for `t`.
    pub(crate) fn start(&mut self, t: Template) {
        self.stop();
        self.last_job += 1;
        let job = self.last_job;
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let tx = self.tx.clone();
        tracing::debug!(
            "mining block {} with {} items at {} bits",
            t.header.height,
            t.items.len(),
            t.header.difficulty
        );
        tokio::task::spawn_blocking(move || {
            let miner = Miner::new(&t.header);
            if let Some(nonce) = miner.search(0..u64::MAX, &flag) {
                let _ = tx.blocking_send((job, t.into_block(nonce)));
            }
        });
        self.current = Some((job, cancel));
    }

    /// Cancels the running search, if any.
    pub(crate) fn stop(&mut self) {
        if let Some((_, cancel)) = self.current.take() {
            cancel.store(true, Ordering::Relaxed);
        }
    }

    /// The block of a finished search if it is the current job's (then recorded as mined
    /// here); `None` for a block of a cancelled job.
    pub(crate) fn finished(&mut self, (job, block): Mined) -> Option<Block> {
        if self.current.as_ref().map(|(j, _)| *j) != Some(job) {
            return None;
        }
        self.current = None;
        self.own_mined = Some(block.hash());
        Some(block)
    }

    /// Whether `hash` is the last block mined here.
    pub(crate) fn is_own(&self, hash: BlockHash) -> bool {
        self.own_mined == Some(hash)
    }
}
