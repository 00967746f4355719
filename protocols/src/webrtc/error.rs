//! Classified WebRTC errors.
//!
//! Media runs over UDP, so a [`StunError`] never ends a session: it says why **one datagram**
//! could not be routed by its `USERNAME` (the glue then falls back to the client address, spec
//! §5.6 step 3, or drops it). [`SdpError`] and [`SignalError`] are about one HTTP exchange: an
//! error from the origin's answer is the origin's fault (the glue answers 502, spec §10 #14), an
//! error from the client's offer or envelope is the client's (400).

use thiserror::Error;

/// Why a datagram is not a STUN message the proxy can read (RFC 8489 §5, §14).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("STUN message too short: {len} bytes, need 20")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The two most significant bits of the type are not zero (RFC 8489 §5): not STUN.
    #[error("not a STUN message (first two bits set)")]
    NotStun,
    /// No magic cookie `0x2112A442` (RFC 8489 §5). ICE needs RFC 5389+ STUN (RFC 8445 §7), so
    /// RFC 3489 messages are not routed.
    #[error("STUN magic cookie missing")]
    BadMagicCookie,
    /// The header length is not a multiple of 4 or does not equal the bytes after the header
    /// (RFC 8489 §5: one UDP datagram carries exactly one message).
    #[error("STUN length {declared} does not match the {actual} bytes after the header")]
    LengthMismatch {
        /// Length field of the header.
        declared: usize,
        /// Bytes after the header.
        actual: usize,
    },
    /// An attribute header or its padded value runs past the message (RFC 8489 §14). The Go
    /// proxy panics here (spec §5.6 step 2, §10 #20).
    #[error("truncated STUN attribute at byte {offset}")]
    TruncatedAttribute {
        /// Offset of the attribute header inside the datagram.
        offset: usize,
    },
    /// `USERNAME` is not UTF-8 or is 509 bytes or longer (RFC 8489 §14.3).
    #[error("invalid STUN USERNAME")]
    BadUsername,
}

/// Why an SDP offer or answer was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    /// Larger than [`super::sdp::MAX_SDP_LEN`].
    #[error("SDP too large: {len} bytes > {limit}")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// Not UTF-8 (RFC 8866 §5 allows other charsets only for free text; WebRTC uses UTF-8).
    #[error("SDP is not UTF-8")]
    NotUtf8,
    /// Does not start with `v=0` (RFC 8866 §5).
    #[error("not SDP: no v=0 first line")]
    NotSdp,
    /// A line that is not `<type>=<value>` with a lowercase letter type (RFC 8866 §5).
    #[error("malformed SDP line {line}")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// The last line has no line ending: the body was cut short (RFC 8866 §5: every line
    /// ends with CRLF).
    #[error("SDP truncated: last line has no line ending")]
    Truncated,
    /// No `a=ice-ufrag:` / `a=ice-pwd:` pair (RFC 8839 §5.4).
    #[error("SDP has no ICE credentials")]
    MissingIceCredentials,
    /// No `m=` line.
    #[error("SDP has no media section")]
    NoMedia,
    /// A mid named by `a=group:BUNDLE` has no m-section (RFC 8843 §7): the answer lost a
    /// section, typically cut short.
    #[error("SDP BUNDLE group names a missing media section")]
    MissingMedia,
    /// No `a=candidate:` line left (after the rewrite, the client could not reach anyone).
    #[error("SDP has no candidate")]
    NoCandidate,
    /// An `a=candidate:` line that does not follow RFC 8839 §5.1.
    #[error("malformed candidate on SDP line {line}")]
    MalformedCandidate {
        /// 1-based line number.
        line: usize,
    },
}

/// Why a legacy JSON envelope (`{"sdp": …}`) was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SignalError {
    /// Larger than [`super::signal::MAX_ENVELOPE_LEN`].
    #[error("JSON envelope too large: {len} bytes > {limit}")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// Not UTF-8 (RFC 8259 §8.1).
    #[error("JSON envelope is not UTF-8")]
    NotUtf8,
    /// Not a JSON object, or broken JSON at this byte (RFC 8259 §4, §7).
    #[error("malformed JSON envelope at byte {offset}")]
    Malformed {
        /// Byte offset of the problem.
        offset: usize,
    },
    /// The key appears twice at the top level: the origin and the proxy might read different
    /// values (RFC 8259 §4 leaves duplicates undefined), so the envelope is refused.
    #[error("duplicate JSON key")]
    DuplicateKey,
    /// The key is missing or its value is not a string.
    #[error("JSON envelope has no string field")]
    MissingField,
}
