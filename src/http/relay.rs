//! Moving an opaque response body from the origin to the client.
//!
//! The body is not looked at after the head: reads go into a 64 KiB buffer taken from a per-core
//! pool (no allocation per read, none per request once the pool is warm), and each read is
//! written out whole before the next. A body delimited by `Content-Length` stops at its length
//! (the connection then stays usable); any other body runs until the origin closes (the proxy
//! asks the origin for `Connection: close`, so that is the end of this response).

use std::cell::RefCell;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::error::{self, Error, Side};

/// Size of one relay buffer.
pub const RELAY_BUF: usize = 64 * 1024;
/// Buffers kept per core for reuse; more concurrent relays allocate and free their own.
const POOL_MAX: usize = 1024;

thread_local! {
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A relay buffer that returns to this core's pool when dropped.
pub struct PooledBuf(Option<Box<[u8]>>);

impl PooledBuf {
    pub fn take() -> PooledBuf {
        let b = POOL
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| vec![0u8; RELAY_BUF].into_boxed_slice());
        PooledBuf(Some(b))
    }

    pub fn as_mut(&mut self) -> &mut [u8] {
        // INVARIANT: the box is only taken out in `drop`.
        self.0.as_mut().expect("buffer present until drop")
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            POOL.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL_MAX {
                    p.push(b);
                }
            });
        }
    }
}

/// Relays the body: first the bytes already read past the head (`leftover`), then from `origin`.
/// `length`: the body's `Content-Length`, or `None` for "until the origin closes". Returns the
/// bytes relayed.
pub async fn relay_body(
    origin: &mut TcpStream,
    client: &mut TcpStream,
    leftover: &[u8],
    length: Option<u64>,
) -> Result<u64, Error> {
    let mut left = length.unwrap_or(u64::MAX);
    let first = &leftover[..leftover
        .len()
        .min(usize::try_from(left).unwrap_or(usize::MAX))];
    if !first.is_empty() {
        client
            .write_all(first)
            .await
            .map_err(|e| error::io(Side::Client, "write", e))?;
        left -= first.len() as u64;
    }
    let mut sent = first.len() as u64;
    let mut buf = PooledBuf::take();
    let buf = buf.as_mut();
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = origin
            .read(&mut buf[..want])
            .await
            .map_err(|e| error::io(Side::Origin, "read", e))?;
        if n == 0 {
            if length.is_some() {
                return Err(Error::origin(
                    crate::metrics::ErrorKind::Io,
                    format!("origin closed {left} bytes before the end of the body ({sent} sent)"),
                ));
            }
            break;
        }
        client
            .write_all(&buf[..n])
            .await
            .map_err(|e| error::io(Side::Client, "write", e))?;
        sent += n as u64;
        left -= n as u64;
    }
    client
        .flush()
        .await
        .map_err(|e| error::io(Side::Client, "flush", e))?;
    Ok(sent)
}
