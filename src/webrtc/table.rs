//! The process-wide ICE session table: session key (`<answer-ufrag>:<offer-ufrag>`) → binding,
//! and each binding's media session once the first STUN check arrives.
//!
//! Why shared rather than replicated over the mesh: the binding must be visible on every core
//! *before* the answer leaves the proxy (the client's first check may land on any core), and a
//! client may move to an address that the kernel hands to another core mid-session. A sharded
//! mutex map gives both with no acknowledgement protocol. It is off the media path: it is
//! touched once per signalling exchange and per STUN check that names an address a core does
//! not know yet (ICE checks, consent every ~5 s, migrations); media datagrams are routed by each
//! core's own address map.
//!
//! Bounds: at most [`MAX_BINDINGS`] bindings; one that no check ever used is dropped after
//! [`UNUSED_BINDING_TTL`] (the client gave up); one in use lives as long as its session.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ahash::AHashMap;

use crate::lb::Origin;

/// Bindings the proxy keeps at most (signalling answers 503 beyond).
pub const MAX_BINDINGS: usize = 200_000;
/// A binding that no STUN check used within this long is forgotten (Go's Redis TTL for the
/// `ufrag` object is the same 120 s).
pub const UNUSED_BINDING_TTL: Duration = Duration::from_secs(120);
const SHARDS: usize = 16;

/// One signalling exchange: where its media goes.
pub struct Binding {
    /// `<answer-ufrag>:<offer-ufrag>`, the STUN `USERNAME` of the client's checks.
    pub ufrag: Arc<str>,
    pub stream_key: Arc<str>,
    pub origin: Arc<Origin>,
    /// The origin's WebRTC UDP address (its registered `rtc` port on its registered IP).
    pub origin_rtc: SocketAddr,
    pub publish: bool,
    /// The signalling request's connection id, so media log lines join the signalling ones.
    pub cid: String,
    pub created: Instant,
    /// The media session, created by the first check on whichever core receives it.
    pub session: Mutex<Option<Arc<Session>>>,
}

/// One relayed media session, shared by every core that sees datagrams of the client.
///
/// The connected upstream socket belongs to the session's *home* core (the core of the first
/// check), whose task reads the origin's datagrams and sends them to [`Session::client`].
/// Any core may send client datagrams on it (non-blocking `send(2)` on the descriptor), so a
/// client whose new address lands on another core keeps its origin-side address: the origin
/// sees no change at all.
pub struct Session {
    pub ufrag: Arc<str>,
    pub stream_key: Arc<str>,
    pub cid: String,
    pub publish: bool,
    pub home_core: usize,
    pub upstream: std::net::UdpSocket,
    /// The latest client address (the source of the latest datagram routed to this session).
    client: Mutex<SocketAddr>,
    /// Milliseconds since the table's epoch of the last datagram either way.
    last_activity: AtomicU64,
    /// Set when the session ends (idle, DTLS close, DELETE, shutdown); cores drop it lazily.
    closed: AtomicBool,
    pub started: Instant,
    /// Datagrams client → origin, and origin → client.
    pub up_packets: AtomicU64,
    pub down_packets: AtomicU64,
}

impl Session {
    pub fn new(
        binding: &Binding,
        home_core: usize,
        upstream: std::net::UdpSocket,
        client: SocketAddr,
        now_ms: u64,
    ) -> Session {
        Session {
            ufrag: binding.ufrag.clone(),
            stream_key: binding.stream_key.clone(),
            cid: binding.cid.clone(),
            publish: binding.publish,
            home_core,
            upstream,
            client: Mutex::new(client),
            last_activity: AtomicU64::new(now_ms),
            closed: AtomicBool::new(false),
            started: Instant::now(),
            up_packets: AtomicU64::new(0),
            down_packets: AtomicU64::new(0),
        }
    }

    pub fn client(&self) -> SocketAddr {
        *lock(&self.client)
    }

    /// Points the origin → client direction at `addr`; true when it changed (a migration).
    pub fn set_client(&self, addr: SocketAddr) -> bool {
        let mut c = lock(&self.client);
        if *c == addr {
            false
        } else {
            *c = addr;
            true
        }
    }

    pub fn touch(&self, now_ms: u64) {
        self.last_activity.store(now_ms, Relaxed);
    }

    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_activity.load(Relaxed))
    }

    pub fn close(&self) {
        self.closed.store(true, Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves consistent data: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The table (see the module docs).
pub struct RtcTable {
    shards: Vec<Mutex<AHashMap<Arc<str>, Arc<Binding>>>>,
    count: AtomicUsize,
    hasher: ahash::RandomState,
    epoch: Instant,
}

impl Default for RtcTable {
    fn default() -> Self {
        RtcTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            count: AtomicUsize::new(0),
            hasher: ahash::RandomState::new(),
            epoch: Instant::now(),
        }
    }
}

/// Why a binding was not stored.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    Full,
}

impl RtcTable {
    fn shard(&self, ufrag: &str) -> &Mutex<AHashMap<Arc<str>, Arc<Binding>>> {
        let h = self.hasher.hash_one(ufrag) as usize;
        &self.shards[h % SHARDS]
    }

    /// Milliseconds since the table was made: the clock of [`Session`]'s activity stamps.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Stores `b`, replacing (and closing the session of) an older binding with the same key.
    pub fn insert(&self, b: Arc<Binding>) -> Result<(), InsertError> {
        let mut shard = lock(self.shard(&b.ufrag));
        if !shard.contains_key(&b.ufrag) && self.count.load(Relaxed) >= MAX_BINDINGS {
            return Err(InsertError::Full);
        }
        match shard.insert(b.ufrag.clone(), b) {
            Some(old) => close_binding(&old),
            None => {
                self.count.fetch_add(1, Relaxed);
            }
        }
        Ok(())
    }

    pub fn get(&self, ufrag: &str) -> Option<Arc<Binding>> {
        lock(self.shard(ufrag)).get(ufrag).cloned()
    }

    /// Removes the binding (closing its session); returns it.
    pub fn remove(&self, ufrag: &str) -> Option<Arc<Binding>> {
        let removed = lock(self.shard(ufrag)).remove(ufrag);
        if let Some(b) = &removed {
            self.count.fetch_sub(1, Relaxed);
            close_binding(b);
        }
        removed
    }

    /// Removes `session`'s binding if it still points at that session.
    pub fn remove_session(&self, session: &Arc<Session>) {
        let mut shard = lock(self.shard(&session.ufrag));
        let ours = shard.get(&session.ufrag).is_some_and(|b| {
            lock(&b.session)
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s, session))
        });
        if ours {
            shard.remove(&session.ufrag);
            self.count.fetch_sub(1, Relaxed);
        }
    }

    /// Drops bindings that no check used within [`UNUSED_BINDING_TTL`]; returns how many.
    pub fn sweep_unused(&self, now: Instant) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            lock(shard).retain(|_, b| {
                let used = lock(&b.session).is_some();
                let keep = used || now.saturating_duration_since(b.created) < UNUSED_BINDING_TTL;
                if !keep {
                    dropped += 1;
                }
                keep
            });
        }
        self.count.fetch_sub(dropped, Relaxed);
        dropped
    }

    pub fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn close_binding(b: &Binding) {
    if let Some(s) = lock(&b.session).as_ref() {
        s.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Arc<Origin> {
        let reg = crate::api::register::parse_registration(
            br#"{"ip":"127.0.0.1","server":"o1","service":"s","pid":"1","rtmp":["1935"],"rtc":["udp://0.0.0.0:8000"]}"#,
        )
        .expect("valid registration");
        Arc::new(Origin::from_registration(
            &reg,
            std::time::SystemTime::now(),
            Instant::now(),
        ))
    }

    fn binding(ufrag: &str, created: Instant) -> Arc<Binding> {
        Arc::new(Binding {
            ufrag: ufrag.into(),
            stream_key: "__defaultVhost__/live/s".into(),
            origin: origin(),
            origin_rtc: "127.0.0.1:8000".parse().unwrap(),
            publish: true,
            cid: "c".into(),
            created,
            session: Mutex::new(None),
        })
    }

    #[test]
    fn insert_get_remove_and_replace_closes_the_old_session() {
        let t = RtcTable::default();
        let b = binding("a:b", Instant::now());
        t.insert(b.clone()).unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = Arc::new(Session::new(&b, 0, sock, "127.0.0.1:1".parse().unwrap(), 0));
        *b.session.lock().unwrap() = Some(s.clone());
        assert!(t.get("a:b").is_some());
        t.insert(binding("a:b", Instant::now())).unwrap();
        assert!(s.is_closed(), "a replaced binding's session is closed");
        assert_eq!(t.len(), 1);
        assert!(t.remove("a:b").is_some());
        assert!(t.get("a:b").is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn unused_bindings_expire_used_ones_stay() {
        let t = RtcTable::default();
        let old = Instant::now();
        let later = old + UNUSED_BINDING_TTL + Duration::from_secs(1);
        t.insert(binding("unused:x", old)).unwrap();
        let used = binding("used:x", old);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        *used.session.lock().unwrap() = Some(Arc::new(Session::new(
            &used,
            0,
            sock,
            "127.0.0.1:1".parse().unwrap(),
            0,
        )));
        t.insert(used).unwrap();
        assert_eq!(t.sweep_unused(later), 1);
        assert!(t.get("unused:x").is_none());
        assert!(t.get("used:x").is_some());
    }

    #[test]
    fn remove_session_only_removes_its_own_binding() {
        let t = RtcTable::default();
        let b = binding("k:1", Instant::now());
        t.insert(b.clone()).unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let stale = Arc::new(Session::new(&b, 0, sock, "127.0.0.1:1".parse().unwrap(), 0));
        t.remove_session(&stale);
        assert!(
            t.get("k:1").is_some(),
            "a session the binding does not hold removes nothing"
        );
        *b.session.lock().unwrap() = Some(stale.clone());
        t.remove_session(&stale);
        assert!(t.get("k:1").is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn client_address_migration_is_reported_once() {
        let b = binding("m:1", Instant::now());
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = Session::new(&b, 0, sock, "127.0.0.1:1".parse().unwrap(), 0);
        assert!(!s.set_client("127.0.0.1:1".parse().unwrap()));
        assert!(s.set_client("127.0.0.1:2".parse().unwrap()));
        assert_eq!(s.client(), "127.0.0.1:2".parse().unwrap());
        s.touch(100);
        assert_eq!(s.idle_ms(150), 50);
    }
}
