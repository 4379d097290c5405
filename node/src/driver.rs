//! The driver: one task owns the core [`Peer`] and moves frames, time, local input and mining
//! results into it, then executes every output. No protocol decision is made here.
//!
//! Loop: drain `poll()`, compute the wake-up from `poll_timeout()` and the dial schedule, then
//! `select!` over connection events, API requests, mining results, the deadline and shutdown.

use crate::api::{NodeClient, PeerStatus, Request, Status};
use crate::conn::{self, ConnEvent};
use crate::dialer::Dialer;
use crate::listener::Acceptor;
use crate::metrics::{Gauges, Metrics};
use crate::store::{self, LoadedBlocks, StoreEntry, StoreError, StoreHandle};
use rantai_core::pow::Miner;
use rantai_core::{
    Block, BlockHash, Config, Direction, DisconnectReason, Event, Input, LoadPurpose, Message,
    Millis, Output, Params, Peer, PeerId, RelayPolicy, Template,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// Everything that configures one node. [`NodeOptions::default`] is the real node's setup.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub params: Params,
    /// Difficulty (leading zero bits) of blocks mined here; raised to the network minimum.
    pub pow_bits: u32,
    /// Peers to dial and keep dialling.
    pub peers: Vec<String>,
    /// Most inbound connections (the oldest one still handshaking is evicted for a newcomer).
    pub max_peers: usize,
    /// Most outbound connections to learned addresses (configured peers are always dialled).
    pub max_outbound: usize,
    pub data_dir: Option<PathBuf>,
    /// Address advertised to peers; `None` advertises the listener's address unless it is a
    /// wildcard address.
    pub advertise: Option<String>,
    pub relay: RelayPolicy,
    pub handshake_timeout: Duration,
    /// Keepalive period. Pings carry each side's tip, which is how the core learns that a
    /// neighbour sits on an equal-work rival tip and settles the tie, so keep it short.
    pub ping_interval: Option<Duration>,
    pub pong_timeout: Duration,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// A write to a peer blocked this long closes the connection.
    pub write_timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Messages queued per connection before the peer counts as too slow and is dropped.
    pub send_queue: usize,
    /// With a data directory, block bodies stay in memory only for blocks less than this many
    /// heights below the tip; older ones are read from the store when a peer or the API asks.
    /// Without a data directory every body stays in memory (there is nowhere else to keep it).
    pub body_cache_blocks: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            params: Params::main(),
            pow_bits: 16,
            peers: Vec::new(),
            max_peers: 64,
            max_outbound: 8,
            data_dir: None,
            advertise: None,
            relay: RelayPolicy::Push,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(5)),
            pong_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(20),
            retry_base: Duration::from_millis(250),
            retry_max: Duration::from_secs(30),
            send_queue: 4096,
            body_cache_blocks: 64,
        }
    }
}

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

    /// The address the node accepts connections on.
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
    let metrics = Arc::new(Metrics::default());
    let params = Arc::new(opts.params.clone());
    let now = unix_now();
    let body_cache = opts.data_dir.as_ref().map(|_| opts.body_cache_blocks);
    let (store, chain) = match &opts.data_dir {
        Some(dir) => {
            let dir = dir.clone();
            let p = params.clone();
            let m = metrics.clone();
            let (store, loaded) =
                tokio::task::spawn_blocking(move || store::open(&dir, &p, m, now, body_cache))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??;
            let path = opts
                .data_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            tracing::info!(
                "chain loaded from {path}: {} blocks, height {}, tip {}",
                loaded.blocks,
                loaded.chain.height(),
                loaded.chain.tip().hash().short()
            );
            (Some(store), Some(loaded.chain))
        }
        None => {
            tracing::info!("no --data-dir: chain in memory (lost at exit)");
            (None, None)
        }
    };
    let advertise = opts
        .advertise
        .clone()
        .or_else(|| (!local_addr.ip().is_unspecified()).then(|| local_addr.to_string()));
    let mut config = Config::new(opts.params.clone());
    config.auto_mine = true;
    config.relay = opts.relay;
    config.mine_difficulty = opts.pow_bits;
    config.listen_addr = advertise.clone();
    config.handshake_timeout = ms(opts.handshake_timeout);
    config.ping_interval = opts.ping_interval.map(ms);
    config.pong_timeout = ms(opts.pong_timeout);
    config.request_timeout = ms(opts.request_timeout);
    config.body_cache_blocks = body_cache;
    let seed: u64 = rand::random();
    let peer = match chain {
        Some(c) => Peer::with_chain(config, seed, c),
        None => Peer::new(config, seed),
    };
    tracing::info!(
        "node {:016x} on network {} at height {}, mining at {} bits",
        peer.node_id(),
        opts.params.network,
        peer.chain().height(),
        opts.pow_bits.max(opts.params.min_difficulty)
    );

    let (events_tx, events_rx) = mpsc::channel(4096);
    let (accept_tx, accept_rx) = mpsc::channel(64);
    let (dial_tx, dial_rx) = mpsc::channel(64);
    let (mined_tx, mined_rx) = mpsc::channel(8);
    let (api_tx, api_rx) = mpsc::channel(1024);
    let (loaded_tx, loaded_rx) = mpsc::channel(MAX_LOADS_IN_FLIGHT);
    let store_loader = store.as_ref().map(StoreHandle::loader);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let accept_task = tokio::spawn(accept_loop(listener, accept_tx));
    let now_i = Instant::now();
    let mut dialer = Dialer::new(opts.retry_base, opts.retry_max);
    for p in &opts.peers {
        dialer.add(p, true, now_i);
    }
    let driver = Driver {
        peer,
        conns: HashMap::new(),
        next_id: 1,
        events_tx,
        dial_tx,
        mined_tx,
        dialer,
        store,
        store_batch: Vec::new(),
        loads_waiting: VecDeque::new(),
        loads_in_flight: 0,
        loaded_tx,
        metrics: metrics.clone(),
        mining: None,
        job: 0,
        own_mined: None,
        started: Instant::now(),
        advertise,
        last_timeout_call: None,
        opts,
    };
    let task = tokio::spawn(driver.run(
        events_rx,
        accept_rx,
        dial_rx,
        mined_rx,
        api_rx,
        loaded_rx,
        shutdown_rx,
        accept_task,
    ));
    Ok(NodeHandle {
        client: NodeClient {
            tx: api_tx,
            metrics,
            store: store_loader,
        },
        local_addr,
        shutdown: Some(shutdown_tx),
        task,
    })
}

/// Wall-clock milliseconds since the Unix epoch: the `now` of the core.
pub fn unix_now() -> Millis {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(d.as_millis() as u64)
}

fn ms(d: Duration) -> Millis {
    Millis(d.as_millis() as u64)
}

/// The log line of an accepted block (written once the block is durable, with a data dir).
pub fn log_accepted(block: &Block, from: &str) {
    tracing::info!(
        "accepted block {} {}… from {}",
        block.height(),
        block.hash().short(),
        from
    );
}

/// Accepts connections and hands them to the driver; accept errors back off
/// ([`crate::listener`]), so running out of file descriptors pauses accepting, never ends it.
async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<(TcpStream, SocketAddr)>) {
    let mut acceptor = Acceptor::new(listener, "peer");
    loop {
        let conn = acceptor.accept().await;
        if tx.send(conn).await.is_err() {
            return;
        }
    }
}

struct Conn {
    tx: mpsc::Sender<Message>,
    label: String,
    direction: Direction,
    /// The dial target this outbound connection serves.
    target: Option<String>,
    /// The address the remote advertised in its handshake.
    listen: Option<String>,
    ready: bool,
    /// Highest block received from this peer (its claimed tip is only refreshed by pings).
    best_seen: u64,
    tasks: [AbortHandle; 2],
}

struct Driver {
    peer: Peer,
    conns: HashMap<PeerId, Conn>,
    next_id: u64,
    events_tx: mpsc::Sender<ConnEvent>,
    dial_tx: mpsc::Sender<(String, std::io::Result<TcpStream>)>,
    mined_tx: mpsc::Sender<(u64, Block)>,
    dialer: Dialer,
    store: Option<StoreHandle>,
    store_batch: Vec<StoreEntry>,
    /// Reads of evicted bodies the peer asked for, not yet sent to the store thread.
    loads_waiting: VecDeque<(Vec<BlockHash>, LoadPurpose)>,
    /// Reads sent to the store thread and not yet answered (at most [`MAX_LOADS_IN_FLIGHT`],
    /// so the store thread's answers always fit in `loaded_tx` and it never waits on us).
    loads_in_flight: usize,
    loaded_tx: mpsc::Sender<(LoadPurpose, LoadedBlocks)>,
    metrics: Arc<Metrics>,
    mining: Option<(u64, Arc<AtomicBool>)>,
    job: u64,
    own_mined: Option<BlockHash>,
    started: Instant,
    advertise: Option<String>,
    last_timeout_call: Option<Instant>,
    opts: NodeOptions,
}

type DialResult = (String, std::io::Result<TcpStream>);

/// Store reads of evicted bodies outstanding at once.
const MAX_LOADS_IN_FLIGHT: usize = 16;
/// Reads to serve peers' `get_blocks` that may wait for the store; beyond that a request for
/// evicted blocks is answered `not_found` (the asker fetches them elsewhere or later).
const MAX_SERVE_LOADS_WAITING: usize = 64;

impl Driver {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        mut self,
        mut events: mpsc::Receiver<ConnEvent>,
        mut accepts: mpsc::Receiver<(TcpStream, SocketAddr)>,
        mut dials: mpsc::Receiver<DialResult>,
        mut mined: mpsc::Receiver<(u64, Block)>,
        mut api: mpsc::Receiver<Request>,
        mut loaded: mpsc::Receiver<(LoadPurpose, LoadedBlocks)>,
        mut shutdown: oneshot::Receiver<()>,
        accept_task: JoinHandle<()>,
    ) {
        self.dial_due();
        loop {
            self.drain();
            if !self.store_batch.is_empty() {
                if let Some(store) = &self.store {
                    store.append(std::mem::take(&mut self.store_batch)).await;
                }
            }
            self.send_loads().await;
            let wake = self.next_wake();
            tokio::select! {
                Some(ev) = events.recv() => {
                    self.on_conn_event(ev);
                    // Take what else is already queued before flushing to the store.
                    for _ in 0..256 {
                        match events.try_recv() {
                            Ok(ev) => { self.on_conn_event(ev); self.drain(); }
                            Err(_) => break,
                        }
                    }
                }
                Some((stream, addr)) = accepts.recv() => self.on_accept(stream, addr),
                Some((target, res)) = dials.recv() => self.on_dialed(target, res),
                Some((job, block)) = mined.recv() => self.on_mined(job, block),
                Some(req) = api.recv() => self.on_request(req),
                Some((purpose, found)) = loaded.recv() => {
                    self.loads_in_flight -= 1;
                    self.peer.handle(unix_now(), Input::BlocksLoaded {
                        purpose,
                        blocks: found.blocks,
                        missing: found.missing,
                    });
                }
                _ = tokio::time::sleep_until(wake) => {
                    self.last_timeout_call = Some(Instant::now());
                    self.peer.handle_timeout(unix_now());
                    self.dial_due();
                }
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down");
        accept_task.abort();
        self.stop_mining();
        for (_, c) in self.conns.drain() {
            for t in &c.tasks {
                t.abort();
            }
        }
        self.drain_outputs_only();
        if let Some(store) = self.store.take() {
            if !self.store_batch.is_empty() {
                store.append(std::mem::take(&mut self.store_batch)).await;
            }
            store.close().await;
            tracing::info!("store flushed and closed");
        }
    }

    /// Hands waiting reads of evicted bodies to the store thread, up to the in-flight bound.
    async fn send_loads(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        while self.loads_in_flight < MAX_LOADS_IN_FLIGHT {
            let Some((hashes, purpose)) = self.loads_waiting.pop_front() else {
                return;
            };
            self.loads_in_flight += 1;
            let tx = self.loaded_tx.clone();
            // Capacity MAX_LOADS_IN_FLIGHT: this never finds the channel full.
            let reply = Box::new(move |found| {
                let _ = tx.try_send((purpose, found));
            });
            store.load(hashes, reply).await;
        }
    }

    /// Queues a read of evicted bodies. Only a peer with a body cache asks, and it has one only
    /// with a store; reads for serving beyond the bound are answered as not found at once.
    fn on_load(&mut self, hashes: Vec<BlockHash>, purpose: LoadPurpose) {
        let waiting_serves = self
            .loads_waiting
            .iter()
            .filter(|(_, p)| matches!(p, LoadPurpose::Serve(_)))
            .count();
        let refuse = self.store.is_none()
            || (matches!(purpose, LoadPurpose::Serve(_))
                && waiting_serves >= MAX_SERVE_LOADS_WAITING);
        if refuse {
            if self.store.is_none() {
                tracing::error!("evicted blocks asked for without a store");
            }
            self.peer.handle(
                unix_now(),
                Input::BlocksLoaded {
                    purpose,
                    blocks: Vec::new(),
                    missing: hashes,
                },
            );
            return;
        }
        self.loads_waiting.push_back((hashes, purpose));
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let now_ms = unix_now();
        let mut wake = now + Duration::from_secs(1);
        if let Some(t) = self.peer.poll_timeout() {
            wake = wake.min(now + Duration::from_millis(t.0.saturating_sub(now_ms.0)));
        }
        if let Some(t) = self.dialer.next_due() {
            wake = wake.min(t);
        }
        // A deadline that stays in the past must not turn the loop into a spin.
        if let Some(last) = self.last_timeout_call {
            wake = wake.max(last + Duration::from_millis(1));
        }
        wake
    }

    /// Executes every pending output of the peer.
    fn drain(&mut self) {
        while let Some(out) = self.peer.poll() {
            match out {
                Output::Send { to, msg } => self.send(to, msg),
                Output::Disconnect { peer, reason } => self.on_disconnect(peer, reason),
                Output::Mine(Some(t)) => self.start_mining(t),
                Output::Mine(None) => self.stop_mining(),
                Output::LoadBlocks { hashes, purpose } => self.on_load(hashes, purpose),
                Output::Event(ev) => self.on_event(ev),
            }
        }
    }

    /// At shutdown: record accepted blocks, ignore everything else.
    fn drain_outputs_only(&mut self) {
        while let Some(out) = self.peer.poll() {
            if let Output::Event(ev @ Event::BlockAccepted { .. }) = out {
                self.on_event(ev);
            }
        }
    }

    fn send(&mut self, to: PeerId, msg: Message) {
        let Some(c) = self.conns.get(&to) else { return };
        match c.tx.try_send(msg) {
            Ok(()) => {
                self.metrics.messages_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics
                    .peers_dropped_slow
                    .fetch_add(1, Ordering::Relaxed);
                let label = c.label.clone();
                tracing::warn!(
                    "dropping {label}: its send queue of {} messages is full (peer too slow)",
                    self.opts.send_queue
                );
                self.close(to, true);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.close(to, true),
        }
    }

    /// Forgets a connection and stops its tasks; `tell_peer` feeds `Disconnected` to the core.
    fn close(&mut self, id: PeerId, tell_peer: bool) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        for t in &c.tasks {
            t.abort();
        }
        if tell_peer {
            self.peer
                .handle(unix_now(), Input::Disconnected { peer: id });
        }
        let now = Instant::now();
        if let Some(target) = &c.target {
            if c.ready {
                // It worked before: one quick retry, then the usual backoff.
                self.dialer.ready(target);
            }
            self.dialer.failed(target, now, &mut rand::thread_rng());
        }
        if let Some(listen) = &c.listen {
            self.dialer.nudge(listen, now);
        }
    }

    fn on_disconnect(&mut self, id: PeerId, reason: DisconnectReason) {
        let label = self
            .conns
            .get(&id)
            .map_or_else(|| id.to_string(), |c| c.label.clone());
        if reason.is_misbehaviour() {
            self.metrics
                .disconnects_misbehaviour
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("disconnecting {label}: {reason}");
        } else {
            tracing::info!("disconnecting {label}: {reason}");
        }
        let target = self.conns.get(&id).and_then(|c| c.target.clone());
        self.close(id, false);
        if let Some(t) = target {
            match reason {
                DisconnectReason::SelfConnection => {
                    tracing::info!("{t} is this node itself; not dialling it again");
                    self.dialer.remove(&t);
                }
                DisconnectReason::Duplicate(_) => self.dialer.covered(&t, Instant::now()),
                _ => {}
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::PeerReady {
                peer,
                node_id,
                tip,
                listen,
            } => {
                let Some(c) = self.conns.get_mut(&peer) else {
                    return;
                };
                c.ready = true;
                c.listen = listen.clone();
                let remote = c.label.clone();
                if let (Direction::Inbound, Some(l)) = (c.direction, &listen) {
                    // Logs name peers by the address they listen on, as the tutorial's did.
                    c.label = l.clone();
                }
                tracing::info!(
                    "connected to {remote} ({}, node {node_id:016x}, height {}, listens on {})",
                    match c.direction {
                        Direction::Inbound => "inbound",
                        Direction::Outbound => "outbound",
                    },
                    tip.height,
                    listen.as_deref().unwrap_or("-")
                );
                if let Some(t) = c.target.clone() {
                    self.dialer.ready(&t);
                }
            }
            Event::BlockAccepted { block, from } => {
                self.metrics.blocks_accepted.fetch_add(1, Ordering::Relaxed);
                let label = match from {
                    Some(p) => match self.conns.get_mut(&p) {
                        Some(c) => {
                            c.best_seen = c.best_seen.max(block.height());
                            c.label.clone()
                        }
                        None => p.to_string(),
                    },
                    None if self.own_mined == Some(block.hash()) => "local miner".to_string(),
                    None => "orphan pool".to_string(),
                };
                if self.store.is_some() {
                    self.store_batch.push(StoreEntry { block, from: label });
                } else {
                    log_accepted(&block, &label);
                }
            }
            Event::BlockRejected { hash, from, reason } => {
                self.metrics.blocks_rejected.fetch_add(1, Ordering::Relaxed);
                let label = from
                    .and_then(|p| self.conns.get(&p).map(|c| c.label.clone()))
                    .unwrap_or_else(|| "-".into());
                tracing::warn!("rejected block {}… from {label}: {reason}", hash.short());
            }
            Event::TipChanged { hash, height } => {
                tracing::debug!("new tip {height} {}…", hash.short());
            }
            Event::Reorg { left, joined } => {
                tracing::info!(
                    "reorg: {} blocks left the best chain, {} joined",
                    left.len(),
                    joined.len()
                );
            }
            Event::ItemsRequeued { count } => {
                tracing::info!("{count} items from abandoned blocks are pending again");
            }
            Event::AddrLearned { addr } => {
                if Some(&addr) != self.advertise.as_ref()
                    && self.dialer.add(&addr, false, Instant::now())
                {
                    tracing::debug!("learned address {addr}");
                }
            }
        }
    }

    fn on_conn_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Message { id, msg } => {
                if self.conns.contains_key(&id) {
                    self.peer
                        .handle(unix_now(), Input::Message { peer: id, msg });
                }
            }
            ConnEvent::Malformed { id, error } => {
                if self.conns.contains_key(&id) {
                    // The core decides (it disconnects); the stream is unusable either way.
                    self.peer
                        .handle(unix_now(), Input::Malformed { peer: id, error });
                    self.drain();
                    if self.conns.contains_key(&id) {
                        self.close(id, true);
                    }
                }
            }
            ConnEvent::Closed { id, why } => {
                if let Some(c) = self.conns.get(&id) {
                    tracing::info!("connection {} closed: {why}", c.label);
                    self.close(id, true);
                }
            }
        }
    }

    fn on_accept(&mut self, stream: TcpStream, addr: SocketAddr) {
        let inbound = self
            .conns
            .values()
            .filter(|c| c.direction == Direction::Inbound)
            .count();
        if inbound >= self.opts.max_peers {
            // Make room by evicting the oldest inbound connection still in its handshake: idle
            // sockets must not lock honest peers out. Without one, refuse the newcomer.
            let victim = self
                .conns
                .iter()
                .filter(|(_, c)| c.direction == Direction::Inbound && !c.ready)
                .map(|(id, _)| *id)
                .min();
            match victim {
                Some(v) => {
                    let label = self
                        .conns
                        .get(&v)
                        .map_or_else(|| v.to_string(), |c| c.label.clone());
                    tracing::info!(
                        "connection limit {} reached: evicting {label} (no handshake yet) for {addr}",
                        self.opts.max_peers
                    );
                    self.metrics
                        .connections_evicted
                        .fetch_add(1, Ordering::Relaxed);
                    self.close(v, true);
                }
                None => {
                    self.metrics
                        .connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        "connection limit {} reached: refusing {addr} (every inbound peer is past its handshake)",
                        self.opts.max_peers
                    );
                    return;
                }
            }
        }
        self.metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        self.register(stream, Direction::Inbound, addr.to_string(), None);
    }

    fn on_dialed(&mut self, target: String, res: std::io::Result<TcpStream>) {
        match res {
            Ok(stream) => {
                self.dialer.connected(&target);
                self.register(stream, Direction::Outbound, target.clone(), Some(target));
            }
            Err(e) => {
                let level_info = self.dialer.is_configured(&target);
                if level_info {
                    tracing::info!("cannot reach {target}: {e}; retrying with backoff");
                } else {
                    tracing::debug!("cannot reach learned address {target}: {e}");
                }
                self.dialer
                    .failed(&target, Instant::now(), &mut rand::thread_rng());
            }
        }
    }

    fn register(
        &mut self,
        stream: TcpStream,
        direction: Direction,
        label: String,
        target: Option<String>,
    ) {
        let _ = stream.set_nodelay(true);
        let id = PeerId(self.next_id);
        self.next_id += 1;
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.opts.send_queue);
        let r = tokio::spawn(conn::reader(
            id,
            rd,
            self.events_tx.clone(),
            self.metrics.clone(),
        ));
        let w = tokio::spawn(conn::writer(
            id,
            wr,
            rx,
            self.events_tx.clone(),
            self.metrics.clone(),
            self.opts.write_timeout,
        ));
        tracing::debug!("{label} connected ({direction:?}) as {id}");
        self.conns.insert(
            id,
            Conn {
                tx,
                label: label.clone(),
                direction,
                target,
                listen: None,
                ready: false,
                best_seen: 0,
                tasks: [r.abort_handle(), w.abort_handle()],
            },
        );
        self.peer.handle(
            unix_now(),
            Input::Connected {
                peer: id,
                direction,
                addr: Some(label),
            },
        );
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        let outbound = self
            .conns
            .values()
            .filter(|c| c.direction == Direction::Outbound)
            .count();
        let budget = self.opts.max_outbound.saturating_sub(outbound);
        for target in self.dialer.due(now, budget) {
            // A node we already reach (it dialled us) needs no second connection.
            let covered = self
                .conns
                .values()
                .any(|c| c.ready && (c.listen.as_deref() == Some(target.as_str())));
            if covered {
                self.dialer.covered(&target, now);
                continue;
            }
            let tx = self.dial_tx.clone();
            let timeout = self.opts.connect_timeout;
            tokio::spawn(async move {
                let res = match tokio::time::timeout(timeout, TcpStream::connect(target.as_str()))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connect timed out",
                    )),
                };
                let _ = tx.send((target, res)).await;
            });
        }
    }

    fn start_mining(&mut self, t: Template) {
        self.stop_mining();
        self.job += 1;
        let job = self.job;
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let tx = self.mined_tx.clone();
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
        self.mining = Some((job, cancel));
    }

    fn stop_mining(&mut self) {
        if let Some((_, cancel)) = self.mining.take() {
            cancel.store(true, Ordering::Relaxed);
        }
    }

    fn on_mined(&mut self, job: u64, block: Block) {
        if self.mining.as_ref().map(|(j, _)| *j) != Some(job) {
            return;
        }
        self.mining = None;
        self.metrics.blocks_mined.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("mined block {} {}…", block.height(), block.hash().short());
        self.own_mined = Some(block.hash());
        self.peer.handle(unix_now(), Input::Mined(block));
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Submit { text, reply } => {
                let r = self.peer.submit(unix_now(), text);
                if r.is_ok() {
                    self.metrics.items_submitted.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(r);
            }
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Request::Blocks { from, limit, reply } => {
                let chain = self.peer.chain();
                let mut bytes = 0;
                let mut blocks = Vec::new();
                for b in (from..chain.height().saturating_add(1))
                    .take(limit)
                    .filter_map(|h| chain.at_height(h))
                {
                    bytes += b.size();
                    if bytes > crate::api::MAX_PAGE_BYTES && !blocks.is_empty() {
                        break;
                    }
                    blocks.push(b.clone());
                }
                // Evicted bodies are read from the store by the client, off this task.
                let _ = reply.send((chain.height(), blocks));
            }
            Request::Block { hash, reply } => {
                let chain = self.peer.chain();
                let found = chain
                    .get(&hash)
                    .map(|b| (b.clone(), chain.in_best_chain(&hash)));
                let _ = reply.send(found);
            }
            Request::Gauges { reply } => {
                let chain = self.peer.chain();
                let _ = reply.send(Gauges {
                    height: chain.height(),
                    peers: self.conns.len(),
                    peers_ready: self.conns.values().filter(|c| c.ready).count(),
                    pending_items: self.peer.pending_len(),
                    blocks_in_tree: chain.tree_len(),
                    orphans: chain.orphan_count(),
                });
            }
            Request::BestChain { reply } => {
                let _ = reply.send(self.peer.chain().best_chain().cloned().collect());
            }
        }
    }

    fn status(&self) -> Status {
        let chain = self.peer.chain();
        let peers = self
            .peer
            .peers()
            .into_iter()
            .map(|p| PeerStatus {
                best_height: {
                    let seen = self.conns.get(&p.peer).map_or(0, |c| c.best_seen);
                    p.tip.map(|t| t.height.max(seen))
                },
                id: p.peer.0,
                addr: p.addr,
                direction: p.direction,
                ready: p.ready,
                node_id: p.node_id.map(|n| format!("{n:016x}")),
                listen: p.listen,
                best_hash: p.tip.map(|t| t.hash.to_string()),
            })
            .collect();
        Status {
            node_id: format!("{:016x}", self.peer.node_id()),
            network: self.opts.params.network.clone(),
            listen: self.advertise.clone(),
            height: chain.height(),
            tip: chain.tip().hash().to_string(),
            persistent: self.store.is_some(),
            stored_blocks: self
                .store
                .as_ref()
                .map(|_| self.metrics.blocks_stored.load(Ordering::Relaxed)),
            pending_items: self.peer.pending_len(),
            uptime_secs: self.started.elapsed().as_secs(),
            peers,
        }
    }
}
