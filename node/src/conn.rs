//! Per-connection tasks: a reader that turns bytes into messages for the driver, and a writer
//! that drains the connection's bounded send queue. Neither makes a protocol decision.

use crate::metrics::Metrics;
use rantai_core::{ConnId, DecodeError, FrameDecoder, Message};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// Largest first frame accepted. The first message must be the (small) hello, so a remote
/// that has not identified itself cannot make us buffer a multi-megabyte frame.
pub const MAX_FIRST_FRAME_BYTES: usize = 64 * 1024;
/// A writer coalesces queued frames up to this many bytes into one write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// A read or write buffer that grew past this for a large frame is released once it is empty
/// again: a connection that carried one 4 MiB frame must not keep 4 MiB for the rest of its
/// life (64 such peers would hold a quarter of a gigabyte).
pub const KEEP_BUFFER_BYTES: usize = 64 * 1024;

/// One connection's traffic, counted by its reader and writer tasks and read by `/status`
/// (whole frames, as in [`Metrics`]; bytes out and messages out once written).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes read from the socket.
    pub bytes_in: AtomicU64,
    /// Bytes written to the socket.
    pub bytes_out: AtomicU64,
    /// Frames decoded.
    pub messages_in: AtomicU64,
    /// Frames written.
    pub messages_out: AtomicU64,
}

impl Traffic {
    /// (bytes in, bytes out, messages in, messages out) as of now.
    pub fn read(&self) -> [u64; 4] {
        [
            &self.bytes_in,
            &self.bytes_out,
            &self.messages_in,
            &self.messages_out,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// What connection tasks report to the driver.
#[derive(Debug)]
pub enum ConnEvent {
    Message {
        id: ConnId,
        msg: Message,
    },
    Malformed {
        id: ConnId,
        error: DecodeError,
    },
    /// The socket closed or failed; `why` is for the log.
    Closed {
        id: ConnId,
        why: String,
    },
}

/// Reads frames until EOF, an error, or an undecodable frame (reported, then the task ends).
pub async fn reader(
    id: ConnId,
    mut rd: OwnedReadHalf,
    events: mpsc::Sender<ConnEvent>,
    metrics: Arc<Metrics>,
    traffic: Arc<Traffic>,
) {
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut prefix = [0u8; 4];
    let mut prefix_seen = 0;
    // Most bytes the decoder held since it was last replaced: its buffer is at least that big.
    let mut held_max = 0;
    let why = loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break "closed by remote".to_string(),
            Ok(n) => n,
            Err(e) => break format!("read error: {e}"),
        };
        metrics.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        traffic.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        if prefix_seen < 4 {
            let take = (4 - prefix_seen).min(n);
            prefix[prefix_seen..prefix_seen + take].copy_from_slice(&buf[..take]);
            prefix_seen += take;
            let len = u32::from_be_bytes(prefix) as usize;
            if prefix_seen == 4 && len > MAX_FIRST_FRAME_BYTES {
                metrics.malformed_in.fetch_add(1, Ordering::Relaxed);
                let error = DecodeError::FrameTooLarge {
                    len,
                    max: MAX_FIRST_FRAME_BYTES,
                };
                let _ = events.send(ConnEvent::Malformed { id, error }).await;
                return;
            }
        }
        dec.extend(&buf[..n]);
        held_max = held_max.max(dec.buffered());
        loop {
            let before = dec.buffered();
            match dec.next_message() {
                Ok(Some(msg)) => {
                    metrics.messages_in.fetch_add(1, Ordering::Relaxed);
                    traffic.messages_in.fetch_add(1, Ordering::Relaxed);
                    metrics.count_in(msg.kind_index(), before - dec.buffered());
                    if events.send(ConnEvent::Message { id, msg }).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    metrics.malformed_in.fetch_add(1, Ordering::Relaxed);
                    let _ = events.send(ConnEvent::Malformed { id, error }).await;
                    return;
                }
            }
        }
        // The decoder keeps its buffer's capacity; a fresh one gives a large one back. Only
        // when it is empty, so no byte of the next frame is lost.
        if held_max > KEEP_BUFFER_BYTES && dec.buffered() == 0 {
            dec = FrameDecoder::new();
            held_max = 0;
        }
    };
    let _ = events.send(ConnEvent::Closed { id, why }).await;
}

/// Writes queued messages, coalescing what is already queued into one write. A write that
/// cannot complete within `write_timeout` ends the connection (the remote stopped reading).
pub async fn writer(
    id: ConnId,
    mut wr: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Message>,
    events: mpsc::Sender<ConnEvent>,
    metrics: Arc<Metrics>,
    traffic: Arc<Traffic>,
    write_timeout: Duration,
) {
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    // (kind, frame bytes) of each message in `out`, counted once the write succeeds.
    let mut framed: Vec<(usize, usize)> = Vec::new();
    while let Some(msg) = queue.recv().await {
        out.clear();
        framed.clear();
        let mut push = |m: &Message, out: &mut Vec<u8>| {
            let before = out.len();
            out.extend_from_slice(&m.to_frame());
            framed.push((m.kind_index(), out.len() - before));
        };
        push(&msg, &mut out);
        while out.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(m) => push(&m, &mut out),
                Err(_) => break,
            }
        }
        match tokio::time::timeout(write_timeout, wr.write_all(&out)).await {
            Ok(Ok(())) => {
                metrics
                    .bytes_out
                    .fetch_add(out.len() as u64, Ordering::Relaxed);
                traffic
                    .bytes_out
                    .fetch_add(out.len() as u64, Ordering::Relaxed);
                traffic
                    .messages_out
                    .fetch_add(framed.len() as u64, Ordering::Relaxed);
                for &(kind, len) in &framed {
                    metrics.count_out(kind, len);
                }
            }
            Ok(Err(e)) => {
                let _ = events
                    .send(ConnEvent::Closed {
                        id,
                        why: format!("write error: {e}"),
                    })
                    .await;
                return;
            }
            Err(_) => {
                let why = format!(
                    "write blocked for {} ms: remote stopped reading",
                    write_timeout.as_millis()
                );
                let _ = events.send(ConnEvent::Closed { id, why }).await;
                return;
            }
        }
        // Reused while frames keep coming; released once the queue runs dry.
        if out.capacity() > KEEP_BUFFER_BYTES && queue.is_empty() {
            out = Vec::with_capacity(16 * 1024);
        }
    }
    // The driver dropped the queue: flush is done, close our side.
    let _ = wr.shutdown().await;
}
