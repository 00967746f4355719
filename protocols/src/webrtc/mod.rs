//! Sans-IO WebRTC for the proxy (spec §5.5, §5.6, issue 4): signalling routes, the SDP answer
//! rewrite, the legacy JSON envelope, datagram classification and STUN `USERNAME` routing.
//!
//! The proxy does not terminate WebRTC. It forwards the client's offer to the origin that owns
//! the stream key, rewrites the origin's host candidates to its own WebRTC port, and then
//! relays UDP between client and origin. ICE checks carry `USERNAME =
//! <answer-ufrag>:<offer-ufrag>` (RFC 8445 §7.2.2); that string is the session key that joins
//! a datagram to its signalling exchange. DTLS and SRTP are end to end: the proxy never sees a
//! key, and it does not check STUN integrity (the origin does, [`stun`]).
//!
//! Everything here is a pure function of its input: no state, no clock, no socket. Session
//! tables, expiry and the origin pick live in the glue.
//!
//! # Contract (for the glue)
//!
//! * **Bytes in, borrowed views out.** Parsers borrow from the caller's buffer
//!   ([`StunMessage`], [`IceCredentials`], [`JsonStringField`]); nothing on the media path
//!   allocates. Only the answer rewrite and the envelope splice return owned bodies (once per
//!   session).
//! * **Errors are per input.** A [`StunError`] drops or address-routes *that datagram*; an
//!   [`SdpError`] / [`SignalError`] answers *that request*. No function keeps state.
//! * **Bounds.** SDP ≤ [`MAX_SDP_LEN`], envelopes ≤ [`MAX_ENVELOPE_LEN`] with nesting ≤
//!   [`signal::MAX_JSON_DEPTH`], `USERNAME` < 509 bytes. Nothing panics on any input (see
//!   [`fuzzing`] and `tests/webrtc_hostile.rs`).
//!
//! # What the glue does: signalling (HTTP API port)
//!
//! 1. [`route`] the request target (`/rtc/v1/whip`, `/whep`, `/publish`, `/play`, with or
//!    without `/`, spec §10 #28: no 301). Put [`CORS_HEADERS`] on every response; `OPTIONS`
//!    → 200, empty body.
//! 2. Read the body (bounded by [`MAX_ENVELOPE_LEN`]). WHIP/WHEP: [`sdp_text`] is the offer.
//!    Legacy: [`sdp_field`] of the envelope; its `value` is the offer. An empty body is fine
//!    for `DELETE` (step 6). A broken offer or envelope → 400 (Go forwards it; the origin
//!    would refuse it anyway, and refusing here costs no origin pick).
//! 3. Stream key from `?app=&stream=` or the path (spec §4.1, `crate::stream_key`), pick the
//!    origin, forward with the **same method, path and raw query**, body verbatim.
//! 4. Origin status not 200/201 → pass it (and its body) through (spec §10 #12). On 200/201:
//!    * WHIP/WHEP: `sdp_text(body)`, else legacy: `sdp_field(body)`;
//!    * [`rewrite_answer`]`(answer, <every registered rtc port of that origin, udp and tcp,
//!      as numbers>, <the proxy's WebRTC listen port number>, <optional public IP>)`;
//!    * [`validate_answer`] on the result, and [`exchange_session_key`]`(offer, rewritten)`.
//!
//!    Any failure here is the origin's → **502, before any status is written** (spec §10 #14).
//! 5. Store `session key → (stream key, origin)` (memory LB and, with Redis, the `ufrag` object
//!    of spec §4.3), then answer with the origin's status, its `Location` and other end-to-end
//!    headers (spec §10 #10), `Content-Type` from [`SignalKind::answer_content_type`], and the
//!    rewritten SDP as the body (legacy: [`replace_string_field`] of the origin's envelope).
//! 6. `DELETE` of a WHIP/WHEP resource (its `Location`, e.g. `/rtc/v1/whip/?action=delete&
//!    token=…&app=…&stream=…&session=<key>`): route it like step 3 (the `app`/`stream` query
//!    gives the same stream key, hence the same origin), forward, and pass the origin's status
//!    through with no answer processing (spec §10 #14). The `session` parameter is the session
//!    key, so the glue may drop its session entry when the origin says 200.
//!
//! # What the glue does: media (one UDP socket per core on the WebRTC port, SO_REUSEPORT)
//!
//! 1. [`classify()`] the datagram. Datagrams over the glue's receive buffer (Go: 4096 bytes)
//!    are truncated by the kernel; size the buffer for the path MTU (≥ 1500).
//! 2. [`DatagramKind::Stun`]: [`StunMessage::parse`], [`StunMessage::username`], and look the
//!    whole `USERNAME` up as a session key (the stored string; [`session_key`] splits it when
//!    the glue wants the halves, e.g. to log or to reject a name without `:` early). A hit
//!    (re)binds the client address to that session and forwards. This is address migration
//!    (RFC 8445 §7.3.1.4, an ICE restart, a NAT rebinding); spec §11: the lookup must be
//!    global across cores. Go lets a stale address entry win over the `USERNAME` (spec §5.6
//!    step 3); binding by name is safe because a datagram can only bind its own source
//!    address, and the origin verifies the check's integrity.
//! 3. Everything else (STUN with no or an unknown `USERNAME`, a STUN parse error, DTLS,
//!    RTP/RTCP, other): look up the client address; no session → drop, never create state.
//! 4. Forward the datagram untouched on the session's connected socket to the origin's `rtc`
//!    port; origin → client datagrams go out through the listening socket to the latest
//!    client address.
//! 5. Expire sessions with no datagram either way for ~30 s (spec §10 #19/#20: ICE consent
//!    freshness, RFC 7675, fails after 30 s anyway) and bound the tables per core.
//!
//! # Deviations from Go (spec §10)
//!
//! * Classification follows RFC 7983 ([`classify()`]).
//! * TCP host candidates on origin ports are dropped, not rewritten ([`rewrite_answer`]).
//! * The candidate port is the number, never the raw env string (§10 #15).
//! * A ufrag containing `:` is not an ICE ufrag and yields no session ([`ice_credentials`]).

pub mod classify;
pub mod error;
pub mod fuzzing;
pub mod sdp;
pub mod signal;
pub mod stun;

pub use classify::{classify, DatagramKind};
pub use error::{SdpError, SignalError, StunError};
pub use sdp::{
    ice_credentials, rewrite_answer, sdp_text, validate_answer, IceCredentials,
    MAX_ICE_CREDENTIAL_LEN, MAX_SDP_LEN,
};
pub use signal::{
    escape_into, exchange_session_key, replace_string_field, route, sdp_field, string_field,
    JsonStringField, SignalKind, CORS_HEADERS, MAX_ENVELOPE_LEN, MAX_JSON_DEPTH,
};
pub use stun::{
    format_session_key, session_key, StunAttribute, StunAttributes, StunClass, StunMessage,
    ATTR_USERNAME, HEADER_LEN, MAGIC_COOKIE,
};
