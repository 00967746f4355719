//! Socket helpers shared by the sessions: reads with a deadline into a growable buffer.

use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

/// The outcome of one bounded read.
pub enum ReadOutcome {
    Data(usize),
    Eof,
    TimedOut,
}

/// Reads once into the spare capacity of `buf` (grown by up to `chunk` bytes), waiting at most
/// until `deadline` (None: no deadline). Never reads past `max` buffered bytes.
pub async fn read_into(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: usize,
    deadline: Option<Instant>,
) -> std::io::Result<ReadOutcome> {
    let start = buf.len();
    buf.resize(start + chunk, 0);
    let res = match deadline {
        Some(d) => {
            let left = d
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            match executors::with_timeout(left, stream.read(&mut buf[start..])).await {
                Ok(r) => r,
                Err(_) => {
                    buf.truncate(start);
                    return Ok(ReadOutcome::TimedOut);
                }
            }
        }
        None => stream.read(&mut buf[start..]).await,
    };
    match res {
        Ok(0) => {
            buf.truncate(start);
            Ok(ReadOutcome::Eof)
        }
        Ok(n) => {
            buf.truncate(start + n);
            Ok(ReadOutcome::Data(n))
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}
