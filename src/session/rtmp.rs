//! RTMP sessions (spec §5.1 with §10 #22–#24 fixed).
//!
//! Phases, each with a deadline except the last:
//! 1. client handshake and command phase (`ServerSession`) until `publish`/`play`;
//! 2. pick the origin for the stream key, connect (a refused connect moves the pin to another
//!    origin and retries), and run the origin-side command phase (`ClientSession`);
//! 3. tell the client to start (or send it an error `onStatus` and close);
//! 4. relay both ways with `RelayDirection`: chunk headers are re-encoded, payload is forwarded
//!    from the receive buffer, no allocation per message, no deadline (a quiet stream is legal).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_lite::{future, AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use protocols::rtmp::{
    ClientConfig, ClientEvent, ClientSession, RelayDirection, RelayPlan, Segment, ServerConfig,
    ServerEvent, ServerSession, StreamKind,
};
use rand::RngCore;
use tracing::{debug, info, warn, Instrument};

use super::io::{quick_ack, read_lazily, ReadOutcome};
use crate::config::RtmpRelay;
use crate::error::{self, Error, Side};
use crate::http::relay::{drain_pipe, splice, NonBlocking, PooledPipe, PIPE_SIZE};
use crate::lb::Origin;
use crate::metrics::{CoreMetrics, ErrorKind, Protocol};
use crate::runtime::CoreState;

/// Handshake + command phase deadline on the client side (spec §10 #19).
pub const CLIENT_PHASE_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP connect deadline to an origin.
pub const ORIGIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshake + command phase deadline on the origin side.
pub const ORIGIN_PHASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read size during the command phases (the handshake is 1537 + 1536 bytes).
const PHASE_READ: usize = 4096;

/// Serves one client connection to its end.
pub async fn serve(stream: TcpStream, peer: SocketAddr, st: Rc<CoreState>) {
    let cid = crate::cid::new_cid();
    let span = tracing::info_span!("rtmp", cid = %cid);
    let shutdown = st.shutdown.clone();
    let metrics = st.metrics.clone();
    let _active = metrics.connection(Protocol::Rtmp);
    let res = future::or(run(stream, peer, st, cid.clone()), async move {
        shutdown.wait().await;
        Ok(())
    })
    .instrument(span.clone())
    .await;
    let _e = span.enter();
    match res {
        Ok(()) => debug!("RTMP client done"),
        // A peer closing is how every session ends: not an error.
        Err(e) if e.is_peer_closed() => debug!("RTMP peer is closed: {e}"),
        Err(e) => {
            metrics.error(Protocol::Rtmp, e.kind);
            warn!("RTMP serve err: {e}");
        }
    }
}

async fn write_out(stream: &mut TcpStream, out: &mut Vec<u8>, side: Side) -> Result<(), Error> {
    if out.is_empty() {
        return Ok(());
    }
    let r = stream.write_all(out).await;
    // Command-phase output is rare: keep no buffer around on idle connections.
    *out = Vec::new();
    r.map_err(|e| error::io(side, "write", e))
}

fn random_1528() -> [u8; 1528] {
    let mut b = [0u8; 1528];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

async fn run(
    mut client: TcpStream,
    peer: SocketAddr,
    st: Rc<CoreState>,
    cid: String,
) -> Result<(), Error> {
    info!("Got RTMP client from {peer}");
    // Hold no buffers and no session state until the client says something: idle connections
    // then cost only this task and the socket.
    let mut first = [0u8; 1];
    match executors::with_timeout(CLIENT_PHASE_TIMEOUT, client.read(&mut first)).await {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) => return Err(Error::client(ErrorKind::Io, "closed before the handshake")),
        Ok(Err(e)) => return Err(error::io(Side::Client, "read", e)),
        Err(_) => {
            return Err(Error::client(
                ErrorKind::Timeout,
                format!("sent nothing within {CLIENT_PHASE_TIMEOUT:?}"),
            ))
        }
    }
    let mut server = ServerSession::new(
        ServerConfig {
            srs_id: cid.clone(),
            srs_version: crate::version::VERSION.to_string(),
            s1_random: random_1528(),
            phase_timeout: CLIENT_PHASE_TIMEOUT,
        },
        Instant::now(),
    );
    let mut cbuf: Vec<u8> = vec![first[0]];
    let mut out: Vec<u8> = Vec::new();

    // Phase 1: handshake and commands until publish/play.
    let (kind, tc_url, stream_name) = loop {
        let consumed = server
            .handle_input(&cbuf)
            .map_err(|e| Error::client(ErrorKind::ClientProtocol, e.to_string()))?;
        cbuf.drain(..consumed);
        if cbuf.is_empty() {
            cbuf = Vec::new();
        }
        server.poll_transmit(&mut out);
        write_out(&mut client, &mut out, Side::Client).await?;
        if let Some(ServerEvent::Identified {
            kind,
            tc_url,
            stream_name,
        }) = server.poll_event()
        {
            break (kind, tc_url, stream_name);
        }
        let deadline = server.poll_timeout();
        quick_ack(&client);
        match read_lazily(&mut client, &mut cbuf, PHASE_READ, deadline).await {
            Ok(ReadOutcome::Data(_)) => {}
            Ok(ReadOutcome::Eof) => {
                return Err(Error::client(
                    ErrorKind::Io,
                    "closed during the command phase",
                ))
            }
            Ok(ReadOutcome::TimedOut) => {
                let _ = server.handle_timeout(Instant::now());
                return Err(Error::client(
                    ErrorKind::Timeout,
                    format!("no publish/play within {CLIENT_PHASE_TIMEOUT:?}"),
                ));
            }
            Err(e) => return Err(error::io(Side::Client, "read", e)),
        }
    };
    let kind_name = match kind {
        StreamKind::Publish => "publisher",
        StreamKind::Play => "viewer",
    };

    // Phase 2: the origin.
    let key = match protocols::stream_key::stream_key_from_rtmp(&tc_url, &stream_name) {
        Ok(k) => k,
        Err(e) => {
            let msg = format!("bad stream url tcUrl={tc_url} stream={stream_name}: {e}");
            reject(&mut server, &mut client, &mut out, &msg).await;
            return Err(Error::client(ErrorKind::ClientProtocol, msg));
        }
    };
    info!("RTMP identify tcUrl={tc_url}, stream={stream_name}, key={key}, type={kind_name}");
    // Boxed (like the relay below) so that a connection still in its command phase carries
    // only a small future: idle connections stay cheap.
    let connected = Box::pin(connect_origin(&st, &key, &tc_url, &stream_name, kind)).await;
    let (origin_stream, origin_session, obuf, origin) = match connected {
        Ok(c) => c,
        Err(e) => {
            reject(&mut server, &mut client, &mut out, &e.message).await;
            return Err(e);
        }
    };
    let _pin = st.lb.session(&key);

    // Phase 3: tell the client to start.
    server.accept();
    server.poll_transmit(&mut out);
    write_out(&mut client, &mut out, Side::Client).await?;
    info!(
        "RTMP {kind_name} stream={stream_name} relaying via origin {} ({})",
        origin.id, origin.ip
    );

    // Phase 4: relay.
    let (up, down) = RelayDirection::pair(server.into_relay(), origin_session.into_relay());
    drop(out);
    Box::pin(relay(
        client,
        origin_stream,
        cbuf,
        obuf,
        up,
        down,
        &st.metrics,
        st.config.rtmp_relay == RtmpRelay::Splice,
    ))
    .await
}

/// Sends the client an error `onStatus` (spec §10 #24) and flushes it, ignoring write errors: the
/// connection is closed next anyway.
async fn reject(server: &mut ServerSession, client: &mut TcpStream, out: &mut Vec<u8>, why: &str) {
    server.reject(why);
    server.poll_transmit(out);
    let _ = write_out(client, out, Side::Client).await;
}

/// Picks the origin, connects, and runs the origin-side command phase. A refused or unreachable
/// origin moves the pin (for every core) and the next origin is tried.
async fn connect_origin(
    st: &CoreState,
    key: &str,
    tc_url: &str,
    stream_name: &str,
    kind: StreamKind,
) -> Result<(TcpStream, ClientSession, Vec<u8>, Arc<Origin>), Error> {
    let ((stream, session, buf), origin) =
        super::origin::with_origin(st, key, |origin| async move {
            origin_session(&origin, tc_url, stream_name, kind).await
        })
        .await?;
    Ok((stream, session, buf, origin))
}

async fn origin_session(
    origin: &Origin,
    tc_url: &str,
    stream_name: &str,
    kind: StreamKind,
) -> Result<(TcpStream, ClientSession, Vec<u8>), Error> {
    let port = origin.rtmp_port.ok_or_else(|| {
        Error::origin(
            ErrorKind::OriginRejected,
            format!(
                "origin {} registered no usable rtmp port ({:?})",
                origin.id, origin.rtmp
            ),
        )
    })?;
    let addr = origin
        .socket_addr(port)
        .map_err(|e| Error::origin(ErrorKind::OriginUnreachable, e.to_string()))?;
    let mut stream = match TcpStream::connect_timeout(addr, ORIGIN_CONNECT_TIMEOUT).await {
        Ok(s) => s,
        Err(e) => {
            return Err(Error::origin(
                ErrorKind::OriginUnreachable,
                format!("connect to origin {} at {addr}: {e}", origin.id),
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let mut session = ClientSession::new(
        ClientConfig {
            tc_url: tc_url.to_string(),
            stream_name: stream_name.to_string(),
            kind,
            c1_random: random_1528(),
            phase_timeout: ORIGIN_PHASE_TIMEOUT,
        },
        Instant::now(),
    );
    let mut buf: Vec<u8> = Vec::with_capacity(PHASE_READ);
    let mut out = Vec::new();
    loop {
        let consumed = session.handle_input(&buf).map_err(|e| {
            Error::origin(
                ErrorKind::OriginRejected,
                format!("origin {addr} broke RTMP: {e}"),
            )
        })?;
        buf.drain(..consumed);
        if buf.is_empty() {
            buf = Vec::new();
        }
        session.poll_transmit(&mut out);
        write_out(&mut stream, &mut out, Side::Origin).await?;
        match session.poll_event() {
            Some(ClientEvent::Ready) => return Ok((stream, session, buf)),
            Some(ClientEvent::Rejected { code, description }) => {
                return Err(Error::origin(
                    ErrorKind::OriginRejected,
                    format!("origin {addr} refused {stream_name}: {code} {description}"),
                ))
            }
            None => {}
        }
        quick_ack(&stream);
        match read_lazily(&mut stream, &mut buf, PHASE_READ, session.poll_timeout()).await {
            Ok(ReadOutcome::Data(_)) => {}
            Ok(ReadOutcome::Eof) => {
                // SRS closes without an error status on a busy stream (fixture publish-ffmpeg-busy).
                return Err(Error::origin(
                    ErrorKind::OriginRejected,
                    format!("origin {addr} closed the connection before starting {stream_name} (stream busy or refused by the origin)"),
                ));
            }
            Ok(ReadOutcome::TimedOut) => {
                return Err(Error::origin(
                    ErrorKind::Timeout,
                    format!(
                        "origin {addr} did not start {stream_name} within {ORIGIN_PHASE_TIMEOUT:?}"
                    ),
                ))
            }
            Err(e) => return Err(error::io(Side::Origin, "read", e)),
        }
    }
}

/// Relays both directions until either side ends; then both sockets close. With `splice`, the
/// origin → client direction switches to [`splice_rest`] once the client's chunk-stream state
/// equals the origin's ([`RelayDirection::verbatim_ready`]).
///
/// While it relays, this core coalesces its wake-ups ([`executors::wake`],
/// `PROXY_WAKE_COALESCE`): origins write a message to each player's connection in turn, often
/// a chunk per `send`, and one wake-up should carry the whole message.
///
/// The origin → client direction runs as a task of its own: it is the busy one (every media
/// burst wakes it), and as a branch of one joined future each of its wake-ups would also poll
/// the idle client → origin branch and everything above it. Dropping the relay (the session
/// ends, or shutdown) drops the task's handle, which cancels it.
#[allow(clippy::too_many_arguments)]
async fn relay(
    client: TcpStream,
    origin: TcpStream,
    client_leftover: Vec<u8>,
    origin_leftover: Vec<u8>,
    up: RelayDirection,
    down: RelayDirection,
    metrics: &Arc<CoreMetrics>,
    splice: bool,
) -> Result<(), Error> {
    let _coalescing = executors::wake::coalescing();
    let (client_fd, origin_fd) = (client.as_raw_fd(), origin.as_raw_fd());
    let (client_r, client_w) = futures_lite::io::split(client);
    let (origin_r, origin_w) = futures_lite::io::split(origin);
    let down_metrics = metrics.clone();
    let downstream = glommio::spawn_local(
        async move {
            let counters = down_metrics.proto(Protocol::Rtmp);
            pump(
                origin_r,
                Sink {
                    fd: client_fd,
                    stream: client_w,
                    side: Side::Client,
                },
                origin_leftover,
                down,
                &counters.origin_to_client_bytes,
                &counters.relay_writes,
                Side::Origin,
                splice.then_some((origin_fd, &counters.spliced)),
            )
            .await
        }
        .in_current_span(),
    );
    let counters = metrics.proto(Protocol::Rtmp);
    let upstream = pump(
        client_r,
        Sink {
            fd: origin_fd,
            stream: origin_w,
            side: Side::Origin,
        },
        client_leftover,
        up,
        &counters.client_to_origin_bytes,
        &counters.relay_writes,
        Side::Client,
        None,
    );
    future::or(upstream, downstream).await
}

/// The destination of one relay direction: vectored non-blocking sends on the raw socket, and
/// the async stream to wait for room when the socket buffer is full.
struct Sink<W> {
    fd: RawFd,
    stream: W,
    side: Side,
}

impl<W: AsyncWrite + Unpin> Sink<W> {
    /// Writes the plan (chunk headers + payload ranges of `input`). The common case is one
    /// `sendmsg` with no copy; whatever the kernel does not take at once is copied to `spill`
    /// and written when the socket has room.
    async fn write_plan(
        &mut self,
        plan: &RelayPlan,
        input: &[u8],
        iov: &mut Vec<libc::iovec>,
        spill: &mut Vec<u8>,
    ) -> Result<usize, Error> {
        let total = plan.out_len();
        iov.clear();
        for seg in &plan.segments {
            let bytes = match seg {
                Segment::Header(r) => &plan.headers[r.clone()],
                Segment::Payload(r) => &input[r.clone()],
            };
            if !bytes.is_empty() {
                iov.push(libc::iovec {
                    iov_base: bytes.as_ptr() as *mut libc::c_void,
                    iov_len: bytes.len(),
                });
            }
        }
        let mut sent = 0;
        let mut start = 0;
        while start < iov.len() {
            let end = (start + super::io::IOV_BATCH).min(iov.len());
            let want: usize = iov[start..end].iter().map(|v| v.iov_len).sum();
            match super::io::try_send_vectored(self.fd, &iov[start..end]) {
                Ok(n) => {
                    sent += n;
                    if n < want {
                        break;
                    }
                    start = end;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(error::io(self.side, "write", e)),
            }
        }
        // The iovecs point into `plan` and `input`, which the caller reuses: drop them now.
        iov.clear();
        if sent < total {
            spill.clear();
            plan.flatten_into(input, spill);
            self.stream
                .write_all(&spill[sent..])
                .await
                .map_err(|e| error::io(self.side, "write", e))?;
        }
        Ok(total)
    }
}

/// The rest of a direction once its bytes mean the same to the destination as to the relay:
/// `splice(2)` source socket → pipe → destination socket, never parsed again (an in-stream
/// SetChunkSize reaches the destination as it is, which is what keeps both in step). Waits for
/// the source through the ring (a `POLL_ADD`, [`executors::udp::Readable`], which works
/// on any socket); a destination that would block is written through a pooled buffer.
async fn splice_rest<W: AsyncWrite + Unpin>(
    src_fd: RawFd,
    mut pipe: PooledPipe,
    mut dst: Sink<W>,
    counter: &AtomicU64,
    writes: &AtomicU64,
    src_side: Side,
) -> Result<(), Error> {
    let readable =
        executors::udp::Readable::new(src_fd).map_err(|e| error::io(src_side, "dup", e))?;
    // glommio leaves sockets blocking; splice needs them non-blocking (restored on drop).
    let _src_nb = NonBlocking::set(src_fd);
    let _dst_nb = NonBlocking::set(dst.fd);
    let pipe_w = pipe.fds().1;
    let mut spare = None;
    // Whether the source may have bytes queued: a splice that filled the pipe says yes.
    let mut queued = true;
    loop {
        glommio::yield_if_needed().await;
        if !queued {
            readable
                .wait()
                .await
                .map_err(|e| error::io(src_side, "read", e))?;
        }
        match splice(src_fd, pipe_w, PIPE_SIZE).map_err(|e| error::io(src_side, "splice", e))? {
            Some(0) => return Err(Error::new(ErrorKind::Io, src_side, "closed the connection")),
            Some(n) => {
                queued = n == PIPE_SIZE;
                pipe.held = n;
                drain_pipe(&mut pipe, dst.fd, &mut dst.stream, &mut spare).await?;
                counter.fetch_add(n as u64, Relaxed);
                writes.fetch_add(1, Relaxed);
            }
            None => queued = false,
        }
    }
}

/// A read smaller than this marks a trickle direction (a player's acknowledgements, an idle
/// publisher): its buffer goes back to the pool until the next burst.
const TRICKLE_READ: usize = 2048;

/// One direction: read, rewrite chunk headers, write. Returns when the source closes.
///
/// Memory: a busy direction keeps one pooled 64 KiB buffer; a quiet one holds none while it
/// waits (it waits with a 1-byte read, then takes a pooled buffer for what else arrived).
///
/// `splice_from`: the source's socket, when this direction may hand over to [`splice_rest`]
/// once the destination's chunk-stream state equals the source's.
#[allow(clippy::too_many_arguments)]
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut src: R,
    mut dst: Sink<W>,
    leftover: Vec<u8>,
    mut dir: RelayDirection,
    counter: &AtomicU64,
    writes: &AtomicU64,
    src_side: Side,
    mut splice_from: Option<(RawFd, &AtomicU64)>,
) -> Result<(), Error> {
    let mut plan = RelayPlan::new();
    let mut iov: Vec<libc::iovec> = Vec::new();
    let mut spill: Vec<u8> = Vec::new();
    // `buf[..filled]` is the input; `buf` is the session's leftover at first, then a pool
    // buffer (length POOL_BUFFER) while the direction is busy, or empty while it is quiet.
    let mut filled = leftover.len();
    let mut buf = leftover;
    loop {
        // glommio reads and sends that find bytes (or room) complete without yielding, so a
        // direction that never has to wait would keep every other session, and the accept loop,
        // of this core waiting. Give way when the executor's time slice is up (a flag read).
        glommio::yield_if_needed().await;
        if filled > 0 {
            let input = &buf[..filled];
            // The relay keeps partial chunk headers itself: it always consumes everything.
            dir.process(input, &mut plan).map_err(|e| {
                Error::new(ErrorKind::ClientProtocol, src_side, format!("relay: {e}"))
            })?;
            if !plan.is_empty() {
                let n = dst.write_plan(&plan, input, &mut iov, &mut spill).await?;
                plan.clear();
                counter.fetch_add(n as u64, Relaxed);
                writes.fetch_add(1, Relaxed);
            }
            if let Some((src_fd, spliced)) = splice_from {
                if dir.verbatim_ready() {
                    match PooledPipe::take() {
                        Some(pipe) => {
                            spliced.fetch_add(1, Relaxed);
                            super::io::give_buffer(std::mem::take(&mut buf));
                            debug!(
                                "relay: the player's chunk streams match the origin's after {} \
                                 messages; splicing from here on",
                                dir.messages()
                            );
                            return splice_rest(src_fd, pipe, dst, counter, writes, src_side).await;
                        }
                        // No pipe (fd limit): keep rewriting.
                        None => splice_from = None,
                    }
                }
            }
        }
        let busy = filled >= TRICKLE_READ && buf.len() == super::io::POOL_BUFFER;
        if !busy {
            // Back to the pool (the session's leftover vector is simply freed).
            super::io::give_buffer(std::mem::take(&mut buf));
        }
        filled = if busy {
            // Busy: read straight into the buffer we hold.
            src.read(&mut buf)
                .await
                .map_err(|e| error::io(src_side, "read", e))?
        } else {
            // Quiet: wait holding no buffer, then take one for what arrived.
            let mut first = [0u8; 1];
            let n = src
                .read(&mut first)
                .await
                .map_err(|e| error::io(src_side, "read", e))?;
            if n == 0 {
                0
            } else {
                buf = super::io::take_buffer();
                buf[0] = first[0];
                let more = futures_lite::future::poll_once(src.read(&mut buf[1..])).await;
                match more {
                    Some(Ok(n)) => 1 + n,
                    // An error or EOF shows up again on the next read.
                    Some(Err(_)) | None => 1,
                }
            }
        };
        if filled == 0 {
            return Err(Error::new(ErrorKind::Io, src_side, "closed the connection"));
        }
    }
}
