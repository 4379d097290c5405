//! The binary wire encoding's primitives: a bounds-checked reader and the typed decoding
//! error.
//!
//! Every integer is little-endian like the canonical header; a list is a count followed by
//! its entries; a string is a length followed by UTF-8 bytes. Each value has exactly one
//! encoding, so a message's size is a function of its contents ([`crate::Message::encoded_len`])
//! and the simulator can count bytes without encoding anything.
#![forbid(unsafe_code)]

use crate::types::Hash32;

/// Why bytes from a peer are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix (or payload) is over [`crate::message::MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The payload is empty or starts with a kind byte no message has.
    #[error("unknown message kind {0:?}")]
    UnknownKind(Option<u8>),
    /// The payload ends inside a field.
    #[error("message ends inside {0}")]
    Truncated(&'static str),
    /// Bytes are left after the message's last field.
    #[error("{0} bytes after the end of the message")]
    Trailing(usize),
    /// A text field is not UTF-8.
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    /// An option flag is neither 0 nor 1.
    #[error("flag byte {0} of {1} is neither 0 nor 1")]
    Flag(u8, &'static str),
    /// A list in the message is longer than its limit.
    #[error("{what}: {n} entries exceed the limit of {max}")]
    Limit {
        /// Which list.
        what: &'static str,
        /// Its length.
        n: usize,
        /// Its limit.
        max: usize,
    },
}

/// Reads fields off the front of a byte slice; every read checks the length first, so no
/// input panics or allocates more than it carries.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated(what))?;
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn hash(&mut self, what: &'static str) -> Result<Hash32, DecodeError> {
        Ok(Hash32(self.array(what)?))
    }

    /// `len` bytes of UTF-8.
    pub(crate) fn text(&mut self, len: usize, what: &'static str) -> Result<String, DecodeError> {
        let b = self.bytes(len, what)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8(what))
    }

    /// A count of entries of at least `min_entry` bytes each, checked against `max` and against
    /// the bytes left, so a lying count fails before anything is allocated for it.
    pub(crate) fn count(
        &mut self,
        n: usize,
        max: usize,
        min_entry: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        if n > max {
            return Err(DecodeError::Limit { what, n, max });
        }
        if n.saturating_mul(min_entry) > self.rest.len() {
            return Err(DecodeError::Truncated(what));
        }
        Ok(n)
    }

    /// Ends decoding: every byte must have been read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}
