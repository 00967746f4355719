//! Two proxy processes sharing one real `redis-server` (issue 6, spec §4.3): origins register
//! with proxy A only, and proxy B routes every protocol to the origin A's decisions pinned;
//! fifty first plays of one stream over both proxies reach one origin; a pin moves when its
//! origin stops heartbeating; a Redis restart leaves playing streams alone and new setups
//! recover. Real peers throughout: nginx-rtmp (RTMP, HLS), node-media-server (HTTP-FLV),
//! ffmpeg (publish, play, an SRT server in front of the origin), ffprobe.

mod support;

use std::time::{Duration, Instant};

use support::http::get;
use support::nginx::NginxOptions;
use support::redis::RedisServer;
use support::srt::{caller_url, SrtTsSource};
use support::*;

const H264_AAC: [&str; 2] = ["aac", "h264"];

/// Redis and two proxies in Redis mode on it.
struct Cluster {
    redis: RedisServer,
    a: Proxy,
    b: Proxy,
}

impl Cluster {
    fn start(origin_ttl: &str) -> Cluster {
        Cluster::start_with(origin_ttl, None)
    }

    /// With `--requirepass` on Redis and `PROXY_REDIS_PASSWORD` on the proxies.
    fn start_with(origin_ttl: &str, password: Option<&str>) -> Cluster {
        let redis = match password {
            Some(pw) => RedisServer::start_with_password(pw),
            None => RedisServer::start(),
        };
        let port = redis.port.to_string();
        let mut env = vec![
            ("PROXY_LOAD_BALANCER_TYPE", "redis"),
            ("PROXY_REDIS_PORT", port.as_str()),
            ("PROXY_ORIGIN_SERVER_TTL", origin_ttl),
        ];
        if let Some(pw) = password {
            env.push(("PROXY_REDIS_PASSWORD", pw));
        }
        let a = Proxy::start(&env);
        let b = Proxy::start(&env);
        Cluster { redis, a, b }
    }

    /// Waits until `proxy` lists origin `ids` (B learns A's registrations through Redis).
    fn wait_origin(proxy: &Proxy, ids: &OriginIds) {
        wait_until(
            Duration::from_secs(10),
            &format!("{} in /api/v1/origins", ids.id()),
            || proxy.get("/api/v1/origins").text().contains(&ids.id()),
        );
    }

    /// The server key a stream is pinned to in Redis.
    fn pin(&self, stream: &str) -> Option<String> {
        self.redis
            .get(&format!("srs-proxy-url:__defaultVhost__/live/{stream}"))
    }
}

fn server_key(ids: &OriginIds) -> String {
    format!("srs-proxy-server:{}", ids.id())
}

fn assert_probe(url: &str) {
    let mut codecs = ffprobe(url).unwrap_or_else(|e| panic!("{e}"));
    // ffprobe lists TS and HLS tracks under their program and again on their own.
    codecs.dedup();
    assert_eq!(codecs, H264_AAC, "codecs at {url}");
}

fn rtmp_bytes_to_players(proxy: &Proxy) -> f64 {
    metric_sum(
        &proxy.metrics(),
        "srs_proxy_bytes_total",
        &[("protocol", "rtmp"), ("direction", "origin_to_client")],
    )
}

// Publish through A; RTMP, HTTP-FLV, HLS (playlist and segments) and SRT play through B, from
// the origin A pinned, although B also knows an origin that has nothing.
#[test]
fn publish_on_a_plays_rtmp_flv_hls_and_srt_through_b() {
    let cluster = Cluster::start("300s");
    let (a, b) = (&cluster.a, &cluster.b);
    // One origin serving every protocol: nginx-rtmp (RTMP, HLS), pushing to node-media-server
    // whose HTTP-FLV nginx serves too, and an SRT server relaying nginx's RTMP.
    let nms = NodeMediaServer::start();
    let full = NginxRtmpOrigin::start_with(NginxOptions {
        push: Some(format!("rtmp://127.0.0.1:{}/live", nms.rtmp_port)),
        flv_upstream: Some(nms.http_port),
        ..NginxOptions::default()
    });
    let full_ids = OriginIds::numbered(1);
    let srt_port = free_udp_port();
    let body = serde_json::json!({
        "device_id": full_ids.device_id, "ip": "127.0.0.1", "server": full_ids.server,
        "service": full_ids.service, "pid": full_ids.pid,
        "rtmp": [full.rtmp_port.to_string()], "http": [full.http_port.to_string()],
        "srt": [format!("udp://0.0.0.0:{srt_port}")],
    })
    .to_string();
    let resp = post_register(a.system_api(), &body, &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());

    let _publisher = ffmpeg_publish(&a.rtmp_url("everywhere"), 90);
    wait_until(Duration::from_secs(15), "the stream on the origin", || {
        full.stream("everywhere").is_some_and(|s| s.publishers == 1)
    });
    assert_eq!(cluster.pin("everywhere"), Some(server_key(&full_ids)));

    // A second origin registers with A after the pin: B knows both and must follow the pin.
    let empty = NginxRtmpOrigin::start();
    let empty_ids = OriginIds::numbered(2);
    register(a, &empty, &empty_ids);
    Cluster::wait_origin(b, &full_ids);
    Cluster::wait_origin(b, &empty_ids);

    assert_probe(&b.rtmp_url("everywhere"));
    let http = b.http_server();
    assert_probe(&format!("http://{http}/live/everywhere.flv"));

    let playlist = wait_for(Duration::from_secs(20), "HLS playlist via B", || {
        let r = http_request(http, "GET", "/live/everywhere.m3u8", &[], b"").ok()?;
        (r.status == 200 && playlist_uris(&r.text()).len() >= 2).then_some(r)
    });
    let uris = playlist_uris(&playlist.text());
    let id = spbhid_of(&uris[0]);
    let dir = TestDir::new("segments");
    for (i, uri) in uris.iter().enumerate() {
        assert_eq!(spbhid_of(uri), id, "one id per stream: {uri}");
        // A segment resolves its spbhid on either proxy (G1 semantics, through Redis).
        for proxy in [a, b] {
            let seg = get(proxy.http_server(), &format!("/live/{uri}"));
            assert_eq!(seg.status, 200, "{uri}: {}", seg.text());
            assert!(
                seg.body.len() >= 188 && seg.body.chunks(188).all(|p| p[0] == 0x47),
                "{uri}: not TS"
            );
            // The bytes are real media (a whole segment, both tracks).
            let file = dir.path().join(format!("{i}.ts"));
            std::fs::write(&file, &seg.body).expect("write segment");
            assert_probe(&file.display().to_string());
        }
    }
    let via_a = get(a.http_server(), "/live/everywhere.m3u8");
    assert_eq!(
        spbhid_of(&playlist_uris(&via_a.text())[0]),
        id,
        "same id on A"
    );

    let _srt_server = SrtTsSource::relay(&full.rtmp_url("everywhere"), srt_port);
    assert_probe(&caller_url(
        b.ports.srt,
        "#!::r=live/everywhere,m=request",
        None,
    ));

    // Nothing reached the other origin.
    assert!(empty.stream("everywhere").is_none());
    assert!(!empty.access_log().contains("everywhere"));
    // The keys are the Go proxy's (spec §4.3).
    let record = cluster
        .redis
        .get(&server_key(&full_ids))
        .expect("server key");
    assert!(
        record.starts_with(&format!(
            r#"{{"ip":"127.0.0.1","device_id":"origin1","server_id":"{}","service_id":"{}","pid":"{}","rtmp":["{}"],"http":["{}"],"srt":["udp://0.0.0.0:{srt_port}"],"update_at":""#,
            full_ids.server, full_ids.service, full_ids.pid, full.rtmp_port, full.http_port
        )),
        "{record}"
    );
    let ttl = cluster.redis.ttl(&server_key(&full_ids));
    assert!((280..=300).contains(&ttl), "server key TTL {ttl}");
    let hls = cluster
        .redis
        .get("srs-proxy-hls:__defaultVhost__/live/everywhere")
        .expect("hls key");
    assert!(hls.starts_with(&format!(r#"{{"spbhid":"{id}""#)), "{hls}");
    assert!(cluster.redis.ttl(&format!("srs-proxy-spbhid:{id}")) <= 120);
    for proxy in [a, b] {
        let rt = metric_sum(&proxy.metrics(), "srs_proxy_redis_round_trips_total", &[]);
        assert!(rt > 0.0, "redis round trips counted");
    }
}

// Fifty first plays of one new stream, half through each proxy, all reach one of three origins;
// a stream a Go proxy pinned (its record and pin written by hand) is played from that origin.
#[test]
fn fifty_concurrent_first_plays_over_both_proxies_reach_one_origin() {
    let cluster = Cluster::start("300s");
    let origins: Vec<NginxRtmpOrigin> = (0..3).map(|_| NginxRtmpOrigin::start()).collect();
    for (n, o) in origins.iter().enumerate() {
        let ids = OriginIds::numbered(n as u32 + 1);
        register(&cluster.a, o, &ids);
        Cluster::wait_origin(&cluster.b, &ids);
    }
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let proxy = if i % 2 == 0 { &cluster.a } else { &cluster.b };
                let addr = proxy.http_server();
                scope.spawn(move || get(addr, "/live/rush.flv").status)
            })
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().expect("player"))
            .collect()
    });
    // nginx-rtmp has no HTTP-FLV: the origin's own 404 comes through, so each GET reached one.
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    let hits: Vec<usize> = origins
        .iter()
        .map(|o| o.access_log().matches("GET /live/rush.flv").count())
        .collect();
    let holder = hits.iter().position(|h| *h > 0).expect("an origin was hit");
    assert_eq!(hits[holder], 50, "hits per origin: {hits:?}");
    assert_eq!(hits.iter().sum::<usize>(), 50, "hits per origin: {hits:?}");
    assert_eq!(
        cluster.pin("rush"),
        Some(server_key(&OriginIds::numbered(holder as u32 + 1)))
    );

    // Rolling upgrade: what a Go proxy wrote is honoured.
    let go_origin = NginxRtmpOrigin::start();
    let record = format!(
        r#"{{"ip":"127.0.0.1","device_id":"origin9","server_id":"vid-go00009","service_id":"gosvc009","pid":"4009","rtmp":["{}"],"http":["{}"],"update_at":"2024-09-10T16:41:34.123456789+08:00"}}"#,
        go_origin.rtmp_port, go_origin.http_port
    );
    let key = "srs-proxy-server:vid-go00009-gosvc009-4009";
    cluster.redis.cmd(&["SET", key, &record, "EX", "300"]);
    cluster
        .redis
        .cmd(&["SET", "srs-proxy-url:__defaultVhost__/live/gopinned", key]);
    for proxy in [&cluster.a, &cluster.b] {
        assert_eq!(get(proxy.http_server(), "/live/gopinned.flv").status, 404);
    }
    assert_eq!(
        go_origin
            .access_log()
            .matches("GET /live/gopinned.flv")
            .count(),
        2
    );
    assert_eq!(cluster.redis.get(key).as_deref(), Some(record.as_str()));
}

// An origin that stops heartbeating loses its streams once its key expires (TTL 2 s): the next
// publish through B lands on the other origin and plays through A.
#[test]
fn an_origin_that_stops_heartbeating_loses_its_streams_after_the_ttl() {
    let cluster = Cluster::start("2s");
    let (a, b) = (&cluster.a, &cluster.b);
    let origins = [NginxRtmpOrigin::start(), NginxRtmpOrigin::start()];
    let ids = [OriginIds::numbered(1), OriginIds::numbered(2)];
    let mut beats: Vec<Option<Heartbeat>> = origins
        .iter()
        .zip(&ids)
        .map(|(o, i)| {
            Some(Heartbeat::start(
                a.system_api(),
                register_body(o, i),
                Duration::from_millis(400),
            ))
        })
        .collect();
    for i in &ids {
        Cluster::wait_origin(b, i);
    }
    let mut publisher = ffmpeg_publish(&a.rtmp_url("mover"), 60);
    let first = wait_for(Duration::from_secs(15), "the stream on an origin", || {
        origins
            .iter()
            .position(|o| o.stream("mover").is_some_and(|s| s.publishers == 1))
    });
    assert_probe(&b.rtmp_url("mover"));
    publisher.stop();

    // The holder goes silent; its key expires after the TTL.
    beats[first] = None;
    let silent = server_key(&ids[first]);
    let started = Instant::now();
    wait_until(
        Duration::from_secs(10),
        "the silent origin's key expired",
        || cluster.redis.get(&silent).is_none(),
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "expired too early"
    );

    // Each proxy reads the server list at least every TTL/3: then the origin is silent there.
    for proxy in [a, b] {
        wait_until(
            Duration::from_secs(5),
            "the origin listed as not alive",
            || {
                proxy.get("/api/v1/origins").json()["origins"]
                    .as_array()
                    .is_some_and(|list| {
                        list.iter()
                            .any(|o| o["id"] == ids[first].id() && o["alive"] == false)
                    })
            },
        );
    }
    let other = 1 - first;
    let _again = ffmpeg_publish(&b.rtmp_url("mover"), 60);
    wait_until(
        Duration::from_secs(15),
        "the stream on the other origin",
        || {
            origins[other]
                .stream("mover")
                .is_some_and(|s| s.publishers == 1)
        },
    );
    assert!(origins[first].stream("mover").is_none());
    assert_probe(&a.rtmp_url("mover"));
    assert_eq!(cluster.pin("mover"), Some(server_key(&ids[other])));
    let moves = metric_sum(&b.metrics(), "srs_proxy_repicks_total", &[])
        + metric_sum(&a.metrics(), "srs_proxy_repicks_total", &[]);
    assert!(moves >= 1.0, "a pin move is counted");
    drop(beats);
}

// Redis dies mid-stream: the player through B keeps receiving, a setup on the cached pin still
// works, a new stream fails at once naming the variables; Redis comes back (empty), the
// heartbeats store the origin again and new setups work.
#[test]
fn killing_redis_mid_stream_keeps_playing_and_new_setups_recover() {
    const PASSWORD: &str = "s3cret-redis-pw";
    let mut cluster = Cluster::start_with("300s", Some(PASSWORD));
    let redis_port = cluster.redis.port;
    let (a, b) = (&cluster.a, &cluster.b);
    let origin = NginxRtmpOrigin::start();
    let ids = OriginIds::numbered(1);
    let _beat = Heartbeat::start(
        a.system_api(),
        register_body(&origin, &ids),
        Duration::from_millis(500),
    );
    Cluster::wait_origin(b, &ids);
    let _publisher = ffmpeg_publish(&a.rtmp_url("steady"), 90);
    wait_until(Duration::from_secs(15), "the stream on the origin", || {
        origin.stream("steady").is_some_and(|s| s.publishers == 1)
    });
    let mut player = spawn_ffmpeg_play(&b.rtmp_url("steady"));
    wait_until(Duration::from_secs(15), "bytes to the player", || {
        rtmp_bytes_to_players(b) > 100_000.0
    });

    cluster.redis.stop();
    let (a, b) = (&cluster.a, &cluster.b);
    let at_kill = rtmp_bytes_to_players(b);
    std::thread::sleep(Duration::from_secs(3));
    assert!(player.is_running(), "player: {}", player.stderr());
    assert!(
        rtmp_bytes_to_players(b) > at_kill + 100_000.0,
        "the playing stream stalled without redis"
    );
    // A new client of the same stream uses the pin B cached. (Seen failing once in CI and
    // once in 4 manual runs, then not in 11: B's log goes with the failure to tell why.)
    let mut codecs = ffprobe(&b.rtmp_url("steady"))
        .unwrap_or_else(|e| panic!("{e}\nproxy B's log:\n{}", b.logs()));
    codecs.dedup();
    assert_eq!(codecs, H264_AAC, "codecs through B");
    // A stream nobody pinned cannot be decided: a fast, clear failure.
    let started = Instant::now();
    let resp = get(b.http_server(), "/live/unpinned.flv");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(resp.text().contains("PROXY_REDIS_HOST"), "{}", resp.text());
    // A heartbeat cannot be stored: 500, as Go.
    let beat = post_register(a.system_api(), &register_body(&origin, &ids), &[]);
    assert_eq!(beat.status, 500, "{}", beat.text());
    assert!(b.logs().contains("redis"), "B's log names the outage");

    cluster.redis = RedisServer::start_on(redis_port, Some(PASSWORD));
    let (a, b) = (&cluster.a, &cluster.b);
    wait_until(Duration::from_secs(20), "a new stream routed via B", || {
        get(b.http_server(), "/live/unpinned.flv").status == 404
    });
    assert_eq!(cluster.pin("unpinned"), Some(server_key(&ids)));
    assert!(player.is_running(), "player: {}", player.stderr());
    assert_probe(&a.rtmp_url("steady"));
    let errors = metric_sum(&b.metrics(), "srs_proxy_redis_errors_total", &[]);
    assert!(errors >= 1.0, "redis errors counted on B");
    for proxy in [a, b] {
        assert!(!proxy.logs().contains(PASSWORD), "the password is in a log");
    }
}

/// WebRTC over two proxies (spec §4.3 `ufrag` objects with G1 semantics, §5.6): a str0m origin
/// registers with A only; an aiortc WHIP publish through A and a WHEP play through B decode real
/// frames; and a session signalled on A whose media lands on B's UDP port is found through
/// Redis by its ICE ufrag and relayed to the same origin.
#[test]
fn webrtc_publish_on_a_plays_through_b_and_media_may_land_on_b() {
    use support::webrtc::{spawn_whip_publish, whep_play, WebrtcOrigin};
    let cluster = Cluster::start("300s");
    let (a, b) = (&cluster.a, &cluster.b);
    let origin = WebrtcOrigin::start(
        Some(&format!("http://{}/api/v1/srs/register", a.system_api())),
        "redis-rtc-origin",
    );
    wait_until(Duration::from_secs(10), "B learns the origin", || {
        b.get("/api/v1/origins").text().contains("redis-rtc-origin")
    });
    let size = ["--width", "320", "--height", "240"];
    let publisher = spawn_whip_publish(
        &format!("http://{}/rtc/v1/whip/?app=live&stream=rtc", a.http_api()),
        14.0,
        &size,
    );
    origin.wait_stats(
        Duration::from_secs(30),
        "the publisher on the origin",
        |s| {
            WebrtcOrigin::sessions(s, "publish")
                .iter()
                .any(|p| p["connected"] == true && p["frames_in"].as_u64() > Some(10))
        },
    );
    let play = whep_play(
        &format!("http://{}/rtc/v1/whep/?app=live&stream=rtc", b.http_api()),
        5.0,
        &["--min-frames", "25"],
    );
    assert!(play["error"].is_null(), "WHEP through B: {play:#}");
    assert!(play["frames"].as_u64() >= Some(25), "{play:#}");
    for c in play["candidates"].as_array().expect("candidates") {
        assert!(
            c.as_str()
                .unwrap()
                .contains(&format!(" {} typ host", b.ports.webrtc)),
            "{c}"
        );
    }
    assert!(publisher.finish()["error"].is_null());

    // Signalled on A, media on B: B finds the session in Redis by its ufrag.
    let offer = std::fs::read(format!(
        "{}/../shared/fixtures/webrtc/whep/request.http",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let at = offer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let resp = http_request(
        a.http_api(),
        "POST",
        "/rtc/v1/whep/?app=live&stream=rtc2",
        &[("Content-Type", "application/sdp")],
        &offer[at + 4..],
    )
    .expect("WHEP at A");
    assert_eq!(resp.status, 201, "{}", resp.text());
    let answer_ufrag = resp
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:").map(str::to_owned))
        .expect("answer ufrag");
    let username = format!("{answer_ufrag}:di4q"); // the fixture offer's ufrag
    let mut stun = vec![0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7u8; 12]);
    let mut attr = vec![0u8, 6];
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    stun[2..4].copy_from_slice(&(attr.len() as u16).to_be_bytes());
    stun.extend_from_slice(&attr);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let relayed = || {
        metric_sum(
            &b.metrics(),
            "srs_proxy_bytes_total",
            &[("protocol", "webrtc"), ("direction", "client_to_origin")],
        )
    };
    let before = relayed();
    wait_until(
        Duration::from_secs(10),
        "B relays the check to the origin",
        || {
            client
                .send_to(&stun, ("127.0.0.1", b.ports.webrtc))
                .unwrap();
            std::thread::sleep(Duration::from_millis(200));
            relayed() > before
        },
    );
    assert!(
        b.logs().contains("was signalled on another proxy"),
        "{}",
        b.logs_tail(20)
    );
}
