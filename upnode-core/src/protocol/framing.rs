//! Newline-delimited framing with a bounded line length.

use bytes::BytesMut;
use std::ops::Deref;

/// Splits a byte stream into lines (without the `\n`), holding at most `max_line` bytes of an
/// unfinished line between calls. Complete lines inside one input chunk are handed out without
/// copying.
///
/// ```
/// use upnode_core::protocol::LineDecoder;
/// let mut d = LineDecoder::new(16);
/// let lines: Vec<Vec<u8>> = d.decode(b"{\"a\":1}\n{\"b\"").map(|l| l.unwrap().to_vec()).collect();
/// assert_eq!(lines, vec![b"{\"a\":1}".to_vec()]);
/// let lines: Vec<Vec<u8>> = d.decode(b":2}\n").map(|l| l.unwrap().to_vec()).collect();
/// assert_eq!(lines, vec![b"{\"b\":2}".to_vec()]);
/// ```
#[derive(Debug)]
pub struct LineDecoder {
    /// The unfinished line; never holds a newline, never longer than `max_line`.
    buf: BytesMut,
    max_line: usize,
    /// Set once a line went over the limit; the decoder then refuses everything.
    failed: bool,
}

/// The peer's byte stream broke the framing rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A line grew past the configured limit before its newline arrived.
    #[error("line longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
}

/// One complete line, borrowed from the input chunk or assembled across chunks.
#[derive(Debug)]
pub enum Line<'a> {
    /// The line lay whole inside the chunk just decoded.
    Borrowed(&'a [u8]),
    /// The line spanned chunks.
    Assembled(BytesMut),
}

impl Deref for Line<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Line::Borrowed(b) => b,
            Line::Assembled(b) => b,
        }
    }
}

/// Iterator over the complete lines of one chunk; see [`LineDecoder::decode`].
#[derive(Debug)]
pub struct Lines<'a> {
    dec: &'a mut LineDecoder,
    input: &'a [u8],
}

impl LineDecoder {
    /// A decoder that accepts lines of at most `max_line` bytes (excluding the newline).
    pub fn new(max_line: usize) -> LineDecoder {
        LineDecoder {
            buf: BytesMut::new(),
            max_line,
            failed: false,
        }
    }

    /// Feeds one chunk of received bytes and iterates over the lines it completes. Drive the
    /// iterator to its end: the unfinished tail is kept only when the iterator reaches it. An
    /// over-long line yields one error, after which the decoder stays failed and yields
    /// nothing more.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Lines<'a> {
        Lines { dec: self, input }
    }

    /// Bytes held for an unfinished line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the buffer holds for an unfinished line: its capacity, which may be
    /// more than [`buffered`](Self::buffered).
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether an over-long line has been seen.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn fail(&mut self) -> Option<Result<Line<'static>, FramingError>> {
        self.failed = true;
        self.buf = BytesMut::new();
        Some(Err(FramingError::LineTooLong {
            limit: self.max_line,
        }))
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.dec.failed || self.input.is_empty() {
            return None;
        }
        let input = self.input;
        match memchr::memchr(b'\n', input) {
            Some(off) => {
                self.input = &input[off + 1..];
                if self.dec.buf.len() + off > self.dec.max_line {
                    self.input = &[];
                    return self.dec.fail();
                }
                if self.dec.buf.is_empty() {
                    Some(Ok(Line::Borrowed(&input[..off])))
                } else {
                    self.dec.buf.extend_from_slice(&input[..off]);
                    Some(Ok(Line::Assembled(self.dec.buf.split())))
                }
            }
            None => {
                self.input = &[];
                if self.dec.buf.len() + input.len() > self.dec.max_line {
                    return self.dec.fail();
                }
                self.dec.buf.extend_from_slice(input);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(d: &mut LineDecoder, input: &[u8]) -> Vec<Result<Vec<u8>, FramingError>> {
        d.decode(input).map(|r| r.map(|l| l.to_vec())).collect()
    }

    #[test]
    fn line_at_the_limit_is_accepted_and_one_past_is_refused() {
        let mut d = LineDecoder::new(4);
        let got = lines(&mut d, b"abcd\nabcde\nab\n");
        assert_eq!(
            got,
            vec![
                Ok(b"abcd".to_vec()),
                Err(FramingError::LineTooLong { limit: 4 })
            ]
        );
        assert_eq!(d.buffered(), 0);
        assert!(
            lines(&mut d, b"x\n").is_empty(),
            "a failed decoder stays failed"
        );
        assert!(d.is_failed());
    }

    #[test]
    fn over_long_unfinished_line_fails_without_waiting_for_newline() {
        let mut d = LineDecoder::new(8);
        assert!(lines(&mut d, b"12345").is_empty());
        assert_eq!(d.buffered(), 5);
        assert_eq!(
            lines(&mut d, b"6789"),
            vec![Err(FramingError::LineTooLong { limit: 8 })]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn line_split_across_chunks_is_assembled() {
        let mut d = LineDecoder::new(100);
        assert!(lines(&mut d, b"[1,").is_empty());
        assert!(lines(&mut d, b"2").is_empty());
        assert_eq!(
            lines(&mut d, b"]\n[3]\n"),
            vec![Ok(b"[1,2]".to_vec()), Ok(b"[3]".to_vec())]
        );
    }

    #[test]
    fn crlf_keeps_the_carriage_return_for_the_json_reader() {
        let mut d = LineDecoder::new(100);
        assert_eq!(lines(&mut d, b"[1]\r\n"), vec![Ok(b"[1]\r".to_vec())]);
    }

    #[test]
    fn empty_lines_are_reported_as_lines() {
        let mut d = LineDecoder::new(100);
        assert_eq!(lines(&mut d, b"\n\n"), vec![Ok(vec![]), Ok(vec![])]);
    }
}
