//! Socket helpers shared by the sessions: reads with a deadline into a growable buffer, and
//! immediate ACKs for command phases.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

/// Asks the kernel to acknowledge what arrives next at once (`TCP_QUICKACK`) instead of delaying
/// the ACK. Linux falls back to delayed ACKs by itself, so a command phase sets it before each
/// read. Without it a peer that holds a small write behind Nagle until its previous segment is
/// acknowledged (nginx-rtmp answers a command in several small writes) waits out our delayed
/// ACK: up to 40 ms per exchange. Best effort: a failure changes nothing but latency.
pub fn quick_ack(stream: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor owned by `stream`, and a c_int option value that lives
    // for the duration of the call.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// The outcome of one bounded read.
pub enum ReadOutcome {
    Data(usize),
    Eof,
    TimedOut,
}

/// Reads once into the spare capacity of `buf` (grown by up to `chunk` bytes), waiting at most
/// until `deadline` (None: no deadline).
pub async fn read_into(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: usize,
    deadline: Option<Instant>,
) -> std::io::Result<ReadOutcome> {
    read_once(stream, buf, chunk, Wait::until(deadline)).await
}

/// [`read_into`] with a coarse timeout instead of a deadline: waits about `timeout` from now, to
/// within a second ([`executors::coarse`]). For the waits of request loops, which pay it on
/// every request and almost never reach it: no timer and no clock reading per call.
pub async fn read_into_within(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: usize,
    timeout: Duration,
) -> std::io::Result<ReadOutcome> {
    read_once(stream, buf, chunk, Wait::Coarse(timeout)).await
}

/// How long a read may wait.
enum Wait {
    Forever,
    Precise(Duration),
    Coarse(Duration),
}

impl Wait {
    /// Until `deadline` (at least 1 ms more, so a deadline just reached still gets one try), or
    /// forever.
    fn until(deadline: Option<Instant>) -> Wait {
        match deadline {
            Some(d) => Wait::Precise(
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ),
            None => Wait::Forever,
        }
    }

    /// Runs `fut` within this wait; `Err` when it ran out.
    async fn run<T>(self, fut: impl Future<Output = T>) -> Result<T, executors::Elapsed> {
        match self {
            Wait::Forever => Ok(fut.await),
            Wait::Precise(left) => executors::with_timeout(left, fut).await,
            Wait::Coarse(left) => executors::with_coarse_timeout(left, fut).await,
        }
    }
}

async fn read_once(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: usize,
    wait: Wait,
) -> std::io::Result<ReadOutcome> {
    let start = buf.len();
    buf.resize(start + chunk, 0);
    let res = match wait.run(stream.read(&mut buf[start..])).await {
        Ok(r) => r,
        Err(_) => {
            buf.truncate(start);
            return Ok(ReadOutcome::TimedOut);
        }
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

/// One non-blocking vectored send (`sendmsg` with `MSG_DONTWAIT`): how many bytes the kernel
/// took, possibly fewer than offered; `WouldBlock` when the socket buffer is full. Lets the relay
/// write chunk headers and payload slices of the receive buffer in one syscall without copying
/// them together first (glommio's streams have no vectored write).
///
/// The caller guarantees every `iovec` points into memory that stays valid for the call (the
/// relay builds them from its plan and receive buffer right before calling).
pub fn try_send_vectored(fd: std::os::fd::RawFd, iov: &[libc::iovec]) -> std::io::Result<usize> {
    if iov.is_empty() {
        return Ok(0);
    }
    let iovlen = iov.len().min(IOV_BATCH);
    // SAFETY: the iovecs point into live buffers (caller's contract above) and the kernel only
    // reads them; `msg` is fully initialised (zeroed, then the iovec fields set); `fd` is an open
    // socket owned by the caller's stream for the duration of the call.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iovlen as _;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// At most this many slices per `sendmsg` (well under `IOV_MAX` = 1024 on Linux).
pub const IOV_BATCH: usize = 512;

/// Like [`read_into`], but holds no buffer while it waits when nothing is buffered: it waits
/// with a 1-byte read, then takes whatever else the socket already has without waiting. Idle
/// connections in a command phase (or an idle keep-alive) then cost no read buffer.
pub async fn read_lazily(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: usize,
    deadline: Option<Instant>,
) -> std::io::Result<ReadOutcome> {
    if !buf.is_empty() {
        return read_into(stream, buf, chunk, deadline).await;
    }
    *buf = Vec::new();
    let mut first = [0u8; 1];
    let res = match Wait::until(deadline).run(stream.read(&mut first)).await {
        Ok(r) => r,
        Err(_) => return Ok(ReadOutcome::TimedOut),
    };
    match res {
        Ok(0) => return Ok(ReadOutcome::Eof),
        Ok(_) => {}
        Err(e) => return Err(e),
    }
    buf.reserve_exact(chunk);
    buf.push(first[0]);
    buf.resize(chunk, 0);
    // What else is already there, without waiting (a pending read is dropped, not lost: glommio
    // only registers interest in readability).
    let more = futures_lite::future::poll_once(stream.read(&mut buf[1..])).await;
    let n = match more {
        Some(Ok(n)) => n,
        // The error (or EOF) shows up again on the next read; deliver the byte we have first.
        Some(Err(_)) | None => 0,
    };
    buf.truncate(1 + n);
    Ok(ReadOutcome::Data(1 + n))
}

/// Size of the relay buffers in the per-core pool.
pub const POOL_BUFFER: usize = 64 * 1024;
/// Buffers kept for reuse per core; beyond that they are freed.
const POOL_KEEP: usize = 256;

thread_local! {
    // One pool per executor thread: no locking, no sharing between cores.
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of exactly [`POOL_BUFFER`] bytes (length, not just capacity: it is zeroed once
/// when first allocated, never again) from this core's pool.
pub fn take_buffer() -> Vec<u8> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| vec![0; POOL_BUFFER])
}

/// Returns a buffer to this core's pool (anything but a pool buffer is just freed).
pub fn give_buffer(buf: Vec<u8>) {
    if buf.len() != POOL_BUFFER || buf.capacity() != POOL_BUFFER {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_KEEP {
            p.push(buf);
        }
    });
}
