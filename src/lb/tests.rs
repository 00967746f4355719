use super::*;
use std::collections::VecDeque;
use std::time::SystemTime;

/// Messages in flight between simulated cores: (to, from, msg).
type Wire = Rc<RefCell<VecDeque<(usize, usize, LbMsg)>>>;

struct QueueOutbox {
    me: usize,
    cores: usize,
    wire: Wire,
}

impl Outbox for QueueOutbox {
    fn send(&self, core: usize, msg: LbMsg) {
        self.wire.borrow_mut().push_back((core, self.me, msg));
    }
    fn broadcast(&self, msg: LbMsg) {
        for c in (0..self.cores).filter(|c| *c != self.me) {
            self.wire.borrow_mut().push_back((c, self.me, msg.clone()));
        }
    }
}

fn cluster(n: usize, ttl: Duration) -> (Vec<Rc<LbCore<QueueOutbox>>>, Wire) {
    let wire: Wire = Rc::default();
    let cores = (0..n)
        .map(|me| {
            Rc::new(LbCore::new(
                me,
                n,
                ttl,
                QueueOutbox {
                    me,
                    cores: n,
                    wire: wire.clone(),
                },
                Arc::default(),
            ))
        })
        .collect();
    (cores, wire)
}

fn pump(cores: &[Rc<LbCore<QueueOutbox>>], wire: &Wire) {
    loop {
        let next = wire.borrow_mut().pop_front();
        match next {
            Some((to, from, msg)) => cores[to].handle(from, msg),
            None => break,
        }
    }
}

fn origin(id: &str, seen: Instant) -> Origin {
    let reg = crate::api::register::parse_registration(
        format!(
            r#"{{"ip":"127.0.0.1","server":"{id}","service":"svc","pid":"1","rtmp":["1935"]}}"#
        )
        .as_bytes(),
    )
    .expect("valid registration");
    Origin::from_registration(&reg, SystemTime::now(), seen)
}

/// Runs `f` on a glommio executor (the owner round trip uses glommio timers).
fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move { f().await })
        .expect("executor starts")
        .join()
        .expect("executor finishes");
}

/// The `nth` key owned by `core` among `n` cores.
fn nth_key_owned_by(core: usize, n: usize, nth: usize) -> String {
    (0..)
        .map(|i| format!("__defaultVhost__/live/s{i}"))
        .filter(|k| executors::shard_for(k.as_bytes(), n) == core)
        .nth(nth)
        .expect("keys hash to every core")
}

fn key_owned_by(core: usize, n: usize) -> String {
    nth_key_owned_by(core, n, 0)
}

#[test]
fn registration_replicates_to_every_core() {
    let (cores, wire) = cluster(3, Duration::from_secs(300));
    cores[1].register(origin("a", Instant::now()));
    pump(&cores, &wire);
    for c in &cores {
        assert_eq!(c.origin_count(), 1);
    }
}

#[test]
fn pick_without_origins_says_how_to_register() {
    run(|| async {
        let (cores, _wire) = cluster(1, Duration::from_secs(300));
        let err = cores[0].pick("k").await.unwrap_err();
        assert!(err.to_string().contains("/api/v1/srs/register"), "{err}");
    });
}

#[test]
fn a_pin_is_sticky_while_its_origin_lives() {
    run(|| async {
        let (cores, wire) = cluster(1, Duration::from_secs(300));
        for id in ["a", "b", "c", "d"] {
            cores[0].register(origin(id, Instant::now()));
        }
        pump(&cores, &wire);
        let first = cores[0].pick("k").await.unwrap();
        for _ in 0..50 {
            assert_eq!(cores[0].pick("k").await.unwrap().id, first.id);
        }
    });
}

#[test]
fn new_streams_avoid_origins_past_the_ttl() {
    run(|| async {
        let ttl = Duration::from_secs(5);
        let (cores, _wire) = cluster(1, ttl);
        let stale = Instant::now() - Duration::from_secs(60);
        cores[0].register(origin("dead", stale));
        cores[0].register(origin("live", Instant::now()));
        for i in 0..40 {
            let o = cores[0].pick(&format!("k{i}")).await.unwrap();
            assert_eq!(o.id, "live-svc-1");
        }
    });
}

#[test]
fn only_stale_origins_are_still_used() {
    run(|| async {
        let (cores, _wire) = cluster(1, Duration::from_secs(5));
        cores[0].register(origin("dead", Instant::now() - Duration::from_secs(60)));
        assert_eq!(cores[0].pick("k").await.unwrap().id, "dead-svc-1");
    });
}

#[test]
fn a_pin_moves_when_its_origin_stops_heartbeating() {
    run(|| async {
        let ttl = Duration::from_secs(5);
        let (cores, _wire) = cluster(1, ttl);
        cores[0].register(origin("a", Instant::now()));
        assert_eq!(cores[0].pick("k").await.unwrap().id, "a-svc-1");
        // "a" goes silent (its last heartbeat is now old) and "b" registers.
        cores[0].register(origin("a", Instant::now() - Duration::from_secs(60)));
        cores[0].register(origin("b", Instant::now()));
        assert_eq!(cores[0].pick("k").await.unwrap().id, "b-svc-1");
        assert_eq!(cores[0].metrics.repicks_total.load(Relaxed), 1);
    });
}

#[test]
fn a_refused_origin_loses_its_pin_on_every_core() {
    run(|| async {
        let (cores, wire) = cluster(2, Duration::from_secs(300));
        let key = key_owned_by(0, 2);
        cores[0].register(origin("a", Instant::now()));
        pump(&cores, &wire);
        let a = cores[0].pick(&key).await.unwrap();
        pump(&cores, &wire);
        cores[0].register(origin("b", Instant::now()));
        pump(&cores, &wire);
        // Core 1 has the pin cached from the owner's broadcast.
        assert_eq!(cores[1].pins(), vec![(key.clone(), a.id.clone())]);
        // Core 0 (the owner) sees "a" refuse and moves the pin; core 1 learns it.
        let b = cores[0].repick(&key, &a).await.unwrap();
        assert_eq!(b.id, "b-svc-1");
        pump(&cores, &wire);
        assert_eq!(cores[1].pick(&key).await.unwrap().id, "b-svc-1");
    });
}

#[test]
fn two_cores_asking_at_once_get_the_owners_single_decision() {
    run(|| async {
        let (cores, wire) = cluster(2, Duration::from_secs(300));
        for id in ["a", "b", "c", "d", "e", "f"] {
            cores[0].register(origin(id, Instant::now()));
        }
        pump(&cores, &wire);
        for round in 0..20 {
            let key = nth_key_owned_by(0, 2, round);
            // Core 1 asks the owner; before the reply is delivered, the owner decides for a
            // client of its own.
            let c1 = cores[1].clone();
            let k1 = key.clone();
            let asking = glommio::spawn_local(async move { c1.pick(&k1).await });
            // Let the asking task send its request (and nothing more: the wire is not pumped).
            glommio::timer::sleep(Duration::from_millis(1)).await;
            assert!(!wire.borrow().is_empty(), "core 1 asked the owner");
            let owner_choice = cores[0].pick(&key).await.unwrap();
            let remote_choice = futures_lite::future::or(asking, async {
                loop {
                    pump(&cores, &wire);
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .unwrap();
            assert_eq!(owner_choice.id, remote_choice.id, "round {round}");
        }
    });
}

#[test]
fn idle_pins_expire_and_active_ones_stay() {
    run(|| async {
        let (cores, _wire) = cluster(1, Duration::from_secs(300));
        cores[0].register(origin("a", Instant::now()));
        cores[0].pick("idle").await.unwrap();
        cores[0].pick("busy").await.unwrap();
        let _guard = cores[0].session("busy");
        let later = Instant::now() + PIN_IDLE + Duration::from_secs(1);
        assert_eq!(cores[0].sweep(later), 1);
        assert_eq!(cores[0].pins().len(), 1);
        assert_eq!(cores[0].pins()[0].0, "busy");
    });
}

#[test]
fn one_hls_id_per_key_on_every_core_and_segments_find_its_key_from_any_core() {
    run(|| async {
        let (cores, wire) = cluster(3, Duration::from_secs(300));
        for owner in 0..3 {
            let key = key_owned_by(owner, 3);
            // Ask from a core that does not own the key; the owner answers over the wire.
            let asker = cores[(owner + 1) % 3].clone();
            let k = key.clone();
            let task = glommio::spawn_local(async move { asker.hls_id(&k).await });
            glommio::timer::sleep(Duration::from_millis(1)).await;
            pump(&cores, &wire);
            let id = task.await.expect("the owner minted an id");
            assert_eq!(id.len(), 7);
            assert_eq!(
                executors::shard_for(id.as_bytes(), 3),
                owner,
                "id hashes to the owner"
            );
            // The owner and the asker agree, without another mint.
            assert_eq!(cores[owner].hls_id(&key).await.as_deref(), Some(&*id));
            assert_eq!(
                cores[(owner + 1) % 3].hls_id(&key).await.as_deref(),
                Some(&*id)
            );
            // A third core that never saw the key resolves the id through shard_for(id).
            let third = cores[(owner + 2) % 3].clone();
            let id2 = id.clone();
            let task = glommio::spawn_local(async move { third.hls_key(&id2).await });
            glommio::timer::sleep(Duration::from_millis(1)).await;
            pump(&cores, &wire);
            assert_eq!(task.await.as_deref(), Some(key.as_str()));
        }
    });
}

#[test]
fn unknown_hls_ids_resolve_to_nothing() {
    run(|| async {
        let (cores, wire) = cluster(2, Duration::from_secs(300));
        for id in ["0000000", "deadbee", "x", ""] {
            let c = cores[0].clone();
            let task = glommio::spawn_local(async move { c.hls_key(id).await });
            glommio::timer::sleep(Duration::from_millis(1)).await;
            pump(&cores, &wire);
            assert_eq!(task.await, None, "{id}");
        }
    });
}

#[test]
fn hls_ids_expire_when_idle_and_are_not_minted_per_request() {
    let mut table = hls::HlsTable::default();
    let t0 = Instant::now();
    let id = table.get_or_mint("k", t0, |_| true).unwrap();
    for i in 1..100 {
        let t = t0 + Duration::from_secs(i);
        assert_eq!(table.get_or_mint("k", t, |_| true).unwrap(), id);
    }
    assert_eq!(table.len(), 1, "no entry per request");
    let late = t0 + Duration::from_secs(99) + hls::HLS_IDLE;
    assert_eq!(table.key_for(&id, late), None);
    assert_eq!(table.sweep(late), 1);
    assert!(table.is_empty());
    // Cached entries live only HLS_CACHE.
    table.cache("k2".into(), "abcdef0".into(), t0);
    assert_eq!(table.key_for("abcdef0", t0).as_deref(), Some("k2"));
    assert_eq!(table.key_for("abcdef0", t0 + hls::HLS_CACHE), None);
}

#[test]
fn a_heartbeat_touch_revives_the_origin_on_every_core() {
    let ttl = Duration::from_secs(5);
    let (cores, wire) = cluster(2, ttl);
    cores[0].register(origin("a", Instant::now() - Duration::from_secs(60)));
    pump(&cores, &wire);
    let now = Instant::now();
    let replica = cores[1].origin("a-svc-1").expect("replicated");
    assert!(!replica.is_alive(now, ttl));
    // The system API touches its own core's record; the other core shares it.
    cores[0]
        .origin("a-svc-1")
        .expect("registered")
        .touch(SystemTime::now(), now);
    assert!(replica.is_alive(now, ttl));
    assert!(
        wire.borrow().is_empty(),
        "a touch sends nothing over the mesh"
    );
}

#[test]
fn memory_mode_keeps_no_webrtc_sessions_in_the_balancer() {
    run(|| async {
        let (cores, _wire) = cluster(1, Duration::from_secs(300));
        assert_eq!(
            cores[0].rtc_store("a:b", "__defaultVhost__/live/s").await,
            Ok(())
        );
        assert_eq!(cores[0].rtc_lookup("a:b").await, None);
        assert_eq!(cores[0].sync_origins().await, Ok(0));
    });
}
