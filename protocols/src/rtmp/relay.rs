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
//! * each input chunk gets a freshly encoded header that means to the receiver exactly what the
//!   source's header meant to us, written so that the receiver's header cache for that chunk
//!   stream converges on the source's (below);
//! * the chunk payload is never copied: it is referenced as a [`Segment::Payload`] range of the
//!   input slice, ready for a vectored write.
//!
//! **Header choice and verbatim mode.** Per chunk stream the relay tracks what the receiver's
//! header cache holds compared with the source's (`DestSync`): nothing relayed yet
//! (*unknown*: the receiver's cache holds the proxy's command-phase messages), same message fields
//! (*fields*: after an fmt 0 the relay wrote), or equal (*synced*). A message start is written as:
//!
//! | source header | receiver unknown | receiver fields | receiver synced |
//! |---|---|---|---|
//! | fmt 0 | fmt 0 → synced | fmt 0 → synced | fmt 0 → synced |
//! | fmt 1 / 2 | fmt 0 → fields | same fmt and fields → synced | same → synced |
//! | fmt 3 | fmt 0 → fields | fmt 1 with the source's delta → synced | fmt 3 → synced |
//!
//! Continuations are fmt 3, with the extended timestamp the receiver's cache expects. Each
//! transition only uses what the receiver's cache holds for sure, so whatever a receiver does
//! with an fmt 3 after an fmt 0 (implementations differ), it reads the same timestamps.
//!
//! Once every chunk stream the source has used is synced, or was only ever started with fmt 0
//! headers by the source (its command replies) and is not in the middle of a message, and the
//! reader holds no half-read header, the rest of the source's bytes mean the same to the receiver
//! as they do to us: [`RelayDirection::verbatim_ready`] says so, and the glue may then stop
//! parsing and move the bytes unchanged (splice). The chunk size needs no check: the relay always
//! writes with the source's, and an in-stream SetChunkSize passes through to the receiver as is.
//!
//! Steady state allocates nothing per message: [`RelayPlan`] vectors are reused after
//! [`RelayPlan::clear`]; header state lives in the source [`ChunkDecoder`]'s fixed table.

use std::io::IoSlice;
use std::ops::Range;

use super::chunk::{
    write_fmt1_header, write_fmt2_header, write_fmt3_ext, write_fmt3_header, ChunkDecoder,
    ChunkEncoder, ChunkEnd, DestSync,
};
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
            s.write_fmt0(&mut prelude);
            for (i, c) in payload.chunks(size as usize).enumerate() {
                if i > 0 {
                    write_fmt3_header(s.csid, s.timestamp, &mut prelude);
                }
                prelude.extend_from_slice(c);
            }
        });
        source.mark_in_message(DestSync::Fields);
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

    /// True when the source's remaining bytes mean the same to the receiver as to this relay,
    /// so they may be forwarded unchanged from here on (see the module docs, verbatim mode).
    /// Checked at the end of a [`RelayDirection::process`] call, whose output must be written
    /// first.
    pub fn verbatim_ready(&self) -> bool {
        self.prelude.is_empty()
            && self.source.nothing_held()
            && self.source.streams().iter().all(|s| match s.dest {
                // A half-read chunk of a synced stream: the receiver is at the same byte.
                DestSync::Synced => true,
                DestSync::Unknown => !s.compressed_start && !s.in_message,
                DestSync::Fields => false,
            })
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
            let h = plan.headers.len();
            let s = self.source.stream_mut(start.idx);
            let out = &mut plan.headers;
            if start.first_of_message {
                s.dest = match (start.fmt, s.dest) {
                    (fmt, dest) if fmt == 0 || dest == DestSync::Unknown => {
                        s.write_fmt0(out);
                        // The source's own fmt 0 makes the caches equal; ours only the fields.
                        if fmt == 0 {
                            DestSync::Synced
                        } else {
                            DestSync::Fields
                        }
                    }
                    (1, _) | (3, DestSync::Fields) => {
                        write_fmt1_header(s.csid, s.delta, s.length, s.type_id, out);
                        DestSync::Synced
                    }
                    (2, _) => {
                        write_fmt2_header(s.csid, s.delta, out);
                        DestSync::Synced
                    }
                    _ => {
                        write_fmt3_ext(s.csid, s.extended.then_some(s.ext_raw), out);
                        DestSync::Synced
                    }
                };
            } else if s.dest == DestSync::Synced {
                write_fmt3_ext(s.csid, s.extended.then_some(s.ext_raw), out);
            } else {
                write_fmt3_header(s.csid, s.timestamp, out);
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
