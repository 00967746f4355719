//! Hostile input for the WebRTC module never panics (spec §10 #20: the Go proxy crashes on
//! truncated STUN) and is refused with a classified error where it must be.

use protocols::webrtc::fuzzing::fuzz_stun_sdp;
use protocols::webrtc::{
    ice_credentials, rewrite_answer, sdp_field, sdp_text, string_field, validate_answer, SdpError,
    SignalError, StunError, StunMessage, MAX_ENVELOPE_LEN, MAX_SDP_LEN,
};
use rand::{Rng, SeedableRng};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../shared/fixtures/webrtc/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn stun_requests() -> [Vec<u8>; 2] {
    [
        fixture("whep/stun-binding-request.bin"),
        fixture("whip/stun-binding-request.bin"),
    ]
}

#[test]
fn every_prefix_of_a_binding_request_is_refused_without_panicking() {
    for whole in stun_requests() {
        for cut in 0..whole.len() {
            let part = &whole[..cut];
            assert!(StunMessage::parse(part).is_err(), "prefix {cut}");
            fuzz_stun_sdp(part);
        }
        assert!(StunMessage::parse(&whole).is_ok());
    }
}

#[test]
fn a_prefix_with_its_length_patched_still_never_reads_past_the_end() {
    // Fix the header length to each truncation so the message-level check passes and the
    // attribute walk is what must catch the cut.
    for whole in stun_requests() {
        for cut in 20..whole.len() {
            let mut part = whole[..cut].to_vec();
            let len = (cut - 20) as u16;
            part[2..4].copy_from_slice(&len.to_be_bytes());
            let r = StunMessage::parse(&part);
            if cut % 4 != 0 {
                assert!(r.is_err(), "cut {cut}");
            }
            if let Ok(msg) = r {
                let _ = msg.username();
                let _ = msg.attributes().count();
            }
        }
    }
}

#[test]
fn attribute_lengths_past_the_end_are_truncation_errors() {
    let mut m = stun_requests()[0].clone();
    // USERNAME length 13 → 0xFFFF.
    m[22..24].copy_from_slice(&[0xFF, 0xFF]);
    assert_eq!(
        StunMessage::parse(&m),
        Err(StunError::TruncatedAttribute { offset: 20 })
    );
    // The last attribute (FINGERPRINT at 84) claims 8 bytes but 4 remain.
    let mut m = stun_requests()[0].clone();
    m[86..88].copy_from_slice(&[0, 8]);
    assert_eq!(
        StunMessage::parse(&m),
        Err(StunError::TruncatedAttribute { offset: 84 })
    );
}

#[test]
fn odd_padding_and_header_faults_are_classified() {
    let base = stun_requests()[0].clone();
    // Header length not a multiple of 4, with one byte appended.
    let mut m = base.clone();
    m.push(0);
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        StunMessage::parse(&m),
        Err(StunError::LengthMismatch { .. })
    ));
    // Trailing bytes beyond the declared length (Go refuses too).
    let mut m = base.clone();
    m.extend_from_slice(&[0; 4]);
    assert!(matches!(
        StunMessage::parse(&m),
        Err(StunError::LengthMismatch { .. })
    ));
    let mut m = base.clone();
    m[4] ^= 1;
    assert_eq!(StunMessage::parse(&m), Err(StunError::BadMagicCookie));
    let mut m = base.clone();
    m[0] |= 0x80;
    assert_eq!(StunMessage::parse(&m), Err(StunError::NotStun));
    // Non-zero padding bytes are ignored (RFC 8489 §14).
    let mut m = base.clone();
    m[37..40].copy_from_slice(&[0xAA, 0xBB, 0xCC]);
    assert_eq!(
        StunMessage::parse(&m).unwrap().username(),
        Ok(Some("02q4474o:di4q"))
    );
    // A USERNAME that is not UTF-8 parses as a message but yields no name.
    let mut m = base;
    m[24] = 0xFF;
    assert_eq!(
        StunMessage::parse(&m).unwrap().username(),
        Err(StunError::BadUsername)
    );
}

#[test]
fn random_bytes_and_mutated_captures_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5745_4252_5443);
    let seeds = [
        fixture("whep/stun-binding-request.bin"),
        fixture("whep/response.http"),
        fixture("whip/request.http"),
    ];
    for i in 0..3000 {
        let mut data = if i % 3 == 0 {
            let n = rng.gen_range(0..300);
            (0..n).map(|_| rng.gen()).collect::<Vec<u8>>()
        } else {
            seeds[i % seeds.len()].clone()
        };
        for _ in 0..rng.gen_range(0..8) {
            if data.is_empty() {
                break;
            }
            let at = rng.gen_range(0..data.len());
            data[at] = rng.gen();
        }
        if i % 5 == 0 && !data.is_empty() {
            data.truncate(rng.gen_range(0..data.len()));
        }
        fuzz_stun_sdp(&data);
    }
}

#[test]
fn huge_and_non_utf8_sdp_is_refused() {
    let huge = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_LEN / 5 + 1));
    assert!(matches!(
        rewrite_answer(&huge, &[1], 2, None),
        Err(SdpError::TooLarge { .. })
    ));
    assert!(matches!(
        validate_answer(&huge),
        Err(SdpError::TooLarge { .. })
    ));
    assert!(matches!(
        sdp_text(huge.as_bytes()),
        Err(SdpError::TooLarge { .. })
    ));
    fuzz_stun_sdp(huge.as_bytes());
    assert_eq!(
        sdp_text(b"v=0\r\na=ice-ufrag:\xC3\x28\r\n"),
        Err(SdpError::NotUtf8)
    );
    // One enormous candidate line with thousands of fields stays linear and untouched.
    let long = format!(
        "v=0\r\na=candidate:0 1 udp 1 1.2.3.4 9 typ host{}\r\n",
        " x".repeat(20_000)
    );
    assert_eq!(rewrite_answer(&long, &[1], 2, None).unwrap(), long);
    // Credentials: empty or absurdly long values are not credentials.
    assert_eq!(ice_credentials("a=ice-ufrag:\r\na=ice-pwd:p\r\n"), None);
    let big = format!("a=ice-ufrag:{}\na=ice-pwd:p\n", "u".repeat(300));
    assert_eq!(ice_credentials(&big), None);
}

#[test]
fn malformed_candidates_fail_validation_and_are_not_rewritten() {
    for bad in [
        "a=candidate:0 1 udp 1 1.2.3.4 99999 typ host",
        "a=candidate:0 1 udp 1 1.2.3.4 51800 host",
        "a=candidate:0 1 udp 1 1.2.3.4 51800",
        "a=candidate:0  1 udp 1 1.2.3.4 51800 typ host",
        "a=candidate:",
    ] {
        let sdp = format!("v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:p\r\nm=audio 9 X 0\r\n{bad}\r\n");
        assert!(
            matches!(
                validate_answer(&sdp),
                Err(SdpError::MalformedCandidate { line: 5 })
            ),
            "{bad}"
        );
        assert_eq!(rewrite_answer(&sdp, &[51800], 2, None).unwrap(), sdp);
    }
}

#[test]
fn hostile_envelopes_are_refused_with_a_reason() {
    let huge = vec![b' '; MAX_ENVELOPE_LEN + 1];
    assert!(matches!(
        sdp_field(&huge),
        Err(SignalError::TooLarge { .. })
    ));
    assert_eq!(sdp_field(b"{\"sdp\":\"\xC0\"}"), Err(SignalError::NotUtf8));
    let deep = format!("{{\"a\":{}", "[".repeat(100_000));
    assert!(matches!(
        sdp_field(deep.as_bytes()),
        Err(SignalError::Malformed { .. })
    ));
    for bad in [
        "",
        "[]",
        "\"sdp\"",
        "{",
        "{\"sdp\"}",
        "{\"sdp\":}",
        "{\"sdp\":\"a\",}",
        "{\"sdp\":\"a\\x\"}",
        "{\"sdp\":\"a\\u12\"}",
        "{\"sdp\":\"line\nbreak\"}",
        "{\"a\":[1,2},\"sdp\":\"v\"}",
        "{\"sdp\":\"v\"}}",
    ] {
        assert!(sdp_field(bad.as_bytes()).is_err(), "{bad:?}");
        fuzz_stun_sdp(bad.as_bytes());
    }
    // A key spelled with escapes is the same key (RFC 8259 §7), so it is a duplicate.
    assert_eq!(
        sdp_field(br#"{"sdp":"a","\u0073dp":"b"}"#),
        Err(SignalError::DuplicateKey)
    );
    // Nested "sdp" keys are not the top-level field.
    assert_eq!(
        sdp_field(br#"{"x":{"sdp":"inner"},"sdp":"outer"}"#)
            .unwrap()
            .value,
        "outer"
    );
    assert_eq!(string_field(br#"{"x":{"sdp":"inner"}}"#, "sdp"), Ok(None));
}
