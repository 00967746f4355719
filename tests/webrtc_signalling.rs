//! WebRTC signalling and UDP routing through the proxy against a *fault-injecting* origin (issue
//! 4; spec §5.5, §5.6, §10 #10, #12, #14, #15, #20, #28): it answers with the real SRS WHIP/WHEP
//! captures of `../shared/fixtures/webrtc/`, or breaks them on purpose, and echoes UDP. The
//! end-to-end tests with real WebRTC stacks (aiortc clients, a str0m origin) are in
//! `webrtc_e2e.rs`; these cover what a real origin cannot be made to do.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

fn fixture(path: &str) -> Vec<u8> {
    let p = format!(
        "{}/../shared/fixtures/webrtc/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {p}: {e}"))
}

fn body_of(http: &[u8]) -> Vec<u8> {
    let at = http
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end");
    http[at + 4..].to_vec()
}

/// What the fault-injecting origin answers to a POST.
#[derive(Clone)]
enum Answer {
    /// The real capture, its candidate port replaced by this origin's UDP port.
    Fixture(&'static str),
    /// The capture's SDP cut after `n` bytes (a broken origin).
    Truncated(&'static str, usize),
    /// A status and body, verbatim.
    Status(u16, &'static str),
    /// The legacy JSON API: `{"code":0,"server":"x","sdp":"<fixture answer>","sessionid":"…"}`.
    Legacy(&'static str),
}

/// A fault-injecting SRS stand-in: HTTP API on one port, UDP echo (`echo:` + datagram) on another.
struct FakeOrigin {
    api_port: u16,
    udp_port: u16,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<Vec<String>>>,
    udp_from: Arc<Mutex<Vec<SocketAddr>>>,
}

impl FakeOrigin {
    fn start(answer: Answer) -> FakeOrigin {
        let api = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let api_port = api.local_addr().unwrap().port();
        let udp_port = udp.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(answer));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let udp_from = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (answer.clone(), requests.clone());
        thread::spawn(move || {
            for conn in api.incoming() {
                let Ok(mut c) = conn else { return };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut data = Vec::new();
                let mut buf = [0u8; 65536];
                let (head, body_len) = loop {
                    let Ok(n) = c.read(&mut buf) else {
                        break (String::new(), 0);
                    };
                    if n == 0 {
                        break (String::new(), 0);
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..at]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while data.len() < at + 4 + len {
                            match c.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => data.extend_from_slice(&buf[..n]),
                            }
                        }
                        break (head, len);
                    }
                };
                let _ = body_len;
                r.lock().unwrap().push(head.clone());
                let resp = if head.starts_with("DELETE") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
                } else {
                    let answer = a.lock().unwrap().clone();
                    response(&answer, udp_port)
                };
                let _ = c.write_all(&resp);
            }
        });
        let from = udp_from.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                    return;
                };
                from.lock().unwrap().push(peer);
                let mut out = b"echo:".to_vec();
                out.extend_from_slice(&buf[..n]);
                let _ = udp.send_to(&out, peer);
            }
        });
        FakeOrigin {
            api_port,
            udp_port,
            answer,
            requests,
            udp_from,
        }
    }

    fn register(&self, proxy: &Proxy) {
        let body = format!(
            r#"{{"device_id":"fake","ip":"127.0.0.1","server":"fake-{api}","service":"s","pid":"1","rtmp":["1935"],"api":["{api}"],"rtc":["udp://0.0.0.0:{udp}","tcp://0.0.0.0:{udp}"]}}"#,
            api = self.api_port,
            udp = self.udp_port
        );
        let r = post_register(proxy.system_api(), &body, &[]);
        assert_eq!(r.status, 200, "register: {}", r.text());
    }
}

fn fixture_answer(name: &str, udp_port: u16) -> String {
    let sdp = String::from_utf8(body_of(&fixture(&format!("{name}/response.http")))).unwrap();
    sdp.replace(" 51800 typ host", &format!(" {udp_port} typ host"))
}

fn response(answer: &Answer, udp_port: u16) -> Vec<u8> {
    let (status, ctype, body, extra) = match answer {
        Answer::Fixture(name) => (
            201,
            "application/sdp",
            fixture_answer(name, udp_port),
            "Location: /rtc/v1/whip/?action=delete&token=1&app=live&stream=s&session=x\r\n",
        ),
        Answer::Truncated(name, n) => {
            let mut s = fixture_answer(name, udp_port);
            s.truncate(*n);
            (201, "application/sdp", s, "")
        }
        Answer::Status(code, body) => (*code, "text/plain", body.to_string(), "X-Origin: yes\r\n"),
        Answer::Legacy(name) => {
            let sdp = fixture_answer(name, udp_port);
            (
                200,
                "application/json",
                serde_json::json!({"code": 0, "server": "vid-x", "sdp": sdp, "sessionid": "s"})
                    .to_string(),
                "",
            )
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn offer(name: &str) -> Vec<u8> {
    body_of(&fixture(&format!("{name}/request.http")))
}

fn whip(proxy: &Proxy, path: &str, body: &[u8]) -> HttpResponse {
    http_request(
        proxy.http_api(),
        "POST",
        path,
        &[("Content-Type", "application/sdp")],
        body,
    )
    .expect("signalling request")
}

fn proxy_and_origin(answer: Answer) -> (Proxy, FakeOrigin) {
    let proxy = Proxy::start(&[]);
    let origin = FakeOrigin::start(answer);
    origin.register(&proxy);
    (proxy, origin)
}

/// The candidate lines of an SDP.
fn candidates(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect()
}

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Sends `data` until an echo comes back (the proxy may be a moment behind), or gives up.
fn round_trip(s: &UdpSocket, to: u16, data: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    for _ in 0..10 {
        s.send_to(data, ("127.0.0.1", to)).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

fn webrtc_metric(proxy: &Proxy, name: &str) -> f64 {
    metric_sum(&proxy.metrics(), name, &[("protocol", "webrtc")])
}

#[test]
fn whip_answer_is_rewritten_and_origin_headers_pass() {
    let (proxy, origin) = proxy_and_origin(Answer::Fixture("whip"));
    // No trailing slash: served directly, no 301 (spec §10 #28).
    let r = whip(
        &proxy,
        "/rtc/v1/whip?app=live&stream=whipstream&codec=h264",
        &offer("whip"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    assert!(r
        .header("location")
        .is_some_and(|l| l.starts_with("/rtc/v1/whip/?action=delete")));
    assert_eq!(r.header("access-control-expose-headers"), Some("Location"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let sdp = r.text();
    let cands = candidates(&sdp);
    assert!(!cands.is_empty());
    for c in &cands {
        assert!(
            c.contains(&format!(" {} typ host", proxy.ports.webrtc)),
            "candidate not rewritten to the proxy port: {c}"
        );
        assert!(!c.contains(" tcp "), "TCP candidates are dropped: {c}");
    }
    // The origin got the same method, path and raw query, and the offer.
    let reqs = origin.requests.lock().unwrap().clone();
    assert!(
        reqs[0].starts_with("POST /rtc/v1/whip?app=live&stream=whipstream&codec=h264 HTTP/1.1"),
        "{reqs:?}"
    );
    assert!(reqs[0].contains("Content-Type: application/sdp"));
}

#[test]
fn public_candidate_ip_is_written_when_configured() {
    let proxy = Proxy::start(&[("PROXY_WEBRTC_CANDIDATE", "127.0.0.9")]);
    let origin = FakeOrigin::start(Answer::Fixture("whep"));
    origin.register(&proxy);
    let r = whip(
        &proxy,
        "/rtc/v1/whep/?app=live&stream=livestream",
        &offer("whep"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let sdp = r.text();
    for c in candidates(&sdp) {
        assert!(
            c.contains(&format!(" 127.0.0.9 {} typ host", proxy.ports.webrtc)),
            "{c}"
        );
    }
}

#[test]
fn broken_origin_answer_is_a_502_and_binds_nothing() {
    let (proxy, origin) = proxy_and_origin(Answer::Truncated("whip", 300));
    let r = whip(
        &proxy,
        "/rtc/v1/whip/?app=live&stream=whipstream",
        &offer("whip"),
    );
    assert_eq!(
        r.status,
        502,
        "a broken answer must never be a 2xx: {}",
        r.text()
    );
    assert!(r.text().contains("origin answer"), "{}", r.text());
    // Its session key was never stored: the client's check goes nowhere.
    let c = udp_client();
    let stun = fixture("whip/stun-binding-request.bin");
    assert_eq!(round_trip(&c, proxy.ports.webrtc, &stun), None);
    assert!(origin.udp_from.lock().unwrap().is_empty());
    // An origin error status and body pass through (spec §10 #12), with CORS.
    *origin.answer.lock().unwrap() = Answer::Status(404, "stream not found\n");
    let r = whip(&proxy, "/rtc/v1/whep/?app=live&stream=nope", &offer("whep"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "stream not found\n");
    assert_eq!(r.header("x-origin"), Some("yes"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn options_bad_offers_and_methods_are_answered_by_the_proxy() {
    let (proxy, origin) = proxy_and_origin(Answer::Fixture("whip"));
    let r = http_request(proxy.http_api(), "OPTIONS", "/rtc/v1/whep/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-methods"), Some("*"));
    assert_eq!(r.header("access-control-expose-headers"), Some("Location"));
    let r = whip(&proxy, "/rtc/v1/whip/?app=live&stream=s", b"not sdp at all");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http_request(proxy.http_api(), "GET", "/rtc/v1/whip/", &[], b"").unwrap();
    assert_eq!(r.status, 405);
    let r = http_request(
        proxy.http_api(),
        "POST",
        "/rtc/v1/play/",
        &[],
        b"{\"sdp\": 12}",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        origin.requests.lock().unwrap().is_empty(),
        "nothing reached the origin"
    );
    // Other paths on the HTTP API are not proxied.
    assert_eq!(
        http_request(proxy.http_api(), "GET", "/rtc/v1/other/", &[], b"")
            .unwrap()
            .status,
        404
    );
}

#[test]
fn legacy_json_api_rewrites_inside_the_envelope() {
    let (proxy, _origin) = proxy_and_origin(Answer::Legacy("whep"));
    let offer_sdp = String::from_utf8(offer("whep")).unwrap();
    let body = serde_json::json!({
        "api": "http://127.0.0.1/rtc/v1/play/",
        "streamurl": "webrtc://127.0.0.1/live/livestream",
        "sdp": offer_sdp,
    })
    .to_string();
    let r = http_request(
        proxy.http_api(),
        "POST",
        "/rtc/v1/play/",
        &[],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["code"], 0);
    assert_eq!(v["sessionid"], "s");
    let sdp = v["sdp"].as_str().expect("sdp field");
    for c in candidates(sdp) {
        assert!(
            c.contains(&format!(" {} typ host", proxy.ports.webrtc)),
            "{c}"
        );
    }
    let streams = proxy.get("/api/v1/streams").text();
    assert!(
        streams.contains("__defaultVhost__/live/livestream"),
        "the legacy request is keyed by its streamurl: {streams}"
    );
}

#[test]
fn stun_routes_media_migrates_and_delete_ends_the_session() {
    let (proxy, origin) = proxy_and_origin(Answer::Fixture("whip"));
    let r = whip(
        &proxy,
        "/rtc/v1/whip/?app=live&stream=whipstream",
        &offer("whip"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let stun = fixture("whip/stun-binding-request.bin");
    let rtp = [&[0x80u8, 0x60][..], &[7u8; 98]].concat();

    // Media before any check: dropped, no state.
    let c1 = udp_client();
    assert_eq!(round_trip(&c1, proxy.ports.webrtc, &rtp), None);
    assert!(webrtc_metric(&proxy, "srs_proxy_connections_total") == 0.0);
    let dropped = metric_sum(
        &proxy.metrics(),
        "srs_proxy_webrtc_dropped_datagrams_total",
        &[],
    );
    assert!(dropped >= 1.0, "dropped datagrams are counted");

    // Hostile STUN never hurts: truncated headers and attributes, huge lengths.
    for bad in [
        &stun[..19],
        &stun[..23],
        &stun[..40],
        &[0u8, 1, 0xff, 0xff][..],
    ] {
        c1.send_to(bad, ("127.0.0.1", proxy.ports.webrtc)).unwrap();
    }

    // The check binds the address; then media flows both ways.
    let echo = round_trip(&c1, proxy.ports.webrtc, &stun).expect("check reaches the origin");
    assert_eq!(&echo[5..], &stun[..]);
    let echo = round_trip(&c1, proxy.ports.webrtc, &rtp).expect("media flows after the check");
    assert_eq!(&echo[5..], &rtp[..]);

    // A new client port resumes after one check from it; the origin sees one proxy address.
    let c2 = udp_client();
    assert_eq!(
        round_trip(&c2, proxy.ports.webrtc, &rtp),
        None,
        "unknown until it checks"
    );
    assert!(round_trip(&c2, proxy.ports.webrtc, &stun).is_some());
    let echo = round_trip(&c2, proxy.ports.webrtc, &rtp).expect("media after migration");
    assert_eq!(&echo[5..], &rtp[..]);
    let seen: std::collections::HashSet<SocketAddr> =
        origin.udp_from.lock().unwrap().iter().copied().collect();
    assert_eq!(seen.len(), 1, "the origin saw one proxy address: {seen:?}");
    assert!(webrtc_metric(&proxy, "srs_proxy_connections_total") == 1.0);
    assert!(webrtc_metric(&proxy, "srs_proxy_bytes_total") > 0.0);

    // DELETE reaches the origin and ends the session: the client's datagrams now go nowhere.
    let location = r
        .header("location")
        .unwrap()
        .replace("session=x", "session=2m560r0i:qVrH");
    let d = http_request(proxy.http_api(), "DELETE", &location, &[], b"").unwrap();
    assert_eq!(d.status, 200);
    assert!(origin
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with("DELETE ")));
    let deadline = Instant::now() + Duration::from_secs(5);
    while webrtc_metric(&proxy, "srs_proxy_active_connections") > 0.0 {
        assert!(Instant::now() < deadline, "session not ended after DELETE");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(round_trip(&c2, proxy.ports.webrtc, &rtp), None);
    assert_eq!(
        round_trip(&c2, proxy.ports.webrtc, &stun),
        None,
        "the binding is gone too"
    );
    assert!(proxy.logs().contains("deleted by the client"));
}

#[test]
fn quiet_session_expires_and_dtls_alert_ends_one() {
    let (proxy, _origin) = proxy_and_origin(Answer::Fixture("whep"));
    let r = whip(
        &proxy,
        "/rtc/v1/whep/?app=live&stream=livestream",
        &offer("whep"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let stun = fixture("whep/stun-binding-request.bin");
    let c = udp_client();
    assert!(round_trip(&c, proxy.ports.webrtc, &stun).is_some());
    assert_eq!(webrtc_metric(&proxy, "srs_proxy_active_connections"), 1.0);
    // Silence both ways: gone after the 30 s idle timeout (plus the 1 s sweep).
    let deadline = Instant::now() + Duration::from_secs(40);
    while webrtc_metric(&proxy, "srs_proxy_active_connections") > 0.0 {
        assert!(Instant::now() < deadline, "idle session not expired");
        thread::sleep(Duration::from_millis(500));
    }
    assert!(
        proxy.logs().contains("idle for 30s"),
        "{}",
        proxy.logs_tail(20)
    );

    // A new exchange, then a DTLS alert record from the client ends it at once.
    let r = whip(
        &proxy,
        "/rtc/v1/whep/?app=live&stream=livestream",
        &offer("whep"),
    );
    assert_eq!(r.status, 201);
    assert!(round_trip(&c, proxy.ports.webrtc, &stun).is_some());
    let alert = [21u8, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 3, 0, 2, 1, 0];
    c.send_to(&alert, ("127.0.0.1", proxy.ports.webrtc))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while webrtc_metric(&proxy, "srs_proxy_active_connections") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "session not ended by the DTLS alert"
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert!(proxy.logs().contains("DTLS alert"));
}
