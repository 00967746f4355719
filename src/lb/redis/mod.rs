//! Redis load-balancer backing store (issue 6, spec §4.3): the Go proxy's exact key schema over
//! one pipelined connection per core, so Rust and Go proxies can share one Redis.
//!
//! Layers, bottom up:
//! * [`resp`]: RESP2 commands and an incremental, bounded reply parser (no runtime, no sockets).
//! * [`schema`]: key names, JSON shapes and TTLs of spec §4.3, byte-compatible with Go.
//! * [`client`]: one connection per core on glommio, shared by every task of that core.
//! * [`ops`]: the load balancer's operations, each with its documented round-trip count.

pub mod resp;
pub mod schema;
