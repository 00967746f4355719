//! Redis load-balancer backing store (issue 6, spec §4.3): the Go proxy's exact key schema over
//! one pipelined connection per core, so Rust and Go proxies can share one Redis.
//!
//! Layers, bottom up:
//! * [`resp`]: RESP2 commands and an incremental, bounded reply parser (no runtime, no sockets).
//! * [`schema`]: key names, JSON shapes and TTLs of spec §4.3, byte-compatible with Go.
//! * [`client`]: one connection per core on glommio, shared by every task of that core.
//! * [`ops`]: the load balancer's operations, each with its documented round-trip count.
//! * [`balancer`]: [`crate::lb::LbCore`] in Redis mode, behind the same `pick`/`repick`/
//!   `hls_id`/`hls_key` the protocols call in memory mode.
//!
//! Contract of Redis mode (`PROXY_LOAD_BALANCER_TYPE=redis`):
//!
//! * **Startup**: [`check_blocking`] (connect, `AUTH`, `SELECT`, `PING`) before any executor
//!   runs; a failure is one fatal line naming `PROXY_REDIS_*` (never the password), as Go's
//!   `unable to connect to redis`. Each core then opens its own pipelined connection
//!   ([`RedisStore::for_core`]).
//! * **Origins**: a heartbeat writes the server key (`EX PROXY_ORIGIN_SERVER_TTL`) and the server
//!   list before it is applied locally; a Redis error answers 500, as Go. Core 0 reads the list
//!   every [`sync_interval`] (≤ 1 s) and installs every origin whose key exists on every core,
//!   so origins registered on other proxies (Go or Rust) are picked; an origin whose key is gone
//!   is silent from then on, unless it heartbeats to this proxy (a Redis restarted without its
//!   data lists it again after its next heartbeat). The default backend's key is re-stored
//!   every 30 s.
//! * **Pins**: one decision per key per proxy at a time, on the key's owner core: the stored pin
//!   while its server key lives; otherwise a live origin claimed with `SET NX` (new stream),
//!   moved with a compare-and-set off an expired key, or re-pinned off an origin that refused
//!   us; a stream Redis has no pin for but this proxy has (Redis lost its data) is claimed again
//!   for the origin that holds it. Cores cache decided pins and trust them for
//!   [`crate::lb::REVALIDATE`] (5 s); after that the next setup re-reads the pin, so another
//!   proxy's move is seen. Round trips per setup: 0 on a freshly confirmed pin, 1 on a known
//!   stream, 2 on a new or moved one.
//! * **HLS** (§10 #6 with G1 semantics): one spbhid per stream for every proxy
//!   ([`RedisStore::load_or_store_hls`], TTLs refreshed at most every 30 s per core); a segment's
//!   spbhid resolves on any proxy ([`RedisStore::load_hls_by_spbhid`]).
//! * **WebRTC**: [`crate::lb::LbCore::rtc_store`] / [`crate::lb::LbCore::rtc_lookup`] (G1
//!   `StoreWebRTC` / `LoadWebRTCByUfrag`).
//! * **Redis down**: sessions already set up never touch Redis and keep flowing; setups on a
//!   cached pin whose origin is alive still work (past [`crate::lb::REVALIDATE`] too, and on a
//!   core without the pin when its owner core has it); every other setup fails within
//!   [`REDIS_WAIT`] (at once while the client backs off) with an error naming what to check;
//!   the connection comes back with backoff (100 ms doubling to 5 s).
//! * **Metrics**: `srs_proxy_redis_round_trips_total` and `srs_proxy_redis_errors_total` per core.

pub mod balancer;
pub mod client;
pub mod ops;
/// The RESP2 codec lives in the sans-IO `protocols` crate (fuzzed there).
pub use protocols::resp;
pub mod schema;

pub use balancer::{heartbeat_record, spawn_upkeep, sync_interval, REDIS_WAIT};
pub use client::{check_blocking, ClientConfig, RedisClient, RedisError, RedisErrorKind};
pub use ops::{Claim, Pinned, RedisStore};
pub use schema::{GoTime, HlsRecord, Keys, RtcRecord, ServerRecord, SESSION_TTL};
