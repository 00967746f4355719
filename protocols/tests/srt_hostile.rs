//! Hostile SRT input never panics and never creates relay state (spec §10 #20; the Go proxy
//! panics on a short extension block).

use std::time::{Duration, Instant};

use protocols::srt::{
    fuzzing::fuzz_packet, set_syn_cookie, Handshake, Packet, RelayConfig, RelayEvent, SrtError,
    SrtHandshakeRelay, GO_SYN_COOKIE,
};
use rand::{Rng, SeedableRng};

const FILES: [&str; 13] = [
    "play-induction-request.bin",
    "play-induction-response.bin",
    "play-conclusion-request.bin",
    "play-conclusion-response.bin",
    "play-first-data.bin",
    "publish-encrypted-conclusion-request.bin",
    "publish-encrypted-conclusion-response.bin",
    "play-encrypted-conclusion-request.bin",
    "play-no-passphrase-rejected-conclusion-request.bin",
    "play-no-passphrase-rejected-conclusion-response-rejection.bin",
    "publish-conclusion-request.bin",
    "play-udp.bin",
    "publish-encrypted-udp.bin",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/srt/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn relay_with_caller_input(data: &[u8]) -> SrtHandshakeRelay {
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    let _ = relay.handle_caller(t0, data);
    let _ = relay.handle_origin(t0, data);
    relay.accept_origin(t0);
    let _ = relay.handle_origin(t0, data);
    relay.handle_timeout(t0 + Duration::from_secs(10));
    while relay.poll_transmit().is_some() {}
    while relay.poll_event().is_some() {}
    relay
}

#[test]
fn every_prefix_of_every_fixture_is_handled_without_panic() {
    for name in FILES {
        let b = fixture(name);
        for n in 0..=b.len().min(2048) {
            let d = &b[..n];
            if let Ok(p) = Packet::parse(d) {
                let _ = (p.kind(), p.sequence_number(), p.key_flags(), p.payload());
            }
            if let Ok(h) = Handshake::parse(d) {
                let _ = h.extension_blocks().count();
                let _ = h.stream_id();
            }
            relay_with_caller_input(d);
            fuzz_packet(d);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5e7);
    for _ in 0..3000 {
        let len = rng.gen_range(0..300);
        let mut d: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Half of them look like handshakes, so the deeper code runs.
        if rng.gen_bool(0.5) && d.len() >= 4 {
            d[..4].copy_from_slice(&0x8000_0000u32.to_be_bytes());
        }
        relay_with_caller_input(&d);
        fuzz_packet(&d);
    }
}

fn conclusion_with_our_cookie() -> Vec<u8> {
    let mut c = fixture("play-conclusion-request.bin");
    set_syn_cookie(&mut c, GO_SYN_COOKIE).unwrap();
    c
}

#[test]
fn two_or_three_trailing_bytes_after_the_extensions_are_a_truncation_not_a_crash() {
    for extra in 1..=3 {
        let mut c = conclusion_with_our_cookie();
        c.extend(std::iter::repeat(0xAB).take(extra));
        let h = Handshake::parse(&c).unwrap();
        let blocks: Vec<_> = h.extension_blocks().collect();
        assert_eq!(blocks.len(), 3);
        assert!(blocks[..2].iter().all(Result::is_ok));
        assert_eq!(blocks[2], Err(SrtError::TruncatedExtension { offset: 116 }));
        // The SID comes before the damage, so the route still works.
        assert_eq!(
            h.stream_id().unwrap().as_deref(),
            Some("#!::r=live/srtstream,m=request")
        );
        let relay = relay_with_caller_input(&c);
        assert_eq!(relay.caller_socket_id(), Some(572_012_784));
    }
}

#[test]
fn extension_lengths_pointing_past_the_end_are_errors() {
    let mut c = conclusion_with_our_cookie();
    // The HSREQ block (at 64) claims 0xFFFF words.
    c[66..68].copy_from_slice(&0xFFFFu16.to_be_bytes());
    let h = Handshake::parse(&c).unwrap();
    assert_eq!(
        h.extension_blocks().collect::<Vec<_>>(),
        vec![Err(SrtError::TruncatedExtension { offset: 64 })]
    );
    assert_eq!(
        h.stream_id(),
        Err(SrtError::TruncatedExtension { offset: 64 })
    );
    // The caller is refused (bad request), nothing goes to an origin.
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    relay.handle_caller(t0, &c).unwrap();
    assert!(matches!(
        relay.poll_event(),
        Some(RelayEvent::Rejected { .. })
    ));
}

#[test]
fn garbage_and_non_handshakes_create_no_relay_state() {
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    for d in [
        &b""[..],
        &[0x80, 0, 0, 0][..],
        &fixture("play-first-data.bin")[..],
        &fixture("play-induction-request.bin")[..40],
        &[0u8; 64][..],
    ] {
        assert!(relay.handle_caller(t0, d).is_err());
        assert!(relay.handle_origin(t0, d).is_err());
    }
    assert_eq!(relay.caller_socket_id(), None);
    assert!(relay.poll_transmit().is_none());
    assert!(relay.poll_event().is_none());
}

#[test]
fn oversized_handshakes_are_refused() {
    let mut c = conclusion_with_our_cookie();
    c.resize(4000, 0);
    assert!(matches!(
        Handshake::parse(&c),
        Err(SrtError::TooLong { .. })
    ));
}
