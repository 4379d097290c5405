//! The sans-IO peer: every protocol decision of a rantai node, with no IO, clock or global RNG.
//!
//! Drivers (the TCP node, the simulator, test harnesses) feed [`Input`]s with the current time,
//! call [`Peer::handle_timeout`] once [`Peer::poll_timeout`] is due, and after every call drain
//! [`Peer::poll`] until it returns `None`, executing each [`Output`]. Randomness comes from a
//! ChaCha RNG seeded by the driver, so a seed reproduces a run exactly.
//!
//! Layout: the [`Peer`] and its dispatch live here; the driver boundary in `io`, tunables and
//! penalties in `config`. State with an invariant has its own type: `conn` (one connection),
//! `timers` (timer slots and the deadline index), `pool` (pending items), `outbox` (relay
//! batches), `rejected`, `table` (the connection table and known-hash filter). Protocol
//! behaviour is split by concern: `handshake`, `liveness` (pings, loss probes, stalls),
//! `fetch` (announce, request, serve), `sync` (locator catch-up), `accept` (validation
//! outcomes, reorg requeue, side-branch items) and `relay` (blocks and items onwards).

#![forbid(unsafe_code)]

mod accept;
mod compact;
mod config;
mod conn;
mod dial;
mod fetch;
mod handshake;
mod io;
mod liveness;
mod outbox;
mod pool;
mod rejected;
mod relay;
mod sync;
mod table;
mod timers;

pub use config::{
    penalty, Config, ConfigSummary, MinePolicy, ParseMinePolicyError, ParseRelayPolicyError,
    RelayPolicy, MAX_GET_BLOCKS, MAX_MISSED_PONGS,
};
pub use io::{
    CompactOutcome, Direction, DisconnectReason, Event, Input, LoadPurpose, Output, PeerSummary,
    SubmitError, Violation,
};

use crate::block::{Block, Item, ItemId, Template, ITEM_OVERHEAD};
use crate::chain::Chain;
use crate::message::{Message, Tip};
use crate::types::{BlockHash, ConnId, Millis};
use conn::Conn;
use outbox::{item_batches, FlushQueue};
use pool::Pool;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rejected::Rejected;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use table::{ConnTable, Requested};
use timers::TimerIndex;

/// A block tied in work with our tip, and since when the tie stands: the later timestamp of
/// the tied blocks, the same at every peer, so a peer that learns of an old tie late settles
/// it at once instead of waiting a grace of its own (which on a long path adds up per hop).
#[derive(Clone, Copy, Debug)]
struct Rival {
    hash: BlockHash,
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
    pool: Pool,
    addrs: BTreeSet<String>,
    dialer: dial::Dialer,
    mining_on: Option<BlockHash>,
    /// The smallest-hash block seen with the same work as the tip: a tie this side breaks.
    rival_below: Option<BlockHash>,
    /// The greatest-hash block seen with the same work as the tip, and since when the tie
    /// stands: the other side should break it.
    rival_above: Option<Rival>,
    /// Height of the last equal-work competitor relayed.
    competitor_relayed_at: Option<u64>,
    rejected: Rejected,
    compact: compact::CompactState,
    timers: TimerIndex,
    flush: FlushQueue,
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
        let (max_items, max_bytes) = (peer.config.max_pending_items, peer.config.max_pending_bytes);
        for it in stale {
            if !peer.pool.fits(&it, max_items, max_bytes) {
                break;
            }
            peer.pool.claim(it.id(), &peer.chain);
            peer.pool.insert(it, true, peer.now);
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
            pool: Pool::default(),
            addrs: BTreeSet::new(),
            dialer: dial::Dialer::default(),
            mining_on: None,
            rival_below: None,
            rival_above: None,
            competitor_relayed_at: None,
            rejected: Rejected::default(),
            compact: compact::CompactState::default(),
            timers: TimerIndex::default(),
            flush: FlushQueue::default(),
            out: VecDeque::new(),
            now: Millis::ZERO,
        }
    }

    /// The block tree this peer keeps.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Gives up the peer, keeping its chain (a crash that keeps the data directory).
    pub fn into_chain(self) -> Chain {
        self.chain
    }

    /// The tunables this peer runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Random id sent in `Hello`; distinguishes this process from others.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Our best tip, as told to neighbours.
    pub fn tip(&self) -> Tip {
        let t = self.chain.tip();
        Tip {
            height: t.height(),
            hash: t.hash(),
            work: self.chain.tip_work(),
        }
    }

    /// Items waiting to be mined, in arrival order.
    pub fn pending_items(&self) -> impl Iterator<Item = &Item> + '_ {
        self.pool.items()
    }

    /// A pending item by id: what a node persists once [`Peer::submit`] accepted it.
    pub fn pending_item(&self, id: &ItemId) -> Option<&Item> {
        self.pool.get(id)
    }

    /// Items this node had accepted from its users before a restart (a node persists them
    /// until a stored block carries them): they go back to the pool as its own and are
    /// mined again, unless the chain already has them. Returns how many went back; items
    /// beyond the pool's limits are dropped, as a submission would be refused.
    pub fn restore_items(&mut self, now: Millis, items: Vec<Item>) -> usize {
        self.now = now;
        let (max_items, max_bytes) = (self.config.max_pending_items, self.config.max_pending_bytes);
        let mut restored = 0;
        for it in items {
            let id = it.id();
            if self.chain.contains_item(&id) || self.pool.contains(&id) {
                continue;
            }
            if !self.pool.fits(&it, max_items, max_bytes) {
                break;
            }
            self.pool.claim(id, &self.chain);
            self.pool.insert(it, true, self.now);
            restored += 1;
        }
        self.finish();
        restored
    }

    /// Number of items waiting to be mined.
    pub fn pending_len(&self) -> usize {
        self.pool.len()
    }

    /// Known dialable addresses, sorted.
    pub fn addrs(&self) -> impl Iterator<Item = &String> + '_ {
        self.addrs.iter()
    }

    /// Neighbours asked to push new blocks to us as compact blocks at once (compact relay),
    /// the one that delivered a block first least recently first.
    pub fn high_bandwidth_peers(&self) -> &[ConnId] {
        self.compact.high_bandwidth()
    }

    /// Every open connection, in id order.
    pub fn peers(&self) -> Vec<PeerSummary> {
        self.conns
            .iter()
            .map(|(&peer, c)| c.summary(peer))
            .collect()
    }

    /// Number of open connections (handshaking or ready).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Cache hint for drivers that know what comes next: starts loading the state of the
    /// connection a message from `from` will touch. Never changes behaviour.
    pub fn prefetch(&self, from: ConnId) {
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
        [self.timers.next(), self.tie_deadline(), self.next_dial()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A data item typed by a local user. It is mined (unless [`MinePolicy::Off`]) or gossiped, and ends
    /// up in the best chain exactly once. `now` follows the contract of [`Peer::handle`].
    pub fn submit(&mut self, now: Millis, text: String) -> Result<ItemId, SubmitError> {
        self.now = now;
        let item = Item {
            nonce: self.rng.gen(),
            text,
        };
        let max = self.config.params.block_data_limit() - 4;
        if item.encoded_len() > max {
            return Err(SubmitError::TooLarge {
                size: item.text.len(),
                max: max - ITEM_OVERHEAD,
            });
        }
        if !self.pool.fits(
            &item,
            self.config.max_pending_items,
            self.config.max_pending_bytes,
        ) {
            return Err(SubmitError::PoolFull(self.pool.len()));
        }
        let id = item.id();
        self.pool.claim(id, &self.chain);
        self.pool.insert(item.clone(), true, self.now);
        if self.config.relay_items {
            self.relay_item(&item, None);
        }
        self.finish();
        Ok(id)
    }

    /// The block this peer would mine now: on its tip, carrying pending items up to the limit.
    pub fn block_template(&self, now: Millis) -> Template {
        let tip = self.chain.tip();
        let max = self.config.params.block_data_limit();
        let mut items = Vec::new();
        let mut size = 4;
        for it in self.pool.items() {
            if size + it.encoded_len() > max {
                break;
            }
            size += it.encoded_len();
            items.push(it.clone());
        }
        let difficulty = self
            .config
            .mine_difficulty
            .max(self.config.params.min_difficulty);
        Template::new(tip.header(), tip.hash(), difficulty, now, items)
    }

    /// Handles one input at time `now`; drain [`Peer::poll`] afterwards.
    ///
    /// Time contract: `now` is the driver's monotonic clock and never goes backwards across
    /// calls to `handle`, [`Peer::handle_timeout`] and [`Peer::submit`] (a wall clock that
    /// steps back must be clamped by the driver). Every deadline the peer reports through
    /// [`Peer::poll_timeout`] is on that same clock.
    pub fn handle(&mut self, now: Millis, input: Input) {
        self.now = now;
        match input {
            Input::Connected {
                peer,
                direction,
                addr,
            } => self.on_connected(peer, direction, addr),
            Input::Disconnected { peer } => self.closed(peer, None),
            Input::DialFailed { addr } => self.dial_failed(&addr),
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
            Input::PayloadMissing { block } => self.on_payload_missing(block),
        }
        self.finish();
    }

    /// Runs every timer that is due at `now`. Calling it early is harmless. `now` follows the
    /// contract of [`Peer::handle`].
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = now;
        for id in self.timers.due(now) {
            self.check_timers(id, now);
        }
        self.finish();
    }

    fn on_message(&mut self, peer: ConnId, msg: Message) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.missed_pongs = 0;
        }
        if let Err(e) = msg.check_limits() {
            return self.disconnect(peer, DisconnectReason::Malformed(e));
        }
        let ready = self.conns.get(&peer).is_some_and(Conn::is_ready);
        let left = self.conns.get(&peer).is_some_and(|c| c.left_to_dialler);
        match msg {
            Message::Hello(hello) => {
                if ready || left {
                    return self.violation(peer, Violation::SecondHello);
                }
                self.on_hello(peer, *hello)
            }
            // The dialler may have made it ready before it saw the duplicate: not its fault.
            _ if left => {}
            _ if !ready => self.violation(peer, Violation::MessageBeforeHello),
            Message::Ping { nonce, tip } => self.on_ping(peer, nonce, tip),
            Message::Pong { nonce, tip } => self.on_pong(peer, nonce, tip),
            Message::Inv { hashes } => self.on_inv(peer, &hashes),
            Message::GetBlocks { hashes } => self.on_get_blocks(peer, hashes),
            Message::Block { block } => self.on_block(peer, block),
            Message::NotFound { hashes } => self.on_not_found(peer, &hashes),
            Message::GetChain { locator } => self.on_get_chain(peer, &locator),
            Message::ChainHashes { hashes, tip } => self.on_chain_hashes(peer, hashes, tip),
            Message::Items { items } => self.on_items(peer, items),
            Message::GetAddr => self.on_get_addr(peer),
            Message::Addr { addrs } => self.on_addr(peer, addrs),
            Message::SendCmpct { high_bandwidth } => self.on_send_cmpct(peer, high_bandwidth),
            Message::CmpctBlock(cb) => self.on_cmpct_block(peer, *cb),
            Message::GetCmpct { hash } => self.on_get_cmpct(peer, hash),
            Message::GetBlockItems { hash, indexes } => {
                self.on_get_block_items(peer, hash, indexes)
            }
            Message::BlockItems { hash, items } => self.on_block_items(peer, hash, items),
        }
    }

    fn send(&mut self, to: ConnId, msg: Message) {
        self.out.push_back(Output::Send { to, msg });
    }

    fn event(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    /// Closes a connection: tells the driver, then forgets it.
    fn disconnect(&mut self, peer: ConnId, reason: DisconnectReason) {
        if self.conns.contains_key(&peer) {
            self.closed(peer, Some(&reason));
            self.out.push_back(Output::Disconnect { peer, reason });
        }
    }

    /// A connection is gone (`reason`: we closed it): forgets it, and reschedules the dial of
    /// its address.
    fn closed(&mut self, peer: ConnId, reason: Option<&DisconnectReason>) {
        let Some(c) = self.conns.get(&peer) else {
            return;
        };
        let target = (c.direction == Direction::Outbound)
            .then(|| c.addr.clone())
            .flatten();
        let listen = c.remote.as_ref().and_then(|r| r.listen.clone());
        let ready = c.is_ready();
        self.forget(peer);
        self.dial_closed(target.as_deref(), listen.as_deref(), ready, reason);
    }

    fn violation(&mut self, peer: ConnId, violation: Violation) {
        self.disconnect(peer, DisconnectReason::Protocol(violation));
    }

    /// Adds `points` (see [`penalty`]) to a connection's score; at the ban score it is closed.
    fn misbehaved(&mut self, peer: ConnId, points: u32) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        c.score = c.score.saturating_add(points);
        if c.score >= self.config.disconnect_score {
            let s = c.score;
            self.disconnect(peer, DisconnectReason::Misbehaving(s));
        }
    }

    /// Drops a connection's state; its outstanding requests go to other neighbours.
    fn forget(&mut self, peer: ConnId) {
        let Some(c) = self.conns.remove(&peer) else {
            return;
        };
        self.compact_forget(peer);
        self.timers.remove(peer, &c.timers);
        let dropped: Vec<BlockHash> = c.requests().iter().map(|r| r.hash).collect();
        self.release_requests(peer, &dropped);
        self.refetch(&dropped, None);
        self.sync_all();
    }

    /// Ends every call that mutates: flushes batched announcements and items, settles a tie
    /// that outlived its grace (which may relay, hence the second flush), re-indexes changed
    /// timers, updates the mining job and starts the dials that are due.
    fn finish(&mut self) {
        self.flush_batches();
        self.settle_tie();
        self.flush_batches();
        self.timers.reindex(&mut self.conns, |c| &mut c.timers);
        self.update_mining();
        self.dial_due();
    }

    /// Changes when this peer mines ([`MinePolicy`]); the job follows at once (drain
    /// [`Peer::poll`]). A simulated miner switches from `Always` to `OwnItems` once its run's
    /// block target is reached, say.
    pub fn set_mine_policy(&mut self, now: Millis, policy: MinePolicy) {
        self.now = now;
        self.config.mining = policy;
        self.finish();
    }

    /// The policy in effect.
    pub fn mine_policy(&self) -> MinePolicy {
        self.config.mining
    }

    /// Whether a mining job is out: the last [`Output::Mine`] carried a template.
    pub fn is_mining(&self) -> bool {
        self.mining_on.is_some()
    }

    /// Keeps the mining job in line with the policy: a new template whenever the block to
    /// mine on changed while mining is wanted, a stop once it is not.
    fn update_mining(&mut self) {
        let tip = self.chain.tip().hash();
        let parent = match self.config.mining {
            MinePolicy::Off => None,
            MinePolicy::Always => Some(tip),
            MinePolicy::OwnItems if self.pool.local_len() > 0 => Some(tip),
            MinePolicy::AllItems if !self.pool.is_empty() && self.settled() => Some(tip),
            MinePolicy::OwnItems | MinePolicy::AllItems => self.tie_break_parent(),
        };
        if parent == self.mining_on {
            return;
        }
        self.mining_on = parent;
        let job = parent.map(|_| self.block_template(self.now));
        self.out.push_back(Output::Mine(job));
    }

    /// The template of the current mining job, built afresh at `now` (a simulated miner takes
    /// it when its race fires, as a real miner refreshes its template); `None` when idle.
    pub fn job_template(&self, now: Millis) -> Option<Template> {
        self.mining_on.map(|_| self.block_template(now))
    }

    /// No block is being fetched and no ready neighbour claims more work than our tip: a
    /// block mined now would not land on a tip about to be passed.
    fn settled(&self) -> bool {
        let work = self.chain.tip_work();
        self.requested.is_empty()
            && !self
                .conns
                .values()
                .any(|c| c.is_ready() && c.tip.is_some_and(|t| t.work > work))
    }

    /// Where to mine to break an equal-work tie, if one needs breaking. Fork choice keeps the
    /// first seen, so without another block neither side would move. Holders of the greatest
    /// tip hash in the tie mine on it at once (one side only, so the tie is not recreated); a
    /// peer that knows a greater tip does not mine, and adopts that tip after
    /// [`Config::tie_grace`] ([`Peer::settle_tie`]).
    fn tie_break_parent(&self) -> Option<BlockHash> {
        let ours = self.chain.tip().hash();
        let work = self.chain.tip_work();
        let tied = |h: &BlockHash| self.chain.work_of(h) == Some(work);
        let neighbour = |greater: bool| {
            self.conns.values().any(|c| {
                c.is_ready()
                    && c.tip.is_some_and(|t| {
                        t.work == work && t.hash != ours && (t.hash > ours) == greater
                    })
            })
        };
        if self.rival_above.is_some_and(|r| tied(&r.hash)) || neighbour(true) {
            return None;
        }
        let below = self.rival_below.is_some_and(|r| tied(&r)) || neighbour(false);
        below.then_some(ours)
    }

    /// A tie with a greater tip of the same work still standing [`Config::tie_grace`] after
    /// the later of the tied blocks was mined (its holders hold no hash power, or went away,
    /// or their blocks keep racing on a slow network): we adopt the greatest tip we hold, so
    /// every peer that knows the tie ends on the same tip without another block. Run in
    /// [`Peer::finish`].
    fn settle_tie(&mut self) {
        let Some(above) = self.rival_above else {
            return;
        };
        let work = self.chain.tip_work();
        if self.chain.work_of(&above.hash) != Some(work)
            || self.now < above.since.add(self.config.tie_grace)
        {
            return;
        }
        self.rival_above = None;
        match self.chain.adopt_equal_work(&above.hash) {
            Ok(Some(change)) => {
                let ours = self.chain.tip().clone();
                self.on_tip_change(change);
                // Neighbours on another tip fetch this one (equal work) and settle the same way.
                self.relay_block(&ours, None, false);
            }
            Ok(None) => {}
            Err((hash, reason)) => {
                self.rejected.insert(hash);
                self.event(Event::BlockRejected {
                    hash,
                    from: None,
                    reason,
                });
            }
        }
    }

    /// When a tie we lose is settled by adopting the greater tip ([`Peer::settle_tie`]).
    fn tie_deadline(&self) -> Option<Millis> {
        let r = self.rival_above?;
        let at = r.since.add(self.config.tie_grace);
        (self.chain.work_of(&r.hash) == Some(self.chain.tip_work()) && at > self.now).then_some(at)
    }

    /// Notes a block of the same work as our tip: a tie, on one side or the other.
    pub(super) fn note_rival(&mut self, h: BlockHash) {
        let ours = self.chain.tip().hash();
        let work = self.chain.tip_work();
        let tied = |r: &BlockHash| self.chain.work_of(r) == Some(work);
        let mined_at = |b: &BlockHash| self.chain.get(b).map_or(0, |b| b.header().timestamp_ms);
        let since = Millis(mined_at(&ours).max(mined_at(&h)));
        if h < ours {
            if self.rival_below.is_none_or(|r| h < r || !tied(&r)) {
                self.rival_below = Some(h);
            }
        } else if h > ours {
            self.rival_above = match self.rival_above {
                Some(r) if tied(&r.hash) => Some(Rival {
                    hash: r.hash.max(h),
                    since: r.since.max(since),
                }),
                _ => Some(Rival { hash: h, since }),
            };
        }
    }

    /// Approximate heap bytes this peer spends beyond the shared block bodies: the chain's
    /// bookkeeping plus per-connection relay state. Used to check the per-block memory budget.
    pub fn bookkeeping_bytes(&self) -> usize {
        let per_conn: usize = self.conns.values().map(Conn::bookkeeping_bytes).sum();
        self.chain.bookkeeping_bytes() + per_conn + self.pool.bytes()
    }

    /// Sends the pending pool to a neighbour in frame-sized `items` messages.
    fn send_pool(&mut self, peer: ConnId) {
        let items: Vec<Item> = self.pool.items().cloned().collect();
        if let Some(c) = self.conns.get_mut(&peer) {
            for it in &items {
                c.known_items.insert(&it.id());
            }
        }
        for items in item_batches(&items) {
            self.send(peer, Message::Items { items });
        }
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
            LoadPurpose::Serve(peer) => self.serve_loaded(peer, good, missing),
            LoadPurpose::Requeue => {
                let items: Vec<Item> = good.iter().flat_map(|b| b.items()).cloned().collect();
                self.requeue(items);
            }
        }
    }
}
