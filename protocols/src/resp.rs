//! RESP2, the Redis wire protocol: commands out as arrays of bulk strings, replies in through an
//! incremental, bounded parser.
//!
//! Why our own codec instead of the `redis` crate: we need exactly five reply types (we never send
//! `HELLO 3`, so the server stays on RESP2), a parser that reports "need more bytes" without
//! consuming anything (the client keeps one receive buffer per connection), and hard bounds on
//! what a hostile or broken server can make us allocate. The crate's parser accepts bulk strings
//! up to Redis's own 512 MiB and brings a dependency tree; this file is ~200 lines and fuzzable.
//!
//! Parsing is "check, then build" (the mini-redis shape): [`parse`] walks the buffer once and
//! returns `Ok(None)` while a reply is incomplete, so callers re-run it after each read. Every
//! length is checked against the bytes present before anything is allocated, so a claimed 4 GiB
//! array costs nothing until its elements really arrive.

use std::fmt;

/// Largest bulk string accepted. Our values are small JSON documents (a server record is a few
/// hundred bytes); 4 MiB leaves room for a large `srs-proxy-all-servers` list.
pub const MAX_BULK: usize = 4 << 20;
/// Largest array accepted (an `MGET` of every registered server, an `EXEC` of a pipeline).
pub const MAX_ARRAY: usize = 1 << 20;
/// Nesting bound: our replies nest at most twice (`EXEC` → `MGET`); a deeper tree is hostile.
pub const MAX_DEPTH: usize = 8;
/// Longest simple-string / error / integer line before its CRLF.
pub const MAX_LINE: usize = 64 << 10;

/// One reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `$-1` or `*-1`: a missing key (`GET`), an aborted `EXEC`.
    Nil,
    /// `+OK`.
    Simple(String),
    /// `-ERR …`: a per-command server error. Kept as a value so one failed command in a pipeline
    /// does not hide the others' replies.
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Value>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(s) => write!(f, "-{s}"),
            Value::Int(i) => write!(f, ":{i}"),
            Value::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::Array(v) => f.debug_list().entries(v).finish(),
        }
    }
}

/// Why a reply stream cannot be parsed: the connection must be dropped (RESP has no resync).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("unknown reply type byte 0x{0:02x}")]
    BadType(u8),
    #[error("malformed length or integer {0:?}")]
    BadNumber(String),
    #[error("bulk string of {0} bytes exceeds the {MAX_BULK}-byte limit")]
    BulkTooLarge(i64),
    #[error("array of {0} elements exceeds the {MAX_ARRAY}-element limit")]
    ArrayTooLarge(i64),
    #[error("replies nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("reply line longer than {MAX_LINE} bytes without CRLF")]
    LineTooLong,
    #[error("bulk string not terminated by CRLF")]
    MissingCrlf,
    #[error("reply text is not UTF-8")]
    NotUtf8,
}

/// Parses one reply from the front of `buf`: `Ok(Some((value, used)))`, `Ok(None)` when more
/// bytes are needed (nothing is consumed), or an error when the stream is broken.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

/// One line up to CRLF starting at `*pos`; advances past the CRLF.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, RespError> {
    let rest = &buf[*pos..];
    let window = &rest[..rest.len().min(MAX_LINE + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            *pos += end + 2;
            Ok(Some(&rest[..end]))
        }
        None if rest.len() > MAX_LINE + 1 => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Result<i64, RespError> {
    let bad = || RespError::BadNumber(String::from_utf8_lossy(text).into_owned());
    // `str::parse::<i64>` accepts a leading '+', which RESP lengths never carry; it is harmless
    // for integers, so only the empty case needs care (parse rejects it too).
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(bad)
}

fn text(bytes: &[u8]) -> Result<String, RespError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| RespError::NotUtf8)
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::TooDeep);
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let start = *pos;
    *pos += 1;
    let Some(head) = line(buf, pos)? else {
        *pos = start;
        return Ok(None);
    };
    let value = match kind {
        b'+' => Value::Simple(text(head)?),
        b'-' => Value::Error(text(head)?),
        b':' => Value::Int(number(head)?),
        b'$' => {
            let len = number(head)?;
            if len == -1 {
                Value::Nil
            } else if len < 0 || len as u64 > MAX_BULK as u64 {
                return Err(RespError::BulkTooLarge(len));
            } else {
                let len = len as usize;
                if buf.len() - *pos < len + 2 {
                    *pos = start;
                    return Ok(None);
                }
                if &buf[*pos + len..*pos + len + 2] != b"\r\n" {
                    return Err(RespError::MissingCrlf);
                }
                let data = buf[*pos..*pos + len].to_vec();
                *pos += len + 2;
                Value::Bulk(data)
            }
        }
        b'*' => {
            let n = number(head)?;
            if n == -1 {
                Value::Nil
            } else if n < 0 || n as u64 > MAX_ARRAY as u64 {
                return Err(RespError::ArrayTooLarge(n));
            } else {
                // Capacity grows with elements that really arrived, never with the claim.
                let mut items = Vec::with_capacity((n as usize).min(64));
                for _ in 0..n {
                    match parse_at(buf, pos, depth + 1)? {
                        Some(v) => items.push(v),
                        None => {
                            *pos = start;
                            return Ok(None);
                        }
                    }
                }
                Value::Array(items)
            }
        }
        other => return Err(RespError::BadType(other)),
    };
    Ok(Some(value))
}

/// A command: its arguments as binary-safe strings. `Debug` shows only the name and the
/// argument count, so an `AUTH` never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    args: Vec<Vec<u8>>,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .args
            .first()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default();
        write!(f, "{name} (+{} args)", self.args.len().saturating_sub(1))
    }
}

impl Cmd {
    pub fn new(name: &str) -> Cmd {
        Cmd {
            args: vec![name.as_bytes().to_vec()],
        }
    }

    pub fn arg(mut self, a: impl AsRef<[u8]>) -> Cmd {
        self.args.push(a.as_ref().to_vec());
        self
    }

    pub fn arg_int(self, n: i64) -> Cmd {
        self.arg(n.to_string())
    }

    /// The command name, upper-cased as written by the caller (for error texts).
    pub fn name(&self) -> String {
        self.args
            .first()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default()
    }

    /// Appends the RESP encoding: `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(b'*');
        out.extend_from_slice(self.args.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        for a in &self.args {
            out.push(b'$');
            out.extend_from_slice(a.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }
}

/// Fuzz entry: parse arbitrary bytes as a sequence of replies; must never panic, and must never
/// report consuming more than it was given.
pub fn fuzz_parse(data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        match parse(&data[at..]) {
            Ok(Some((_, used))) if used > 0 && used <= data.len() - at => at += used,
            Ok(Some(_)) => panic!("parse reported an impossible length"),
            Ok(None) | Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Value {
        let (v, used) = parse(buf).unwrap().unwrap();
        assert_eq!(used, buf.len(), "whole buffer consumed");
        v
    }

    #[test]
    fn encodes_commands_as_arrays_of_bulk_strings() {
        let c = Cmd::new("SET").arg("k").arg("v\r\n").arg("EX").arg_int(300);
        assert_eq!(
            c.encode(),
            b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\nEX\r\n$3\r\n300\r\n"
        );
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(one(b"+OK\r\n"), Value::Simple("OK".into()));
        assert_eq!(one(b"-ERR wrong\r\n"), Value::Error("ERR wrong".into()));
        assert_eq!(one(b":-42\r\n"), Value::Int(-42));
        assert_eq!(one(b"$3\r\na\r\n\r\n"), Value::Bulk(b"a\r\n".to_vec()));
        assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(vec![]));
        assert_eq!(one(b"$-1\r\n"), Value::Nil);
        assert_eq!(one(b"*-1\r\n"), Value::Nil);
        assert_eq!(one(b"*0\r\n"), Value::Array(vec![]));
        assert_eq!(
            one(b"*2\r\n*1\r\n:1\r\n$-1\r\n"),
            Value::Array(vec![Value::Array(vec![Value::Int(1)]), Value::Nil])
        );
    }

    #[test]
    fn every_prefix_of_a_reply_needs_more_and_consumes_nothing() {
        let full = b"*3\r\n$5\r\nhello\r\n:7\r\n*1\r\n+OK\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn leaves_following_replies_in_the_buffer() {
        let buf = b"+OK\r\n:1\r\n";
        let (v, used) = parse(buf).unwrap().unwrap();
        assert_eq!((v, used), (Value::Simple("OK".into()), 5));
        assert_eq!(parse(&buf[used..]).unwrap().unwrap().0, Value::Int(1));
    }

    #[test]
    fn rejects_oversized_claims_before_allocating() {
        assert_eq!(
            parse(b"$4194305\r\n"),
            Err(RespError::BulkTooLarge(4194305))
        );
        assert!(matches!(
            parse(b"$99999999999999999999\r\n"),
            Err(RespError::BadNumber(_))
        ));
        assert_eq!(
            parse(b"*1048577\r\n"),
            Err(RespError::ArrayTooLarge(1048577))
        );
        // A claimed huge-but-allowed array with nothing behind it just needs more.
        assert_eq!(parse(b"*1048576\r\n"), Ok(None));
        assert_eq!(parse(b"$-2\r\n"), Err(RespError::BulkTooLarge(-2)));
        assert_eq!(parse(b"*-5\r\n"), Err(RespError::ArrayTooLarge(-5)));
    }

    #[test]
    fn rejects_hostile_shapes() {
        assert_eq!(parse(b"?x\r\n"), Err(RespError::BadType(b'?')));
        assert!(matches!(parse(b":12a\r\n"), Err(RespError::BadNumber(_))));
        assert!(matches!(parse(b"$\r\n"), Err(RespError::BadNumber(_))));
        assert_eq!(parse(b"$2\r\nabXY"), Err(RespError::MissingCrlf));
        assert_eq!(parse(b"+\xff\r\n"), Err(RespError::NotUtf8));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert_eq!(parse(deep.as_bytes()), Err(RespError::TooDeep));
        let long = vec![b'a'; MAX_LINE + 10];
        let mut buf = b"+".to_vec();
        buf.extend_from_slice(&long);
        assert_eq!(parse(&buf), Err(RespError::LineTooLong));
        // Just under the line bound without CRLF yet: need more.
        let mut buf = b"+".to_vec();
        buf.extend_from_slice(&long[..MAX_LINE]);
        assert_eq!(parse(&buf), Ok(None));
    }

    #[test]
    fn never_panics_on_pseudo_random_bytes() {
        // A deterministic xorshift stream, biased towards RESP's own bytes.
        let alphabet = b"*$+-:\r\n0123456789-1?";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut buf = Vec::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            if let Ok(Some((_, used))) = parse(&buf) {
                assert!(used <= buf.len());
            }
            x = x.wrapping_add(1);
        }
    }

    #[test]
    fn command_debug_hides_arguments() {
        let c = Cmd::new("AUTH").arg("hunter2");
        assert_eq!(format!("{c:?}"), "AUTH (+1 args)");
    }
}
