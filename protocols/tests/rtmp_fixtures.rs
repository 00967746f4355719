//! The RTMP layer against real ffmpeg/ffprobe ↔ SRS 7.0.18 captures (shared/fixtures/rtmp).

use std::time::{Duration, Instant};

use protocols::rtmp::amf0::Amf0Value;
use protocols::rtmp::message::*;
use protocols::rtmp::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

const HANDSHAKE_BOTH: usize = 1 + 1536 + 1536;

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
        let (n, m) = dec.decode(input).expect("fixture decodes");
        input = &input[n..];
        out.extend(m);
    }
    out
}

fn type_name(t: u8) -> &'static str {
    match t {
        TYPE_SET_CHUNK_SIZE => "SetChunkSize",
        TYPE_USER_CONTROL => "UserControl",
        TYPE_WINDOW_ACK_SIZE => "WindowAckSize",
        TYPE_SET_PEER_BANDWIDTH => "SetPeerBandwidth",
        TYPE_AUDIO => "Audio",
        TYPE_VIDEO => "Video",
        TYPE_DATA_AMF0 => "DataAMF0",
        TYPE_COMMAND_AMF0 => "CommandAMF0",
        _ => "Other",
    }
}

/// `(ts, csid, msid, "Type(len)")` rows of a `.messages.txt` listing.
fn listing(name: &str) -> Vec<(u32, u32, u32, String)> {
    let text = String::from_utf8(fixture(name)).unwrap();
    text.lines()
        .filter(|l| l.starts_with('@'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str, p: &str| s.strip_prefix(p).unwrap().parse::<u32>().unwrap();
            (
                num(f[2], "ts="),
                num(f[3], "csid="),
                num(f[4], "msid="),
                f[5].to_string(),
            )
        })
        .collect()
}

fn is_media(m: &RtmpMessage) -> bool {
    m.type_id == TYPE_AUDIO || m.type_id == TYPE_VIDEO
}

/// Same selection as the listing: every non-media message and the first six media messages.
fn as_listing(msgs: &[RtmpMessage]) -> Vec<(u32, u32, u32, String)> {
    let mut media = 0;
    msgs.iter()
        .filter(|m| {
            if is_media(m) {
                media += 1;
                media <= 6
            } else {
                true
            }
        })
        .map(|m| {
            let row = format!("{}({})", type_name(m.type_id), m.payload.len());
            (m.timestamp, m.csid, m.stream_id, row)
        })
        .collect()
}

fn command(m: &RtmpMessage) -> Command {
    Command::decode(m.type_id, &m.payload)
        .unwrap()
        .expect("a command")
}

fn decode_fixture(name: &str) -> Vec<RtmpMessage> {
    let bytes = fixture(&format!("{name}.bin"));
    decode_all(&mut ChunkDecoder::new(), &bytes[HANDSHAKE_BOTH..])
}

#[test]
fn every_fixture_decodes_to_its_listing() {
    for name in [
        "play-ffmpeg.client-to-server",
        "play-ffmpeg.server-to-client",
        "play-ffprobe.client-to-server",
        "play-ffprobe.server-to-client",
        "publish-ffmpeg-busy.client-to-server",
        "publish-ffmpeg-busy.server-to-client",
        "publish-ffmpeg-query.client-to-server",
        "publish-ffmpeg-query.server-to-client",
        "publish-ffmpeg.client-to-server",
        "publish-ffmpeg.server-to-client",
    ] {
        let msgs = decode_fixture(name);
        let want = listing(&format!("{name}.messages.txt"));
        assert_eq!(as_listing(&msgs), want, "{name}");
    }
}

#[test]
fn publish_capture_has_78_messages_70_media_and_switches_to_chunk_size_60000() {
    let msgs = decode_fixture("publish-ffmpeg.client-to-server");
    assert_eq!(msgs.len(), 78);
    assert_eq!(msgs.iter().filter(|m| is_media(m)).count(), 70);
    assert_eq!(msgs[1].type_id, TYPE_SET_CHUNK_SIZE);
    assert_eq!(read_u32_control(&msgs[1].payload).unwrap(), 60000);
    let connect = command(&msgs[0]);
    assert_eq!(connect.name, "connect");
    assert_eq!(connect.transaction_id, 1.0);
    assert_eq!(
        connect
            .command_object
            .get("tcUrl")
            .and_then(Amf0Value::as_str),
        Some("rtmp://127.0.0.1:51936/live")
    );
    assert_eq!(
        connect
            .command_object
            .get("flashVer")
            .and_then(Amf0Value::as_str),
        Some("FMLE/3.0 (compatible; Lavf59.27.100)")
    );
    let publish = command(&msgs[6]);
    assert_eq!(publish.name, "publish");
    assert_eq!(publish.args[0].as_str(), Some("livestream"));
    assert_eq!(publish.args[1].as_str(), Some("live"));
    // The first video message (AVC sequence header) starts 17 00.
    let video = msgs.iter().find(|m| m.type_id == TYPE_VIDEO).unwrap();
    assert_eq!(
        (video.payload.len(), &video.payload[..2]),
        (49, &[0x17, 0][..])
    );
}

#[test]
fn play_capture_has_225_messages_214_media() {
    let msgs = decode_fixture("play-ffmpeg.server-to-client");
    assert_eq!(msgs.len(), 225);
    assert_eq!(msgs.iter().filter(|m| is_media(m)).count(), 214);
    let start = command(&msgs[8]);
    assert_eq!(start.status_code(), Some("NetStream.Play.Start"));
    let result = command(&msgs[3]);
    let data = result.args[0].get("data").unwrap();
    assert!(matches!(data, Amf0Value::EcmaArray(_)));
    assert_eq!(
        data.get("srs_version").and_then(Amf0Value::as_str),
        Some("7.0.18")
    );
}

#[test]
fn query_publish_keeps_the_query_in_every_stream_name() {
    let msgs = decode_fixture("publish-ffmpeg-query.client-to-server");
    for i in [2, 3, 6] {
        assert_eq!(
            command(&msgs[i]).args[0].as_str(),
            Some("livestream?secret=abc123")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// ServerSession against real clients.

fn server(now: Instant) -> ServerSession {
    ServerSession::new(
        ServerConfig {
            srs_id: "abc1234".into(),
            srs_version: "1.5.0".into(),
            s1_random: [0x5a; 1528],
            phase_timeout: Duration::from_secs(30),
        },
        now,
    )
}

/// Feeds `input` in random pieces until the session stops consuming; returns the bytes used.
fn feed_server(s: &mut ServerSession, input: &[u8], rng: &mut StdRng) -> usize {
    let mut pos = 0;
    while pos < input.len() {
        let end = (pos + rng.gen_range(1..700)).min(input.len());
        let n = s
            .handle_input(&input[pos..end])
            .expect("session accepts the capture");
        pos += n;
        if n < end - (pos - n) {
            break;
        }
    }
    pos
}

fn server_replies(out: &[u8]) -> Vec<RtmpMessage> {
    decode_all(&mut ChunkDecoder::new(), &out[HANDSHAKE_BOTH..])
}

fn check_connect_replies(replies: &[RtmpMessage]) {
    assert_eq!(
        (replies[0].type_id, replies[0].csid),
        (TYPE_WINDOW_ACK_SIZE, 2)
    );
    assert_eq!(read_u32_control(&replies[0].payload).unwrap(), 2_500_000);
    assert_eq!(
        (replies[1].type_id, replies[1].csid),
        (TYPE_SET_CHUNK_SIZE, 2)
    );
    assert_eq!(read_u32_control(&replies[1].payload).unwrap(), 128);
    assert_eq!((replies[2].csid, replies[2].stream_id), (3, 0));
    let s = Amf0Value::string;
    let want = Command::new(
        "_result",
        1.0,
        Amf0Value::Object(vec![
            ("fmsVer".into(), s("FMS/3,5,3,888")),
            ("capabilities".into(), Amf0Value::Number(127.0)),
            ("mode".into(), Amf0Value::Number(1.0)),
        ]),
    )
    .arg(Amf0Value::Object(vec![
        ("level".into(), s("status")),
        ("code".into(), s("NetConnection.Connect.Success")),
        ("description".into(), s("Connection succeeded")),
        ("objectEncoding".into(), Amf0Value::Number(0.0)),
        (
            "data".into(),
            Amf0Value::EcmaArray(vec![
                ("version".into(), s("3,5,3,888")),
                ("srs_version".into(), s("1.5.0")),
                ("srs_id".into(), s("abc1234")),
            ]),
        ),
    ]));
    assert_eq!(command(&replies[2]), want);
    let mut bytes = Vec::new();
    want.encode(&mut bytes);
    assert_eq!(replies[2].payload, bytes, "byte-identical connect _result");
    assert!(replies.iter().all(|m| m.type_id != TYPE_SET_PEER_BANDWIDTH));
}

#[test]
fn server_identifies_the_ffmpeg_publisher_and_replies_like_the_go_proxy() {
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(seed);
        let input = fixture("publish-ffmpeg.client-to-server.bin");
        let mut s = server(Instant::now());
        let used = feed_server(&mut s, &input, &mut rng);
        assert_eq!(used, 3446, "stops right after publish (seed {seed})");
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::Identified {
                kind: StreamKind::Publish,
                tc_url: "rtmp://127.0.0.1:51936/live".into(),
                stream_name: "livestream".into(),
            })
        );
        s.accept();
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..9], &[0; 8]);
        assert_eq!(&out[1537..3073], &input[1..1537], "S2 echoes C1");
        let replies = server_replies(&out);
        check_connect_replies(&replies);
        let rest: Vec<(String, f64, u32)> = replies[3..]
            .iter()
            .map(|m| {
                let c = command(m);
                (c.name, c.transaction_id, m.stream_id)
            })
            .collect();
        let want = [
            ("_result", 2.0, 0),
            ("_result", 3.0, 0),
            ("_result", 4.0, 0),
            ("_result", 5.0, 1),
            ("onFCPublish", 0.0, 1),
            ("onStatus", 0.0, 1),
        ];
        let want: Vec<(String, f64, u32)> = want
            .iter()
            .map(|(n, t, s)| (n.to_string(), *t, *s))
            .collect();
        assert_eq!(rest, want);
        assert_eq!(command(&replies[3]).args, vec![Amf0Value::Undefined]);
        assert_eq!(command(&replies[5]).args, vec![Amf0Value::Number(1.0)]);
        let start = command(&replies[8]);
        assert_eq!(start.status_code(), Some("NetStream.Publish.Start"));
        assert_eq!(
            start.args[0].get("clientid").and_then(Amf0Value::as_str),
            Some("ASAICiss")
        );
        assert_eq!(s.poll_timeout(), None);
    }
}

#[test]
fn server_identifies_ffmpeg_and_ffprobe_players() {
    for name in ["play-ffmpeg", "play-ffprobe"] {
        let mut rng = StdRng::seed_from_u64(7);
        let input = fixture(&format!("{name}.client-to-server.bin"));
        let mut s = server(Instant::now());
        let used = feed_server(&mut s, &input, &mut rng);
        assert_eq!(
            used, 3465,
            "{name}: SetBufferLength after play is left for the relay"
        );
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::Identified {
                kind: StreamKind::Play,
                tc_url: "rtmp://127.0.0.1:51936/live".into(),
                stream_name: "livestream".into(),
            })
        );
        s.accept();
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        let replies = server_replies(&out);
        check_connect_replies(&replies);
        // createStream → 1, _checkbw → undefined, getStreamLength → nothing, play → Reset.
        assert_eq!(replies.len(), 7);
        assert_eq!(command(&replies[3]).args, vec![Amf0Value::Number(1.0)]);
        assert_eq!(replies[4].stream_id, 1);
        let reset = command(&replies[5]);
        assert_eq!(reset.status_code(), Some("NetStream.Play.Reset"));
        assert_eq!(
            reset.args[0].get("clientid").and_then(Amf0Value::as_str),
            Some("ASAICiss")
        );
        let start = command(&replies[6]);
        assert_eq!(start.status_code(), Some("NetStream.Play.Start"));
        assert_eq!(
            start.args[0].get("details").and_then(Amf0Value::as_str),
            Some("stream")
        );
    }
}

#[test]
fn server_keeps_the_query_in_the_stream_name() {
    let input = fixture("publish-ffmpeg-query.client-to-server.bin");
    let mut s = server(Instant::now());
    feed_server(&mut s, &input, &mut StdRng::seed_from_u64(1));
    match s.poll_event() {
        Some(ServerEvent::Identified { stream_name, .. }) => {
            assert_eq!(stream_name, "livestream?secret=abc123")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_rejects_with_bad_name_status() {
    let input = fixture("publish-ffmpeg-busy.client-to-server.bin");
    let mut s = server(Instant::now());
    feed_server(&mut s, &input, &mut StdRng::seed_from_u64(2));
    assert!(s.poll_event().is_some());
    s.reject("no origin");
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    let replies = server_replies(&out);
    let status = command(replies.last().unwrap());
    assert_eq!(status.status_level(), Some("error"));
    assert_eq!(status.status_code(), Some("NetStream.Publish.BadName"));
    assert_eq!(status.status_description(), Some("no origin"));
}

#[test]
fn server_times_out_in_the_handshake() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.handle_input(&[3; 100]).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    assert!(s.handle_timeout(t0 + Duration::from_secs(29)).is_ok());
    assert_eq!(
        s.handle_timeout(t0 + Duration::from_secs(30)),
        Err(RtmpError::Timeout("handshake"))
    );
    assert_eq!(s.handle_input(&[0]), Err(RtmpError::Closed));
}

// ---------------------------------------------------------------------------------------------
// ClientSession against the real SRS.

fn client(kind: StreamKind, name: &str, now: Instant) -> ClientSession {
    ClientSession::new(
        ClientConfig {
            tc_url: "rtmp://127.0.0.1:51936/live".into(),
            stream_name: name.into(),
            kind,
            c1_random: [0x33; 1528],
            phase_timeout: Duration::from_secs(10),
        },
        now,
    )
}

fn feed_client(c: &mut ClientSession, input: &[u8], rng: &mut StdRng) -> usize {
    let mut pos = 0;
    while pos < input.len() {
        let end = (pos + rng.gen_range(1..500)).min(input.len());
        let n = c
            .handle_input(&input[pos..end])
            .expect("client accepts SRS replies");
        pos += n;
        if pos < end {
            break;
        }
    }
    pos
}

#[test]
fn client_publishes_to_srs_and_becomes_ready_after_publish_start() {
    let input = fixture("publish-ffmpeg.server-to-client.bin");
    for seed in 0..10 {
        let mut c = client(StreamKind::Publish, "livestream", Instant::now());
        let used = feed_client(&mut c, &input, &mut StdRng::seed_from_u64(seed));
        assert_eq!(used, 4384, "stops right after onStatus Publish.Start");
        assert_eq!(c.poll_event(), Some(ClientEvent::Ready));
        assert_eq!(c.poll_timeout(), None);
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(&out[..9], &[3, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[1537..3073], &input[1..1537], "C2 echoes S1");
        let sent = decode_all(&mut ChunkDecoder::new(), &out[3073..]);
        let cmds: Vec<(String, f64, u32, u32)> = sent
            .iter()
            .map(|m| {
                let c = command(m);
                (c.name, c.transaction_id, m.stream_id, m.csid)
            })
            .collect();
        let want = [
            ("connect", 1.0, 1, 3),
            ("releaseStream", 2.0, 0, 3),
            ("FCPublish", 3.0, 0, 3),
            ("createStream", 4.0, 0, 3),
            ("publish", 5.0, 1, 3),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(n, t, s, c)| (n.to_string(), *t, *s, *c))
            .collect();
        assert_eq!(cmds, want);
        let connect = command(&sent[0]);
        assert_eq!(
            connect.command_object,
            // tcUrl as the Go proxy sends it, plus `app` for servers that route by it.
            Amf0Value::Object(vec![
                ("app".into(), Amf0Value::string("live")),
                (
                    "tcUrl".into(),
                    Amf0Value::string("rtmp://127.0.0.1:51936/live")
                ),
            ])
        );
        assert_eq!(
            command(&sent[4]).args,
            vec![Amf0Value::string("livestream"), Amf0Value::string("live")]
        );
    }
}

#[test]
fn client_sees_no_ready_when_srs_closes_a_busy_publish() {
    let input = fixture("publish-ffmpeg-busy.server-to-client.bin");
    let t0 = Instant::now();
    let mut c = client(StreamKind::Publish, "livestream", t0);
    let used = feed_client(&mut c, &input, &mut StdRng::seed_from_u64(3));
    assert_eq!(used, input.len());
    assert_eq!(c.poll_event(), None);
    assert!(c.handle_timeout(t0 + Duration::from_secs(10)).is_err());
}

#[test]
fn client_plays_from_srs_and_leaves_post_start_messages_for_the_relay() {
    let input = fixture("play-ffmpeg.server-to-client.bin");
    let mut c = client(StreamKind::Play, "livestream", Instant::now());
    let used = feed_client(&mut c, &input, &mut StdRng::seed_from_u64(4));
    assert_eq!(used, 4400);
    assert_eq!(c.poll_event(), Some(ClientEvent::Ready));
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let sent = decode_all(&mut ChunkDecoder::new(), &out[3073..]);
    let play = command(&sent[2]);
    assert_eq!((play.name.as_str(), sent[2].stream_id), ("play", 1));
    assert_eq!(play.args, vec![Amf0Value::string("livestream")]);
    // The leftover starts with |RtmpSampleAccess, decodable with the session's reader state.
    let mut end = c.into_relay();
    assert_eq!(end.decoder.chunk_size(), 60000);
    let (_, first) = end.decoder.decode(&input[used..]).unwrap();
    let first = first.unwrap();
    assert_eq!(first.type_id, TYPE_DATA_AMF0);
    let v = Amf0Value::decode_all(&first.payload).unwrap();
    assert_eq!(v[0].as_str(), Some("|RtmpSampleAccess"));
}

#[test]
fn client_reports_an_error_status_as_rejected() {
    // A synthetic origin answering play with StreamNotFound.
    let mut c = client(StreamKind::Play, "nope", Instant::now());
    let mut wire = vec![3u8];
    wire.extend([0u8; 3072]);
    let enc = ChunkEncoder::new();
    let s = Amf0Value::string;
    Command::new("_result", 1.0, Amf0Value::Null).write(&enc, 0, &mut wire);
    Command::new("_result", 4.0, Amf0Value::Null)
        .arg(Amf0Value::Number(1.0))
        .write(&enc, 0, &mut wire);
    Command::new("onStatus", 0.0, Amf0Value::Null)
        .arg(Amf0Value::Object(vec![
            ("level".into(), s("error")),
            ("code".into(), s("NetStream.Play.StreamNotFound")),
            ("description".into(), s("gone")),
        ]))
        .write(&enc, 1, &mut wire);
    assert_eq!(c.handle_input(&wire).unwrap(), wire.len());
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::Rejected {
            code: "NetStream.Play.StreamNotFound".into(),
            description: "gone".into()
        })
    );
}
