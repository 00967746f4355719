//! RelayDirection: the rewritten chunk stream decodes, on the receiving side, to exactly the
//! messages the source sent (spec §5.1 H, §10 #22, #23).

use std::io::IoSlice;
use std::time::{Duration, Instant};

use protocols::rtmp::chunk::write_basic_header;
use protocols::rtmp::message::*;
use protocols::rtmp::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/rtmp/{}",
        env!("CARGO_MANIFEST_DIR"),
        name
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path} missing or unreadable: {e}"))
}

fn decode_all(dec: &mut ChunkDecoder, mut input: &[u8]) -> Vec<RtmpMessage> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (n, m) = dec.decode(input).expect("decodes");
        input = &input[n..];
        out.extend(m);
    }
    out
}

/// Relays `input` in random pieces and returns the flattened output.
fn relay_bytes(relay: &mut RelayDirection, input: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut plan = RelayPlan::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let end = (pos + rng.gen_range(1..3000)).min(input.len());
        let piece = &input[pos..end];
        plan.clear();
        let n = relay.process(piece, &mut plan).expect("relay accepts");
        assert_eq!(n, piece.len());
        let before = out.len();
        plan.flatten_into(piece, &mut out);
        assert_eq!(out.len() - before, plan.out_len());
        let mut slices: Vec<IoSlice<'_>> = Vec::new();
        plan.io_slices(piece, &mut slices);
        let vectored: usize = slices.iter().map(|s| s.len()).sum();
        assert_eq!(vectored, plan.out_len());
        pos = end;
    }
    out
}

type Summary = (u32, u32, u8, u32, Vec<u8>);

fn summary(msgs: &[RtmpMessage]) -> Vec<Summary> {
    msgs.iter()
        .map(|m| {
            (
                m.csid,
                m.timestamp,
                m.type_id,
                m.stream_id,
                m.payload.clone(),
            )
        })
        .collect()
}

/// Relays `input` (read by a decoder at `src_size`) towards a peer expecting `dest_size`, and
/// checks the receiver decodes the same messages. Returns the relay output.
fn check_relay(input: &[u8], src_size: u32, dest_size: u32, seed: u64) -> Vec<u8> {
    let mut reference = ChunkDecoder::new();
    reference.set_chunk_size(src_size).unwrap();
    let want = decode_all(&mut reference, input);

    let mut src = ChunkDecoder::new();
    src.set_chunk_size(src_size).unwrap();
    let mut relay = RelayDirection::new(src, dest_size);
    let out = relay_bytes(&mut relay, input, &mut StdRng::seed_from_u64(seed));

    let mut dest = ChunkDecoder::new();
    dest.set_chunk_size(dest_size).unwrap();
    let mut got = decode_all(&mut dest, &out);
    if src_size != dest_size {
        let first = got.remove(0);
        assert_eq!(
            (first.type_id, first.csid, first.stream_id),
            (TYPE_SET_CHUNK_SIZE, 2, 0)
        );
        assert_eq!(read_u32_control(&first.payload).unwrap(), src_size);
    }
    assert_eq!(summary(&got), summary(&want));
    assert_eq!(relay.messages(), want.len() as u64);
    assert!(dest.is_idle() || !reference.is_idle());
    out
}

/// Hand-rolled chunk writer for the cases ChunkEncoder never produces.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    /// A chunk with `fmt`; `ts` is the timestamp field (absolute for fmt 0, delta otherwise),
    /// written extended when ≥ 0xFFFFFF. `fmt3_ext` adds 4 extended bytes to an fmt 3 chunk.
    #[allow(clippy::too_many_arguments)]
    fn chunk(
        &mut self,
        fmt: u8,
        csid: u32,
        ts: u32,
        len: usize,
        type_id: u8,
        msid: u32,
        fmt3_ext: Option<u32>,
        payload: &[u8],
    ) -> &mut Self {
        let out = &mut self.0;
        write_basic_header(fmt, csid, out);
        if fmt <= 2 {
            out.extend_from_slice(&ts.min(0xff_ffff).to_be_bytes()[1..]);
        }
        if fmt <= 1 {
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
            out.push(type_id);
        }
        if fmt == 0 {
            out.extend_from_slice(&msid.to_le_bytes());
        }
        if fmt <= 2 && ts >= 0xff_ffff {
            out.extend_from_slice(&ts.to_be_bytes());
        }
        if let Some(e) = fmt3_ext {
            out.extend_from_slice(&e.to_be_bytes());
        }
        out.extend_from_slice(payload);
        self
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 0x80)
        .collect()
}

#[test]
fn relays_the_srs_play_capture_to_a_client_expecting_128() {
    let input = fixture("play-ffmpeg.server-to-client.bin");
    let mut reference = ChunkDecoder::new();
    let want = decode_all(&mut reference, &input[3073..]);
    // 9 command-phase messages end with Play.Start at 4400.
    for seed in 0..5 {
        let mut c = ClientSession::new(
            ClientConfig {
                tc_url: "rtmp://127.0.0.1:51936/live".into(),
                stream_name: "livestream".into(),
                kind: StreamKind::Play,
                c1_random: [1; 1528],
                phase_timeout: Duration::from_secs(5),
            },
            Instant::now(),
        );
        let used = c.handle_input(&input).unwrap();
        assert_eq!(used, 4400);
        let mut relay = RelayDirection::new(c.into_relay().decoder, 128);
        let out = relay_bytes(&mut relay, &input[used..], &mut StdRng::seed_from_u64(seed));
        let mut client_reader = ChunkDecoder::new();
        let got = decode_all(&mut client_reader, &out);
        assert_eq!(
            got[0].type_id, TYPE_SET_CHUNK_SIZE,
            "chunk size announced first"
        );
        assert_eq!(read_u32_control(&got[0].payload).unwrap(), 60000);
        assert_eq!(summary(&got[1..]), summary(&want[9..]));
        assert_eq!(relay.messages(), (want.len() - 9) as u64);
        // The relay adds headers only: same payload bytes, chunk for chunk.
        assert!(out.len() < input.len() - used + 16 + 18 * 2 * got.len());
    }
}

#[test]
fn relays_the_ffmpeg_publish_capture_to_an_origin_expecting_128() {
    let input = fixture("publish-ffmpeg.client-to-server.bin");
    let want = decode_all(&mut ChunkDecoder::new(), &input[3073..]);
    let mut s = ServerSession::new(
        ServerConfig {
            srs_id: "0000001".into(),
            srs_version: "1.5.0".into(),
            s1_random: [0; 1528],
            phase_timeout: Duration::from_secs(5),
        },
        Instant::now(),
    );
    let used = s.handle_input(&input).unwrap();
    assert_eq!(used, 3446);
    let mut relay = RelayDirection::new(s.into_relay().decoder, 128);
    let out = relay_bytes(&mut relay, &input[used..], &mut StdRng::seed_from_u64(9));
    let got = decode_all(&mut ChunkDecoder::new(), &out);
    assert_eq!(read_u32_control(&got[0].payload).unwrap(), 60000);
    assert_eq!(summary(&got[1..]), summary(&want[7..]));
}

#[test]
fn keeps_chunk_stream_ids_that_need_two_and_three_byte_basic_headers() {
    let mut input = Vec::new();
    let enc = ChunkEncoder::new();
    for (i, csid) in [2u32, 63, 64, 65, 300, 319, 320, 321, 5000, 65599]
        .into_iter()
        .enumerate()
    {
        enc.write_message(
            csid,
            i as u32 * 40,
            9,
            1,
            &payload(300, i as u8),
            &mut input,
        );
    }
    let out = check_relay(&input, 128, 128, 1);
    assert_eq!(
        out, input,
        "same chunk size and fmt 0/3 input: output is byte-identical"
    );
}

#[test]
fn relays_extended_timestamps_with_and_without_the_fmt3_field() {
    // ChunkEncoder repeats the extended timestamp on fmt 3 (Adobe/ffmpeg style).
    let mut input = Vec::new();
    let enc = ChunkEncoder::new();
    enc.write_message(4, 0x0100_0000, 8, 1, &payload(400, 1), &mut input);
    enc.write_message(4, 0x00ff_ffff, 8, 1, &payload(129, 2), &mut input);
    // Old-librtmp style: the fmt 3 continuation omits the field.
    let p = payload(200, 3);
    let mut w = Wire(input);
    w.chunk(0, 6, 0x0200_0000, 200, 9, 1, None, &p[..128])
        .chunk(3, 6, 0, 0, 0, 0, None, &p[128..])
        // fmt 1 with an extended delta, then fmt 3 new message repeating it.
        .chunk(1, 6, 0x0100_0000, 10, 9, 0, None, &p[..10])
        .chunk(3, 6, 0, 0, 0, 0, Some(0x0100_0000), &p[10..20]);
    let out = check_relay(&w.0, 128, 4096, 2);
    let msgs = decode_all(&mut ChunkDecoder::new(), &out);
    let ts: Vec<u32> = msgs[1..].iter().map(|m| m.timestamp).collect();
    assert_eq!(
        ts,
        [
            0x0100_0000,
            0x00ff_ffff,
            0x0200_0000,
            0x0300_0000,
            0x0400_0000
        ]
    );
}

#[test]
fn relays_fmt1_fmt2_and_fmt3_deltas_as_absolute_fmt0_timestamps() {
    let p = payload(300, 4);
    let mut w = Wire::default();
    w.chunk(0, 4, 1000, 10, 8, 1, None, &p[..10])
        .chunk(1, 4, 23, 20, 8, 0, None, &p[..20])
        .chunk(2, 4, 23, 0, 0, 0, None, &p[20..40])
        .chunk(3, 4, 0, 0, 0, 0, None, &p[40..60])
        .chunk(1, 4, 40, 130, 9, 0, None, &p[..128])
        .chunk(3, 4, 0, 0, 0, 0, None, &p[128..130]);
    check_relay(&w.0, 128, 128, 3);
}

#[test]
fn relays_messages_interleaved_across_chunk_streams() {
    let a = payload(300, 5);
    let b = payload(200, 6);
    let mut w = Wire::default();
    w.chunk(0, 4, 10, 300, 8, 1, None, &a[..128])
        .chunk(0, 6, 20, 200, 9, 1, None, &b[..128])
        .chunk(3, 4, 0, 0, 0, 0, None, &a[128..256])
        .chunk(0, 330, 5, 3, 18, 1, None, b"abc")
        .chunk(3, 6, 0, 0, 0, 0, None, &b[128..])
        .chunk(3, 4, 0, 0, 0, 0, None, &a[256..]);
    for seed in 0..20 {
        check_relay(&w.0, 128, 128, seed);
    }
}

#[test]
fn forwards_a_mid_stream_set_chunk_size_and_switches_the_receiver_in_lockstep() {
    let mut input = Vec::new();
    let mut enc = ChunkEncoder::new();
    enc.write_message(4, 0, 8, 1, &payload(1000, 7), &mut input);
    write_u32_control(&enc, TYPE_SET_CHUNK_SIZE, 4096, &mut input);
    enc.set_chunk_size(4096);
    enc.write_message(6, 40, 9, 1, &payload(10_000, 8), &mut input);
    write_u32_control(&enc, TYPE_SET_CHUNK_SIZE, 100, &mut input);
    enc.set_chunk_size(100);
    enc.write_message(6, 80, 9, 1, &payload(1000, 9), &mut input);
    for seed in 0..10 {
        let out = check_relay(&input, 128, 128, seed);
        // Equal chunk sizes on both sides: the rewrite is byte-identical.
        assert_eq!(out, input);
    }
    // And against a destination that was at another size.
    check_relay(&input, 128, 60000, 11);
}

#[test]
fn forwards_abort_and_a_zero_length_message() {
    let p = payload(300, 10);
    let mut w = Wire::default();
    w.chunk(0, 6, 0, 300, 9, 1, None, &p[..128])
        .chunk(0, 2, 0, 4, TYPE_ABORT, 0, None, &6u32.to_be_bytes())
        .chunk(0, 6, 40, 5, 9, 1, None, &p[..5])
        .chunk(0, 5, 0, 0, 18, 1, None, &[]);
    check_relay(&w.0, 128, 128, 4);
}

#[test]
fn steady_state_reuses_the_plan_without_growing_it() {
    let mut chunk = Vec::new();
    ChunkEncoder::new().write_message(6, 0, 9, 1, &payload(5000, 11), &mut chunk);
    let mut relay = RelayDirection::new(ChunkDecoder::new(), 128);
    let mut plan = RelayPlan::new();
    relay.process(&chunk, &mut plan).unwrap();
    let caps = (plan.headers.capacity(), plan.segments.capacity());
    for _ in 0..100 {
        plan.clear();
        assert_eq!(relay.process(&chunk, &mut plan).unwrap(), chunk.len());
        assert_eq!((plan.headers.capacity(), plan.segments.capacity()), caps);
        // fmt 0 header (12 B) + 39 fmt 3 headers (1 B); payload untouched in the input.
        assert_eq!(plan.headers.len(), 12 + 39);
        assert_eq!(plan.segments.len(), 80);
    }
    assert_eq!(relay.messages(), 101);
}

/// (timestamp, delta, length, type, msid, extended field) of a chunk stream's last header.
type LastHeader = (u32, u32, u32, u8, u32, Option<u32>);

/// An origin-style chunk writer that compresses headers per chunk stream the way nginx-rtmp
/// does for live media: fmt 0 first, then fmt 1 (same stream id), fmt 2 (same length and
/// type), fmt 3 (same delta too). Continuations are fmt 3, repeating an extended timestamp.
#[derive(Default)]
struct Compressor {
    chunk_size: usize,
    /// csid → (timestamp, delta, length, type, msid, extended field)
    last: std::collections::HashMap<u32, LastHeader>,
}

impl Compressor {
    fn message(&mut self, csid: u32, ts: u32, type_id: u8, msid: u32, p: &[u8], w: &mut Wire) {
        let len = p.len() as u32;
        let (fmt, field) = match self.last.get(&csid) {
            Some(&(lts, ldelta, llen, ltype, lmsid, _)) if lmsid == msid && ts >= lts => {
                let delta = ts - lts;
                if llen == len && ltype == type_id {
                    if delta == ldelta {
                        (3, delta)
                    } else {
                        (2, delta)
                    }
                } else {
                    (1, delta)
                }
            }
            _ => (0, ts),
        };
        let ext = match fmt {
            3 => self.last[&csid].5,
            _ => (field >= 0xff_ffff).then_some(field),
        };
        let delta = if fmt == 0 { ts } else { field };
        self.last.insert(csid, (ts, delta, len, type_id, msid, ext));
        let first = p.len().min(self.chunk_size);
        let fmt3_ext = if fmt == 3 { ext } else { None };
        w.chunk(
            fmt,
            csid,
            field,
            p.len(),
            type_id,
            msid,
            fmt3_ext,
            &p[..first],
        );
        for c in p[first..].chunks(self.chunk_size) {
            w.chunk(3, csid, 0, 0, 0, 0, ext, c);
        }
    }
}

/// A live stream after `play`, written by `Compressor`: a SetChunkSize, metadata, then audio
/// (csid 4, steady 23 ms deltas: fmt 3 starts) and video (csid 6, varying sizes) from `ts0`.
/// Returns the bytes and the offset where each media message starts.
fn compressed_live_stream(
    seed: u64,
    chunk_size: u32,
    ts0: u32,
    messages: usize,
) -> (Vec<u8>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = Wire::default();
    write_u32_control(
        &ChunkEncoder::new(),
        TYPE_SET_CHUNK_SIZE,
        chunk_size,
        &mut w.0,
    );
    let mut c = Compressor {
        chunk_size: chunk_size as usize,
        ..Default::default()
    };
    c.message(5, ts0, 18, 1, &payload(90, 9), &mut w);
    let (mut audio, mut video) = (ts0, ts0);
    let mut starts = Vec::new();
    for i in 0..messages {
        starts.push(w.0.len());
        if rng.gen_bool(0.5) {
            c.message(4, audio, 8, 1, &payload(40, i as u8), &mut w);
            audio += 23;
        } else {
            let len = if rng.gen_bool(0.3) {
                300
            } else {
                rng.gen_range(1..9000)
            };
            c.message(6, video, 9, 1, &payload(len, i as u8), &mut w);
            video += if rng.gen_bool(0.8) { 33 } else { 34 };
        }
    }
    (w.0, starts)
}

/// The command phase as each side saw it: the source's replies consumed by the proxy's origin
/// session, and the proxy's own replies consumed by the client. Both wrote fmt 0 headers on
/// csid 2 and 3 (ChunkEncoder), with different messages.
fn command_phase_decoders() -> (ChunkDecoder, ChunkDecoder) {
    let enc = ChunkEncoder::new();
    let mut from_origin = Vec::new();
    write_u32_control(&enc, TYPE_WINDOW_ACK_SIZE, 5_000_000, &mut from_origin);
    enc.write_message(3, 0, 20, 0, &payload(180, 1), &mut from_origin);
    enc.write_message(3, 0, 20, 1, &payload(150, 2), &mut from_origin);
    let mut source = ChunkDecoder::new();
    decode_all(&mut source, &from_origin);
    let mut to_client = Vec::new();
    write_u32_control(&enc, TYPE_WINDOW_ACK_SIZE, 2_500_000, &mut to_client);
    enc.write_message(3, 0, 20, 0, &payload(240, 3), &mut to_client);
    enc.write_message(3, 7, 20, 1, &payload(120, 4), &mut to_client);
    let mut receiver = ChunkDecoder::new();
    decode_all(&mut receiver, &to_client);
    (source, receiver)
}

#[test]
fn once_verbatim_ready_the_source_bytes_decode_the_same_for_the_receiver() {
    let mut switched = 0;
    let mut runs = 0;
    for seed in 0..40u64 {
        for &(chunk_size, ts0) in &[(128, 1000), (4096, 0), (60_000, 5), (4096, 0x00ff_ff00)] {
            runs += 1;
            let (stream, starts) = compressed_live_stream(seed, chunk_size, ts0, 120);
            let (mut source, mut receiver) = command_phase_decoders();
            // Odd seeds: the relay starts mid-stream, after the source's first media messages
            // (which the receiver never saw), so compressed headers come first.
            let split = if seed % 2 == 1 {
                starts[(seed as usize) % 7]
            } else {
                0
            };
            decode_all(&mut source, &stream[..split]);
            let input = &stream[split..];
            let want = decode_all(&mut source.clone(), input);
            let mut relay = RelayDirection::new(source, 128);
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
            let (mut out, mut plan, mut pos) = (Vec::new(), RelayPlan::new(), 0);
            while pos < input.len() {
                let end = (pos + rng.gen_range(1..5000)).min(input.len());
                plan.clear();
                relay.process(&input[pos..end], &mut plan).unwrap();
                plan.flatten_into(&input[pos..end], &mut out);
                pos = end;
                if relay.verbatim_ready() {
                    // From here on the glue would splice: the rest goes out unchanged.
                    out.extend_from_slice(&input[pos..]);
                    switched += 1;
                    break;
                }
            }
            let mut got = decode_all(&mut receiver, &out);
            if split > 0 && chunk_size != 128 {
                // The relay's own SetChunkSize for a receiver still at 128.
                let first = got.remove(0);
                assert_eq!(first.type_id, TYPE_SET_CHUNK_SIZE);
                assert_eq!(read_u32_control(&first.payload).unwrap(), chunk_size);
            }
            let brief = |m: &[RtmpMessage]| -> Vec<(u32, u32, u8, u32, usize)> {
                m.iter()
                    .map(|m| (m.csid, m.timestamp, m.type_id, m.stream_id, m.payload.len()))
                    .collect()
            };
            let first_diff = brief(&got)
                .iter()
                .zip(brief(&want))
                .position(|(a, b)| *a != b);
            assert_eq!(
                (got.len(), first_diff),
                (want.len(), None),
                "seed {seed} chunk {chunk_size} ts0 {ts0:#x}: got {:?} want {:?}",
                first_diff.map(|i| brief(&got)[i.saturating_sub(2)..=i].to_vec()),
                first_diff.map(|i| brief(&want)[i.saturating_sub(2)..=i].to_vec()),
            );
            assert_eq!(summary(&got), summary(&want));
        }
    }
    // Every run has both media streams synced within a few messages; the switch then waits
    // only for a read that does not end inside a chunk header.
    assert!(switched >= runs * 9 / 10, "switched {switched} of {runs}");
}

#[test]
fn a_stream_the_source_once_started_compressed_keeps_the_relay_parsing_until_it_syncs() {
    let enc = ChunkEncoder::new();
    let p = payload(64, 7);
    // Command phase: the origin started a csid-5 message with fmt 1 (compressed).
    let mut w = Wire::default();
    w.chunk(0, 5, 0, 10, 20, 1, None, &p[..10])
        .chunk(1, 5, 0, 12, 20, 0, None, &p[..12]);
    let mut source = ChunkDecoder::new();
    decode_all(&mut source, &w.0);
    let mut relay = RelayDirection::new(source, 128);
    let mut plan = RelayPlan::new();
    // Media on csid 6 syncs at once (fmt 0), but csid 5 might come back with fmt 1/2/3.
    let mut media = Vec::new();
    enc.write_message(6, 40, 9, 1, &payload(100, 8), &mut media);
    relay.process(&media, &mut plan).unwrap();
    assert!(!relay.verbatim_ready());
    // Once the origin writes on csid 5 again (any header), the relay writes it so that the
    // receiver's cache equals the source's: fmt 2 after the relay's fmt 0 → fields, then a
    // second message → synced.
    let mut w = Wire::default();
    w.chunk(2, 5, 10, 0, 0, 0, None, &p[..12]);
    plan.clear();
    relay.process(&w.0, &mut plan).unwrap();
    assert!(
        !relay.verbatim_ready(),
        "fields only after an fmt 0 the relay chose"
    );
    let mut w = Wire::default();
    w.chunk(3, 5, 0, 0, 0, 0, None, &p[..12]);
    plan.clear();
    relay.process(&w.0, &mut plan).unwrap();
    assert!(relay.verbatim_ready());
}

#[test]
fn a_half_read_header_or_a_fields_only_stream_is_not_verbatim_ready() {
    let enc = ChunkEncoder::new();
    let mut relay = RelayDirection::new(ChunkDecoder::new(), 128);
    let mut plan = RelayPlan::new();
    let mut bytes = Vec::new();
    enc.write_message(6, 40, 9, 1, &payload(300, 8), &mut bytes);
    // Stop inside the first chunk header.
    relay.process(&bytes[..5], &mut plan).unwrap();
    assert!(!relay.verbatim_ready());
    // Mid-payload of a synced stream is fine.
    plan.clear();
    relay.process(&bytes[5..60], &mut plan).unwrap();
    assert!(relay.verbatim_ready());
    plan.clear();
    relay.process(&bytes[60..], &mut plan).unwrap();
    assert!(relay.verbatim_ready());
}
