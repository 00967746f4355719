//! Classified RTMP errors.
//!
//! "Need more bytes" is never an error: every parser reports how much it consumed and waits. An
//! error always means the connection must be closed; the variant says whose fault it was so the
//! glue can pick a log level (spec §6.5) without string matching.

use thiserror::Error;

/// Everything that can end an RTMP connection from inside the protocol layer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtmpError {
    /// Bytes that do not parse (bad AMF0 marker, truncated field inside a complete message, …).
    #[error("malformed RTMP input: {0}")]
    Malformed(&'static str),
    /// Well-formed bytes that break the protocol rules (fmt 3 on a fresh chunk stream, audio
    /// before `publish`, chunk size 0, …).
    #[error("RTMP protocol violation: {0}")]
    Protocol(&'static str),
    /// A peer-controlled size above one of our bounds (message length, nesting depth, number
    /// of chunk streams, buffered bytes). Kept apart from `Malformed` because it may be a
    /// legitimate but unsupported peer.
    #[error("RTMP limit exceeded: {what} ({value} > {limit})")]
    LimitExceeded {
        /// Which bound.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The bound.
        limit: u64,
    },
    /// The handshake + command phase did not finish before its deadline (spec §10 #19).
    #[error("RTMP {0} phase timed out")]
    Timeout(&'static str),
    /// The session was used after it had already failed or finished.
    #[error("RTMP session is closed")]
    Closed,
}

impl RtmpError {
    /// True when the peer sent something wrong (as opposed to a local deadline): useful to log
    /// at debug rather than warn.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            RtmpError::Malformed(_) | RtmpError::Protocol(_) | RtmpError::LimitExceeded { .. }
        )
    }
}
