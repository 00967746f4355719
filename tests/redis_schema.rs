//! The Redis load-balancer foundation (issue 6) against a real `redis-server`: every key of the Go
//! schema byte for byte with its TTL (spec §4.3), values written by hand in Go's shapes read back
//! by our parser and the reverse, the key prefix, atomic stream claims from two executors, pin
//! moves only off an expired origin, AUTH, SELECT, pipelining by the round-trip counter,
//! reconnection after a restart, and clear fast failures.

mod support;

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime};

use srs_proxy::api::register::Registration;
use srs_proxy::lb::redis::resp::{Cmd, Value};
use srs_proxy::lb::redis::{
    Claim, GoTime, HlsRecord, Keys, RedisClient, RedisErrorKind, RedisStore, RtcRecord,
};
use srs_proxy::lb::Origin;
use support::redis::{client_config, on_executor, RedisServer};

const TTL: Duration = Duration::from_secs(300);

fn store(port: u16, prefix: &str) -> RedisStore {
    RedisStore::new(RedisClient::new(client_config(port)), Keys::new(prefix))
}

fn origin(server: &str, service: &str, pid: &str, updated: SystemTime) -> Origin {
    let reg = Registration {
        device_id: String::new(),
        ip: "127.0.0.1".into(),
        server: server.into(),
        service: service.into(),
        pid: pid.into(),
        rtmp: vec!["19350".into()],
        http: vec!["8080".into()],
        api: vec![],
        srt: vec![],
        rtc: vec!["udp://0.0.0.0:8000".into()],
    };
    Origin::from_registration(&reg, updated, Instant::now())
}

fn ttl_about(redis: &RedisServer, key: &str, secs: i64) {
    let ttl = redis.ttl(key);
    assert!(
        (secs - 5..=secs).contains(&ttl),
        "TTL of {key} is {ttl}, want ≈{secs}"
    );
    assert!(redis.pttl(key) > (secs - 5) * 1000, "PTTL of {key}");
}

#[test]
fn update_server_writes_the_go_server_key_and_list_with_their_ttls() {
    let redis = RedisServer::start();
    let port = redis.port;
    let updated = SystemTime::now();
    let (rts, loaded) = on_executor(move || async move {
        let s = store(port, "");
        let o = origin("vid-a", "svc1", "42", updated);
        let key = s.update_server(&o, TTL).await.expect("update");
        assert_eq!(key, "srs-proxy-server:vid-a-svc1-42");
        let first = s.client().round_trips();
        s.update_server(&o, TTL).await.expect("heartbeat");
        let second = s.client().round_trips() - first;
        (vec![first, second], s.load_servers().await.expect("load"))
    });
    // Alone in the list: SET+GET and a CAS the first time; the heartbeat is one round trip.
    assert_eq!(rts, vec![2, 1], "round trips of first update and heartbeat");
    let expected = format!(
        r#"{{"ip":"127.0.0.1","server_id":"vid-a","service_id":"svc1","pid":"42","rtmp":["19350"],"http":["8080"],"rtc":["udp://0.0.0.0:8000"],"update_at":"{}"}}"#,
        GoTime::local(updated).format()
    );
    let key = "srs-proxy-server:vid-a-svc1-42";
    assert_eq!(redis.get(key).as_deref(), Some(expected.as_str()));
    ttl_about(&redis, key, 300);
    assert_eq!(
        redis.get("srs-proxy-all-servers").as_deref(),
        Some(r#"["srs-proxy-server:vid-a-svc1-42"]"#)
    );
    assert_eq!(
        redis.ttl("srs-proxy-all-servers"),
        -1,
        "the list has no TTL"
    );
    assert_eq!(redis.keys(), vec!["srs-proxy-all-servers", key]);
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0, key);
    assert_eq!(loaded[0].1.to_json(), expected);
}

#[test]
fn update_server_drops_expired_keys_and_keeps_live_ones_in_order() {
    let redis = RedisServer::start();
    let port = redis.port;
    // A list left by Go proxies: one live server, one whose key expired.
    redis.cmd(&["SET", "srs-proxy-server:live-1-1", r#"{"ip":"10.0.0.1","server_id":"live","service_id":"1","pid":"1","rtmp":["1935"],"update_at":"2024-09-10T16:41:34.5+08:00"}"#, "EX", "300"]);
    redis.cmd(&[
        "SET",
        "srs-proxy-all-servers",
        r#"["srs-proxy-server:gone-1-1","srs-proxy-server:live-1-1"]"#,
    ]);
    let loaded = on_executor(move || async move {
        let s = store(port, "");
        let o = origin("vid-b", "svc", "7", SystemTime::now());
        let before = s.client().round_trips();
        s.update_server(&o, TTL).await.expect("update");
        // SET+GET, EXISTS×2 pipelined, CAS.
        assert_eq!(s.client().round_trips() - before, 3);
        let before = s.client().round_trips();
        s.update_server(&o, TTL).await.expect("heartbeat");
        // Unchanged list with a peer: SET+GET, EXISTS.
        assert_eq!(s.client().round_trips() - before, 2);
        s.load_servers().await.expect("load")
    });
    assert_eq!(
        redis.get("srs-proxy-all-servers").as_deref(),
        Some(r#"["srs-proxy-server:live-1-1","srs-proxy-server:vid-b-svc-7"]"#)
    );
    let ids: Vec<String> = loaded.iter().map(|(_, r)| r.id()).collect();
    assert_eq!(ids, vec!["live-1-1", "vid-b-svc-7"]);
    assert_eq!(
        loaded[0].1.update_at.offset_secs,
        8 * 3600,
        "Go's offset kept"
    );
}

#[test]
fn go_shapes_written_by_hand_are_read_and_rewritten_byte_for_byte() {
    let redis = RedisServer::start();
    let port = redis.port;
    // Spec §4.3's examples, as a Go proxy writes them, hand-encoded RESP (not our encoder).
    let server = r#"{"ip":"10.78.122.184","device_id":"origin2","server_id":"vid-46p14mm","service_id":"z2s3w865","pid":"42583","rtmp":["19352"],"http":["8082"],"api":["19853"],"srt":["10082"],"rtc":["udp://0.0.0.0:8001"],"update_at":"2024-09-10T16:41:34.123456789+08:00"}"#;
    let hls = r#"{"spbhid":"a1b2c3d","stream_url":"__defaultVhost__/live/livestream","full_url":"http://__defaultVhost__/live/livestream.m3u8"}"#;
    let rtc = r#"{"stream_url":"__defaultVhost__/live/livestream","ufrag":"8f3k2a91:Xy7q"}"#;
    let list = r#"["srs-proxy-server:vid-46p14mm-z2s3w865-42583"]"#;
    let set = |k: &str, v: &str, ex: Option<&str>| {
        let mut s = match ex {
            Some(_) => "*5\r\n".to_string(),
            None => "*3\r\n".to_string(),
        };
        for a in [Some("SET"), Some(k), Some(v), ex.map(|_| "EX"), ex]
            .into_iter()
            .flatten()
        {
            s += &format!("${}\r\n{a}\r\n", a.len());
        }
        s
    };
    let mut wire = String::new();
    wire += &set(
        "srs-proxy-server:vid-46p14mm-z2s3w865-42583",
        server,
        Some("300"),
    );
    wire += &set("srs-proxy-all-servers", list, None);
    wire += &set(
        "srs-proxy-url:__defaultVhost__/live/livestream",
        "srs-proxy-server:vid-46p14mm-z2s3w865-42583",
        None,
    );
    wire += &set(
        "srs-proxy-hls:__defaultVhost__/live/livestream",
        hls,
        Some("120"),
    );
    wire += &set("srs-proxy-spbhid:a1b2c3d", hls, Some("120"));
    wire += &set(
        "srs-proxy-rtc:__defaultVhost__/live/livestream",
        rtc,
        Some("120"),
    );
    wire += &set("srs-proxy-ufrag:8f3k2a91:Xy7q", rtc, Some("120"));
    let replies = redis.raw_bytes(wire.as_bytes(), 7);
    assert!(
        replies.iter().all(|r| *r == Value::Simple("OK".into())),
        "{replies:?}"
    );

    let (servers, pinned, h, r) = on_executor(move || async move {
        let s = store(port, "");
        (
            s.load_servers().await.expect("servers"),
            s.pinned("__defaultVhost__/live/livestream")
                .await
                .expect("pinned"),
            s.load_hls_by_spbhid("a1b2c3d").await.expect("hls"),
            s.load_rtc_by_ufrag("8f3k2a91:Xy7q").await.expect("rtc"),
        )
    });
    assert_eq!(servers.len(), 1);
    assert_eq!(
        servers[0].1.to_json(),
        server,
        "re-serialized byte for byte"
    );
    let pinned = pinned.expect("pin exists");
    assert_eq!(
        pinned.server_key,
        "srs-proxy-server:vid-46p14mm-z2s3w865-42583"
    );
    assert_eq!(pinned.server.expect("server alive").to_json(), server);
    let h = h.expect("spbhid known");
    assert_eq!((h.spbhid.as_str(), h.to_json().as_str()), ("a1b2c3d", hls));
    let r = r.expect("ufrag known");
    assert_eq!(
        (r.stream_url.as_str(), r.to_json().as_str()),
        ("__defaultVhost__/live/livestream", rtc)
    );
}

#[test]
fn our_writes_have_the_go_shapes_and_ttls() {
    let redis = RedisServer::start();
    let port = redis.port;
    let claim = on_executor(move || async move {
        let s = store(port, "");
        let hls = HlsRecord {
            spbhid: "a1b2c3d".into(),
            stream_url: "__defaultVhost__/live/livestream".into(),
            full_url: "http://__defaultVhost__/live/livestream.m3u8".into(),
        };
        let before = s.client().round_trips();
        s.store_hls("__defaultVhost__/live/livestream", &hls)
            .await
            .expect("hls");
        let rtc = RtcRecord {
            stream_url: "__defaultVhost__/live/livestream".into(),
            ufrag: "8f3k2a91:Xy7q".into(),
        };
        s.store_rtc("__defaultVhost__/live/livestream", &rtc)
            .await
            .expect("rtc");
        let claim = s
            .claim_stream(
                "__defaultVhost__/live/livestream",
                "srs-proxy-server:vid-46p14mm-z2s3w865-42583",
            )
            .await
            .expect("claim");
        assert_eq!(s.client().round_trips() - before, 3, "one round trip each");
        claim
    });
    assert_eq!(
        claim,
        Claim::Claimed("srs-proxy-server:vid-46p14mm-z2s3w865-42583".into())
    );
    let hls = r#"{"spbhid":"a1b2c3d","stream_url":"__defaultVhost__/live/livestream","full_url":"http://__defaultVhost__/live/livestream.m3u8"}"#;
    let rtc = r#"{"stream_url":"__defaultVhost__/live/livestream","ufrag":"8f3k2a91:Xy7q"}"#;
    for (key, value, ttl) in [
        ("srs-proxy-hls:__defaultVhost__/live/livestream", hls, 120),
        ("srs-proxy-spbhid:a1b2c3d", hls, 120),
        ("srs-proxy-rtc:__defaultVhost__/live/livestream", rtc, 120),
        ("srs-proxy-ufrag:8f3k2a91:Xy7q", rtc, 120),
    ] {
        assert_eq!(redis.get(key).as_deref(), Some(value), "{key}");
        ttl_about(&redis, key, ttl);
    }
    let url = "srs-proxy-url:__defaultVhost__/live/livestream";
    assert_eq!(
        redis.get(url).as_deref(),
        Some("srs-proxy-server:vid-46p14mm-z2s3w865-42583"),
        "plain string, not JSON"
    );
    assert_eq!(redis.ttl(url), -1, "pins never expire");
}

#[test]
fn key_prefix_puts_every_key_and_stored_server_key_behind_it() {
    let redis = RedisServer::start();
    let port = redis.port;
    on_executor(move || async move {
        let s = store(port, "xxx");
        let o = origin("vid-p", "svc", "1", SystemTime::now());
        let key = s.update_server(&o, TTL).await.expect("update");
        assert_eq!(key, "xxx:srs-proxy-server:vid-p-svc-1");
        s.claim_stream("__defaultVhost__/live/s", &key)
            .await
            .expect("claim");
        let hls = HlsRecord {
            spbhid: "0000001".into(),
            stream_url: "__defaultVhost__/live/s".into(),
            full_url: "http://__defaultVhost__/live/s.m3u8".into(),
        };
        s.store_hls("__defaultVhost__/live/s", &hls)
            .await
            .expect("hls");
        let rtc = RtcRecord {
            stream_url: "__defaultVhost__/live/s".into(),
            ufrag: "a:b".into(),
        };
        s.store_rtc("__defaultVhost__/live/s", &rtc)
            .await
            .expect("rtc");
        let p = s
            .pinned("__defaultVhost__/live/s")
            .await
            .expect("pinned")
            .expect("pin");
        assert_eq!(p.server.expect("alive").id(), "vid-p-svc-1");
        assert!(s
            .load_hls_by_spbhid("0000001")
            .await
            .expect("hls")
            .is_some());
        assert!(s.load_rtc_by_ufrag("a:b").await.expect("rtc").is_some());
    });
    let keys = redis.keys();
    assert_eq!(
        keys,
        vec![
            "xxx:srs-proxy-all-servers",
            "xxx:srs-proxy-hls:__defaultVhost__/live/s",
            "xxx:srs-proxy-rtc:__defaultVhost__/live/s",
            "xxx:srs-proxy-server:vid-p-svc-1",
            "xxx:srs-proxy-spbhid:0000001",
            "xxx:srs-proxy-ufrag:a:b",
            "xxx:srs-proxy-url:__defaultVhost__/live/s",
        ]
    );
    assert_eq!(
        redis.get("xxx:srs-proxy-all-servers").as_deref(),
        Some(r#"["xxx:srs-proxy-server:vid-p-svc-1"]"#)
    );
    assert_eq!(
        redis
            .get("xxx:srs-proxy-url:__defaultVhost__/live/s")
            .as_deref(),
        Some("xxx:srs-proxy-server:vid-p-svc-1")
    );
}

#[test]
fn concurrent_claims_from_two_executors_have_exactly_one_winner_per_stream() {
    let redis = RedisServer::start();
    let port = redis.port;
    const STREAMS: usize = 20;
    const TASKS: usize = 25;
    let barrier = Arc::new(Barrier::new(2));
    let results: Arc<Mutex<Vec<(usize, Claim)>>> = Arc::default();
    let threads: Vec<_> = (0..2)
        .map(|exec| {
            let (barrier, results) = (barrier.clone(), results.clone());
            std::thread::spawn(move || {
                on_executor(move || async move {
                    let s = std::rc::Rc::new(store(port, ""));
                    // Connect before the race so both executors start claiming together.
                    s.client().query(Cmd::new("PING")).await.expect("ping");
                    barrier.wait();
                    let mut tasks = Vec::new();
                    for t in 0..TASKS {
                        let (s, results) = (s.clone(), results.clone());
                        tasks.push(glommio::spawn_local(async move {
                            for stream in 0..STREAMS {
                                let server = format!("srs-proxy-server:exec{exec}-task{t}");
                                let c = s
                                    .claim_stream(
                                        &format!("__defaultVhost__/live/s{stream}"),
                                        &server,
                                    )
                                    .await
                                    .expect("claim");
                                results.lock().unwrap().push((stream, c));
                            }
                        }));
                    }
                    for t in tasks {
                        t.await;
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().expect("executor thread");
    }
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 2 * TASKS * STREAMS);
    for stream in 0..STREAMS {
        let mine: Vec<&Claim> = results
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, c)| c)
            .collect();
        let winners: Vec<&Claim> = mine
            .iter()
            .copied()
            .filter(|c| matches!(c, Claim::Claimed(_)))
            .collect();
        assert_eq!(winners.len(), 1, "stream {stream}: {mine:?}");
        let stored = redis
            .get(&format!("srs-proxy-url:__defaultVhost__/live/s{stream}"))
            .expect("pinned");
        assert_eq!(winners[0].server_key(), stored);
        assert!(
            mine.iter().all(|c| c.server_key() == stored),
            "all agree on {stored}"
        );
    }
}

#[test]
fn move_stream_moves_only_a_pin_whose_origin_key_is_gone() {
    let redis = RedisServer::start();
    let port = redis.port;
    let a = "srs-proxy-server:a-1-1";
    redis.cmd(&[
        "SET",
        a,
        r#"{"server_id":"a","update_at":"2024-09-10T08:41:34Z"}"#,
        "PX",
        "1500",
    ]);
    on_executor(move || async move {
        let s = store(port, "");
        let k = "__defaultVhost__/live/m";
        assert_eq!(
            s.claim_stream(k, a).await.unwrap(),
            Claim::Claimed(a.into())
        );
        // A is alive: no move, the pin stays.
        let b = "srs-proxy-server:b-1-1";
        assert_eq!(
            s.move_stream(k, a, b).await.unwrap(),
            Claim::Existing(a.into())
        );
        let p = s.pinned(k).await.unwrap().expect("pinned");
        assert!(p.server.is_some());
        // A's key expires (its origin stopped heartbeating).
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.pinned(k).await.unwrap().expect("pin").server.is_some() {
            assert!(Instant::now() < deadline, "origin key did not expire");
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            s.move_stream(k, a, b).await.unwrap(),
            Claim::Claimed(b.into())
        );
        // A second proxy that also saw A dead loses the race and learns B.
        let c = "srs-proxy-server:c-1-1";
        assert_eq!(
            s.move_stream(k, a, c).await.unwrap(),
            Claim::Existing(b.into())
        );
        // A refused-but-registered origin: repin moves even though B's key exists (none here,
        // so give it one), and only while the pin still names B.
        let alive = Cmd::new("SET").arg(b).arg("{}").arg("EX").arg("300");
        assert_eq!(
            s.client().query(alive).await.unwrap(),
            Value::Simple("OK".into())
        );
        assert_eq!(
            s.move_stream(k, b, c).await.unwrap(),
            Claim::Existing(b.into())
        );
        assert_eq!(
            s.repin_stream(k, b, c).await.unwrap(),
            Claim::Claimed(c.into())
        );
        assert_eq!(
            s.repin_stream(k, b, a).await.unwrap(),
            Claim::Existing(c.into())
        );
        // A move of a stream nobody pinned is a claim.
        assert_eq!(
            s.move_stream("__defaultVhost__/live/new", a, c)
                .await
                .unwrap(),
            Claim::Claimed(c.into())
        );
    });
    assert_eq!(
        redis
            .get("srs-proxy-url:__defaultVhost__/live/m")
            .as_deref(),
        Some("srs-proxy-server:c-1-1")
    );
    assert_eq!(redis.ttl("srs-proxy-url:__defaultVhost__/live/m"), -1);
}

#[test]
fn load_or_store_hls_keeps_one_spbhid_per_stream_and_refreshes_both_ttls() {
    let redis = RedisServer::start();
    let port = redis.port;
    let rec = |id: &str| HlsRecord {
        spbhid: id.into(),
        stream_url: "__defaultVhost__/live/h".into(),
        full_url: "http://__defaultVhost__/live/h.m3u8".into(),
    };
    let (first, second) = on_executor(move || async move {
        let s = store(port, "");
        let first = s
            .load_or_store_hls("__defaultVhost__/live/h", &rec("1111111"))
            .await
            .unwrap();
        let second = s
            .load_or_store_hls("__defaultVhost__/live/h", &rec("2222222"))
            .await
            .unwrap();
        (first, second)
    });
    assert_eq!(first.spbhid, "1111111");
    assert_eq!(second.spbhid, "1111111", "the stream keeps its first id");
    assert_eq!(
        redis.get("srs-proxy-spbhid:2222222"),
        None,
        "no leak per playlist"
    );
    redis.cmd(&["EXPIRE", "srs-proxy-spbhid:1111111", "5"]);
    redis.cmd(&["EXPIRE", "srs-proxy-hls:__defaultVhost__/live/h", "5"]);
    on_executor(move || async move {
        store(port, "")
            .load_or_store_hls("__defaultVhost__/live/h", &rec("3333333"))
            .await
            .unwrap();
    });
    ttl_about(&redis, "srs-proxy-spbhid:1111111", 120);
    ttl_about(&redis, "srs-proxy-hls:__defaultVhost__/live/h", 120);
    assert_eq!(
        redis.get("srs-proxy-spbhid:1111111").as_deref(),
        Some(rec("1111111").to_json().as_str())
    );
}

#[test]
fn auth_with_the_right_password_works_and_failures_never_show_it() {
    let redis = RedisServer::start_with_password("s3cret-pw");
    let port = redis.port;
    on_executor(move || async move {
        let mut cfg = client_config(port);
        cfg.password = Some("s3cret-pw".into());
        assert!(!format!("{cfg:?}").contains("s3cret-pw"), "Debug masks it");
        let c = RedisClient::connect(cfg).await.expect("authenticated");
        assert_eq!(
            c.query(Cmd::new("SET").arg("k").arg("v")).await.unwrap(),
            Value::Simple("OK".into())
        );

        let mut wrong = client_config(port);
        wrong.password = Some("wrong-pw-value".into());
        let e = RedisClient::connect(wrong)
            .await
            .err()
            .expect("wrong password fails");
        let text = e.to_string();
        assert_eq!(e.kind(), RedisErrorKind::Server);
        assert!(text.contains("PROXY_REDIS_PASSWORD"), "{text}");
        assert!(!text.contains("wrong-pw-value"), "{text}");

        let e = RedisClient::connect(client_config(port))
            .await
            .err()
            .expect("no password fails");
        assert!(e.to_string().contains("PROXY_REDIS_PASSWORD"), "{e}");
        assert!(!e.is_retryable());
    });
    assert_eq!(redis.get("k").as_deref(), Some("v"));
}

#[test]
fn select_db_writes_to_the_configured_database() {
    let redis = RedisServer::start();
    let port = redis.port;
    on_executor(move || async move {
        let mut cfg = client_config(port);
        cfg.db = 3;
        let s = RedisStore::new(
            RedisClient::connect(cfg).await.expect("db 3"),
            Keys::new(""),
        );
        s.claim_stream("k", "srs-proxy-server:x")
            .await
            .expect("claim");

        let mut bad = client_config(port);
        bad.db = 99;
        let e = RedisClient::connect(bad)
            .await
            .err()
            .expect("db 99 does not exist");
        assert!(e.to_string().contains("PROXY_REDIS_DB"), "{e}");
    });
    assert_eq!(redis.get("srs-proxy-url:k"), None, "not in db 0");
    let v = redis
        .try_raw(&[
            vec![&b"SELECT"[..], b"3"],
            vec![&b"GET"[..], b"srs-proxy-url:k"],
        ])
        .expect("select 3");
    assert_eq!(v[1], Value::Bulk(b"srs-proxy-server:x".to_vec()));
}

#[test]
fn pipelined_commands_and_concurrent_tasks_share_round_trips() {
    let redis = RedisServer::start();
    let port = redis.port;
    on_executor(move || async move {
        let c = std::rc::Rc::new(
            RedisClient::connect(client_config(port))
                .await
                .expect("connect"),
        );
        let before = c.round_trips();
        let cmds: Vec<Cmd> = (0..100)
            .map(|i| Cmd::new("SET").arg(format!("p{i}")).arg(i.to_string()))
            .collect();
        let replies = c.pipeline(&cmds).await.expect("pipeline");
        assert_eq!(replies.len(), 100);
        assert_eq!(c.round_trips() - before, 1, "100 commands, one round trip");

        // 50 tasks asking at once: their commands go out batched.
        let before = c.round_trips();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let c = c.clone();
                glommio::spawn_local(async move {
                    c.query(Cmd::new("GET").arg(format!("p{i}")))
                        .await
                        .expect("get")
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await, Value::Bulk(i.to_string().into_bytes()));
        }
        let used = c.round_trips() - before;
        assert!(used <= 2, "50 concurrent GETs took {used} round trips");

        // A server error in a pipeline is one reply, not a failed batch.
        let r = c
            .pipeline(&[
                Cmd::new("INCR").arg("p1x").arg("extra"),
                Cmd::new("GET").arg("p3"),
            ])
            .await
            .unwrap();
        assert!(matches!(r[0], Value::Error(_)), "{r:?}");
        assert_eq!(r[1], Value::Bulk(b"3".to_vec()));
    });
}

#[test]
fn reconnects_after_redis_restarts_and_fails_fast_while_it_is_down() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let (tx_down, rx_down) = std::sync::mpsc::channel::<()>();
    let (tx_up, rx_up) = std::sync::mpsc::channel::<()>();
    let (tx_ask, rx_ask) = std::sync::mpsc::channel::<&'static str>();
    let client = std::thread::spawn(move || {
        on_executor(move || async move {
            let c = RedisClient::connect(client_config(port))
                .await
                .expect("connect");
            c.query(Cmd::new("SET").arg("a").arg("1"))
                .await
                .expect("set");
            tx_ask.send("stop").unwrap();
            // Wait (off the executor's hot path) for the test thread to stop redis.
            while rx_down.try_recv().is_err() {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            let t = Instant::now();
            let e = c
                .query(Cmd::new("GET").arg("a"))
                .await
                .expect_err("redis is down");
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "failed fast: {:?}",
                t.elapsed()
            );
            assert_eq!(e.kind(), RedisErrorKind::Unavailable);
            assert!(
                e.to_string().contains("PROXY_REDIS_HOST/PROXY_REDIS_PORT"),
                "{e}"
            );
            let t = Instant::now();
            let e = c
                .query(Cmd::new("GET").arg("a"))
                .await
                .expect_err("still down");
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "backoff answers at once"
            );
            assert!(e.is_retryable());
            tx_ask.send("start").unwrap();
            while rx_up.try_recv().is_err() {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match c.query(Cmd::new("SET").arg("b").arg("2")).await {
                    Ok(v) => {
                        assert_eq!(v, Value::Simple("OK".into()));
                        break;
                    }
                    Err(e) => assert!(Instant::now() < deadline, "no reconnect: {e}"),
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            c.connects()
        })
    });
    assert_eq!(rx_ask.recv().unwrap(), "stop");
    redis.stop();
    tx_down.send(()).unwrap();
    assert_eq!(rx_ask.recv().unwrap(), "start");
    let redis2 = RedisServer::start_on(port, None);
    tx_up.send(()).unwrap();
    let connects = client.join().expect("client thread");
    assert_eq!(connects, 2, "one reconnect");
    assert_eq!(redis2.get("b").as_deref(), Some("2"));
}

#[test]
fn a_stopped_server_or_a_silent_one_fails_with_a_clear_error() {
    let port = support::free_tcp_port();
    // Something that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    on_executor(move || async move {
        let t = Instant::now();
        let e = RedisClient::connect(client_config(port))
            .await
            .err()
            .expect("nothing listens");
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(e.kind(), RedisErrorKind::Unavailable);
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(
            text.contains("check PROXY_REDIS_HOST/PROXY_REDIS_PORT"),
            "{text}"
        );

        let mut cfg = client_config(silent_port);
        cfg.command_timeout = Duration::from_millis(300);
        let e = RedisClient::connect(cfg).await.err().expect("no answer");
        assert_eq!(e.kind(), RedisErrorKind::Timeout, "{e}");
    });
    drop(silent);
}

#[test]
fn concurrent_updates_from_two_executors_lose_no_server() {
    let redis = RedisServer::start();
    let port = redis.port;
    const PER_EXECUTOR: usize = 4;
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|exec| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                on_executor(move || async move {
                    let s = std::rc::Rc::new(store(port, ""));
                    s.client().query(Cmd::new("PING")).await.expect("ping");
                    barrier.wait();
                    let tasks: Vec<_> = (0..PER_EXECUTOR)
                        .map(|i| {
                            let s = s.clone();
                            glommio::spawn_local(async move {
                                let o = origin(
                                    &format!("e{exec}"),
                                    &format!("o{i}"),
                                    "1",
                                    SystemTime::now(),
                                );
                                s.update_server(&o, TTL).await.expect("update")
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await;
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().expect("executor thread");
    }
    let list: Vec<String> =
        serde_json::from_str(&redis.get("srs-proxy-all-servers").expect("list")).unwrap();
    let mut sorted = list.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        2 * PER_EXECUTOR,
        "every server listed once: {list:?}"
    );
}

#[test]
fn a_server_speaking_garbage_is_a_protocol_error() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        std::thread::sleep(Duration::from_millis(200));
    });
    on_executor(move || async move {
        let e = RedisClient::connect(client_config(port))
            .await
            .err()
            .expect("not redis");
        assert_eq!(e.kind(), RedisErrorKind::Protocol, "{e}");
        assert!(
            e.to_string()
                .contains("is PROXY_REDIS_HOST/PROXY_REDIS_PORT a Redis server"),
            "{e}"
        );
    });
    server.join().unwrap();
}

#[test]
fn update_server_uses_the_configured_origin_ttl() {
    let redis = RedisServer::start();
    let port = redis.port;
    on_executor(move || async move {
        let s = store(port, "");
        let o = origin("vid-t", "svc", "9", SystemTime::now());
        s.update_server(&o, Duration::from_secs(45))
            .await
            .expect("update");
        // Sub-second TTLs are not valid for EX: at least one second, never "no TTL".
        let o2 = origin("vid-u", "svc", "9", SystemTime::now());
        s.update_server(&o2, Duration::from_millis(10))
            .await
            .expect("update");
    });
    ttl_about(&redis, "srs-proxy-server:vid-t-svc-9", 45);
    let t = redis.pttl("srs-proxy-server:vid-u-svc-9");
    assert!(t == -2 || (0..=1000).contains(&t), "PTTL {t}");
}
