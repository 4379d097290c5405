//! rantai-node: the real TCP node. It drives the sans-IO [`rantai_core::Peer`] over tokio TCP,
//! keeps the chain in a crash-safe redb store, and serves a small HTTP status API.
//!
//! Shape (after mini-redis): [`run`] / [`spawn`] take an already-bound listener, so tests bind
//! `127.0.0.1:0`. One driver task owns the peer; connection tasks, the store thread, the miner
//! and the HTTP handlers talk to it over bounded channels.

mod answer;
pub mod api;
mod clock;
pub mod conn;
mod conns;
mod driver;
pub mod http;
pub mod lines;
pub mod listener;
mod loads;
pub mod metrics;
mod mining;
mod options;
mod server;
pub mod store;
#[cfg(target_os = "linux")]
pub mod testbed;

pub use api::{
    Accepted, BlockPage, BlockView, ItemStatus, NodeClient, PeerStatus, Status, Stopped, Submitted,
    TipView, Tips, MAX_ACCEPTED_LOG,
};
pub use clock::unix_now;
pub use options::NodeOptions;
pub use server::{run, spawn, NodeError, NodeHandle};
