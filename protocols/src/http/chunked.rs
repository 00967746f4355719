//! Incremental decoder for `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1).
//!
//! Feed it whatever bytes arrived; it appends the decoded data to the caller's buffer and reports
//! how many input bytes it consumed, so bytes after the body (a pipelined request) stay with the
//! caller. Chunk extensions are skipped, trailer fields are read and discarded. Line endings must
//! be CRLF: accepting a bare LF here while an origin does not is how request smuggling starts.
//! Every size is bounded by [`ChunkedLimits`].

use super::request::HttpError;

/// Bounds for one chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Chunk-size line including extensions, without CRLF.
    pub max_line_bytes: usize,
    /// All trailer lines together.
    pub max_trailer_bytes: usize,
    /// Decoded body bytes.
    pub max_body_bytes: u64,
}

impl Default for ChunkedLimits {
    /// 1 MiB of body: far above any registration (~1 KiB with `summaries`).
    fn default() -> Self {
        ChunkedLimits {
            max_line_bytes: 1024,
            max_trailer_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Result of one [`ChunkedDecoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedStatus {
    /// Input bytes used; the rest was not looked at.
    pub consumed: usize,
    /// The last chunk and the trailers have been read.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// After the digits: optional whitespace, then `;ext` or CR.
    SizeAfterDigits,
    /// Inside a chunk extension, until CR.
    Extension,
    SizeLf,
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final CRLF.
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

/// Sans-IO chunked body decoder. Create one per body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    limits: ChunkedLimits,
    size: u64,
    size_digits: u8,
    line_bytes: usize,
    trailer_bytes: usize,
    body_bytes: u64,
}

impl ChunkedDecoder {
    pub fn new(limits: ChunkedLimits) -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            limits,
            size: 0,
            size_digits: 0,
            line_bytes: 0,
            trailer_bytes: 0,
            body_bytes: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded body bytes so far.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Decodes as much of `input` as possible, appending body data to `out`. After an error the
    /// decoder must not be used again (the connection is to be closed).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<ChunkedStatus, HttpError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if let State::Data { remaining } = self.state {
                let avail = input.len() - i;
                // Bounded by `avail`, so the cast cannot truncate.
                let take = remaining.min(avail as u64) as usize;
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining }
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.step(b)?;
        }
        Ok(ChunkedStatus {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        if matches!(
            self.state,
            State::SizeStart | State::Size | State::SizeAfterDigits | State::Extension
        ) {
            self.line_bytes += 1;
            if self.line_bytes > self.limits.max_line_bytes {
                return Err(HttpError::BadChunk("chunk size line too long"));
            }
        }
        if matches!(self.state, State::TrailerStart | State::TrailerLine) {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.limits.max_trailer_bytes {
                return Err(HttpError::BadChunk("trailers too large"));
            }
        }
        self.state = match (self.state, b) {
            (State::SizeStart | State::Size, _) if b.is_ascii_hexdigit() => {
                // 16 hex digits fill a u64; more would overflow.
                if self.size_digits == 16 {
                    return Err(HttpError::BadChunk("chunk size too large"));
                }
                self.size_digits += 1;
                self.size = self.size << 4 | u64::from(hex(b));
                State::Size
            }
            (State::SizeStart, _) => return Err(HttpError::BadChunk("expected a chunk size")),
            (State::Size | State::SizeAfterDigits, b' ' | b'\t') => State::SizeAfterDigits,
            (State::Size | State::SizeAfterDigits, b';') => State::Extension,
            (State::Size | State::SizeAfterDigits | State::Extension, b'\r') => State::SizeLf,
            (State::Size | State::SizeAfterDigits, _) => {
                return Err(HttpError::BadChunk("invalid chunk size"))
            }
            (State::Extension, b'\n') => return Err(HttpError::BadChunk("bare LF")),
            (State::Extension, _) => State::Extension,
            (State::SizeLf, b'\n') => self.end_size_line()?,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::SizeStart,
            (State::TrailerStart, b'\r') => State::FinalLf,
            (State::TrailerStart | State::TrailerLine, b'\n') => {
                return Err(HttpError::BadChunk("bare LF"))
            }
            (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::FinalLf, b'\n') => State::Done,
            (
                State::SizeLf | State::DataCr | State::DataLf | State::TrailerLf | State::FinalLf,
                _,
            ) => return Err(HttpError::BadChunk("expected CRLF")),
            // `decode` handles Data and stops at Done; neither reaches here.
            (State::Data { .. } | State::Done, _) => {
                return Err(HttpError::BadChunk("internal state"))
            }
        };
        // A trailer line's CR: the LF must follow.
        if self.state == State::TrailerLine && b == b'\r' {
            self.state = State::TrailerLf;
        }
        Ok(())
    }

    fn end_size_line(&mut self) -> Result<State, HttpError> {
        let size = self.size;
        self.size = 0;
        self.size_digits = 0;
        self.line_bytes = 0;
        if size == 0 {
            return Ok(State::TrailerStart);
        }
        let total = self.body_bytes.saturating_add(size);
        if total > self.limits.max_body_bytes {
            return Err(HttpError::BodyTooLarge {
                limit: self.limits.max_body_bytes,
            });
        }
        self.body_bytes = total;
        Ok(State::Data { remaining: size })
    }
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, ChunkedStatus), HttpError> {
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let mut out = Vec::new();
        let st = d.decode(input, &mut out)?;
        Ok((out, st))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let (out, st) = decode_all(body).unwrap();
        assert_eq!(out, b"hello world");
        assert!(st.done);
        assert_eq!(&body[st.consumed..], b"NEXT");
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let body = b"A\r\n0123456789\r\n1 ; x\r\n!\r\n0\r\nT: v\r\n\r\n";
        for split in 0..=body.len() {
            let mut d = ChunkedDecoder::new(ChunkedLimits::default());
            let mut out = Vec::new();
            let a = d.decode(&body[..split], &mut out).unwrap();
            assert_eq!(a.consumed, split);
            let b = d.decode(&body[split..], &mut out).unwrap();
            assert!(b.done, "split {split}");
            assert_eq!(out, b"0123456789!");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let body = b"3\r\nabc\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let mut out = Vec::new();
        for b in body {
            d.decode(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert!(d.is_done());
        assert_eq!(out, b"abc");
        assert_eq!(d.body_bytes(), 3);
    }

    #[test]
    fn rejects_malformed_chunks() {
        let bad: [&[u8]; 9] = [
            b"\r\n",
            b"g\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"0\r\n\n",
            b"0\r\nT: v\n\r\n",
            b"11111111111111111\r\n",
            b"-1\r\n",
            b"5 x\r\n",
        ];
        for input in bad {
            assert!(
                decode_all(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn enforces_limits() {
        let limits = ChunkedLimits {
            max_line_bytes: 8,
            max_trailer_bytes: 8,
            max_body_bytes: 4,
        };
        let run = |input: &[u8]| ChunkedDecoder::new(limits).decode(input, &mut Vec::new());
        assert_eq!(run(b"5\r\n").unwrap_err().status(), 413);
        assert_eq!(run(b"2\r\nab\r\n3\r\n").unwrap_err().status(), 413);
        assert!(run(b"1;aaaaaaaaaa\r\n").is_err());
        assert!(run(b"0\r\nX-Long: aaaa\r\n").is_err());
        assert!(run(b"4\r\nabcd\r\n0\r\n\r\n").unwrap().done);
    }
}
