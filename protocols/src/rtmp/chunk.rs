//! The RTMP chunk stream (RTMP spec §5.3): incremental [`ChunkDecoder`] and [`ChunkEncoder`].
//!
//! The decoder keeps a small per-csid header cache ([`MAX_CHUNK_STREAMS`] entries at most) and
//! never needs the caller to re-present bytes: a partial chunk header (≤ 18 bytes) is kept in a
//! fixed array, payload bytes are copied as they arrive. Memory is bounded by
//! [`MAX_MESSAGE_LEN`] per message and [`MAX_BUFFERED_BYTES`] across all partial messages.
//!
//! Reader rules (spec §5.1 B, with the fixes of §10 #23):
//! * 1-, 2- and 3-byte basic headers, csid 2..=65599;
//! * a fresh chunk stream must start with fmt 0, except csid 2 with fmt 1 (the librtmp ping);
//! * a new message header (fmt 0/1/2) while a message is half read on that csid is an error;
//! * fmt 3 new message repeats the previous timestamp field as a delta (spec §5.3.1.2.4);
//! * extended timestamps: read when the field is 0xFFFFFF; on fmt-3 continuations the four bytes
//!   are consumed only if they equal the stored extended value (SRS's auto-detect), so both
//!   Adobe/ffmpeg style (repeated) and librtmp-old style (omitted) senders work;
//! * SetChunkSize (type 1) and Abort (type 2) are applied by the decoder itself when the message
//!   completes, and still returned to the caller; chunk size 0 or ≥ 2^31 is rejected.
//!
//! Timestamps are kept as wrapping `u32` (not masked to 31 bits) so a relay reproduces them
//! exactly.

use super::error::RtmpError;
use super::message::{TYPE_ABORT, TYPE_SET_CHUNK_SIZE};

/// Chunk size both directions start with (spec §5.1 B).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size a peer may announce (the top bit must be zero, RTMP spec §5.4.1).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// Largest message length; the wire field is 24 bits so this is also the protocol maximum.
pub const MAX_MESSAGE_LEN: u32 = 0x00ff_ffff;
/// Distinct chunk stream ids tracked per connection. Real peers use 2..=8.
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Bytes held across all partially received messages.
pub const MAX_BUFFERED_BYTES: usize = 32 * 1024 * 1024;
/// Longest chunk header: 3-byte basic header + 11-byte fmt 0 header + extended timestamp.
pub const MAX_HEADER_LEN: usize = 18;
/// Largest chunk stream id a 3-byte basic header can carry.
pub const MAX_CSID: u32 = 65599;

const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;

/// One reassembled RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpMessage {
    /// Chunk stream id it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds.
    pub timestamp: u32,
    /// Message type id (see [`super::message`]).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The whole payload.
    pub payload: Vec<u8>,
}

/// What the relay knows about the *receiver's* header cache for one chunk stream, compared with
/// this (the source's) cache. See [`crate::rtmp::relay`] (verbatim mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum DestSync {
    /// Nothing relayed on this csid yet: the receiver's cache holds whatever the proxy wrote
    /// during the command phase, or nothing.
    #[default]
    Unknown,
    /// The receiver has this message's timestamp, length, type and stream id (an fmt 0 the
    /// relay wrote), but maybe another timestamp delta and extended-timestamp state.
    Fields,
    /// The receiver's cache equals the source's: any header the source sends next means the
    /// same to both.
    Synced,
}

/// Per-csid header cache (RTMP spec §5.3.1.2: fmt 1/2/3 headers inherit from it).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkStream {
    pub(crate) csid: u32,
    /// Absolute timestamp of the current (or last) message.
    pub(crate) timestamp: u32,
    /// Last timestamp field as sent (fmt 0: absolute, fmt 1/2: delta); fmt 3 new messages add it.
    pub(crate) delta: u32,
    pub(crate) length: u32,
    pub(crate) type_id: u8,
    pub(crate) stream_id: u32,
    /// The last fmt 0/1/2 header carried an extended timestamp.
    pub(crate) extended: bool,
    /// Its raw value, to recognise the repeat on fmt-3 chunks.
    pub(crate) ext_raw: u32,
    /// The source started a message on this csid with a compressed (fmt 1/2/3) header at least
    /// once, so it may do so again (relay mode bookkeeping).
    pub(crate) compressed_start: bool,
    /// The receiver's cache for this csid (relay mode bookkeeping).
    pub(crate) dest: DestSync,
    /// Payload bytes of the current message seen so far.
    pub(crate) received: u32,
    pub(crate) in_message: bool,
    /// Assembly buffer (decoder mode only; the relay never stores payload).
    payload: Vec<u8>,
    /// First four payload bytes, kept in both modes so SetChunkSize/Abort can be applied.
    control: [u8; 4],
}

impl ChunkStream {
    /// Writes an fmt 0 header carrying this stream's current message fields.
    pub(crate) fn write_fmt0(&self, out: &mut Vec<u8>) {
        write_fmt0_header(
            self.csid,
            self.timestamp,
            self.length,
            self.type_id,
            self.stream_id,
            out,
        );
    }
}

/// A complete chunk header, already committed to the cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkStart {
    /// Index into the stream table.
    pub(crate) idx: usize,
    /// Bytes of `input` the header used.
    pub(crate) used: usize,
    /// This chunk starts a new message (an fmt 0 header must be written for it).
    pub(crate) first_of_message: bool,
    /// The header's format (0–3) as the source sent it.
    pub(crate) fmt: u8,
    /// Payload bytes in this chunk.
    pub(crate) payload_len: u32,
}

/// What finishing a chunk's payload meant.
#[derive(Debug)]
pub(crate) enum ChunkEnd {
    /// More chunks of this message follow.
    MessageContinues,
    /// The message is complete (with its payload in decoder mode, `None` in relay mode).
    MessageDone(Option<RtmpMessage>),
}

/// Incremental RTMP chunk-stream reader. Feed bytes with [`ChunkDecoder::decode`].
#[derive(Debug, Clone)]
pub struct ChunkDecoder {
    chunk_size: u32,
    max_message_len: u32,
    /// Header cache. Entries are never removed, so an index handed out by `parse_header`
    /// (kept in `current` or a `ChunkStart`) stays valid: every `self.streams[idx]` below
    /// relies on that INVARIANT.
    streams: Vec<ChunkStream>,
    partial: [u8; MAX_HEADER_LEN],
    partial_len: usize,
    /// Payload bytes that were stashed as a possible header: see [`ChunkDecoder::take_carried`].
    carried: [u8; 4],
    carried_len: usize,
    /// (stream index, payload bytes left in the chunk being read).
    current: Option<(usize, u32)>,
    buffered_bytes: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkDecoder {
    /// A decoder at the default chunk size 128.
    pub fn new() -> Self {
        ChunkDecoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_len: MAX_MESSAGE_LEN,
            streams: Vec::new(),
            partial: [0; MAX_HEADER_LEN],
            partial_len: 0,
            carried: [0; 4],
            carried_len: 0,
            current: None,
            buffered_bytes: 0,
        }
    }

    /// Lowers the per-message bound (e.g. for a command phase that never needs big messages).
    pub fn with_max_message_len(mut self, max: u32) -> Self {
        self.max_message_len = max.min(MAX_MESSAGE_LEN);
        self
    }

    /// Chunk size the peer writes with, as far as we know.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the inbound chunk size (normally done automatically on SetChunkSize).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(RtmpError::Protocol(
                "chunk size out of range 1..=0x7fffffff",
            ));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// True when no chunk header or payload is half read (a clean message boundary).
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.partial_len == 0
    }

    /// Consumes bytes until one message completes or `input` runs out. Returns the bytes
    /// consumed and the message, if one completed; call again with the rest.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<RtmpMessage>), RtmpError> {
        let mut pos = 0;
        loop {
            if let Some((idx, left)) = self.current {
                let n = (left as usize).min(input.len() - pos);
                self.take_payload(idx, &input[pos..pos + n], true)?;
                pos += n;
                let left = left - n as u32;
                if left > 0 {
                    self.current = Some((idx, left));
                    return Ok((pos, None));
                }
                self.current = None;
                if let ChunkEnd::MessageDone(msg) = self.end_chunk(idx, true)? {
                    return Ok((pos, msg));
                }
                continue;
            }
            if pos == input.len() {
                return Ok((pos, None));
            }
            match self.read_header(&input[pos..])? {
                None => return Ok((input.len(), None)),
                Some(start) => {
                    pos += start.used;
                    let (carried, n) = self.take_carried();
                    if n > 0 {
                        self.take_payload(start.idx, &carried[..n], true)?;
                    }
                    if start.payload_len > 0 {
                        self.current = Some((start.idx, start.payload_len));
                    } else if let ChunkEnd::MessageDone(msg) = self.end_chunk(start.idx, true)? {
                        // Zero-length message: complete at its header.
                        return Ok((pos, msg));
                    }
                }
            }
        }
    }

    /// Payload bytes of the chunk just started by `read_header` that the decoder had already
    /// taken in (at most 3; usually none). Callers emit them before reading payload from input.
    pub(crate) fn take_carried(&mut self) -> ([u8; 4], usize) {
        let n = std::mem::take(&mut self.carried_len);
        (self.carried, n)
    }

    /// Payload bytes left in the chunk being read, with its stream index.
    pub(crate) fn current(&self) -> Option<(usize, u32)> {
        self.current
    }

    pub(crate) fn set_current(&mut self, c: Option<(usize, u32)>) {
        self.current = c;
    }

    pub(crate) fn stream_mut(&mut self, idx: usize) -> &mut ChunkStream {
        &mut self.streams[idx]
    }

    /// Every chunk stream the source has used.
    pub(crate) fn streams(&self) -> &[ChunkStream] {
        &self.streams
    }

    /// Marks every stream with a half-assembled message as `dest` (see
    /// [`ChunkDecoder::drain_partial_messages`]).
    pub(crate) fn mark_in_message(&mut self, dest: DestSync) {
        for s in self.streams.iter_mut().filter(|s| s.in_message) {
            s.dest = dest;
        }
    }

    /// No chunk header is half read and no payload byte is held back: every byte given so far
    /// has been accounted, so the next input byte is either the next header or payload of the
    /// chunk in [`ChunkDecoder::current`].
    pub(crate) fn nothing_held(&self) -> bool {
        self.partial_len == 0 && self.carried_len == 0
    }

    /// Switches to pass-through: hands every half-assembled message to `f` (the stream whose
    /// chunk is being read comes last) and frees the buffers. Only non-empty at a relay
    /// hand-off if the peer interleaved messages across chunk streams.
    pub(crate) fn drain_partial_messages(&mut self, mut f: impl FnMut(&ChunkStream, &[u8])) {
        let current = self.current.map(|(idx, _)| idx);
        let order = (0..self.streams.len())
            .filter(|&i| Some(i) != current)
            .chain(current);
        for i in order {
            let s = &mut self.streams[i];
            if s.in_message {
                let payload = std::mem::take(&mut s.payload);
                f(s, &payload);
            }
        }
        self.buffered_bytes = 0;
    }

    /// Reads a complete chunk header from `rest` (plus any bytes kept from the previous call).
    /// Returns `None` after stashing an incomplete header; all of `rest` is then consumed.
    pub(crate) fn read_header(&mut self, rest: &[u8]) -> Result<Option<ChunkStart>, RtmpError> {
        let old = self.partial_len;
        if old == 0 {
            return match self.parse_header(rest)? {
                Some(start) => Ok(Some(start)),
                None => {
                    // Incomplete means shorter than the header, so it fits the stash.
                    let n = rest.len().min(MAX_HEADER_LEN);
                    self.partial[..n].copy_from_slice(&rest[..n]);
                    self.partial_len = n;
                    Ok(None)
                }
            };
        }
        let take = (MAX_HEADER_LEN - old).min(rest.len());
        let mut tmp = self.partial;
        tmp[old..old + take].copy_from_slice(&rest[..take]);
        match self.parse_header(&tmp[..old + take])? {
            Some(mut start) if start.used >= old => {
                self.partial_len = 0;
                start.used -= old;
                Ok(Some(start))
            }
            Some(mut start) => {
                // The header ended inside the stashed bytes: this happens when a fmt 3
                // continuation of an extended-timestamp message had to wait for 4 bytes to tell
                // a repeated extended timestamp from payload, and they were payload. The stashed
                // bytes after the header are this chunk's first payload bytes (handed out by
                // `take_carried`) and, if the chunk is shorter than that, the start of the next
                // header (kept stashed). `rest` is not consumed at all.
                let stashed = &tmp[start.used..old];
                let carry = stashed.len().min(start.payload_len as usize).min(4);
                self.carried[..carry].copy_from_slice(&stashed[..carry]);
                self.carried_len = carry;
                let excess = &stashed[carry..];
                let mut partial = [0u8; MAX_HEADER_LEN];
                partial[..excess.len()].copy_from_slice(excess);
                self.partial = partial;
                self.partial_len = excess.len();
                start.payload_len -= carry as u32;
                start.used = 0;
                Ok(Some(start))
            }
            None => {
                self.partial = tmp;
                self.partial_len = old + take;
                Ok(None)
            }
        }
    }

    /// Parses one chunk header at the start of `buf`; commits to the cache only when complete.
    fn parse_header(&mut self, buf: &[u8]) -> Result<Option<ChunkStart>, RtmpError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match buf.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + u32::from(b2) * 256, 3),
                _ => return Ok(None),
            },
            c => (u32::from(c), 1),
        };
        let idx = self.streams.iter().position(|s| s.csid == csid);
        if idx.is_none() {
            // Spec §5.1 B: a fresh chunk stream starts with fmt 0 (csid 2 fmt 1: librtmp ping).
            if fmt != 0 && !(fmt == 1 && csid == 2) {
                return Err(RtmpError::Protocol(
                    "fresh chunk stream without an fmt 0 header",
                ));
            }
            if self.streams.len() >= MAX_CHUNK_STREAMS {
                return Err(RtmpError::LimitExceeded {
                    what: "chunk streams",
                    value: self.streams.len() as u64 + 1,
                    limit: MAX_CHUNK_STREAMS as u64,
                });
            }
        }
        let prev = idx.map(|i| &self.streams[i]);
        let in_message = prev.is_some_and(|s| s.in_message);
        if fmt != 3 && in_message {
            return Err(RtmpError::Protocol(
                "new message header while a message is half read on its chunk stream",
            ));
        }
        let header_len = [11usize, 7, 3, 0][usize::from(fmt)];
        if buf.len() < pos + header_len {
            return Ok(None);
        }
        let h = &buf[pos..pos + header_len];
        pos += header_len;
        let be24 = |b: &[u8]| u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let mut ts_field = if fmt <= 2 { be24(&h[0..3]) } else { 0 };
        let mut extended = prev.is_some_and(|s| s.extended);
        if fmt <= 2 {
            extended = ts_field == EXTENDED_TIMESTAMP;
            if extended {
                let Some(b) = buf.get(pos..pos + 4) else {
                    return Ok(None);
                };
                ts_field = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                pos += 4;
            }
        } else if extended {
            let Some(b) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            // A new message always carries it; a continuation only if it repeats the value.
            if !in_message || prev.is_some_and(|s| s.ext_raw == v) {
                pos += 4;
            }
        }
        let (length, type_id) = if fmt <= 1 {
            (be24(&h[3..6]), h[6])
        } else {
            prev.map_or((0, 0), |s| (s.length, s.type_id))
        };
        if length > self.max_message_len {
            return Err(RtmpError::LimitExceeded {
                what: "message length",
                value: u64::from(length),
                limit: u64::from(self.max_message_len),
            });
        }

        // Commit.
        let idx = match idx {
            Some(i) => i,
            None => {
                self.streams.push(ChunkStream {
                    csid,
                    ..ChunkStream::default()
                });
                self.streams.len() - 1
            }
        };
        let s = &mut self.streams[idx];
        match fmt {
            0 => {
                s.timestamp = ts_field;
                s.delta = ts_field;
                s.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
            }
            1 | 2 => {
                s.timestamp = s.timestamp.wrapping_add(ts_field);
                s.delta = ts_field;
            }
            _ if !in_message => s.timestamp = s.timestamp.wrapping_add(s.delta),
            _ => {}
        }
        if fmt <= 2 {
            s.extended = extended;
            s.ext_raw = if extended { ts_field } else { 0 };
        }
        s.length = length;
        s.type_id = type_id;
        if !in_message {
            s.in_message = true;
            s.received = 0;
            s.compressed_start |= fmt != 0;
        }
        let payload_len = (s.length - s.received).min(self.chunk_size);
        Ok(Some(ChunkStart {
            idx,
            used: pos,
            first_of_message: !in_message,
            fmt,
            payload_len,
        }))
    }

    /// Accounts payload bytes of the current chunk; stores them when `assemble`.
    pub(crate) fn take_payload(
        &mut self,
        idx: usize,
        bytes: &[u8],
        assemble: bool,
    ) -> Result<(), RtmpError> {
        let s = &mut self.streams[idx];
        let at = s.received as usize;
        if at < 4 {
            let n = (4 - at).min(bytes.len());
            s.control[at..at + n].copy_from_slice(&bytes[..n]);
        }
        if assemble {
            if self.buffered_bytes + bytes.len() > MAX_BUFFERED_BYTES {
                return Err(RtmpError::LimitExceeded {
                    what: "buffered message bytes",
                    value: (self.buffered_bytes + bytes.len()) as u64,
                    limit: MAX_BUFFERED_BYTES as u64,
                });
            }
            if s.payload.is_empty() {
                // One allocation of the announced length (bounded by max_message_len).
                s.payload.reserve_exact(s.length as usize);
            }
            s.payload.extend_from_slice(bytes);
            self.buffered_bytes += bytes.len();
        }
        s.received += bytes.len() as u32;
        Ok(())
    }

    /// Called when a chunk's payload is complete. If that completes the message, applies
    /// SetChunkSize/Abort and (when `assemble`) returns the message.
    pub(crate) fn end_chunk(&mut self, idx: usize, assemble: bool) -> Result<ChunkEnd, RtmpError> {
        let s = &mut self.streams[idx];
        if s.received < s.length {
            return Ok(ChunkEnd::MessageContinues);
        }
        s.in_message = false;
        let (type_id, control, length) = (s.type_id, s.control, s.length);
        let msg = if assemble {
            let payload = std::mem::take(&mut s.payload);
            self.buffered_bytes -= payload.len();
            Some(RtmpMessage {
                csid: s.csid,
                timestamp: s.timestamp,
                type_id,
                stream_id: s.stream_id,
                payload,
            })
        } else {
            None
        };
        match type_id {
            TYPE_SET_CHUNK_SIZE => {
                if length < 4 {
                    return Err(RtmpError::Malformed("SetChunkSize shorter than 4 bytes"));
                }
                self.set_chunk_size(u32::from_be_bytes(control))?;
            }
            TYPE_ABORT => {
                if length < 4 {
                    return Err(RtmpError::Malformed("Abort shorter than 4 bytes"));
                }
                let csid = u32::from_be_bytes(control);
                if let Some(t) = self.streams.iter_mut().find(|t| t.csid == csid) {
                    if t.in_message {
                        self.buffered_bytes -= t.payload.len();
                        t.payload = Vec::new();
                        t.in_message = false;
                        t.received = 0;
                    }
                }
            }
            _ => {}
        }
        Ok(ChunkEnd::MessageDone(msg))
    }
}

/// Writes a basic header (RTMP spec §5.3.1.1) choosing the 1-, 2- or 3-byte form.
/// `csid` must be 2..=65599 (callers only pass parsed or constant ids); larger values are
/// truncated to 16 bits rather than panicking.
pub fn write_basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    debug_assert!((2..=MAX_CSID).contains(&csid), "csid {csid}");
    let f = fmt << 6;
    if (2..64).contains(&csid) {
        out.push(f | csid as u8);
    } else if (64..320).contains(&csid) {
        out.extend_from_slice(&[f, (csid - 64) as u8]);
    } else {
        let v = csid.wrapping_sub(64);
        out.extend_from_slice(&[f | 1, v as u8, (v >> 8) as u8]);
    }
}

/// Writes an fmt 0 chunk header (absolute timestamp, extended when ≥ 0xFFFFFF).
pub fn write_fmt0_header(
    csid: u32,
    timestamp: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    out: &mut Vec<u8>,
) {
    write_basic_header(0, csid, out);
    let ts = timestamp.min(EXTENDED_TIMESTAMP);
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    if timestamp >= EXTENDED_TIMESTAMP {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
}

/// Writes an fmt 1 header (timestamp delta, length, type; the stream id is inherited).
pub fn write_fmt1_header(csid: u32, delta: u32, length: u32, type_id: u8, out: &mut Vec<u8>) {
    write_basic_header(1, csid, out);
    out.extend_from_slice(&delta.min(EXTENDED_TIMESTAMP).to_be_bytes()[1..]);
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.push(type_id);
    if delta >= EXTENDED_TIMESTAMP {
        out.extend_from_slice(&delta.to_be_bytes());
    }
}

/// Writes an fmt 2 header (timestamp delta only).
pub fn write_fmt2_header(csid: u32, delta: u32, out: &mut Vec<u8>) {
    write_basic_header(2, csid, out);
    out.extend_from_slice(&delta.min(EXTENDED_TIMESTAMP).to_be_bytes()[1..]);
    if delta >= EXTENDED_TIMESTAMP {
        out.extend_from_slice(&delta.to_be_bytes());
    }
}

/// Writes an fmt 3 header carrying `extended` (the receiver's cached extended timestamp) when
/// its cache says the stream uses one.
pub(crate) fn write_fmt3_ext(csid: u32, extended: Option<u32>, out: &mut Vec<u8>) {
    write_basic_header(3, csid, out);
    if let Some(v) = extended {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes an fmt 3 continuation header; repeats the extended timestamp Adobe-style (§5.1 B).
pub fn write_fmt3_header(csid: u32, timestamp: u32, out: &mut Vec<u8>) {
    write_basic_header(3, csid, out);
    if timestamp >= EXTENDED_TIMESTAMP {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
}

/// Writes whole messages as an fmt 0 chunk plus fmt 3 continuations (spec §5.1 B).
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size 128.
    pub fn new() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Current outbound chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outbound chunk size (send a SetChunkSize first). 0 is treated as 1.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Appends `payload` as one message.
    pub fn write_message(
        &self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        write_fmt0_header(
            csid,
            timestamp,
            payload.len() as u32,
            type_id,
            stream_id,
            out,
        );
        let mut chunks = payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        for c in chunks {
            write_fmt3_header(csid, timestamp, out);
            out.extend_from_slice(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut ChunkDecoder, mut input: &[u8]) -> Vec<RtmpMessage> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (n, m) = dec.decode(input).unwrap();
            input = &input[n..];
            out.extend(m);
        }
        out
    }

    #[test]
    fn encodes_basic_headers_in_all_three_sizes() {
        for (csid, want) in [
            (2, vec![0x02]),
            (63, vec![0x3f]),
            (64, vec![0x00, 0x00]),
            (319, vec![0x00, 0xff]),
            (320, vec![0x01, 0x00, 0x01]),
            (65599, vec![0x01, 0xff, 0xff]),
        ] {
            let mut out = Vec::new();
            write_basic_header(0, csid, &mut out);
            assert_eq!(out, want, "csid {csid}");
        }
    }

    #[test]
    fn encoder_output_round_trips_through_decoder() {
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(7);
        let mut dec = ChunkDecoder::new();
        dec.set_chunk_size(7).unwrap();
        let mut wire = Vec::new();
        let payload: Vec<u8> = (0..100u8).collect();
        for (csid, ts) in [(3, 0), (70, 0x00ff_ffff), (400, 0xffff_fff0), (65599, 5)] {
            enc.write_message(csid, ts, 9, 1, &payload, &mut wire);
        }
        let msgs = decode_all(&mut dec, &wire);
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[1].csid, 70);
        assert_eq!(msgs[1].timestamp, 0x00ff_ffff);
        assert_eq!(msgs[2].csid, 400);
        assert_eq!(msgs[2].timestamp, 0xffff_fff0);
        assert!(msgs.iter().all(|m| m.payload == payload));
    }

    #[test]
    fn rejects_chunk_size_zero() {
        let mut wire = Vec::new();
        ChunkEncoder::new().write_message(2, 0, TYPE_SET_CHUNK_SIZE, 0, &[0, 0, 0, 0], &mut wire);
        let mut dec = ChunkDecoder::new();
        assert!(matches!(dec.decode(&wire), Err(RtmpError::Protocol(_))));
    }

    #[test]
    fn rejects_fmt3_on_a_fresh_chunk_stream() {
        let mut dec = ChunkDecoder::new();
        assert!(dec.decode(&[0xc5, 0, 0, 0]).is_err());
    }

    #[test]
    fn extended_timestamp_continuations_without_the_field_decode_at_any_split() {
        // A 300-byte message at ts ≥ 0xFFFFFF whose fmt 3 continuations omit the extended
        // timestamp (as some encoders do), followed by another message: the decoder must tell
        // payload from a repeated extended timestamp however the bytes are split (a fuzzer found
        // the byte-at-a-time case underflowing).
        let mut wire = Vec::new();
        write_fmt0_header(4, 0x0123_4567, 300, 9, 1, &mut wire);
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        wire.extend_from_slice(&payload[..128]);
        wire.push(0xC4); // fmt 3, csid 4, no extended timestamp
        wire.extend_from_slice(&payload[128..256]);
        wire.push(0xC4);
        wire.extend_from_slice(&payload[256..]);
        ChunkEncoder::new().write_message(4, 5, 8, 1, &[3; 10], &mut wire);
        let whole = decode_all(&mut ChunkDecoder::new(), &wire);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].payload, payload);
        for step in 1..8 {
            let mut dec = ChunkDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                let mut piece = piece;
                while !piece.is_empty() {
                    let (n, m) = dec.decode(piece).unwrap();
                    piece = &piece[n..];
                    got.extend(m);
                }
            }
            assert_eq!(got, whole, "split every {step} bytes");
        }
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let mut wire = Vec::new();
        let enc = ChunkEncoder::new();
        enc.write_message(3, 1, 20, 0, &[7; 300], &mut wire);
        enc.write_message(3, 0x0100_0000, 8, 1, &[9; 129], &mut wire);
        let whole = decode_all(&mut ChunkDecoder::new(), &wire);
        let mut dec = ChunkDecoder::new();
        let mut bytewise = Vec::new();
        for b in &wire {
            let (n, m) = dec.decode(std::slice::from_ref(b)).unwrap();
            assert_eq!(n, 1);
            bytewise.extend(m);
        }
        assert_eq!(whole, bytewise);
    }
}
