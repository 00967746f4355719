//! WebRTC end to end through the proxy with two independent real stacks (issue 4; spec §5.5,
//! §5.6): aiortc clients (PyPI) publish with WHIP and play with WHEP via the proxy's HTTP API and
//! WebRTC UDP port, to str0m test origins (`tests/webrtc-origin`: ICE-lite, one UDP port for all
//! sessions, demultiplexed by ufrag, like SRS) that register through the heartbeat API. Real
//! H.264 frames are decoded by the player. Everything on 127.0.0.1 with ephemeral ports.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::webrtc::{
    assert_clean, spawn_whep_play, spawn_whip_publish, wait_publishing, whep_play, WebrtcOrigin,
};
use support::*;

/// Small frames keep two encoders and decoders cheap on a 2-core machine.
const SIZE: [&str; 4] = ["--width", "320", "--height", "240"];

fn register_url(proxy: &Proxy) -> String {
    format!("http://{}/api/v1/srs/register", proxy.system_api())
}

fn whip_url(proxy: &Proxy, stream: &str) -> String {
    format!(
        "http://{}/rtc/v1/whip/?app=live&stream={stream}",
        proxy.http_api()
    )
}

fn whep_url(proxy: &Proxy, stream: &str) -> String {
    format!(
        "http://{}/rtc/v1/whep/?app=live&stream={stream}",
        proxy.http_api()
    )
}

fn webrtc_metric(proxy: &Proxy, name: &str, extra: &[(&str, &str)]) -> f64 {
    let mut filter = vec![("protocol", "webrtc")];
    filter.extend_from_slice(extra);
    metric_sum(&proxy.metrics(), name, &filter)
}

/// Every candidate of the answer the client got points at the proxy's WebRTC port.
fn assert_candidates_point_at_proxy(v: &Value, proxy: &Proxy, origin: &WebrtcOrigin) {
    let candidates = v["candidates"].as_array().expect("candidates array");
    assert!(!candidates.is_empty(), "no candidate: {v:#}");
    for c in candidates {
        let line = c.as_str().unwrap();
        assert!(
            line.contains(&format!(" {} typ host", proxy.ports.webrtc)),
            "candidate {line:?} does not point at the proxy port {}",
            proxy.ports.webrtc
        );
        assert!(
            !line.contains(&format!(" {} typ host", origin.udp_port)),
            "{line}"
        );
    }
}

/// Every session of `origin` was reached from the proxy's side only: one remote address each,
/// never a client's own port.
fn assert_media_came_through_proxy(origin: &WebrtcOrigin, client_ports: &[u16]) {
    for s in origin.stats()["sessions"].as_array().expect("sessions") {
        for a in s["remote_addrs"].as_array().expect("remote_addrs") {
            let addr: std::net::SocketAddr = a.as_str().unwrap().parse().unwrap();
            assert!(
                !client_ports.contains(&addr.port()),
                "origin saw a client directly: {s}"
            );
        }
    }
}

#[test]
fn whip_publish_and_whep_play_through_the_proxy_decode_frames() {
    let proxy = Proxy::start(&[]);
    let origin = WebrtcOrigin::start(Some(&register_url(&proxy)), "rtc-e2e-a");
    wait_until(Duration::from_secs(10), "the origin registers", || {
        proxy.get("/api/v1/origins").text().contains("rtc-e2e-a")
    });

    let publisher = spawn_whip_publish(&whip_url(&proxy, "a"), 12.0, &SIZE);
    wait_publishing(&origin, "a");
    let play = whep_play(&whep_url(&proxy, "a"), 5.0, &["--min-frames", "25"]);
    assert_clean(&play, "whep_play via proxy");
    assert_eq!(play["status"], 201, "{play:#}");
    assert!(play["frames"].as_u64() >= Some(25), "{play:#}");
    assert_eq!(
        (play["width"].as_u64(), play["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_candidates_point_at_proxy(&play, &proxy, &origin);
    // The origin's Location reaches the client (spec §10 #10).
    assert!(
        play["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("/rtc/v1/whip/?action=delete")),
        "{play:#}"
    );

    // The proxy's counters show the media went through it, both ways.
    assert!(webrtc_metric(&proxy, "srs_proxy_connections_total", &[]) >= 2.0);
    let up = webrtc_metric(
        &proxy,
        "srs_proxy_bytes_total",
        &[("direction", "client_to_origin")],
    );
    let down = webrtc_metric(
        &proxy,
        "srs_proxy_bytes_total",
        &[("direction", "origin_to_client")],
    );
    assert!(
        up > 100_000.0,
        "publisher media through the proxy: {up} bytes"
    );
    assert!(
        down > 50_000.0,
        "player media through the proxy: {down} bytes"
    );
    let publish = publisher.finish();
    assert_clean(&publish, "whip_publish via proxy");
    assert_eq!(publish["status"], 201, "{publish:#}");
    assert_candidates_point_at_proxy(&publish, &proxy, &origin);
    let stats = origin.stats();
    assert!(stats["rtp_from_publishers"].as_u64() > Some(100), "{stats}");
    assert_media_came_through_proxy(&origin, &[]);
}

#[test]
fn two_sessions_on_two_origins_both_work() {
    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "3s")]);
    // Origin 1 beats from the test so that it can stop beating: after the TTL, new streams go to
    // origin 2 while origin 1's established session keeps flowing (pins move only on new picks).
    let o1 = WebrtcOrigin::start(None, "rtc-e2e-o1");
    let beat = Heartbeat::start(
        proxy.system_api(),
        serde_json::json!({
            "device_id": "o1", "ip": "127.0.0.1", "server": "rtc-e2e-o1", "service": "s1",
            "pid": "101", "rtmp": [o1.udp_port.to_string()], "api": [o1.http_port.to_string()],
            "rtc": [format!("udp://0.0.0.0:{}", o1.udp_port)],
        })
        .to_string(),
        Duration::from_millis(500),
    );
    wait_until(Duration::from_secs(5), "origin 1 registers", || {
        proxy.get("/api/v1/origins").text().contains("rtc-e2e-o1")
    });
    let pub1 = spawn_whip_publish(&whip_url(&proxy, "one"), 25.0, &SIZE);
    wait_publishing(&o1, "one");
    let play1 = spawn_whep_play(&whep_url(&proxy, "one"), 16.0, &["--min-frames", "25"]);

    drop(beat);
    std::thread::sleep(Duration::from_millis(3500));
    let o2 = WebrtcOrigin::start(Some(&register_url(&proxy)), "rtc-e2e-o2");
    wait_until(Duration::from_secs(10), "origin 2 registers", || {
        proxy.get("/api/v1/origins").text().contains("rtc-e2e-o2")
    });
    let pub2 = spawn_whip_publish(&whip_url(&proxy, "two"), 12.0, &SIZE);
    // Stream two is published on origin 2 (and stream one was on origin 1, above).
    wait_publishing(&o2, "two");
    let play2 = whep_play(&whep_url(&proxy, "two"), 5.0, &["--min-frames", "25"]);
    assert_clean(&play2, "player of stream two");
    assert!(play2["frames"].as_u64() >= Some(25), "{play2:#}");

    let play1 = play1.finish();
    assert_clean(&play1, "player of stream one");
    assert!(play1["frames"].as_u64() >= Some(25), "{play1:#}");
    // Each stream is on its own origin.
    let streams = proxy.get("/api/v1/streams").text();
    assert!(
        streams.contains("rtc-e2e-o1") && streams.contains("rtc-e2e-o2"),
        "{streams}"
    );
    assert_clean(&pub2.finish(), "publisher of stream two");
    assert_clean(&pub1.finish(), "publisher of stream one");
}

#[test]
fn client_whose_port_changes_mid_session_resumes() {
    let proxy = Proxy::start(&[]);
    let origin = WebrtcOrigin::start(Some(&register_url(&proxy)), "rtc-e2e-r");
    wait_until(Duration::from_secs(10), "the origin registers", || {
        proxy.get("/api/v1/origins").text().contains("rtc-e2e-r")
    });
    let publisher = spawn_whip_publish(&whip_url(&proxy, "r"), 22.0, &SIZE);
    wait_publishing(&origin, "r");
    let player = spawn_whep_play(
        &whep_url(&proxy, "r"),
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
    // While it plays (after the switch at 3 s and a consent check from the new port), the
    // origin still sees one proxy address: the proxy moved the session, not the origin.
    std::thread::sleep(Duration::from_secs(11));
    let session = WebrtcOrigin::sessions(&origin.stats(), "play")
        .into_iter()
        .find(|p| p["stream"] == "r")
        .expect("the player's origin session");
    let play = player.finish();
    assert_clean(&play, "whep_play --rebind-after via proxy");
    assert_eq!(play["rebind"]["switched"], true, "{play:#}");
    assert!(play["frames_after_rebind"].as_u64() >= Some(25), "{play:#}");
    assert!(
        proxy.logs().contains("moved to client address"),
        "{}",
        proxy.logs_tail(30)
    );
    assert_eq!(
        session["remote_addrs"].as_array().map(Vec::len),
        Some(1),
        "the origin sees one proxy address throughout: {session}"
    );
    assert_eq!(session["migrations"], 0, "{session}");
    assert_clean(&publisher.finish(), "publisher");
}

#[test]
fn whip_delete_through_the_proxy_ends_both_sides() {
    let proxy = Proxy::start(&[]);
    let origin = WebrtcOrigin::start(Some(&register_url(&proxy)), "rtc-e2e-d");
    wait_until(Duration::from_secs(10), "the origin registers", || {
        proxy.get("/api/v1/origins").text().contains("rtc-e2e-d")
    });
    let mut args = SIZE.to_vec();
    args.push("--delete");
    let publish = spawn_whip_publish(&whip_url(&proxy, "d"), 4.0, &args).finish();
    assert_clean(&publish, "whip_publish --delete via proxy");
    assert_eq!(publish["delete_status"], 200, "{publish:#}");
    let after = origin.wait_stats(Duration::from_secs(5), "the origin session to close", |s| {
        s["sessions_open"] == 0
    });
    assert_eq!(after["sessions_deleted"], 1, "{after}");
    wait_until(Duration::from_secs(5), "the proxy session to end", || {
        webrtc_metric(&proxy, "srs_proxy_active_connections", &[]) == 0.0
    });
    assert!(proxy.logs().contains("deleted by the client"));
}
