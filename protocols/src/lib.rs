//! Sans-IO protocol state machines for srs-proxy.
//!
//! Contract: nothing in this crate touches a socket, a clock or a runtime. Callers feed bytes in
//! (`handle_*`), pass time in where a protocol has deadlines, and drain outputs (`poll_*`).
//! "Need more bytes" is never an error; unconsumed bytes are reported back to the caller. Every
//! buffer is bounded. Bytes from the network never panic.
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod http;
pub mod resp;
pub mod rtmp;
pub mod srt;
pub mod stream_key;
pub mod webrtc;
