//! Entry point for the fuzz crate (`fuzz/fuzz_targets/srt_packet.rs`): arbitrary bytes through
//! everything that sees SRT datagrams. Must never panic.

use std::time::{Duration, Instant};

use super::extension::{decode_stream_id, HsExtension, KeyMaterialHeader};
use super::handshake::{set_syn_cookie, Handshake};
use super::packet::{set_dest_socket_id, Packet};
use super::relay::{answer_induction, RelayConfig, SrtHandshakeRelay};
use super::streamid::StreamId;

/// `data` is split into datagrams by a leading length byte each (`len`, then `len` bytes; the
/// top bit of `len` says caller or origin). Each datagram is classified, parsed as a handshake
/// with its extension walk, and fed to a relay that is routed and accepted as soon as it asks.
/// The whole input is also tried as one datagram and as a stream id.
pub fn fuzz_packet(data: &[u8]) {
    exercise_datagram(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = StreamId::parse(text) {
            let _ = id.stream_key();
        }
    }

    let now = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(0x418d_5e4e, now), now);
    let mut rest = data;
    let mut t = now;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len & 0x7F).min(tail.len());
        // Lengths are scaled so that 64-byte handshakes with extensions are reachable.
        let n = (n * 4).min(tail.len());
        let (dgram, next) = tail.split_at(n);
        rest = next;
        exercise_datagram(dgram);
        let _ = if len & 0x80 == 0 {
            relay.handle_caller(t, dgram)
        } else {
            relay.handle_origin(t, dgram)
        };
        while let Some(ev) = relay.poll_event() {
            if matches!(ev, super::relay::RelayEvent::Route { .. }) {
                relay.accept_origin(t);
            }
        }
        while relay.poll_transmit().is_some() {}
        t += Duration::from_millis(500);
        relay.handle_timeout(t);
    }
}

fn exercise_datagram(dgram: &[u8]) {
    if let Ok(p) = Packet::parse(dgram) {
        let _ = (
            p.kind(),
            p.dest_socket_id(),
            p.timestamp_us(),
            p.payload().len(),
        );
        let _ = (p.sequence_number(), p.message_number(), p.key_flags());
        let _ = (p.is_key_material(), p.is_shutdown(), p.type_specific());
    }
    if let Ok(hs) = Handshake::parse(dgram) {
        let _ = hs.handshake_type.rejection();
        for block in hs.extension_blocks().map_while(Result::ok) {
            let _ = HsExtension::parse(block.body);
            let _ = KeyMaterialHeader::parse(block.body);
            let _ = decode_stream_id(block.body);
        }
        let _ = hs.stream_id();
        // What parsed must re-serialise to the same bytes (the subtype and type-specific word
        // are not kept: the proxy only writes handshakes with both 0).
        assert_eq!(hs.to_vec().get(8..), dgram.get(8..), "handshake round trip");
        let _ = answer_induction(dgram, 1, [0; 16], 0);
    }
    let mut copy = dgram.to_vec();
    let _ = set_syn_cookie(&mut copy, 7);
    let _ = set_dest_socket_id(&mut copy, 9);
}
