//! Opening a connection: our `hello`, checking theirs (network, version, self, duplicates),
//! inbound admission at the limit, what a fresh neighbour is told, and the address book
//! (`get_addr` / `addr`).

use super::conn::{Conn, Remote};
use super::penalty;
use super::timers::Timer;
use super::{Direction, DisconnectReason, Event, Output, Peer};
use crate::message::{Hello, Message, MAX_ADDRS_PER_MSG, MAX_ADDR_LEN, PROTOCOL_VERSION};
use crate::types::ConnId;

impl Peer {
    pub(super) fn on_connected(
        &mut self,
        peer: ConnId,
        direction: Direction,
        addr: Option<String>,
    ) {
        // A driver reusing a live id: drop the old connection's state (and its timer entry)
        // rather than leave a deadline behind that no connection owns.
        self.forget(peer);
        match (direction, &addr) {
            (Direction::Outbound, Some(a)) => self.dial_connected(a),
            (Direction::Inbound, _) if !self.admit_inbound(peer) => return,
            _ => {}
        }
        self.conns
            .insert(peer, Conn::new(direction, addr, self.now));
        if let Some(c) = self.conns.get_mut(&peer) {
            let by = self.now.add(self.config.handshake_timeout);
            self.timers
                .set(peer, &mut c.timers, Timer::Handshake, Some(by));
        }
        let hello = Message::Hello(Box::new(Hello {
            version: PROTOCOL_VERSION,
            genesis: self.config.params.genesis_hash(),
            node_id: self.node_id,
            tip: self.tip(),
            listen: self.config.listen_addr.clone(),
        }));
        self.send(peer, hello);
    }

    pub(super) fn on_hello(&mut self, peer: ConnId, hello: Hello) {
        let Hello {
            version,
            genesis,
            node_id,
            tip,
            listen,
        } = hello;
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
            if self
                .conns
                .get(&peer)
                .is_some_and(|c| c.direction == Direction::Inbound)
            {
                // Our own dial seen from its far end. Its dialling end reads our hello too and
                // closes it as a self-connection, which also stops dialling that address;
                // closing here first would only look like a failed dial to it (retried with
                // backoff, forever for a configured address). The handshake timeout still
                // bounds the wait.
                if let Some(c) = self.conns.get_mut(&peer) {
                    c.left_to_dialler = true;
                }
                return;
            }
            return self.disconnect(peer, DisconnectReason::SelfConnection);
        }
        if !self.resolve_duplicate(peer, node_id) {
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        c.remote = Some(Remote {
            node_id,
            listen: listen.clone(),
        });
        c.tip = Some(tip);
        c.known.insert(&tip.hash);
        let outbound = c.direction == Direction::Outbound;
        self.timers.set(peer, &mut c.timers, Timer::Handshake, None);
        if let Some(interval) = self.config.ping_interval {
            self.timers
                .set(peer, &mut c.timers, Timer::Ping, Some(now.add(interval)));
        }
        if let Some(l) = &listen {
            self.learn_addr(l.clone());
        }
        // Addresses come from every peer we dialled, and from inbound ones while the outbound
        // budget has room: a node that only ever accepted connections learns whom to dial.
        let ask = outbound || self.outbound_used() < self.config.max_outbound;
        if let Some(c) = self.conns.get_mut(&peer) {
            c.asked_addr = ask;
        }
        if ask {
            self.send(peer, Message::GetAddr);
        }
        if outbound {
            if let Some(a) = self.conns.get(&peer).and_then(|c| c.addr.clone()) {
                self.dial_ready(&a, node_id);
            }
        }
        self.event(Event::PeerReady {
            peer,
            node_id,
            tip,
            listen,
        });
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
        if self.config.relay_items && !self.pool.is_empty() {
            self.send_pool(peer);
        }
        self.maybe_sync(peer);
    }

    /// Room for a new inbound connection: at [`Config::max_inbound`] the oldest inbound one
    /// still in its handshake goes; with none, the newcomer is refused (false).
    ///
    /// [`Config::max_inbound`]: super::Config::max_inbound
    fn admit_inbound(&mut self, peer: ConnId) -> bool {
        let inbound = || {
            self.conns
                .iter()
                .filter(|(_, c)| c.direction == Direction::Inbound)
        };
        if inbound().count() < self.config.max_inbound {
            return true;
        }
        let oldest = inbound()
            .filter(|(_, c)| !c.is_ready())
            .min_by_key(|(&id, c)| (c.since, id))
            .map(|(&id, _)| id);
        match oldest {
            Some(v) => {
                self.disconnect(v, DisconnectReason::Evicted);
                true
            }
            None => {
                self.out.push_back(Output::Disconnect {
                    peer,
                    reason: DisconnectReason::InboundFull,
                });
                false
            }
        }
    }

    /// Settles a second connection to node `node_id` (on `peer`); false if `peer` was closed.
    fn resolve_duplicate(&mut self, peer: ConnId, node_id: u64) -> bool {
        let existing = self
            .conns
            .iter()
            .find(|(&id, c)| id != peer && c.remote.as_ref().is_some_and(|r| r.node_id == node_id))
            .map(|(&id, c)| (id, c.direction, c.since));
        let Some((other, other_dir, other_since)) = existing else {
            return true;
        };
        let Some(this_dir) = self.conns.get(&peer).map(|c| c.direction) else {
            return false;
        };
        if this_dir == other_dir {
            // One side dialled twice: only the dialler closes the newer one, so both ends
            // agree without a race; the listener keeps both until then.
            if this_dir == Direction::Outbound {
                self.disconnect(peer, DisconnectReason::Duplicate(node_id));
                return false;
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
            let keep_new = young && new_dialer == self.node_id.min(node_id);
            let close = if keep_new { other } else { peer };
            // Only the loser's dialler closes it, so its dial ends as a duplicate (it learns
            // which node that address reaches) and not as a failure to retry; the acceptor
            // leaves it to the dialler (the handshake timeout bounds the wait), and does not
            // make a losing newcomer ready meanwhile.
            let ours = close == peer && this_dir == Direction::Outbound
                || close == other && other_dir == Direction::Outbound;
            if ours {
                self.disconnect(close, DisconnectReason::Duplicate(node_id));
            } else if !keep_new {
                if let Some(c) = self.conns.get_mut(&peer) {
                    c.left_to_dialler = true;
                }
            }
            return keep_new;
        }
        true
    }

    pub(super) fn on_get_addr(&mut self, peer: ConnId) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        if c.answered_getaddr {
            return self.misbehaved(peer, penalty::REPEATED_GET_ADDR);
        }
        c.answered_getaddr = true;
        let addrs: Vec<String> = self.addrs.iter().take(MAX_ADDRS_PER_MSG).cloned().collect();
        self.send(peer, Message::Addr { addrs });
    }

    pub(super) fn on_addr(&mut self, peer: ConnId, addrs: Vec<String>) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        if !std::mem::take(&mut c.asked_addr) {
            return self.misbehaved(peer, penalty::UNSOLICITED_ADDR);
        }
        for a in addrs {
            self.learn_addr(a);
        }
    }

    fn learn_addr(&mut self, addr: String) {
        if addr.is_empty()
            || addr.len() > MAX_ADDR_LEN
            || self.config.listen_addr.as_ref() == Some(&addr)
        {
            return;
        }
        if self.addrs.len() >= self.config.max_known_addrs || self.addrs.contains(&addr) {
            return;
        }
        self.addrs.insert(addr.clone());
        self.add_learned(&addr);
        self.event(Event::AddrLearned { addr });
    }
}
