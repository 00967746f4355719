//! The binary's classified error: what failed, on which side, and whether a retry can help.
//! Protocol crates have their own error types; sessions map them here for logs and metrics.

use std::fmt;

use crate::metrics::ErrorKind;

/// Which peer a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Origin,
    Internal,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Origin => "origin",
            Side::Internal => "internal",
        })
    }
}

/// A session failure.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub side: Side,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, side: Side, message: impl Into<String>) -> Error {
        Error {
            kind,
            side,
            message: message.into(),
        }
    }
    pub fn client(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, Side::Client, message)
    }
    pub fn origin(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, Side::Origin, message)
    }
    /// Whether the peer simply went away (EOF, reset, broken pipe): logged at debug, not warn.
    pub fn is_peer_closed(&self) -> bool {
        self.kind == ErrorKind::Io
    }
    /// Whether trying another origin may help.
    pub fn retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::OriginUnreachable)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.side, self.kind.label(), self.message)
    }
}

impl std::error::Error for Error {}

/// Classifies an I/O error on an established connection.
pub fn io(side: Side, what: &str, e: std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionReset | K::BrokenPipe | K::UnexpectedEof | K::ConnectionAborted => {
            ErrorKind::Io
        }
        K::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Io,
    };
    Error::new(kind, side, format!("{what}: {e}"))
}
