//! Load balancer: which origin holds which stream.
//!
//! Every core holds a replica of the origin table ([`LbCore`]). A registration is applied on the
//! core where it lands and broadcast to the others over the mesh. A stream pin must be the same on
//! every core, so a *new* key is decided in one place: its owner core (`shard_for(key)`), which
//! stores the pin and broadcasts it; the other cores cache it. The decision logic is synchronous
//! and talks to the other cores only through an [`Outbox`], so it is unit-tested without a
//! runtime.
//!
//! Fix of the Go memory LB (spec §4.2, §10 #3): a pin whose origin stopped heartbeating (older
//! than `PROXY_ORIGIN_SERVER_TTL`) or refused a connection moves to a live origin on the next
//! pick, on every core. While its origin is alive and reachable a pin never moves.
//!
//! Redis mode ([`LbCore::with_redis`], `PROXY_LOAD_BALANCER_TYPE=redis`): the same API and the
//! same owner core per key, but the owner's decision is made on the shared Redis (claimed with
//! `SET NX`, moved or re-pinned with a compare-and-set), cached pins are re-read after
//! [`REVALIDATE`], and the origin table also holds the origins other proxies registered. The
//! contract is in [`redis`].
//!
//! Bounds: pins that no session used for [`PIN_IDLE`] are dropped by [`LbCore::sweep`]; sessions
//! on other cores keep their pins alive on the owner with batched touches. At most [`MAX_PINS`]
//! pins exist per core; past that new streams are refused with a clear error.

pub mod hls;
pub mod oneshot;
pub mod origin;
pub mod redis;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use rand::Rng;

pub use origin::Origin;

use crate::metrics::CoreMetrics;

/// A pin that no session used for this long is forgotten (a new session then picks afresh).
pub const PIN_IDLE: Duration = Duration::from_secs(600);
/// An origin that refused a connection is avoided for new picks for this long.
pub const REFUSED_BACKOFF: Duration = Duration::from_secs(10);
/// Hard cap on pins per core, against clients inventing stream names without end.
pub const MAX_PINS: usize = 1_000_000;
/// How long a core waits for the owner core's decision.
pub const OWNER_TIMEOUT: Duration = Duration::from_secs(3);
/// Redis mode: a cached pin is trusted this long after Redis (or the owner core) last confirmed
/// it; the next pick after that re-reads it (one round trip), so another proxy's move is seen.
pub const REVALIDATE: Duration = Duration::from_secs(5);

/// Messages the load balancer sends between cores.
#[derive(Debug, Clone)]
pub enum LbMsg {
    /// A registration landed on some core: replace this replica's record.
    Upsert(Arc<Origin>),
    /// Ask the owner core of `key` to decide the pin. `avoid`: an origin the asker saw refuse.
    PinRequest {
        req: u64,
        key: Arc<str>,
        avoid: Option<Arc<str>>,
    },
    /// The owner's answer to `PinRequest`.
    PinReply {
        req: u64,
        result: Result<Arc<Origin>, PickError>,
    },
    /// The owner decided or moved a pin: every replica caches it.
    PinSet { key: Arc<str>, origin: Arc<Origin> },
    /// The owner forgot an idle pin.
    PinDrop { key: Arc<str> },
    /// An origin refused a connection: avoid it for new picks for a while.
    Refused { origin: Arc<str> },
    /// Keys with sessions on the sending core: keep their pins alive on the owner.
    Touch { keys: Vec<Arc<str>> },
    /// Ask the owner core of `key` for its HLS affinity id (minted if new).
    HlsIdRequest { req: u64, key: Arc<str> },
    /// Ask the core `shard_for(spbhid)` (the minting owner) which key an id belongs to.
    HlsKeyRequest { req: u64, spbhid: Arc<str> },
    /// The answer to either: `(key, spbhid)`, or `None` (unknown id, or no id could be minted).
    HlsReply {
        req: u64,
        entry: Option<(Arc<str>, Arc<str>)>,
    },
}

/// Why no origin could be picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("no server available for {0}: register an origin with POST /api/v1/srs/register (SRS: heartbeat {{ enabled on; ports on; url http://<proxy>:12025/api/v1/srs/register; }})")]
    NoOrigin(String),
    #[error(
        "no other origin available for {key}: origin {failed} refused and none else is registered"
    )]
    NoAlternative { key: String, failed: String },
    #[error("too many streams pinned ({0}); refusing new stream keys")]
    TooManyPins(usize),
    #[error("the owner core of {0} did not answer in time")]
    OwnerTimeout(String),
    /// Redis mode: the shared state could not be read or written. `reason` is the client's
    /// error text, which names what to check (`PROXY_REDIS_HOST`/`_PORT`, `_PASSWORD`, `_DB`)
    /// and never the password.
    #[error("cannot decide the origin of {key} through redis: {reason}")]
    Redis { key: String, reason: String },
    /// Redis mode: no answer within [`redis::REDIS_WAIT`].
    #[error("redis did not answer within {after:?} for {key}; check that redis-server at PROXY_REDIS_HOST/PROXY_REDIS_PORT is up and not overloaded")]
    RedisTimeout { key: String, after: Duration },
}

impl PickError {
    /// A failure of the shared state (not of the cluster's contents): a cached pin may still
    /// be used.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PickError::OwnerTimeout(_) | PickError::Redis { .. } | PickError::RedisTimeout { .. }
        )
    }
}

/// The answer to a pick.
pub type PickResult = Result<Arc<Origin>, PickError>;

/// An HLS affinity entry `(key, spbhid)` as the owner core reports it.
pub type HlsEntry = Option<(Arc<str>, Arc<str>)>;

/// How the load balancer reaches other cores. The runtime implements it over the executors'
/// mesh; tests implement it with a queue.
pub trait Outbox: 'static {
    fn send(&self, core: usize, msg: LbMsg);
    fn broadcast(&self, msg: LbMsg);
}

struct Pin {
    origin: Arc<Origin>,
    last_used: Instant,
    /// When the decision was last confirmed (by the owner core, or by Redis in Redis mode).
    checked: Instant,
    /// Sessions on this core using the pin now.
    active: u32,
}

/// The per-core replica and, for the keys this core owns, the authority.
pub struct LbCore<O: Outbox> {
    core: usize,
    cores: usize,
    ttl: Duration,
    outbox: O,
    origins: RefCell<AHashMap<Arc<str>, Arc<Origin>>>,
    pins: RefCell<AHashMap<Arc<str>, Pin>>,
    refused: RefCell<AHashMap<Arc<str>, Instant>>,
    pending: RefCell<AHashMap<u64, oneshot::Sender<PickResult>>>,
    hls: RefCell<hls::HlsTable>,
    hls_pending: RefCell<AHashMap<u64, oneshot::Sender<HlsEntry>>>,
    next_req: Cell<u64>,
    /// This core's counters: picks, pick errors and pin moves are counted here.
    pub metrics: Arc<CoreMetrics>,
    /// Redis mode: this core's connection and the Go key schema (`None`: memory mode).
    redis: Option<Rc<redis::RedisStore>>,
    /// Redis mode, on the owner: decisions in flight per key and who waits for them, so one
    /// key costs one Redis decision per proxy however many clients arrive at once.
    inflight: RefCell<AHashMap<Arc<str>, Vec<oneshot::Sender<PickResult>>>>,
}

/// Keeps a pin in use while a session runs (see [`LbCore::session`]).
pub struct SessionGuard<O: Outbox> {
    lb: Rc<LbCore<O>>,
    key: Arc<str>,
}

impl<O: Outbox> Drop for SessionGuard<O> {
    fn drop(&mut self) {
        if let Some(pin) = self.lb.pins.borrow_mut().get_mut(&self.key) {
            pin.active = pin.active.saturating_sub(1);
            pin.last_used = Instant::now();
        }
    }
}

impl<O: Outbox> LbCore<O> {
    pub fn new(
        core: usize,
        cores: usize,
        ttl: Duration,
        outbox: O,
        metrics: Arc<CoreMetrics>,
    ) -> Self {
        LbCore {
            core,
            cores,
            ttl,
            outbox,
            origins: RefCell::default(),
            pins: RefCell::default(),
            refused: RefCell::default(),
            pending: RefCell::default(),
            hls: RefCell::default(),
            hls_pending: RefCell::default(),
            next_req: Cell::new(1),
            metrics,
            redis: None,
            inflight: RefCell::default(),
        }
    }

    /// Redis mode (`PROXY_LOAD_BALANCER_TYPE=redis`): decisions go through `store`, this core's
    /// connection (see [`redis`] for the contract).
    pub fn with_redis(mut self, store: Rc<redis::RedisStore>) -> Self {
        self.redis = Some(store);
        self
    }

    /// This core's Redis store, in Redis mode.
    pub fn redis(&self) -> Option<&Rc<redis::RedisStore>> {
        self.redis.as_ref()
    }

    /// The core that decides `key`.
    pub fn owner_of(&self, key: &str) -> usize {
        executors::shard_for(key.as_bytes(), self.cores)
    }

    /// Applies a registration here and replicates it to every other core.
    pub fn register(&self, origin: Origin) -> Arc<Origin> {
        let origin = Arc::new(origin);
        self.upsert(origin.clone());
        self.outbox.broadcast(LbMsg::Upsert(origin.clone()));
        origin
    }

    /// Installs an origin on this core only (the default backend, which every core builds itself).
    pub fn install(&self, origin: Origin) {
        self.upsert(Arc::new(origin));
    }

    fn upsert(&self, origin: Arc<Origin>) {
        let id: Arc<str> = origin.id.as_str().into();
        // A fresh heartbeat proves the origin is back: forget an earlier refusal.
        self.refused.borrow_mut().remove(&id);
        self.origins.borrow_mut().insert(id, origin);
    }

    /// Whether `id` is registered on this core's replica.
    pub fn has_origin(&self, id: &str) -> bool {
        self.origins.borrow().contains_key(id)
    }

    /// This core's record of origin `id`.
    pub fn origin(&self, id: &str) -> Option<Arc<Origin>> {
        self.origins.borrow().get(id).cloned()
    }

    /// Registered origins, for listings.
    pub fn origins(&self) -> Vec<Arc<Origin>> {
        let mut v: Vec<_> = self.origins.borrow().values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Stream pins known on this core (key → origin id), for listings.
    pub fn pins(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .pins
            .borrow()
            .iter()
            .map(|(k, p)| (k.to_string(), p.origin.id.clone()))
            .collect();
        v.sort();
        v
    }

    pub fn pin_count(&self) -> usize {
        self.pins.borrow().len()
    }

    pub fn origin_count(&self) -> usize {
        self.origins.borrow().len()
    }

    /// Marks that a session uses `key`'s pin until the guard drops (keeps the pin from expiring).
    pub fn session(self: &Rc<Self>, key: &str) -> SessionGuard<O> {
        let key: Arc<str> = key.into();
        if let Some(pin) = self.pins.borrow_mut().get_mut(&key) {
            pin.active += 1;
            pin.last_used = Instant::now();
        }
        SessionGuard {
            lb: self.clone(),
            key,
        }
    }

    fn usable(&self, origin: &Origin, now: Instant) -> bool {
        origin.is_alive(now, self.ttl) && !self.is_refused(&origin.id, now)
    }

    fn is_refused(&self, id: &str, now: Instant) -> bool {
        self.refused
            .borrow()
            .get(id)
            .is_some_and(|until| *until > now)
    }

    /// The origin for `key`: the cached pin if its origin is usable, else the owner's decision.
    /// Redis mode: a cached pin is used without asking while [`REVALIDATE`] has not passed since
    /// it was confirmed; after that the owner re-reads it, and if Redis cannot answer the
    /// cached pin is still used.
    pub async fn pick(self: &Rc<Self>, key: &str) -> Result<Arc<Origin>, PickError> {
        self.metrics.picks_total.fetch_add(1, Relaxed);
        let now = Instant::now();
        let cached = self.cached(key, now);
        if let Some((origin, fresh)) = &cached {
            if self.redis.is_none() || *fresh {
                return Ok(origin.clone());
            }
        }
        let r = match (self.ask_owner(key, None).await, cached) {
            (Err(e), Some((origin, _))) if e.is_transient() => {
                tracing::warn!("{e}; using the cached pin of {key} on {}", origin.id);
                self.confirm_pin(key, Instant::now());
                Ok(origin)
            }
            (r, _) => r,
        };
        if r.is_err() {
            self.metrics.pick_errors_total.fetch_add(1, Relaxed);
        }
        r
    }

    /// This core's pin of `key` if its origin is usable, and whether it was confirmed within
    /// [`REVALIDATE`].
    fn cached(&self, key: &str, now: Instant) -> Option<(Arc<Origin>, bool)> {
        let mut pins = self.pins.borrow_mut();
        let pin = pins.get_mut(key)?;
        // Take the replica's newest record of that origin (a later heartbeat may have
        // changed its ports), falling back to the pinned snapshot.
        let current = self.origins.borrow().get(pin.origin.id.as_str()).cloned();
        if let Some(o) = current {
            pin.origin = o;
        }
        if !self.usable(&pin.origin, now) {
            return None;
        }
        pin.last_used = now;
        let fresh = now.saturating_duration_since(pin.checked) < REVALIDATE;
        Some((pin.origin.clone(), fresh))
    }

    fn confirm_pin(&self, key: &str, now: Instant) {
        if let Some(pin) = self.pins.borrow_mut().get_mut(key) {
            pin.checked = now;
        }
    }

    /// `failed` refused a connection for `key`: avoid it everywhere for a while and move the pin.
    pub async fn repick(
        self: &Rc<Self>,
        key: &str,
        failed: &Origin,
    ) -> Result<Arc<Origin>, PickError> {
        let id: Arc<str> = failed.id.as_str().into();
        self.mark_refused(id.clone(), Instant::now());
        self.outbox.broadcast(LbMsg::Refused { origin: id.clone() });
        let r = self.ask_owner(key, Some(id)).await;
        if r.is_err() {
            self.metrics.pick_errors_total.fetch_add(1, Relaxed);
        }
        r
    }

    fn mark_refused(&self, id: Arc<str>, now: Instant) {
        self.refused.borrow_mut().insert(id, now + REFUSED_BACKOFF);
    }

    async fn ask_owner(
        self: &Rc<Self>,
        key: &str,
        avoid: Option<Arc<str>>,
    ) -> Result<Arc<Origin>, PickError> {
        let owner = self.owner_of(key);
        if owner == self.core {
            if self.redis.is_some() {
                return self.decide_shared(key.into(), avoid).await;
            }
            return self.decide(key, avoid.as_deref(), Instant::now());
        }
        let req = self.next_req.get();
        self.next_req.set(req + 1);
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(req, tx);
        self.outbox.send(
            owner,
            LbMsg::PinRequest {
                req,
                key: key.into(),
                avoid,
            },
        );
        let answer = executors::with_timeout(OWNER_TIMEOUT, rx).await;
        self.pending.borrow_mut().remove(&req);
        match answer {
            Ok(Some(Ok(origin))) => {
                self.cache_pin(key.into(), origin.clone(), Instant::now());
                Ok(origin)
            }
            Ok(Some(Err(e))) => Err(e),
            Ok(None) | Err(_) => Err(PickError::OwnerTimeout(key.to_string())),
        }
    }

    fn cache_pin(&self, key: Arc<str>, origin: Arc<Origin>, now: Instant) {
        let mut pins = self.pins.borrow_mut();
        match pins.get_mut(&key) {
            Some(pin) => {
                pin.origin = origin;
                pin.last_used = now;
                pin.checked = now;
            }
            None => {
                if pins.len() < MAX_PINS {
                    pins.insert(
                        key,
                        Pin {
                            origin,
                            last_used: now,
                            checked: now,
                            active: 0,
                        },
                    );
                }
            }
        }
        drop(pins);
    }

    /// The owner's decision for `key` (spec §4.2 with the §10 #3 fix). Only called on the owner.
    fn decide(
        &self,
        key: &str,
        avoid: Option<&str>,
        now: Instant,
    ) -> Result<Arc<Origin>, PickError> {
        let mut previous = None;
        if let Some(pin) = self.pins.borrow_mut().get_mut(key) {
            let current = self.origins.borrow().get(pin.origin.id.as_str()).cloned();
            if let Some(o) = current {
                pin.origin = o;
            }
            let avoided = avoid == Some(pin.origin.id.as_str());
            if !avoided && self.usable(&pin.origin, now) {
                pin.last_used = now;
                return Ok(pin.origin.clone());
            }
            previous = Some(pin.origin.id.clone());
        }
        if previous.is_none() && self.pins.borrow().len() >= MAX_PINS {
            return Err(PickError::TooManyPins(MAX_PINS));
        }
        let chosen = self.choose(avoid, now).ok_or_else(|| match avoid {
            Some(failed) => PickError::NoAlternative {
                key: key.to_string(),
                failed: failed.to_string(),
            },
            None => PickError::NoOrigin(key.to_string()),
        })?;
        if previous.is_some() {
            self.metrics.repicks_total.fetch_add(1, Relaxed);
        }
        self.publish_pin(key.into(), chosen.clone(), now);
        Ok(chosen)
    }

    /// On the owner: caches the decided pin and tells every other core.
    fn publish_pin(&self, key: Arc<str>, origin: Arc<Origin>, now: Instant) {
        self.cache_pin(key.clone(), origin.clone(), now);
        self.outbox.broadcast(LbMsg::PinSet { key, origin });
    }

    /// Uniformly random among the best class: alive and not refusing, else alive, else any
    /// registered origin (the Go "no alive servers → use all" fallback, spec §4.2 step 2; not in
    /// Redis mode, where an origin whose server key expired is never chosen, as in Go).
    /// `avoid` is never chosen.
    fn choose(&self, avoid: Option<&str>, now: Instant) -> Option<Arc<Origin>> {
        let origins = self.origins.borrow();
        let eligible = |o: &&Arc<Origin>| avoid != Some(o.id.as_str());
        let classes: [&dyn Fn(&Origin) -> bool; 3] = [
            &|o| self.usable(o, now),
            &|o| o.is_alive(now, self.ttl),
            &|_| self.redis.is_none(),
        ];
        for class in classes {
            let list: Vec<&Arc<Origin>> = origins
                .values()
                .filter(eligible)
                .filter(|o| class(o))
                .collect();
            if !list.is_empty() {
                let i = rand::thread_rng().gen_range(0..list.len());
                return Some(list[i].clone());
            }
        }
        None
    }

    /// Handles a message from another core.
    pub fn handle(self: &Rc<Self>, from: usize, msg: LbMsg) {
        let now = Instant::now();
        match msg {
            LbMsg::Upsert(origin) => self.upsert(origin),
            LbMsg::PinRequest { req, key, avoid } => {
                if let Some(id) = &avoid {
                    self.mark_refused(id.clone(), now);
                }
                if self.redis.is_some() {
                    // The decision waits on Redis: answer from a task, never block the mesh.
                    let lb = self.clone();
                    glommio::spawn_local(async move {
                        let result = lb.decide_shared(key, avoid).await;
                        lb.outbox.send(from, LbMsg::PinReply { req, result });
                    })
                    .detach();
                    return;
                }
                let result = self.decide(&key, avoid.as_deref(), now);
                self.outbox.send(from, LbMsg::PinReply { req, result });
            }
            LbMsg::PinReply { req, result } => {
                if let Some(tx) = self.pending.borrow_mut().remove(&req) {
                    tx.send(result);
                }
            }
            LbMsg::PinSet { key, origin } => {
                // Make sure the replica knows the origin even if its Upsert is still in flight.
                self.origins
                    .borrow_mut()
                    .entry(origin.id.as_str().into())
                    .or_insert_with(|| origin.clone());
                self.cache_pin(key, origin, now);
            }
            LbMsg::PinDrop { key } => {
                let mut pins = self.pins.borrow_mut();
                if pins.get(&key).is_some_and(|p| p.active == 0) {
                    pins.remove(&key);
                }
            }
            LbMsg::Refused { origin } => self.mark_refused(origin, now),
            LbMsg::Touch { keys } => {
                let mut pins = self.pins.borrow_mut();
                for k in keys {
                    if let Some(p) = pins.get_mut(&k) {
                        p.last_used = now;
                    }
                }
            }
            LbMsg::HlsIdRequest { req, key } => {
                let entry = self.mint_hls(&key, now).map(|id| (key, id));
                self.outbox.send(from, LbMsg::HlsReply { req, entry });
            }
            LbMsg::HlsKeyRequest { req, spbhid } => {
                let key = self.hls.borrow_mut().key_for(&spbhid, now);
                let entry = key.map(|k| (k, spbhid));
                self.outbox.send(from, LbMsg::HlsReply { req, entry });
            }
            LbMsg::HlsReply { req, entry } => {
                if let Some(tx) = self.hls_pending.borrow_mut().remove(&req) {
                    tx.send(entry);
                }
            }
        }
    }

    /// On the owner of `key`: its HLS id, minted so that `shard_for(id)` is this core.
    fn mint_hls(&self, key: &str, now: Instant) -> Option<Arc<str>> {
        let (core, cores) = (self.core, self.cores);
        self.hls.borrow_mut().get_or_mint(key, now, |id| {
            executors::shard_for(id.as_bytes(), cores) == core
        })
    }

    /// The HLS affinity id of `key` (spec §5.4): the same on every core while the stream is
    /// played. `None` when the owner could not mint one (table full) or did not answer.
    pub async fn hls_id(&self, key: &str) -> Option<Arc<str>> {
        let now = Instant::now();
        if let Some(id) = self.hls.borrow_mut().id_for(key, now) {
            return Some(id);
        }
        if let Some(store) = &self.redis {
            return self.hls_id_shared(store, key).await;
        }
        let owner = self.owner_of(key);
        if owner == self.core {
            return self.mint_hls(key, now);
        }
        let (k, id) = self
            .ask_hls(owner, |req| LbMsg::HlsIdRequest {
                req,
                key: key.into(),
            })
            .await?;
        self.hls.borrow_mut().cache(k, id.clone(), Instant::now());
        Some(id)
    }

    /// The stream key an HLS id was minted for, or `None` if no core knows it (a 400).
    pub async fn hls_key(&self, spbhid: &str) -> Option<Arc<str>> {
        let now = Instant::now();
        if let Some(key) = self.hls.borrow_mut().key_for(spbhid, now) {
            return Some(key);
        }
        if let Some(store) = &self.redis {
            return self.hls_key_shared(store, spbhid).await;
        }
        let owner = executors::shard_for(spbhid.as_bytes(), self.cores);
        if owner == self.core {
            return None;
        }
        let (key, id) = self
            .ask_hls(owner, |req| LbMsg::HlsKeyRequest {
                req,
                spbhid: spbhid.into(),
            })
            .await?;
        self.hls.borrow_mut().cache(key.clone(), id, Instant::now());
        Some(key)
    }

    async fn ask_hls(&self, core: usize, msg: impl FnOnce(u64) -> LbMsg) -> HlsEntry {
        let req = self.next_req.get();
        self.next_req.set(req + 1);
        let (tx, rx) = oneshot::channel();
        self.hls_pending.borrow_mut().insert(req, tx);
        self.outbox.send(core, msg(req));
        let answer = executors::with_timeout(OWNER_TIMEOUT, rx).await;
        self.hls_pending.borrow_mut().remove(&req);
        answer.ok().flatten().flatten()
    }

    /// HLS ids known on this core (owned and cached), for listings and tests.
    pub fn hls_count(&self) -> usize {
        self.hls.borrow().len()
    }

    /// Periodic upkeep (every ~30 s): touch the owners of pins in use here, forget idle pins
    /// and old refusals. Returns how many pins were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut touches: AHashMap<usize, Vec<Arc<str>>> = AHashMap::new();
        let mut dropped = Vec::new();
        {
            let mut pins = self.pins.borrow_mut();
            for (key, pin) in pins.iter_mut() {
                if pin.active > 0 {
                    pin.last_used = now;
                    let owner = self.owner_of(key);
                    if owner != self.core {
                        touches.entry(owner).or_default().push(key.clone());
                    }
                } else if now.saturating_duration_since(pin.last_used) >= PIN_IDLE {
                    dropped.push(key.clone());
                }
            }
            for key in &dropped {
                pins.remove(key);
            }
        }
        for key in &dropped {
            if self.owner_of(key) == self.core {
                self.outbox.broadcast(LbMsg::PinDrop { key: key.clone() });
            }
        }
        for (owner, keys) in touches {
            self.outbox.send(owner, LbMsg::Touch { keys });
        }
        self.refused.borrow_mut().retain(|_, until| *until > now);
        self.hls.borrow_mut().sweep(now);
        dropped.len()
    }
}

#[cfg(test)]
mod tests;
