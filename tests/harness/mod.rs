//! In-memory network of sans-IO peers with virtual time, in the spirit of quinn-proto's `Pair`.
//!
//! Messages travel through a time-ordered queue with a fixed latency; the clock jumps to the next
//! delivery or timer. No sockets, threads or wall clock: a test reads as a story and always
//! replays the same way.

#![allow(dead_code)]

use rantai_core::{
    Block, BlockHash, Config, ConnId, Direction, Event, Input, LoadPurpose, Message, Millis,
    Output, Params, Peer, Template,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

enum Delivery {
    Msg {
        node: usize,
        conn: ConnId,
        msg: Message,
    },
    Closed {
        node: usize,
        conn: ConnId,
    },
    Mined {
        node: usize,
        block: Block,
        job: u64,
    },
    /// An `Output::Dial`: connects to the peer whose `listen_addr` is `addr`, or fails.
    Dial {
        node: usize,
        addr: String,
    },
    /// A store read asked for with `Output::LoadBlocks`, answered from the node's disk.
    Load {
        node: usize,
        hashes: Vec<BlockHash>,
        purpose: LoadPurpose,
    },
}

/// N peers, their links and a virtual clock.
pub struct Net {
    pub now: Millis,
    pub peers: Vec<Peer>,
    pub latency: Millis,
    /// Events seen per node, in order.
    pub events: Vec<Vec<(Millis, Event)>>,
    /// (node, conn) -> (other node, other conn)
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    /// Directed (from, to) node pairs whose messages are dropped.
    cut: BTreeSet<(usize, usize)>,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    payloads: BTreeMap<u64, Delivery>,
    seq: u64,
    next_conn: u64,
    mining_job: Vec<u64>,
    /// Each peer's `poll_timeout()`, refreshed whenever the peer was driven.
    timeouts: Vec<Option<Millis>>,
    /// Messages sent, by kind.
    pub sent: BTreeMap<&'static str, u64>,
    pub disconnects: Vec<(usize, rantai_core::DisconnectReason)>,
    /// `(from node, message kind, how many)`: the next messages of that kind the node sends
    /// are lost (counted in `sent`, never delivered).
    pub lose: Vec<(usize, &'static str, u32)>,
    /// Every block accepted by a node that has a body cache: its store.
    pub disks: Vec<BTreeMap<BlockHash, Arc<Block>>>,
    /// Store reads asked for: (node, purpose, number of blocks).
    pub loads: Vec<(usize, LoadPurpose, usize)>,
    /// With `record` set, every message sent (lost or not): (when, from node, its conn, message).
    pub record: bool,
    pub outbox: Vec<(Millis, usize, ConnId, Message)>,
    /// Every block mined (jobs and [`Net::mine`]): (node, hash), in order.
    pub mined: Vec<(usize, BlockHash)>,
    /// Every `Output::Dial`: (when, node, address), in order.
    pub dials: Vec<(Millis, usize, String)>,
    /// Addresses whose dials fail even though a peer listens there.
    pub unreachable: BTreeSet<String>,
}

/// Test configuration on the zero-difficulty dev network with short timeouts.
pub fn config() -> Config {
    let mut c = Config::new(Params::dev());
    c.ping_interval = Some(Millis::from_secs(5));
    c.pong_timeout = Millis::from_secs(3);
    c.request_timeout = Millis::from_secs(2);
    c.handshake_timeout = Millis::from_secs(2);
    c
}

impl Net {
    pub fn new(n: usize, cfg: impl Fn(usize) -> Config) -> Net {
        Net {
            now: Millis(1_000),
            peers: (0..n).map(|i| Peer::new(cfg(i), 1000 + i as u64)).collect(),
            latency: Millis(10),
            events: vec![Vec::new(); n],
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            queue: BinaryHeap::new(),
            payloads: BTreeMap::new(),
            seq: 0,
            next_conn: 1,
            mining_job: vec![0; n],
            timeouts: vec![None; n],
            sent: BTreeMap::new(),
            disconnects: Vec::new(),
            lose: Vec::new(),
            disks: vec![BTreeMap::new(); n],
            loads: Vec::new(),
            record: false,
            outbox: Vec::new(),
            mined: Vec::new(),
            dials: Vec::new(),
            unreachable: BTreeSet::new(),
        }
    }

    fn schedule(&mut self, at: Millis, d: Delivery) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.payloads.insert(self.seq, d);
    }

    /// Opens a connection dialled by `a` to `b`.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.connect_as(a, b, None);
    }

    /// Opens a connection dialled by `a` to `b`, which `a` knows as `addr` (a dial target).
    pub fn connect_as(&mut self, a: usize, b: usize, addr: Option<String>) {
        let ca = ConnId(self.next_conn);
        let cb = ConnId(self.next_conn + 1);
        self.next_conn += 2;
        self.links.insert((a, ca), (b, cb));
        self.links.insert((b, cb), (a, ca));
        let now = self.now;
        self.peers[a].handle(
            now,
            Input::Connected {
                peer: ca,
                direction: Direction::Outbound,
                addr,
            },
        );
        self.drain(a);
        self.peers[b].handle(
            now,
            Input::Connected {
                peer: cb,
                direction: Direction::Inbound,
                addr: None,
            },
        );
        self.drain(b);
    }

    /// Drops every message between `a` and `b` in both directions (links stay up).
    pub fn partition(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    pub fn heal(&mut self, a: usize, b: usize) {
        self.cut.remove(&(a, b));
        self.cut.remove(&(b, a));
    }

    /// Drops messages from `from` to `to` only.
    pub fn cut_oneway(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    /// Closes every connection between `a` and `b`, telling both sides.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        let pairs: Vec<_> = self
            .links
            .iter()
            .filter(|((n, _), (m, _))| *n == a && *m == b)
            .map(|(&k, &v)| (k, v))
            .collect();
        for ((n, c), (m, d)) in pairs {
            self.links.remove(&(n, c));
            self.links.remove(&(m, d));
            let now = self.now;
            self.peers[n].handle(now, Input::Disconnected { peer: c });
            self.drain(n);
            self.peers[m].handle(now, Input::Disconnected { peer: d });
            self.drain(m);
        }
    }

    pub fn submit(&mut self, node: usize, text: &str) -> rantai_core::ItemId {
        let now = self.now;
        let id = self.peers[node]
            .submit(now, text.to_string())
            .expect("submit accepted");
        self.drain(node);
        id
    }

    /// Gives `node` an address to dial for good ([`Peer::add_peer`]).
    pub fn add_peer(&mut self, node: usize, addr: &str) {
        let now = self.now;
        self.peers[node].add_peer(now, addr.to_string());
        self.drain(node);
    }

    /// When `node` dialled `addr`.
    pub fn dial_times(&self, node: usize, addr: &str) -> Vec<Millis> {
        self.dials
            .iter()
            .filter(|(_, n, a)| *n == node && a == addr)
            .map(|(t, _, _)| *t)
            .collect()
    }

    /// Changes `node`'s mining policy now and runs the job it asks for.
    pub fn set_mine_policy(&mut self, node: usize, policy: rantai_core::MinePolicy) {
        let now = self.now;
        self.peers[node].set_mine_policy(now, policy);
        self.drain(node);
    }

    /// Gives `node` items it had accepted before a restart ([`Peer::restore_items`]).
    pub fn restore_items(&mut self, node: usize, items: Vec<rantai_core::Item>) -> usize {
        let now = self.now;
        let n = self.peers[node].restore_items(now, items);
        self.drain(node);
        n
    }

    /// Blocks `node` mined, in order.
    pub fn mined_by(&self, node: usize) -> Vec<BlockHash> {
        self.mined
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, h)| *h)
            .collect()
    }

    /// Mines one block on `node`'s tip right now and feeds it back.
    pub fn mine(&mut self, node: usize) -> Block {
        let t = self.peers[node].block_template(self.now);
        let block = t.solve(&AtomicBool::new(false)).expect("solvable");
        let now = self.now;
        self.mined.push((node, block.hash()));
        self.peers[node].handle(now, Input::Mined(block.clone()));
        self.drain(node);
        block
    }

    /// Feeds a message to `node` as if it came from the remote end of `conn`.
    pub fn inject(&mut self, node: usize, conn: ConnId, msg: Message) {
        let now = self.now;
        self.peers[node].handle(now, Input::Message { peer: conn, msg });
        self.drain(node);
    }

    /// The connection id `node` uses for its link to `other`.
    pub fn conn_of(&self, node: usize, other: usize) -> Option<ConnId> {
        self.links
            .iter()
            .find(|((n, _), (m, _))| *n == node && *m == other)
            .map(|((_, c), _)| *c)
    }

    fn drain(&mut self, node: usize) {
        self.timeouts[node] = self.peers[node].poll_timeout();
        while let Some(out) = self.peers[node].poll() {
            match out {
                Output::Send { to, msg } => {
                    *self.sent.entry(msg.kind()).or_default() += 1;
                    if self.record {
                        self.outbox.push((self.now, node, to, msg.clone()));
                    }
                    let Some(&(other, oc)) = self.links.get(&(node, to)) else {
                        continue;
                    };
                    if self.cut.contains(&(node, other)) {
                        continue;
                    }
                    let kind = msg.kind();
                    if let Some(l) = self
                        .lose
                        .iter_mut()
                        .find(|(n, k, left)| *n == node && *k == kind && *left > 0)
                    {
                        l.2 -= 1;
                        continue;
                    }
                    let at = self.now.add(self.latency);
                    self.schedule(
                        at,
                        Delivery::Msg {
                            node: other,
                            conn: oc,
                            msg,
                        },
                    );
                }
                Output::Disconnect { peer, reason } => {
                    self.disconnects.push((node, reason));
                    if let Some((other, oc)) = self.links.remove(&(node, peer)) {
                        self.links.remove(&(other, oc));
                        let at = self.now.add(self.latency);
                        self.schedule(
                            at,
                            Delivery::Closed {
                                node: other,
                                conn: oc,
                            },
                        );
                    }
                }
                Output::Mine(job) => {
                    self.mining_job[node] += 1;
                    if let Some(t) = job {
                        let id = self.mining_job[node];
                        let block = solve(t);
                        // Mining takes a little virtual time, so templates can go stale.
                        let at = self.now.add(Millis(5));
                        self.schedule(
                            at,
                            Delivery::Mined {
                                node,
                                block,
                                job: id,
                            },
                        );
                    }
                }
                Output::Dial { addr } => {
                    self.dials.push((self.now, node, addr.clone()));
                    let at = self.now.add(self.latency);
                    self.schedule(at, Delivery::Dial { node, addr });
                }
                Output::LoadBlocks { hashes, purpose } => {
                    self.loads.push((node, purpose, hashes.len()));
                    let at = self.now.add(Millis(1));
                    self.schedule(
                        at,
                        Delivery::Load {
                            node,
                            hashes,
                            purpose,
                        },
                    );
                }
                Output::Event(e) => {
                    if let Event::BlockAccepted { block, .. } = &e {
                        if self.peers[node].config().body_cache_blocks.is_some() {
                            self.disks[node].insert(block.hash(), block.clone());
                        }
                    }
                    self.events[node].push((self.now, e))
                }
            }
        }
    }

    fn next_timer(&self) -> Option<(Millis, usize)> {
        self.timeouts
            .iter()
            .take(self.peers.len())
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (t, i)))
            .min()
    }

    /// Processes the next delivery or timer; false when nothing is left before `limit`.
    pub fn step(&mut self, limit: Millis) -> bool {
        let msg_at = self.queue.peek().map(|Reverse((t, _))| *t);
        let timer = self.next_timer();
        let take_msg = match (msg_at, timer) {
            (Some(m), Some((t, _))) => m <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if take_msg {
            let Some(Reverse((at, seq))) = self.queue.pop() else {
                return false;
            };
            if at > limit {
                self.queue.push(Reverse((at, seq)));
                return false;
            }
            self.now = self.now.max(at);
            let Some(d) = self.payloads.remove(&seq) else {
                return true;
            };
            let now = self.now;
            match d {
                Delivery::Msg { node, conn, msg } => {
                    if self.links.contains_key(&(node, conn)) {
                        self.peers[node].handle(now, Input::Message { peer: conn, msg });
                        self.drain(node);
                    }
                }
                Delivery::Load {
                    node,
                    hashes,
                    purpose,
                } => {
                    let (found, missing): (Vec<_>, Vec<_>) = hashes
                        .into_iter()
                        .partition(|h| self.disks[node].contains_key(h));
                    let blocks = found.iter().map(|h| self.disks[node][h].clone()).collect();
                    self.peers[node].handle(
                        now,
                        Input::BlocksLoaded {
                            purpose,
                            blocks,
                            missing,
                        },
                    );
                    self.drain(node);
                }
                Delivery::Closed { node, conn } => {
                    self.peers[node].handle(now, Input::Disconnected { peer: conn });
                    self.drain(node);
                }
                Delivery::Dial { node, addr } => {
                    let target = (0..self.peers.len()).find(|&j| {
                        self.peers[j].config().listen_addr.as_deref() == Some(addr.as_str())
                    });
                    match target {
                        Some(j) if !self.unreachable.contains(&addr) => {
                            self.connect_as(node, j, Some(addr))
                        }
                        _ => {
                            self.peers[node].handle(now, Input::DialFailed { addr });
                            self.drain(node);
                        }
                    }
                }
                Delivery::Mined { node, block, job } => {
                    if self.mining_job[node] == job {
                        self.mined.push((node, block.hash()));
                        self.peers[node].handle(now, Input::Mined(block));
                        self.drain(node);
                    }
                }
            }
        } else {
            let Some((at, node)) = timer else {
                return false;
            };
            if at > limit {
                return false;
            }
            self.now = self.now.max(at);
            let now = self.now;
            self.peers[node].handle_timeout(now);
            self.drain(node);
        }
        true
    }

    /// Runs for `ms` of virtual time (bounded by a step budget).
    pub fn run_for(&mut self, ms: u64) {
        let limit = self.now.add(Millis(ms));
        for _ in 0..5_000_000 {
            if !self.step(limit) {
                break;
            }
        }
        self.now = self.now.max(limit);
    }

    /// Runs until `cond` holds or `ms` of virtual time pass; returns whether it held.
    pub fn run_until(&mut self, ms: u64, mut cond: impl FnMut(&Net) -> bool) -> bool {
        let limit = self.now.add(Millis(ms));
        for _ in 0..5_000_000 {
            if cond(self) {
                return true;
            }
            if !self.step(limit) {
                break;
            }
        }
        cond(self)
    }

    /// Whether every listed node has the same best tip.
    pub fn same_tip(&self, nodes: &[usize]) -> bool {
        let t = self.peers[nodes[0]].chain().tip().hash();
        nodes
            .iter()
            .all(|&i| self.peers[i].chain().tip().hash() == t)
    }

    pub fn tip_height(&self, node: usize) -> u64 {
        self.peers[node].chain().height()
    }

    pub fn ready(&self, node: usize) -> usize {
        self.peers[node].peers().iter().filter(|p| p.ready).count()
    }
}

fn solve(t: Template) -> Block {
    t.solve(&AtomicBool::new(false)).expect("solvable")
}
