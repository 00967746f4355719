//! Redis load-balancer backing store (issue 6, spec §4.3): the Go proxy's exact key schema over
//! one pipelined connection per core, so Rust and Go proxies can share one Redis.
//!
//! Layers, bottom up:
//! * [`resp`]: RESP2 commands and an incremental, bounded reply parser (no runtime, no sockets).
//! * [`schema`]: key names, JSON shapes and TTLs of spec §4.3, byte-compatible with Go.
//! * [`client`]: one connection per core on glommio, shared by every task of that core.
//! * [`ops`]: the load balancer's operations, each with its documented round-trip count.
//!
//! Not yet wired into picks. What the wiring must do (next session):
//!
//! * **Per core**, inside its executor: `RedisStore::new(RedisClient::new(ClientConfig::
//!   from_config(&cfg.redis)), Keys::new(&cfg.redis.key_prefix))`, shared as `Rc`. At startup
//!   one core runs [`RedisClient::connect`] (a `PING`) and a failure is fatal, as in Go
//!   (`unable to connect to redis`, spec §2.1).
//! * **Registration** (§3.1): after `LbCore::register`, the core the heartbeat landed on calls
//!   [`RedisStore::update_server`] with `PROXY_ORIGIN_SERVER_TTL`; an error answers 500 like Go.
//!   The default backend is re-stored every 30 s (§3.4).
//! * **Origins from other proxies**: a periodic [`RedisStore::load_servers`] (one core, every few
//!   seconds) turns records into `Origin`s (`Origin::from_registration(&rec.to_registration(),
//!   rec.update_at.to_system_time(), now)`) and broadcasts `LbMsg::Upsert`; in Redis mode an
//!   origin is alive while its server key exists.
//! * **Pick** on the key's owner core (one Redis decision per proxy per key, then the pin is
//!   cached and broadcast as today): [`RedisStore::pinned`]. Pinned with a live record → use
//!   it. Pinned but the record is gone → choose among `load_servers()` and
//!   [`RedisStore::move_stream`]`(key, old, new)`. Not pinned → choose and
//!   [`RedisStore::claim_stream`]; on `Claim::Existing(k)` use `k`'s record
//!   ([`RedisStore::load_server`]). The cached pin must be re-validated against Redis (e.g. every
//!   few seconds or on a connect failure) so a move by another proxy is seen. `move_stream`
//!   only moves off an *expired* origin; the memory LB's "refused connection" repick (§10 #3)
//!   uses [`RedisStore::repin_stream`].
//! * **HLS** (§5.4, §10 #6): `hls_id(key)` → [`RedisStore::load_or_store_hls`] with a freshly
//!   minted candidate; `hls_key(spbhid)` → [`RedisStore::load_hls_by_spbhid`] → `stream_url`.
//! * **WebRTC** (§5.5/§5.6): at signalling [`RedisStore::store_rtc`] with the ICE username
//!   `<answer>:<offer>`; a STUN whose ufrag no core knows → [`RedisStore::load_rtc_by_ufrag`].
//! * **Errors**: [`RedisError::kind`] says unavailable / timeout / protocol / server; picks
//!   that fail on Redis should report the error text (it names the variable to check).
//!   [`RedisClient::round_trips`] feeds the bench and a metric.

pub mod client;
pub mod ops;
/// The RESP2 codec lives in the sans-IO `protocols` crate (fuzzed there).
pub use protocols::resp;
pub mod schema;

pub use client::{ClientConfig, RedisClient, RedisError, RedisErrorKind};
pub use ops::{Claim, Pinned, RedisStore};
pub use schema::{GoTime, HlsRecord, Keys, RtcRecord, ServerRecord, SESSION_TTL};
