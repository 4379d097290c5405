//! The registry of open connections: for each [`ConnId`] the queue to its writer task, its
//! tasks, and what the node shows about it (log label, direction, handshake state).
//!
//! The core holds the protocol state of a connection; this holds only what moving its bytes
//! and naming it in logs need. Ids are handed out in increasing order and never reused, so the
//! smallest id is the oldest connection.

use crate::conn::Traffic;
use rantai_core::{ConnId, Direction, Message};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// One open connection.
pub(crate) struct Conn {
    /// The writer task's bounded queue.
    pub(crate) tx: mpsc::Sender<Message>,
    /// How logs name the peer: the socket or dialled address, then the address it listens on.
    pub(crate) label: String,
    pub(crate) direction: Direction,
    /// The address the remote advertised in its handshake.
    pub(crate) listen: Option<String>,
    pub(crate) ready: bool,
    /// Highest block received from this peer (its claimed tip is only refreshed by pings).
    pub(crate) best_seen: u64,
    /// Reader and writer tasks, stopped when the connection is forgotten.
    pub(crate) tasks: [AbortHandle; 2],
    /// Bytes and messages each way, counted by those tasks.
    pub(crate) traffic: Arc<Traffic>,
}

impl Conn {
    /// A connection just opened, before its handshake.
    pub(crate) fn new(
        tx: mpsc::Sender<Message>,
        label: String,
        direction: Direction,
        tasks: [AbortHandle; 2],
        traffic: Arc<Traffic>,
    ) -> Conn {
        Conn {
            tx,
            label,
            direction,
            listen: None,
            ready: false,
            best_seen: 0,
            tasks,
            traffic,
        }
    }

    fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Open connections by id.
#[derive(Default)]
pub(crate) struct Conns {
    map: HashMap<ConnId, Conn>,
    last_id: u64,
}

impl Conns {
    /// A fresh id for a new connection.
    pub(crate) fn next_id(&mut self) -> ConnId {
        self.last_id += 1;
        ConnId(self.last_id)
    }

    pub(crate) fn insert(&mut self, id: ConnId, conn: Conn) {
        self.map.insert(id, conn);
    }

    /// Forgets a connection and stops its tasks.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let c = self.map.remove(&id)?;
        c.abort();
        Some(c)
    }

    /// Stops every connection's tasks and forgets them all (at shutdown).
    pub(crate) fn clear(&mut self) {
        for (_, c) in self.map.drain() {
            c.abort();
        }
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.map.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.map.get_mut(&id)
    }

    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.map.contains_key(&id)
    }

    /// How logs name `id`: its label, or the bare id once it is gone.
    pub(crate) fn label(&self, id: ConnId) -> String {
        self.map
            .get(&id)
            .map_or_else(|| id.to_string(), |c| c.label.clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn ready_count(&self) -> usize {
        self.map.values().filter(|c| c.ready).count()
    }
}
