//! WebRTC media relay on `PROXY_WEBRTC_SERVER` (spec §5.6 with §10 #19/#20 fixed; issue 4).
//!
//! Per core: one UDP socket on the WebRTC port (SO_REUSEPORT, so the kernel keeps a client's
//! address on one core), one receive loop, and that core's *address map*: client address →
//! session. Nothing above STUN is parsed; DTLS and SRTP are end to end.
//!
//! * **Routing.** A STUN message whose `USERNAME` names a binding of the shared table
//!   ([`super::table`]) maps its source address to that binding's session on this core,
//!   creating the session on first use: one connected UDP socket to the origin's `rtc` port,
//!   homed on this core. Every other datagram (DTLS, RTP/RTCP, STUN without a known name) is
//!   routed by source address only; an unknown address is dropped and counted, never creates
//!   state. So address migration (NAT rebinding, a new client port) needs one STUN check from
//!   the new address, which ICE consent freshness sends every few seconds (RFC 7675).
//! * **Any core, one origin socket.** A client's new address may land on another core. That
//!   core sends on the same session socket (a non-blocking `send(2)` on its descriptor), so the
//!   origin sees the same proxy address throughout; the home core keeps reading the origin's
//!   datagrams and sends them to the session's latest client address.
//! * **Hot path.** No allocation and no task per datagram: the loop is woken for one datagram
//!   and then drains what else is queued with `recvmmsg`; origin → client bursts go out with
//!   `sendmmsg`. Sends never block (a full socket buffer drops the datagram, as the network
//!   would).
//! * **Ending.** A session ends after [`SESSION_IDLE`] with no datagram either way (ICE consent
//!   fails after 30 s anyway), on a DTLS alert record from either side (close_notify or a fatal
//!   alert; forwarded first), on a WHIP/WHEP `DELETE`, or at shutdown. Its binding goes with it.
//! * **Bounds.** At most [`MAX_ADDRESSES`] client addresses per core and
//!   [`super::table::MAX_BINDINGS`] bindings per process.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use executors::udp::{send_all_nowait, send_nowait, Batch, RawAddr, Readable};
use futures_lite::future;
use glommio::net::UdpSocket;
use protocols::webrtc::{classify, DatagramKind, StunMessage};
use tracing::{debug, error, info, warn};

use super::table::{Binding, RtcTable, Session};
use crate::config::LoadBalancerType;
use crate::lb::{oneshot, SessionGuard};
use crate::metrics::{ActiveGuard, ErrorKind, Protocol};
use crate::runtime::{CoreState, MeshOutbox};
use crate::session::udp::{dial_connected, drain_forward};

/// A session with no datagram either way for this long ends (ICE consent freshness gives up
/// after 30 s, RFC 7675 §5.1).
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// Client addresses one core routes at most.
pub const MAX_ADDRESSES: usize = 200_000;
/// Receive buffer per datagram. Go reads 4096; WebRTC keeps datagrams under the path MTU.
const RECV_BUF: usize = 4096;
/// How often the maps are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// At most one summary line of dropped datagrams per this period.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
/// Redis lookups of unknown session keys in flight or remembered as missing, per core.
pub const MAX_LOOKUPS: usize = 4096;
/// How long a session key not found in Redis is not looked up again (garbage STUN must not
/// become a Redis query per datagram).
pub const LOOKUP_MISS_TTL: Duration = Duration::from_secs(2);
/// DTLS record content type of an alert (RFC 6347 §4.1): close_notify or a fatal error.
const DTLS_ALERT: u8 = 21;

/// One session homed on this core: its origin-reading task and what it holds.
struct Homed {
    session: Arc<Session>,
    /// Dropped to stop the task.
    _stop: oneshot::Sender<()>,
    _active: ActiveGuard,
    _pin: SessionGuard<MeshOutbox>,
}

/// One core's WebRTC media state.
struct Media {
    st: Rc<CoreState>,
    table: Arc<RtcTable>,
    /// Owns `fd`, the per-core listening socket (used through `fd` and [`Readable`]).
    _listener: UdpSocket,
    fd: RawFd,
    addrs: RefCell<AHashMap<SocketAddr, Arc<Session>>>,
    homed: RefCell<AHashMap<Arc<str>, Homed>>,
    /// Drains of the sockets' queues; used only between awaits, so the core's tasks share it.
    batch: RefCell<Batch>,
    dropped_since_log: Cell<u64>,
    full_warned: Cell<Option<Instant>>,
    /// Redis mode: session keys being looked up, or recently not found, with when.
    lookups: RefCell<AHashMap<Arc<str>, Instant>>,
}

/// Serves `PROXY_WEBRTC_SERVER` on this core until shutdown.
pub async fn serve(st: Rc<CoreState>, listener: UdpSocket) {
    let media = Rc::new(Media {
        table: st.rtc.clone(),
        fd: listener.as_raw_fd(),
        _listener: listener,
        st: st.clone(),
        addrs: RefCell::default(),
        homed: RefCell::default(),
        batch: RefCell::new(Batch::new(RECV_BUF)),
        dropped_since_log: Cell::new(0),
        full_warned: Cell::new(None),
        lookups: RefCell::default(),
    });
    let sweeper = glommio::spawn_local(sweep_loop(media.clone())).detach();
    let shutdown = st.shutdown.clone();
    future::or(receive_loop(media.clone()), async move {
        shutdown.wait().await;
    })
    .await;
    sweeper.cancel();
    media.close_all();
}

async fn receive_loop(media: Rc<Media>) {
    let ready = match Readable::new(media.fd) {
        Ok(r) => r,
        Err(e) => {
            error!(
                "WebRTC on {}: cannot watch the listening socket ({e}); WebRTC media is off on this core",
                media.st.config.webrtc_server.addr
            );
            return;
        }
    };
    let mut last_err: Option<Instant> = None;
    loop {
        // One ring wait per wake-up, then everything queued in recvmmsg batches.
        let failed = match ready.wait().await {
            Ok(()) => media.drain_listener().err(),
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            // ICMP errors reported on the unconnected socket and the like: never fatal.
            let now = Instant::now();
            if last_err.map_or(true, |t| now.duration_since(t) > DROP_LOG_EVERY) {
                warn!(
                    "WebRTC receive on {} failed: {e}",
                    media.st.config.webrtc_server.addr
                );
                last_err = Some(now);
            }
        }
        glommio::yield_if_needed().await;
    }
}

async fn sweep_loop(media: Rc<Media>) {
    let mut last_drop_log = Instant::now();
    loop {
        glommio::timer::sleep(SWEEP_EVERY).await;
        let now = Instant::now();
        media.sweep();
        if media.st.core == 0 {
            let n = media.table.sweep_unused(now);
            if n > 0 {
                debug!("WebRTC: forgot {n} signalled sessions that never sent a STUN check");
            }
        }
        if now.duration_since(last_drop_log) >= DROP_LOG_EVERY {
            let n = media.dropped_since_log.replace(0);
            if n > 0 {
                info!(
                    "WebRTC dropped {n} datagrams from unknown addresses on {} in the last {DROP_LOG_EVERY:?} (media before the first STUN check, ended sessions, or garbage)",
                    media.st.config.webrtc_server.addr
                );
            }
            last_drop_log = now;
        }
    }
}

impl Media {
    /// Handles everything queued on the listening socket, without waiting.
    fn drain_listener(self: &Rc<Self>) -> std::io::Result<()> {
        loop {
            let mut batch = self.batch.borrow_mut();
            let n = batch.recv(self.fd)?;
            let now_ms = self.table.now_ms();
            // Consecutive datagrams of one session (a video frame's packets) go out in one
            // sendmmsg on its origin socket.
            let mut run: Option<Arc<Session>> = None;
            let mut list: [&[u8]; Batch::CAPACITY] = [&[]; Batch::CAPACITY];
            let mut len = 0;
            for i in 0..n {
                let (data, Some(peer)) = batch.get(i) else {
                    continue;
                };
                let Some(session) = self.route(data, peer, now_ms) else {
                    continue;
                };
                if run.as_ref().is_some_and(|r| !Arc::ptr_eq(r, &session)) {
                    if let Some(r) = run.take() {
                        self.forward(&r, &list[..len]);
                    }
                    len = 0;
                }
                run = Some(session);
                list[len] = data;
                len += 1;
            }
            if let Some(r) = run {
                self.forward(&r, &list[..len]);
            }
            if n < Batch::CAPACITY {
                return Ok(());
            }
        }
    }

    fn drop_datagram(&self, peer: SocketAddr, why: &str) {
        self.st.metrics.webrtc_dropped_total.fetch_add(1, Relaxed);
        self.dropped_since_log.set(self.dropped_since_log.get() + 1);
        debug!("WebRTC drop datagram from {peer}: {why}");
    }

    /// The session a client datagram belongs to (`None`: dropped and counted), with its
    /// bookkeeping done: the client address (a migration), the activity stamp, the count.
    fn route(self: &Rc<Self>, data: &[u8], peer: SocketAddr, now_ms: u64) -> Option<Arc<Session>> {
        let by_name = match classify(data) {
            DatagramKind::Stun => self.stun_session(data, peer),
            _ => None,
        };
        let session = match by_name {
            Some(s) => s,
            None => match self.addrs.borrow().get(&peer) {
                Some(s) => s.clone(),
                None => {
                    self.drop_datagram(peer, "no session for this address");
                    return None;
                }
            },
        };
        if session.is_closed() {
            self.addrs.borrow_mut().remove(&peer);
            self.drop_datagram(peer, "its session ended");
            return None;
        }
        if session.set_client(peer) {
            info!(
                "[{}] WebRTC session {} moved to client address {peer} (core {})",
                session.cid, session.ufrag, self.st.core
            );
        }
        session.touch(now_ms);
        Some(session)
    }

    /// Sends client datagrams of one session to its origin: one send, or one sendmmsg.
    fn forward(&self, session: &Session, datagrams: &[&[u8]]) {
        let counters = self.st.metrics.proto(Protocol::WebRtc);
        let fd = session.upstream.as_raw_fd();
        let sent = match datagrams {
            [one] => send_nowait(fd, one).map(|_| 1),
            many => send_all_nowait(fd, many),
        };
        match sent {
            Ok(k) => {
                let bytes: usize = datagrams[..k].iter().map(|d| d.len()).sum();
                counters
                    .client_to_origin_bytes
                    .fetch_add(bytes as u64, Relaxed);
                counters.relay_writes.fetch_add(1, Relaxed);
            }
            Err(e) => debug!("WebRTC send to origin of {} failed: {e}", session.ufrag),
        }
        session
            .up_packets
            .fetch_add(datagrams.len() as u64, Relaxed);
        if datagrams.iter().any(|d| d.first() == Some(&DTLS_ALERT)) {
            info!(
                "[{}] WebRTC client {} sent a DTLS alert: session {} over",
                session.cid,
                session.client(),
                session.ufrag
            );
            session.close();
        }
    }

    /// The session a STUN message names, mapping `peer` to it (and creating the session on
    /// its first check). `None`: no `USERNAME`, an unknown one, or no room; the caller then
    /// routes by address.
    fn stun_session(self: &Rc<Self>, data: &[u8], peer: SocketAddr) -> Option<Arc<Session>> {
        let msg = StunMessage::parse(data).ok()?;
        let username = msg.username().ok()??;
        if let Some(s) = self.addrs.borrow().get(&peer) {
            if &*s.ufrag == username && !s.is_closed() {
                return Some(s.clone());
            }
        }
        let Some(binding) = self.table.get(username) else {
            self.look_up(username);
            return None;
        };
        let session = self.session_of(&binding, peer)?;
        let mut addrs = self.addrs.borrow_mut();
        if addrs.len() >= MAX_ADDRESSES && !addrs.contains_key(&peer) {
            drop(addrs);
            self.warn_full();
            return None;
        }
        addrs.insert(peer, session.clone());
        Some(session)
    }

    /// The binding's session, created here (and homed on this core) if it has none.
    fn session_of(
        self: &Rc<Self>,
        binding: &Arc<Binding>,
        peer: SocketAddr,
    ) -> Option<Arc<Session>> {
        let mut slot = binding.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Some(s.clone());
        }
        let upstream = match dial_connected(binding.origin_rtc) {
            Ok(u) => u,
            Err(e) => {
                warn!(
                    "[{}] WebRTC session {}: cannot open a socket to origin {} at {}: {e}",
                    binding.cid, binding.ufrag, binding.origin.id, binding.origin_rtc
                );
                self.st
                    .metrics
                    .error(Protocol::WebRtc, ErrorKind::OriginUnreachable);
                return None;
            }
        };
        let session = Arc::new(Session::new(
            binding,
            self.st.core,
            upstream,
            peer,
            self.table.now_ms(),
        ));
        *slot = Some(session.clone());
        drop(slot);
        self.home(session.clone(), binding);
        Some(session)
    }

    /// Starts the home task of a new session on this core.
    fn home(self: &Rc<Self>, session: Arc<Session>, binding: &Binding) {
        let reader = match session.upstream.try_clone() {
            // SAFETY: `into_raw_fd` hands over sole ownership of a valid UDP descriptor.
            Ok(s) => unsafe { UdpSocket::from_raw_fd(s.into_raw_fd()) },
            Err(e) => {
                warn!("[{}] WebRTC session {}: {e}", session.cid, session.ufrag);
                session.close();
                return;
            }
        };
        info!(
            "[{}] WebRTC {} {} of {} <-> origin {} at {} via local {}, core {}",
            session.cid,
            if session.publish {
                "publisher"
            } else {
                "player"
            },
            session.client(),
            session.stream_key,
            binding.origin.id,
            binding.origin_rtc,
            session
                .upstream
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            self.st.core
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let media = self.clone();
        let s = session.clone();
        glommio::spawn_local(async move {
            future::or(origin_to_client(&media, &s, reader), async {
                let _ = stopped.await;
            })
            .await;
        })
        .detach();
        self.homed.borrow_mut().insert(
            session.ufrag.clone(),
            Homed {
                session,
                _stop: stop,
                _active: self.st.metrics.connection(Protocol::WebRtc),
                _pin: self.st.lb.session(&binding.stream_key),
            },
        );
    }

    /// Redis mode: a check whose session key this proxy never signalled may belong to a session
    /// signalled on another proxy (spec §5.6, G1). Looks it up in the background; the client's
    /// next check (ICE retransmits within a second) then finds the binding. Bounded: at most
    /// [`MAX_LOOKUPS`] keys in flight or remembered as missing for [`LOOKUP_MISS_TTL`].
    fn look_up(self: &Rc<Self>, ufrag: &str) {
        if self.st.config.load_balancer != LoadBalancerType::Redis {
            return;
        }
        let mut lookups = self.lookups.borrow_mut();
        if lookups.contains_key(ufrag) || lookups.len() >= MAX_LOOKUPS {
            return;
        }
        let ufrag: Arc<str> = ufrag.into();
        lookups.insert(ufrag.clone(), Instant::now());
        drop(lookups);
        let media = self.clone();
        glommio::spawn_local(async move {
            media.adopt(&ufrag).await;
        })
        .detach();
    }

    /// Loads a session another proxy signalled and binds it here.
    async fn adopt(&self, ufrag: &Arc<str>) {
        let Some(key) = self.st.lb.rtc_lookup(ufrag).await else {
            return;
        };
        let origin = match self.st.lb.pick(&key).await {
            Ok(o) => o,
            Err(e) => {
                warn!("WebRTC session {ufrag} of {key} (signalled on another proxy): {e}");
                return;
            }
        };
        let Some(addr) = origin.rtc_udp_port.and_then(|p| origin.socket_addr(p).ok()) else {
            warn!(
                "WebRTC session {ufrag} of {key}: origin {} registered no WebRTC UDP port",
                origin.id
            );
            return;
        };
        let cid = crate::cid::new_cid();
        info!(
            "[{cid}] WebRTC session {ufrag} of {key} was signalled on another proxy: relaying to origin {} at {addr}",
            origin.id
        );
        let binding = Arc::new(Binding {
            ufrag: ufrag.clone(),
            stream_key: key,
            origin,
            origin_rtc: addr,
            publish: false,
            cid,
            created: Instant::now(),
            session: std::sync::Mutex::new(None),
        });
        if self.table.get(ufrag).is_none() && self.table.insert(binding).is_ok() {
            self.lookups.borrow_mut().remove(ufrag);
        }
    }

    fn warn_full(&self) {
        let now = Instant::now();
        if self
            .full_warned
            .get()
            .map_or(true, |t| now.duration_since(t) > DROP_LOG_EVERY)
        {
            warn!(
                "WebRTC address table full ({MAX_ADDRESSES}) on core {}: new clients are dropped until sessions end. Add cores (PROXY_CORES) or proxies",
                self.st.core
            );
            self.full_warned.set(Some(now));
        }
    }

    /// Ends idle and closed sessions homed here; forgets addresses of ended sessions.
    fn sweep(&self) {
        let now_ms = self.table.now_ms();
        let idle_ms = SESSION_IDLE.as_millis() as u64;
        let ended: Vec<Arc<Session>> = self
            .homed
            .borrow()
            .values()
            .filter(|h| h.session.is_closed() || h.session.idle_ms(now_ms) >= idle_ms)
            .map(|h| h.session.clone())
            .collect();
        for s in ended {
            let why = if s.is_closed() {
                "closed"
            } else {
                "idle for 30s (no datagram either way)"
            };
            self.end(&s, why);
        }
        self.addrs.borrow_mut().retain(|_, s| !s.is_closed());
        let now = Instant::now();
        self.lookups
            .borrow_mut()
            .retain(|_, at| now.duration_since(*at) < LOOKUP_MISS_TTL);
    }

    fn end(&self, s: &Arc<Session>, why: &str) {
        s.close();
        self.table.remove_session(s);
        self.homed.borrow_mut().remove(&s.ufrag);
        info!(
            "[{}] WebRTC session {} of {} ended ({why}) after {:?}: {} datagrams up, {} down",
            s.cid,
            s.ufrag,
            s.stream_key,
            s.started.elapsed(),
            s.up_packets.load(Relaxed),
            s.down_packets.load(Relaxed)
        );
    }

    fn close_all(&self) {
        let sessions: Vec<_> = self
            .homed
            .borrow()
            .values()
            .map(|h| h.session.clone())
            .collect();
        if !sessions.is_empty() {
            info!("WebRTC: closing {} sessions for shutdown", sessions.len());
        }
        for s in sessions {
            self.end(&s, "proxy shutdown");
        }
        self.addrs.borrow_mut().clear();
    }
}

/// The home task's loop: origin datagrams to the session's latest client address, in batches.
async fn origin_to_client(media: &Media, s: &Session, reader: UdpSocket) {
    let st = &media.st;
    let listener_fd = media.fd;
    let counters = st.metrics.proto(Protocol::WebRtc);
    let up_fd = reader.as_raw_fd();
    let ready = match Readable::new(up_fd) {
        Ok(r) => r,
        Err(e) => {
            warn!(
                "[{}] WebRTC session {}: cannot watch its origin socket ({e}); ending it",
                s.cid, s.ufrag
            );
            st.metrics.error(Protocol::WebRtc, ErrorKind::Io);
            s.close();
            return;
        }
    };
    loop {
        if let Err(e) = ready.wait().await {
            // An ICMP error (origin port closed): the origin is gone for this session.
            warn!(
                "[{}] WebRTC origin of session {} failed: {e}; ending it",
                s.cid, s.ufrag
            );
            st.metrics.error(Protocol::WebRtc, ErrorKind::Io);
            s.close();
            return;
        }
        let to = RawAddr::new(s.client());
        // Everything queued: one recvmmsg, one sendmmsg per batch (the core's batch: no await
        // while held).
        let d = drain_forward(
            &mut media.batch.borrow_mut(),
            up_fd,
            listener_fd,
            &to,
            |p| p.first() == Some(&DTLS_ALERT),
        );
        s.touch(media.table.now_ms());
        s.down_packets.fetch_add(d.datagrams, Relaxed);
        counters.origin_to_client_bytes.fetch_add(d.bytes, Relaxed);
        counters.relay_writes.fetch_add(d.writes, Relaxed);
        if d.last_seen {
            info!(
                "[{}] WebRTC origin sent a DTLS alert: session {} over",
                s.cid, s.ufrag
            );
            s.close();
            return;
        }
        glommio::yield_if_needed().await;
    }
}
