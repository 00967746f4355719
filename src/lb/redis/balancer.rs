//! [`LbCore`] in Redis mode: the owner core's decisions, HLS ids, WebRTC sessions and the origin
//! table, read from and written to the shared Redis (see the contract in [`super`]).
//!
//! Every wait on Redis is bounded by [`REDIS_WAIT`] (shorter than the owner timeout, so a core
//! asking the owner always hears an answer), and every failed operation is counted in
//! `srs_proxy_redis_errors_total`.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ahash::AHashSet;
use rand::Rng;
use tracing::{info, warn};

use super::{Claim, GoTime, HlsRecord, Pinned, RedisError, RedisStore, RtcRecord, ServerRecord};
use crate::api::register::validate;
use crate::lb::{oneshot, LbCore, Origin, Outbox, PickError, PickResult, OWNER_TIMEOUT};

/// The longest any load-balancer operation waits on Redis, a whole pick decision included.
pub const REDIS_WAIT: Duration = Duration::from_millis(2500);
/// How often the default backend's server key is re-stored (Go: every 30 s, spec §3.4).
pub const DEFAULT_BACKEND_REFRESH: Duration = Duration::from_secs(30);
/// Records in Redis that cannot be routed to are reported once each, up to this many.
const MAX_REPORTED: usize = 1024;

thread_local! {
    static REPORTED: RefCell<AHashSet<String>> = RefCell::new(AHashSet::new());
}

/// How often one core reads the origins other proxies registered: a third of the origin TTL
/// (so a live origin never looks silent between two reads), between 100 ms and 1 s.
pub fn sync_interval(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The pin a decision starts from.
enum Previous {
    /// No proxy pinned the stream yet: claim it.
    None,
    /// Pinned to a server key that expired: move it.
    Expired(String),
    /// Pinned to a live origin that refused us: re-pin it.
    Refused(String),
}

fn pick_error(key: &str, e: RedisError) -> PickError {
    match e {
        RedisError::Timeout { after, .. } => PickError::RedisTimeout {
            key: key.to_string(),
            after,
        },
        e => PickError::Redis {
            key: key.to_string(),
            reason: e.to_string(),
        },
    }
}

impl<O: Outbox> LbCore<O> {
    /// Runs one Redis operation within [`REDIS_WAIT`], counting a failure.
    async fn wait<T>(
        &self,
        store: &RedisStore,
        op: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        let r = match executors::with_timeout(REDIS_WAIT, op).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::Timeout {
                addr: store.client().addr().to_string(),
                after: REDIS_WAIT,
            }),
        };
        if r.is_err() {
            self.metrics.redis_errors_total.fetch_add(1, Relaxed);
        }
        r
    }

    /// On the owner core: the Redis decision for `key`, shared by every request for the same
    /// key that arrives while it runs (requests that `avoid` an origin decide on their own).
    /// The decision runs in its own task, so a client that goes away does not cancel it.
    pub(in crate::lb) async fn decide_shared(
        self: &Rc<Self>,
        key: Arc<str>,
        avoid: Option<Arc<str>>,
    ) -> PickResult {
        if avoid.is_none() {
            if let Some((origin, true)) = self.cached(&key, Instant::now()) {
                return Ok(origin);
            }
        }
        let (tx, rx) = oneshot::channel();
        let own = if avoid.is_some() {
            Some(tx)
        } else {
            let joined = {
                let mut inflight = self.inflight.borrow_mut();
                match inflight.get_mut(&key) {
                    Some(waiters) => {
                        waiters.push(tx);
                        true
                    }
                    None => {
                        inflight.insert(key.clone(), vec![tx]);
                        false
                    }
                }
            };
            if joined {
                return self.await_decision(&key, rx).await;
            }
            None
        };
        let lb = self.clone();
        let k = key.clone();
        glommio::spawn_local(async move {
            let fallback = avoid.is_none();
            let mut result =
                match executors::with_timeout(REDIS_WAIT, lb.decide_redis(&k, avoid)).await {
                    Ok(r) => r,
                    Err(_) => {
                        lb.metrics.redis_errors_total.fetch_add(1, Relaxed);
                        Err(PickError::RedisTimeout {
                            key: k.to_string(),
                            after: REDIS_WAIT,
                        })
                    }
                };
            // Redis cannot answer: the owner's own pin, if its origin is alive, answers every
            // core that asks (a core that never served the stream has no pin of its own).
            if let Err(e) = &result {
                if fallback && e.is_transient() {
                    if let Some((origin, _)) = lb.cached(&k, Instant::now()) {
                        warn!("{e}; using the cached pin of {k} on {}", origin.id);
                        result = Ok(origin);
                    }
                }
            }
            let waiters = match own {
                Some(tx) => vec![tx],
                None => lb.inflight.borrow_mut().remove(&k).unwrap_or_default(),
            };
            for w in waiters {
                w.send(result.clone());
            }
        })
        .detach();
        self.await_decision(&key, rx).await
    }

    async fn await_decision(&self, key: &str, rx: oneshot::Receiver<PickResult>) -> PickResult {
        match executors::with_timeout(OWNER_TIMEOUT, rx).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => Err(PickError::OwnerTimeout(key.to_string())),
        }
    }

    /// The decision itself (spec §4.3 `Pick`, made atomic): use the stored pin while its server
    /// key lives (and it is not the origin that refused us), else choose a live origin and
    /// claim (`SET NX`), move (off an expired key) or re-pin (off a refusing origin) with a
    /// compare-and-set. Two round trips at most unless another proxy won the race for an origin
    /// this proxy has not seen yet.
    async fn decide_redis(&self, key: &Arc<str>, avoid: Option<Arc<str>>) -> PickResult {
        let Some(store) = self.redis.clone() else {
            return Err(PickError::NoOrigin(key.to_string()));
        };
        let avoid = avoid.as_deref();
        let pinned = self
            .wait(&store, store.pinned(key))
            .await
            .map_err(|e| pick_error(key, e))?;
        let previous = match pinned {
            None => Previous::None,
            Some(Pinned {
                server_key,
                server: Some(rec),
            }) => {
                if avoid != Some(rec.id().as_str()) {
                    let origin = self.adopt(&rec).map_err(|reason| PickError::Redis {
                        key: key.to_string(),
                        reason,
                    })?;
                    self.publish_pin(key.clone(), origin.clone(), Instant::now());
                    return Ok(origin);
                }
                Previous::Refused(server_key)
            }
            Some(Pinned {
                server_key,
                server: None,
            }) => Previous::Expired(server_key),
        };
        // Redis has no pin but this proxy has one (Redis restarted without its data): claim
        // the origin that holds the stream again rather than a random one.
        let kept = match previous {
            Previous::None => self
                .cached(key, Instant::now())
                .map(|(o, _)| o)
                .filter(|o| avoid != Some(o.id.as_str())),
            _ => None,
        };
        if let Some(o) = &kept {
            info!("redis has no pin for {key} (restarted without its data?); claiming it for {} again", o.id);
        }
        let chosen = kept
            .or_else(|| self.choose(avoid, Instant::now()))
            .ok_or_else(|| match avoid {
                Some(failed) => PickError::NoAlternative {
                    key: key.to_string(),
                    failed: failed.to_string(),
                },
                None => PickError::NoOrigin(key.to_string()),
            })?;
        let to = store.keys().server(&chosen.id);
        let claim = match &previous {
            Previous::None => self.wait(&store, store.claim_stream(key, &to)).await,
            Previous::Expired(from) => self.wait(&store, store.move_stream(key, from, &to)).await,
            Previous::Refused(from) => self.wait(&store, store.repin_stream(key, from, &to)).await,
        }
        .map_err(|e| pick_error(key, e))?;
        let origin = match claim {
            Claim::Claimed(_) => {
                if let Previous::Expired(from) | Previous::Refused(from) = &previous {
                    self.metrics.repicks_total.fetch_add(1, Relaxed);
                    info!("moved {key} from {from} to {to}");
                }
                chosen
            }
            Claim::Existing(k) => self.resolve(&store, key, &k).await?,
        };
        self.publish_pin(key.clone(), origin.clone(), Instant::now());
        Ok(origin)
    }

    /// The origin of a server key another decision stored: this replica's record while it is
    /// alive, else the record in Redis (one round trip).
    async fn resolve(&self, store: &RedisStore, key: &str, server_key: &str) -> PickResult {
        if let Some(o) = store
            .keys()
            .origin_id(server_key)
            .and_then(|id| self.origin(id))
        {
            if o.is_alive(Instant::now(), self.ttl) {
                return Ok(o);
            }
        }
        match self.wait(store, store.load_server(server_key)).await {
            Ok(Some(rec)) => self
                .adopt(&rec)
                .map_err(|reason| PickError::Redis {
                    key: key.to_string(),
                    reason,
                }),
            Ok(None) => Err(PickError::Redis {
                key: key.to_string(),
                reason: format!(
                    "another proxy pinned it to {server_key}, whose key has expired since; the next pick moves it"
                ),
            }),
            Err(e) => Err(pick_error(key, e)),
        }
    }

    /// The replica's origin for a record found in Redis (its key exists, so it is alive now):
    /// the known record touched, or a new one installed on every core. `Err`: the record
    /// cannot be routed to (a foreign writer's).
    fn adopt(&self, rec: &ServerRecord) -> Result<Arc<Origin>, String> {
        let reg = rec.to_registration();
        let wall = rec.update_at.to_system_time();
        if let Some(o) = self.origin(&reg.id()) {
            if o.same_registration(&reg) {
                o.touch(wall, Instant::now());
                return Ok(o);
            }
        }
        validate(&reg).map_err(|e| format!("server record {} in redis: {e}", reg.id()))?;
        Ok(self.register(Origin::from_registration(&reg, wall, Instant::now())))
    }

    /// Redis mode, on one core, every [`sync_interval`]: installs every origin whose server key
    /// exists (registered on any proxy, Go or Rust) and marks silent the ones whose key has
    /// gone, on every core. Returns how many records were listed. Memory mode: nothing.
    pub async fn sync_origins(&self) -> Result<usize, RedisError> {
        let Some(store) = self.redis.clone() else {
            return Ok(0);
        };
        let started = Instant::now();
        let listed = self.wait(&store, store.load_servers()).await?;
        let mut present = AHashSet::with_capacity(listed.len());
        for (server_key, rec) in &listed {
            match self.adopt(rec) {
                Ok(o) => {
                    present.insert(o.id.clone());
                }
                Err(reason) => report_once(server_key, &reason),
            }
        }
        for o in self.origins.borrow().values() {
            // An origin heartbeating here since the read started is alive whatever it said,
            // and so is one that heartbeats to this proxy: a Redis that lost its data (restarted
            // without persistence) lists it again after its next heartbeat.
            if !o.is_default
                && !present.contains(&o.id)
                && o.seen() < started
                && !o.heard_within(started, self.ttl)
                && o.is_alive(started, self.ttl)
            {
                info!("origin {} has no server key in redis any more", o.id);
                o.expire(self.ttl);
            }
        }
        Ok(listed.len())
    }

    /// Redis mode: writes a registration (Go `Update`: the server key with
    /// `PROXY_ORIGIN_SERVER_TTL`, and the server list). Memory mode: nothing.
    pub async fn store_origin(&self, rec: &ServerRecord) -> Result<(), RedisError> {
        let Some(store) = self.redis.clone() else {
            return Ok(());
        };
        self.wait(&store, store.update_record(rec, self.ttl))
            .await
            .map(|_| ())
    }

    /// Redis mode: the one spbhid of `key` across every proxy (spec §10 #6), minted here if the
    /// stream has none, its TTLs refreshed. Cached for [`crate::lb::hls::HLS_CACHE`].
    pub(in crate::lb) async fn hls_id_shared(
        &self,
        store: &RedisStore,
        key: &str,
    ) -> Option<Arc<str>> {
        let candidate = HlsRecord {
            spbhid: format!("{:07x}", rand::thread_rng().gen_range(0..0x1000_0000u32)),
            stream_url: key.to_string(),
            full_url: format!("http://{key}.m3u8"),
        };
        match self
            .wait(store, store.load_or_store_hls(key, &candidate))
            .await
        {
            Ok(rec) if !rec.spbhid.is_empty() => {
                let id: Arc<str> = rec.spbhid.into();
                self.hls
                    .borrow_mut()
                    .cache(key.into(), id.clone(), Instant::now());
                Some(id)
            }
            Ok(rec) => {
                warn!("hls record of {key} in redis has no spbhid: {rec:?}");
                None
            }
            Err(e) => {
                warn!("no hls affinity id for {key}: {e}");
                None
            }
        }
    }

    /// Redis mode: the stream an spbhid was minted for, by any proxy (G1 `LoadHLSBySPBHID`).
    pub(in crate::lb) async fn hls_key_shared(
        &self,
        store: &RedisStore,
        spbhid: &str,
    ) -> Option<Arc<str>> {
        if spbhid.is_empty() {
            return None;
        }
        match self.wait(store, store.load_hls_by_spbhid(spbhid)).await {
            Ok(Some(rec)) if !rec.stream_url.is_empty() => {
                let key: Arc<str> = rec.stream_url.into();
                self.hls
                    .borrow_mut()
                    .cache(key.clone(), spbhid.into(), Instant::now());
                Some(key)
            }
            Ok(_) => None,
            Err(e) => {
                warn!("cannot resolve spbhid {spbhid}: {e}");
                None
            }
        }
    }

    /// Records a WebRTC session (Go `StoreWebRTC`): `ufrag` is the ICE username
    /// `<answer>:<offer>`, `key` the stream key. Redis mode: both keys for 120 s, so a STUN
    /// packet reaching any proxy finds the stream. Memory mode: nothing (the WebRTC glue keeps
    /// its own per-core tables).
    pub async fn rtc_store(&self, ufrag: &str, key: &str) -> Result<(), PickError> {
        let Some(store) = self.redis.clone() else {
            return Ok(());
        };
        let rec = RtcRecord {
            stream_url: key.to_string(),
            ufrag: ufrag.to_string(),
        };
        self.wait(&store, store.store_rtc(key, &rec))
            .await
            .map_err(|e| pick_error(key, e))
    }

    /// The stream key of a WebRTC session another proxy (or core) stored (Go G1
    /// `LoadWebRTCByUfrag`). `None` in memory mode, when unknown or expired, or when Redis
    /// cannot answer (logged).
    pub async fn rtc_lookup(&self, ufrag: &str) -> Option<Arc<str>> {
        let store = self.redis.clone()?;
        match self.wait(&store, store.load_rtc_by_ufrag(ufrag)).await {
            Ok(Some(rec)) if !rec.stream_url.is_empty() => Some(rec.stream_url.into()),
            Ok(_) => None,
            Err(e) => {
                warn!("cannot look up webrtc session {ufrag}: {e}");
                None
            }
        }
    }
}

fn report_once(server_key: &str, reason: &str) {
    let first = REPORTED.with(|r| {
        let mut r = r.borrow_mut();
        r.len() < MAX_REPORTED && r.insert(server_key.to_string())
    });
    if first {
        warn!("ignoring {server_key}: {reason}");
    }
}

/// Redis mode, on one core: the background work of [`LbCore::sync_origins`] every
/// [`sync_interval`], and the default backend's server key every
/// [`DEFAULT_BACKEND_REFRESH`]. Returns the tasks, for cancelling at shutdown.
pub fn spawn_upkeep<O: Outbox + 'static>(lb: &Rc<LbCore<O>>) -> Vec<glommio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if lb.redis.is_none() {
        return tasks;
    }
    let sync = lb.clone();
    tasks.push(
        glommio::spawn_local(async move {
            let mut failing = false;
            loop {
                match sync.sync_origins().await {
                    Ok(_) if failing => {
                        info!("redis is answering again; origins are in sync");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        warn!("cannot read the origins from redis (new streams need it; pinned streams keep their origins): {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
                glommio::timer::sleep(sync_interval(sync.ttl)).await;
            }
        })
        .detach(),
    );
    if let Some(default) = lb.origins().into_iter().find(|o| o.is_default) {
        let refresh = lb.clone();
        tasks.push(
            glommio::spawn_local(async move {
                loop {
                    // Go re-stores the same object, its update_at untouched (spec §3.4).
                    let rec = ServerRecord::from_origin(&default);
                    if let Err(e) = refresh.store_origin(&rec).await {
                        warn!("cannot store the default backend in redis: {e}");
                    }
                    glommio::timer::sleep(DEFAULT_BACKEND_REFRESH).await;
                }
            })
            .detach(),
        );
    }
    tasks
}

/// The record a heartbeat stores: the origin's fields stamped with the heartbeat's wall time.
pub fn heartbeat_record(origin: &Origin, at: SystemTime) -> ServerRecord {
    let mut rec = ServerRecord::from_origin(origin);
    rec.update_at = GoTime::local(at);
    rec
}
