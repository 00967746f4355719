//! HLS affinity ids (`spbhid`, spec §5.4 with the §10 #6 fix): one id per stream key, the same on
//! every core, reused while the stream is played and forgotten [`HLS_IDLE`] after its last use.
//!
//! The key's owner core (`shard_for(key)`) mints the id, and mints it so that `shard_for(spbhid)`
//! is that same core: a segment request whose id is unknown on the core it landed on asks
//! `shard_for(spbhid)`, which is the one core that knows every id it minted. Other cores cache
//! what the owner told them for at most [`HLS_CACHE`]; re-asking the owner after that is what
//! keeps the owner's entry alive while players use another core. This table is the synchronous
//! part; the round trips live in [`super::LbCore::hls_id`] and [`super::LbCore::hls_key`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use rand::Rng;

/// An id unused (no playlist or segment request reached its owner) for this long is forgotten.
pub const HLS_IDLE: Duration = Duration::from_secs(120);
/// How long a non-owner core trusts an id the owner gave it.
pub const HLS_CACHE: Duration = Duration::from_secs(30);
/// Ids per core, owned and cached together; past it new streams get no id (a 503).
pub const MAX_HLS: usize = 100_000;
/// Random tries to find an id that hashes to the owner core (expected: the number of cores).
const MINT_TRIES: usize = 100_000;

struct Entry {
    spbhid: Arc<str>,
    /// Owned: the last use. Cached: when the owner confirmed it.
    stamp: Instant,
    owned: bool,
}

/// One core's ids: the ones it owns and the ones it cached from their owners.
#[derive(Default)]
pub struct HlsTable {
    by_key: AHashMap<Arc<str>, Entry>,
    by_id: AHashMap<Arc<str>, Arc<str>>,
}

impl HlsTable {
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn fresh(e: &Entry, now: Instant) -> bool {
        let age = now.saturating_duration_since(e.stamp);
        if e.owned {
            age < HLS_IDLE
        } else {
            age < HLS_CACHE
        }
    }

    /// The id of `key` if this core knows a fresh one (an owned entry is touched).
    pub fn id_for(&mut self, key: &str, now: Instant) -> Option<Arc<str>> {
        let e = self.by_key.get_mut(key)?;
        if !Self::fresh(e, now) {
            return None;
        }
        if e.owned {
            e.stamp = now;
        }
        Some(e.spbhid.clone())
    }

    /// The key of `spbhid` if this core knows it fresh (an owned entry is touched).
    pub fn key_for(&mut self, spbhid: &str, now: Instant) -> Option<Arc<str>> {
        let key = self.by_id.get(spbhid)?.clone();
        self.id_for(&key, now)
            .filter(|id| &**id == spbhid)
            .map(|_| key)
    }

    /// On the owner: the key's id, minted when it has none. `owns_id(id)` says whether an id
    /// hashes to this core. `None` when the table is full or no id could be found.
    pub fn get_or_mint(
        &mut self,
        key: &str,
        now: Instant,
        owns_id: impl Fn(&str) -> bool,
    ) -> Option<Arc<str>> {
        if let Some(id) = self.id_for(key, now) {
            return Some(id);
        }
        self.remove_key(key);
        if self.by_key.len() >= MAX_HLS {
            return None;
        }
        let mut rng = rand::thread_rng();
        for _ in 0..MINT_TRIES {
            // Seven hex digits, as the Go proxy's ids.
            let id = format!("{:07x}", rng.gen_range(0..0x1000_0000u32));
            if owns_id(&id) && !self.by_id.contains_key(id.as_str()) {
                let id: Arc<str> = id.into();
                self.insert(key.into(), id.clone(), now, true);
                return Some(id);
            }
        }
        None
    }

    /// On a non-owner: remember what the owner said.
    pub fn cache(&mut self, key: Arc<str>, spbhid: Arc<str>, now: Instant) {
        self.remove_key(&key);
        if self.by_key.len() < MAX_HLS {
            self.insert(key, spbhid, now, false);
        }
    }

    fn insert(&mut self, key: Arc<str>, spbhid: Arc<str>, now: Instant, owned: bool) {
        self.by_id.insert(spbhid.clone(), key.clone());
        self.by_key.insert(
            key,
            Entry {
                spbhid,
                stamp: now,
                owned,
            },
        );
    }

    fn remove_key(&mut self, key: &str) {
        if let Some(e) = self.by_key.remove(key) {
            self.by_id.remove(&e.spbhid);
        }
    }

    /// Forgets idle owned ids and stale cached ones. Returns how many were dropped.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let before = self.by_key.len();
        let by_id = &mut self.by_id;
        self.by_key.retain(|_, e| {
            let keep = Self::fresh(e, now);
            if !keep {
                by_id.remove(&e.spbhid);
            }
            keep
        });
        before - self.by_key.len()
    }
}
