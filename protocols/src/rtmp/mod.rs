//! Sans-IO RTMP for the proxy (spec §5.1): handshake, chunk stream, AMF0 commands, the
//! client-facing [`ServerSession`], the origin-facing [`ClientSession`] and the steady-state
//! [`RelayDirection`].
//!
//! # Contract (for the glue)
//!
//! * **Bytes in → consumed count.** `handle_input(&[u8]) -> Result<usize, RtmpError>`.
//!   Partial input is never an error. The sessions buffer partial handshake packets, partial
//!   chunk headers and partial messages internally, so they consume everything **except** the
//!   bytes after the message that ends their phase (`publish`/`play` for [`ServerSession`],
//!   `Publish.Start`/`Play.Start` for [`ClientSession`]): those bytes belong to the relay and
//!   must be passed to [`RelayDirection::process`] next.
//! * **Bytes out → appended.** `poll_transmit(&mut Vec<u8>)` appends; drain it after every
//!   `handle_*`/`accept`/`reject` call. **Before** relaying in a direction, flush the session's
//!   pending output to that peer (e.g. the `Publish.Start` status queued by `accept`).
//! * **Events polled.** `poll_event()` until `None`.
//! * **Time passed in.** `poll_timeout()` gives the phase deadline (handshake + commands, and
//!   for the server also the backend connect until `accept`/`reject`); call
//!   `handle_timeout(now)`, which fails with [`RtmpError::Timeout`] once it has passed.
//!   No deadline applies to the relay (spec §10 #19: steady-state streaming is untouched).
//! * **Errors are final.** After an `Err`, the session answers [`RtmpError::Closed`].
//!
//! # Flow
//!
//! 1. Client connects: `ServerSession::new`; feed client bytes until
//!    [`ServerEvent::Identified`] (`kind`, `tc_url`, `stream_name` incl. `?query`).
//! 2. Pick an origin, dial it, `ClientSession::new` with the same `tc_url`/`stream_name`/`kind`;
//!    feed origin bytes until [`ClientEvent::Ready`] or [`ClientEvent::Rejected`] (or EOF).
//! 3. Ready → `server.accept()`; failure → `server.reject(reason)` (spec §10 #24, optional),
//!    flush, close.
//! 4. `RelayDirection::pair(server.into_relay(), client.into_relay())` gives
//!    `(client → origin, origin → client)`. Feed each direction's leftover bytes first.
//!
//! # Deviations from the requested API (documented as promised)
//!
//! * `RelayDirection::new(source: ChunkDecoder, dest_chunk_size: u32)` takes the pieces, and
//!   [`RelayDirection::pair`] builds both directions from two [`RelayEnd`]s (a
//!   `new(RelayEnd, &RelayEnd)` cannot build the second direction after the first moved).
//! * [`RelayDirection::process`] never leaves bytes unconsumed: partial headers and partial
//!   SetChunkSize payloads are kept internally, so the result always equals `input.len()`.
//!   [`Segment::Payload`] ranges index into the `input` of the call that produced them: write
//!   the plan out and `clear()` it before the next call with a different buffer.
//! * `accept`/`reject` are no-ops unless the session is identified and not yet answered.
//!
//! # Bounds and panics
//!
//! Messages ≤ 16 MiB (64 KiB during the command phases), ≤ 64 chunk streams per peer,
//! ≤ 32 MiB of partially assembled messages per decoder, AMF0 nesting ≤ 32. Network bytes
//! never panic (see [`fuzzing`] and the hostile-input tests). The relay copies no payload.

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod command;
pub mod error;
pub mod fuzzing;
pub mod handshake;
pub mod message;
pub mod relay;
pub mod server;

pub use amf0::Amf0Value;
pub use chunk::{ChunkDecoder, ChunkEncoder, RtmpMessage};
pub use client::{ClientConfig, ClientEvent, ClientSession};
pub use command::Command;
pub use error::RtmpError;
pub use relay::{RelayDirection, RelayEnd, RelayPlan, Segment};
pub use server::{ServerConfig, ServerEvent, ServerSession};

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `publish`: media flows client → origin.
    Publish,
    /// `play`: media flows origin → client.
    Play,
}
