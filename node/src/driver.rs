//! The driver: one task owns the core [`Peer`] and moves frames, time, local input and mining
//! results into it, then executes every output. No protocol decision is made here.
//!
//! Loop: drain `poll()`, hand accepted blocks to the store, compute the wake-up from
//! `poll_timeout()` and the dial schedule, then `select!` over connection events, accepted
//! and dialled sockets, mining results, store reads, API requests, the deadline and shutdown.
//! Every input carries the protocol time of one [`Clock`].

use crate::answer;
use crate::api::{self, unix_micros, Request, MAX_ACCEPTED_LOG};
use crate::clock::Clock;
use crate::conn::{self, ConnEvent};
use crate::conns::{Conn, Conns};
use crate::listener::Acceptor;
use crate::loads::{Loaded, Loads};
use crate::metrics::Metrics;
use crate::mining::{Mined, Mining};
use crate::options::NodeOptions;
use crate::store::{self, PendingItem, StoreEntry, StoreHandle};
use rantai_core::{
    BlockHash, ConnId, Direction, DisconnectReason, Event, Input, LoadPurpose, Message, Output,
    Peer,
};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Events from connection tasks queued before their tasks wait.
const EVENT_QUEUE: usize = 4096;
/// Accepted sockets waiting for the driver.
const ACCEPT_QUEUE: usize = 64;
/// Finished dials waiting for the driver.
const DIAL_QUEUE: usize = 64;
/// Connection events handled in one go before accepted blocks are flushed to the store.
const EVENT_BATCH: usize = 256;
/// Longest sleep between timer checks; a spurious `handle_timeout` is harmless.
const IDLE_WAKE: Duration = Duration::from_secs(1);

type Accepted = (TcpStream, SocketAddr);
type Dialled = (String, std::io::Result<TcpStream>);

/// The receiving ends the driver's loop selects over, besides API requests and shutdown.
pub(crate) struct Inbox {
    events: mpsc::Receiver<ConnEvent>,
    dials: mpsc::Receiver<Dialled>,
    mined: mpsc::Receiver<Mined>,
    loaded: mpsc::Receiver<Loaded>,
}

/// The state of the driver task.
pub(crate) struct Driver {
    peer: Peer,
    clock: Clock,
    conns: Conns,
    mining: Mining,
    store: Option<StoreHandle>,
    /// Accepted blocks not yet handed to the store thread.
    store_batch: Vec<StoreEntry>,
    /// Items accepted from users not yet handed to the store thread; each is acknowledged
    /// once stored.
    item_batch: Vec<PendingItem>,
    loads: Loads,
    events_tx: mpsc::Sender<ConnEvent>,
    dial_tx: mpsc::Sender<Dialled>,
    metrics: Arc<Metrics>,
    advertise: Option<String>,
    last_timeout_call: Option<Instant>,
    opts: NodeOptions,
    /// The most recent accepted blocks with the wall-clock time of acceptance (`GET /accepted`).
    accepted: VecDeque<api::Accepted>,
}

impl Driver {
    /// A driver for `peer`, dialling `opts.peers`, writing accepted blocks to `store`.
    pub(crate) fn new(
        peer: Peer,
        clock: Clock,
        store: Option<StoreHandle>,
        metrics: Arc<Metrics>,
        advertise: Option<String>,
        opts: NodeOptions,
    ) -> (Driver, Inbox) {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (dial_tx, dials) = mpsc::channel(DIAL_QUEUE);
        let (mining, mined) = Mining::new();
        let (loads, loaded) = Loads::new();
        let mut peer = peer;
        for p in &opts.peers {
            peer.add_peer(clock.now(), p.clone());
        }
        let driver = Driver {
            peer,
            clock,
            conns: Conns::default(),
            mining,
            store,
            store_batch: Vec::new(),
            item_batch: Vec::new(),
            loads,
            events_tx,
            dial_tx,
            metrics,
            advertise,
            last_timeout_call: None,
            opts,
            accepted: VecDeque::new(),
        };
        let inbox = Inbox {
            events,
            dials,
            mined,
            loaded,
        };
        (driver, inbox)
    }

    /// Accepts on `listener` (if any) and runs until `shutdown`; then closes every connection
    /// and flushes the store.
    pub(crate) async fn run(
        mut self,
        mut inbox: Inbox,
        listener: Option<TcpListener>,
        mut api: mpsc::Receiver<Request>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let (accept_tx, mut accepts) = mpsc::channel(ACCEPT_QUEUE);
        // Without a listener the sender is dropped here and `accepts` yields nothing.
        let accept_task = listener.map(|l| tokio::spawn(accept_loop(l, accept_tx)));
        loop {
            self.drain();
            // Items before blocks: a block that carries an item removes its pending entry.
            if !self.item_batch.is_empty() {
                if let Some(store) = &self.store {
                    store
                        .append_items(std::mem::take(&mut self.item_batch))
                        .await;
                }
            }
            if !self.store_batch.is_empty() {
                if let Some(store) = &self.store {
                    store.append(std::mem::take(&mut self.store_batch)).await;
                }
            }
            if let Some(store) = &self.store {
                self.loads.send(store).await;
            }
            let wake = self.next_wake();
            tokio::select! {
                Some(ev) = inbox.events.recv() => {
                    self.on_conn_event(ev);
                    // Take what else is already queued before flushing to the store.
                    for _ in 0..EVENT_BATCH {
                        match inbox.events.try_recv() {
                            Ok(ev) => { self.on_conn_event(ev); self.drain(); }
                            Err(_) => break,
                        }
                    }
                }
                Some((stream, addr)) = accepts.recv() => self.on_accept(stream, addr),
                Some((target, res)) = inbox.dials.recv() => self.on_dialed(target, res),
                Some(mined) = inbox.mined.recv() => self.on_mined(mined),
                Some(req) = api.recv() => self.on_request(req),
                Some((purpose, found)) = inbox.loaded.recv() => {
                    self.loads.answered();
                    self.peer.handle(self.clock.now(), Input::BlocksLoaded {
                        purpose,
                        blocks: found.blocks,
                        missing: found.missing,
                    });
                }
                _ = tokio::time::sleep_until(wake) => {
                    self.last_timeout_call = Some(Instant::now());
                    self.peer.handle_timeout(self.clock.now());
                }
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down");
        if let Some(t) = accept_task {
            t.abort();
        }
        self.mining.stop();
        self.conns.clear();
        self.drain_outputs_only();
        if let Some(store) = self.store.take() {
            if !self.item_batch.is_empty() {
                store
                    .append_items(std::mem::take(&mut self.item_batch))
                    .await;
            }
            if !self.store_batch.is_empty() {
                store.append(std::mem::take(&mut self.store_batch)).await;
            }
            store.close().await;
            tracing::info!("store flushed and closed");
        }
    }

    /// Queues a read of evicted bodies. Only a peer with a body cache asks, and it has one only
    /// with a store; a refused read is answered at once with every hash missing.
    fn on_load(&mut self, hashes: Vec<BlockHash>, purpose: LoadPurpose) {
        let refused = if self.store.is_none() {
            tracing::error!("evicted blocks asked for without a store");
            Err(hashes)
        } else {
            self.loads.queue(hashes, purpose)
        };
        if let Err(missing) = refused {
            self.peer.handle(
                self.clock.now(),
                Input::BlocksLoaded {
                    purpose,
                    blocks: Vec::new(),
                    missing,
                },
            );
        }
    }

    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + IDLE_WAKE;
        if let Some(t) = self.peer.poll_timeout() {
            wake = wake.min(self.clock.instant(t));
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
                Output::Dial { addr } => self.dial(addr),
                Output::Mine(Some(t)) => self.mining.start(t),
                Output::Mine(None) => self.mining.stop(),
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

    fn send(&mut self, to: ConnId, msg: Message) {
        let Some(c) = self.conns.get(to) else { return };
        match c.tx.try_send(msg) {
            Ok(()) => {
                self.metrics.messages_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics
                    .peers_dropped_slow
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "dropping {}: its send queue of {} messages is full (peer too slow)",
                    c.label,
                    self.opts.send_queue
                );
                self.close(to, true);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.close(to, true),
        }
    }

    /// Forgets a connection and stops its tasks; `tell_peer` feeds `Disconnected` to the core.
    fn close(&mut self, id: ConnId, tell_peer: bool) {
        if self.conns.remove(id).is_some() && tell_peer {
            self.peer
                .handle(self.clock.now(), Input::Disconnected { peer: id });
        }
    }

    fn on_disconnect(&mut self, id: ConnId, reason: DisconnectReason) {
        let label = self.conns.label(id);
        self.metrics.count_disconnect(reason.label());
        if reason.is_misbehaviour() {
            self.metrics
                .disconnects_misbehaviour
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("disconnecting {label}: {reason}");
        } else {
            tracing::info!("disconnecting {label}: {reason}");
        }
        match reason {
            DisconnectReason::SelfConnection => {
                tracing::info!("{label} is this node itself; not dialling it again");
            }
            DisconnectReason::Evicted => {
                self.metrics
                    .connections_evicted
                    .fetch_add(1, Ordering::Relaxed);
            }
            DisconnectReason::InboundFull => {
                self.metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.close(id, false);
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::PeerReady {
                peer,
                node_id,
                tip,
                listen,
            } => {
                let Some(c) = self.conns.get_mut(peer) else {
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
            }
            Event::BlockAccepted { block, from } => {
                self.metrics.blocks_accepted.fetch_add(1, Ordering::Relaxed);
                if self.accepted.len() == MAX_ACCEPTED_LOG {
                    self.accepted.pop_front();
                }
                self.accepted.push_back(api::Accepted {
                    hash: block.hash().to_string(),
                    height: block.height(),
                    at_unix_us: unix_micros(),
                    mined_here: from.is_none() && self.mining.is_own(block.hash()),
                });
                let label = match from {
                    Some(p) => match self.conns.get_mut(p) {
                        Some(c) => {
                            c.best_seen = c.best_seen.max(block.height());
                            c.label.clone()
                        }
                        None => p.to_string(),
                    },
                    None if self.mining.is_own(block.hash()) => "local miner".to_string(),
                    None => "orphan pool".to_string(),
                };
                if self.store.is_some() {
                    self.store_batch.push(StoreEntry { block, from: label });
                } else {
                    store::log_accepted(&block, &label);
                }
            }
            Event::CompactBlock {
                hash,
                from,
                outcome,
            } => {
                let label = self
                    .conns
                    .get(from)
                    .map_or(from.to_string(), |c| c.label.clone());
                self.metrics.count_compact(outcome);
                tracing::debug!("compact block {hash} from {label}: {outcome:?}");
            }
            Event::BlockRejected { hash, from, reason } => {
                self.metrics.blocks_rejected.fetch_add(1, Ordering::Relaxed);
                self.metrics.count_rejected(reason.kind());
                let label = from
                    .and_then(|p| self.conns.get(p).map(|c| c.label.clone()))
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
            Event::AddrLearned { addr } => tracing::debug!("learned address {addr}"),
        }
    }

    fn on_conn_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Message { id, msg } => {
                if self.conns.contains(id) {
                    self.peer
                        .handle(self.clock.now(), Input::Message { peer: id, msg });
                }
            }
            ConnEvent::Malformed { id, error } => {
                if self.conns.contains(id) {
                    // The core decides (it disconnects); the stream is unusable either way.
                    self.peer
                        .handle(self.clock.now(), Input::Malformed { peer: id, error });
                    self.drain();
                    if self.conns.contains(id) {
                        self.close(id, true);
                    }
                }
            }
            ConnEvent::Closed { id, why } => {
                if let Some(c) = self.conns.get(id) {
                    tracing::info!("connection {} closed: {why}", c.label);
                    self.close(id, true);
                }
            }
        }
    }

    /// A socket the listener accepted: the core admits it, evicts an idle inbound peer for
    /// it, or refuses it ([`rantai_core::Config::max_inbound`]).
    fn on_accept(&mut self, stream: TcpStream, addr: SocketAddr) {
        self.metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        self.register(stream, Direction::Inbound, addr.to_string());
    }

    fn on_dialed(&mut self, target: String, res: std::io::Result<TcpStream>) {
        match res {
            Ok(stream) => {
                self.register(stream, Direction::Outbound, target);
            }
            Err(e) => {
                if self.peer.is_configured_peer(&target) {
                    tracing::info!("cannot reach {target}: {e}; retrying with backoff");
                } else {
                    tracing::debug!("cannot reach learned address {target}: {e}");
                }
                let now = self.clock.now();
                self.peer.handle(now, Input::DialFailed { addr: target });
            }
        }
    }

    /// Starts a connection's reader and writer tasks and tells the core it is open.
    fn register(&mut self, stream: TcpStream, direction: Direction, label: String) {
        let _ = stream.set_nodelay(true);
        let id = self.conns.next_id();
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.opts.send_queue);
        let traffic = Arc::new(conn::Traffic::default());
        let r = tokio::spawn(conn::reader(
            id,
            rd,
            self.events_tx.clone(),
            self.metrics.clone(),
            traffic.clone(),
        ));
        let w = tokio::spawn(conn::writer(
            id,
            wr,
            rx,
            self.events_tx.clone(),
            self.metrics.clone(),
            traffic.clone(),
            self.opts.write_timeout,
        ));
        tracing::debug!("{label} connected ({direction:?}) as {id}");
        let tasks = [r.abort_handle(), w.abort_handle()];
        self.conns
            .insert(id, Conn::new(tx, label.clone(), direction, tasks, traffic));
        self.peer.handle(
            self.clock.now(),
            Input::Connected {
                peer: id,
                direction,
                addr: Some(label),
            },
        );
    }

    /// Opens a connection to `target` for the core's `Output::Dial`; the result comes back
    /// through the dial queue.
    fn dial(&mut self, target: String) {
        let tx = self.dial_tx.clone();
        let timeout = self.opts.connect_timeout;
        tokio::spawn(async move {
            let res = match tokio::time::timeout(timeout, TcpStream::connect(target.as_str())).await
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

    fn on_mined(&mut self, mined: Mined) {
        let Some(block) = self.mining.finished(mined) else {
            return;
        };
        self.metrics.blocks_mined.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("mined block {} {}…", block.height(), block.hash().short());
        self.peer.handle(self.clock.now(), Input::Mined(block));
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Submit { text, reply } => {
                let r = self.peer.submit(self.clock.now(), text);
                let item = match &r {
                    Ok(id) if self.store.is_some() => self.peer.pending_item(id).cloned(),
                    _ => None,
                };
                if r.is_ok() {
                    self.metrics.items_submitted.fetch_add(1, Ordering::Relaxed);
                }
                match item {
                    // Acknowledged means durable: the answer waits for the commit.
                    Some(item) => self.item_batch.push(PendingItem {
                        item,
                        stored: Box::new(move || {
                            let _ = reply.send(r);
                        }),
                    }),
                    None => {
                        let _ = reply.send(r);
                    }
                }
            }
            Request::Status { reply } => {
                let local = answer::Local {
                    listen: self.advertise.as_ref(),
                    persistent: self.store.is_some(),
                    stored_blocks: self
                        .store
                        .as_ref()
                        .map(|_| self.metrics.blocks_stored.load(Ordering::Relaxed)),
                    uptime: self.clock.elapsed(),
                    now: self.clock.now(),
                };
                let _ = reply.send(answer::status(&self.peer, &self.conns, local));
            }
            Request::Blocks { from, limit, reply } => {
                let _ = reply.send(answer::page(self.peer.chain(), from, limit));
            }
            Request::Block { hash, reply } => {
                let _ = reply.send(answer::block(self.peer.chain(), &hash));
            }
            Request::BlocksWithPrefix {
                prefix,
                limit,
                reply,
            } => {
                let _ = reply.send(self.peer.chain().hashes_with_prefix(&prefix, limit));
            }
            Request::Tips { reply } => {
                let _ = reply.send(answer::tips(self.peer.chain()));
            }
            Request::Item { id, reply } => {
                let _ = reply.send(answer::item(&self.peer, &id));
            }
            Request::Gauges { reply } => {
                let _ = reply.send(answer::gauges(&self.peer, &self.conns));
            }
            Request::BestChain { reply } => {
                let _ = reply.send(self.peer.chain().best_chain().cloned().collect());
            }
            Request::Accepted { reply } => {
                let _ = reply.send(self.accepted.iter().cloned().collect());
            }
            Request::SetMining { policy, reply } => {
                let was = self.peer.mine_policy();
                self.peer.set_mine_policy(self.clock.now(), policy);
                tracing::info!("mining policy {was} -> {policy}");
                let _ = reply.send(was);
            }
        }
    }
}

/// Accepts connections and hands them to the driver; accept errors back off
/// ([`crate::listener`]), so running out of file descriptors pauses accepting, never ends it.
async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<Accepted>) {
    let mut acceptor = Acceptor::new(listener, "peer");
    loop {
        let conn = acceptor.accept().await;
        if tx.send(conn).await.is_err() {
            return;
        }
    }
}
