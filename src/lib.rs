//! srs-proxy: a thread-per-core proxy for SRS origin clusters, drop-in for SRS's Go `srs-proxy`.
//!
//! The binary is thin (`main.rs`); this library holds the glue between the sans-IO `protocols`
//! crate and the `executors` runtime:
//! - [`config`]: `PROXY_*` environment and `.env`, validated once;
//! - [`lb`]: the origin table replica per core and stream pins decided by their owner core;
//! - [`api`]: system API (registration, versions, metrics, listings);
//! - [`http`]: the HTTP stream server (HTTP-FLV/TS, HLS, static files);
//! - [`session`]: protocol sessions over sockets (RTMP);
//! - [`webrtc`]: WHIP/WHEP signalling and the WebRTC UDP media relay;
//! - [`runtime`]: per-core startup, listeners, shutdown;
//! - [`metrics`], [`error`], [`cid`], [`version`].

pub mod api;
pub mod cid;
pub mod config;
pub mod error;
pub mod http;
pub mod lb;
pub mod metrics;
pub mod runtime;
pub mod session;
pub mod version;
pub mod webrtc;
