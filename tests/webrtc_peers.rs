//! The WebRTC test peers on their own, with no proxy: aiortc WHIP publisher → str0m test origin
//! (`tests/webrtc-origin`) → aiortc WHEP player, the legacy JSON API, DELETE, the SRS heartbeat,
//! and a client whose UDP source port changes mid-session. These prove the peers before the
//! proxy's WebRTC tests rely on them. Everything on 127.0.0.1 with ephemeral ports.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use support::webrtc::{
    assert_clean, run_origin, spawn_whep_play, spawn_whip_publish, wait_publishing, whep_play,
    WebrtcOrigin,
};
use support::*;

/// Small frames keep two encoders and decoders cheap on a 2-core machine.
const SIZE: [&str; 4] = ["--width", "320", "--height", "240"];

fn publish_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = SIZE.to_vec();
    args.extend_from_slice(extra);
    args
}

/// One `a=candidate` line: `127.0.0.1 <udp port> typ host`.
fn assert_one_host_candidate(v: &Value, origin: &WebrtcOrigin) {
    let candidates = v["candidates"].as_array().expect("candidates array");
    assert_eq!(candidates.len(), 1, "exactly one candidate: {v:#}");
    let line = candidates[0].as_str().unwrap();
    assert!(
        line.contains(" udp ")
            && line.contains(&format!(" 127.0.0.1 {} typ host", origin.udp_port)),
        "candidate {line:?} is not 127.0.0.1 {} typ host",
        origin.udp_port
    );
}

#[test]
fn whip_publish_then_whep_play_decodes_h264() {
    let origin = WebrtcOrigin::start(None, "peers-a");
    let publisher = spawn_whip_publish(&origin.whip_url("live", "a"), 10.0, &publish_args(&[]));
    wait_publishing(&origin, "a");

    let play = whep_play(&origin.whep_url("live", "a"), 5.0, &["--min-frames", "25"]);
    assert_clean(&play, "whep_play");
    assert_eq!(play["status"], 201, "{play:#}");
    assert!(play["frames"].as_u64() >= Some(25), "{play:#}");
    assert_eq!(
        (play["width"].as_u64(), play["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_one_host_candidate(&play, &origin);
    let location = play["location"].as_str().expect("Location");
    assert!(
        location.starts_with("/rtc/v1/whip/?action=delete&token=")
            && location.contains("&app=live&stream=a&session="),
        "{location}"
    );

    let stats = origin.stats();
    assert!(stats["rtp_from_publishers"].as_u64() > Some(100), "{stats}");
    assert!(stats["rtp_to_players"].as_u64() > Some(50), "{stats}");
    assert!(stats["keyframe_requests"].as_u64() >= Some(1), "{stats}");

    let publish = publisher.finish();
    assert_clean(&publish, "whip_publish");
    assert_eq!(publish["status"], 201, "{publish:#}");
    assert_one_host_candidate(&publish, &origin);
    assert!(publish["frames"].as_u64() > Some(200), "{publish:#}");
}

#[test]
fn legacy_json_api_publish_and_play() {
    let origin = WebrtcOrigin::start(None, "peers-b");
    let json = |extra: &[&'static str]| {
        let mut args = vec!["--json-api", "--app", "live", "--stream", "b"];
        args.extend_from_slice(extra);
        args
    };
    let publisher = spawn_whip_publish(&origin.json_api_url(true), 9.0, &json(&SIZE));
    wait_publishing(&origin, "b");

    let play = whep_play(
        &origin.json_api_url(false),
        4.0,
        &json(&["--min-frames", "25"]),
    );
    assert_clean(&play, "whep_play --json-api");
    assert_eq!(play["status"], 200, "{play:#}");
    assert!(play["frames"].as_u64() >= Some(25), "{play:#}");
    assert_eq!(
        (play["width"].as_u64(), play["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_one_host_candidate(&play, &origin);
    let session = play["session"].as_str().expect("sessionid");
    let (answer_ufrag, offer_ufrag) = session.split_once(':').expect("ufrag:ufrag");
    assert!(
        !answer_ufrag.is_empty() && !offer_ufrag.is_empty(),
        "{session}"
    );

    let publish = publisher.finish();
    assert_clean(&publish, "whip_publish --json-api");
    assert_eq!(publish["status"], 200, "{publish:#}");
}

#[test]
fn delete_closes_the_session() {
    let origin = WebrtcOrigin::start(None, "peers-c");
    let publisher = spawn_whip_publish(
        &origin.whip_url("live", "c"),
        3.0,
        &publish_args(&["--delete"]),
    );
    let during = wait_publishing(&origin, "c");
    assert_eq!(during["sessions_open"], 1, "{during}");
    let publish = publisher.finish();
    assert_clean(&publish, "whip_publish --delete");
    assert_eq!(publish["delete_status"], 200, "{publish:#}");

    let after = origin.wait_stats(Duration::from_secs(5), "the session to close", |s| {
        s["sessions_open"] == 0
    });
    assert_eq!(after["sessions_deleted"], 1, "{after}");
    assert_eq!(after["sessions_timed_out"], 0, "{after}");

    // The same DELETE again: the session is gone.
    let location = publish["location"].as_str().unwrap();
    let again = http_request(origin.http_addr(), "DELETE", location, &[], b"").unwrap();
    assert_eq!(again.status, 404, "{}", again.text());
    // An offer that is not SDP is refused.
    let resp = http_request(
        origin.http_addr(),
        "POST",
        "/rtc/v1/whip/?app=live&stream=c",
        &[],
        b"not sdp",
    )
    .unwrap();
    assert_eq!(resp.status, 400, "garbage offer: {}", resp.text());
}

#[test]
fn rebinding_client_resumes_directly_against_the_origin() {
    let origin = WebrtcOrigin::start(None, "peers-d");
    let publisher = spawn_whip_publish(&origin.whip_url("live", "d"), 20.0, &publish_args(&[]));
    wait_publishing(&origin, "d");

    let player = spawn_whep_play(
        &origin.whep_url("live", "d"),
        14.0,
        &[
            "--rebind-after",
            "3",
            "--min-frames",
            "25",
            "--min-frames-after-rebind",
            "25",
        ],
    );
    // While the player runs: its session is reached from two addresses and moved once.
    let stats = origin.wait_stats(Duration::from_secs(20), "the player to migrate", |s| {
        WebrtcOrigin::sessions(s, "play")
            .iter()
            .any(|p| p["migrations"] == 1 && p["remote_addrs"].as_array().map(Vec::len) == Some(2))
    });
    let session = WebrtcOrigin::sessions(&stats, "play").remove(0);
    let play = player.finish();
    assert_clean(&play, "whep_play --rebind-after");
    let rebind = &play["rebind"];
    assert_eq!(rebind["switched"], true, "{play:#}");
    assert!(play["frames_after_rebind"].as_u64() >= Some(25), "{play:#}");
    let addrs: Vec<String> = session["remote_addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    for port in [&rebind["old_source_port"], &rebind["new_source_port"]] {
        assert!(
            addrs.contains(&format!("127.0.0.1:{port}")),
            "origin saw {addrs:?}, relay used {rebind}"
        );
    }
    assert_eq!(
        session["peer"].as_str(),
        Some(format!("127.0.0.1:{}", rebind["new_source_port"]).as_str()),
        "{session}"
    );
    drop(publisher);
}

#[test]
fn heartbeat_has_the_srs_shape() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = WebrtcOrigin::start_with(
        "peers-e",
        &[
            "--register".into(),
            format!("http://127.0.0.1:{port}/api/v1/srs/register"),
            "--heartbeat-ms".into(),
            "200".into(),
        ],
    );
    listener.set_nonblocking(true).unwrap();
    let (mut conn, _) = wait_for(Duration::from_secs(5), "a heartbeat", || {
        listener.accept().ok()
    });
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.ends_with(b"}") {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "heartbeat cut short: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("POST /api/v1/srs/register HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("Content-Type: application/json"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["server"], "peers-e");
    assert_eq!(v["service"], "peers-e");
    assert_eq!(v["device_id"], "peers-e");
    assert_eq!(v["ip"], "127.0.0.1");
    assert_eq!(v["pid"], origin.pid().to_string());
    assert_eq!(v["api"], serde_json::json!([origin.http_port.to_string()]));
    assert_eq!(
        v["rtc"],
        serde_json::json!([format!("udp://0.0.0.0:{}", origin.udp_port)])
    );
    let rtmp = v["rtmp"][0].as_str().expect("rtmp[0] string");
    assert!(rtmp.parse::<u16>().is_ok(), "rtmp must be a bare port: {v}");
    // Keys in SRS's order (§3.2), as the fixtures have them.
    let order: Vec<usize> = [
        "device_id",
        "ip",
        "server",
        "service",
        "pid",
        "rtmp",
        "api",
        "rtc",
    ]
    .iter()
    .map(|k| body.find(&format!("\"{k}\"")).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{body}");
}

#[test]
fn bad_input_is_refused_not_fatal() {
    let mut origin = WebrtcOrigin::start(None, "peers-f");
    let addr = origin.http_addr();
    let cases: [(&str, &str, &[u8], u16); 7] = [
        ("GET", "/nope", b"", 404),
        ("GET", "/rtc/v1/whip/", b"", 405),
        ("POST", "/rtc/v1/whip/?app=live", b"v=0", 400),
        ("POST", "/rtc/v1/whep/?app=live&stream=x", b"v=0\r\n", 400),
        ("POST", "/rtc/v1/play/", b"{\"sdp\":", 400),
        (
            "POST",
            "/rtc/v1/publish/",
            b"{\"sdp\":\"v=0\",\"streamurl\":\"rtmp://x/a/b\"}",
            400,
        ),
        (
            "DELETE",
            "/rtc/v1/whip/?action=delete&session=a:b",
            b"",
            404,
        ),
    ];
    for (method, path, body, want) in cases {
        let resp = http_request(addr, method, path, &[], body).unwrap();
        assert_eq!(resp.status, want, "{method} {path}: {}", resp.text());
    }
    // Garbage datagrams of every RFC 7983 class at the media port.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for first in [0u8, 1, 20, 22, 128, 144, 200, 255] {
        for len in [1usize, 12, 20, 100, 1400] {
            let mut d = vec![first; len];
            d.iter_mut()
                .skip(1)
                .enumerate()
                .for_each(|(i, b)| *b = i as u8);
            socket.send_to(&d, ("127.0.0.1", origin.udp_port)).unwrap();
        }
    }
    let stats = origin.wait_stats(Duration::from_secs(5), "the garbage to be counted", |s| {
        s["unmatched_datagrams"].as_u64() >= Some(40)
    });
    assert_eq!(stats["sessions_open"], 0, "{stats}");
    assert!(origin.is_running(), "the origin died on bad input");

    let help = run_origin(&["--help"], Duration::from_secs(10));
    assert!(
        help.success() && help.stdout.contains("READY udp="),
        "{}",
        help.describe()
    );
    let bad = run_origin(&["--listen", "nowhere"], Duration::from_secs(10));
    assert_eq!(
        bad.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        bad.describe()
    );
}
