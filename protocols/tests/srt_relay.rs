//! `SrtHandshakeRelay` driven through whole recorded sessions: the caller's datagrams from the
//! captures go in, and the recorded SRS datagrams play the origin (spec §5.7, issue 5).

use std::time::{Duration, Instant};

use protocols::srt::{
    answer_induction, Dest, Handshake, HandshakeType, RejectCause, RejectCode, RelayConfig,
    RelayEvent, SrtHandshakeRelay, SrtMode, Transmit, GO_SYN_COOKIE, SRT_MAGIC,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/srt/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn drain(relay: &mut SrtHandshakeRelay) -> Vec<Transmit> {
    std::iter::from_fn(|| relay.poll_transmit()).collect()
}

fn one(relay: &mut SrtHandshakeRelay, dest: Dest) -> Vec<u8> {
    let mut t = drain(relay);
    assert_eq!(t.len(), 1, "exactly one datagram out");
    let t = t.pop().unwrap();
    assert_eq!(t.dest, dest);
    t.payload
}

/// Bytes equal except the SYN cookie (bytes 44..48).
fn assert_same_but_cookie(a: &[u8], b: &[u8]) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a[..44], b[..44]);
    assert_eq!(a[48..], b[48..]);
}

struct Run {
    relay: SrtHandshakeRelay,
    t0: Instant,
}

/// Caller induction + conclusion into a fresh relay; returns it in the routing phase.
fn start(prefix: &str) -> Run {
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    let ind = fixture(&format!("{prefix}-induction-request.bin"));
    relay.handle_caller(t0, &ind).unwrap();
    let resp = one(&mut relay, Dest::Caller);
    let h = Handshake::parse(&resp).unwrap();
    let req = Handshake::parse(&ind).unwrap();
    // §5.7: version 5, magic, the caller's id echoed, the constant cookie, 127.0.0.1.
    assert_eq!((h.version, h.encryption, h.extension), (5, 0, SRT_MAGIC));
    assert_eq!(h.handshake_type, HandshakeType::INDUCTION);
    assert_eq!(
        (h.dest_socket_id, h.socket_id),
        (req.socket_id, req.socket_id)
    );
    assert_eq!(
        (h.isn, h.mtu, h.flow_window),
        (req.isn, req.mtu, req.flow_window)
    );
    assert_eq!(h.syn_cookie, GO_SYN_COOKIE);
    assert_eq!(&resp[48..52], &[1, 0, 0, 127]);
    assert_eq!(resp.len(), 64);

    // The caller's conclusion carries the cookie it was given: ours.
    let mut conc = fixture(&format!("{prefix}-conclusion-request.bin"));
    protocols::srt::set_syn_cookie(&mut conc, GO_SYN_COOKIE).unwrap();
    relay.handle_caller(t0, &conc).unwrap();
    assert!(
        drain(&mut relay).is_empty(),
        "nothing is sent before an origin is picked"
    );
    Run { relay, t0 }
}

/// Origin leg: accept, check the replayed induction, feed SRS's induction response, check the
/// replayed conclusion carries SRS's cookie.
fn replay_to_origin(run: &mut Run, prefix: &str) {
    let t = run.t0 + Duration::from_millis(10);
    run.relay.accept_origin(t);
    let to_origin = one(&mut run.relay, Dest::Origin);
    assert_eq!(
        to_origin,
        fixture(&format!("{prefix}-induction-request.bin"))
    );
    let origin_ind = fixture(&format!("{prefix}-induction-response.bin"));
    run.relay.handle_origin(t, &origin_ind).unwrap();
    let conc = one(&mut run.relay, Dest::Origin);
    let original = fixture(&format!("{prefix}-conclusion-request.bin"));
    // The replay is the caller's conclusion with SRS's cookie: in the capture, exactly the bytes
    // ffmpeg sent SRS, so KMREQ and the SID pass through unchanged.
    assert_eq!(conc, original);
}

#[test]
fn play_handshake_replays_through_the_relay_and_the_caller_gets_srs_conclusion() {
    let mut run = start("play");
    match run.relay.poll_event() {
        Some(RelayEvent::Route {
            stream_key,
            stream_id,
            caller_socket_id,
        }) => {
            assert_eq!(stream_key, "__defaultVhost__/live/srtstream");
            assert_eq!(stream_id.mode, Some(SrtMode::Request));
            assert_eq!(caller_socket_id, 572_012_784);
        }
        other => panic!("{other:?}"),
    }
    replay_to_origin(&mut run, "play");
    let srs_answer = fixture("play-conclusion-response.bin");
    run.relay.handle_origin(run.t0, &srs_answer).unwrap();
    let to_caller = one(&mut run.relay, Dest::Caller);
    assert_same_but_cookie(&to_caller, &srs_answer);
    let h = Handshake::parse(&to_caller).unwrap();
    assert_eq!(h.syn_cookie, GO_SYN_COOKIE);
    assert_eq!((h.dest_socket_id, h.socket_id), (572_012_784, 481_679_543));
    assert_eq!(h.handshake_type, HandshakeType::CONCLUSION);
    assert_eq!(
        run.relay.poll_event(),
        Some(RelayEvent::Established {
            caller_socket_id: 572_012_784,
            origin_socket_id: 481_679_543
        })
    );
    assert!(run.relay.is_finished());
    assert_eq!(run.relay.poll_timeout(), None);
    assert_eq!(run.relay.origin_socket_id(), Some(481_679_543));
}

#[test]
fn encrypted_publish_passes_kmreq_and_kmrsp_through_byte_for_byte() {
    let mut run = start("publish-encrypted");
    let Some(RelayEvent::Route {
        stream_key,
        stream_id,
        ..
    }) = run.relay.poll_event()
    else {
        panic!("route expected");
    };
    assert_eq!(stream_key, "__defaultVhost__/live/srtenc");
    assert_eq!(stream_id.mode, Some(SrtMode::Publish));
    replay_to_origin(&mut run, "publish-encrypted");
    let srs_answer = fixture("publish-encrypted-conclusion-response.bin");
    run.relay.handle_origin(run.t0, &srs_answer).unwrap();
    let to_caller = one(&mut run.relay, Dest::Caller);
    assert_same_but_cookie(&to_caller, &srs_answer);
    assert!(Handshake::parse(&to_caller)
        .unwrap()
        .has_extension(protocols::srt::ExtensionType::KmRsp));
    assert!(matches!(
        run.relay.poll_event(),
        Some(RelayEvent::Established {
            origin_socket_id: 644_914_619,
            ..
        })
    ));
}

#[test]
fn an_origin_rejection_reaches_the_caller_as_a_rejection() {
    let mut run = start("play-no-passphrase-rejected");
    assert!(matches!(
        run.relay.poll_event(),
        Some(RelayEvent::Route { .. })
    ));
    replay_to_origin(&mut run, "play-no-passphrase-rejected");
    let rej = fixture("play-no-passphrase-rejected-conclusion-response-rejection.bin");
    run.relay.handle_origin(run.t0, &rej).unwrap();
    let to_caller = one(&mut run.relay, Dest::Caller);
    assert_same_but_cookie(&to_caller, &rej);
    assert_eq!(
        Handshake::parse(&to_caller)
            .unwrap()
            .handshake_type
            .rejection(),
        Some(RejectCode::UNSECURE)
    );
    assert_eq!(
        run.relay.poll_event(),
        Some(RelayEvent::Rejected {
            code: RejectCode::UNSECURE,
            cause: RejectCause::Origin
        })
    );
}

#[test]
fn retransmitted_inductions_and_conclusions_get_the_same_answers() {
    let mut run = start("play");
    let ind = fixture("play-induction-request.bin");
    let mut conc = fixture("play-conclusion-request.bin");
    protocols::srt::set_syn_cookie(&mut conc, GO_SYN_COOKIE).unwrap();
    let later = run.t0 + Duration::from_millis(250);
    run.relay.handle_caller(later, &ind).unwrap();
    let again = one(&mut run.relay, Dest::Caller);
    run.relay.handle_caller(later, &ind).unwrap();
    assert_eq!(
        one(&mut run.relay, Dest::Caller),
        again,
        "same induction answer"
    );

    // Routing: a conclusion retransmit says nothing and routes only once.
    run.relay.handle_caller(later, &conc).unwrap();
    assert!(drain(&mut run.relay).is_empty());
    assert!(matches!(
        run.relay.poll_event(),
        Some(RelayEvent::Route { .. })
    ));
    assert_eq!(run.relay.poll_event(), None);

    // Waiting on the origin: the caller's retransmit resends the origin-bound datagram.
    run.relay.accept_origin(later);
    let first = one(&mut run.relay, Dest::Origin);
    run.relay.handle_caller(later, &conc).unwrap();
    assert_eq!(one(&mut run.relay, Dest::Origin), first);
    run.relay
        .handle_origin(later, &fixture("play-induction-response.bin"))
        .unwrap();
    let replayed = one(&mut run.relay, Dest::Origin);
    run.relay.handle_caller(later, &conc).unwrap();
    assert_eq!(one(&mut run.relay, Dest::Origin), replayed);
    // A duplicate origin induction response is dropped, not answered.
    assert!(run
        .relay
        .handle_origin(later, &fixture("play-induction-response.bin"))
        .is_err());
    assert!(drain(&mut run.relay).is_empty());

    run.relay
        .handle_origin(later, &fixture("play-conclusion-response.bin"))
        .unwrap();
    let answer = one(&mut run.relay, Dest::Caller);
    for _ in 0..3 {
        run.relay.handle_caller(later, &conc).unwrap();
        assert_eq!(one(&mut run.relay, Dest::Caller), answer);
    }
    assert_eq!(run.relay.caller_answer(), Some(&answer[..]));
}

#[test]
fn a_silent_origin_gets_the_caller_a_timeout_rejection_in_virtual_time() {
    let mut run = start("play");
    assert!(matches!(
        run.relay.poll_event(),
        Some(RelayEvent::Route { .. })
    ));
    run.relay.accept_origin(run.t0);
    drain(&mut run.relay);
    let deadline = run.relay.poll_timeout().unwrap();
    assert_eq!(deadline, run.t0 + Duration::from_secs(3));
    run.relay
        .handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut run.relay).is_empty());
    run.relay.handle_timeout(deadline);
    let rej = one(&mut run.relay, Dest::Caller);
    let h = Handshake::parse(&rej).unwrap();
    assert_eq!(h.handshake_type.rejection(), Some(RejectCode::TIMEOUT));
    assert_eq!(h.handshake_type.0, 1016);
    assert_eq!(h.dest_socket_id, 572_012_784);
    assert_eq!(h.syn_cookie, GO_SYN_COOKIE);
    assert_eq!(h.timestamp_us, 3_000_000);
    assert_eq!(
        run.relay.poll_event(),
        Some(RelayEvent::Rejected {
            code: RejectCode::TIMEOUT,
            cause: RejectCause::Timeout
        })
    );
    // A late origin answer changes nothing.
    assert!(run
        .relay
        .handle_origin(deadline, &fixture("play-induction-response.bin"))
        .is_err());
    assert!(drain(&mut run.relay).is_empty());
}

#[test]
fn a_caller_that_never_concludes_expires_silently() {
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    relay
        .handle_caller(t0, &fixture("publish-induction-request.bin"))
        .unwrap();
    drain(&mut relay);
    relay.handle_timeout(t0 + Duration::from_secs(3));
    assert_eq!(relay.poll_event(), Some(RelayEvent::Expired));
    assert!(drain(&mut relay).is_empty());
    assert!(relay.is_finished());
}

#[test]
fn a_conclusion_with_a_foreign_cookie_is_dropped_without_state() {
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    // The capture's conclusion carries SRS's cookie, not ours.
    let err = relay
        .handle_caller(t0, &fixture("play-conclusion-request.bin"))
        .unwrap_err();
    assert_eq!(err, protocols::srt::SrtError::BadCookie);
    assert_eq!(relay.poll_event(), None);
    assert_eq!(relay.caller_socket_id(), None);
}

#[test]
fn stateless_inductions_then_a_conclusion_synthesise_the_origin_induction() {
    let t0 = Instant::now();
    let ind = fixture("publish-induction-request.bin");
    let resp = answer_induction(&ind, 0x1234_5678, protocols::srt::GO_PEER_IP, 0).unwrap();
    assert_eq!(Handshake::parse(&resp).unwrap().syn_cookie, 0x1234_5678);
    assert!(answer_induction(&fixture("publish-conclusion-request.bin"), 1, [0; 16], 0).is_err());

    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(0x1234_5678, t0), t0);
    let mut conc = fixture("publish-conclusion-request.bin");
    protocols::srt::set_syn_cookie(&mut conc, 0x1234_5678).unwrap();
    relay.handle_caller(t0, &conc).unwrap();
    assert!(matches!(relay.poll_event(), Some(RelayEvent::Route { .. })));
    relay.accept_origin(t0);
    let synth = one(&mut relay, Dest::Origin);
    let (a, b) = (
        Handshake::parse(&synth).unwrap(),
        Handshake::parse(&ind).unwrap(),
    );
    // Everything but the header timestamp matches what ffmpeg sent SRS.
    assert_eq!(synth[16..], ind[16..]);
    assert_eq!(
        (a.dest_socket_id, a.socket_id),
        (b.dest_socket_id, b.socket_id)
    );
}

#[test]
fn an_unroutable_stream_id_is_rejected_with_bad_request() {
    let t0 = Instant::now();
    let mut relay = SrtHandshakeRelay::new(RelayConfig::new(GO_SYN_COOKIE, t0), t0);
    // The play conclusion with its SID block turned into an unknown type: no stream id.
    let mut conc = fixture("play-conclusion-request.bin");
    protocols::srt::set_syn_cookie(&mut conc, GO_SYN_COOKIE).unwrap();
    conc[80..82].copy_from_slice(&9u16.to_be_bytes());
    relay.handle_caller(t0, &conc).unwrap();
    let rej = one(&mut relay, Dest::Caller);
    assert_eq!(
        Handshake::parse(&rej).unwrap().handshake_type.rejection(),
        Some(RejectCode::BAD_REQUEST)
    );
    assert_eq!(
        relay.poll_event(),
        Some(RelayEvent::Rejected {
            code: RejectCode::BAD_REQUEST,
            cause: RejectCause::StreamId(protocols::srt::SrtError::MissingStreamId)
        })
    );
}

#[test]
fn the_glue_can_reject_when_no_origin_is_available() {
    let mut run = start("play");
    assert!(matches!(
        run.relay.poll_event(),
        Some(RelayEvent::Route { .. })
    ));
    run.relay.reject(run.t0, RejectCode::BAD_GATEWAY);
    let rej = one(&mut run.relay, Dest::Caller);
    assert_eq!(Handshake::parse(&rej).unwrap().handshake_type.0, 2502);
    assert!(run.relay.is_finished());
    run.relay.accept_origin(run.t0);
    assert!(
        drain(&mut run.relay).is_empty(),
        "accept after reject is a no-op"
    );
}

#[test]
fn handshakes_for_another_socket_are_dropped() {
    let mut run = start("play");
    run.relay.poll_event();
    run.relay.accept_origin(run.t0);
    drain(&mut run.relay);
    // Another caller's induction, and an origin answer addressed to someone else.
    assert!(run
        .relay
        .handle_caller(run.t0, &fixture("publish-induction-request.bin"))
        .is_err());
    assert!(run
        .relay
        .handle_origin(run.t0, &fixture("publish-induction-response.bin"))
        .is_err());
    assert!(drain(&mut run.relay).is_empty());
}
