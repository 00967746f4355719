//! The load balancer in Redis mode (issue 6) against a real `redis-server`, without media: each
//! "proxy" is an `LbCore` with its own connection, as a one-core proxy process has. Round trips
//! per setup, one decision for a stream however many proxies and clients ask at once, moves off
//! an expired or refusing origin, shared HLS ids and WebRTC sessions, and what happens while
//! Redis is down.

mod support;

use std::rc::Rc;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use srs_proxy::api::register::parse_registration;
use srs_proxy::lb::redis::resp::Value;
use srs_proxy::lb::redis::{heartbeat_record, Keys, RedisClient, RedisStore};
use srs_proxy::lb::{LbCore, LbMsg, Origin, Outbox, PickError, REVALIDATE};
use srs_proxy::metrics::CoreMetrics;
use support::redis::{client_config, on_executor, RedisServer};

/// A proxy with one core: nothing to send to.
struct OneCore;

impl Outbox for OneCore {
    fn send(&self, _core: usize, _msg: LbMsg) {}
    fn broadcast(&self, _msg: LbMsg) {}
}

type Proxy = Rc<LbCore<OneCore>>;

fn proxy(port: u16, ttl: Duration) -> Proxy {
    core_of(port, ttl, 0, 1, OneCore)
}

/// Core `core` of a `cores`-core proxy, with its own Redis connection.
fn core_of<O: Outbox>(
    port: u16,
    ttl: Duration,
    core: usize,
    cores: usize,
    outbox: O,
) -> Rc<LbCore<O>> {
    let metrics = Arc::new(CoreMetrics::default());
    let store = RedisStore::new(
        RedisClient::with_metrics(client_config(port), Some(metrics.clone())),
        Keys::new(""),
    );
    Rc::new(LbCore::new(core, cores, ttl, outbox, metrics).with_redis(Rc::new(store)))
}

/// Runs a proxy on its own executor thread, for tests that stop Redis under it: the proxy
/// reports its steps on the first channel and waits on the second for the test's.
fn proxy_thread<Fut>(
    f: impl FnOnce(Sender<&'static str>, Receiver<()>) -> Fut + Send + 'static,
) -> (
    std::thread::JoinHandle<()>,
    Receiver<&'static str>,
    Sender<()>,
)
where
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = channel();
    let (back_tx, back_rx) = channel();
    let thread = std::thread::spawn(move || on_executor(move || f(tx, back_rx)));
    (thread, rx, back_tx)
}

fn origin(name: &str) -> Origin {
    let reg = parse_registration(
        format!(r#"{{"ip":"127.0.0.1","server":"{name}","service":"svc","pid":"1","rtmp":["1935"],"http":["8080"]}}"#)
            .as_bytes(),
    )
    .expect("valid registration");
    Origin::from_registration(&reg, SystemTime::now(), Instant::now())
}

/// What a heartbeat on `p` does: store in Redis, then apply locally.
async fn heartbeat<O: Outbox>(p: &Rc<LbCore<O>>, name: &str) -> Arc<Origin> {
    let o = origin(name);
    p.store_origin(&heartbeat_record(&o, SystemTime::now()))
        .await
        .expect("stored");
    o.heard(Instant::now());
    p.register(o)
}

fn round_trips(p: &Proxy) -> u64 {
    p.metrics
        .redis_round_trips_total
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// `calls` of a command since the last `CONFIG RESETSTAT`.
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let Value::Bulk(info) = redis.cmd(&["INFO", "commandstats"]) else {
        panic!("INFO answered something else");
    };
    let info = String::from_utf8(info).expect("utf-8");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

#[test]
fn a_new_stream_costs_two_round_trips_a_known_one_at_most_one() {
    let redis = RedisServer::start();
    let port = redis.port;
    let (first, again, elsewhere) = on_executor(move || async move {
        let a = proxy(port, Duration::from_secs(300));
        let b = proxy(port, Duration::from_secs(300));
        heartbeat(&a, "o1").await;
        heartbeat(&a, "o2").await;
        // B learns the origins registered on A from Redis.
        assert_eq!(b.sync_origins().await.expect("sync"), 2);
        assert_eq!(b.origin_count(), 2);

        let before = round_trips(&a);
        let picked = a.pick("__defaultVhost__/live/s").await.expect("pick");
        let first = round_trips(&a) - before;
        let before = round_trips(&a);
        assert_eq!(
            a.pick("__defaultVhost__/live/s").await.unwrap().id,
            picked.id
        );
        let again = round_trips(&a) - before;
        let before = round_trips(&b);
        assert_eq!(
            b.pick("__defaultVhost__/live/s").await.unwrap().id,
            picked.id
        );
        let elsewhere = round_trips(&b) - before;
        (first, again, elsewhere)
    });
    assert!(first <= 2, "new stream: {first} round trips");
    assert_eq!(again, 0, "cached and fresh: no round trip");
    assert_eq!(
        elsewhere, 1,
        "known in Redis, new to this proxy: one round trip"
    );
    // The pin is the Go shape: a plain server key without TTL.
    let pin = redis
        .get("srs-proxy-url:__defaultVhost__/live/s")
        .expect("pinned");
    assert!(pin.starts_with("srs-proxy-server:o"), "{pin}");
    assert_eq!(redis.ttl("srs-proxy-url:__defaultVhost__/live/s"), -1);
}

#[test]
fn proxies_and_clients_picking_one_new_stream_at_once_get_one_origin_from_one_decision() {
    let redis = RedisServer::start();
    let port = redis.port;
    let proxies = 4;
    on_executor(move || async move {
        let registrar = proxy(port, Duration::from_secs(300));
        for n in 0..5 {
            heartbeat(&registrar, &format!("o{n}")).await;
        }
    });
    redis.cmd(&["CONFIG", "RESETSTAT"]);
    let chosen = on_executor(move || async move {
        let all: Vec<Proxy> = (0..proxies)
            .map(|_| proxy(port, Duration::from_secs(300)))
            .collect();
        for p in &all {
            p.sync_origins().await.expect("sync");
        }
        let mut tasks = Vec::new();
        for round in 0..50 {
            let p = all[round % all.len()].clone();
            tasks.push(glommio::spawn_local(async move {
                p.pick("__defaultVhost__/live/rush")
                    .await
                    .map(|o| o.id.clone())
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.expect("pick"));
        }
        ids
    });
    let first = &chosen[0];
    assert!(chosen.iter().all(|id| id == first), "{chosen:?}");
    // One decision per proxy: one pin read (EVAL) and one claim (SET NX) each, not one per
    // client.
    assert_eq!(calls(&redis, "eval"), proxies as u64, "pin reads");
    assert_eq!(calls(&redis, "set"), proxies as u64, "claims");
}

#[test]
fn an_expired_origin_loses_its_streams_and_a_refusing_one_is_repinned() {
    let redis = RedisServer::start();
    let port = redis.port;
    let url = "srs-proxy-url:__defaultVhost__/live/m";
    let ((before, after), repinned) = on_executor(move || async move {
        let ttl = Duration::from_secs(1);
        let a = proxy(port, ttl);
        let b = proxy(port, ttl);
        let only = heartbeat(&a, "short").await;
        assert_eq!(a.pick("__defaultVhost__/live/m").await.unwrap().id, only.id);
        // "short" stops heartbeating: its key expires with the TTL; "next" registers.
        glommio::timer::sleep(ttl + Duration::from_millis(200)).await;
        let next = heartbeat(&a, "next").await;
        b.sync_origins().await.expect("sync");
        let moved = b.pick("__defaultVhost__/live/m").await.expect("moved");
        assert_eq!(moved.id, next.id);
        // A sees it too once its sync marks "short" silent.
        a.sync_origins().await.expect("sync");
        assert_eq!(a.pick("__defaultVhost__/live/m").await.unwrap().id, next.id);
        let third = heartbeat(&a, "third").await;
        heartbeat(&a, "next").await;
        b.sync_origins().await.expect("sync");
        // B cannot connect to "next": the stream moves although "next" is alive.
        let again = b
            .repick("__defaultVhost__/live/m", &next)
            .await
            .expect("repick");
        assert_eq!(again.id, third.id);
        ((only.id.clone(), moved.id.clone()), again.id.clone())
    });
    assert_ne!(before, after);
    assert_eq!(
        redis.get(url).as_deref(),
        Some(format!("srs-proxy-server:{repinned}").as_str())
    );
}

#[test]
fn hls_ids_and_webrtc_sessions_resolve_on_any_proxy() {
    let redis = RedisServer::start();
    let port = redis.port;
    let id = on_executor(move || async move {
        let a = proxy(port, Duration::from_secs(300));
        let b = proxy(port, Duration::from_secs(300));
        let c = proxy(port, Duration::from_secs(300));
        let id = a.hls_id("__defaultVhost__/live/h").await.expect("minted");
        assert_eq!(id.len(), 7);
        assert_eq!(b.hls_id("__defaultVhost__/live/h").await, Some(id.clone()));
        assert_eq!(
            c.hls_key(&id).await.as_deref(),
            Some("__defaultVhost__/live/h")
        );
        assert_eq!(c.hls_key("nope123").await, None);
        a.rtc_store("8f3k2a91:Xy7q", "__defaultVhost__/live/w")
            .await
            .expect("stored");
        assert_eq!(
            b.rtc_lookup("8f3k2a91:Xy7q").await.as_deref(),
            Some("__defaultVhost__/live/w")
        );
        assert_eq!(b.rtc_lookup("unknown:ufrag").await, None);
        id
    });
    let hls = redis
        .get(&format!("srs-proxy-spbhid:{id}"))
        .expect("spbhid key");
    assert_eq!(
        hls,
        format!(
            r#"{{"spbhid":"{id}","stream_url":"__defaultVhost__/live/h","full_url":"http://__defaultVhost__/live/h.m3u8"}}"#
        )
    );
    assert!((115..=120).contains(&redis.ttl(&format!("srs-proxy-spbhid:{id}"))));
    assert_eq!(
        redis.get("srs-proxy-ufrag:8f3k2a91:Xy7q").as_deref(),
        Some(r#"{"stream_url":"__defaultVhost__/live/w","ufrag":"8f3k2a91:Xy7q"}"#)
    );
}

/// A Redis restarted without persistence comes back empty. The origins that heartbeat to this
/// proxy stay alive (Redis lists them again after their next heartbeat), an origin known only
/// from Redis goes silent, and every pinned stream is claimed again for the origin that holds it,
/// not for a random one.
#[test]
fn a_redis_that_lost_its_data_keeps_streams_on_their_origins() {
    let redis = RedisServer::start();
    let port = redis.port;
    let streams: Vec<String> = (0..8)
        .map(|n| format!("__defaultVhost__/live/s{n}"))
        .collect();
    let keys = streams.clone();
    let flushed = std::sync::Arc::new(std::sync::Barrier::new(2));
    let at_flush = flushed.clone();
    let proxy_thread = std::thread::spawn(move || {
        on_executor(move || async move {
            let ttl = Duration::from_secs(300);
            let a = proxy(port, ttl);
            for n in 0..5 {
                heartbeat(&a, &format!("o{n}")).await;
            }
            let mut before = Vec::new();
            for k in &keys {
                before.push(a.pick(k).await.expect("pick").id.clone());
            }
            // A sixth origin heartbeats to another proxy: A knows it from Redis only.
            let remote = origin("remote");
            a.store_origin(&heartbeat_record(&remote, SystemTime::now()))
                .await
                .expect("stored");
            a.sync_origins().await.expect("sync");
            assert_eq!(a.origin_count(), 6);
            at_flush.wait(); // Redis loses everything here.
            at_flush.wait();
            assert_eq!(
                a.sync_origins().await.expect("sync"),
                0,
                "redis lists nothing"
            );
            let now = Instant::now();
            let alive: Vec<String> = a
                .origins()
                .iter()
                .filter(|o| o.is_alive(now, ttl))
                .map(|o| o.id.clone())
                .collect();
            assert_eq!(alive.len(), 5, "the origins heartbeating here: {alive:?}");
            assert!(
                !alive.iter().any(|id| id.starts_with("remote")),
                "{alive:?}"
            );
            glommio::timer::sleep(REVALIDATE + Duration::from_millis(200)).await;
            for (k, id) in keys.iter().zip(&before) {
                assert_eq!(
                    &a.pick(k).await.expect("pick after the flush").id,
                    id,
                    "{k}"
                );
            }
            before
        })
    });
    flushed.wait();
    redis.cmd(&["FLUSHALL"]);
    flushed.wait();
    let before = proxy_thread.join().expect("proxy thread");
    for (k, id) in streams.iter().zip(&before) {
        assert_eq!(
            redis.get(&format!("srs-proxy-url:{k}")),
            Some(format!("srs-proxy-server:{id}")),
            "{k} claimed again for its origin"
        );
    }
}

/// Messages between the cores of a two-core test proxy: `(to, from, message)`.
type Wire = std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<(usize, usize, LbMsg)>>>;

/// One core's outbox onto the shared wire; `drop_pins_to`: a core that never receives the
/// owner's `PinSet` (it stands for a core with no pin of the stream, e.g. one that dropped its
/// idle copy).
struct WireOutbox {
    me: usize,
    wire: Wire,
    drop_pins_to: Option<usize>,
}

impl Outbox for WireOutbox {
    fn send(&self, core: usize, msg: LbMsg) {
        if matches!(msg, LbMsg::PinSet { .. }) && self.drop_pins_to == Some(core) {
            return;
        }
        self.wire.borrow_mut().push_back((core, self.me, msg));
    }
    fn broadcast(&self, msg: LbMsg) {
        for core in 0..2 {
            if core != self.me {
                self.send(core, msg.clone());
            }
        }
    }
}

/// With Redis down, a core that has no pin of a stream asks the owner core, and the owner
/// answers with its own pin (past the revalidation period, when it would ask Redis) instead of
/// the Redis error.
#[test]
fn without_redis_the_owner_answers_other_cores_with_its_pin() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let (thread, rx, back_tx) = proxy_thread(move |tx, back_rx| async move {
        let wire: Wire = Default::default();
        let cores: Vec<Rc<LbCore<WireOutbox>>> = (0..2)
            .map(|me| {
                let outbox = WireOutbox {
                    me,
                    wire: wire.clone(),
                    drop_pins_to: Some(1),
                };
                core_of(port, Duration::from_secs(300), me, 2, outbox)
            })
            .collect();
        let mesh = {
            let (wire, cores) = (wire.clone(), cores.clone());
            glommio::spawn_local(async move {
                loop {
                    let next = wire.borrow_mut().pop_front();
                    match next {
                        Some((to, from, msg)) => cores[to].handle(from, msg),
                        None => glommio::timer::sleep(Duration::from_millis(1)).await,
                    }
                }
            })
            .detach()
        };
        let key = (0..)
            .map(|n| format!("__defaultVhost__/live/owned{n}"))
            .find(|k| cores[0].owner_of(k) == 0)
            .unwrap();
        heartbeat(&cores[0], "o1").await;
        let pinned = cores[0].pick(&key).await.expect("pick on the owner");
        tx.send("picked").unwrap();
        back_rx.recv().unwrap(); // Redis is down now.
        glommio::timer::sleep(REVALIDATE + Duration::from_millis(200)).await;
        let got = cores[1].pick(&key).await;
        mesh.cancel();
        assert_eq!(got.map(|o| o.id.clone()), Ok(pinned.id.clone()));
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("picked"));
    redis.stop();
    back_tx.send(()).unwrap();
    thread.join().expect("proxy thread");
}

#[test]
fn without_redis_cached_pins_keep_working_and_new_streams_fail_fast_then_recover() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let (thread, rx, back_tx) = proxy_thread(move |tx, back_rx| async move {
        let a = proxy(port, Duration::from_secs(300));
        let o = heartbeat(&a, "o1").await;
        let known = a.pick("__defaultVhost__/live/known").await.expect("pick");
        tx.send("picked").unwrap();
        // Redis stops here.
        back_rx.recv().unwrap();
        assert_eq!(
            a.pick("__defaultVhost__/live/known").await.unwrap().id,
            known.id
        );
        let started = Instant::now();
        let err = a.pick("__defaultVhost__/live/new").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "failed fast: {:?}",
            started.elapsed()
        );
        assert!(matches!(err, PickError::Redis { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("PROXY_REDIS_HOST"), "{text}");
        // Past the revalidation period the cached pin is still used.
        glommio::timer::sleep(REVALIDATE + Duration::from_millis(200)).await;
        assert_eq!(
            a.pick("__defaultVhost__/live/known").await.unwrap().id,
            known.id
        );
        tx.send("down-checked").unwrap();
        // Redis is back (empty: no persistence): the next heartbeat stores the origin again
        // and new streams work after the client's backoff.
        back_rx.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if a.store_origin(&heartbeat_record(&o, SystemTime::now()))
                .await
                .is_ok()
            {
                if let Ok(p) = a.pick("__defaultVhost__/live/new").await {
                    assert_eq!(p.id, o.id);
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no recovery in 10 s");
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        tx.send("recovered").unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("picked"));
    redis.stop();
    back_tx.send(()).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok("down-checked"));
    let redis = RedisServer::start_on(port, None);
    back_tx.send(()).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok("recovered"));
    thread.join().expect("proxy thread");
    assert_eq!(
        redis
            .get("srs-proxy-url:__defaultVhost__/live/new")
            .as_deref(),
        Some("srs-proxy-server:o1-svc-1")
    );
}
