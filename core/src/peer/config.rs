//! Tunables of the peer protocol ([`Config`], [`RelayPolicy`]), its fixed limits and the
//! misbehaviour scores in [`penalty`]. Consensus rules live in [`Params`], not here.

use crate::chain::OrphanLimits;
use crate::params::Params;
use crate::types::Millis;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// How new blocks travel to neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayPolicy {
    /// Send the hash; the neighbour requests the block if it lacks it (Bitcoin's inv/getdata).
    Announce,
    /// Send the whole block at once: lower latency, redundant bytes.
    Push,
    /// Compact blocks (BIP 152): up to three neighbours that recently delivered blocks first
    /// are asked to push new blocks as compact blocks at once (high bandwidth); others
    /// announce, and the block is then asked for as a compact block (low bandwidth). Either
    /// way the receiver rebuilds it from its pending pool and asks only for what it lacks.
    Compact,
}

impl RelayPolicy {
    /// The name used in configuration files and on command lines (`announce`, `push`,
    /// `compact`).
    pub fn as_str(self) -> &'static str {
        match self {
            RelayPolicy::Announce => "announce",
            RelayPolicy::Push => "push",
            RelayPolicy::Compact => "compact",
        }
    }
}

impl fmt::Display for RelayPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A relay policy name that is not `announce`, `push` or `compact`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `announce`, `push` or `compact`, got `{0}`")]
pub struct ParseRelayPolicyError(pub String);

impl FromStr for RelayPolicy {
    type Err = ParseRelayPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "announce" => Ok(RelayPolicy::Announce),
            "push" => Ok(RelayPolicy::Push),
            "compact" => Ok(RelayPolicy::Compact),
            _ => Err(ParseRelayPolicyError(s.to_string())),
        }
    }
}

/// When a peer asks its driver to mine ([`Output::Mine`](super::Output::Mine)). Every policy
/// but `Off` also breaks equal-work ties: the side whose tip has the greater hash mines one
/// more block (one side only, so the tie is not recreated); a tie still standing after
/// [`Config::tie_grace`] is settled by adopting the greater tip, policy or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MinePolicy {
    /// Never mines: a relay-only peer.
    Off,
    /// Mines while items submitted here are pending (a node whose users type lines).
    OwnItems,
    /// Mines while any item is pending, unless a neighbour claims a heavier chain or blocks
    /// are being fetched: several miners share these items, and mining them on a stale tip
    /// would only add forks.
    AllItems,
    /// Always has a job on the current tip: a miner holding a share of a network's hash power.
    Always,
}

impl MinePolicy {
    /// The name used in configuration files and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MinePolicy::Off => "off",
            MinePolicy::OwnItems => "own-items",
            MinePolicy::AllItems => "all-items",
            MinePolicy::Always => "always",
        }
    }
}

impl fmt::Display for MinePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mining policy name that is not one of `off`, `own-items`, `all-items`, `always`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `off`, `own-items`, `all-items` or `always`, got `{0}`")]
pub struct ParseMinePolicyError(pub String);

impl FromStr for MinePolicy {
    type Err = ParseMinePolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            MinePolicy::Off,
            MinePolicy::OwnItems,
            MinePolicy::AllItems,
            MinePolicy::Always,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| ParseMinePolicyError(s.to_string()))
    }
}

/// Tunables of the peer protocol. Consensus rules live in [`Params`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The network's consensus rules (genesis, minimum difficulty, block size).
    pub params: Arc<Params>,
    /// How new blocks travel to neighbours.
    pub relay: RelayPolicy,
    /// Difficulty of blocks this peer mines (raised to the network minimum if below).
    pub mine_difficulty: u32,
    /// When to ask the driver to mine ([`MinePolicy`]).
    pub mining: MinePolicy,
    /// How long after the later of two tied blocks was mined (their timestamps) a peer on
    /// the losing side of an equal-work tie waits for the winning side to break it before it
    /// adopts the winning tip itself.
    pub tie_grace: Millis,
    /// Gossip pending items to neighbours so any miner can include them.
    pub relay_items: bool,
    /// Most outbound connections (open or being dialled, configured peers included) before
    /// learned addresses wait; configured peers are dialled regardless.
    pub max_outbound: usize,
    /// Most inbound connections; at the limit a newcomer evicts the oldest inbound peer still in
    /// its handshake, or is refused.
    pub max_inbound: usize,
    /// Base of the re-dial backoff: after `n` failures in a row an address waits
    /// `min(base * 2^n, dial_retry_max)`, jittered to 50-100% of it.
    pub dial_retry_base: Millis,
    /// Longest delay between dials of one address.
    pub dial_retry_max: Millis,
    /// Address advertised in `Hello` so others can dial back.
    pub listen_addr: Option<String>,
    /// How long a new connection may take to complete the handshake.
    pub handshake_timeout: Millis,
    /// Keepalive period; `None` disables pings.
    pub ping_interval: Option<Millis>,
    /// How long a keepalive ping may go unanswered before it counts as missed.
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
    /// Blocks requested from one connection at a time.
    pub max_in_flight_per_peer: usize,
    /// Announced hashes queued for request per connection.
    pub max_fetch_queue: usize,
    /// Hashes per catch-up batch.
    pub sync_batch: usize,
    /// Items in the pending pool (half of it is open to items from neighbours).
    pub max_pending_items: usize,
    /// Encoded bytes of the items in the pending pool (half of it open to neighbours' items).
    pub max_pending_bytes: usize,
    /// Dialable addresses remembered.
    pub max_known_addrs: usize,
    /// Misbehaviour score at which a peer is disconnected (see [`penalty`]).
    pub disconnect_score: u32,
    /// Bounds of the chain's pool of blocks with unknown parents.
    pub orphan_limits: OrphanLimits,
    /// Keep block bodies in memory only for blocks less than this many heights below the tip
    /// ([`Chain::set_body_cache`](crate::Chain::set_body_cache)); older bodies are asked of
    /// the driver with [`Output::LoadBlocks`](super::Output::LoadBlocks). `None` (the
    /// default) keeps every body: a driver without a store (in memory, the simulator, test
    /// harnesses) must leave it so, and then never sees `LoadBlocks`.
    pub body_cache_blocks: Option<u64>,
}

impl Config {
    /// Defaults suited to a real node on `params`' network.
    pub fn new(params: Params) -> Config {
        Config {
            mine_difficulty: params.min_difficulty,
            params: Arc::new(params),
            relay: RelayPolicy::Announce,
            mining: MinePolicy::Off,
            tie_grace: Millis::from_secs(30),
            relay_items: false,
            listen_addr: None,
            max_outbound: 8,
            max_inbound: 64,
            dial_retry_base: Millis(250),
            dial_retry_max: Millis::from_secs(30),
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
            max_known_addrs: 1000,
            disconnect_score: 100,
            orphan_limits: OrphanLimits::default(),
            body_cache_blocks: None,
        }
    }
}

/// Every setting of a [`Config`] as plain values, for reports and status pages: what a run or
/// a node actually used, so two configurations can be compared key by key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// [`Params::network`].
    pub network: String,
    /// [`Params::min_difficulty`].
    pub min_difficulty: u32,
    /// [`Params::block_data_limit`].
    pub block_data_limit_bytes: usize,
    /// [`Params::max_future_ms`].
    pub max_future_ms: u64,
    /// [`Config::relay`] (`announce` or `push`).
    pub relay: String,
    /// [`Config::mine_difficulty`].
    pub mine_difficulty: u32,
    /// [`Config::mining`] (`off`, `own-items`, `all-items` or `always`).
    pub mining: String,
    /// [`Config::tie_grace`].
    pub tie_grace_ms: u64,
    /// [`Config::relay_items`].
    pub relay_items: bool,
    /// [`Config::max_outbound`].
    pub max_outbound: usize,
    /// [`Config::max_inbound`]; `None` when unlimited (`usize::MAX`, as the simulator runs:
    /// the number itself would not survive a JavaScript reader).
    pub max_inbound: Option<usize>,
    /// [`Config::dial_retry_base`].
    pub dial_retry_base_ms: u64,
    /// [`Config::dial_retry_max`].
    pub dial_retry_max_ms: u64,
    /// [`Config::handshake_timeout`].
    pub handshake_timeout_ms: u64,
    /// [`Config::ping_interval`]; `None`: no keepalive pings.
    pub ping_interval_ms: Option<u64>,
    /// [`Config::pong_timeout`].
    pub pong_timeout_ms: u64,
    /// [`Config::request_timeout`].
    pub request_timeout_ms: u64,
    /// [`Config::max_strikes`].
    pub max_strikes: u32,
    /// [`Config::probe_delay`].
    pub probe_delay_ms: u64,
    /// [`Config::max_request_retries`].
    pub max_request_retries: u32,
    /// [`Config::max_in_flight_per_peer`].
    pub max_in_flight_per_peer: usize,
    /// [`Config::max_fetch_queue`].
    pub max_fetch_queue: usize,
    /// [`Config::sync_batch`].
    pub sync_batch: usize,
    /// [`Config::max_pending_items`].
    pub max_pending_items: usize,
    /// [`Config::max_pending_bytes`].
    pub max_pending_bytes: usize,
    /// [`Config::max_known_addrs`].
    pub max_known_addrs: usize,
    /// [`Config::disconnect_score`].
    pub disconnect_score: u32,
    /// [`OrphanLimits::max_blocks`].
    pub orphan_max_blocks: usize,
    /// [`OrphanLimits::max_bytes`].
    pub orphan_max_bytes: usize,
    /// [`Config::body_cache_blocks`]; `None`: every body is kept.
    pub body_cache_blocks: Option<u64>,
}

impl Config {
    /// Every setting in effect, as plain values ([`ConfigSummary`]).
    pub fn summary(&self) -> ConfigSummary {
        let p = &self.params;
        ConfigSummary {
            network: p.network.clone(),
            min_difficulty: p.min_difficulty,
            block_data_limit_bytes: p.block_data_limit(),
            max_future_ms: p.max_future_ms,
            relay: self.relay.as_str().to_string(),
            mine_difficulty: self.mine_difficulty.max(p.min_difficulty),
            mining: self.mining.as_str().to_string(),
            tie_grace_ms: self.tie_grace.0,
            relay_items: self.relay_items,
            max_outbound: self.max_outbound,
            max_inbound: (self.max_inbound != usize::MAX).then_some(self.max_inbound),
            dial_retry_base_ms: self.dial_retry_base.0,
            dial_retry_max_ms: self.dial_retry_max.0,
            handshake_timeout_ms: self.handshake_timeout.0,
            ping_interval_ms: self.ping_interval.map(|t| t.0),
            pong_timeout_ms: self.pong_timeout.0,
            request_timeout_ms: self.request_timeout.0,
            max_strikes: self.max_strikes,
            probe_delay_ms: self.probe_delay.0,
            max_request_retries: self.max_request_retries,
            max_in_flight_per_peer: self.max_in_flight_per_peer,
            max_fetch_queue: self.max_fetch_queue,
            sync_batch: self.sync_batch,
            max_pending_items: self.max_pending_items,
            max_pending_bytes: self.max_pending_bytes,
            max_known_addrs: self.max_known_addrs,
            disconnect_score: self.disconnect_score,
            orphan_max_blocks: self.orphan_limits.max_blocks,
            orphan_max_bytes: self.orphan_limits.max_bytes,
            body_cache_blocks: self.body_cache_blocks,
        }
    }
}

/// Unanswered pings in a row after which a connection is considered dead.
pub const MAX_MISSED_PONGS: u32 = 3;

/// Most hashes one `get_blocks` may ask for; honest peers ask for at most their in-flight limit.
pub const MAX_GET_BLOCKS: usize = 128;

/// Unanswered loss probes double the wait for the next one up to `2 << 2` = 8 probe delays.
pub(super) const MAX_PROBE_BACKOFF_SHIFT: u32 = 2;

/// How many rejected block hashes are remembered.
pub(super) const MAX_REJECTED: usize = 1024;

/// Unrequested blocks this many minimum-difficulty blocks' worth of work below our tip are
/// dropped unstored: cheap side branches must not fill memory. Catch-up (requested) is exempt.
pub(super) const STALE_MARGIN_BLOCKS: u128 = 6;

/// Items submitted here are remembered as ours until buried this many blocks deep in the best
/// chain. Ownership matters only when a reorg puts an item back in the pool: an item forgotten
/// here still goes back after a deeper reorg, only as a neighbour's item (mined, but it no
/// longer starts [`MinePolicy::OwnItems`] mining by itself, and it counts against the remote half of the pool).
pub(super) const OWN_ITEM_DEPTH_BLOCKS: u64 = 1000;

/// The remembered own items are swept for buried ones once they reach this count (and then
/// again each time their count doubles), so the sweep costs O(1) per submission.
pub(super) const OWN_ITEMS_SWEEP_MIN: usize = 1024;

/// Misbehaviour points per offence. A connection whose score reaches [`Config::disconnect_score`] is
/// disconnected; every block it delivers that we accept takes [`GOOD_BLOCK_CREDIT`] off.
///
/// [`GOOD_BLOCK_CREDIT`]: penalty::GOOD_BLOCK_CREDIT
pub mod penalty {
    /// `not_found` for a block we requested from that peer: announcing and then not serving
    /// wastes our requests.
    pub const NOT_FOUND_REQUESTED: u32 = 10;
    /// `not_found` for blocks we never asked that peer for.
    pub const NOT_FOUND_UNREQUESTED: u32 = 20;
    /// More announced hashes than the fetch queue holds.
    pub const FETCH_QUEUE_OVERFLOW: u32 = 5;
    /// One `get_blocks` naming a block twice: it only multiplies our upload.
    pub const DUPLICATE_REQUEST: u32 = 20;
    /// A second `get_addr` on one connection.
    pub const REPEATED_GET_ADDR: u32 = 20;
    /// An `addr` we did not ask for: unsolicited lists could fill the book with junk.
    pub const UNSOLICITED_ADDR: u32 = 10;
    /// `chain_hashes` with no catch-up request outstanding.
    pub const UNSOLICITED_CHAIN_HASHES: u32 = 2;
    /// An unrequested block we already hold (announce relay): usually a block re-requested
    /// elsewhere after a timeout, arriving late.
    pub const REDUNDANT_BLOCK: u32 = 2;
    /// An unrequested block well below our tip's work: a cheap side branch.
    pub const STALE_BLOCK: u32 = 2;
    /// A block timestamped too far ahead: clock skew, not malice.
    pub const FUTURE_BLOCK: u32 = 5;
    /// A block on an invalid parent: the sender may not have seen what made it invalid.
    pub const INVALID_PARENT: u32 = 20;
    /// With announce relay, an unrequested block that does not extend our best chain: honest
    /// announce peers never send one.
    pub const UNREQUESTED_SIDE_BLOCK: u32 = 10;
    /// With push relay, a pushed block that does not extend our best chain: honest push peers
    /// send one only in a fork race.
    pub const PUSHED_SIDE_BLOCK: u32 = 1;
    /// An item too large for any block.
    pub const OVERSIZED_ITEM: u32 = 20;
    /// `block_items` for a block we are not rebuilding from that peer.
    pub const UNREQUESTED_BLOCK_ITEMS: u32 = 10;
    /// `block_items` with more or fewer items than were asked for.
    pub const WRONG_BLOCK_ITEMS: u32 = 20;
    /// `get_block_items` naming positions out of order or past the block's end.
    pub const BAD_ITEM_POSITIONS: u32 = 20;
    /// Taken off the score for each block the peer delivers that we accept.
    pub const GOOD_BLOCK_CREDIT: u32 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_policy_names_round_trip() {
        for p in [
            RelayPolicy::Announce,
            RelayPolicy::Push,
            RelayPolicy::Compact,
        ] {
            assert_eq!(p.to_string().parse::<RelayPolicy>(), Ok(p));
        }
        let err = "gossip".parse::<RelayPolicy>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected `announce`, `push` or `compact`, got `gossip`"
        );
    }
}
