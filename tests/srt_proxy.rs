//! End-to-end SRT through the proxy with real peers (issue 5; spec §5.7, §10 #19–#21):
//! ffmpeg (libsrt) callers, `srt-live-transmit` and ffmpeg listeners as origins, registered
//! through the system API as SRS heartbeats with an `srt` endpoint. Everything on 127.0.0.1.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use rand::RngCore;
use support::srt::{
    caller_url, packet_hashes, register_srt, source_ts, SrtPublisher, SrtSink, SrtTsSource,
};
use support::*;

const H264_AAC: [&str; 2] = ["aac", "h264"];
const PASSPHRASE: &str = "srs-proxy-secret-1";

fn publish_sid(stream: &str) -> String {
    format!("#!::r=live/{stream},m=publish")
}

fn play_sid(stream: &str) -> String {
    format!("#!::r=live/{stream},m=request")
}

fn srt_metric(proxy: &Proxy, name: &str) -> f64 {
    metric_sum(&proxy.metrics(), name, &[("protocol", "srt")])
}

/// Publishes the source TS once through the proxy into an `srt-live-transmit` origin and checks
/// that every packet arrived intact (same stream, size and MD5, in order).
fn publish_intact(passphrase: Option<&str>) {
    let proxy = Proxy::start(&[]);
    let sink = SrtSink::start(passphrase);
    register_srt(&proxy, &OriginIds::numbered(1), sink.port);

    // Reliable for the comparison: a loaded test machine must not make libsrt drop late packets.
    let url = caller_url(proxy.ports.srt, &publish_sid("livestream"), passphrase) + "&tlpktdrop=0";
    let mut publisher = SrtPublisher::start(&url, false);
    let status = publisher
        .wait_exit(Duration::from_secs(30))
        .expect("publisher finished the 4 s source");
    assert!(status.success(), "publisher failed: {}", publisher.stderr());
    // srt-live-transmit writes as it receives; let the last packets land.
    let source = std::fs::metadata(source_ts()).expect("source").len();
    poll_until(Duration::from_secs(3), || {
        sink.captured_len() * 10 >= source * 9
    });

    let want = packet_hashes(&source_ts());
    let got = packet_hashes(&sink.capture_path());
    assert!(
        got.len() * 10 >= want.len() * 8,
        "captured {} of {} packets ({} of {} bytes)",
        got.len(),
        want.len(),
        sink.captured_len(),
        source
    );
    let n = got.len().min(want.len());
    for i in 0..n {
        assert_eq!(got[i], want[i], "packet {i} differs (stream,size,md5)");
    }
    let metrics = proxy.metrics();
    let c2o = metric_sum(
        &metrics,
        "srs_proxy_bytes_total",
        &[("protocol", "srt"), ("direction", "client_to_origin")],
    );
    assert!(
        c2o as u64 >= sink.captured_len(),
        "client_to_origin bytes {c2o}"
    );
    assert!(
        metric_sum(
            &metrics,
            "srs_proxy_connections_total",
            &[("protocol", "srt")]
        ) >= 1.0,
        "srt connection counted"
    );
    // ffmpeg ends with SHUTDOWN: the session goes at once, not after the idle period.
    wait_until(Duration::from_secs(5), "srt session closed", || {
        srt_metric(&proxy, "srs_proxy_active_connections") == 0.0
    });
}

#[test]
fn publish_ts_through_proxy_arrives_intact() {
    publish_intact(None);
}

#[test]
fn encrypted_publish_through_proxy_arrives_intact() {
    publish_intact(Some(PASSPHRASE));
}

fn play_probes(passphrase: Option<&str>) {
    let proxy = Proxy::start(&[]);
    let origin = SrtTsSource::start(passphrase);
    register_srt(&proxy, &OriginIds::numbered(1), origin.port);
    let url = caller_url(proxy.ports.srt, &play_sid("livestream"), passphrase);
    let mut codecs = ffprobe(&url).unwrap_or_else(|e| panic!("{e}\norigin: {}", origin.stderr()));
    // ffprobe lists a TS stream under its program and again on its own.
    codecs.dedup();
    assert_eq!(codecs, H264_AAC, "codecs at {url}");
    let o2c = metric_sum(
        &proxy.metrics(),
        "srs_proxy_bytes_total",
        &[("protocol", "srt"), ("direction", "origin_to_client")],
    );
    assert!(o2c > 10_000.0, "origin_to_client bytes {o2c}");
}

#[test]
fn play_ts_through_proxy_probes_h264_aac() {
    play_probes(None);
}

#[test]
fn encrypted_play_through_proxy_probes_h264_aac() {
    play_probes(Some(PASSPHRASE));
}

// The origin refuses (passphrase missing on the caller): the caller hears a rejection at once,
// not a timeout.
#[test]
fn origin_rejection_reaches_the_caller_as_a_rejection() {
    let proxy = Proxy::start(&[]);
    let sink = SrtSink::start(Some(PASSPHRASE));
    register_srt(&proxy, &OriginIds::numbered(1), sink.port);
    let url = caller_url(proxy.ports.srt, &publish_sid("locked"), None);
    let started = Instant::now();
    let mut publisher = SrtPublisher::start(&url, false);
    let status = publisher
        .wait_exit(Duration::from_secs(20))
        .expect("publisher gives up");
    assert!(
        !status.success(),
        "publish without the passphrase must fail"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "rejected in {:?}: looks like a timeout, not a rejection; stderr: {}",
        started.elapsed(),
        publisher.stderr()
    );
    assert_eq!(sink.captured_len(), 0);
    wait_until(
        Duration::from_secs(5),
        "origin_rejected error counted",
        || {
            metric_sum(
                &proxy.metrics(),
                "srs_proxy_errors_total",
                &[("protocol", "srt"), ("kind", "origin_rejected")],
            ) >= 1.0
        },
    );
}

// A silent origin (a UDP socket that never answers) times its caller out with a rejection while
// another caller's stream, already flowing to a live origin, keeps flowing.
#[test]
fn silent_origin_times_out_its_caller_while_another_stream_flows() {
    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "2s")]);
    let sink = SrtSink::start(None);
    // Registered once: after the TTL it is dead for new picks, but its session keeps going.
    register_srt(&proxy, &OriginIds::numbered(1), sink.port);
    let url = caller_url(proxy.ports.srt, &publish_sid("flowing"), None);
    let mut publisher = SrtPublisher::start(&url, true);
    wait_until(Duration::from_secs(10), "the good stream flows", || {
        sink.captured_len() > 50_000
    });

    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind silent origin");
    let silent_port = silent.local_addr().expect("addr").port();
    let silent_ids = OriginIds::numbered(2);
    let beat = Heartbeat::start(
        proxy.system_api(),
        serde_json::json!({
            "device_id": silent_ids.device_id, "ip": "127.0.0.1", "server": silent_ids.server,
            "service": silent_ids.service, "pid": silent_ids.pid,
            "rtmp": [free_tcp_port().to_string()],
            "srt": [format!("udp://0.0.0.0:{silent_port}")],
        })
        .to_string(),
        Duration::from_millis(500),
    );
    // Past the good origin's TTL: new keys go to the silent one.
    std::thread::sleep(Duration::from_millis(2500));

    let before = sink.captured_len();
    let started = Instant::now();
    let stuck_url = caller_url(proxy.ports.srt, &publish_sid("stuck"), None);
    let mut stuck = SrtPublisher::start(&stuck_url, false);
    let status = stuck
        .wait_exit(Duration::from_secs(20))
        .expect("the stuck caller gives up");
    assert!(!status.success(), "a caller of a silent origin must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up after {:?}",
        started.elapsed()
    );
    // The silent origin got the replayed induction (so it was really tried).
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    assert!(
        silent.recv(&mut buf).is_ok(),
        "the silent origin saw the replay"
    );

    // Meanwhile the first stream kept flowing, and still does.
    assert!(
        publisher.is_running(),
        "good publisher: {}",
        publisher.stderr()
    );
    let mid = sink.captured_len();
    assert!(mid > before, "the good stream stalled during the timeout");
    wait_until(
        Duration::from_secs(5),
        "the good stream still flows",
        || sink.captured_len() > mid + 20_000,
    );
    wait_until(Duration::from_secs(5), "srt timeout counted", || {
        metric_sum(
            &proxy.metrics(),
            "srs_proxy_errors_total",
            &[("protocol", "srt"), ("kind", "timeout")],
        ) >= 1.0
    });
    assert!(proxy.logs().contains("did not finish the handshake"));
    drop(beat);
}

// Garbage at the SRT port creates no session and does not stop the proxy serving.
#[test]
fn garbage_datagrams_create_no_state_and_service_continues() {
    let proxy = Proxy::start(&[]);
    let sink = SrtSink::start(None);
    register_srt(&proxy, &OriginIds::numbered(1), sink.port);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = ("127.0.0.1", proxy.ports.srt);
    let mut rng = rand::thread_rng();
    let mut sent = 0u32;
    for i in 0..2000u32 {
        let len = (rng.next_u32() % 1600) as usize;
        let mut d = vec![0u8; len];
        rng.fill_bytes(&mut d);
        match i % 4 {
            // Handshake-shaped: control, type 0, dest 0.
            0 if len >= 64 => {
                d[0..4].copy_from_slice(&0x8000_0000u32.to_be_bytes());
                d[12..16].copy_from_slice(&[0; 4]);
                // Conclusion with a made-up cookie, or induction.
                let t: u32 = if i % 8 == 0 { 0xFFFF_FFFF } else { 1 };
                d[36..40].copy_from_slice(&t.to_be_bytes());
            }
            // Data for a random socket id.
            1 if len >= 16 => d[0] &= 0x7F,
            // SHUTDOWN for a random socket id.
            2 if len >= 16 => d[0..4].copy_from_slice(&0x8005_0000u32.to_be_bytes()),
            _ => {}
        }
        if sock.send_to(&d, target).is_ok() {
            sent += 1;
        }
    }
    assert!(sent > 1000);
    wait_until(Duration::from_secs(5), "drops counted", || {
        metric_sum(
            &proxy.metrics(),
            "srs_proxy_srt_dropped_datagrams_total",
            &[],
        ) >= 500.0
    });
    assert_eq!(srt_metric(&proxy, "srs_proxy_connections_total"), 0.0);
    assert_eq!(srt_metric(&proxy, "srs_proxy_active_connections"), 0.0);

    // Still serving.
    let url = caller_url(proxy.ports.srt, &publish_sid("after-garbage"), None);
    let mut publisher = SrtPublisher::start(&url, false);
    let status = publisher
        .wait_exit(Duration::from_secs(30))
        .expect("publisher finished");
    assert!(status.success(), "publisher failed: {}", publisher.stderr());
    assert!(
        sink.captured_len() > 100_000,
        "captured {}",
        sink.captured_len()
    );
    let mut proxy = proxy;
    assert!(proxy.is_running());
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../shared/fixtures/srt/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The next handshake datagram on `sock` (keepalives and ACKs from an established origin are
/// skipped).
fn recv_handshake(sock: &UdpSocket) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            if n >= 64 && be32(&buf, 0) == 0x8000_0000 {
                return buf[..n].to_vec();
            }
        }
    }
    panic!("no handshake answer within 4 s");
}

// Handshake retransmits get consistent answers (spec §5.7; issue 5): a raw caller replaying the
// captured ffmpeg handshake against a real srt-live-transmit origin.
#[test]
fn handshake_retransmits_get_the_same_answer() {
    let proxy = Proxy::start(&[]);
    let sink = SrtSink::start(None);
    register_srt(&proxy, &OriginIds::numbered(1), sink.port);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(("127.0.0.1", proxy.ports.srt))
        .expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");

    let induction = fixture("publish-induction-request.bin");
    let caller_id = be32(&induction, 40);
    sock.send(&induction).expect("send induction");
    let r1 = recv_handshake(&sock);
    sock.send(&induction).expect("resend induction");
    let r2 = recv_handshake(&sock);
    for r in [&r1, &r2] {
        assert_eq!(be32(r, 36), 1, "induction response type");
        assert_eq!(be32(r, 12), caller_id, "dest = caller socket id");
        assert_eq!(be32(r, 40), caller_id, "caller's socket id echoed");
        assert_eq!(be32(r, 16), 5, "HSv5");
    }
    let cookie = be32(&r1, 44);
    assert_eq!(
        cookie,
        be32(&r2, 44),
        "same cookie for a retransmitted induction"
    );

    let mut conclusion = fixture("publish-conclusion-request.bin");
    conclusion[44..48].copy_from_slice(&cookie.to_be_bytes());
    sock.send(&conclusion).expect("send conclusion");
    let a1 = recv_handshake(&sock);
    assert_eq!(
        be32(&a1, 36),
        0xFFFF_FFFF,
        "the origin accepted: {:02x?}",
        &a1[..64]
    );
    assert_eq!(
        be32(&a1, 44),
        cookie,
        "our cookie restored in the origin's answer"
    );
    sock.send(&conclusion).expect("resend conclusion");
    let a2 = recv_handshake(&sock);
    assert_eq!(a1, a2, "a retransmitted conclusion gets the same answer");

    // A stale cookie creates nothing.
    let mut stale = conclusion.clone();
    stale[44..48].copy_from_slice(&(cookie ^ 0x5a5a_5a5a).to_be_bytes());
    stale[40..44].copy_from_slice(&(caller_id ^ 1).to_be_bytes());
    sock.send(&stale).expect("send stale");

    wait_until(Duration::from_secs(5), "one established session", || {
        srt_metric(&proxy, "srs_proxy_active_connections") == 1.0
    });
    // SHUTDOWN to the origin's socket id ends the session at once.
    let origin_id = be32(&a1, 40);
    let mut shutdown = [0u8; 16];
    shutdown[0..4].copy_from_slice(&0x8005_0000u32.to_be_bytes());
    shutdown[12..16].copy_from_slice(&origin_id.to_be_bytes());
    sock.send(&shutdown).expect("send shutdown");
    let ended = poll_until(Duration::from_secs(5), || {
        srt_metric(&proxy, "srs_proxy_active_connections") == 0.0
    });
    assert!(
        ended,
        "session not ended by SHUTDOWN: {}",
        metric_samples(&proxy.metrics(), "srs_proxy_active_connections")
            .iter()
            .map(|s| format!("{:?}={}", s.labels, s.value))
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert_eq!(srt_metric(&proxy, "srs_proxy_connections_total"), 1.0);
}

// Spec §2.2: an SRT port held by someone else is fatal, with a line naming the variable.
#[test]
fn srt_port_in_use_exits_nonzero_naming_it() {
    let squatter = UdpSocket::bind("127.0.0.1:0").expect("bind squatter");
    let mut ports = ProxyPorts::pick();
    ports.srt = squatter.local_addr().expect("addr").port();
    let (status, logs) = run_proxy_expecting_exit(ports, &[], Duration::from_secs(10));
    assert!(!status.success(), "exit {status}; logs:\n{logs}");
    assert_eq!(status.code(), Some(255), "logs:\n{logs}");
    assert!(
        logs.contains("PROXY_SRT_SERVER") && logs.contains(&ports.srt.to_string()),
        "no line names the SRT listener {}:\n{logs}",
        ports.srt
    );
    drop(squatter);
}

/// When both peers go silent (SIGSTOP: no data, no keepalive, no SHUTDOWN: a power cut, a dead
/// network) the session ends once neither side has sent a datagram for 30 s (spec §10 #19/#20),
/// and the proxy says so.
#[test]
fn silent_caller_session_expires_after_the_quiet_period() {
    let proxy = Proxy::start(&[]);
    let sink = SrtSink::start(None);
    register_srt(&proxy, &OriginIds::numbered(1), sink.port);
    let url = caller_url(proxy.ports.srt, &publish_sid("goes-quiet"), None);
    let publisher = SrtPublisher::start(&url, true);
    wait_until(Duration::from_secs(10), "the stream flows", || {
        sink.captured_len() > 50_000
    });
    assert_eq!(srt_metric(&proxy, "srs_proxy_active_connections"), 1.0);
    support::proc::signal(publisher.pid(), libc::SIGSTOP);
    support::proc::signal(sink.pid(), libc::SIGSTOP);
    let stopped = Instant::now();
    wait_until(Duration::from_secs(60), "the quiet session expires", || {
        srt_metric(&proxy, "srs_proxy_active_connections") == 0.0
    });
    support::proc::signal(publisher.pid(), libc::SIGCONT);
    support::proc::signal(sink.pid(), libc::SIGCONT);
    assert!(
        stopped.elapsed() >= Duration::from_secs(30),
        "expired after {:?}, before the 30 s quiet period",
        stopped.elapsed()
    );
    assert!(
        proxy.logs().contains("idle for 30s"),
        "{}",
        proxy.logs_tail(20)
    );
}
