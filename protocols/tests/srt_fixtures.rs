//! Every SRT fixture (shared/fixtures/srt, SRS 7.0.18 + ffmpeg/libsrt captures) through the
//! packet classifier, the handshake parser and the extension walk, with the values the fixture
//! README and the `*packets.txt` listings give.

use protocols::srt::{
    ControlType, ExtensionType, Handshake, HandshakeType, HsExtension, KeyMaterialHeader, Packet,
    PacketKind, RejectCode, SRT_MAGIC,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/srt/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Framed capture: `dir u8 ('C'|'S'), len u16 BE, payload`.
fn framed(name: &str) -> Vec<(char, Vec<u8>)> {
    let b = fixture(name);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let n = usize::from(u16::from_be_bytes([b[i + 1], b[i + 2]]));
        out.push((char::from(b[i]), b[i + 3..i + 3 + n].to_vec()));
        i += 3 + n;
    }
    out
}

fn hs(bytes: &[u8]) -> Handshake<'_> {
    Handshake::parse(bytes).expect("fixture handshake parses")
}

struct Session {
    prefix: &'static str,
    caller_id: u32,
    cookie: u32,
    srs_id: u32,
    sid: &'static str,
    encryption: u16,
}

const SESSIONS: [Session; 4] = [
    Session {
        prefix: "play",
        caller_id: 572_012_784,
        cookie: 0xa28c_ea1e,
        srs_id: 481_679_543,
        sid: "#!::r=live/srtstream,m=request",
        encryption: 0,
    },
    Session {
        prefix: "publish",
        caller_id: 22_229_873,
        cookie: 0x2b80_dc80,
        srs_id: 481_679_544,
        sid: "#!::r=live/srtstream,m=publish",
        encryption: 0,
    },
    Session {
        prefix: "play-encrypted",
        caller_id: 512_775_419,
        cookie: 0xce7a_2e64,
        srs_id: 644_914_618,
        sid: "#!::r=live/srtenc,m=request",
        encryption: 2,
    },
    Session {
        prefix: "publish-encrypted",
        caller_id: 581_944_995,
        cookie: 0xcf67_f190,
        srs_id: 644_914_619,
        sid: "#!::r=live/srtenc,m=publish",
        encryption: 2,
    },
];

#[test]
fn induction_requests_are_hsv4_style_with_dest_zero_and_no_cookie() {
    for s in SESSIONS
        .iter()
        .map(|s| (s.prefix, s.caller_id))
        .chain([("play-no-passphrase-rejected", 187_035_021)])
    {
        let b = fixture(&format!("{}-induction-request.bin", s.0));
        let h = hs(&b);
        assert_eq!(b.len(), 64, "{}", s.0);
        assert_eq!(h.dest_socket_id, 0);
        assert_eq!((h.version, h.encryption, h.extension), (4, 0, 2));
        assert_eq!(h.handshake_type, HandshakeType::INDUCTION);
        assert_eq!(h.syn_cookie, 0);
        assert_eq!(h.socket_id, s.1);
        assert_eq!(
            h.peer_ip,
            [1, 0, 0, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!((h.mtu, h.flow_window), (1500, 8192));
        assert_eq!(h.extension_blocks().count(), 0);
    }
}

#[test]
fn induction_responses_carry_version_5_the_magic_and_the_echoed_caller_id() {
    for s in &SESSIONS {
        let b = fixture(&format!("{}-induction-response.bin", s.prefix));
        let h = hs(&b);
        assert_eq!(h.version, 5);
        assert_eq!(h.extension, SRT_MAGIC);
        assert_eq!(
            h.encryption, s.encryption,
            "{}: listener advertises",
            s.prefix
        );
        assert_eq!(h.handshake_type, HandshakeType::INDUCTION);
        assert_eq!((h.dest_socket_id, h.socket_id), (s.caller_id, s.caller_id));
        assert_eq!(h.syn_cookie, s.cookie);
    }
}

#[test]
fn conclusion_requests_carry_hsreq_the_stream_id_and_kmreq_when_encrypted() {
    for s in &SESSIONS {
        let b = fixture(&format!("{}-conclusion-request.bin", s.prefix));
        let h = hs(&b);
        assert_eq!(h.handshake_type, HandshakeType::CONCLUSION);
        assert_eq!((h.dest_socket_id, h.socket_id), (0, s.caller_id));
        assert_eq!(h.syn_cookie, s.cookie);
        assert_eq!((h.version, h.encryption), (5, s.encryption));
        assert_eq!(h.stream_id().unwrap().as_deref(), Some(s.sid));
        let blocks: Vec<_> = h.extension_blocks().map(Result::unwrap).collect();
        let hsreq = HsExtension::parse(blocks[0].body).unwrap();
        assert_eq!(blocks[0].kind, ExtensionType::HsReq);
        assert_eq!(hsreq.srt_version, 0x01_05_01);
        assert_eq!(hsreq.flags, 0xbf);
        assert_eq!(
            (hsreq.recv_tsbpd_delay_ms, hsreq.send_tsbpd_delay_ms),
            (120, 0)
        );
        if s.encryption == 2 {
            assert_eq!(h.extension, 0x7);
            let km = blocks
                .iter()
                .find(|b| b.kind == ExtensionType::KmReq)
                .unwrap();
            assert_eq!(km.body.len(), 56);
            let kmh = KeyMaterialHeader::parse(km.body).unwrap();
            assert_eq!((kmh.version, kmh.packet_type, kmh.sign), (1, 2, 0x2029));
            assert_eq!((kmh.key_flags, kmh.cipher), (1, 2));
            assert_eq!((kmh.salt_len, kmh.key_len), (16, 16));
        } else {
            assert_eq!(h.extension, 0x5);
            assert!(!h.has_extension(ExtensionType::KmReq));
        }
    }
}

#[test]
fn conclusion_responses_carry_the_srs_socket_id_hsrsp_and_kmrsp_when_encrypted() {
    for s in &SESSIONS {
        let b = fixture(&format!("{}-conclusion-response.bin", s.prefix));
        let h = hs(&b);
        assert_eq!(h.handshake_type, HandshakeType::CONCLUSION);
        assert_eq!(h.handshake_type.rejection(), None);
        assert_eq!((h.dest_socket_id, h.socket_id), (s.caller_id, s.srs_id));
        assert_eq!(h.syn_cookie, s.cookie);
        let blocks: Vec<_> = h.extension_blocks().map(Result::unwrap).collect();
        let hsrsp = HsExtension::parse(blocks[0].body).unwrap();
        assert_eq!(blocks[0].kind, ExtensionType::HsRsp);
        assert_eq!((hsrsp.srt_version, hsrsp.flags), (0x01_05_03, 0xb5));
        assert_eq!(hsrsp.send_tsbpd_delay_ms, 120);
        assert_eq!(h.stream_id().unwrap(), None);
        assert_eq!(h.has_extension(ExtensionType::KmRsp), s.encryption == 2);
        if s.encryption == 2 {
            let km = blocks
                .iter()
                .find(|b| b.kind == ExtensionType::KmRsp)
                .unwrap();
            assert_eq!(km.body.len(), 56);
        }
    }
}

#[test]
fn the_rejected_conclusion_is_type_1011_unsecure_without_extensions() {
    let req = fixture("play-no-passphrase-rejected-conclusion-request.bin");
    let h = hs(&req);
    assert_eq!(
        h.stream_id().unwrap().as_deref(),
        Some("#!::r=live/srtenc,m=request")
    );
    assert_eq!(
        (h.socket_id, h.syn_cookie, h.encryption),
        (187_035_021, 0xf077_e516, 2)
    );
    let b = fixture("play-no-passphrase-rejected-conclusion-response-rejection.bin");
    let r = hs(&b);
    assert_eq!(b.len(), 64);
    assert_eq!(r.handshake_type, HandshakeType(1011));
    assert_eq!(r.handshake_type.rejection(), Some(RejectCode::UNSECURE));
    assert_eq!(RejectCode::UNSECURE.reason(), 11);
    assert_eq!((r.dest_socket_id, r.socket_id), (187_035_021, 644_914_617));
    assert_eq!(r.extension_blocks().count(), 0);
    let ir = fixture("play-no-passphrase-rejected-induction-response.bin");
    assert_eq!(hs(&ir).encryption, 2);
}

#[test]
fn first_data_packets_are_data_addressed_to_the_peer_with_the_listed_key_flags() {
    for (prefix, dest, kk, ts_payload) in [
        ("play", 572_012_784, 0, true),
        ("publish", 481_679_544, 0, true),
        ("play-encrypted", 512_775_419, 1, false),
        ("publish-encrypted", 644_914_619, 1, false),
    ] {
        let b = fixture(&format!("{prefix}-first-data.bin"));
        let p = Packet::parse(&b).unwrap();
        assert_eq!(p.kind(), PacketKind::Data, "{prefix}");
        assert_eq!(p.dest_socket_id(), dest, "{prefix}");
        assert_eq!(p.key_flags(), Some(kk), "{prefix}");
        assert_eq!(p.message_number(), Some(1), "{prefix}");
        assert_eq!(p.payload()[0] == 0x47, ts_payload, "{prefix}");
        assert!(Handshake::parse(&b).is_err());
    }
}

/// `(direction, length, kind, dst)` per line of a `*packets.txt` listing.
fn listing(name: &str) -> Vec<(char, usize, String, u32)> {
    let text = String::from_utf8(fixture(name)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = f
                .iter()
                .find_map(|w| w.strip_prefix("dst="))
                .unwrap()
                .parse()
                .unwrap();
            (
                f[1].chars().next().unwrap(),
                f[2].parse().unwrap(),
                f[3].to_owned(),
                dst,
            )
        })
        .collect()
}

fn kind_name(p: &Packet<'_>) -> &'static str {
    match p.kind() {
        PacketKind::Data => "DATA",
        PacketKind::Control { control_type, .. } => match control_type {
            ControlType::Handshake => "HANDSHAKE",
            ControlType::Ack => "ACK",
            ControlType::AckAck => "ACKACK",
            ControlType::Nak => "NAK",
            ControlType::Keepalive => "KEEPALIVE",
            ControlType::Shutdown => "SHUTDOWN",
            _ => "OTHER",
        },
    }
}

#[test]
fn every_datagram_of_every_capture_classifies_as_its_listing_says() {
    for prefix in [
        "play",
        "publish",
        "play-encrypted",
        "publish-encrypted",
        "play-no-passphrase-rejected",
    ] {
        let datagrams = framed(&format!("{prefix}-udp.bin"));
        let expected = listing(&format!("{prefix}-packets.txt"));
        assert_eq!(datagrams.len(), expected.len(), "{prefix}: datagram count");
        for (i, ((dir, d), (edir, elen, ekind, edst))) in
            datagrams.iter().zip(&expected).enumerate()
        {
            let p = Packet::parse(d).unwrap();
            assert_eq!((*dir, d.len()), (*edir, *elen), "{prefix} #{i}");
            assert_eq!(kind_name(&p), ekind, "{prefix} #{i}");
            assert_eq!(p.dest_socket_id(), *edst, "{prefix} #{i}");
            if p.is_handshake() {
                hs(d).extension_blocks().for_each(|b| {
                    b.unwrap();
                });
            }
        }
    }
}

#[test]
fn the_standalone_handshake_fixtures_are_the_first_datagrams_of_their_captures() {
    for s in &SESSIONS {
        let d = framed(&format!("{}-udp.bin", s.prefix));
        for (i, part) in [
            "induction-request",
            "induction-response",
            "conclusion-request",
            "conclusion-response",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                d[i].1,
                fixture(&format!("{}-{part}.bin", s.prefix)),
                "{part}"
            );
        }
    }
}

#[test]
fn handshakes_reserialise_byte_for_byte() {
    for s in &SESSIONS {
        for part in [
            "induction-request",
            "conclusion-request",
            "conclusion-response",
        ] {
            let b = fixture(&format!("{}-{part}.bin", s.prefix));
            assert_eq!(hs(&b).to_vec(), b, "{} {part}", s.prefix);
        }
    }
}
