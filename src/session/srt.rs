//! SRT relay glue (spec §5.7 with §10 #19–#21 fixed; issue 5). The protocol work is sans-IO in
//! `protocols::srt`; this module owns the sockets, the maps and the timers.
//!
//! Per core: one UDP socket on `PROXY_SRT_SERVER` (SO_REUSEPORT, so the kernel keeps a caller's
//! 4-tuple on one core) and one receive loop with one reusable buffer.
//!
//! * **Inductions** are answered statelessly ([`answer_induction`]) with a SYN cookie derived from
//!   the caller's address and a per-core secret (like libsrt's `bake()`): a flood of spoofed
//!   inductions creates nothing.
//! * **A conclusion whose cookie verifies** creates one [`SrtHandshakeRelay`] in the pending map
//!   (keyed by caller address + caller socket id, at most [`MAX_PENDING`] per core) and spawns that
//!   connection's origin task: pick, connected upstream socket, handshake replay with the relay's
//!   timers. A silent origin costs that task only; its caller gets `SRT_REJ_TIMEOUT`.
//! * **Established** connections live in the session map keyed by (caller address, origin socket
//!   id), at most [`MAX_SESSIONS`] per core. Caller → origin datagrams go out on the session's
//!   upstream socket from the loop's buffer; the origin task forwards origin → caller datagrams
//!   through the listening socket. Nothing is parsed beyond the 16-byte header.
//! * A session ends on SHUTDOWN (forwarded first) from either side, after [`SESSION_IDLE`] with no
//!   datagram either way, on an ICMP error from the origin, or at proxy shutdown.
//! * Datagrams that match nothing are dropped and counted (`srs_proxy_srt_dropped_datagrams_total`),
//!   never create state, and are summarised in the log at most every [`DROP_LOG_EVERY`].

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use executors::udp::{send_all_nowait, Batch, RawAddr, Readable};

use crate::session::udp::drain_forward;
use futures_lite::future;
use glommio::net::UdpSocket;
use glommio::task::JoinHandle;
use protocols::srt::{
    answer_induction, rejection, Dest, Handshake, HandshakeType, Packet, RejectCause, RejectCode,
    RelayConfig, RelayEvent, SrtHandshakeRelay, StreamId, GO_PEER_IP,
};
use tracing::{debug, error, info, warn, Instrument};

use crate::lb::{oneshot, Origin, SessionGuard};
use crate::metrics::{ActiveGuard, ErrorKind, Protocol};
use crate::runtime::{CoreState, MeshOutbox};

/// A session with no datagram either way for this long is dropped (spec §10 #19). libsrt sends
/// keepalives every second, so only a dead peer gets here.
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// From the caller's conclusion to the origin's answer, pick and dial included. Under libsrt's
/// default 3 s connect timeout, so a default caller still hears the timeout rejection.
pub const ORIGIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(2500);
/// Established sessions per core.
pub const MAX_SESSIONS: usize = 100_000;
/// Handshakes in progress (or answered and kept for retransmits) per core.
pub const MAX_PENDING: usize = 10_000;
/// How long a finished handshake is kept to answer retransmitted conclusions.
const PENDING_LINGER: Duration = Duration::from_secs(10);
/// Receive buffer: SRT's largest MSS is 1500 bytes; the Go proxy reads 4096.
const RECV_BUF: usize = 4096;
/// Cookie time bucket; the current and the previous bucket verify (libsrt does the same per
/// minute).
const COOKIE_BUCKET_SECS: u64 = 60;
/// At most one summary line of dropped datagrams per this period.
pub const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often the maps are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One cookie secret and time base for the process, so a conclusion verifies on whichever core
/// the kernel hands it to (the SO_REUSEPORT group changes while the cores start up).
static COOKIE_SECRET: OnceLock<RandomState> = OnceLock::new();
static COOKIE_EPOCH: OnceLock<Instant> = OnceLock::new();

type ConnKey = (SocketAddr, u32);
type PinGuard = SessionGuard<MeshOutbox>;

/// One core's SRT state.
struct Srt {
    st: Rc<CoreState>,
    listener: UdpSocket,
    epoch: Instant,
    cookie_secret: RandomState,
    /// (caller address, caller socket id) → handshake in progress or recently finished.
    pending: RefCell<AHashMap<ConnKey, Rc<Pending>>>,
    /// (caller address, origin socket id) → established session.
    sessions: RefCell<AHashMap<ConnKey, Rc<Session>>>,
    /// Datagrams dropped since the last summary line.
    dropped_since_log: Cell<u64>,
    /// Last "map full" warning, to keep them rare.
    full_warned: Cell<Option<Instant>>,
    /// Drains of the origin sockets' queues (see `forward_origin_to_caller`).
    batch: RefCell<Batch>,
}

/// One connection's handshake.
struct Pending {
    cid: String,
    relay: RefCell<SrtHandshakeRelay>,
    /// The connected socket to the origin, once dialled.
    upstream: RefCell<Option<Rc<UdpSocket>>>,
    /// The origin task; moved to the session once established.
    task: RefCell<Option<JoinHandle<()>>>,
    created: Instant,
    finished_at: Cell<Option<Instant>>,
}

/// One established connection.
struct Session {
    cid: String,
    key: ConnKey,
    pending_key: ConnKey,
    caller: SocketAddr,
    upstream: Rc<UdpSocket>,
    last_seen: Cell<Instant>,
    caller_spoke: Cell<bool>,
    task: RefCell<Option<JoinHandle<()>>>,
    /// Dropped to stop the origin task (it then drops its `Rc<Session>` at once; a glommio
    /// cancel only drops the future when the executor next runs it).
    stop: RefCell<Option<oneshot::Sender<()>>>,
    started: Instant,
    _active: ActiveGuard,
    _pin: PinGuard,
}

impl Session {
    fn stop_task(&self) {
        let task = self.task.borrow_mut().take();
        match self.stop.borrow_mut().take() {
            // The task sees the sender go and ends by itself.
            Some(stop) => drop(stop),
            None => {
                if let Some(t) = task {
                    t.cancel();
                }
            }
        }
    }
}

/// Serves `PROXY_SRT_SERVER` on this core until shutdown.
pub async fn serve(st: Rc<CoreState>, listener: UdpSocket) {
    let srt = Rc::new(Srt {
        st: st.clone(),
        listener,
        epoch: st.started,
        cookie_secret: COOKIE_SECRET.get_or_init(RandomState::new).clone(),
        pending: RefCell::new(AHashMap::new()),
        sessions: RefCell::new(AHashMap::new()),
        dropped_since_log: Cell::new(0),
        full_warned: Cell::new(None),
        batch: RefCell::new(Batch::new(RECV_BUF)),
    });
    let sweeper = glommio::spawn_local(sweep_loop(srt.clone())).detach();
    let shutdown = st.shutdown.clone();
    future::or(receive_loop(srt.clone()), async move {
        shutdown.wait().await;
    })
    .await;
    sweeper.cancel();
    srt.close_all();
}

async fn receive_loop(srt: Rc<Srt>) {
    let mut batch = Batch::new(RECV_BUF);
    let fd = srt.listener.as_raw_fd();
    let ready = match Readable::new(fd) {
        Ok(r) => r,
        Err(e) => {
            error!(
                "SRT on {}: cannot watch the listening socket ({e}); SRT is off on this core",
                srt.st.config.srt_server.addr
            );
            return;
        }
    };
    let mut last_err: Option<Instant> = None;
    loop {
        // One ring wait per wake-up, then everything queued in recvmmsg batches.
        let mut failed = ready.wait().await.err();
        while failed.is_none() {
            let k = match batch.recv(fd) {
                Ok(k) => k,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            // Consecutive data/control datagrams of one session go out in one sendmmsg on its
            // origin socket; anything else (handshakes, SHUTDOWN, strangers) takes the full
            // path, in order.
            let mut run: Option<Rc<Session>> = None;
            let mut list: [&[u8]; Batch::CAPACITY] = [&[]; Batch::CAPACITY];
            let mut len = 0;
            for i in 0..k {
                let (data, Some(peer)) = batch.get(i) else {
                    continue;
                };
                let target = srt.plain_relay_target(data, peer);
                let same = match (&run, &target) {
                    (Some(r), Some(t)) => Rc::ptr_eq(r, t),
                    _ => false,
                };
                if !same {
                    if let Some(r) = run.take() {
                        srt.forward_run(&r, &list[..len], true);
                    }
                    len = 0;
                }
                match target {
                    Some(t) => {
                        run = Some(t);
                        list[len] = data;
                        len += 1;
                    }
                    None => srt.on_caller_datagram(data, peer).await,
                }
            }
            if let Some(r) = run {
                srt.forward_run(&r, &list[..len], true);
            }
            if k < Batch::CAPACITY {
                break;
            }
        }
        if let Some(e) = failed {
            // ICMP errors reported on the unconnected socket and the like: never fatal.
            let now = Instant::now();
            if last_err.map_or(true, |t| now.duration_since(t) > DROP_LOG_EVERY) {
                warn!(
                    "SRT receive on {} failed: {e}",
                    srt.st.config.srt_server.addr
                );
                last_err = Some(now);
            }
        }
        glommio::yield_if_needed().await;
    }
}

async fn sweep_loop(srt: Rc<Srt>) {
    let mut last_drop_log = Instant::now();
    loop {
        glommio::timer::sleep(SWEEP_EVERY).await;
        let now = Instant::now();
        srt.sweep(now);
        if now.duration_since(last_drop_log) >= DROP_LOG_EVERY {
            let n = srt.dropped_since_log.replace(0);
            if n > 0 {
                info!(
                    "SRT dropped {n} datagrams matching no connection on {} in the last {:?} (garbage, or peers of ended sessions)",
                    srt.st.config.srt_server.addr, DROP_LOG_EVERY
                );
            }
            last_drop_log = now;
        }
    }
}

impl Srt {
    /// Counts a dropped datagram; the reason is formatted only when debug logging is on.
    fn drop_datagram(&self, peer: SocketAddr, why: &dyn std::fmt::Display) {
        self.st.metrics.srt_dropped_total.fetch_add(1, Relaxed);
        self.dropped_since_log.set(self.dropped_since_log.get() + 1);
        debug!("SRT drop datagram from {peer}: {why}");
    }

    fn timestamp(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_micros() & 0xFFFF_FFFF) as u32
    }

    fn cookie(&self, peer: SocketAddr, bucket: u64) -> u32 {
        let h = self.cookie_secret.hash_one((peer, bucket));
        match (h ^ (h >> 32)) as u32 {
            0 => 1,
            c => c,
        }
    }

    fn bucket(&self, now: Instant) -> u64 {
        let epoch = *COOKIE_EPOCH.get_or_init(Instant::now);
        now.saturating_duration_since(epoch).as_secs() / COOKIE_BUCKET_SECS
    }

    fn warn_full(&self, what: &str, now: Instant) {
        if self
            .full_warned
            .get()
            .map_or(true, |t| now.duration_since(t) > DROP_LOG_EVERY)
        {
            warn!(
                "SRT {what} on core {}: refusing new connections until some end. Add cores (PROXY_CORES) or proxies, or look for a flood of handshakes from few addresses",
                self.st.core
            );
            self.full_warned.set(Some(now));
        }
    }

    async fn send_to_caller(&self, payload: &[u8], caller: SocketAddr) {
        if let Err(e) = self.listener.send_to(payload, caller).await {
            debug!("SRT send to caller {caller} failed: {e}");
        }
    }

    /// One datagram from a caller (or anyone) on the listening socket.
    async fn on_caller_datagram(self: &Rc<Self>, data: &[u8], peer: SocketAddr) {
        let Ok(packet) = Packet::parse(data) else {
            return self.drop_datagram(peer, &"shorter than an SRT header");
        };
        let dest = packet.dest_socket_id();
        if dest != 0 {
            let session = self.sessions.borrow().get(&(peer, dest)).cloned();
            match session {
                Some(s) => self.caller_to_origin(&s, data, &packet),
                None => self.drop_datagram(peer, &"no session for its dest socket id"),
            }
            return;
        }
        if !packet.is_handshake() {
            return self.drop_datagram(peer, &"dest socket id 0 but not a handshake");
        }
        let hs = match Handshake::parse(data) {
            Ok(hs) => hs,
            Err(e) => return self.drop_datagram(peer, &e),
        };
        let key = (peer, hs.socket_id);
        let pending = self.pending.borrow().get(&key).cloned();
        if let Some(p) = pending {
            // A retransmit: the relay answers consistently (same induction response, the origin
            // packet again, or the stored final answer).
            let now = Instant::now();
            let r = p.relay.borrow_mut().handle_caller(now, data);
            match r {
                Ok(()) => self.flush(&p, peer).await,
                Err(e) => debug!("SRT handshake retransmit from {peer} dropped: {e}"),
            }
            return;
        }
        let now = Instant::now();
        match hs.handshake_type {
            HandshakeType::INDUCTION => {
                let cookie = self.cookie(peer, self.bucket(now));
                match answer_induction(data, cookie, GO_PEER_IP, self.timestamp(now)) {
                    Ok(answer) => {
                        debug!(
                            "SRT Handshake 0: induction from {peer}, socket id {:#x}",
                            hs.socket_id
                        );
                        self.send_to_caller(&answer, peer).await;
                    }
                    Err(e) => self.drop_datagram(peer, &e),
                }
            }
            HandshakeType::CONCLUSION => {
                let bucket = self.bucket(now);
                let valid = [bucket, bucket.saturating_sub(1)]
                    .iter()
                    .map(|b| self.cookie(peer, *b))
                    .find(|c| *c == hs.syn_cookie);
                let Some(cookie) = valid else {
                    return self.drop_datagram(peer, &"conclusion with an unknown SYN cookie");
                };
                self.new_connection(data, &hs, key, cookie, peer, now).await;
            }
            _ => self.drop_datagram(peer, &"not a caller-mode induction/conclusion"),
        }
    }

    /// A verified conclusion with no relay yet: the connection starts here.
    async fn new_connection(
        self: &Rc<Self>,
        data: &[u8],
        hs: &Handshake<'_>,
        key: ConnKey,
        cookie: u32,
        peer: SocketAddr,
        now: Instant,
    ) {
        let cid = crate::cid::new_cid();
        let span = tracing::info_span!("srt", cid = %cid);
        let _e = span.enter();
        if self.pending.borrow().len() >= MAX_PENDING {
            self.warn_full(&format!("handshake table full ({MAX_PENDING})"), now);
            self.st.metrics.error(Protocol::Srt, ErrorKind::Internal);
            drop(_e);
            // Still answer: a rejection says "try later" instead of a silent timeout.
            let answer = rejection(hs, RejectCode::UNAVAILABLE, cookie, self.timestamp(now));
            return self.send_to_caller(&answer, peer).await;
        }
        let mut config = RelayConfig::new(cookie, self.epoch);
        config.origin_timeout = ORIGIN_HANDSHAKE_TIMEOUT;
        let mut relay = SrtHandshakeRelay::new(config, now);
        if let Err(e) = relay.handle_caller(now, data) {
            drop(_e);
            return self.drop_datagram(peer, &e);
        }
        let pending = Rc::new(Pending {
            cid: cid.clone(),
            relay: RefCell::new(relay),
            upstream: RefCell::new(None),
            task: RefCell::new(None),
            created: now,
            finished_at: Cell::new(None),
        });
        self.pending.borrow_mut().insert(key, pending.clone());
        let event = pending.relay.borrow_mut().poll_event();
        match event {
            Some(RelayEvent::Route {
                stream_key,
                stream_id,
                caller_socket_id,
            }) => {
                info!(
                    "SRT Handshake 1: conclusion from {peer}, socket id {caller_socket_id:#x}, streamid={:?}, key={stream_key}, mode={}",
                    hs.stream_id().ok().flatten().unwrap_or_default(),
                    mode_name(&stream_id)
                );
                let task = glommio::spawn_local(
                    origin_leg(self.clone(), pending.clone(), key, stream_key, stream_id)
                        .instrument(span.clone()),
                )
                .detach();
                pending.task.replace(Some(task));
            }
            Some(RelayEvent::Rejected { code, cause }) => {
                warn!(
                    "SRT caller {peer} rejected with {}: {}",
                    code.0,
                    cause_text(&cause)
                );
                self.st
                    .metrics
                    .error(Protocol::Srt, ErrorKind::ClientProtocol);
                pending.finished_at.set(Some(now));
            }
            other => debug!("SRT unexpected relay event on a conclusion: {other:?}"),
        }
        drop(_e);
        self.flush(&pending, peer).await;
    }

    /// Sends whatever the relay queued: to the caller on the listener, to the origin on the
    /// upstream socket (if dialled; before that the relay queues nothing for the origin).
    async fn flush(&self, pending: &Pending, caller: SocketAddr) {
        loop {
            let t = pending.relay.borrow_mut().poll_transmit();
            let Some(t) = t else { break };
            match t.dest {
                Dest::Caller => self.send_to_caller(&t.payload, caller).await,
                Dest::Origin => {
                    let up = pending.upstream.borrow().clone();
                    if let Some(up) = up {
                        if let Err(e) = up.send(&t.payload).await {
                            debug!("SRT handshake send to origin failed: {e}");
                        }
                    }
                }
            }
        }
    }

    /// The established session a caller datagram is plainly relayed to: neither a handshake
    /// nor a SHUTDOWN (those take [`Srt::on_caller_datagram`]).
    fn plain_relay_target(&self, data: &[u8], peer: SocketAddr) -> Option<Rc<Session>> {
        let packet = Packet::parse(data).ok()?;
        let dest = packet.dest_socket_id();
        if dest == 0 || packet.is_handshake() || packet.is_shutdown() {
            return None;
        }
        self.sessions.borrow().get(&(peer, dest)).cloned()
    }

    /// Caller datagrams of one session, in one `sendmmsg` to its origin: a run that
    /// [`Srt::plain_relay_target`] accepted, or the single datagram of
    /// [`Srt::caller_to_origin`]. `spoke`: the run holds a non-handshake packet, so the caller got
    /// our conclusion answer and handshake retransmits are over.
    fn forward_run(&self, s: &Session, run: &[&[u8]], spoke: bool) {
        s.last_seen.set(Instant::now());
        if spoke && !s.caller_spoke.get() {
            s.caller_spoke.set(true);
            self.pending.borrow_mut().remove(&s.pending_key);
        }
        let counters = self.st.metrics.proto(Protocol::Srt);
        // Non-blocking: a full socket buffer drops the rest (SRT retransmits).
        match send_all_nowait(s.upstream.as_raw_fd(), run) {
            Ok(sent) => {
                let bytes: usize = run[..sent].iter().map(|d| d.len()).sum();
                counters
                    .client_to_origin_bytes
                    .fetch_add(bytes as u64, Relaxed);
                counters.relay_writes.fetch_add(1, Relaxed);
            }
            Err(e) => debug!("SRT send to origin failed: {e}"),
        }
    }

    /// One caller datagram for an established session that is not a plain relay (a handshake
    /// retransmit, a SHUTDOWN): forwarded, then a SHUTDOWN ends the session.
    fn caller_to_origin(&self, s: &Rc<Session>, data: &[u8], packet: &Packet<'_>) {
        self.forward_run(s, &[data], !packet.is_handshake());
        if packet.is_shutdown() {
            let _e = tracing::info_span!("srt", cid = %s.cid).entered();
            info!(
                "SRT caller {} sent SHUTDOWN after {:?}: session over",
                s.caller,
                s.started.elapsed()
            );
            self.end_session(s);
        }
    }

    fn end_session(&self, s: &Session) {
        self.sessions.borrow_mut().remove(&s.key);
        self.pending.borrow_mut().remove(&s.pending_key);
        s.stop_task();
    }

    fn sweep(&self, now: Instant) {
        self.pending.borrow_mut().retain(|_, p| {
            let finished = p.finished_at.get();
            let keep = match finished {
                Some(t) => now.duration_since(t) < PENDING_LINGER,
                // The origin task ends every handshake by its deadline; this is a backstop.
                None => now.duration_since(p.created) < ORIGIN_HANDSHAKE_TIMEOUT + PENDING_LINGER,
            };
            if !keep && finished.is_none() {
                if let Some(t) = p.task.borrow_mut().take() {
                    t.cancel();
                }
            }
            keep
        });
        let mut idle = Vec::new();
        for s in self.sessions.borrow().values() {
            if now.saturating_duration_since(s.last_seen.get()) >= SESSION_IDLE {
                idle.push(s.clone());
            }
        }
        for s in idle {
            let _e = tracing::info_span!("srt", cid = %s.cid).entered();
            info!(
                "SRT session with {} idle for {SESSION_IDLE:?} (no datagram either way): dropped after {:?}",
                s.caller,
                s.started.elapsed()
            );
            self.end_session(&s);
        }
    }

    fn close_all(&self) {
        let sessions: Vec<_> = self.sessions.borrow_mut().drain().map(|(_, s)| s).collect();
        if !sessions.is_empty() {
            info!("SRT: closing {} sessions for shutdown", sessions.len());
        }
        for s in sessions {
            s.stop_task();
        }
        for (_, p) in self.pending.borrow_mut().drain() {
            if let Some(t) = p.task.borrow_mut().take() {
                t.cancel();
            }
        }
    }
}

fn mode_name(id: &StreamId) -> String {
    match &id.mode {
        None => "request".into(),
        Some(m) => format!("{m:?}").to_lowercase(),
    }
}

fn cause_text(cause: &RejectCause) -> String {
    match cause {
        RejectCause::Origin => "the origin refused the stream (busy, passphrase mismatch, or its own access control)".into(),
        RejectCause::Timeout => format!("the origin did not finish the handshake within {ORIGIN_HANDSHAKE_TIMEOUT:?}; check that its SRT port is reachable from the proxy"),
        RejectCause::StreamId(e) => format!("bad stream id ({e}); use e.g. #!::r=live/livestream,m=publish"),
        RejectCause::Glue => "no usable origin".into(),
    }
}

/// A connected UDP socket to `origin`, for glommio.
fn dial(origin: SocketAddr) -> std::io::Result<UdpSocket> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let sock = crate::session::udp::dial_connected(origin)?;
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid UDP socket descriptor.
    Ok(unsafe { UdpSocket::from_raw_fd(sock.into_raw_fd()) })
}

/// What the origin task learnt by the end of the handshake.
enum Outcome {
    Established {
        caller_socket_id: u32,
        origin_socket_id: u32,
    },
    Failed,
}

/// One connection's origin side: pick, dial, handshake replay under the relay's deadline, then
/// origin → caller forwarding until the session ends.
async fn origin_leg(
    srt: Rc<Srt>,
    pending: Rc<Pending>,
    pending_key: ConnKey,
    stream_key: String,
    stream_id: StreamId,
) {
    let caller = pending_key.0;
    let st = srt.st.clone();
    let outcome = handshake_origin(&srt, &pending, caller, &stream_key).await;
    pending.finished_at.set(Some(Instant::now()));
    let Outcome::Established {
        caller_socket_id,
        origin_socket_id,
    } = outcome
    else {
        return;
    };
    let upstream = pending.upstream.borrow().clone();
    // INVARIANT: `Established` is only reached after `dial` stored the upstream socket.
    let upstream = upstream.expect("established without an upstream socket");
    let key = (caller, origin_socket_id);
    if srt.sessions.borrow().len() >= MAX_SESSIONS {
        srt.warn_full(
            &format!("session table full ({MAX_SESSIONS})"),
            Instant::now(),
        );
        st.metrics.error(Protocol::Srt, ErrorKind::Internal);
        return;
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let session = Rc::new(Session {
        cid: pending.cid.clone(),
        key,
        pending_key,
        caller,
        upstream: upstream.clone(),
        last_seen: Cell::new(Instant::now()),
        caller_spoke: Cell::new(false),
        task: RefCell::new(pending.task.borrow_mut().take()),
        stop: RefCell::new(Some(stop)),
        started: Instant::now(),
        _active: st.metrics.connection(Protocol::Srt),
        _pin: st.lb.session(&stream_key),
    });
    if let Some(old) = srt.sessions.borrow_mut().insert(key, session.clone()) {
        // The same caller address reused an origin socket id: the old one is dead.
        old.stop_task();
    }
    info!(
        "SRT {} {caller} socket {caller_socket_id:#x} <-> origin {} socket {origin_socket_id:#x} established, stream {stream_key}",
        match stream_id.mode {
            Some(protocols::srt::SrtMode::Publish) => "publisher",
            _ => "player",
        },
        upstream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    );
    let stopped_by_loop = future::or(
        async {
            forward_origin_to_caller(&srt, &session).await;
            false
        },
        async {
            stopped.await;
            true
        },
    )
    .await;
    if !stopped_by_loop {
        // Ended by the origin (SHUTDOWN or an error): the caller's stray datagrams now match
        // nothing.
        let mut sessions = srt.sessions.borrow_mut();
        if sessions.get(&key).is_some_and(|s| Rc::ptr_eq(s, &session)) {
            sessions.remove(&key);
        }
        drop(sessions);
        srt.pending.borrow_mut().remove(&pending_key);
    }
    session.task.borrow_mut().take();
    session.stop.borrow_mut().take();
}

async fn forward_origin_to_caller(srt: &Srt, s: &Session) {
    let counters = srt.st.metrics.proto(Protocol::Srt);
    let listener_fd = srt.listener.as_raw_fd();
    let up_fd = s.upstream.as_raw_fd();
    let origin_name = || {
        s.upstream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let ready = match Readable::new(up_fd) {
        Ok(r) => r,
        Err(e) => {
            warn!(
                "SRT origin {} of caller {}: cannot watch its socket ({e}); ending the session",
                origin_name(),
                s.caller
            );
            srt.st.metrics.error(Protocol::Srt, ErrorKind::Io);
            return;
        }
    };
    loop {
        if let Err(e) = ready.wait().await {
            warn!(
                "SRT origin {} of caller {} failed: {e}; ending the session (the caller reconnects)",
                origin_name(),
                s.caller
            );
            srt.st.metrics.error(Protocol::Srt, ErrorKind::Io);
            return;
        }
        s.last_seen.set(Instant::now());
        let to = RawAddr::new(s.caller);
        // Everything queued from the origin: one recvmmsg, one sendmmsg per batch. The core's
        // batch is shared by its sessions: held only between awaits.
        let d = drain_forward(&mut srt.batch.borrow_mut(), up_fd, listener_fd, &to, |p| {
            Packet::parse(p).is_ok_and(|p| p.is_shutdown())
        });
        counters.origin_to_client_bytes.fetch_add(d.bytes, Relaxed);
        counters.relay_writes.fetch_add(d.writes, Relaxed);
        glommio::yield_if_needed().await;
        if d.last_seen {
            info!(
                "SRT origin sent SHUTDOWN to caller {} after {:?}: session over",
                s.caller,
                s.started.elapsed()
            );
            return;
        }
    }
}

async fn handshake_origin(
    srt: &Srt,
    pending: &Pending,
    caller: SocketAddr,
    stream_key: &str,
) -> Outcome {
    let st = &srt.st;
    let reject = |code: RejectCode| pending.relay.borrow_mut().reject(Instant::now(), code);
    // Pick under the relay's deadline.
    let budget = pending
        .relay
        .borrow()
        .poll_timeout()
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(ORIGIN_HANDSHAKE_TIMEOUT);
    let picked = executors::with_timeout(budget, st.lb.pick(stream_key)).await;
    let origin: std::sync::Arc<Origin> = match picked {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            warn!("SRT no origin for {stream_key}: {e}");
            st.metrics.error(Protocol::Srt, ErrorKind::NoOrigin);
            reject(RejectCode::BAD_GATEWAY);
            return finish(srt, pending, caller).await;
        }
        Err(_) => {
            warn!("SRT picking an origin for {stream_key} took over {budget:?}");
            st.metrics.error(Protocol::Srt, ErrorKind::Timeout);
            pending.relay.borrow_mut().handle_timeout(Instant::now());
            return finish(srt, pending, caller).await;
        }
    };
    let Some(port) = origin.srt_port else {
        warn!(
            "SRT origin {} registered no srt port ({:?}): enable srt_server on it so its heartbeat lists \"srt\"",
            origin.id, origin.srt
        );
        st.metrics.error(Protocol::Srt, ErrorKind::OriginRejected);
        reject(RejectCode::BAD_GATEWAY);
        return finish(srt, pending, caller).await;
    };
    let addr = match origin.socket_addr(port) {
        Ok(a) => a,
        Err(e) => {
            warn!("SRT origin {}: {e}", origin.id);
            st.metrics
                .error(Protocol::Srt, ErrorKind::OriginUnreachable);
            reject(RejectCode::BAD_GATEWAY);
            return finish(srt, pending, caller).await;
        }
    };
    let upstream = match dial(addr) {
        Ok(u) => Rc::new(u),
        Err(e) => {
            warn!(
                "SRT cannot open a socket to origin {} at {addr}: {e}",
                origin.id
            );
            st.metrics
                .error(Protocol::Srt, ErrorKind::OriginUnreachable);
            reject(RejectCode::BAD_GATEWAY);
            return finish(srt, pending, caller).await;
        }
    };
    pending.upstream.replace(Some(upstream.clone()));
    pending.relay.borrow_mut().accept_origin(Instant::now());
    debug!(
        "SRT Handshake 2: replaying to origin {} at {addr}",
        origin.id
    );
    let mut buf = vec![0u8; protocols::srt::MAX_HANDSHAKE_LEN + 1];
    loop {
        // Send what is queued, then act on events.
        srt.flush(pending, caller).await;
        let event = pending.relay.borrow_mut().poll_event();
        match event {
            Some(RelayEvent::Established {
                caller_socket_id,
                origin_socket_id,
            }) => {
                srt.flush(pending, caller).await;
                return Outcome::Established {
                    caller_socket_id,
                    origin_socket_id,
                };
            }
            Some(RelayEvent::Rejected { code, cause }) => {
                srt.flush(pending, caller).await;
                warn!(
                    "SRT caller {caller} rejected with {} (reason {}) for {stream_key} via origin {} at {addr}: {}",
                    code.0,
                    code.reason(),
                    origin.id,
                    cause_text(&cause)
                );
                let kind = match cause {
                    RejectCause::Timeout => ErrorKind::Timeout,
                    RejectCause::Origin => ErrorKind::OriginRejected,
                    RejectCause::StreamId(_) => ErrorKind::ClientProtocol,
                    RejectCause::Glue => ErrorKind::OriginUnreachable,
                };
                st.metrics.error(Protocol::Srt, kind);
                return Outcome::Failed;
            }
            Some(other) => {
                debug!("SRT relay event ignored: {other:?}");
                continue;
            }
            None => {}
        }
        let deadline = pending.relay.borrow().poll_timeout();
        let Some(deadline) = deadline else {
            return Outcome::Failed;
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        let got = executors::with_timeout(wait, upstream.recv_from(&mut buf)).await;
        let now = Instant::now();
        match got {
            Ok(Ok((n, _))) => {
                let r = pending.relay.borrow_mut().handle_origin(now, &buf[..n]);
                if let Err(e) = r {
                    debug!("SRT origin datagram dropped during the handshake: {e}");
                }
            }
            Ok(Err(e)) => {
                // ECONNREFUSED: nothing listens on the origin's SRT port.
                warn!(
                    "SRT origin {} at {addr} unreachable: {e}; moving {stream_key} to another origin for the next caller",
                    origin.id
                );
                let _ = st.lb.repick(stream_key, &origin).await;
                reject(RejectCode::BAD_GATEWAY);
            }
            Err(_) => pending.relay.borrow_mut().handle_timeout(now),
        }
    }
}

/// Sends the rejection the relay queued and reports the failure.
async fn finish(srt: &Srt, pending: &Pending, caller: SocketAddr) -> Outcome {
    srt.flush(pending, caller).await;
    while let Some(e) = pending.relay.borrow_mut().poll_event() {
        if let RelayEvent::Rejected { code, cause } = e {
            warn!(
                "SRT caller {caller} rejected with {}: {}",
                code.0,
                cause_text(&cause)
            );
        }
    }
    Outcome::Failed
}
