//! Framing on a byte stream: a 4-byte big-endian length, then one encoded message.

use super::{Message, MAX_FRAME_BYTES};
use crate::codec::DecodeError;

/// Incremental frame decoder: feed it bytes as they arrive, take messages out.
///
/// It never buffers more than one maximal frame plus one read, whatever the peer sends.
#[derive(Default)]
pub struct FrameDecoder {
    /// Visible to the message tests, which check the buffer stays bounded.
    pub(super) buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder, at the start of a stream.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message; `Ok(None)` means more bytes are needed. After an `Err` the
    /// stream is unusable and the connection should be closed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(len) = self.peek_len()? else {
            return Ok(None);
        };
        if self.buffered() < 4 + len {
            return Ok(None);
        }
        let body = &self.buf[self.start + 4..self.start + 4 + len];
        let msg = Message::decode(body);
        self.start += 4 + len;
        if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        msg.map(Some)
    }

    /// Length of the next frame once its prefix is complete; errors before any allocation.
    fn peek_len(&self) -> Result<Option<usize>, DecodeError> {
        if self.buffered() < 4 {
            return Ok(None);
        }
        let p = &self.buf[self.start..self.start + 4];
        let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        Ok(Some(len))
    }
}
