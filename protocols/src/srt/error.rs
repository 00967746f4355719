//! Classified SRT errors.
//!
//! SRT runs over UDP, so an error here almost never ends a session: it says why **one datagram**
//! was dropped (too short, not a handshake, for another socket, a stale cookie). The relay state
//! machine stays where it was; only its events (`Rejected`, `Expired`) end a handshake.

use thiserror::Error;

use crate::stream_key::StreamKeyError;

/// Why a datagram was not accepted, or why a stream id yields no route.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SrtError {
    /// Shorter than the fixed part it claims to be (16-byte header, 64-byte handshake).
    #[error("SRT datagram too short: {len} bytes, need {need}")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes the fixed part needs.
        need: usize,
    },
    /// Longer than any handshake a peer may send ([`super::handshake::MAX_HANDSHAKE_LEN`]).
    #[error("SRT handshake too long: {len} bytes > {limit}")]
    TooLong {
        /// Bytes received.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// A data packet or another control type where a handshake was expected.
    #[error("not an SRT handshake")]
    NotHandshake,
    /// An extension block whose header or declared length runs past the datagram (the Go
    /// proxy panics on the 2–3 trailing bytes case, spec §5.7 / §10 #20).
    #[error("truncated SRT handshake extension at byte {offset}")]
    TruncatedExtension {
        /// Offset of the block header inside the datagram.
        offset: usize,
    },
    /// The conclusion carries no stream id (SID extension, type 5).
    #[error("SRT conclusion without a stream id")]
    MissingStreamId,
    /// The stream id names no resource (`#!::m=publish`, an empty string).
    #[error("no resource in SRT stream id {0:?}")]
    NoResource(String),
    /// The stream id is longer than SRT allows (512 bytes, draft-sharabayko-srt §3.2.1.3).
    #[error("SRT stream id too long: {0} bytes")]
    StreamIdTooLong(usize),
    /// The resource does not make a stream key (spec §4.1).
    #[error("SRT stream key: {0}")]
    StreamKey(#[from] StreamKeyError),
    /// A handshake of a type this phase does not expect (a stray origin induction, a caller
    /// conclusion before the origin answered …). Harmless: dropped.
    #[error("unexpected SRT handshake: {0}")]
    Unexpected(&'static str),
    /// Rendezvous or HSv4-only peers (spec §5.7: only caller-mode HSv5 works).
    #[error("unsupported SRT handshake: {0}")]
    Unsupported(&'static str),
    /// A handshake that names another socket than this connection's.
    #[error("SRT handshake for another socket")]
    WrongSocket,
    /// A conclusion whose SYN cookie is not the one this proxy handed out.
    #[error("SRT SYN cookie mismatch")]
    BadCookie,
}
