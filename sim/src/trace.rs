//! The event trace: every processed event is folded into a cheap running hash (always), and
//! written as one JSON line when a writer is attached (`--trace`).
//!
//! Each peer folds its own events into its own hash, in its own order, which is the same
//! whatever shard or thread ran it; events of the whole run (faults) go into a global one.
//! The run's trace hash combines the global hash with every peer's, in peer order. Lines are
//! written between rounds, sorted by time, peer and the peer's own order.

use crate::net::KIND_NAMES;
use crate::rng::TraceHash;
use crate::time::SimTime;
use rantai_core::BlockHash;
use std::io::Write;

/// One traced event. Fields are plain integers so hashing them costs a few multiplications.
#[derive(Debug, Clone, Copy)]
pub enum TraceEv {
    /// A message reached its receiver.
    Deliver {
        from: u32,
        to: u32,
        kind: usize,
        bytes: u64,
    },
    /// A message was dropped at send time (`why`: loss, partition, closed).
    Drop {
        from: u32,
        to: u32,
        kind: usize,
        why: &'static str,
    },
    /// A peer's timer fired.
    Timer { node: u32 },
    /// A miner found a block.
    Mined {
        node: u32,
        height: u64,
        hash: BlockHash,
    },
    /// A peer accepted a block into its tree.
    Accepted {
        node: u32,
        height: u64,
        hash: BlockHash,
    },
    /// A peer's best tip moved.
    Tip {
        node: u32,
        height: u64,
        hash: BlockHash,
    },
    /// A peer switched branches, abandoning `depth` blocks.
    Reorg { node: u32, depth: u64 },
    /// A dial attempt on a link.
    Dial { link: u32, a: u32, b: u32, ok: bool },
    /// A connection closed; `node` is the side that closed it.
    Close {
        link: u32,
        node: u32,
        reason: &'static str,
    },
    /// A scheduled fault fired (`what`: partition, heal, crash, restart) on entity `id`.
    Fault { what: &'static str, id: u64 },
    /// A data item was submitted at `node`.
    Submit { node: u32, ok: bool },
}

/// First eight bytes of a hash as an integer (our own, so the trace format does not depend
/// on helper methods of the core's hash type).
fn hkey(h: &BlockHash) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.0[..8]);
    u64::from_le_bytes(b)
}

fn tag(s: &str) -> u64 {
    s.bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// Folds one event at `t` into `h`.
#[inline]
pub(crate) fn fold(h: &mut TraceHash, t: SimTime, ev: TraceEv) {
    h.add(t.as_millis().0);
    match ev {
        TraceEv::Deliver {
            from,
            to,
            kind,
            bytes,
        } => {
            h.add(1);
            h.add(u64::from(from) << 32 | u64::from(to));
            h.add((kind as u64) << 48 ^ bytes);
        }
        TraceEv::Drop {
            from,
            to,
            kind,
            why,
        } => {
            h.add(2);
            h.add(u64::from(from) << 32 | u64::from(to));
            h.add(kind as u64 ^ tag(why));
        }
        TraceEv::Timer { node } => {
            h.add(3);
            h.add(u64::from(node));
        }
        TraceEv::Mined { node, height, hash } => {
            h.add(4);
            h.add(u64::from(node) << 40 ^ height);
            h.add(hkey(&hash));
        }
        TraceEv::Accepted { node, height, hash } => {
            h.add(5);
            h.add(u64::from(node) << 40 ^ height);
            h.add(hkey(&hash));
        }
        TraceEv::Tip { node, height, hash } => {
            h.add(6);
            h.add(u64::from(node) << 40 ^ height);
            h.add(hkey(&hash));
        }
        TraceEv::Reorg { node, depth } => {
            h.add(7);
            h.add(u64::from(node) << 40 ^ depth);
        }
        TraceEv::Dial { link, a, b, ok } => {
            h.add(8);
            h.add(u64::from(link) << 1 | u64::from(ok));
            h.add(u64::from(a) << 32 | u64::from(b));
        }
        TraceEv::Close { link, node, reason } => {
            h.add(9);
            h.add(u64::from(link) << 32 | u64::from(node));
            h.add(tag(reason));
        }
        TraceEv::Fault { what, id } => {
            h.add(10);
            h.add(tag(what) ^ id);
        }
        TraceEv::Submit { node, ok } => {
            h.add(11);
            h.add(u64::from(node) << 1 | u64::from(ok));
        }
    }
}

/// The global running hash plus optional JSON-lines output.
#[derive(Default)]
pub struct Trace {
    hash: TraceHash,
    out: Option<Box<dyn Write>>,
    error: Option<String>,
    lines: u64,
}

impl Trace {
    /// Attaches a writer for JSON lines (buffer it: one line per event).
    pub fn set_writer(&mut self, w: Box<dyn Write>) {
        self.out = Some(w);
    }

    /// The trace hash so far, 16 hex digits, from the global hash and each peer's (in peer
    /// order).
    pub fn hash_hex(&self, peers: impl Iterator<Item = u64>) -> String {
        let mut h = self.hash;
        for v in peers {
            h.add(v);
        }
        h.hex()
    }

    /// Whether lines are being written.
    #[inline]
    pub fn writing(&self) -> bool {
        self.out.is_some() && self.error.is_none()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// First write error, if any (the trace stops being written after it).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Flushes the writer.
    pub fn flush(&mut self) {
        if let Some(w) = &mut self.out {
            if let Err(e) = w.flush() {
                self.error.get_or_insert(e.to_string());
            }
        }
    }

    /// Records one event of the whole run at `t`: the global hash and a line.
    pub fn rec(&mut self, t: SimTime, ev: TraceEv) {
        fold(&mut self.hash, t, ev);
        self.write(t, ev);
    }

    /// Writes one event's line, if lines are being written.
    pub fn write(&mut self, t: SimTime, ev: TraceEv) {
        if self.writing() {
            self.write_line(t, ev);
        }
    }

    fn write_line(&mut self, t: SimTime, ev: TraceEv) {
        let t = t.as_millis().0;
        let line = match ev {
            TraceEv::Deliver {
                from,
                to,
                kind,
                bytes,
            } => format!(
                r#"{{"t":{t},"ev":"deliver","from":{from},"to":{to},"msg":"{}","bytes":{bytes}}}"#,
                KIND_NAMES[kind]
            ),
            TraceEv::Drop {
                from,
                to,
                kind,
                why,
            } => format!(
                r#"{{"t":{t},"ev":"drop","from":{from},"to":{to},"msg":"{}","why":"{why}"}}"#,
                KIND_NAMES[kind]
            ),
            TraceEv::Timer { node } => format!(r#"{{"t":{t},"ev":"timer","peer":{node}}}"#),
            TraceEv::Mined { node, height, hash } => {
                format!(
                    r#"{{"t":{t},"ev":"mined","peer":{node},"height":{height},"block":"{hash}"}}"#
                )
            }
            TraceEv::Accepted { node, height, hash } => {
                format!(
                    r#"{{"t":{t},"ev":"accepted","peer":{node},"height":{height},"block":"{hash}"}}"#
                )
            }
            TraceEv::Tip { node, height, hash } => {
                format!(
                    r#"{{"t":{t},"ev":"tip","peer":{node},"height":{height},"block":"{hash}"}}"#
                )
            }
            TraceEv::Reorg { node, depth } => {
                format!(r#"{{"t":{t},"ev":"reorg","peer":{node},"depth":{depth}}}"#)
            }
            TraceEv::Dial { link, a, b, ok } => {
                format!(r#"{{"t":{t},"ev":"dial","link":{link},"from":{a},"to":{b},"ok":{ok}}}"#)
            }
            TraceEv::Close { link, node, reason } => {
                format!(
                    r#"{{"t":{t},"ev":"close","link":{link},"peer":{node},"reason":"{reason}"}}"#
                )
            }
            TraceEv::Fault { what, id } => format!(r#"{{"t":{t},"ev":"{what}","id":{id}}}"#),
            TraceEv::Submit { node, ok } => {
                format!(r#"{{"t":{t},"ev":"submit","peer":{node},"ok":{ok}}}"#)
            }
        };
        if let Some(w) = &mut self.out {
            if let Err(e) = writeln!(w, "{line}") {
                self.error = Some(e.to_string());
            } else {
                self.lines += 1;
            }
        }
    }
}
