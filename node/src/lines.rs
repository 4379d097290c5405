//! A bounded line reader for stdin: memory never exceeds one maximal line, and an over-long
//! line is reported and skipped while input goes on (the tutorial's reader stopped for good).

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One unit of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line (without `\n` or `\r\n`).
    Text(String),
    /// A line longer than the limit, skipped; its length in bytes.
    TooLong(usize),
    /// A line that is not UTF-8, skipped.
    NotUtf8,
}

/// Reads lines of at most `max_bytes` from `r`.
pub struct LineReader<R> {
    r: R,
    max_bytes: usize,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Lines longer than `max_bytes` (without the newline) are skipped as [`Line::TooLong`].
    pub fn new(r: R, max_bytes: usize) -> Self {
        LineReader {
            r,
            max_bytes,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The next line, or `None` at end of input. IO errors end the input too.
    pub async fn next_line(&mut self) -> Option<Line> {
        if self.eof {
            return None;
        }
        let mut skipped: Option<usize> = None;
        self.buf.clear();
        loop {
            let chunk = match self.r.fill_buf().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("stdin: {e}");
                    &[]
                }
            };
            if chunk.is_empty() {
                self.eof = true;
                return match skipped {
                    Some(n) => Some(Line::TooLong(n)),
                    None if self.buf.is_empty() => None,
                    None => Some(self.finish()),
                };
            }
            let (part, used, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            match skipped.as_mut() {
                Some(n) => *n += part.len(),
                None if self.buf.len() + part.len() > self.max_bytes => {
                    skipped = Some(self.buf.len() + part.len());
                    self.buf = Vec::new();
                }
                None => self.buf.extend_from_slice(part),
            }
            self.r.consume(used);
            if done {
                return Some(match skipped {
                    Some(n) => Line::TooLong(n),
                    None => self.finish(),
                });
            }
        }
    }

    fn finish(&mut self) -> Line {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::NotUtf8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_skipped_and_input_goes_on() {
        let mut input = b"first\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 200_000));
        input.extend_from_slice(b"\nsecond\n\xff\xfe\nlast");
        let mut r = LineReader::new(
            tokio::io::BufReader::with_capacity(1024, &input[..]),
            65_536,
        );
        assert_eq!(r.next_line().await, Some(Line::Text("first".into())));
        assert_eq!(r.next_line().await, Some(Line::TooLong(200_000)));
        assert_eq!(r.next_line().await, Some(Line::Text("second".into())));
        assert_eq!(r.next_line().await, Some(Line::NotUtf8));
        assert_eq!(r.next_line().await, Some(Line::Text("last".into())));
        assert_eq!(r.next_line().await, None);
        assert_eq!(r.next_line().await, None);
    }
}
