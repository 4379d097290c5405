//! The per-message network model: given a message's size, the path it takes and the time it
//! is sent, whether it is lost and when it (and possibly a duplicate) arrives.
//!
//! A message's fate is decided in two halves, each reading and writing only its own peer's
//! state, so senders and receivers in different shards can run side by side:
//! `Model::send`, at the sender when it sends (loss, duplication, reordering, latency, its
//! uplink and congestion window, from its own random streams in a fixed order: loss,
//! duplicate, reorder from its `faults` stream; then latency, and the duplicate's extra
//! latency, from its `latency` stream), and `Outgoing::arrive`, at the receiver's side
//! between rounds, in send order (its downlink and the connection's FIFO mark).
//!
//! Bandwidth: messages of [`BANDWIDTH_THRESHOLD_BYTES`] or more occupy the sender's uplink for
//! `size / upload_rate` (uploads queue) and the receiver's downlink for
//! `size / download_rate`. Transfers are cut-through, as over TCP: the receiver downloads
//! while the sender uploads, so an idle path moves a message in
//! `latency + size / min(up, down)`; a busy uplink or downlink delays it. Smaller control
//! messages cost latency only. A connection is a FIFO stream unless reordering holds a
//! message back.

use super::latency::sample_latency;
use crate::config::Latency;
use crate::presets::Preset;
use crate::time::SimTime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rantai_core::Millis;

/// Messages smaller than this cost latency only; larger ones also occupy the sender's upload
/// and the receiver's download for `size / rate`.
pub const BANDWIDTH_THRESHOLD_BYTES: u64 = 1024;

/// Microseconds needed to move `bytes` at `bps` (0 for unlimited).
pub fn transfer_us(bytes: u64, bps: Option<u64>) -> u64 {
    match bps {
        None => 0,
        Some(r) => ((bytes as u128 * 8 * 1_000_000).div_ceil(r.max(1) as u128)) as u64,
    }
}

/// A peer's attachment to the network: its access rates, when its uplink and downlink are
/// next free, and the random streams of the messages it sends.
pub(crate) struct Port {
    up_bps: Option<u64>,
    down_bps: Option<u64>,
    up_free_us: u64,
    down_free_us: u64,
    lat_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
}

impl Port {
    /// An idle port with the given rates (`None`: unlimited) and streams.
    pub(crate) fn new(
        up_bps: Option<u64>,
        down_bps: Option<u64>,
        lat_rng: ChaCha8Rng,
        fault_rng: ChaCha8Rng,
    ) -> Port {
        Port {
            up_bps,
            down_bps,
            up_free_us: 0,
            down_free_us: 0,
            lat_rng,
            fault_rng,
        }
    }

    /// Upload rate in bits per second (`None`: unlimited).
    pub(crate) fn up_bps(&self) -> Option<u64> {
        self.up_bps
    }

    /// Download rate in bits per second (`None`: unlimited).
    pub(crate) fn down_bps(&self) -> Option<u64> {
        self.down_bps
    }

    /// How far past `now` the uplink is booked.
    pub(crate) fn upload_backlog(&self, now: SimTime) -> Millis {
        Millis((self.up_free_us / 1000).saturating_sub(now.as_millis().0))
    }

    /// How far past `now` the downlink is booked.
    pub(crate) fn download_backlog(&self, now: SimTime) -> Millis {
        Millis((self.down_free_us / 1000).saturating_sub(now.as_millis().0))
    }

    /// A crash drops whatever was queued on either side.
    pub(crate) fn clear_queues(&mut self) {
        self.up_free_us = 0;
        self.down_free_us = 0;
    }

    /// Hands back `unsent_us` of booked uplink time (its connection closed): a TCP close
    /// discards the send buffer. Bookings of other connections keep their times.
    pub(crate) fn refund_upload(&mut self, unsent_us: u64, now_us: u64) {
        self.up_free_us = self.up_free_us.saturating_sub(unsent_us).max(now_us);
    }
}

/// Linux's initial congestion window: 10 segments of 1,448 payload bytes (RFC 6928).
pub const INITIAL_WINDOW_BYTES: u64 = 10 * 1448;
/// The floor of Linux's retransmission timeout: a connection that sent nothing for its RTT
/// plus this long restarts from the initial window (`tcp_slow_start_after_idle`, on by
/// default).
pub const IDLE_RESTART_US: u64 = 200_000;
/// Largest window the model grows to (no loss ever shrinks it).
pub const MAX_WINDOW_BYTES: u64 = 16 << 20;

/// One direction of a connection under the TCP window model: its congestion window and when
/// it last sent. A window starts at [`INITIAL_WINDOW_BYTES`], doubles every round trip while
/// it cannot fill the path (slow start: a window of bytes, then wait a round trip for their
/// ACKs), grows by what was sent, and restarts from the initial window after an idle
/// [`IDLE_RESTART_US`] past a round trip. No loss, no congestion avoidance: the emulated
/// links of a calibration drop nothing, so the window only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// Bytes; 0 until the connection's first send.
    cwnd: u64,
    /// When the last send's last byte left (µs).
    last_send_us: u64,
}

impl Window {
    /// The connection was sending until `t_us` (its uplink's queue may end later than the
    /// window's bound): idle time counts from the later of the two.
    pub(crate) fn sent_until(&mut self, t_us: u64) {
        self.last_send_us = self.last_send_us.max(t_us);
    }

    /// Microseconds from `start_us` until the last of `bytes` has left under the window
    /// alone (rounds of a window, a round trip apart, until the window fills the path; then
    /// the rate); updates the window. Other connections' sends are not counted: they use the
    /// uplink while this one waits for ACKs, so the caller takes the later of this bound and
    /// the uplink's queue.
    pub(crate) fn send(
        &mut self,
        bytes: u64,
        start_us: u64,
        rtt_us: u64,
        rate: Option<u64>,
    ) -> u64 {
        let idle = start_us.saturating_sub(self.last_send_us);
        let mut c = if self.cwnd == 0 || idle > rtt_us + IDLE_RESTART_US {
            INITIAL_WINDOW_BYTES
        } else {
            self.cwnd
        };
        let start_window = c;
        let (mut sent, mut t) = (0u64, 0u64);
        loop {
            if rate.is_some() && transfer_us(c, rate) >= rtt_us {
                // The window fills the path: the rest goes at the rate.
                t += transfer_us(bytes - sent, rate);
                break;
            }
            let chunk = c.min(bytes - sent);
            sent += chunk;
            if sent >= bytes {
                t += transfer_us(chunk, rate);
                break;
            }
            // A window's worth in flight, then a round trip for its ACKs.
            t += rtt_us;
            c = (c * 2).min(MAX_WINDOW_BYTES);
        }
        self.cwnd = (start_window + bytes).min(MAX_WINDOW_BYTES);
        self.last_send_us = start_us + t;
        t
    }
}

/// Probabilities of the per-message faults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultRates {
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    /// Longest hold-back of a reordered message.
    pub reorder_delay: Millis,
}

/// The sender's side of one message's path.
pub(crate) struct SendPath<'a> {
    pub from_region: u8,
    pub to_region: u8,
    pub sender: &'a mut Port,
    /// The receiver's download rate (read only: its port is the receiver's).
    pub receiver_down_bps: Option<u64>,
    /// The link's fixed one-way latency (a links file), instead of a draw from the model.
    pub latency_ms: Option<u64>,
    /// This direction's congestion window, with the TCP window model on.
    pub window: Option<&'a mut Window>,
}

/// What the sender's side decided about a message that was not lost: everything its
/// arrival depends on except the receiver's downlink and the connection's FIFO mark, which
/// the receiver's side applies (`Outgoing::arrive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// Sent at (µs).
    send_us: u64,
    lat_us: u64,
    /// With bandwidth: when the upload started and ended (µs); the receiver downloads as it
    /// comes (cut-through).
    up: Option<(u64, u64)>,
    /// The congestion window's bound on the arrival (µs), with the window model on.
    windowed_us: u64,
    /// Reordering's hold-back (ms; 0: in order).
    pub delay_ms: u64,
    /// A duplicate's extra latency (ms), if the message is duplicated.
    pub dup_extra_ms: Option<u64>,
    /// The sender's uplink slot `(start, end)` in µs, when a limited uplink was booked.
    pub upload: Option<(u64, u64)>,
}

/// When a message and its duplicate arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub at: SimTime,
    pub duplicate_at: Option<SimTime>,
}

impl Outgoing {
    /// The arrival without the receiver's side: for a message its connection no longer
    /// carries, which is dropped on arrival and books nothing.
    pub(crate) fn unbooked(&self) -> Arrival {
        let arrival_us = match self.up {
            Some((_, up_done)) => (up_done + self.lat_us).max(self.windowed_us),
            None => self.send_us + self.lat_us,
        };
        let at = SimTime::from_micros_ceil(arrival_us).add(Millis(self.delay_ms));
        Arrival {
            at,
            duplicate_at: self.dup_extra_ms.map(|x| at.add(Millis(x))),
        }
    }

    /// The receiver's side: books its downlink (`receiver`) and the connection's FIFO mark
    /// (`fifo`, the arrival of the last in-order message) for a `bytes`-byte message. Called
    /// once per message, in the order the messages were sent.
    pub(crate) fn arrive(&self, bytes: u64, receiver: &mut Port, fifo: &mut SimTime) -> Arrival {
        let arrival_us = match self.up {
            Some((up_start, up_done)) => {
                let down_start = receiver.down_free_us.max(up_start + self.lat_us);
                let down_done =
                    (down_start + transfer_us(bytes, receiver.down_bps)).max(up_done + self.lat_us);
                if receiver.down_bps.is_some() {
                    receiver.down_free_us = down_done;
                }
                down_done.max(self.windowed_us)
            }
            None => self.send_us + self.lat_us,
        };
        let mut at = SimTime::from_micros_ceil(arrival_us);
        if self.delay_ms > 0 {
            at = at.add(Millis(self.delay_ms));
        } else {
            at = at.max(*fifo);
            *fifo = at;
        }
        Arrival {
            at,
            duplicate_at: self.dup_extra_ms.map(|x| at.add(Millis(x))),
        }
    }
}

/// Latency, bandwidth and per-message faults of a run.
pub(crate) struct Model {
    latency: Latency,
    preset: Option<&'static Preset>,
    faults: FaultRates,
}

impl Model {
    pub(crate) fn new(
        latency: Latency,
        preset: Option<&'static Preset>,
        faults: FaultRates,
    ) -> Model {
        Model {
            latency,
            preset,
            faults,
        }
    }

    /// The sender's side of a `bytes`-byte message sent on `path` at `now`: `None` if it is
    /// lost. Random draws come from the sender's streams in a fixed order (loss, duplicate,
    /// reorder; latency, then the duplicate's latency), and its uplink is booked.
    #[inline]
    pub(crate) fn send(&self, bytes: u64, now: SimTime, path: SendPath<'_>) -> Option<Outgoing> {
        let mut delay_ms = 0u64;
        // A rate of zero draws nothing, so a fault-free run consumes no fault randomness.
        let f = &self.faults;
        let r = &mut path.sender.fault_rng;
        if f.loss > 0.0 && r.gen::<f64>() < f.loss {
            return None;
        }
        let dup = f.duplicate > 0.0 && r.gen::<f64>() < f.duplicate;
        if f.reorder > 0.0 && r.gen::<f64>() < f.reorder {
            delay_ms = r.gen_range(0..=f.reorder_delay.0.max(1));
        }
        let fixed = path.latency_ms;
        let lat = match fixed {
            Some(l) => l,
            None => self.latency_ms(path.from_region, path.to_region, path.sender),
        };
        let now_us = now.as_micros();
        let lat_us = lat * 1000;
        let s = &mut *path.sender;
        let mut out = Outgoing {
            send_us: now_us,
            lat_us,
            up: None,
            windowed_us: 0,
            delay_ms,
            dup_extra_ms: None,
            upload: None,
        };
        if bytes >= BANDWIDTH_THRESHOLD_BYTES {
            let up_start = s.up_free_us.max(now_us);
            let up_done = up_start + transfer_us(bytes, s.up_bps);
            if s.up_bps.is_some() {
                s.up_free_us = up_done;
                out.upload = Some((up_start, up_done));
            }
            out.up = Some((up_start, up_done));
            // The window bounds the transfer too, from when it was handed over: while this
            // connection waits for ACKs, others may use the uplink.
            let rate = match (s.up_bps, path.receiver_down_bps) {
                (Some(u), Some(d)) => Some(u.min(d)),
                (u, d) => u.or(d),
            };
            if let Some(w) = path.window {
                let t = w.send(bytes, now_us, 2 * lat_us, rate);
                // The last byte leaves when the slower bound lets it: idle counts from then.
                w.sent_until(up_done);
                out.windowed_us = now_us + t + lat_us;
            }
        } else if let Some(w) = path.window {
            w.send(bytes, now_us, 2 * lat_us, None);
        }
        if dup {
            out.dup_extra_ms = Some(match fixed {
                Some(l) => l,
                None => self.latency_ms(path.from_region, path.to_region, path.sender),
            });
        }
        Some(out)
    }

    #[inline]
    fn latency_ms(&self, from_region: u8, to_region: u8, sender: &mut Port) -> u64 {
        sample_latency(
            &self.latency,
            self.preset,
            from_region,
            to_region,
            &mut sender.lat_rng,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn transfer_time() {
        assert_eq!(transfer_us(535_000, Some(20_000_000)), 214_000);
        assert_eq!(transfer_us(535_000, None), 0);
    }

    fn port(up: Option<u64>, down: Option<u64>) -> Port {
        let rng = || ChaCha8Rng::seed_from_u64(1);
        Port::new(up, down, rng(), rng())
    }

    fn lossless(latency_ms: u64) -> Model {
        let faults = FaultRates {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Millis(0),
        };
        Model::new(Latency::Const(Millis(latency_ms)), None, faults)
    }

    #[test]
    fn a_window_doubles_per_round_trip_until_it_fills_the_path() {
        let rtt = 100_000;
        // Unlimited rate: 14,480 B, then doubling; 500 kB needs six windows, five waits.
        let mut w = Window::default();
        assert_eq!(w.send(500_000, 0, rtt, None), 5 * rtt);
        let ten = Some(10_000_000);
        // 10 Mbit/s fills a 100 ms round trip with 125 kB: four waits, then the rest at rate.
        let mut w = Window::default();
        let sent_in_windows = 14_480 + 28_960 + 57_920 + 115_840;
        let t = 4 * rtt + transfer_us(500_000 - sent_in_windows, ten);
        assert_eq!(w.send(500_000, 0, rtt, ten), t);
        // Warm (grown by what it sent, used again within an RTO of its last byte): the rate.
        assert_eq!(
            w.send(500_000, t + 50_000, rtt, ten),
            transfer_us(500_000, ten)
        );
        // Idle past a round trip plus the RTO floor: back to the initial window.
        let later = t + 50_000 + transfer_us(500_000, Some(10_000_000)) + rtt + IDLE_RESTART_US + 1;
        assert_eq!(w.send(500_000, later, rtt, ten), t);
        // What fits the initial window goes at the rate.
        let mut w = Window::default();
        let one = Some(1_000_000);
        assert_eq!(
            w.send(INITIAL_WINDOW_BYTES, 0, rtt, one),
            transfer_us(INITIAL_WINDOW_BYTES, one)
        );
    }

    /// Cut-through: an idle path moves a big message in latency + size / min(up, down); a
    /// second one queues behind the first on the uplink; small ones cost latency only.
    #[test]
    fn bandwidth_is_cut_through_and_uploads_queue() {
        let m = lossless(50);
        let (mut s, mut r) = (port(Some(8_000_000), Some(16_000_000)), port(None, None));
        let mut fifo = SimTime::ZERO;
        let send = |bytes, s: &mut Port, r: &mut Port, fifo: &mut SimTime| {
            let path = SendPath {
                from_region: 0,
                to_region: 0,
                receiver_down_bps: r.down_bps(),
                sender: s,
                latency_ms: None,
                window: None,
            };
            let out = m.send(bytes, SimTime::ZERO, path).expect("lossless");
            (out.arrive(bytes, r, fifo), out.upload)
        };
        let (first, upload) = send(1_000_000, &mut s, &mut r, &mut fifo);
        assert_eq!(first.at, SimTime::from_millis(Millis(1050)));
        assert_eq!(upload, Some((0, 1_000_000)));
        let (second, _) = send(1_000_000, &mut s, &mut r, &mut fifo);
        assert_eq!(second.at, SimTime::from_millis(Millis(2050)));
        assert_eq!(s.upload_backlog(SimTime::ZERO), Millis(2000));
        // A small message is not slowed by the uplink, but may not overtake on its connection.
        let (small, _) = send(100, &mut s, &mut r, &mut fifo);
        assert_eq!(small.at, SimTime::from_millis(Millis(2050)));
        let mut other_fifo = SimTime::ZERO;
        let (small, _) = send(100, &mut s, &mut r, &mut other_fifo);
        assert_eq!(small.at, SimTime::from_millis(Millis(50)));
    }
}
