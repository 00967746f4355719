//! [`RelayDirection`]: the steady-state chunk rewriter (spec §5.1 H, §10 #22, §11).
//!
//! The proxy consumed each peer's command phase and injected its own, so the peers' chunk
//! header caches differ and a blind byte pipe is unsafe (§11). Instead of de-chunking and
//! re-chunking whole messages, the relay keeps **the output chunk size of a direction equal to
//! the source's input chunk size**, so every input chunk maps to exactly one output chunk:
//!
//! * at construction, if the destination expects another size, the first output is a
//!   SetChunkSize(source size) on csid 2, msid 0;
//! * an in-stream SetChunkSize from the source is applied to the reader *and* forwarded, which
//!   switches the receiver in lockstep (the fix for §10 #22);
//! * each input chunk gets a freshly encoded header — fmt 0 (absolute timestamp, length, type,
//!   msid) for a message's first chunk, fmt 3 for continuations, extended timestamp whenever
//!   the message timestamp is ≥ 0xFFFFFF — so nothing depends on the receiver's header cache;
//! * the chunk payload is never copied: it is referenced as a [`Segment::Payload`] range of the
//!   input slice, ready for a vectored write.
//!
//! Steady state allocates nothing per message: [`RelayPlan`] vectors are reused after
//! [`RelayPlan::clear`]; header state lives in the source [`ChunkDecoder`]'s fixed table.

use std::io::IoSlice;
use std::ops::Range;

use super::chunk::{write_fmt0_header, write_fmt3_header, ChunkDecoder, ChunkEncoder, ChunkEnd};
use super::error::RtmpError;
use super::message::{write_u32_control, TYPE_SET_CHUNK_SIZE};

/// A peer's side of the connection as the relay needs it.
#[derive(Debug, Clone)]
pub struct RelayEnd {
    /// Reader state for bytes *from* this peer (header cache, chunk size, half-read chunk).
    pub decoder: ChunkDecoder,
    /// Chunk size this peer currently expects *from us*.
    pub peer_chunk_size: u32,
}

/// One piece of output: header bytes we wrote, or payload bytes of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A range of [`RelayPlan::headers`].
    Header(Range<usize>),
    /// A range of the `input` slice given to [`RelayDirection::process`].
    Payload(Range<usize>),
}

/// Output of [`RelayDirection::process`]: what to write, in order, without copying payload.
#[derive(Debug, Clone, Default)]
pub struct RelayPlan {
    /// Freshly encoded chunk headers (and the occasional injected control message).
    pub headers: Vec<u8>,
    /// The output, in order.
    pub segments: Vec<Segment>,
}

impl RelayPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the plan, keeping its allocations.
    pub fn clear(&mut self) {
        self.headers.clear();
        self.segments.clear();
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Total output bytes.
    pub fn out_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Header(r) | Segment::Payload(r) => r.len(),
            })
            .sum()
    }

    /// Appends the whole output to `out` (for callers without vectored writes).
    pub fn flatten_into(&self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(self.out_len());
        for s in &self.segments {
            match s {
                Segment::Header(r) => out.extend_from_slice(&self.headers[r.clone()]),
                Segment::Payload(r) => out.extend_from_slice(&input[r.clone()]),
            }
        }
    }

    /// Appends one `IoSlice` per segment to `out`, for `writev`.
    pub fn io_slices<'a>(&'a self, input: &'a [u8], out: &mut Vec<IoSlice<'a>>) {
        for s in &self.segments {
            out.push(IoSlice::new(match s {
                Segment::Header(r) => &self.headers[r.clone()],
                Segment::Payload(r) => &input[r.clone()],
            }));
        }
    }

    /// Records `headers[start..]` as output, merging with a preceding header segment.
    fn push_header_from(&mut self, start: usize) {
        let end = self.headers.len();
        if start == end {
            return;
        }
        if let Some(Segment::Header(r)) = self.segments.last_mut() {
            if r.end == start {
                r.end = end;
                return;
            }
        }
        self.segments.push(Segment::Header(start..end));
    }

    fn push_payload(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        if let Some(Segment::Payload(r)) = self.segments.last_mut() {
            if r.end == range.start {
                r.end = range.end;
                return;
            }
        }
        self.segments.push(Segment::Payload(range));
    }
}

/// Rewrites one direction's chunk stream (source peer → destination peer).
#[derive(Debug, Clone)]
pub struct RelayDirection {
    source: ChunkDecoder,
    /// Output owed before the first relayed chunk (SetChunkSize, half-read messages).
    prelude: Vec<u8>,
    messages: u64,
}

impl RelayDirection {
    /// `source`: the reader state of the sending peer (from `into_relay`);
    /// `dest_chunk_size`: the chunk size the receiving peer currently expects from us
    /// (its [`RelayEnd::peer_chunk_size`]). Takes the pieces rather than two `RelayEnd`s so both
    /// directions can be built from the same pair; see [`RelayDirection::pair`].
    pub fn new(mut source: ChunkDecoder, dest_chunk_size: u32) -> Self {
        let mut prelude = Vec::new();
        let size = source.chunk_size();
        if size != dest_chunk_size {
            let enc = ChunkEncoder::new();
            write_u32_control(&enc, TYPE_SET_CHUNK_SIZE, size, &mut prelude);
        }
        // Half-assembled messages (a peer interleaving csids across the hand-off) are re-sent
        // from their buffered bytes, chunked at `size`, so the receiver is at the same point of
        // each message as the source. The stream whose chunk is half read comes last, ending
        // in a short chunk that the rest of its payload completes.
        source.drain_partial_messages(|s, payload| {
            write_fmt0_header(
                s.csid,
                s.timestamp,
                s.length,
                s.type_id,
                s.stream_id,
                &mut prelude,
            );
            for (i, c) in payload.chunks(size as usize).enumerate() {
                if i > 0 {
                    write_fmt3_header(s.csid, s.timestamp, &mut prelude);
                }
                prelude.extend_from_slice(c);
            }
        });
        RelayDirection {
            source,
            prelude,
            messages: 0,
        }
    }

    /// Builds both directions: `(client → origin, origin → client)`.
    pub fn pair(client: RelayEnd, origin: RelayEnd) -> (RelayDirection, RelayDirection) {
        let up = RelayDirection::new(client.decoder, origin.peer_chunk_size);
        let down = RelayDirection::new(origin.decoder, client.peer_chunk_size);
        (up, down)
    }

    /// Messages relayed so far (counted when their last byte is processed).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Chunk size this direction writes with (always the source's current chunk size).
    pub fn chunk_size(&self) -> u32 {
        self.source.chunk_size()
    }

    /// Rewrites `input` into `plan` (appending; payload ranges index into this `input`, so
    /// write out and [`RelayPlan::clear`] the plan before passing a different slice).
    ///
    /// Always consumes all of `input`: a partial chunk header (≤ 18 bytes) and a partial
    /// SetChunkSize/Abort payload (≤ 4 bytes) are kept internally, so the return value equals
    /// `input.len()` on success. It is still returned so callers can treat this like the
    /// other `handle_input`s.
    pub fn process(&mut self, input: &[u8], plan: &mut RelayPlan) -> Result<usize, RtmpError> {
        if !self.prelude.is_empty() {
            let start = plan.headers.len();
            plan.headers.append(&mut self.prelude);
            self.prelude = Vec::new();
            plan.push_header_from(start);
        }
        let mut pos = 0;
        loop {
            if let Some((idx, left)) = self.source.current() {
                let n = (left as usize).min(input.len() - pos);
                self.source.take_payload(idx, &input[pos..pos + n], false)?;
                plan.push_payload(pos..pos + n);
                pos += n;
                let left = left - n as u32;
                if left > 0 {
                    self.source.set_current(Some((idx, left)));
                    return Ok(pos);
                }
                self.source.set_current(None);
                self.end_chunk(idx)?;
                continue;
            }
            if pos == input.len() {
                return Ok(pos);
            }
            let Some(start) = self.source.read_header(&input[pos..])? else {
                return Ok(input.len());
            };
            pos += start.used;
            let s = self.source.stream(start.idx);
            let h = plan.headers.len();
            if start.first_of_message {
                write_fmt0_header(
                    s.csid,
                    s.timestamp,
                    s.length,
                    s.type_id,
                    s.stream_id,
                    &mut plan.headers,
                );
            } else {
                write_fmt3_header(s.csid, s.timestamp, &mut plan.headers);
            }
            // Payload bytes the decoder already held (see `take_carried`) follow the header.
            let (carried, n) = self.source.take_carried();
            if n > 0 {
                self.source.take_payload(start.idx, &carried[..n], false)?;
                plan.headers.extend_from_slice(&carried[..n]);
            }
            plan.push_header_from(h);
            if start.payload_len > 0 {
                self.source
                    .set_current(Some((start.idx, start.payload_len)));
            } else {
                self.end_chunk(start.idx)?;
            }
        }
    }

    fn end_chunk(&mut self, idx: usize) -> Result<(), RtmpError> {
        if let ChunkEnd::MessageDone(_) = self.source.end_chunk(idx, false)? {
            self.messages += 1;
        }
        Ok(())
    }
}
