//! The sans-IO peer: every protocol decision of a rantai node, with no IO, clock or global RNG.
//!
//! Drivers (the TCP node, the simulator, test harnesses) feed [`Input`]s with the current time,
//! call [`Peer::handle_timeout`] once [`Peer::poll_timeout`] is due, and after every call drain
//! [`Peer::poll`] until it returns `None`, executing each [`Output`]. Randomness comes from a
//! ChaCha RNG seeded by the driver, so a seed reproduces a run exactly.

use crate::block::{Block, Item, ItemId, Template, MAX_BLOCK_WIRE_BYTES};
use crate::chain::{Accepted, BlockError, Chain, Insert, OrphanLimits};
use crate::message::{
    DecodeError, Hashes, Hello, Message, Tip, MAX_ADDRS, MAX_ADDR_LEN, MAX_HASHES,
    MAX_ITEMS_PER_MSG, PROTOCOL_VERSION,
};
use crate::params::Params;
use crate::peer_table::{ConnTable, KnownSet, Requested};
use crate::types::{BlockHash, Millis, PeerId, Work};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// How new blocks travel to neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayPolicy {
    /// Send the hash; the neighbour requests the block if it lacks it (Bitcoin's inv/getdata).
    Announce,
    /// Send the whole block at once: lower latency, redundant bytes.
    Push,
}

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Tunables of the peer protocol. Consensus rules live in [`Params`].
#[derive(Clone, Debug)]
pub struct Config {
    pub params: Arc<Params>,
    pub relay: RelayPolicy,
    /// Difficulty of blocks this peer mines (raised to the network minimum if below).
    pub mine_difficulty: u32,
    /// Ask the driver to mine (via [`Output::Mine`]) whenever locally submitted items are pending.
    pub auto_mine: bool,
    /// Gossip pending items to neighbours so any miner can include them.
    pub relay_items: bool,
    /// Address advertised in `Hello` so others can dial back.
    pub listen_addr: Option<String>,
    pub handshake_timeout: Millis,
    /// Keepalive period; `None` disables pings.
    pub ping_interval: Option<Millis>,
    pub pong_timeout: Millis,
    /// How long a requested block or chain batch may take before the peer counts as stalling.
    pub request_timeout: Millis,
    /// Consecutive stalls after which a peer is disconnected.
    pub max_strikes: u32,
    /// How long a request may go unanswered before a ping checks whether it was lost (with
    /// keepalive pings on). Raised to twice the connection's measured round trip.
    pub probe_delay: Millis,
    /// Times a request proven lost is re-sent before the peer counts as stalling.
    pub max_request_retries: u32,
    pub max_in_flight_per_peer: usize,
    pub max_fetch_queue: usize,
    /// Hashes per catch-up batch.
    pub sync_batch: usize,
    pub max_pending_items: usize,
    pub max_pending_bytes: usize,
    pub max_addrs: usize,
    /// Misbehaviour score at which a peer is disconnected.
    pub ban_score: u32,
    pub orphan_limits: OrphanLimits,
    /// Keep block bodies in memory only for blocks less than this many heights below the tip
    /// ([`Chain::set_body_cache`]); older bodies are asked of the driver with
    /// [`Output::LoadBlocks`]. `None` (the default) keeps every body: a driver without a
    /// store (in memory, the simulator, test harnesses) must leave it so, and then never sees
    /// `LoadBlocks`.
    pub body_cache_blocks: Option<u64>,
}

impl Config {
    /// Defaults suited to a real node on `params`' network.
    pub fn new(params: Params) -> Config {
        Config {
            mine_difficulty: params.min_difficulty,
            params: Arc::new(params),
            relay: RelayPolicy::Announce,
            auto_mine: false,
            relay_items: false,
            listen_addr: None,
            handshake_timeout: Millis::from_secs(10),
            ping_interval: Some(Millis::from_secs(30)),
            pong_timeout: Millis::from_secs(20),
            request_timeout: Millis::from_secs(10),
            max_strikes: 3,
            probe_delay: Millis::from_secs(1),
            max_request_retries: 3,
            max_in_flight_per_peer: 64,
            max_fetch_queue: 2000,
            sync_batch: 500,
            max_pending_items: 20_000,
            max_pending_bytes: 64 << 20,
            max_addrs: 1000,
            ban_score: 100,
            orphan_limits: OrphanLimits::default(),
            body_cache_blocks: None,
        }
    }
}

/// Something the driver tells the peer.
#[derive(Debug)]
pub enum Input {
    /// A connection is open; the peer sends its `Hello`. `addr` is for logs and status only.
    Connected {
        peer: PeerId,
        direction: Direction,
        addr: Option<String>,
    },
    /// The connection is gone (closed by the remote, the driver, or after our own `Disconnect`).
    Disconnected {
        peer: PeerId,
    },
    Message {
        peer: PeerId,
        msg: Message,
    },
    /// Bytes from `peer` that are not a message.
    Malformed {
        peer: PeerId,
        error: DecodeError,
    },
    /// A block the driver mined from a [`Template`].
    Mined(Block),
    /// The answer to an [`Output::LoadBlocks`]: the blocks found in the store, and the hashes
    /// that were not (a block that does not match a hash asked for counts as not found).
    BlocksLoaded {
        purpose: LoadPurpose,
        blocks: Vec<Arc<Block>>,
        missing: Vec<BlockHash>,
    },
}

/// Why the peer wants evicted bodies back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPurpose {
    /// To answer this connection's `get_blocks`.
    Serve(PeerId),
    /// Their items may need to go back to the pending pool (they left the best chain, or sit
    /// on a side branch at start).
    Requeue,
}

/// Something the peer asks the driver to do.
#[derive(Debug, Clone)]
pub enum Output {
    Send {
        to: PeerId,
        msg: Message,
    },
    /// Close the connection; the peer has already forgotten it.
    Disconnect {
        peer: PeerId,
        reason: DisconnectReason,
    },
    /// Start mining this template, replacing any current job; `None` stops mining.
    Mine(Option<Template>),
    /// Read these blocks (evicted from memory, see [`Config::body_cache_blocks`]) from the
    /// store and answer with [`Input::BlocksLoaded`] carrying `purpose`. Only a peer with a
    /// body cache asks; at most [`MAX_GET_BLOCKS`] hashes for `Serve`.
    LoadBlocks {
        hashes: Vec<BlockHash>,
        purpose: LoadPurpose,
    },
    Event(Event),
}

/// Things that happened, for logs, storage and metrics.
#[derive(Debug, Clone)]
pub enum Event {
    /// Handshake complete.
    PeerReady {
        peer: PeerId,
        node_id: u64,
        tip: Tip,
        listen: Option<String>,
    },
    /// A valid block joined the tree (best chain or side branch). `from` is `None` for our own.
    BlockAccepted {
        block: Arc<Block>,
        from: Option<PeerId>,
    },
    BlockRejected {
        hash: BlockHash,
        from: Option<PeerId>,
        reason: BlockError,
    },
    TipChanged {
        hash: BlockHash,
        height: u64,
    },
    /// The best chain switched branches: `left` lost its place (old tip first), `joined` won.
    Reorg {
        left: Vec<BlockHash>,
        joined: Vec<BlockHash>,
    },
    /// Items from abandoned blocks that went back to the pending pool.
    ItemsRequeued {
        count: usize,
    },
    /// A new dialable address from a peer.
    AddrLearned {
        addr: String,
    },
}

/// Why the peer closed a connection. Variants for which [`is_misbehaviour`] holds are the
/// remote's fault.
///
/// [`is_misbehaviour`]: DisconnectReason::is_misbehaviour
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    #[error("peer is on another network (genesis {theirs}, ours {ours})")]
    WrongNetwork { ours: BlockHash, theirs: BlockHash },
    #[error("unsupported protocol version {0}")]
    Version(u32),
    #[error("connected to ourselves")]
    SelfConnection,
    #[error("duplicate connection to node {0:016x}")]
    Duplicate(u64),
    #[error("no handshake within the timeout")]
    HandshakeTimeout,
    #[error("no answer to {MAX_MISSED_PONGS} pings in a row")]
    PingTimeout,
    #[error("stalled: {0} requests timed out in a row")]
    Stalled(u32),
    #[error("sent an invalid block: {0}")]
    InvalidBlock(BlockError),
    #[error("malformed message: {0}")]
    Malformed(DecodeError),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("misbehaviour score {0} reached the limit")]
    Misbehaving(u32),
}

impl DisconnectReason {
    /// Whether the remote did something wrong (as opposed to a timeout or a benign duplicate).
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            DisconnectReason::WrongNetwork { .. }
                | DisconnectReason::InvalidBlock(_)
                | DisconnectReason::Malformed(_)
                | DisconnectReason::Protocol(_)
                | DisconnectReason::Misbehaving(_)
        )
    }
}

/// Unanswered loss probes double the wait for the next one up to `2 << 2` = 8 probe delays.
const MAX_PROBE_BACKOFF_SHIFT: u32 = 2;

/// Unanswered pings in a row after which a connection is considered dead.
pub const MAX_MISSED_PONGS: u32 = 3;

/// How many rejected block hashes are remembered.
const MAX_REJECTED: usize = 1024;
/// Most hashes one `get_blocks` may ask for; honest peers ask for at most their in-flight limit.
pub const MAX_GET_BLOCKS: usize = 128;
/// Unrequested blocks this many minimum-difficulty blocks' worth of work below our tip are
/// dropped unstored: cheap side branches must not fill memory. Catch-up (requested) is exempt.
const STALE_MARGIN_BLOCKS: u128 = 6;

/// Why a local submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("item of {size} bytes exceeds the {max}-byte block data limit")]
    TooLarge { size: usize, max: usize },
    /// Escaped as JSON (control characters take up to 6 bytes), the item would make a block too
    /// large for one frame, so no peer could ever receive it.
    #[error("item takes {size} bytes as JSON, more than the {max}-byte limit of a block message")]
    TooLargeOnWire { size: usize, max: usize },
    #[error("pending pool is full ({0} items)")]
    PoolFull(usize),
}

/// A connection as shown to drivers (status pages, reports).
#[derive(Debug, Clone, Serialize)]
pub struct PeerSummary {
    pub peer: PeerId,
    pub direction: Direction,
    pub addr: Option<String>,
    pub ready: bool,
    pub node_id: Option<u64>,
    pub listen: Option<String>,
    pub tip: Option<Tip>,
}

/// One connection's protocol state. `repr(C)` fixes the field order so the fields on the
/// per-message paths share cache lines: relaying a block to a neighbour touches the first
/// two lines and one line of `known`; handling an announcement, the second and third lines
/// and one line of `known`. The rest is read on handshakes, timers and catch-up.
#[repr(C, align(64))]
struct Conn {
    // Line 0: what a relay queues and `finish` flushes.
    announce: SmallVec<[BlockHash; 1]>,
    items_out: Vec<Item>,
    // Line 1.
    remote: Option<Remote>,
    missed_pongs: u32,
    score: u32,
    flush_dirty: bool,
    timer_dirty: bool,
    direction: Direction,
    answered_getaddr: bool,
    /// We sent `get_addr` and accept one `addr` in reply.
    asked_addr: bool,
    /// This connection's entry in `Peer::deadlines`.
    deadline: Option<Millis>,
    // Line 2.
    /// Announced hashes to request, oldest first.
    to_fetch: SmallVec<[BlockHash; 1]>,
    strikes: u32,
    /// Deadline of an unanswered `GetChain`.
    chain_request: Option<Millis>,
    // Line 3.
    /// Blocks requested from this peer, in request order.
    in_flight: SmallVec<[Req; 1]>,
    next_ping: Millis,
    /// When the connection opened.
    since: Millis,
    // Lines 4 to 7.
    known: KnownSet,
    // Cold.
    tip: Option<Tip>,
    handshake_deadline: Millis,
    ping: Option<(u64, Millis)>,
    addr: Option<String>,
    /// Last hash of the peer's most recent catch-up batch, to resume from.
    sync_cursor: Option<BlockHash>,
    /// The peer's tip when a catch-up round last brought nothing new.
    synced_to: Option<BlockHash>,
    /// Numbers our requests and pings in send order (see [`Req::seq`]).
    sent_seq: u64,
    /// `sent_seq` of the outstanding `GetChain`, and how often it was re-sent.
    chain_seq: u64,
    chain_retries: u32,
    /// `sent_seq` of the outstanding keepalive ping.
    ping_seq: u64,
    /// Outstanding loss probe: nonce, `sent_seq` and when it was sent.
    probe: Option<(u64, u64, Millis)>,
    /// Probes in a row that went unanswered (each doubles the wait for the next).
    probe_misses: u32,
    /// When to send the next loss probe, while requests are outstanding.
    probe_at: Option<Millis>,
    /// Smoothed ping round trip, once one was measured.
    srtt: Option<Millis>,
    /// Pending-pool sequence number of the last stale item re-sent on this connection.
    item_cursor: u64,
}

/// One block requested from a connection.
#[derive(Clone, Copy)]
struct Req {
    hash: BlockHash,
    /// Hard deadline: past it the peer counts as stalling.
    deadline: Millis,
    /// The connection's `sent_seq` when the request was (last) sent. A peer answers every
    /// request, and connections are ordered streams, so a pong to a ping sent later than the
    /// request, arriving while the request is unanswered, proves the request or its answer lost.
    seq: u64,
    /// Times it was re-sent after such a proof.
    retries: u32,
}

struct Remote {
    node_id: u64,
    listen: Option<String>,
}

struct Pending {
    item: Item,
    local: bool,
    /// When it entered the pool; items pending longer than a ping interval are re-sent.
    since: Millis,
}

/// The protocol state machine of one node.
pub struct Peer {
    config: Config,
    chain: Chain,
    rng: ChaCha8Rng,
    node_id: u64,
    conns: ConnTable<Conn>,
    /// Every block currently requested, and from whom: never ask two peers at once.
    requested: Requested,
    pending: BTreeMap<u64, Pending>,
    pending_ids: BTreeMap<ItemId, u64>,
    pending_seq: u64,
    pending_bytes: usize,
    pending_local: usize,
    own_items: BTreeSet<ItemId>,
    addrs: BTreeSet<String>,
    mining_on: Option<BlockHash>,
    /// Height of the last equal-work competitor relayed.
    competitor_relayed_at: Option<u64>,
    /// Recently rejected block hashes (bounded), so catch-up never re-fetches them in a loop.
    rejected: BTreeSet<BlockHash>,
    rejected_order: VecDeque<BlockHash>,
    /// Every connection's earliest timer, so `poll_timeout` is O(1) and `handle_timeout`
    /// visits only due connections.
    deadlines: BTreeSet<(Millis, PeerId)>,
    /// `deadlines.first()`, refreshed by `finish` when the set changed.
    next_deadline: Option<Millis>,
    deadlines_moved: bool,
    timer_dirty: Vec<PeerId>,
    /// Connections with batched announcements or items to send.
    flush_dirty: Vec<PeerId>,
    out: VecDeque<Output>,
    now: Millis,
}

impl Peer {
    /// A peer starting from the genesis block. `seed` drives all of its randomness.
    pub fn new(config: Config, seed: u64) -> Peer {
        let chain = Chain::with_orphan_limits(config.params.clone(), config.orphan_limits);
        Peer::with_chain(config, seed, chain)
    }

    /// A peer resuming from an existing chain (a data directory, a simulated restart). Items
    /// of side-branch blocks that the best chain lacks go back to the pending pool (as local
    /// items, up to the pool's limits): the pool of the previous run is gone, and without this
    /// an item whose block lost a fork race just before a crash would be lost.
    ///
    /// With a body cache, side-branch blocks whose bodies were evicted are asked of the driver
    /// ([`Output::LoadBlocks`] with [`LoadPurpose::Requeue`]) and requeued when they arrive.
    pub fn with_chain(config: Config, seed: u64, mut chain: Chain) -> Peer {
        chain.set_body_cache(config.body_cache_blocks);
        let mut peer = Peer::bare(config, seed, chain);
        let mut stale = Vec::new();
        let mut load = Vec::new();
        for b in peer.chain.blocks() {
            if peer.chain.in_best_chain(&b.hash()) {
                continue;
            }
            match b.body() {
                Some(body) => stale.extend(
                    body.items()
                        .iter()
                        .filter(|it| !peer.chain.contains_item(&it.id()))
                        .cloned(),
                ),
                None => {
                    if b.item_ids().iter().any(|id| !peer.chain.contains_item(id)) {
                        load.push(b.hash());
                    }
                }
            }
        }
        peer.load_for_requeue(load);
        for it in stale {
            if peer.pending.len() >= peer.config.max_pending_items
                || peer.pending_bytes + it.encoded_len() > peer.config.max_pending_bytes
            {
                break;
            }
            peer.own_items.insert(it.id());
            peer.add_pending(it, true);
        }
        peer
    }

    fn bare(config: Config, seed: u64, chain: Chain) -> Peer {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let node_id = rng.gen();
        Peer {
            config,
            chain,
            rng,
            node_id,
            conns: ConnTable::default(),
            requested: Requested::default(),
            pending: BTreeMap::new(),
            pending_ids: BTreeMap::new(),
            pending_seq: 0,
            pending_bytes: 0,
            pending_local: 0,
            own_items: BTreeSet::new(),
            addrs: BTreeSet::new(),
            mining_on: None,
            competitor_relayed_at: None,
            rejected: BTreeSet::new(),
            rejected_order: VecDeque::new(),
            deadlines: BTreeSet::new(),
            next_deadline: None,
            deadlines_moved: false,
            timer_dirty: Vec::new(),
            flush_dirty: Vec::new(),
            out: VecDeque::new(),
            now: Millis::ZERO,
        }
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Asks the driver for evicted blocks whose items may go back to the pending pool.
    fn load_for_requeue(&mut self, hashes: Vec<BlockHash>) {
        for chunk in hashes.chunks(MAX_GET_BLOCKS) {
            self.out.push_back(Output::LoadBlocks {
                hashes: chunk.to_vec(),
                purpose: LoadPurpose::Requeue,
            });
        }
    }

    fn on_blocks_loaded(
        &mut self,
        purpose: LoadPurpose,
        blocks: Vec<Arc<Block>>,
        mut missing: Vec<BlockHash>,
    ) {
        // Bytes from disk: only a block of our tree with intact data counts.
        let mut good = Vec::with_capacity(blocks.len());
        for b in blocks {
            if self.chain.contains(&b.hash()) && b.data_hash_matches() {
                good.push(b);
            } else {
                missing.push(b.hash());
            }
        }
        match purpose {
            LoadPurpose::Serve(peer) => {
                let Some(c) = self.conns.get_mut(&peer) else {
                    return;
                };
                for b in &good {
                    c.known.insert(&b.hash());
                }
                for block in good {
                    self.send(peer, Message::Block { block });
                }
                if !missing.is_empty() {
                    missing.truncate(MAX_GET_BLOCKS);
                    self.send(
                        peer,
                        Message::NotFound {
                            hashes: missing.into_iter().collect(),
                        },
                    );
                }
            }
            LoadPurpose::Requeue => {
                let items: Vec<Item> = good.iter().flat_map(|b| b.items()).cloned().collect();
                self.requeue(items);
            }
        }
    }

    /// Puts items of blocks that left the best chain back in the pending pool, unless the
    /// chain or the pool already has them; reports the count.
    fn requeue(&mut self, items: Vec<Item>) {
        let mut requeued = 0;
        for it in items {
            let id = it.id();
            if !self.chain.contains_item(&id) && !self.pending_ids.contains_key(&id) {
                let local = self.own_items.contains(&id);
                self.add_pending(it, local);
                requeued += 1;
            }
        }
        if requeued > 0 {
            self.out
                .push_back(Output::Event(Event::ItemsRequeued { count: requeued }));
        }
    }

    /// Gives up the peer, keeping its chain (a crash that keeps the data directory).
    pub fn into_chain(self) -> Chain {
        self.chain
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Random id sent in `Hello`; distinguishes this process from others.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn tip(&self) -> Tip {
        let t = self.chain.tip();
        Tip {
            height: t.height(),
            hash: t.hash(),
            work: self.chain.tip_work(),
        }
    }

    /// Items waiting to be mined.
    pub fn pending_items(&self) -> impl Iterator<Item = &Item> + '_ {
        self.pending.values().map(|p| &p.item)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Known dialable addresses, sorted.
    pub fn addrs(&self) -> impl Iterator<Item = &String> + '_ {
        self.addrs.iter()
    }

    pub fn peers(&self) -> Vec<PeerSummary> {
        self.conns
            .iter()
            .map(|(&peer, c)| PeerSummary {
                peer,
                direction: c.direction,
                addr: c.addr.clone(),
                ready: c.remote.is_some(),
                node_id: c.remote.as_ref().map(|r| r.node_id),
                listen: c.remote.as_ref().and_then(|r| r.listen.clone()),
                tip: c.tip,
            })
            .collect()
    }

    /// Number of open connections (handshaking or ready).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Cache hint for drivers that know what comes next: starts loading the state of the
    /// connection a message from `from` will touch. Never changes behaviour.
    pub fn prefetch(&self, from: PeerId) {
        if let Some(c) = self.conns.get(&from) {
            crate::hint::prefetch(c);
        }
    }

    /// Next output for the driver; drain until `None` after every call that mutates.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The outputs [`Peer::poll`] will return, without taking them: a driver can start
    /// fetching what they will touch (the simulator prefetches each send's link).
    pub fn pending_outputs(&self) -> impl ExactSizeIterator<Item = &Output> + '_ {
        self.out.iter()
    }

    /// When [`Peer::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.next_deadline
    }

    /// Earliest timer of one connection.
    fn conn_deadline(c: &Conn, pings: bool) -> Option<Millis> {
        if c.remote.is_none() {
            return Some(c.handshake_deadline);
        }
        let mut t: Option<Millis> = None;
        let mut consider = |m: Millis| t = Some(t.map_or(m, |x| x.min(m)));
        if pings {
            match c.ping {
                Some((_, deadline)) => consider(deadline),
                None => consider(c.next_ping),
            }
        }
        if let Some(r) = c.in_flight.first() {
            consider(r.deadline);
        }
        if let Some(d) = c.chain_request {
            consider(d);
        }
        if let Some(d) = c.probe_at {
            consider(d);
        }
        t
    }

    /// Marks a connection whose timers may have changed; `finish` re-indexes it.
    fn touch(&mut self, peer: PeerId) {
        if let Some(c) = self.conns.get_mut(&peer) {
            if !c.timer_dirty {
                c.timer_dirty = true;
                self.timer_dirty.push(peer);
            }
        }
    }

    /// A data item typed by a local user. It is mined (if `auto_mine`) or gossiped, and ends
    /// up in the best chain exactly once.
    pub fn submit(&mut self, now: Millis, text: String) -> Result<ItemId, SubmitError> {
        self.now = now;
        let item = Item {
            nonce: self.rng.gen(),
            text,
        };
        let max = self.config.params.max_block_data_bytes - 4;
        if item.encoded_len() > max {
            return Err(SubmitError::TooLarge {
                size: item.text.len(),
                max: max - 12,
            });
        }
        if item.wire_len() > MAX_BLOCK_WIRE_BYTES {
            return Err(SubmitError::TooLargeOnWire {
                size: item.wire_len(),
                max: MAX_BLOCK_WIRE_BYTES,
            });
        }
        if self.pending.len() >= self.config.max_pending_items
            || self.pending_bytes + item.encoded_len() > self.config.max_pending_bytes
        {
            return Err(SubmitError::PoolFull(self.pending.len()));
        }
        let id = item.id();
        self.own_items.insert(id);
        self.add_pending(item.clone(), true);
        if self.config.relay_items {
            self.relay_item(&item, None);
        }
        self.finish();
        Ok(id)
    }

    /// The block this peer would mine now: on its tip, carrying pending items up to the limit.
    pub fn block_template(&self, now: Millis) -> Template {
        let tip = self.chain.tip();
        let max = self.config.params.max_block_data_bytes;
        let mut items = Vec::new();
        let mut size = 4;
        let mut wire = 0;
        for p in self.pending.values() {
            if size + p.item.encoded_len() > max || wire + p.item.wire_len() > MAX_BLOCK_WIRE_BYTES
            {
                break;
            }
            size += p.item.encoded_len();
            wire += p.item.wire_len();
            items.push(p.item.clone());
        }
        let difficulty = self
            .config
            .mine_difficulty
            .max(self.config.params.min_difficulty);
        Template::new(tip.header(), tip.hash(), difficulty, now, items)
    }

    pub fn handle(&mut self, now: Millis, input: Input) {
        self.now = now;
        match input {
            Input::Connected {
                peer,
                direction,
                addr,
            } => self.on_connected(peer, direction, addr),
            Input::Disconnected { peer } => self.forget(peer),
            Input::Message { peer, msg } => {
                if self.conns.contains_key(&peer) {
                    self.on_message(peer, msg);
                }
            }
            Input::Malformed { peer, error } => {
                self.disconnect(peer, DisconnectReason::Malformed(error))
            }
            Input::Mined(block) => self.process_block(Arc::new(block), None, true),
            Input::BlocksLoaded {
                purpose,
                blocks,
                missing,
            } => self.on_blocks_loaded(purpose, blocks, missing),
        }
        self.finish();
    }

    /// Runs every timer that is due at `now`. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = now;
        let due: Vec<PeerId> = self
            .deadlines
            .iter()
            .take_while(|&&(t, _)| t <= now)
            .map(|&(_, id)| id)
            .collect();
        for id in due {
            self.check_timers(id, now);
        }
        self.finish();
    }

    fn check_timers(&mut self, id: PeerId, now: Millis) {
        self.touch(id);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.remote.is_none() {
            if now >= c.handshake_deadline {
                self.disconnect(id, DisconnectReason::HandshakeTimeout);
            }
            return;
        }
        if let Some((_, deadline)) = c.ping {
            if now >= deadline {
                // Several unanswered pings with no other traffic in between, so one lost
                // message on a lossy path does not cost the connection.
                c.ping = None;
                c.missed_pongs += 1;
                if c.missed_pongs >= MAX_MISSED_PONGS {
                    self.disconnect(id, DisconnectReason::PingTimeout);
                    return;
                }
            }
        } else if let Some(interval) = self.config.ping_interval {
            if now >= c.next_ping {
                let nonce = self.rng.gen();
                c.ping = Some((nonce, now.add(self.config.pong_timeout)));
                c.ping_seq = c.sent_seq;
                c.sent_seq += 1;
                c.next_ping = now.add(interval);
                let tip = self.tip();
                self.send(id, Message::Ping { nonce, tip });
                self.resend_stale_items(id, interval);
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.probe_at.is_some_and(|t| now >= t) {
            c.probe_at = None;
            if c.probe.take().is_some() {
                // Unanswered: lost, or queued behind a long answer on a busy link. Back off, so
                // probes never pile up behind the very queue they wait for.
                c.probe_misses = c.probe_misses.saturating_add(1);
            }
            if !c.in_flight.is_empty() || c.chain_request.is_some() {
                let nonce = self.rng.gen();
                c.probe = Some((nonce, c.sent_seq, now));
                c.sent_seq += 1;
                // At most 8 probe delays apart: on a lossy link most misses are plain loss.
                let backoff = 2u64 << c.probe_misses.min(MAX_PROBE_BACKOFF_SHIFT);
                let wait = Self::probe_delay(&self.config, c).0.saturating_mul(backoff);
                c.probe_at = Some(now.add(Millis(wait.min(self.config.request_timeout.0))));
                let tip = self.tip();
                self.send(id, Message::Ping { nonce, tip });
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let stalled_blocks = c.in_flight.first().is_some_and(|r| now >= r.deadline);
        let stalled_chain = c.chain_request.is_some_and(|d| now >= d);
        if stalled_blocks || stalled_chain {
            self.stall(id);
        }
    }

    /// A request from `id` went unanswered: count a strike, re-queue its blocks with other
    /// neighbours, and let catch-up ask everyone again.
    fn stall(&mut self, id: PeerId) {
        self.touch(id);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.strikes += 1;
        c.chain_request = None;
        let dropped: Vec<BlockHash> = c.in_flight.drain(..).map(|r| r.hash).collect();
        c.to_fetch.clear();
        let strikes = c.strikes;
        for h in &dropped {
            if self.requested.get(h) == Some(&id) {
                self.requested.remove(h);
            }
        }
        if strikes >= self.config.max_strikes {
            self.disconnect(id, DisconnectReason::Stalled(strikes));
        } else {
            self.refetch(&dropped, Some(id));
        }
        self.sync_all();
    }

    /// How long a request may be unanswered before probing: the configured delay, or twice the
    /// measured round trip on slow paths.
    fn probe_delay(config: &Config, c: &Conn) -> Millis {
        let rtt2 = c
            .srtt
            .map_or(Millis::ZERO, |r| Millis(r.0.saturating_mul(2)));
        config.probe_delay.max(rtt2)
    }

    /// Schedules a loss probe for a request just sent to `peer` (with keepalive pings on).
    fn arm_probe(&mut self, peer: PeerId) {
        self.touch(peer);
        if self.config.ping_interval.is_none() {
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        // An outstanding probe keeps its own re-probe deadline.
        if c.probe_at.is_none() {
            c.probe_at = Some(now.add(Self::probe_delay(&self.config, c)));
        }
    }

    /// A pong answered our message number `seq`: every request sent before it that is still
    /// unanswered was lost (or its answer was), so it is re-sent, or, after
    /// `max_request_retries`, the peer counts as stalling.
    fn answered_up_to(&mut self, peer: PeerId, seq: u64) {
        let max = self.config.max_request_retries;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let resend_seq = c.sent_seq;
        let mut resend = Hashes::new();
        let mut exhausted = false;
        for r in c.in_flight.iter_mut().filter(|r| r.seq < seq) {
            if r.retries >= max {
                exhausted = true;
            } else {
                r.retries += 1;
                r.seq = resend_seq;
                resend.push(r.hash);
            }
        }
        let chain_lost = c.chain_request.is_some() && c.chain_seq < seq;
        if chain_lost && c.chain_retries >= max {
            exhausted = true;
        }
        if exhausted {
            return self.stall(peer);
        }
        if !resend.is_empty() {
            c.sent_seq += 1;
            self.send(peer, Message::GetBlocks { hashes: resend });
        }
        if chain_lost {
            if let Some(c) = self.conns.get_mut(&peer) {
                c.chain_retries += 1;
                c.chain_seq = c.sent_seq;
                c.sent_seq += 1;
            }
            let locator = self.sync_locator(peer);
            self.send(peer, Message::GetChain { locator });
        }
        self.arm_probe(peer);
    }

    /// Folds one ping round trip into the connection's smoothed estimate.
    fn sample_rtt(c: &mut Conn, rtt: Millis) {
        c.srtt = Some(match c.srtt {
            None => rtt,
            Some(s) => Millis((s.0 * 7 + rtt.0) / 8),
        });
    }

    /// Re-sends pending items older than `age` to `id`, one message's worth per call, resuming
    /// where the last call stopped: an `items` message lost on the way must not lose an item.
    fn resend_stale_items(&mut self, id: PeerId, age: Millis) {
        if !self.config.relay_items || self.pending.is_empty() {
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let cursor = c.item_cursor;
        let stale = |(_, p): &(&u64, &Pending)| now.since(p.since) >= age;
        let mut items = Vec::new();
        let mut wire = 0;
        let mut last = cursor;
        let after = self.pending.range(cursor + 1..).filter(stale);
        let before = self.pending.range(..=cursor).filter(stale);
        for (&seq, p) in after.chain(before) {
            if items.len() >= MAX_ITEMS_PER_MSG || wire + p.item.wire_len() > MAX_BLOCK_WIRE_BYTES {
                break;
            }
            wire += p.item.wire_len();
            items.push(p.item.clone());
            last = seq;
        }
        c.item_cursor = last;
        if !items.is_empty() {
            self.send(id, Message::Items { items });
        }
    }

    fn on_connected(&mut self, peer: PeerId, direction: Direction, addr: Option<String>) {
        // A driver reusing a live id: drop the old connection's state (and its timer entry)
        // rather than leave a deadline behind that no connection owns.
        self.forget(peer);
        let conn = Conn {
            direction,
            addr,
            since: self.now,
            remote: None,
            handshake_deadline: self.now.add(self.config.handshake_timeout),
            tip: None,
            known: KnownSet::default(),
            in_flight: SmallVec::new(),
            to_fetch: SmallVec::new(),
            chain_request: None,
            sync_cursor: None,
            synced_to: None,
            sent_seq: 0,
            chain_seq: 0,
            chain_retries: 0,
            ping_seq: 0,
            probe: None,
            probe_misses: 0,
            probe_at: None,
            srtt: None,
            item_cursor: 0,
            next_ping: Millis::ZERO,
            ping: None,
            strikes: 0,
            missed_pongs: 0,
            score: 0,
            answered_getaddr: false,
            asked_addr: false,
            announce: SmallVec::new(),
            items_out: Vec::new(),
            deadline: None,
            timer_dirty: false,
            flush_dirty: false,
        };
        self.conns.insert(peer, conn);
        self.touch(peer);
        let hello = Message::Hello(Box::new(Hello {
            version: PROTOCOL_VERSION,
            genesis: self.config.params.genesis_hash(),
            node_id: self.node_id,
            tip: self.tip(),
            listen: self.config.listen_addr.clone(),
        }));
        self.send(peer, hello);
    }

    fn forget(&mut self, peer: PeerId) {
        let Some(c) = self.conns.remove(&peer) else {
            return;
        };
        if let Some(t) = c.deadline {
            self.deadlines.remove(&(t, peer));
            self.deadlines_moved = true;
        }
        let dropped: Vec<BlockHash> = c.in_flight.into_iter().map(|r| r.hash).collect();
        for h in &dropped {
            if self.requested.get(h) == Some(&peer) {
                self.requested.remove(h);
            }
        }
        self.refetch(&dropped, None);
        self.sync_all();
    }

    fn disconnect(&mut self, peer: PeerId, reason: DisconnectReason) {
        if self.conns.contains_key(&peer) {
            self.out.push_back(Output::Disconnect { peer, reason });
            self.forget(peer);
        }
    }

    fn misbehaved(&mut self, peer: PeerId, points: u32) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        c.score = c.score.saturating_add(points);
        if c.score >= self.config.ban_score {
            let s = c.score;
            self.disconnect(peer, DisconnectReason::Misbehaving(s));
        }
    }

    fn send(&mut self, to: PeerId, msg: Message) {
        self.out.push_back(Output::Send { to, msg });
    }

    /// Handlers call [`Peer::touch`] wherever they change a connection's timers (handshake,
    /// ping, in-flight requests, chain request); most messages change none.
    fn on_message(&mut self, peer: PeerId, msg: Message) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.missed_pongs = 0;
        }
        if let Err(e) = msg.check_limits() {
            return self.disconnect(peer, DisconnectReason::Malformed(e));
        }
        let ready = self.conns.get(&peer).is_some_and(|c| c.remote.is_some());
        match msg {
            Message::Hello(hello) => {
                if ready {
                    return self.disconnect(peer, DisconnectReason::Protocol("second hello"));
                }
                let Hello {
                    version,
                    genesis,
                    node_id,
                    tip,
                    listen,
                } = *hello;
                self.on_hello(peer, version, genesis, node_id, tip, listen)
            }
            _ if !ready => {
                self.disconnect(peer, DisconnectReason::Protocol("message before hello"))
            }
            Message::Ping { nonce, tip } => {
                self.set_tip(peer, tip);
                let ours = self.tip();
                self.send(peer, Message::Pong { nonce, tip: ours });
                self.maybe_sync(peer);
            }
            Message::Pong { nonce, tip } => {
                let Some(c) = self.conns.get_mut(&peer) else {
                    return;
                };
                let now = self.now;
                let mut answered = None;
                if let Some((n, deadline)) = c.ping {
                    if n == nonce {
                        c.ping = None;
                        c.probe_misses = 0;
                        let sent = Millis(deadline.0.saturating_sub(self.config.pong_timeout.0));
                        Self::sample_rtt(c, now.since(sent));
                        answered = Some(c.ping_seq);
                    }
                }
                if let Some((n, seq, sent)) = c.probe {
                    if n == nonce {
                        c.probe = None;
                        c.probe_at = None;
                        c.probe_misses = 0;
                        Self::sample_rtt(c, now.since(sent));
                        answered = Some(seq);
                    }
                }
                // A pong for an older ping arrives late on slow paths: harmless.
                if let Some(seq) = answered {
                    self.touch(peer);
                    self.answered_up_to(peer, seq);
                }
                self.set_tip(peer, tip);
                self.maybe_sync(peer);
            }
            Message::Inv { hashes } => self.on_inv(peer, &hashes),
            Message::GetBlocks { hashes } => self.on_get_blocks(peer, hashes),
            Message::Block { block } => self.on_block(peer, block),
            Message::NotFound { hashes } => {
                let Some(c) = self.conns.get_mut(&peer) else {
                    return;
                };
                let before = c.in_flight.len();
                c.in_flight.retain(|r| !hashes.contains(&r.hash));
                let was_requested = c.in_flight.len() < before;
                self.touch(peer);
                for h in &hashes {
                    if self.requested.get(h) == Some(&peer) {
                        self.requested.remove(h);
                    }
                }
                // Announcing and then not serving wastes our requests.
                self.misbehaved(peer, if was_requested { 10 } else { 20 });
                self.request_more(peer);
            }
            Message::GetChain { locator } => {
                let fork = self.chain.find_fork(&locator);
                let hashes = self
                    .chain
                    .hashes_after(fork, self.config.sync_batch.min(MAX_HASHES));
                let tip = self.tip();
                self.send(peer, Message::ChainHashes { hashes, tip });
            }
            Message::ChainHashes { hashes, tip } => self.on_chain_hashes(peer, hashes, tip),
            Message::Items { items } => {
                if !self.config.relay_items {
                    // This node does not pool others' items; they could only crowd out ours.
                    return;
                }
                for item in items {
                    self.on_item(peer, item);
                }
            }
            Message::GetAddr => {
                let Some(c) = self.conns.get_mut(&peer) else {
                    return;
                };
                if c.answered_getaddr {
                    return self.misbehaved(peer, 20);
                }
                c.answered_getaddr = true;
                let addrs: Vec<String> = self.addrs.iter().take(MAX_ADDRS).cloned().collect();
                self.send(peer, Message::Addr { addrs });
            }
            Message::Addr { addrs } => {
                let Some(c) = self.conns.get_mut(&peer) else {
                    return;
                };
                if !std::mem::take(&mut c.asked_addr) {
                    // Unsolicited address lists could fill the book with junk.
                    return self.misbehaved(peer, 10);
                }
                for a in addrs {
                    self.learn_addr(a);
                }
            }
        }
    }

    fn on_hello(
        &mut self,
        peer: PeerId,
        version: u32,
        genesis: BlockHash,
        node_id: u64,
        tip: Tip,
        listen: Option<String>,
    ) {
        if version != PROTOCOL_VERSION {
            return self.disconnect(peer, DisconnectReason::Version(version));
        }
        let ours = self.config.params.genesis_hash();
        if genesis != ours {
            return self.disconnect(
                peer,
                DisconnectReason::WrongNetwork {
                    ours,
                    theirs: genesis,
                },
            );
        }
        if node_id == self.node_id {
            return self.disconnect(peer, DisconnectReason::SelfConnection);
        }
        let existing = self
            .conns
            .iter()
            .find(|(&id, c)| id != peer && c.remote.as_ref().is_some_and(|r| r.node_id == node_id))
            .map(|(&id, c)| (id, c.direction, c.since));
        if let Some((other, other_dir, other_since)) = existing {
            let Some(this_dir) = self.conns.get(&peer).map(|c| c.direction) else {
                return;
            };
            if this_dir == other_dir {
                // One side dialled twice: only the dialler closes the newer one, so both ends
                // agree without a race; the listener keeps both until then.
                if this_dir == Direction::Outbound {
                    return self.disconnect(peer, DisconnectReason::Duplicate(node_id));
                }
            } else {
                // Simultaneous dials: both ends keep the connection dialled by the smaller id.
                // An established connection is never evicted by a newcomer claiming its id.
                let young = self.now.since(other_since) < self.config.handshake_timeout;
                let new_dialer = if this_dir == Direction::Outbound {
                    self.node_id
                } else {
                    node_id
                };
                if young && new_dialer == self.node_id.min(node_id) {
                    self.disconnect(other, DisconnectReason::Duplicate(node_id));
                } else {
                    return self.disconnect(peer, DisconnectReason::Duplicate(node_id));
                }
            }
        }
        let now = self.now;
        let interval = self.config.ping_interval.unwrap_or(Millis::ZERO);
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        c.remote = Some(Remote {
            node_id,
            listen: listen.clone(),
        });
        c.tip = Some(tip);
        c.next_ping = now.add(interval);
        c.known.insert(&tip.hash);
        let outbound = c.direction == Direction::Outbound;
        c.asked_addr = outbound;
        self.touch(peer);
        if let Some(l) = &listen {
            self.learn_addr(l.clone());
        }
        if outbound {
            self.send(peer, Message::GetAddr);
        }
        self.out.push_back(Output::Event(Event::PeerReady {
            peer,
            node_id,
            tip,
            listen,
        }));
        if self.chain.tip_work() > tip.work {
            // Blocks found while the handshake was in flight were never announced here.
            let ours = self.chain.tip().hash();
            if let Some(c) = self.conns.get_mut(&peer) {
                c.known.insert(&ours);
            }
            self.send(
                peer,
                Message::Inv {
                    hashes: smallvec::smallvec![ours],
                },
            );
        }
        if self.config.relay_items && !self.pending.is_empty() {
            let items: Vec<Item> = self.pending.values().map(|p| p.item.clone()).collect();
            for items in item_batches(&items) {
                self.send(peer, Message::Items { items });
            }
        }
        self.maybe_sync(peer);
    }

    fn learn_addr(&mut self, addr: String) {
        if addr.is_empty()
            || addr.len() > MAX_ADDR_LEN
            || self.config.listen_addr.as_ref() == Some(&addr)
        {
            return;
        }
        if self.addrs.len() >= self.config.max_addrs || self.addrs.contains(&addr) {
            return;
        }
        self.addrs.insert(addr.clone());
        self.out
            .push_back(Output::Event(Event::AddrLearned { addr }));
    }

    fn set_tip(&mut self, peer: PeerId, tip: Tip) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.known.insert(&tip.hash);
            c.tip = Some(tip);
        }
    }

    fn on_inv(&mut self, peer: PeerId, hashes: &[BlockHash]) {
        let max_queue = self.config.max_fetch_queue;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let mut overflow = false;
        for &h in hashes {
            c.known.insert(&h);
            // Cheapest and most likely first: while a new block propagates, most
            // announcements name a block already requested from another neighbour.
            if self.requested.contains_key(&h)
                || c.to_fetch.contains(&h)
                || self.chain.knows(&h)
                || self.rejected.contains(&h)
            {
                continue;
            }
            if c.to_fetch.len() >= max_queue {
                overflow = true;
                continue;
            }
            c.to_fetch.push(h);
        }
        // Most announcements are of blocks already here: then there is nothing to request.
        let fetch = !c.to_fetch.is_empty();
        if overflow {
            self.misbehaved(peer, 5);
        }
        if fetch {
            self.request_more(peer);
        }
    }

    /// Requests queued hashes from `peer` up to its in-flight limit.
    fn request_more(&mut self, peer: PeerId) {
        let deadline = self.now.add(self.config.request_timeout);
        let max = self.config.max_in_flight_per_peer;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let mut batch = Hashes::new();
        let mut taken = 0;
        let seq = c.sent_seq;
        for &hash in &c.to_fetch {
            if c.in_flight.len() >= max {
                break;
            }
            taken += 1;
            if self.requested.contains_key(&hash) || self.chain.knows(&hash) {
                continue;
            }
            self.requested.insert(hash, peer);
            c.in_flight.push(Req {
                hash,
                deadline,
                seq,
                retries: 0,
            });
            batch.push(hash);
        }
        c.to_fetch.drain(..taken);
        if !batch.is_empty() {
            c.sent_seq += 1;
            self.arm_probe(peer);
            self.send(peer, Message::GetBlocks { hashes: batch });
        }
    }

    /// Re-queues hashes that a lost or stalled peer never delivered with neighbours that have them.
    fn refetch(&mut self, hashes: &[BlockHash], exclude: Option<PeerId>) {
        let mut touched = BTreeSet::new();
        for h in hashes {
            if self.chain.knows(h) || self.requested.contains_key(h) {
                continue;
            }
            let holder = self
                .conns
                .iter_mut()
                .find(|(&id, c)| Some(id) != exclude && c.remote.is_some() && c.known.contains(h));
            if let Some((&id, c)) = holder {
                if c.to_fetch.len() < self.config.max_fetch_queue {
                    c.to_fetch.push(*h);
                    touched.insert(id);
                }
            }
        }
        for id in touched {
            self.request_more(id);
        }
    }

    fn on_get_blocks(&mut self, peer: PeerId, mut hashes: Hashes) {
        if hashes.len() > MAX_GET_BLOCKS {
            return self.disconnect(
                peer,
                DisconnectReason::Protocol("get_blocks over the limit"),
            );
        }
        let n = hashes.len();
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.len() < n {
            // Asking twice for one block in one message only multiplies our upload.
            return self.misbehaved(peer, 20);
        }
        let mut missing = Hashes::new();
        let mut load = Vec::new();
        for h in hashes {
            match self.chain.get(&h).map(|b| b.body()) {
                Some(Some(b)) => {
                    let block = b.clone();
                    if let Some(c) = self.conns.get_mut(&peer) {
                        c.known.insert(&h);
                    }
                    self.send(peer, Message::Block { block });
                }
                Some(None) => load.push(h),
                None => missing.push(h),
            }
        }
        if !missing.is_empty() {
            self.send(peer, Message::NotFound { hashes: missing });
        }
        if !load.is_empty() {
            self.out.push_back(Output::LoadBlocks {
                hashes: load,
                purpose: LoadPurpose::Serve(peer),
            });
        }
    }

    fn on_block(&mut self, peer: PeerId, block: Arc<Block>) {
        let h = block.hash();
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let before = c.in_flight.len();
        c.in_flight.retain(|r| r.hash != h);
        let solicited = c.in_flight.len() < before;
        c.known.insert(&h);
        if solicited {
            c.strikes = 0;
            // The peer is serving, only slowly (a busy uplink answers in order): the rest of
            // the batch gets a full timeout from now, so a long queue is not taken for a stall
            // and re-requested, which would only lengthen it.
            let deadline = self.now.add(self.config.request_timeout);
            for r in c.in_flight.iter_mut() {
                r.deadline = r.deadline.max(deadline);
            }
            self.touch(peer);
        }
        if self.requested.get(&h) == Some(&peer) {
            self.requested.remove(&h);
        }
        let known = self.chain.knows(&h) || self.rejected.contains(&h);
        if !solicited && known && self.config.relay == RelayPolicy::Announce {
            // Usually a block we re-requested elsewhere after a timeout, arriving late.
            self.misbehaved(peer, 2);
        } else if !solicited && self.far_below_tip(&block) {
            self.misbehaved(peer, 2);
        } else if !known {
            // Pushed blocks keep being pushed; fetched ones are announced onwards.
            self.process_block(block, Some(peer), !solicited);
        }
        self.request_more(peer);
        self.maybe_sync(peer);
    }

    /// Whether an unrequested block would sit well below our tip's work (a cheap side branch).
    fn far_below_tip(&self, block: &Block) -> bool {
        let Some(parent_work) = self.chain.work_of(&block.prev()) else {
            return false;
        };
        let unit = Work::of_difficulty(self.config.params.min_difficulty).0;
        let margin = Work(unit.saturating_mul(STALE_MARGIN_BLOCKS));
        parent_work
            .saturating_add(block.header().work())
            .saturating_add(margin)
            < self.chain.tip_work()
    }

    fn remember_rejected(&mut self, h: BlockHash) {
        if self.rejected.insert(h) {
            self.rejected_order.push_back(h);
            if self.rejected_order.len() > MAX_REJECTED {
                if let Some(old) = self.rejected_order.pop_front() {
                    self.rejected.remove(&old);
                }
            }
        }
    }

    fn on_chain_hashes(&mut self, peer: PeerId, hashes: Vec<BlockHash>, tip: Tip) {
        let max_queue = self.config.max_fetch_queue;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        if c.chain_request.take().is_none() {
            return self.misbehaved(peer, 2);
        }
        self.touch(peer);
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        // Strikes are not forgiven here: a peer that answers catch-up but never delivers a
        // block would otherwise stall forever without being dropped. A delivered block resets them.
        c.known.insert(&tip.hash);
        c.tip = Some(tip);
        let mut fresh = 0;
        for h in &hashes {
            if self.chain.knows(h) || self.rejected.contains(h) || self.requested.contains_key(h) {
                continue;
            }
            if c.to_fetch.len() < max_queue {
                c.to_fetch.push(*h);
                fresh += 1;
            }
        }
        c.sync_cursor = hashes.last().copied();
        // Nothing new to fetch from this peer: caught up with it until its tip changes. If part
        // of its batch is requested from another neighbour, asking again now would return the
        // same batch in a loop; should that request fail, the stall resets every `synced_to`.
        if fresh == 0 {
            c.synced_to = Some(tip.hash);
        }
        self.request_more(peer);
        self.maybe_sync(peer);
    }

    /// Starts or continues catch-up with `peer` if it claims more work than we have.
    fn maybe_sync(&mut self, peer: PeerId) {
        let our_work = self.chain.tip_work();
        let timeout = self.now.add(self.config.request_timeout);
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let Some(tip) = c.tip else { return };
        let idle = c.remote.is_some()
            && c.chain_request.is_none()
            && c.in_flight.is_empty()
            && c.to_fetch.is_empty();
        if !idle
            || tip.work <= our_work
            || c.synced_to == Some(tip.hash)
            || self.chain.contains(&tip.hash)
        {
            return;
        }
        c.chain_request = Some(timeout);
        c.chain_seq = c.sent_seq;
        c.chain_retries = 0;
        c.sent_seq += 1;
        let locator = self.sync_locator(peer);
        self.arm_probe(peer);
        self.send(peer, Message::GetChain { locator });
    }

    /// Our locator, led by where `peer`'s last catch-up batch ended if we hold that block.
    fn sync_locator(&self, peer: PeerId) -> Vec<BlockHash> {
        let mut locator = Vec::with_capacity(crate::message::MAX_LOCATOR);
        let cursor = self.conns.get(&peer).and_then(|c| c.sync_cursor);
        if let Some(cursor) = cursor.filter(|h| self.chain.contains(h)) {
            locator.push(cursor);
        }
        locator.extend(self.chain.locator());
        locator.truncate(crate::message::MAX_LOCATOR);
        locator
    }

    /// After losing a connection or a stalled request: let every neighbour be asked again.
    fn sync_all(&mut self) {
        for c in self.conns.values_mut() {
            c.synced_to = None;
        }
        let ids: Vec<PeerId> = self.conns.keys().copied().collect();
        for id in ids {
            self.maybe_sync(id);
        }
    }

    /// Validates, stores, relays and reports one block. `push_ok` marks blocks that travelled
    /// by relay (or were mined here) rather than by catch-up, so push relay may forward them whole.
    fn process_block(&mut self, block: Arc<Block>, from: Option<PeerId>, push_ok: bool) {
        let hash = block.hash();
        match self.chain.insert(block, self.now) {
            Err(reason) => {
                let ev = Event::BlockRejected {
                    hash,
                    from,
                    reason: reason.clone(),
                };
                self.out.push_back(Output::Event(ev));
                self.remember_rejected(hash);
                if let Some(p) = from {
                    match reason {
                        // Clock skew, not malice.
                        BlockError::FromFuture { .. } => self.misbehaved(p, 5),
                        // The sender may not have seen what made the parent invalid.
                        BlockError::InvalidParent => self.misbehaved(p, 20),
                        _ => self.disconnect(p, DisconnectReason::InvalidBlock(reason)),
                    }
                }
            }
            Ok(Insert::Duplicate) => {}
            Ok(Insert::Orphan) => {
                if let Some(p) = from {
                    if let Some(c) = self.conns.get_mut(&p) {
                        c.synced_to = None;
                        if c.tip.is_none_or(|t| t.work <= self.chain.tip_work()) {
                            // It has a chain we lack; make sure catch-up considers it.
                            let work = self.chain.tip_work().saturating_add(Work(1));
                            c.tip = Some(Tip {
                                height: 0,
                                hash,
                                work,
                            });
                        }
                    }
                    self.maybe_sync(p);
                }
            }
            Ok(Insert::Accepted(acc)) => self.on_accepted(acc, from, push_ok),
        }
    }

    fn on_accepted(&mut self, acc: Accepted, from: Option<PeerId>, push_ok: bool) {
        let first = acc.connected.first().map(|b| b.hash());
        for (hash, reason) in &acc.rejected {
            self.remember_rejected(*hash);
            self.out.push_back(Output::Event(Event::BlockRejected {
                hash: *hash,
                from: if Some(*hash) == first { from } else { None },
                reason: reason.clone(),
            }));
        }
        if let Some(p) = from {
            // The sender's own block failed a rule that needs the chain (a duplicate item).
            match acc.rejected.iter().find(|(h, _)| Some(*h) == first) {
                Some((_, BlockError::InvalidParent)) => self.misbehaved(p, 20),
                Some((_, reason)) => {
                    let reason = reason.clone();
                    self.disconnect(p, DisconnectReason::InvalidBlock(reason));
                }
                None => {
                    // The sender has this block's chain: its tip is at least that heavy, which
                    // settles ties and catch-up decisions without waiting for the next ping.
                    let seen = first.and_then(|h| {
                        let b = self.chain.get(&h)?;
                        Some(Tip {
                            height: b.height(),
                            hash: h,
                            work: self.chain.work_of(&h)?,
                        })
                    });
                    if let Some(c) = self.conns.get_mut(&p) {
                        c.score = c.score.saturating_sub(5);
                        if let Some(t) = seen {
                            if c.tip.is_none_or(|old| t.work > old.work) {
                                c.tip = Some(t);
                            }
                        }
                    }
                }
            }
        }
        let joined: BTreeSet<BlockHash> = acc
            .tip_change
            .iter()
            .flat_map(|c| c.joined.iter().map(|b| b.hash()))
            .collect();
        if let (Some(p), Some(h)) = (from, first) {
            if push_ok && !joined.contains(&h) {
                // An unrequested block that does not extend our best chain: honest announce
                // peers never send one, and push peers only for a fork race.
                let points = if self.config.relay == RelayPolicy::Announce {
                    10
                } else {
                    1
                };
                self.misbehaved(p, points);
            }
        }
        let tip_work = self.chain.tip_work();
        for (i, block) in acc.connected.iter().enumerate() {
            let h = block.hash();
            if self.chain.get(&h).is_none() {
                continue;
            }
            self.out.push_back(Output::Event(Event::BlockAccepted {
                block: block.clone(),
                from: if i == 0 { from } else { None },
            }));
            // Relay what joined the best chain, plus equal-work competitors (a fork race must
            // reach everyone); lighter side branches stay local.
            let competitor = !joined.contains(&h)
                && self.chain.work_of(&h) == Some(tip_work)
                && self.competitor_relayed_at != Some(block.height());
            if competitor {
                // One competitor per height is enough to show the race; more would let a
                // cheap miner flood the network with siblings.
                self.competitor_relayed_at = Some(block.height());
            }
            if joined.contains(&h) || competitor {
                self.relay_block(block, from, push_ok && i == 0);
            }
        }
        if let Some(change) = acc.tip_change {
            let mut left_items = Vec::new();
            let mut load = Vec::new();
            for b in &change.left {
                match b.body() {
                    Some(body) => left_items.extend(body.items().iter().cloned()),
                    None => load.push(b.hash()),
                }
            }
            for b in &change.joined {
                for id in b.item_ids() {
                    self.remove_pending(&id);
                }
            }
            let tip = self.chain.tip().clone();
            if !change.left.is_empty() {
                self.out.push_back(Output::Event(Event::Reorg {
                    left: change.left.iter().map(|b| b.hash()).collect(),
                    joined: change.joined.iter().map(|b| b.hash()).collect(),
                }));
            }
            self.out.push_back(Output::Event(Event::TipChanged {
                hash: tip.hash(),
                height: tip.height(),
            }));
            self.requeue(left_items);
            self.load_for_requeue(load);
        }
        if self.config.relay_items {
            self.adopt_side_branch_items(&acc.connected);
        }
    }

    /// With item gossip, items of side-branch blocks that neither the best chain nor the pool
    /// holds join the pool (as remote items, within their half of it): the block's miner may
    /// be gone (a wiped restart), and no one else would mine them again.
    fn adopt_side_branch_items(&mut self, blocks: &[Arc<Block>]) {
        for block in blocks {
            if self.chain.in_best_chain(&block.hash()) {
                continue;
            }
            for it in block.items() {
                let id = it.id();
                if self.chain.contains_item(&id) || self.pending_ids.contains_key(&id) {
                    continue;
                }
                if self.remote_share_full(it) {
                    return;
                }
                self.add_pending(it.clone(), false);
            }
        }
    }

    fn relay_block(&mut self, block: &Arc<Block>, from: Option<PeerId>, push_ok: bool) {
        let h = block.hash();
        let push = push_ok && self.config.relay == RelayPolicy::Push;
        let mut pushes = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            if Some(id) == from || c.remote.is_none() || c.known.contains(&h) {
                continue;
            }
            c.known.insert(&h);
            if push {
                pushes.push(id);
            } else {
                c.announce.push(h);
                if !c.flush_dirty {
                    c.flush_dirty = true;
                    self.flush_dirty.push(id);
                }
            }
        }
        for id in pushes {
            self.send(
                id,
                Message::Block {
                    block: block.clone(),
                },
            );
        }
    }

    fn on_item(&mut self, peer: PeerId, item: Item) {
        if item.encoded_len() + 4 > self.config.params.max_block_data_bytes
            || item.wire_len() > MAX_BLOCK_WIRE_BYTES
        {
            return self.misbehaved(peer, 20);
        }
        let id = item.id();
        if let Some(c) = self.conns.get_mut(&peer) {
            c.known.insert(&id);
        }
        if self.chain.contains_item(&id) || self.pending_ids.contains_key(&id) {
            return;
        }
        if self.remote_share_full(&item) {
            return;
        }
        self.add_pending(item.clone(), false);
        if self.config.relay_items {
            self.relay_item(&item, Some(peer));
        }
    }

    /// Whether `item` would overfill the half of the pool open to items that are not ours:
    /// remote items may fill only half of it, so local submissions always fit.
    fn remote_share_full(&self, item: &Item) -> bool {
        let remote = self.pending.len() - self.pending_local;
        remote >= self.config.max_pending_items / 2
            || self.pending_bytes + item.encoded_len() > self.config.max_pending_bytes / 2
    }

    fn relay_item(&mut self, item: &Item, from: Option<PeerId>) {
        let id = item.id();
        for (&pid, c) in self.conns.iter_mut() {
            if Some(pid) == from || c.remote.is_none() || c.known.contains(&id) {
                continue;
            }
            c.known.insert(&id);
            c.items_out.push(item.clone());
            if !c.flush_dirty {
                c.flush_dirty = true;
                self.flush_dirty.push(pid);
            }
        }
    }

    fn add_pending(&mut self, item: Item, local: bool) {
        let id = item.id();
        if self.pending_ids.contains_key(&id) {
            return;
        }
        self.pending_seq += 1;
        self.pending_bytes += item.encoded_len();
        if local {
            self.pending_local += 1;
        }
        self.pending_ids.insert(id, self.pending_seq);
        self.pending.insert(
            self.pending_seq,
            Pending {
                item,
                local,
                since: self.now,
            },
        );
    }

    fn remove_pending(&mut self, id: &ItemId) {
        if let Some(seq) = self.pending_ids.remove(id) {
            if let Some(p) = self.pending.remove(&seq) {
                self.pending_bytes -= p.item.encoded_len();
                if p.local {
                    self.pending_local -= 1;
                }
            }
        }
    }

    /// Flushes batched announcements and items, and updates the mining job.
    fn finish(&mut self) {
        // The dirty lists are taken and handed back empty, so their buffers are reused.
        let mut dirty = std::mem::take(&mut self.flush_dirty);
        for &id in &dirty {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.flush_dirty = false;
            for chunk in c.announce.chunks(MAX_HASHES) {
                let msg = Message::Inv {
                    hashes: Hashes::from_slice(chunk),
                };
                self.out.push_back(Output::Send { to: id, msg });
            }
            c.announce.clear();
            for items in item_batches(&c.items_out) {
                let msg = Message::Items { items };
                self.out.push_back(Output::Send { to: id, msg });
            }
            c.items_out.clear();
        }
        dirty.clear();
        self.flush_dirty = dirty;
        let pings = self.config.ping_interval.is_some();
        let mut dirty = std::mem::take(&mut self.timer_dirty);
        for &id in &dirty {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.timer_dirty = false;
            let d = Self::conn_deadline(c, pings);
            if d != c.deadline {
                if let Some(old) = c.deadline {
                    self.deadlines.remove(&(old, id));
                }
                if let Some(new) = d {
                    self.deadlines.insert((new, id));
                }
                c.deadline = d;
                self.deadlines_moved = true;
            }
        }
        dirty.clear();
        self.timer_dirty = dirty;
        if std::mem::take(&mut self.deadlines_moved) {
            self.next_deadline = self.deadlines.first().map(|&(t, _)| t);
        }
        if self.config.auto_mine {
            let tip = self.chain.tip().hash();
            if self.pending_local > 0 || self.equal_work_rival() {
                if self.mining_on != Some(tip) {
                    self.mining_on = Some(tip);
                    let t = self.block_template(self.now);
                    self.out.push_back(Output::Mine(Some(t)));
                }
            } else if self.mining_on.take().is_some() {
                self.out.push_back(Output::Mine(None));
            }
        }
    }

    /// A neighbour sits on a different tip with exactly our work. Fork choice keeps the first
    /// seen, so without another block neither side would ever move; the side with the greater
    /// tip hash mines one (exactly one side, so the tie is not recreated).
    fn equal_work_rival(&self) -> bool {
        let ours = self.chain.tip().hash();
        let work = self.chain.tip_work();
        self.conns.values().any(|c| {
            c.remote.is_some()
                && c.tip
                    .is_some_and(|t| t.work == work && t.hash != ours && t.hash < ours)
        })
    }

    /// Approximate heap bytes this peer spends beyond the shared block bodies: the chain's
    /// bookkeeping plus per-connection relay state. Used to check the per-block memory budget.
    pub fn bookkeeping_bytes(&self) -> usize {
        let per_conn: usize = self
            .conns
            .values()
            .map(|c| {
                std::mem::size_of::<Conn>()
                    + spilled_bytes(&c.in_flight)
                    + spilled_bytes(&c.to_fetch)
                    + spilled_bytes(&c.announce)
            })
            .sum();
        self.chain.bookkeeping_bytes() + per_conn + self.pending_bytes
    }
}

/// Splits items into `items` messages that each fit in a frame: at most
/// [`MAX_ITEMS_PER_MSG`] items and [`MAX_BLOCK_WIRE_BYTES`] of JSON (one item always fits).
fn item_batches(items: &[Item]) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut wire = 0;
    for it in items {
        let fits = out.last().is_some_and(|b| {
            b.len() < MAX_ITEMS_PER_MSG && wire + it.wire_len() <= MAX_BLOCK_WIRE_BYTES
        });
        if !fits {
            out.push(Vec::new());
            wire = 0;
        }
        wire += it.wire_len();
        if let Some(b) = out.last_mut() {
            b.push(it.clone());
        }
    }
    out
}

/// Heap bytes of a `SmallVec` that outgrew its inline storage.
fn spilled_bytes<A: smallvec::Array>(v: &SmallVec<A>) -> usize {
    if v.spilled() {
        v.capacity() * std::mem::size_of::<A::Item>()
    } else {
        0
    }
}
