//! The testbed's link emulator: a userspace delay line between TUN devices, one per node
//! namespace. Each IPv4 packet a node sends leaves through its uplink (serialized at its
//! upload rate, FIFO), crosses the link (its one-way latency, optionally lost), and enters
//! through the receiver's downlink (serialized at its download rate, FIFO), then is written
//! to the receiver's TUN device. The kernels' TCP stacks at both ends are real: handshakes,
//! slow start, congestion windows, ACK clocking and retransmissions all happen as on a wire.
//!
//! Why not `tc netem`: the kernels this project is built and tested on (CI's included) have
//! no `sch_netem` (`tc qdisc add ... netem` answers "Specified qdisc kind is unknown"), and no
//! `fq`/`tbf` either; TUN devices exist wherever namespaces do.
//!
//! Queues are bounded like a default `pfifo` (1,000 packets' worth of time at the link's
//! rate): a packet that would wait longer is dropped, as a full interface queue drops it.

use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Bytes of queue per direction before drop-tail: 1,000 full-size packets, as the default
/// `txqueuelen` of 1,000 gives `pfifo`.
const QUEUE_BYTES: u64 = 1_000 * 1_500;
/// Largest packet read from a TUN device.
const MAX_PACKET: usize = 65_536;

/// What the router applies between nodes `0..n`, addressed [`node_ip`].
#[derive(Debug, Clone)]
pub struct LinkModel {
    pub nodes: usize,
    /// One-way latency in microseconds for each ordered pair `a * nodes + b`; `None`: not linked
    /// (packets dropped).
    pub latency_us: Vec<Option<u64>>,
    pub up_bps: Vec<Option<u64>>,
    pub down_bps: Vec<Option<u64>>,
    /// Probability that a packet is lost on its link.
    pub loss: f64,
    pub seed: u64,
}

/// Counters of one router run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    pub packets: u64,
    pub bytes: u64,
    pub lost: u64,
    pub queue_drops: u64,
    /// Not IPv4, or to an address with no link from the sender.
    pub unroutable: u64,
}

/// Node `i`'s address: `10.77.x.y` with `x.y` = `i + 1`.
pub fn node_ip(i: usize) -> std::net::Ipv4Addr {
    let v = i as u32 + 1;
    std::net::Ipv4Addr::new(10, 77, (v >> 8) as u8, (v & 0xff) as u8)
}

fn node_of(dst: [u8; 4], nodes: usize) -> Option<usize> {
    if dst[0] != 10 || dst[1] != 77 {
        return None;
    }
    let v = (usize::from(dst[2]) << 8) | usize::from(dst[3]);
    (1..=nodes).contains(&v).then(|| v - 1)
}

/// A packet in flight: entering `node`'s downlink (`Stage::Down`) or written to it
/// (`Stage::Out`) at `at` microseconds.
struct Flight {
    at: u64,
    seq: u64,
    out: bool,
    node: usize,
    packet: Vec<u8>,
}

impl PartialEq for Flight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Flight {}
impl PartialOrd for Flight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Flight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Microseconds to serialize `bytes` at `bps` (0 for an unlimited rate).
fn tx_us(bytes: usize, bps: Option<u64>) -> u64 {
    bps.map_or(0, |r| (bytes as u64 * 8 * 1_000_000).div_ceil(r.max(1)))
}

/// Routes packets between `fds` (node `i`'s TUN device at index `i`, non-blocking) until
/// `stop` is set.
pub fn run(fds: &[OwnedFd], model: &LinkModel, stop: &Arc<AtomicBool>) -> RouterStats {
    let n = fds.len();
    let start = Instant::now();
    let now_us = || start.elapsed().as_micros() as u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(model.seed);
    let mut up_free = vec![0u64; n];
    let mut down_free = vec![0u64; n];
    let mut heap: BinaryHeap<Reverse<Flight>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut stats = RouterStats::default();
    let mut buf = vec![0u8; MAX_PACKET];
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let now = now_us();
        // Everything due, in time order.
        while heap.peek().is_some_and(|Reverse(f)| f.at <= now) {
            let Some(Reverse(f)) = heap.pop() else { break };
            if f.out {
                // SAFETY: writing an owned buffer to an open descriptor we own.
                let _ = unsafe {
                    libc::write(
                        fds[f.node].as_raw_fd(),
                        f.packet.as_ptr().cast(),
                        f.packet.len(),
                    )
                };
                continue;
            }
            let rate = model.down_bps[f.node];
            let begin = f.at.max(down_free[f.node]);
            if let Some(r) = rate {
                if begin - f.at > tx_us(QUEUE_BYTES as usize, Some(r)) {
                    stats.queue_drops += 1;
                    continue;
                }
            }
            let done = begin + tx_us(f.packet.len(), rate);
            down_free[f.node] = done;
            seq += 1;
            heap.push(Reverse(Flight {
                at: done,
                seq,
                out: true,
                node: f.node,
                packet: f.packet,
            }));
        }
        if heap.peek().is_some_and(|Reverse(f)| f.at <= now_us()) {
            continue;
        }
        let wait_us = heap.peek().map_or(20_000, |Reverse(f)| {
            f.at.saturating_sub(now_us()).min(20_000)
        });
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: (wait_us * 1_000) as libc::c_long,
        };
        // SAFETY: `pfds` is a valid array of `n` pollfd structs for the duration of the call.
        let ready = unsafe {
            libc::ppoll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if ready <= 0 {
            continue;
        }
        for src in 0..n {
            if pfds[src].revents & libc::POLLIN == 0 {
                continue;
            }
            loop {
                // SAFETY: reading into an owned buffer of MAX_PACKET bytes.
                let got = unsafe { libc::read(pfds[src].fd, buf.as_mut_ptr().cast(), buf.len()) };
                if got <= 0 {
                    break;
                }
                let pkt = &buf[..got as usize];
                let now = now_us();
                let dst = (pkt.len() >= 20 && pkt[0] >> 4 == 4)
                    .then(|| node_of([pkt[16], pkt[17], pkt[18], pkt[19]], n))
                    .flatten();
                let Some((dst, lat)) =
                    dst.and_then(|d| model.latency_us[src * n + d].map(|l| (d, l)))
                else {
                    stats.unroutable += 1;
                    continue;
                };
                let rate = model.up_bps[src];
                let begin = now.max(up_free[src]);
                if let Some(r) = rate {
                    if begin - now > tx_us(QUEUE_BYTES as usize, Some(r)) {
                        stats.queue_drops += 1;
                        continue;
                    }
                }
                let sent = begin + tx_us(pkt.len(), rate);
                up_free[src] = sent;
                stats.packets += 1;
                stats.bytes += pkt.len() as u64;
                if model.loss > 0.0 && rng.gen_bool(model.loss) {
                    stats.lost += 1;
                    continue;
                }
                seq += 1;
                heap.push(Reverse(Flight {
                    at: sent + lat,
                    seq,
                    out: false,
                    node: dst,
                    packet: pkt.to_vec(),
                }));
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_stay_in_the_testbed_range() {
        for i in [0, 1, 253, 254, 255, 999] {
            let ip = node_ip(i).octets();
            assert_eq!(node_of(ip, 1_000), Some(i));
        }
        assert_eq!(node_of([10, 77, 0, 0], 10), None);
        assert_eq!(node_of([10, 77, 0, 11], 10), None);
        assert_eq!(node_of([10, 78, 0, 1], 10), None);
    }

    #[test]
    fn serialization_time_is_bits_over_rate() {
        assert_eq!(tx_us(1_500, Some(12_000_000)), 1_000);
        assert_eq!(tx_us(1_500, None), 0);
        assert_eq!(tx_us(1, Some(1_000_000)), 8);
    }
}
