//! Moving an opaque response body from the origin to the client.
//!
//! The body is not looked at after the head. Two ways to move it, chosen once per process by
//! `PROXY_HTTP_RELAY` ([`RelayMode`]; default `splice`, about 20 % less CPU per GB than `copy` in
//! `bench http-flv-fanout`, see `bench/RESULTS.md`):
//! - `copy`: reads go into a 64 KiB buffer taken from a per-core pool (no allocation per read,
//!   none per request once the pool is warm), and each read is written out whole before the next.
//! - `splice`: `splice(2)` origin socket → pipe → client socket with a pipe from a per-core pool
//!   (64 KiB, `F_SETPIPE_SZ`), so the payload never enters user space. Readiness comes from
//!   glommio's ring: when the origin has nothing, a `POLL_ADD` waits for data without taking
//!   it (no failed read, no byte copied through a buffer), then the splice runs again; when the
//!   client would block, the pipe is drained into a pooled buffer and written with `write_all`
//!   (which waits).
//!
//!  A body delimited by `Content-Length` stops at its length
//! (the connection then stays usable); any other body runs until the origin closes (the proxy
//! asks the origin for `Connection: close`, so that is the end of this response).

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// How bodies are moved: `PROXY_HTTP_RELAY`, validated with the rest of the configuration.
pub use crate::config::HttpRelay as RelayMode;

/// Relays the body: first the bytes already read past the head (`leftover`), then from `origin`.
/// `length`: the body's `Content-Length`, or `None` for "until the origin closes" (a live
/// HTTP-FLV/TS stream: this core coalesces its wake-ups meanwhile, see
/// [`executors::wake`]). Returns the bytes relayed.
pub async fn relay_body(
    origin: &mut TcpStream,
    client: &mut TcpStream,
    leftover: &[u8],
    length: Option<u64>,
    mode: RelayMode,
) -> Result<u64, Error> {
    let _coalescing = length.is_none().then(executors::wake::coalescing);
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
    let sent = first.len() as u64;
    let (sent, left) = match mode {
        // No pipe (fd limit): the copy relay still works.
        RelayMode::Splice => match PooledPipe::take() {
            Some(mut pipe) => splice_body(origin, client, &mut pipe, sent, left, length).await?,
            None => (sent, left),
        },
        RelayMode::Copy => (sent, left),
    };
    copy_body(origin, client, sent, left, length).await
}

async fn copy_body(
    origin: &mut TcpStream,
    client: &mut TcpStream,
    mut sent: u64,
    mut left: u64,
    length: Option<u64>,
) -> Result<u64, Error> {
    let mut buf = PooledBuf::take();
    let buf = buf.as_mut();
    while left > 0 {
        // A read that finds bytes waiting does not yield: give way when the executor asks.
        glommio::yield_if_needed().await;
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

/// Size of one relay pipe (`F_SETPIPE_SZ`).
pub(crate) const PIPE_SIZE: usize = RELAY_BUF;
/// Empty pipes kept per core for reuse (each holds up to [`PIPE_SIZE`] of kernel memory in use).
const PIPE_POOL_MAX: usize = 256;

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A pipe that returns to this core's pool when dropped empty (one with bytes left in it, after
/// an error, is closed instead).
pub(crate) struct PooledPipe {
    pipe: Option<Pipe>,
    /// Bytes spliced in and not yet out.
    pub(crate) held: usize,
}

impl PooledPipe {
    /// A pooled or new non-blocking pipe; `None` when the process cannot make one (fd limits).
    pub(crate) fn take() -> Option<PooledPipe> {
        let pipe = match PIPES.with(|p| p.borrow_mut().pop()) {
            Some(p) => p,
            None => {
                let mut fds = [0 as RawFd; 2];
                // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
                if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0
                {
                    return None;
                }
                // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
                let (read, write) =
                    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
                // SAFETY: fcntl on an fd we own; a failure only leaves the default size.
                unsafe {
                    libc::fcntl(
                        write.as_raw_fd(),
                        libc::F_SETPIPE_SZ,
                        PIPE_SIZE as libc::c_int,
                    );
                }
                Pipe { read, write }
            }
        };
        Some(PooledPipe {
            pipe: Some(pipe),
            held: 0,
        })
    }

    /// (read end, write end).
    pub(crate) fn fds(&self) -> (RawFd, RawFd) {
        // INVARIANT: the pipe is only taken out in `drop`.
        let p = self.pipe.as_ref().expect("pipe present until drop");
        (p.read.as_raw_fd(), p.write.as_raw_fd())
    }
}

impl Drop for PooledPipe {
    fn drop(&mut self) {
        if let Some(p) = self.pipe.take() {
            if self.held == 0 {
                PIPES.with(|pool| {
                    let mut pool = pool.borrow_mut();
                    if pool.len() < PIPE_POOL_MAX {
                        pool.push(p);
                    }
                });
            }
        }
    }
}

/// Sets `O_NONBLOCK` on a socket until dropped (then restores its flags).
pub(crate) struct NonBlocking {
    fd: RawFd,
    old: libc::c_int,
}

impl NonBlocking {
    pub(crate) fn set(fd: RawFd) -> NonBlocking {
        // SAFETY: fcntl on an fd owned by a stream that outlives this guard (same scope).
        let old = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if old >= 0 && old & libc::O_NONBLOCK == 0 {
            // SAFETY: as above; only the file status flags change.
            unsafe { libc::fcntl(fd, libc::F_SETFL, old | libc::O_NONBLOCK) };
        }
        NonBlocking { fd, old }
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        if self.old >= 0 && self.old & libc::O_NONBLOCK == 0 {
            // SAFETY: the stream owning `fd` is still alive (the guard lives in a narrower scope).
            unsafe { libc::fcntl(self.fd, libc::F_SETFL, self.old) };
        }
    }
}

/// `splice(2)` from `from` to `to`, at most `len` bytes, non-blocking; `Ok(None)` on `EAGAIN`.
pub(crate) fn splice(from: RawFd, to: RawFd, len: usize) -> std::io::Result<Option<usize>> {
    // SAFETY: both fds are open for the duration of the call; null offsets are valid for pipes
    // and sockets; the kernel touches no user memory.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        )
    };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(None)
    } else {
        Err(e)
    }
}

/// The splice relay (see the module doc). Returns `(sent, left)` for [`copy_body`] to finish
/// with: `left` is 0 after a `Content-Length` body, and `u64::MAX` after a body that ran until the
/// origin closed (the copy then reads that end-of-file once more and stops).
async fn splice_body(
    origin: &mut TcpStream,
    client: &mut TcpStream,
    pipe: &mut PooledPipe,
    mut sent: u64,
    mut left: u64,
    length: Option<u64>,
) -> Result<(u64, u64), Error> {
    let pipe_w = pipe.fds().1;
    let (origin_fd, client_fd) = (origin.as_raw_fd(), client.as_raw_fd());
    // glommio leaves its sockets blocking (it passes MSG_DONTWAIT itself); splice only stays
    // non-blocking on a socket that is O_NONBLOCK. glommio's poll-then-syscall reads and writes
    // work either way; the flags are restored when the relay ends.
    let _origin_nb = NonBlocking::set(origin_fd);
    let _client_nb = NonBlocking::set(client_fd);
    let mut spare: Option<PooledBuf> = None;
    // Whether the origin may have bytes queued. A splice that moved less than it asked for
    // emptied the socket, so the next step is the wait, not a splice that fails with EAGAIN.
    let mut queued = true;
    while left > 0 {
        // With bytes always waiting on one side and room on the other, no step below waits,
        // so nothing else on this core would run: give way when the executor asks.
        glommio::yield_if_needed().await;
        let want = PIPE_SIZE.min(usize::try_from(left).unwrap_or(usize::MAX));
        // Waiting goes through the ring (a POLL_ADD: nothing is read); the splice after it
        // moves 0 bytes at the end of the stream.
        if !queued {
            origin
                .readable()
                .await
                .map_err(|e| error::io(Side::Origin, "read", e.into()))?;
        }
        let n = match splice(origin_fd, pipe_w, want)
            .map_err(|e| error::io(Side::Origin, "splice", e))?
        {
            Some(n) => n,
            None => {
                queued = false;
                continue;
            }
        };
        queued = n == want;
        if n == 0 {
            if length.is_some() {
                return Err(Error::origin(
                    crate::metrics::ErrorKind::Io,
                    format!("origin closed {left} bytes before the end of the body ({sent} sent)"),
                ));
            }
            break;
        }
        pipe.held = n;
        drain_pipe(pipe, client_fd, client, &mut spare).await?;
        sent += n as u64;
        left -= n as u64;
    }
    Ok((sent, left))
}

/// Moves the `pipe.held` bytes in `pipe` to the client socket `client_fd` (non-blocking). When
/// the client would block, what is left goes through a pooled buffer (`spare`) and `client`'s
/// `write_all`, which waits for room.
pub(crate) async fn drain_pipe<W: futures_lite::AsyncWrite + Unpin>(
    pipe: &mut PooledPipe,
    client_fd: RawFd,
    client: &mut W,
    spare: &mut Option<PooledBuf>,
) -> Result<(), Error> {
    let pipe_r = pipe.fds().0;
    while pipe.held > 0 {
        match splice(pipe_r, client_fd, pipe.held)
            .map_err(|e| error::io(Side::Client, "splice", e))?
        {
            Some(w) => pipe.held -= w,
            None => {
                let buf = spare.get_or_insert_with(PooledBuf::take).as_mut();
                let held = pipe.held;
                // SAFETY: reads at most `held` (≤ PIPE_SIZE = RELAY_BUF) bytes into our own
                // buffer of RELAY_BUF bytes.
                let r = unsafe { libc::read(pipe_r, buf.as_mut_ptr().cast(), held) };
                if r != held as isize {
                    return Err(error::io(
                        Side::Internal,
                        "pipe read",
                        std::io::Error::last_os_error(),
                    ));
                }
                pipe.held = 0;
                client
                    .write_all(&buf[..held])
                    .await
                    .map_err(|e| error::io(Side::Client, "write", e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::net::TcpListener;
    use std::time::Duration;

    /// A connected (origin-side writer, proxy-side reader) pair and a (proxy-side writer,
    /// client-side reader) pair, all loopback TCP on this executor.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let connect = glommio::spawn_local(async move { TcpStream::connect(addr).await.unwrap() });
        let accepted = l.accept().await.unwrap();
        (connect.await, accepted)
    }

    /// The origin writes `pieces` (pausing between them, then closing unless `keep_open`); the
    /// body is relayed with `mode`; returns the relay's result and what the client read.
    fn relay_case(
        mode: RelayMode,
        pieces: Vec<Vec<u8>>,
        length: Option<u64>,
        keep_open: bool,
    ) -> (Result<u64, String>, Vec<u8>) {
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let (mut origin_w, mut origin_r) = pair().await;
                let (mut proxy_w, mut client_r) = pair().await;
                let writer = glommio::spawn_local(async move {
                    for p in pieces {
                        origin_w.write_all(&p).await.unwrap();
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }
                    if keep_open {
                        glommio::timer::sleep(Duration::from_millis(300)).await;
                    }
                });
                let reader = glommio::spawn_local(async move {
                    let mut got = Vec::new();
                    client_r.read_to_end(&mut got).await.unwrap();
                    got
                });
                let r = relay_body(&mut origin_r, &mut proxy_w, b"", length, mode)
                    .await
                    .map_err(|e| e.to_string());
                drop(proxy_w);
                writer.await;
                (r, reader.await)
            })
            .unwrap()
            .join()
            .unwrap()
    }

    fn pieces() -> Vec<Vec<u8>> {
        // Larger than a pipe, and small ones that each find the origin empty afterwards.
        vec![
            vec![1u8; 100_000],
            vec![2u8; 10],
            vec![3u8; 70_000],
            vec![4u8; 1],
        ]
    }

    #[test]
    fn both_relays_move_a_body_until_the_origin_closes() {
        let want: Vec<u8> = pieces().concat();
        for mode in [RelayMode::Splice, RelayMode::Copy] {
            let (r, got) = relay_case(mode, pieces(), None, false);
            assert_eq!(r, Ok(want.len() as u64), "{mode:?}");
            assert!(got == want, "{mode:?}: {} bytes differ", got.len());
        }
    }

    #[test]
    fn both_relays_stop_at_content_length_with_the_origin_still_open() {
        let all: Vec<u8> = pieces().concat();
        let length = 170_005u64;
        for mode in [RelayMode::Splice, RelayMode::Copy] {
            let (r, got) = relay_case(mode, pieces(), Some(length), true);
            assert_eq!(r, Ok(length), "{mode:?}");
            assert!(got == all[..length as usize], "{mode:?}");
        }
    }

    #[test]
    fn both_relays_report_an_origin_that_closes_before_content_length() {
        for mode in [RelayMode::Splice, RelayMode::Copy] {
            let (r, got) = relay_case(mode, vec![vec![7u8; 5000]], Some(9000), false);
            let e = r.expect_err("short body is an error");
            assert!(e.contains("4000 bytes before the end"), "{mode:?}: {e}");
            assert_eq!(got, vec![7u8; 5000], "{mode:?}");
        }
    }
}
