//! Hostile input never panics and stays bounded (habit #6: fuzz every parser that sees
//! network bytes, and keep regression tests).

use std::time::{Duration, Instant};

use protocols::rtmp::chunk::write_basic_header;
use protocols::rtmp::fuzzing::*;
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

fn server(now: Instant) -> ServerSession {
    ServerSession::new(
        ServerConfig {
            srs_id: "0000000".into(),
            srs_version: "1.5.0".into(),
            s1_random: [0; 1528],
            phase_timeout: Duration::from_secs(30),
        },
        now,
    )
}

fn client(kind: StreamKind) -> ClientSession {
    ClientSession::new(
        ClientConfig {
            tc_url: "rtmp://h/live".into(),
            stream_name: "s".into(),
            kind,
            c1_random: [0; 1528],
            phase_timeout: Duration::from_secs(30),
        },
        Instant::now(),
    )
}

/// A server session past the handshake.
fn server_after_handshake() -> ServerSession {
    let mut s = server(Instant::now());
    s.handle_input(&[3u8; 3073]).unwrap();
    s
}

#[test]
fn every_prefix_of_every_small_capture_is_accepted_as_partial_input() {
    let t0 = Instant::now();
    for name in [
        "play-ffmpeg.client-to-server.bin",
        "play-ffprobe.client-to-server.bin",
        "publish-ffmpeg-busy.client-to-server.bin",
    ] {
        let input = fixture(name);
        for n in 0..=input.len() {
            let mut s = server(t0);
            s.handle_input(&input[..n])
                .expect("a prefix is never an error");
        }
    }
    for (name, kind) in [
        ("publish-ffmpeg.server-to-client.bin", StreamKind::Publish),
        (
            "publish-ffmpeg-busy.server-to-client.bin",
            StreamKind::Publish,
        ),
        (
            "publish-ffmpeg-query.server-to-client.bin",
            StreamKind::Publish,
        ),
    ] {
        let input = fixture(name);
        for n in 0..=input.len() {
            client(kind).handle_input(&input[..n]).expect("prefix");
        }
    }
}

#[test]
fn prefixes_of_the_large_captures_decode_without_error() {
    for name in [
        "play-ffmpeg.server-to-client.bin",
        "publish-ffmpeg.client-to-server.bin",
    ] {
        let input = fixture(name);
        let body = &input[3073..];
        for n in (0..body.len()).step_by(509).chain(0..2000) {
            let mut dec = ChunkDecoder::new();
            let mut rest = &body[..n];
            while !rest.is_empty() {
                let (used, _) = dec.decode(rest).expect("prefix");
                rest = &rest[used..];
            }
        }
    }
}

#[test]
fn random_bytes_never_panic_any_parser() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..4000 {
        let len = rng.gen_range(0..1500);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        fuzz_chunk_decoder(&data);
        fuzz_amf0(&data);
        fuzz_server_session(&data);
        fuzz_relay(&data);
    }
}

#[test]
fn mutated_captures_never_panic_any_parser() {
    let mut rng = StdRng::seed_from_u64(42);
    let sources = [
        fixture("publish-ffmpeg.client-to-server.bin")[3073..8000].to_vec(),
        fixture("play-ffmpeg.server-to-client.bin")[3073..8000].to_vec(),
        fixture("play-ffmpeg.client-to-server.bin")[3073..].to_vec(),
    ];
    for i in 0..3000 {
        let mut data = sources[i % sources.len()].clone();
        for _ in 0..rng.gen_range(1..8) {
            let at = rng.gen_range(0..data.len());
            data[at] = rng.gen();
        }
        let mut framed = vec![rng.gen()];
        framed.extend_from_slice(&data);
        fuzz_chunk_decoder(&framed);
        fuzz_server_session(&framed);
        fuzz_relay(&framed);
        // Each message body as AMF0, from a random offset.
        fuzz_amf0(&data[rng.gen_range(0..data.len())..]);
    }
}

#[test]
fn oversized_command_phase_message_is_rejected_before_buffering() {
    let mut s = server_after_handshake();
    let mut wire = Vec::new();
    write_basic_header(0, 3, &mut wire);
    wire.extend_from_slice(&[0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]);
    assert!(matches!(
        s.handle_input(&wire),
        Err(RtmpError::LimitExceeded { .. })
    ));
}

#[test]
fn chunk_size_zero_is_rejected_by_the_server_session() {
    let mut s = server_after_handshake();
    let mut wire = Vec::new();
    write_u32_control(&ChunkEncoder::new(), TYPE_SET_CHUNK_SIZE, 0, &mut wire);
    assert!(matches!(s.handle_input(&wire), Err(RtmpError::Protocol(_))));
}

#[test]
fn too_many_chunk_streams_are_rejected() {
    let mut dec = ChunkDecoder::new();
    let mut wire = Vec::new();
    for csid in 1000..1100u32 {
        write_basic_header(0, csid, &mut wire);
        // A long message so every stream stays "in message" after one chunk header.
        wire.extend_from_slice(&[0, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        wire.push(0);
    }
    let mut rest = &wire[..];
    let err = loop {
        match dec.decode(rest) {
            Ok((n, _)) => rest = &rest[n..],
            Err(e) => break e,
        }
    };
    assert!(matches!(
        err,
        RtmpError::LimitExceeded {
            what: "chunk streams",
            ..
        }
    ));
}

#[test]
fn deeply_nested_connect_object_is_an_error_not_a_stack_overflow() {
    let mut s = server_after_handshake();
    let mut body = vec![2, 0, 7];
    body.extend_from_slice(b"connect");
    body.push(0);
    body.extend_from_slice(&1f64.to_be_bytes());
    for _ in 0..5000 {
        body.extend_from_slice(&[3, 0, 1, b'a']);
    }
    let mut wire = Vec::new();
    ChunkEncoder::new().write_message(3, 0, TYPE_COMMAND_AMF0, 0, &body, &mut wire);
    assert!(matches!(
        s.handle_input(&wire),
        Err(RtmpError::LimitExceeded { .. })
    ));
}

#[test]
fn media_before_publish_is_a_protocol_error() {
    let input = fixture("publish-ffmpeg.client-to-server.bin");
    let mut s = server(Instant::now());
    // Up to and including connect's replies; then a video message instead of releaseStream.
    s.handle_input(&input[..3226]).unwrap();
    let mut wire = Vec::new();
    ChunkEncoder::new().write_message(6, 0, TYPE_VIDEO, 1, &[0x17, 0], &mut wire);
    assert!(matches!(s.handle_input(&wire), Err(RtmpError::Protocol(_))));
}

#[test]
fn connect_with_a_wrong_transaction_id_is_refused() {
    let mut s = server_after_handshake();
    let mut wire = Vec::new();
    Command::new("connect", 2.0, Amf0Value::Object(vec![])).write(
        &ChunkEncoder::new(),
        0,
        &mut wire,
    );
    assert!(s.handle_input(&wire).is_err());
}
