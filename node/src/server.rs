//! Starting and stopping a node: [`spawn`] opens the store, builds the core peer from
//! [`NodeOptions`], starts the driver task on an already-bound listener and returns a
//! [`NodeHandle`]; [`run`] does the same and stops the node when a future completes.

use crate::api::NodeClient;
use crate::clock::Clock;
use crate::driver::Driver;
use crate::metrics::Metrics;
use crate::options::NodeOptions;
use crate::store::{self, StoreError, StoreHandle};
use rantai_core::Peer;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// API requests queued for the driver before callers wait.
const API_QUEUE: usize = 1024;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A running node: its client, its address, and the way to stop it.
pub struct NodeHandle {
    client: NodeClient,
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl NodeHandle {
    /// Handle for requests (status, blocks, submit) to this node.
    pub fn client(&self) -> &NodeClient {
        &self.client
    }

    /// The address the node accepts connections on (closed if it accepts none:
    /// [`NodeOptions::accept_inbound`]).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the node: closes connections, flushes the store, and waits for the driver.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the driver task ends (after a shutdown).
    pub async fn join(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs a node on an already-bound listener until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    opts: NodeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let handle = spawn(listener, opts).await?;
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}

/// Opens the store, starts the driver and the accept loop, and returns at once.
pub async fn spawn(listener: TcpListener, opts: NodeOptions) -> Result<NodeHandle, NodeError> {
    let local_addr = listener.local_addr()?;
    let clock = Clock::start();
    let metrics = Arc::new(Metrics::default());
    let body_cache = opts.data_dir.as_ref().map(|_| opts.body_cache_blocks);
    let (store, loaded) = match &opts.data_dir {
        Some(dir) => {
            let (store, loaded) = open_store(dir, &opts, &metrics, clock, body_cache).await?;
            (Some(store), Some(loaded))
        }
        None => {
            tracing::info!("no --data-dir: chain in memory (lost at exit)");
            (None, None)
        }
    };
    let advertise = opts.accept_inbound.then(|| {
        opts.advertise
            .clone()
            .or_else(|| (!local_addr.ip().is_unspecified()).then(|| local_addr.to_string()))
    });
    let advertise = advertise.flatten();
    let mut config = opts.config.clone();
    config.listen_addr = advertise.clone();
    config.body_cache_blocks = body_cache;
    let seed: u64 = rand::random();
    let peer = match loaded {
        Some(l) => {
            let mut peer = Peer::with_chain(config, seed, l.chain);
            let n = l.pending.len();
            if n > 0 {
                let back = peer.restore_items(clock.now(), l.pending);
                tracing::info!("{back} of {n} stored pending items go back to be mined");
                if back < n {
                    tracing::warn!(
                        "{} stored pending items exceed the pending pool's limits; they stay \
                         stored and go back at a later start",
                        n - back
                    );
                }
            }
            peer
        }
        None => Peer::new(config, seed),
    };
    let params = &peer.config().params;
    tracing::info!(
        "node {:016x} on network {} at height {}, mining at {} bits",
        peer.node_id(),
        params.network,
        peer.chain().height(),
        peer.config().mine_difficulty.max(params.min_difficulty)
    );

    let (api_tx, api_rx) = mpsc::channel(API_QUEUE);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let client = NodeClient {
        tx: api_tx,
        metrics: metrics.clone(),
        store: store.as_ref().map(StoreHandle::loader),
    };
    // Without inbound connections the listener closes here: a dial to it is refused.
    let listener = opts.accept_inbound.then_some(listener);
    let (driver, inbox) = Driver::new(peer, clock, store, metrics, advertise, opts);
    let task = tokio::spawn(driver.run(inbox, listener, api_rx, shutdown_rx));
    Ok(NodeHandle {
        client,
        local_addr,
        shutdown: Some(shutdown_tx),
        task,
    })
}

/// Opens the store in `dir` on a blocking thread and replays its chain and pending items.
async fn open_store(
    dir: &std::path::Path,
    opts: &NodeOptions,
    metrics: &Arc<Metrics>,
    clock: Clock,
    body_cache: Option<u64>,
) -> Result<(StoreHandle, store::Loaded), NodeError> {
    let path = dir.display().to_string();
    let dir = dir.to_path_buf();
    let params = opts.config.params.clone();
    let m = metrics.clone();
    let now = clock.now();
    let (store, loaded) =
        tokio::task::spawn_blocking(move || store::open(&dir, &params, m, now, body_cache))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
    tracing::info!(
        "chain loaded from {path}: {} blocks, height {}, tip {}",
        loaded.blocks,
        loaded.chain.height(),
        loaded.chain.tip().hash().short()
    );
    Ok((store, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::time::{Duration, Instant};

    /// Protocol time is tokio's: ten seconds of a silent peer's handshake timeout pass at once
    /// on paused time, and the node closes the connection.
    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_dropped_at_the_handshake_timeout_without_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let node = spawn(listener, NodeOptions::default())
            .await
            .expect("node starts");
        let timeout = Duration::from_millis(node_handshake_timeout());
        let real_start = std::time::Instant::now();
        let start = Instant::now();
        let mut silent = tokio::net::TcpStream::connect(node.local_addr())
            .await
            .expect("connect");
        let mut buf = [0u8; 4096];
        // The node's hello arrives, then the end of the stream when the timeout fires.
        loop {
            match tokio::time::timeout(timeout * 2, silent.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the node kept a silent peer for {:?}", timeout * 2),
            }
        }
        assert!(
            start.elapsed() >= timeout,
            "closed after {:?}",
            start.elapsed()
        );
        assert!(real_start.elapsed() < Duration::from_secs(5));
        let status = node.client().status().await.expect("alive");
        assert!(status.peers.is_empty());
        node.shutdown().await;
    }

    fn node_handshake_timeout() -> u64 {
        NodeOptions::default().config.handshake_timeout.0
    }
}
