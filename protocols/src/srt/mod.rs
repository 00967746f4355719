//! Sans-IO SRT for the proxy (spec §5.7, issue 5): datagram classification, the HSv5 handshake
//! and its extensions, stream ids, and the per-connection handshake relay.
//!
//! The proxy does not terminate SRT. It answers the caller's induction itself, reads the stream
//! id from the conclusion, replays both to the origin that owns the stream key with the cookies
//! swapped, passes the origin's answer back, and from then on forwards every datagram
//! untouched, routed by destination socket id. Encryption (KMREQ/KMRSP, `passphrase`) is between
//! caller and origin: the proxy never sees a key.
//!
//! # Contract (for the glue)
//!
//! * **Datagrams in.** `handle_caller(now, &[u8])` / `handle_origin(now, &[u8])` take one whole
//!   UDP payload. `Err` means *that datagram* was dropped and the relay did not change (UDP:
//!   garbage must not end a session). Handshakes over [`MAX_HANDSHAKE_LEN`] are refused.
//! * **Datagrams out.** `poll_transmit() -> Option<Transmit { dest: Dest::Caller | Dest::Origin,
//!   payload }>` after every call. Handshakes are a few per connection, so they are owned
//!   `Vec`s; the steady-state relay copies nothing (the glue forwards its receive buffer).
//! * **Events polled.** `poll_event()` until `None`: [`RelayEvent::Route`] (pick an origin),
//!   then one of `Established`, `Rejected`, `Expired`.
//! * **Time passed in.** `poll_timeout()` / `handle_timeout(now)`; timestamps the proxy writes
//!   are µs since [`RelayConfig::epoch`].
//! * **Bounds.** Every field read is bounds-checked; a relay holds at most five handshakes
//!   (≤ 1500 B each) and [`MAX_QUEUED_TRANSMITS`] queued datagrams. Nothing panics on any input
//!   (see [`fuzzing`] and `tests/srt_hostile.rs`).
//!
//! # What the glue does (one listening UDP socket per core, SO_REUSEPORT)
//!
//! 1. Receive a datagram; [`Packet::parse`] it (shorter than 16 bytes: drop).
//! 2. **Dest socket id 0 and a handshake** ([`Packet::is_handshake`]): a caller handshake.
//!    Look up the relay by **(caller address, caller socket id)** (the SRT socket id at bytes
//!    40..44, [`Handshake::socket_id`]).
//!    * Induction, no relay yet: either create one (`SrtHandshakeRelay::new`) or answer
//!      statelessly with [`answer_induction`] and a cookie derived from the address (then create
//!      the relay on a conclusion whose cookie verifies; a conclusion with an unknown cookie
//!      creates nothing). Creating relays on inductions must be capped (count per core, each
//!      expires after [`RelayConfig::caller_timeout`]).
//!    * Feed the datagram, drain transmits to the caller's address.
//! 3. On [`RelayEvent::Route`]: run the handshake as its own task (spec §10 #21): pick the
//!    origin for `stream_key`, open a connected UDP socket to its SRT port, call
//!    `accept_origin(now)` (or `reject(now, RejectCode::BAD_GATEWAY)` when there is none), send
//!    `Dest::Origin` transmits on that socket, feed what it receives to `handle_origin`, and
//!    call `handle_timeout` at `poll_timeout()`. A silent origin then costs this task only.
//! 4. On `Established { caller_socket_id, origin_socket_id }`: install the session:
//!    caller → origin datagrams are those with dest = `origin_socket_id` from that caller
//!    address (key by (address, dest id): two origins may hand out the same socket id, which Go's
//!    id-only map confuses); origin → caller datagrams arrive on the session's upstream socket
//!    (dest = `caller_socket_id`) and go to the caller address. Forward both ways untouched,
//!    data and control alike (ACK, NAK, KEEPALIVE, in-stream KM refresh). Keep the relay (or
//!    [`SrtHandshakeRelay::caller_answer`]) until the first non-handshake datagram from the
//!    caller, so a retransmitted conclusion gets the same answer.
//! 5. End a session on SHUTDOWN ([`Packet::is_shutdown`], either way, after forwarding it) or
//!    after a quiet period (spec §10 #19: ~30–60 s with no datagram either way); bound the
//!    session map per core and drop (never create) state for datagrams that match nothing.
//! 6. On `Rejected` / `Expired`: drain the transmit (the caller's rejection), drop the relay.
//!
//! # Deviations from the requested API (documented as promised)
//!
//! * `SrtHandshakeRelay::new(RelayConfig, now)` has no caller-address argument: the relay never
//!   needs the address, and the glue keys its relay map by (address, caller socket id). Both
//!   timeouts and the cookie live in [`RelayConfig`].
//! * `accept_origin` and `reject` take `now` (a rejection carries a timestamp).
//! * `Rejected` carries a [`RejectCause`] as well as the wire code.

pub mod error;
pub mod extension;
pub mod fuzzing;
pub mod handshake;
pub mod packet;
pub mod relay;
pub mod streamid;

pub use error::SrtError;
pub use extension::{
    decode_stream_id, encode_stream_id, Extension, ExtensionType, Extensions, HsExtension,
    KeyMaterialHeader,
};
pub use handshake::{
    induction_response, peer_ip_field, rejection, set_syn_cookie, Handshake, HandshakeType,
    RejectCode, GO_PEER_IP, GO_SYN_COOKIE, HANDSHAKE_LEN, MAX_HANDSHAKE_LEN, SRT_MAGIC,
};
pub use packet::{dest_socket_id, set_dest_socket_id, ControlType, Packet, PacketKind, HEADER_LEN};
pub use relay::{
    answer_induction, Dest, RejectCause, RelayConfig, RelayEvent, SrtHandshakeRelay, Transmit,
    DEFAULT_TIMEOUT, MAX_QUEUED_TRANSMITS,
};
pub use streamid::{SrtMode, StreamId, MAX_STREAM_ID_LEN};
