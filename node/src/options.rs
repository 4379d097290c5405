//! What configures one node: the core's protocol [`Config`] plus what only a TCP node has
//! (peers to dial, connection limits, socket timeouts, the data directory).
//!
//! [`NodeOptions::default`] is the one place that sets the real node's defaults; the binary's
//! flags default to its values.

use rantai_core::{Config, Millis, Params};
use std::path::PathBuf;
use std::time::Duration;

/// Everything that configures one node. [`NodeOptions::default`] is the real node's setup.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The protocol: network parameters, relay policy, difficulty of blocks mined here
    /// (`mine_difficulty`, raised to the network minimum) and timers. Pings carry each side's
    /// tip, which is how the core settles equal-work ties, so keep `ping_interval` short.
    /// `mining` must not be `Off` for submitted items to be mined here (the default is
    /// `OwnItems`).
    /// [`crate::spawn`] sets `listen_addr` (from [`NodeOptions::advertise`]) and
    /// `body_cache_blocks` (from [`NodeOptions::body_cache_blocks`]) itself.
    pub config: Config,
    /// Peers to dial and keep dialling ([`rantai_core::Peer::add_peer`]; whom else to dial,
    /// when, and how many: `config.max_outbound`, `max_inbound`, `dial_retry_base`,
    /// `dial_retry_max`).
    pub peers: Vec<String>,
    pub data_dir: Option<PathBuf>,
    /// Address advertised to peers; `None` advertises the listener's address unless it is a
    /// wildcard address.
    pub advertise: Option<String>,
    /// Whether to accept inbound connections. `false` (the binary's `--connect` without
    /// `--listen`) closes the listener at start and advertises no address.
    pub accept_inbound: bool,
    pub connect_timeout: Duration,
    /// A write to a peer blocked this long closes the connection.
    pub write_timeout: Duration,
    /// Messages queued per connection before the peer counts as too slow and is dropped.
    pub send_queue: usize,
    /// With a data directory, block bodies stay in memory only for blocks less than this many
    /// heights below the tip; older ones are read from the store when a peer or the API asks.
    /// Without a data directory every body stays in memory (there is nowhere else to keep it).
    pub body_cache_blocks: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        let mut config = Config::new(Params::main());
        // A node mines the lines typed into it and keepalives are short, so equal-work ties
        // settle within seconds. Blocks are announced (core's default relay policy).
        config.mining = rantai_core::MinePolicy::OwnItems;
        config.mine_difficulty = 16;
        config.handshake_timeout = Millis::from_secs(10);
        config.ping_interval = Some(Millis::from_secs(5));
        config.pong_timeout = Millis::from_secs(10);
        config.request_timeout = Millis::from_secs(10);
        NodeOptions {
            config,
            peers: Vec::new(),
            data_dir: None,
            advertise: None,
            accept_inbound: true,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(20),
            send_queue: 4096,
            body_cache_blocks: 64,
        }
    }
}
