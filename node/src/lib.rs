//! rantai-node: the real TCP node. It drives the sans-IO [`rantai_core::Peer`] over tokio TCP,
//! keeps the chain in a crash-safe redb store, and serves a small HTTP status API.
//!
//! Shape (after mini-redis): [`run`] / [`spawn`] take an already-bound listener, so tests bind
//! `127.0.0.1:0`. One driver task owns the peer; connection tasks, the store thread, the miner
//! and the HTTP handlers talk to it over bounded channels.

pub mod api;
pub mod conn;
pub mod dialer;
pub mod driver;
pub mod http;
pub mod lines;
pub mod listener;
pub mod metrics;
pub mod store;

pub use api::{BlockPage, BlockView, NodeClient, PeerStatus, Status, Stopped};
pub use driver::{run, spawn, unix_now, NodeError, NodeHandle, NodeOptions};
