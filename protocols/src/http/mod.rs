//! Minimal HTTP/1.1 for the proxy's servers and its origin requests (sans-IO, RFC 9112).
//!
//! Request heads for the System API and the HTTP stream server, response heads from origins
//! (§5.3), the stream port's routing (§5.2), the HLS playlist rewriter (§5.4) and its DASH manifest
//! twin. The parsers never allocate per byte, never panic on network input, and every buffer they keep is bounded by
//! [`Limits`] or [`ChunkedLimits`].

mod chunked;
pub mod fuzzing;
pub mod mpd;
pub mod origin;
pub mod playlist;
pub mod request;
pub mod response;
pub mod route;

pub use chunked::{ChunkedDecoder, ChunkedLimits, ChunkedStatus};
pub use mpd::rewrite_mpd;
pub use origin::{is_hop_by_hop, parse_response_head, ResponseBody, ResponseHead};
pub use playlist::rewrite_playlist;
pub use request::{
    parse_request_head, percent_decode, query_param, BodyKind, Headers, HttpError, Limits,
    RequestHead,
};
pub use response::{write_response_head, HeaderPair};
pub use route::{classify, StreamRoute};
