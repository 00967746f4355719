//! Minimal HTTP/1.1 for the proxy's own servers (sans-IO, RFC 9112).
//!
//! Today this serves the System API (origin registration, spec §3.1); the HTTP stream server
//! (FLV/TS/HLS, §5.2–5.4) and the WHIP/WHEP API (§5.5) build on it later. The parser never
//! allocates per byte, never panics on network input, and every buffer it keeps is bounded by
//! [`Limits`] or [`ChunkedLimits`].

mod chunked;
pub mod fuzzing;
pub mod request;
pub mod response;

pub use chunked::{ChunkedDecoder, ChunkedLimits, ChunkedStatus};
pub use request::{
    parse_request_head, percent_decode, query_param, BodyKind, HttpError, Limits, RequestHead,
};
pub use response::write_response_head;
