//! HTTP/1.1 connection plumbing shared by the System API and the HTTP stream server: reading a
//! request head with deadlines (idle keep-alive vs. a started head, against slowloris) and a
//! bounded request body. Pipelined bytes stay in the caller's buffer for the next request.

use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use protocols::http::{parse_request_head, BodyKind, Limits, RequestHead};

use crate::metrics::ErrorKind;
use crate::session::io::{read_into, read_into_within, ReadOutcome};

/// Deadline for a complete request head once its first byte arrived, and for a body.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read at a time while reading heads and bodies.
const READ_CHUNK: usize = 4096;

/// What reading a request head gave.
pub enum HeadRead {
    Head(RequestHead),
    /// The client closed, or idled out between requests: close silently.
    Closed,
    /// Answer `status` with `message`, then close.
    Reject {
        status: u16,
        message: String,
        kind: ErrorKind,
    },
}

/// Reads until a complete head is buffered in `buf` (which may already hold pipelined bytes),
/// and removes the head from `buf`.
pub async fn read_request_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> HeadRead {
    // The head deadline runs from the head's first byte, not per read: a client trickling one
    // byte at a time (slowloris) is cut off after HEAD_TIMEOUT in total. It is set when a parse
    // first finds a partial head, a few microseconds after those bytes arrived, so that the
    // usual request (one read, one complete head) costs no clock reading.
    let mut head_deadline = None;
    loop {
        match parse_request_head(buf, limits) {
            Ok(Some((head, n))) => {
                buf.drain(..n);
                return HeadRead::Head(head);
            }
            Ok(None) => {}
            Err(e) => {
                return HeadRead::Reject {
                    status: e.status(),
                    message: e.to_string(),
                    kind: ErrorKind::ClientProtocol,
                }
            }
        }
        let read = if buf.is_empty() {
            // Between requests: the keep-alive idle timeout, from now.
            read_into_within(stream, buf, READ_CHUNK, IDLE_TIMEOUT).await
        } else {
            let deadline = *head_deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
            read_into(stream, buf, READ_CHUNK, Some(deadline)).await
        };
        match read {
            Ok(ReadOutcome::Data(_)) => {}
            Ok(ReadOutcome::Eof) | Err(_) => return HeadRead::Closed,
            Ok(ReadOutcome::TimedOut) if buf.is_empty() => return HeadRead::Closed,
            Ok(ReadOutcome::TimedOut) => {
                return HeadRead::Reject {
                    status: 408,
                    message: "request head not complete in time".into(),
                    kind: ErrorKind::Timeout,
                }
            }
        }
    }
}

/// Reads the request body into memory, at most `max` bytes. Err: the status to answer.
pub async fn read_request_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &RequestHead,
    max: usize,
) -> Result<Vec<u8>, u16> {
    match head.body {
        BodyKind::None => Ok(Vec::new()),
        BodyKind::ContentLength(n) => {
            let n = usize::try_from(n).map_err(|_| 413u16)?;
            if n > max {
                return Err(413);
            }
            while buf.len() < n {
                match read_into_within(stream, buf, READ_CHUNK, HEAD_TIMEOUT).await {
                    Ok(ReadOutcome::Data(_)) => {}
                    Ok(ReadOutcome::TimedOut) => return Err(408),
                    _ => return Err(400),
                }
            }
            Ok(buf.drain(..n).collect())
        }
        BodyKind::Chunked => {
            let mut dec = protocols::http::ChunkedDecoder::new(protocols::http::ChunkedLimits {
                max_body_bytes: max as u64,
                ..Default::default()
            });
            let mut body = Vec::new();
            loop {
                let status = dec.decode(buf, &mut body).map_err(|e| e.status())?;
                buf.drain(..status.consumed);
                if status.done {
                    return Ok(body);
                }
                match read_into_within(stream, buf, READ_CHUNK, HEAD_TIMEOUT).await {
                    Ok(ReadOutcome::Data(_)) => {}
                    Ok(ReadOutcome::TimedOut) => return Err(408),
                    _ => return Err(400),
                }
            }
        }
    }
}

/// Closes after an error answer without losing it: shut our side, then read and drop what the
/// client is still sending (bounded in time and bytes). Closing with unread bytes in the receive
/// queue would make the kernel send a reset that can destroy the answer before the client reads
/// it (RFC 9112 §9.6).
pub async fn lingering_close(stream: &mut TcpStream) {
    use futures_lite::AsyncReadExt;
    let _ = stream.shutdown(std::net::Shutdown::Write).await;
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..64 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match executors::with_timeout(left, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}
