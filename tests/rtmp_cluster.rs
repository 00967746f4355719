//! End-to-end tests of the RTMP origin cluster with real peers (spec §9.1 rows 3–7, 9–12,
//! 17–23, 40, 41): nginx-rtmp origins registered through the system API as SRS heartbeats,
//! ffmpeg publishing and ffprobe/ffmpeg playing through the proxy, everything on 127.0.0.1.
//!
//! Every test owns its proxy, origins and ports, so they run in parallel.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use support::nginx::HookRecorder;
use support::rtmp_raw;
use support::*;

const H264_AAC: [&str; 2] = ["aac", "h264"];

/// Index of the origin publishing `stream`, asserting that no other origin has it.
fn holder(origins: &[&NginxRtmpOrigin], stream: &str) -> Option<usize> {
    let found: Vec<usize> = origins
        .iter()
        .enumerate()
        .filter(|(_, o)| o.stream(stream).is_some_and(|s| s.publishers >= 1))
        .map(|(i, _)| i)
        .collect();
    assert!(
        found.len() <= 1,
        "stream {stream} is published on more than one origin: {found:?}"
    );
    found.first().copied()
}

fn wait_holder(origins: &[&NginxRtmpOrigin], stream: &str, timeout: Duration) -> usize {
    wait_for(
        timeout,
        &format!("stream {stream} on one origin's /stat"),
        || holder(origins, stream),
    )
}

fn two_registered_origins(proxy: &Proxy) -> (NginxRtmpOrigin, NginxRtmpOrigin) {
    let a = NginxRtmpOrigin::start();
    let b = NginxRtmpOrigin::start();
    register(proxy, &a, &OriginIds::numbered(1));
    register(proxy, &b, &OriginIds::numbered(2));
    (a, b)
}

fn assert_probe(url: &str) {
    let codecs = ffprobe(url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(codecs, H264_AAC, "codecs at {url}");
}

// Rows 7, 17, 18, 20, 22: publish through the proxy, the stream lives on exactly one origin,
// plays back through the proxy, unpublishes cleanly, and a restart sticks to the same origin.
#[test]
fn publish_through_proxy_lands_on_one_origin_and_plays_back() {
    let proxy = Proxy::start(&[]);
    let (a, b) = two_registered_origins(&proxy);
    let origins = [&a, &b];

    // Each request may land on either core; registrations are broadcast to every core.
    wait_until(
        Duration::from_secs(5),
        "both origins in /api/v1/origins",
        || {
            let listed = proxy.get("/api/v1/origins");
            listed.status == 200
                && [1, 2]
                    .iter()
                    .all(|n| listed.text().contains(&OriginIds::numbered(*n).server))
        },
    );

    let mut publisher = ffmpeg_publish(&proxy.rtmp_url("livestream"), 60);
    let first = wait_holder(&origins, "livestream", Duration::from_secs(15));
    assert_probe(&proxy.rtmp_url("livestream"));
    assert_probe(&origins[first].rtmp_url("livestream"));
    assert!(publisher.is_running(), "publisher: {}", publisher.stderr());

    // The pin is decided by one owner core and cached where it is used: poll until the core
    // answering this request knows it.
    let holder_ids = OriginIds::numbered(first as u32 + 1);
    wait_until(
        Duration::from_secs(5),
        "/api/v1/streams pinning live/livestream to the holder",
        || {
            let pins = proxy.get("/api/v1/streams").text();
            pins.contains("live/livestream") && pins.contains(&holder_ids.server)
        },
    );

    let metrics = proxy.metrics();
    // The probe's play switched to splice once its chunk streams matched the origin's, and
    // ffprobe still decoded both tracks (nginx-rtmp compresses its media headers, so the relay
    // went through its rewriting states first).
    assert!(
        metric_sum(
            &metrics,
            "srs_proxy_relays_spliced_total",
            &[("protocol", "rtmp")]
        ) >= 1.0,
        "no spliced RTMP relay in metrics:\n{metrics}"
    );
    for direction in ["client_to_origin", "origin_to_client"] {
        let bytes = metric_sum(
            &metrics,
            "srs_proxy_bytes_total",
            &[("protocol", "rtmp"), ("direction", direction)],
        );
        assert!(
            bytes > 0.0,
            "no rtmp {direction} bytes in metrics:\n{metrics}"
        );
    }

    // Unpublish reaches the origin promptly.
    publisher.stop();
    wait_until(Duration::from_secs(5), "unpublish on the origin", || {
        holder(&origins, "livestream").is_none()
    });

    // A restarted publisher goes back to the pinned origin.
    let _again = ffmpeg_publish(&proxy.rtmp_url("livestream"), 60);
    let second = wait_holder(&origins, "livestream", Duration::from_secs(15));
    assert_eq!(first, second, "the stream moved origins on republish");
    assert_probe(&proxy.rtmp_url("livestream"));
}

// Rows 10, 18: many plays of several streams, accepted on both cores, each stream only on the
// origin that holds it.
#[test]
fn twenty_plays_of_each_of_three_streams_use_both_cores() {
    let proxy = Proxy::start(&[("PROXY_CORES", "2"), ("PROXY_LOG_LEVEL", "debug")]);
    let (a, b) = two_registered_origins(&proxy);
    let origins = [&a, &b];
    let streams = ["multi0", "multi1", "multi2"];
    let _publishers: Vec<FfmpegPublisher> = streams
        .iter()
        .map(|s| ffmpeg_publish(&proxy.rtmp_url(s), 120))
        .collect();
    let holders: Vec<usize> = streams
        .iter()
        .map(|s| wait_holder(&origins, s, Duration::from_secs(15)))
        .collect();

    const PLAYS_PER_STREAM: usize = 20;
    const WORKERS: usize = 6;
    let jobs: Vec<&str> = streams
        .iter()
        .flat_map(|s| std::iter::repeat_n(*s, PLAYS_PER_STREAM))
        .collect();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(stream) = jobs.get(i) else { break };
                match ffprobe(&proxy.rtmp_url(stream)) {
                    Ok(codecs) if codecs == H264_AAC => {}
                    Ok(codecs) => failures
                        .lock()
                        .unwrap()
                        .push(format!("play {i} of {stream}: codecs {codecs:?}")),
                    Err(e) => failures
                        .lock()
                        .unwrap()
                        .push(format!("play {i} of {stream}: {e}")),
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} plays failed:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );

    for (stream, first) in streams.iter().zip(&holders) {
        assert_eq!(
            holder(&origins, stream),
            Some(*first),
            "{stream} moved or vanished"
        );
    }

    let metrics = proxy.metrics();
    let total = metric_sum(
        &metrics,
        "srs_proxy_connections_total",
        &[("protocol", "rtmp")],
    );
    assert!(
        total >= (jobs.len() + streams.len()) as f64,
        "rtmp connections_total {total} < {}:\n{metrics}",
        jobs.len() + streams.len()
    );
    for core in ["0", "1"] {
        let accepted = metric_sum(
            &metrics,
            "srs_proxy_connections_total",
            &[("protocol", "rtmp"), ("core", core)],
        );
        assert!(
            accepted > 0.0,
            "core {core} accepted no rtmp connection (SO_REUSEPORT spreads {total} over 2 \
             cores):\n{metrics}"
        );
    }
    assert!(
        metric_sum(&metrics, "srs_proxy_picks_total", &[]) >= 1.0,
        "no picks counted:\n{metrics}"
    );
}

// Row 21: the stream name's query and the client's tcUrl reach the origin's on_publish hook.
#[test]
fn publish_query_string_reaches_origin_on_publish_hook() {
    let hook = HookRecorder::start();
    let origin = NginxRtmpOrigin::start_with(NginxOptions {
        on_publish: Some(hook.url("/on_publish")),
        ..NginxOptions::default()
    });
    let proxy = Proxy::start(&[]);
    register(&proxy, &origin, &OriginIds::numbered(1));
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("livestream?secret=x"), 30);
    let body = hook.wait_for_body("call=publish", Duration::from_secs(15));
    assert!(body.contains("name=livestream"), "hook body: {body}");
    assert!(body.contains("secret=x"), "query lost on the way: {body}");
    assert!(body.contains("app=live"), "hook body: {body}");
    assert!(
        body.contains(&format!("127.0.0.1%3A{}", proxy.ports.rtmp))
            || body.contains(&format!("127.0.0.1:{}", proxy.ports.rtmp)),
        "the client's tcUrl (proxy port {}) should reach the origin verbatim: {body}",
        proxy.ports.rtmp
    );
    wait_until(Duration::from_secs(10), "the stream on the origin", || {
        origin.stream("livestream").is_some()
    });
}

// Rows 11, 22: the origin holding a stream dies → the proxied player is closed; once it stops
// heartbeating, a re-publish lands on the live origin.
#[test]
fn killing_the_holding_origin_closes_the_player_and_republish_moves() {
    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "3s")]);
    let mut a = NginxRtmpOrigin::start();
    let mut b = NginxRtmpOrigin::start();
    let beat = |o: &NginxRtmpOrigin, n: u32| {
        Heartbeat::start(
            proxy.system_api(),
            register_body(o, &OriginIds::numbered(n)),
            Duration::from_millis(500),
        )
    };
    let mut heartbeats = vec![Some(beat(&a, 1)), Some(beat(&b, 2))];
    wait_until(Duration::from_secs(5), "both origins listed", || {
        let text = proxy.get("/api/v1/origins").text();
        text.contains("vid-test001") && text.contains("vid-test002")
    });

    let mut publisher = ffmpeg_publish(&proxy.rtmp_url("moving"), 120);
    let dead = wait_holder(&[&a, &b], "moving", Duration::from_secs(15));
    let mut player = spawn_ffmpeg_play(&proxy.rtmp_url("moving"));
    {
        let origins = [&a, &b];
        wait_until(
            Duration::from_secs(15),
            "the proxied player on the origin",
            || {
                origins[dead]
                    .stream("moving")
                    .is_some_and(|s| s.players >= 1)
            },
        );
    }
    assert!(player.is_running(), "player: {}", player.stderr());

    // The origin dies and stops heartbeating.
    heartbeats[dead] = None;
    let (dead_origin, live_origin) = if dead == 0 {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    dead_origin.kill();
    let killed_at = Instant::now();
    assert!(
        player.wait_exit(Duration::from_secs(10)).is_some(),
        "the proxied player was not closed within 10 s of the origin's death"
    );
    assert!(
        publisher.wait_exit(Duration::from_secs(10)).is_some(),
        "the proxied publisher was not closed within 10 s of the origin's death"
    );
    eprintln!("clients closed {:?} after the kill", killed_at.elapsed());

    // Re-publish until the stream lands on the live origin (the proxy may re-pick at once on a
    // refused dial, or only after the dead origin's 3 s TTL).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    let mut _republisher = loop {
        attempts += 1;
        let mut p = ffmpeg_publish(&proxy.rtmp_url("moving"), 120);
        let landed = poll_until(Duration::from_secs(6), || {
            live_origin
                .stream("moving")
                .is_some_and(|s| s.publishers == 1)
                || !p.is_running()
        }) && p.is_running();
        if landed {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "after {attempts} re-publishes the stream never landed on the live origin; last \
             publisher: {}",
            p.stderr()
        );
        p.stop();
    };
    assert_probe(&proxy.rtmp_url("moving"));
    drop(heartbeats);
}

// §6.2: hostile bytes never take the proxy down.
#[test]
fn garbage_at_rtmp_and_system_api_ports_leaves_proxy_serving() {
    let proxy = Proxy::start(&[]);
    let origin = NginxRtmpOrigin::start();
    register(&proxy, &origin, &OriginIds::numbered(1));

    let mut rng = rand::thread_rng();
    for addr in [proxy.rtmp_addr(), proxy.system_api()] {
        for round in 0..4 {
            let mut garbage = vec![0u8; 64 * 1024];
            rng.fill_bytes(&mut garbage);
            if round == 1 {
                garbage[0] = 3; // a valid RTMP version byte, so the handshake proceeds
            }
            blast(addr, &garbage);
        }
        // A connection that stops mid-handshake.
        blast(addr, &[3u8; 700]);
    }

    let mut proxy = proxy;
    assert!(
        proxy.is_running(),
        "the proxy died:\n{}",
        proxy.logs_tail(40)
    );
    assert_eq!(proxy.get("/api/v1/versions").status, 200);
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("survivor"), 30);
    wait_holder(&[&origin], "survivor", Duration::from_secs(15));
    assert_probe(&proxy.rtmp_url("survivor"));
    assert!(proxy.is_running());
}

/// Writes `bytes` (ignoring a peer that hangs up early), then drains until close or 5 s.
fn blast(addr: SocketAddr, bytes: &[u8]) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        panic!("cannot connect to {addr}");
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(bytes);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
}

// Row 5.
#[test]
fn register_seed_json_returns_code_zero_and_proxy_pid() {
    let proxy = Proxy::start(&[]);
    let resp = post_register(
        proxy.system_api(),
        r#"{"ip":"127.0.0.1","server":"s","service":"v","pid":"1","rtmp":["19351"]}"#,
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "content-type: {:?}",
        resp.header("content-type")
    );
    let json = resp.json();
    assert_eq!(json["code"], 0, "{json}");
    assert_eq!(json["pid"], proxy.pid().to_string(), "{json}");
}

// Row 6: each missing required field is named, in the Go order.
#[test]
fn register_rejects_each_missing_required_field_by_name() {
    let proxy = Proxy::start(&[]);
    let full = serde_json::json!({
        "ip": "127.0.0.1", "server": "s", "service": "v", "pid": "1", "rtmp": ["19351"]
    });
    for field in ["ip", "server", "service", "pid", "rtmp"] {
        let mut body = full.clone();
        body.as_object_mut().expect("object").remove(field);
        let resp = post_register(proxy.system_api(), &body.to_string(), &[]);
        assert!(
            (400..600).contains(&resp.status),
            "register without {field}: expected an error status, got {}: {}",
            resp.status,
            resp.text()
        );
        assert!(
            resp.text().contains(&format!("empty {field}")),
            "register without {field}: body should say `empty {field}`: {}",
            resp.text()
        );
    }
}

fn fixtures_dir() -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/srs-heartbeat");
    assert!(
        dir.is_dir(),
        "{} is missing: the repo expects shared/ beside it",
        dir.display()
    );
    dir
}

// Row 7: every captured SRS 7.0 heartbeat registers (ports rewritten to a live nginx) and
// routes a publish there; `ports-off` (no `rtmp`) is refused with `empty rtmp`.
#[test]
fn real_srs_heartbeat_fixtures_register_and_route() {
    let origin = NginxRtmpOrigin::start();
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("read fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "too few fixtures: {names:?}");
    for name in &names {
        let raw = std::fs::read_to_string(fixtures_dir().join(name)).expect("read fixture");
        let body = raw
            .replace("51935", &origin.rtmp_port.to_string())
            .replace("51080", &origin.http_port.to_string());
        let proxy = Proxy::start(&[]);
        let resp = post_register(proxy.system_api(), &body, &[]);
        if name == "ports-off.json" {
            assert!(
                (400..600).contains(&resp.status) && resp.text().contains("empty rtmp"),
                "{name}: expected an `empty rtmp` error, got {}: {}",
                resp.status,
                resp.text()
            );
            continue;
        }
        assert_eq!(resp.status, 200, "{name}: {}", resp.text());
        assert_eq!(resp.json()["code"], 0, "{name}: {}", resp.text());
        let stream = format!("fx-{}", name.trim_end_matches(".json"));
        let _publisher = ffmpeg_publish(&proxy.rtmp_url(&stream), 20);
        wait_until(
            Duration::from_secs(15),
            &format!("{name}: {stream} routed to the registered origin"),
            || origin.stream(&stream).is_some_and(|s| s.publishers == 1),
        );
    }
}

// Row 43: bearer auth on the register API; versions stays open.
#[test]
fn bearer_auth_guards_register_but_not_versions() {
    let proxy = Proxy::start(&[
        ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
        ("PROXY_HTTP_API_AUTH_TYPE", "bearer"),
        ("PROXY_HTTP_API_AUTH_TOKEN", "t"),
    ]);
    let body = r#"{"ip":"127.0.0.1","server":"s","service":"v","pid":"1","rtmp":["19351"]}"#;
    for (label, headers) in [
        ("no token", vec![]),
        ("wrong token", vec![("Authorization", "Bearer nope")]),
    ] {
        let resp = post_register(proxy.system_api(), body, &headers);
        assert_eq!(resp.status, 401, "{label}: {}", resp.text());
        assert!(
            resp.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{label}: WWW-Authenticate: {:?}",
            resp.header("www-authenticate")
        );
    }
    let ok = post_register(proxy.system_api(), body, &[("Authorization", "Bearer t")]);
    assert_eq!(ok.status, 200, "right token: {}", ok.text());
    assert_eq!(ok.json()["code"], 0);
    assert_eq!(proxy.get("/api/v1/versions").status, 200);
}

// Row 9.
#[test]
fn versions_answer_on_system_api_and_http_api() {
    let proxy = Proxy::start(&[]);
    for addr in [proxy.system_api(), proxy.http_api()] {
        let resp = support::http::get(addr, "/api/v1/versions");
        assert_eq!(resp.status, 200, "{addr}: {}", resp.text());
        let json = resp.json();
        assert!(
            json["signature"].is_string() && json["version"].is_string(),
            "{addr}: expected {{signature, version}}: {json}"
        );
    }
}

// A heartbeat whose body stalls gets a 408 once the body deadline (10 s per read, kept to about a
// second by the per-core sweep of `executors::coarse`) passes, and the connection closes.
#[test]
fn a_stalled_register_body_gets_408_after_the_body_deadline() {
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.system_api()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        b"POST /api/v1/srs/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ip\":\"1",
    )
    .unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)
        .expect("the proxy answers and closes");
    let took = started.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(
        took >= Duration::from_secs(8) && took < Duration::from_secs(14),
        "a 10 s body deadline fired after {took:?}"
    );
}

// Row 4: a bad duration is fatal and named.
#[test]
fn bad_grace_quit_timeout_exits_nonzero_naming_the_variable() {
    let (status, logs) = run_proxy_expecting_exit(
        ProxyPorts::pick(),
        &[("PROXY_GRACE_QUIT_TIMEOUT", Some("forever"))],
        Duration::from_secs(10),
    );
    assert!(!status.success(), "exit {status}; logs:\n{logs}");
    assert!(
        logs.lines().any(|l| l.contains("PROXY_GRACE_QUIT_TIMEOUT")),
        "no line names PROXY_GRACE_QUIT_TIMEOUT:\n{logs}"
    );
}

// Row 4: a missing static dir is fatal and named.
#[test]
fn missing_static_dir_exits_nonzero_naming_it() {
    let (status, logs) = run_proxy_expecting_exit(
        ProxyPorts::pick(),
        &[("PROXY_STATIC_FILES", Some("/nonexistent/srs-proxy-static"))],
        Duration::from_secs(10),
    );
    assert!(!status.success(), "exit {status}; logs:\n{logs}");
    assert!(
        logs.contains("PROXY_STATIC_FILES") || logs.contains("/nonexistent/srs-proxy-static"),
        "no line names the static dir:\n{logs}"
    );
}

// Row 4: the RTMP port taken by someone else is fatal and named.
#[test]
fn rtmp_port_in_use_exits_nonzero_naming_it() {
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind squatter");
    let mut ports = ProxyPorts::pick();
    ports.rtmp = squatter.local_addr().expect("addr").port();
    let (status, logs) = run_proxy_expecting_exit(ports, &[], Duration::from_secs(10));
    assert!(!status.success(), "exit {status}; logs:\n{logs}");
    assert!(
        logs.contains(&ports.rtmp.to_string()) || logs.contains("PROXY_RTMP_SERVER"),
        "no line names the RTMP listener {}:\n{logs}",
        ports.rtmp
    );
    drop(squatter);
}

// Row 40.
#[test]
fn sigterm_on_idle_proxy_exits_zero_promptly() {
    let mut proxy = Proxy::start(&[("PROXY_GRACE_QUIT_TIMEOUT", "3s")]);
    let status = proxy
        .sigterm_and_wait(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", proxy.logs_tail(30)));
    assert!(status.success(), "exit {status}:\n{}", proxy.logs_tail(30));
}

// Row 3: `.env` in the working directory fills unset variables; the process env wins.
#[test]
fn dotenv_fills_unset_variables_and_exported_ones_win() {
    let ports = ProxyPorts::pick();
    let shadowed = free_tcp_port();
    let dotenv = format!(
        "# from .env\nPROXY_RTMP_SERVER=127.0.0.1:{}\nPROXY_HTTP_API=127.0.0.1:{shadowed}\n",
        ports.rtmp
    );
    let proxy = Proxy::start_raw(ports, &[("PROXY_RTMP_SERVER", None)], Some(&dotenv));
    wait_until(Duration::from_secs(5), "RTMP listening from .env", || {
        TcpStream::connect_timeout(&proxy.rtmp_addr(), Duration::from_secs(1)).is_ok()
    });
    assert_eq!(
        support::http::get(proxy.http_api(), "/api/v1/versions").status,
        200,
        "the exported PROXY_HTTP_API should win over .env"
    );
    assert!(
        TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], shadowed)),
            Duration::from_secs(1)
        )
        .is_err(),
        ".env's PROXY_HTTP_API overrode the exported value"
    );
}

// Rows 19, 41: the connect reply, and the cid in the logs equals the client's srs_id.
#[test]
fn connect_reply_carries_srs_id_and_logs_use_that_cid() {
    let proxy = Proxy::start(&[("PROXY_LOG_LEVEL", "debug")]);
    let (socket, messages) =
        rtmp_raw::connect(proxy.rtmp_addr(), "live", Duration::from_secs(5)).expect("connect");
    let win_ack = messages
        .iter()
        .find(|m| m.type_id == 5)
        .unwrap_or_else(|| panic!("no Window Acknowledgement Size in {messages:?}"));
    assert_eq!(win_ack.payload, 2_500_000u32.to_be_bytes());
    assert!(
        messages.iter().any(|m| m.type_id == 1),
        "no Set Chunk Size in {messages:?}"
    );
    let result = messages
        .iter()
        .find(|m| m.is_command("_result"))
        .unwrap_or_else(|| panic!("no _result in {messages:?}"));
    assert!(result.contains(b"NetConnection.Connect.Success"));
    let srs_id = rtmp_raw::srs_id(result).expect("data.srs_id in the _result");
    assert!(
        srs_id.len() == 7 && srs_id.chars().all(|c| c.is_ascii_hexdigit()),
        "srs_id {srs_id:?} is not 7 hex digits"
    );

    let client_addr = socket.local_addr().expect("local addr").to_string();
    let cid = format!("cid={srs_id}");
    wait_until(
        Duration::from_secs(5),
        "a log line with the srs_id cid",
        || proxy.logs().contains(&cid),
    );
    drop(socket);
    let logs = proxy.logs();
    for line in logs.lines().filter(|l| l.contains(&client_addr)) {
        assert!(
            line.contains(&cid),
            "a line about {client_addr} lacks {cid}: {line}"
        );
    }
}

// Row 23: timestamps past 0xFFFFFF ms (extended timestamps) survive the proxy both ways.
#[test]
fn extended_timestamps_play_through_proxy() {
    let proxy = Proxy::start(&[]);
    let origin = NginxRtmpOrigin::start();
    register(&proxy, &origin, &OriginIds::numbered(1));
    let _publisher = FfmpegPublisher::start_with(
        &proxy.rtmp_url("late"),
        PublishOptions {
            seconds: 60,
            ts_offset_seconds: Some(17_000),
        },
    );
    wait_holder(&[&origin], "late", Duration::from_secs(15));
    assert_probe(&proxy.rtmp_url("late"));
    ffmpeg_play(&proxy.rtmp_url("late"), 2).unwrap_or_else(|e| panic!("{e}"));
}

// Rows 11, 12: a stale origin is skipped while a live one exists, and still used when alone.
#[test]
fn stale_origins_are_skipped_unless_none_is_alive() {
    const TTL: Duration = Duration::from_secs(2);
    let stale = NginxRtmpOrigin::start();
    let live = NginxRtmpOrigin::start();

    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "2s")]);
    register(&proxy, &stale, &OriginIds::numbered(1));
    let _beat = Heartbeat::start(
        proxy.system_api(),
        register_body(&live, &OriginIds::numbered(2)),
        Duration::from_millis(300),
    );
    let lonely = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "2s")]);
    register(&lonely, &stale, &OriginIds::numbered(3));

    // Liveness is about elapsed time since the last heartbeat: let the TTL pass.
    std::thread::sleep(TTL + Duration::from_millis(700));

    let streams = ["fresh0", "fresh1", "fresh2", "fresh3"];
    let _publishers: Vec<FfmpegPublisher> = streams
        .iter()
        .map(|s| ffmpeg_publish(&proxy.rtmp_url(s), 30))
        .collect();
    for s in streams {
        assert_eq!(
            wait_holder(&[&stale, &live], s, Duration::from_secs(15)),
            1,
            "{s} was routed to the stale origin"
        );
    }

    let _fallback = ffmpeg_publish(&lonely.rtmp_url("fallback"), 30);
    wait_holder(&[&stale], "fallback", Duration::from_secs(15));
}
