//! One connection's protocol state: handshake result, relay batch, fetch queues, requests in
//! flight, keepalive and loss-probe bookkeeping, and its [`TimerTable`].

use super::io::{Direction, PeerSummary};
use super::outbox::{spilled_bytes, Batch};
use super::table::{KnownItems, KnownSet};
use super::timers::{Timer, TimerIndex, TimerTable};
use crate::message::Tip;
use crate::types::{BlockHash, ConnId, Millis};
use smallvec::SmallVec;

/// One connection's protocol state. `repr(C)` fixes the field order so the fields on the
/// per-message paths share cache lines: relaying a block to a neighbour touches the first
/// two lines and one line of `known`; handling an announcement of a block already requested
/// or held, the second line and one line of `known`. The rest is read on requests,
/// handshakes, timers and catch-up.
#[repr(C, align(64))]
pub(super) struct Conn {
    // Line 0: what a relay queues and `finish` flushes.
    pub(super) batch: Batch,
    // Line 1.
    pub(super) remote: Option<Remote>,
    /// Unanswered keepalive pings in a row; any message resets it.
    pub(super) missed_pongs: u32,
    /// Misbehaviour score (see [`super::penalty`]).
    pub(super) score: u32,
    pub(super) direction: Direction,
    pub(super) answered_getaddr: bool,
    /// We sent `get_addr` and accept one `addr` in reply.
    pub(super) asked_addr: bool,
    /// Its `hello` showed a duplicate (or ourselves) that the other end dialled and is to
    /// close: never made ready, and what else arrives on it meanwhile is dropped quietly.
    pub(super) left_to_dialler: bool,
    /// The remote asked us (`send_cmpct`) to push new blocks to it as compact blocks at once.
    pub(super) cmpct_hb: bool,
    /// Requests in a row that stalled; a delivered block resets it.
    pub(super) strikes: u32,
    /// Announced hashes to request, oldest first (its length lies in line 1).
    pub(super) to_fetch: SmallVec<[BlockHash; 1]>,
    /// When the connection opened.
    pub(super) since: Millis,
    /// Blocks requested from this peer, in request order. Private: every change goes
    /// through [`Conn::edit_requests`], which keeps [`Timer::Requests`] in step.
    in_flight: SmallVec<[Req; 1]>,
    pub(super) known: KnownSet,
    /// Pending items this neighbour holds (sent either way); compact blocks prefill the rest.
    pub(super) known_items: KnownItems,
    // Cold.
    pub(super) timers: TimerTable,
    pub(super) tip: Option<Tip>,
    /// Nonce of the outstanding keepalive ping. Private: set and cleared together with
    /// [`Timer::Pong`] by [`Conn::ping_sent`] and [`Conn::ping_ended`].
    ping_nonce: Option<u64>,
    pub(super) addr: Option<String>,
    /// Last hash of the peer's most recent catch-up batch, to resume from.
    pub(super) sync_cursor: Option<BlockHash>,
    /// The peer's tip when a catch-up round last brought nothing new.
    pub(super) synced_to: Option<BlockHash>,
    /// Numbers our requests and pings in send order (see [`Req::seq`]).
    pub(super) sent_seq: u64,
    /// `sent_seq` of the outstanding `GetChain`, and how often it was re-sent.
    pub(super) chain_seq: u64,
    pub(super) chain_retries: u32,
    /// `sent_seq` of the outstanding keepalive ping.
    pub(super) ping_seq: u64,
    /// Outstanding loss probe (its re-probe deadline is [`Timer::Probe`]).
    pub(super) probe: Option<Probe>,
    /// Probes in a row that went unanswered (each doubles the wait for the next).
    pub(super) probe_misses: u32,
    /// Smoothed ping round trip, once one was measured.
    pub(super) srtt: Option<Millis>,
    /// The last keepalive ping's round trip (shown to drivers; decides nothing).
    pub(super) last_rtt: Option<Millis>,
    /// Pending-pool sequence number of the last stale item re-sent on this connection.
    pub(super) item_cursor: u64,
}

/// One block requested from a connection.
#[derive(Clone, Copy)]
pub(super) struct Req {
    pub(super) hash: BlockHash,
    /// Hard deadline: past it the peer counts as stalling.
    pub(super) deadline: Millis,
    /// The connection's `sent_seq` when the request was (last) sent. A peer answers every
    /// request, and connections are ordered streams, so a pong to a ping sent later than the
    /// request, arriving while the request is unanswered, proves the request or its answer lost.
    pub(super) seq: u64,
    /// Times it was re-sent after such a proof.
    pub(super) retries: u32,
}

/// An outstanding loss probe: a ping sent to learn whether requests were lost.
#[derive(Clone, Copy)]
pub(super) struct Probe {
    pub(super) nonce: u64,
    /// The connection's `sent_seq` when it was sent.
    pub(super) seq: u64,
    pub(super) sent_at: Millis,
}

/// What the handshake told us about the remote.
pub(super) struct Remote {
    pub(super) node_id: u64,
    pub(super) listen: Option<String>,
}

impl Conn {
    /// A connection that has just opened, with no timer running yet.
    pub(super) fn new(direction: Direction, addr: Option<String>, now: Millis) -> Conn {
        Conn {
            batch: Batch::default(),
            remote: None,
            missed_pongs: 0,
            score: 0,
            direction,
            answered_getaddr: false,
            cmpct_hb: false,
            asked_addr: false,
            left_to_dialler: false,
            strikes: 0,
            to_fetch: SmallVec::new(),
            since: now,
            in_flight: SmallVec::new(),
            known: KnownSet::default(),
            known_items: KnownItems::default(),
            timers: TimerTable::default(),
            tip: None,
            ping_nonce: None,
            addr,
            sync_cursor: None,
            synced_to: None,
            sent_seq: 0,
            chain_seq: 0,
            chain_retries: 0,
            ping_seq: 0,
            probe: None,
            probe_misses: 0,
            srtt: None,
            last_rtt: None,
            item_cursor: 0,
        }
    }

    /// Whether the handshake is complete.
    #[inline]
    pub(super) fn is_ready(&self) -> bool {
        self.remote.is_some()
    }

    /// Nonce of the outstanding keepalive ping.
    #[inline]
    pub(super) fn outstanding_ping(&self) -> Option<u64> {
        self.ping_nonce
    }

    /// Records a keepalive ping sent with `nonce` that must be answered by `pong_by`.
    pub(super) fn ping_sent(
        &mut self,
        id: ConnId,
        timers: &mut TimerIndex,
        nonce: u64,
        pong_by: Millis,
    ) {
        self.ping_nonce = Some(nonce);
        timers.set(id, &mut self.timers, Timer::Pong, Some(pong_by));
    }

    /// Ends the outstanding keepalive ping (answered or missed); returns its pong deadline.
    pub(super) fn ping_ended(&mut self, id: ConnId, timers: &mut TimerIndex) -> Option<Millis> {
        self.ping_nonce = None;
        let pong_by = self.timers.get(Timer::Pong);
        timers.set(id, &mut self.timers, Timer::Pong, None);
        pong_by
    }

    /// Whether a `get_chain` is outstanding.
    #[inline]
    pub(super) fn chain_requested(&self) -> bool {
        self.timers.is_set(Timer::Chain)
    }

    /// Blocks requested from this connection (`id`), in request order.
    #[inline]
    pub(super) fn requests(&self) -> &[Req] {
        &self.in_flight
    }

    /// Changes the blocks requested from this connection (`id`), then restarts its
    /// [`Timer::Requests`] from the first request's deadline.
    pub(super) fn edit_requests<R>(
        &mut self,
        id: ConnId,
        timers: &mut TimerIndex,
        edit: impl FnOnce(&mut SmallVec<[Req; 1]>) -> R,
    ) -> R {
        let result = edit(&mut self.in_flight);
        let first = self.in_flight.first().map(|r| r.deadline);
        timers.set(id, &mut self.timers, Timer::Requests, first);
        result
    }

    /// How long a request may be unanswered before probing: `configured`, or twice the
    /// measured round trip on slow paths.
    pub(super) fn probe_delay(&self, configured: Millis) -> Millis {
        let rtt2 = self
            .srtt
            .map_or(Millis::ZERO, |r| Millis(r.0.saturating_mul(2)));
        configured.max(rtt2)
    }

    /// Folds one ping round trip into the smoothed estimate.
    pub(super) fn sample_rtt(&mut self, rtt: Millis) {
        self.last_rtt = Some(rtt);
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => Millis((s.0 * 7 + rtt.0) / 8),
        });
    }

    /// Learns that the remote has `tip`.
    pub(super) fn set_tip(&mut self, tip: Tip) {
        self.known.insert(&tip.hash);
        self.tip = Some(tip);
    }

    /// The connection as shown to drivers.
    pub(super) fn summary(&self, peer: ConnId) -> PeerSummary {
        PeerSummary {
            peer,
            direction: self.direction,
            addr: self.addr.clone(),
            ready: self.is_ready(),
            node_id: self.remote.as_ref().map(|r| r.node_id),
            listen: self.remote.as_ref().and_then(|r| r.listen.clone()),
            tip: self.tip,
            since: self.since,
            ping_rtt: self.last_rtt,
            smoothed_rtt: self.srtt,
        }
    }

    /// Bytes this connection takes, its own size plus spilled lists.
    pub(super) fn bookkeeping_bytes(&self) -> usize {
        std::mem::size_of::<Conn>()
            + spilled_bytes(&self.in_flight)
            + spilled_bytes(&self.to_fetch)
            + self.batch.spilled_bytes()
            + self.known_items.bytes()
    }
}
