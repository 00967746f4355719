//! The WebRTC module on real captures: aiortc 1.16.0 ↔ SRS 7.0.18 WHIP/WHEP exchanges and their
//! UDP media (shared/fixtures/webrtc, described in shared/fixtures/README.md).

use std::net::IpAddr;

use protocols::webrtc::{
    classify, exchange_session_key, ice_credentials, replace_string_field, rewrite_answer, route,
    sdp_field, sdp_text, session_key, validate_answer, DatagramKind, IceCredentials, SdpError,
    SignalKind, StunClass, StunMessage,
};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../shared/fixtures/webrtc/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Head and body of a saved HTTP message.
fn http(path: &str) -> (String, String) {
    let text = String::from_utf8(fixture(path)).expect("fixtures are ASCII");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line after the head");
    (head.to_owned(), body.to_owned())
}

struct Session {
    dir: &'static str,
    offer: IceCredentials<'static>,
    answer: IceCredentials<'static>,
    key: &'static str,
}

const SESSIONS: [Session; 2] = [
    Session {
        dir: "whep",
        offer: IceCredentials {
            ufrag: "di4q",
            pwd: "hnUdl0A44MoNzV32Rvmp3O",
        },
        answer: IceCredentials {
            ufrag: "02q4474o",
            pwd: "3054417a4246n0c06p19206o0x17x076",
        },
        key: "02q4474o:di4q",
    },
    Session {
        dir: "whip",
        offer: IceCredentials {
            ufrag: "qVrH",
            pwd: "F9uVHLxDCvevpglknroGqI",
        },
        answer: IceCredentials {
            ufrag: "2m560r0i",
            pwd: "234ha75e23v31i525570l7l5bsz36jio",
        },
        key: "2m560r0i:qVrH",
    },
];

/// `dir u8, len u16 BE, payload` records (fixtures README, "Framed datagram files").
fn datagrams(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let dir = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        out.push((dir, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    out
}

#[test]
fn offers_and_answers_yield_the_documented_ice_credentials_and_session_key() {
    for s in &SESSIONS {
        let (req_head, offer) = http(&format!("{}/request.http", s.dir));
        let (_, answer) = http(&format!("{}/response.http", s.dir));
        assert_eq!(ice_credentials(&offer), Some(s.offer), "{} offer", s.dir);
        assert_eq!(ice_credentials(&answer), Some(s.answer), "{} answer", s.dir);
        assert_eq!(
            exchange_session_key(&offer, &answer).as_deref(),
            Some(s.key),
            "{}",
            s.dir
        );
        let target = req_head.split(' ').nth(1).expect("a request line");
        let want = if s.dir == "whip" {
            SignalKind::Whip
        } else {
            SignalKind::Whep
        };
        assert_eq!(route(target), Some(want));
    }
}

#[test]
fn the_location_of_an_answer_carries_the_session_key_and_routes_back_to_whip() {
    for s in &SESSIONS {
        let (head, _) = http(&format!("{}/response.http", s.dir));
        let location = head
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .expect("SRS sends Location");
        assert!(location.ends_with(&format!("&session={}", s.key)));
        assert_eq!(route(location), Some(SignalKind::Whip));
    }
    let (head, body) = http("whip/delete-request.http");
    let target = head
        .strip_prefix("DELETE ")
        .and_then(|r| r.split(' ').next());
    assert_eq!(target.and_then(route), Some(SignalKind::Whip));
    assert!(body.is_empty());
}

#[test]
fn rewrites_the_srs_answer_candidate_to_the_proxy_port() {
    for s in &SESSIONS {
        let (_, answer) = http(&format!("{}/response.http", s.dir));
        let out = rewrite_answer(&answer, &[51800], 8000, None).unwrap();
        let before = answer.matches("127.0.0.1 51800 typ host").count();
        assert_eq!(before, 2, "one candidate per m-section");
        assert_eq!(out.matches("127.0.0.1 8000 typ host").count(), before);
        assert!(!out.contains("51800"));
        // Only the port changed: same lines, same CRLF endings.
        // Two candidates, each one digit shorter ("51800" → "8000").
        assert_eq!(out.len(), answer.len() - 2);
        assert_eq!(out.matches("\r\n").count(), answer.matches("\r\n").count());
        assert_eq!(
            out.replace(" 8000 typ host", " 51800 typ host"),
            answer,
            "{}",
            s.dir
        );
        validate_answer(&out).unwrap();
        assert_eq!(ice_credentials(&out), Some(s.answer));
    }
}

#[test]
fn rewrites_the_srs_answer_candidate_to_a_public_ip_too() {
    let (_, answer) = http("whep/response.http");
    let v4: IpAddr = "203.0.113.9".parse().unwrap();
    let out = rewrite_answer(&answer, &[51800], 8000, Some(v4)).unwrap();
    assert_eq!(
        out.matches("a=candidate:0 1 udp 2130706431 203.0.113.9 8000 typ host generation 0\r\n")
            .count(),
        2
    );
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let out = rewrite_answer(&answer, &[51800], 8000, Some(v6)).unwrap();
    assert!(out.contains(" 2001:db8::1 8000 typ host "));
    validate_answer(&out).unwrap();
    // The c= lines and the o= line are not candidates and stay as SRS wrote them.
    assert!(out.contains("c=IN IP4 0.0.0.0\r\n"));
}

#[test]
fn candidates_on_ports_the_origin_did_not_register_are_left_alone() {
    let (_, answer) = http("whip/response.http");
    let out = rewrite_answer(&answer, &[51801, 8000], 9000, None).unwrap();
    assert_eq!(out, answer);
}

#[test]
fn validate_accepts_srs_answers_and_rejects_truncated_or_foreign_ones() {
    for s in &SESSIONS {
        let (_, answer) = http(&format!("{}/response.http", s.dir));
        validate_answer(&answer).unwrap();
        // A cut mid-line (no line ending) fails, and so does a cut at a line boundary before
        // the last m-section's `a=mid:` (credentials, media, BUNDLE mids or candidate
        // missing). Later line-boundary cuts are the HTTP layer's to catch (Content-Length).
        let last_mid = answer.rfind("a=mid:").unwrap();
        for cut in 0..answer.len() - 1 {
            let part = &answer[..cut];
            if part.ends_with('\n') && cut > last_mid {
                continue;
            }
            assert!(validate_answer(part).is_err(), "{} cut at {cut}", s.dir);
        }
        let (_, offer) = http(&format!("{}/request.http", s.dir));
        // aiortc offers are valid SDP too (they carry candidates).
        validate_answer(&offer).unwrap();
    }
    assert_eq!(validate_answer(""), Err(SdpError::NotSdp));
    assert_eq!(
        validate_answer("{\"code\":400,\"server\":\"vid-x\"}"),
        Err(SdpError::NotSdp)
    );
    assert_eq!(
        validate_answer("<html>502 Bad Gateway</html>\r\n"),
        Err(SdpError::NotSdp)
    );
    assert_eq!(sdp_text(b"v=0\r\n\xff\r\n"), Err(SdpError::NotUtf8));
}

#[test]
fn an_answer_whose_only_candidate_is_dropped_is_rejected() {
    let (_, answer) = http("whip/response.http");
    let tcp = answer.replace(
        "udp 2130706431 127.0.0.1 51800 typ host generation 0",
        "tcp 2130706431 127.0.0.1 51800 typ host tcptype passive",
    );
    let out = rewrite_answer(&tcp, &[51800], 8000, None).unwrap();
    assert!(!out.contains("a=candidate"));
    assert_eq!(validate_answer(&out), Err(SdpError::NoCandidate));
}

#[test]
fn lf_only_answers_keep_their_line_endings() {
    let (_, answer) = http("whep/response.http");
    let lf = answer.replace("\r\n", "\n");
    let out = rewrite_answer(&lf, &[51800], 8000, None).unwrap();
    assert!(!out.contains('\r'));
    assert_eq!(out, lf.replace(" 51800 typ host", " 8000 typ host"));
    validate_answer(&out).unwrap();
    assert_eq!(ice_credentials(&lf), ice_credentials(&answer));
}

#[test]
fn legacy_envelopes_around_the_fixture_sdp_round_trip() {
    let (_, offer) = http("whep/request.http");
    let (_, answer) = http("whep/response.http");
    let mut req = br#"{"api":"http://127.0.0.1:1985/rtc/v1/play/","tid":"x1","streamurl":"webrtc://127.0.0.1/live/livestream","clientip":null,"sdp":"#.to_vec();
    protocols::webrtc::escape_into(&offer, &mut req);
    req.push(b'}');
    let field = sdp_field(&req).unwrap();
    assert_eq!(field.value, offer);
    assert_eq!(ice_credentials(&field.value).unwrap().ufrag, "di4q");

    let mut resp = br#"{"code":0,"server":"vid-1","service":"s","pid":"9","sdp":"#.to_vec();
    protocols::webrtc::escape_into(&answer, &mut resp);
    resp.extend_from_slice(br#","sessionid":"02q4474o:di4q"}"#);
    let field = sdp_field(&resp).unwrap();
    let rewritten = rewrite_answer(&field.value, &[51800], 8000, None).unwrap();
    let out = replace_string_field(&resp, &field, &rewritten);
    assert_eq!(sdp_field(&out).unwrap().value, rewritten);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(r#"{"code":0,"server":"vid-1","service":"s","pid":"9","sdp":"v=0\r\n"#)
    );
    assert!(text.ends_with(r#"generation 0\r\n","sessionid":"02q4474o:di4q"}"#));
    assert!(text.contains(r#"127.0.0.1 8000 typ host"#));
}

#[test]
fn the_saved_binding_requests_carry_the_session_key_as_username() {
    for s in &SESSIONS {
        let bytes = fixture(&format!("{}/stun-binding-request.bin", s.dir));
        assert_eq!(classify(&bytes), DatagramKind::Stun);
        let msg = StunMessage::parse(&bytes).unwrap();
        assert!(msg.is_binding_request());
        assert_eq!(msg.username(), Ok(Some(s.key)));
        assert_eq!(
            session_key(s.key),
            Some((s.answer.ufrag, s.offer.ufrag)),
            "{}",
            s.dir
        );
        // USERNAME, PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY, FINGERPRINT.
        let kinds: Vec<u16> = msg.attributes().map(|a| a.kind).collect();
        assert_eq!(kinds, [0x0006, 0x0024, 0x802A, 0x0008, 0x8028]);
    }
    let whep = fixture("whep/stun-binding-request.bin");
    let tid = StunMessage::parse(&whep).unwrap().transaction_id().to_vec();
    assert_eq!(
        tid,
        [0x6c, 0xe1, 0xc5, 0x12, 0x07, 0x3e, 0x83, 0xee, 0x57, 0xc5, 0xac, 0x47]
    );
}

#[test]
fn every_captured_datagram_is_classified_and_every_stun_message_parses() {
    for s in &SESSIONS {
        let bytes = fixture(&format!("{}/udp.bin", s.dir));
        let mut counts = [0usize; 4];
        let mut stun_requests = 0;
        let mut stun_responses = 0;
        for (dir, dgram) in datagrams(&bytes) {
            assert!(dir == b'C' || dir == b'S');
            match classify(dgram) {
                DatagramKind::Stun => {
                    counts[0] += 1;
                    let msg = StunMessage::parse(dgram).unwrap();
                    assert_eq!(msg.method(), 1, "Binding");
                    // Both the client's checks and SRS's answers echo the session key.
                    assert_eq!(msg.username(), Ok(Some(s.key)), "{} {}", s.dir, dir as char);
                    match (dir, msg.class()) {
                        (b'C', StunClass::Request) => stun_requests += 1,
                        (b'S', StunClass::SuccessResponse) => stun_responses += 1,
                        other => panic!("unexpected STUN {other:?}"),
                    }
                }
                DatagramKind::Dtls => counts[1] += 1,
                DatagramKind::Rtp => counts[2] += 1,
                DatagramKind::Other => counts[3] += 1,
            }
            if classify(dgram) != DatagramKind::Stun {
                assert!(StunMessage::parse(dgram).is_err());
            }
        }
        assert_eq!((stun_requests, stun_responses), (2, 2), "{}", s.dir);
        assert_eq!(counts[0], 4);
        assert_eq!(
            counts[1], 4,
            "{}: ClientHello, two server flights, client flight",
            s.dir
        );
        assert_eq!(counts[2], 40 - 8, "{}: the rest is SRTP/SRTCP", s.dir);
        assert_eq!(counts[3], 0);
    }
}
