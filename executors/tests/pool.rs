//! The pool, the mesh and shutdown, on real pinned glommio executors.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use executors::udp::Readable;
use executors::{
    online_cpus, run_pool, run_pool_with_grace, with_coarse_timeout, with_timeout, CoreContext,
    Elapsed, MeshError, PoolConfig, PoolError, Shutdown,
};

/// Runs `body` on a helper thread and fails the test, instead of hanging it, past `limit`.
fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

fn config(cores: usize, name: &str) -> PoolConfig {
    PoolConfig {
        cores,
        pin: true,
        wake_coalesce: Duration::ZERO,
        sched_batch: false,
        io_memory_bytes: PoolConfig::DEFAULT_IO_MEMORY_BYTES,
        name: name.to_owned(),
        mesh_capacity: 16,
    }
}

fn two_or_fewer() -> usize {
    online_cpus().min(2)
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Msg {
    Direct { from: usize, to: usize },
    Hello { from: usize },
}

#[test]
fn every_core_reaches_every_core_and_shutdown_ends_the_pool() {
    let cores = two_or_fewer();
    let shutdown = Shutdown::new_for_tests();
    let received: Arc<Mutex<Vec<(usize, usize, Msg)>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let after_shutdown: Arc<Mutex<Vec<(usize, bool)>>> = Arc::default();

    // Triggers shutdown once every core has received everything it expects.
    let trigger = {
        let shutdown = shutdown.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(5);
            while done.load(Ordering::SeqCst) < cores && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            shutdown.trigger();
        })
    };

    let (r, a, d, s) = (
        Arc::clone(&received),
        Arc::clone(&after_shutdown),
        Arc::clone(&done),
        shutdown.clone(),
    );
    let result = within(Duration::from_secs(10), move || {
        run_pool(
            config(cores, "mesh-test"),
            s,
            move |ctx: CoreContext<Msg>| {
                let (received, after_shutdown, done) = (r.clone(), a.clone(), d.clone());
                async move {
                    assert_eq!(ctx.cores, cores);
                    assert_eq!(ctx.mesh.core(), ctx.core);
                    for to in 0..ctx.cores {
                        let msg = Msg::Direct { from: ctx.core, to };
                        ctx.mesh.send_to(to, msg).await.expect("peer is alive");
                    }
                    assert_eq!(
                        ctx.mesh.broadcast(Msg::Hello { from: ctx.core }).await,
                        cores - 1
                    );
                    // `cores` direct messages (one from itself) and `cores - 1` broadcasts.
                    for _ in 0..(2 * cores - 1) {
                        let (from, msg) = ctx.mesh.recv().await.expect("mesh open before shutdown");
                        received
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((ctx.core, from, msg));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    ctx.shutdown.wait().await;
                    let ended = ctx.mesh.recv().await.is_none();
                    after_shutdown
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((ctx.core, ended));
                }
            },
        )
    });
    trigger.join().expect("trigger thread does not panic");
    result.expect("pool runs cleanly");

    let got: BTreeSet<_> = received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .cloned()
        .collect();
    let mut expected = BTreeSet::new();
    for me in 0..cores {
        for from in 0..cores {
            expected.insert((me, from, Msg::Direct { from, to: me }));
            if from != me {
                expected.insert((me, from, Msg::Hello { from }));
            }
        }
    }
    assert_eq!(got, expected);
    assert_eq!(
        received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len(),
        expected.len(),
        "no duplicates"
    );
    let mut ended = after_shutdown
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    ended.sort();
    assert_eq!(ended, (0..cores).map(|c| (c, true)).collect::<Vec<_>>());
}

#[test]
fn a_panicking_executor_makes_run_pool_return_err() {
    let cores = two_or_fewer();
    let result = within(Duration::from_secs(10), move || {
        run_pool(
            config(cores, "panic-test"),
            Shutdown::new_for_tests(),
            |ctx: CoreContext<()>| async move {
                if ctx.core == 0 {
                    panic!("boom on purpose");
                }
                // The others only stop because the pool triggers shutdown for them.
                ctx.shutdown.wait().await;
            },
        )
    });
    match result {
        Err(PoolError::ExecutorPanicked {
            core: Some(0),
            message,
            abandoned: 0,
        }) => assert_eq!(message, "boom on purpose"),
        other => panic!("expected a panic on core 0, got {other:?}"),
    }
}

#[test]
fn a_panic_in_a_spawned_task_makes_run_pool_return_err() {
    let cores = two_or_fewer();
    let result = within(Duration::from_secs(10), move || {
        run_pool(
            config(cores, "task-panic-test"),
            Shutdown::new_for_tests(),
            move |ctx: CoreContext<()>| async move {
                if ctx.core == cores - 1 {
                    glommio::spawn_local(async { panic!("task boom") }).detach();
                }
                ctx.shutdown.wait().await;
            },
        )
    });
    let err = result.expect_err("a task panicked");
    assert!(matches!(err, PoolError::ExecutorPanicked { .. }), "{err}");
    assert!(err.to_string().contains("task boom"), "{err}");
}

#[test]
fn an_executor_that_ignores_shutdown_is_abandoned_after_the_grace() {
    if online_cpus() < 2 {
        return;
    }
    let started = Instant::now();
    let result = within(Duration::from_secs(10), || {
        run_pool_with_grace(
            config(2, "stuck-test"),
            Shutdown::new_for_tests(),
            Duration::from_millis(200),
            |ctx: CoreContext<()>| async move {
                if ctx.core == 0 {
                    panic!("boom before a stuck sibling");
                }
                futures_lite::future::pending::<()>().await;
            },
        )
    });
    let err = result.expect_err("core 0 panicked");
    assert!(
        matches!(err, PoolError::ExecutorPanicked { abandoned: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("abandoned"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn recv_ends_when_every_peer_has_left() {
    if online_cpus() < 2 {
        return;
    }
    let result = within(Duration::from_secs(10), || {
        run_pool(
            config(2, "leave-test"),
            Shutdown::new_for_tests(),
            |ctx: CoreContext<u32>| async move {
                if ctx.core == 1 {
                    ctx.mesh.send_to(0, 7).await.expect("core 0 is alive");
                    return;
                }
                assert_eq!(ctx.mesh.recv().await, Some((1, 7)));
                assert_eq!(ctx.mesh.recv().await, None);
                // Core 1 may still be tearing down its executor, so the send is either refused or
                // lands in a channel nobody reads; it must not wait or panic.
                let late = ctx.mesh.send_to(1, 8).await;
                assert!(
                    matches!(late, Ok(()) | Err(MeshError::Closed { core: 1 })),
                    "{late:?}"
                );
            },
        )
    });
    result.expect("both cores finish");
}

#[test]
fn a_core_messages_itself_with_backpressure_and_rejects_unknown_cores() {
    let result = within(Duration::from_secs(10), || {
        let mut cfg = config(1, "self-test");
        cfg.mesh_capacity = 2;
        run_pool(
            cfg,
            Shutdown::new_for_tests(),
            |ctx: CoreContext<u32>| async move {
                let mesh = ctx.mesh.clone();
                assert_eq!(mesh.try_send_to(0, 1), Ok(()));
                assert_eq!(mesh.send_to(0, 2).await, Ok(()));
                assert_eq!(mesh.try_send_to(0, 3), Err(MeshError::Full { core: 0 }));
                assert_eq!(
                    mesh.try_send_to(1, 3),
                    Err(MeshError::NoSuchCore { core: 1, cores: 1 })
                );
                assert_eq!(mesh.broadcast(9).await, 0, "no other core");
                assert_eq!(ctx.mesh.recv().await, Some((0, 1)));
                assert_eq!(ctx.mesh.recv().await, Some((0, 2)));
                // A single core is its own peer: recv waits instead of ending.
                let waited = with_timeout(Duration::from_millis(20), ctx.mesh.recv()).await;
                assert_eq!(
                    waited,
                    Err(Elapsed {
                        after: Duration::from_millis(20)
                    })
                );
            },
        )
    });
    result.expect("single core pool");
}

#[test]
fn with_timeout_returns_the_value_in_time_and_elapsed_otherwise() {
    within(Duration::from_secs(10), || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(PoolConfig::DEFAULT_IO_MEMORY_BYTES)
            .spawn(|| async {
                assert_eq!(
                    with_timeout(Duration::from_secs(1), async { 5 }).await,
                    Ok(5)
                );
                let late = with_timeout(
                    Duration::from_millis(10),
                    futures_lite::future::pending::<()>(),
                )
                .await;
                assert_eq!(
                    late,
                    Err(Elapsed {
                        after: Duration::from_millis(10)
                    })
                );
            })
            .expect("spawn executor")
            .join()
            .expect("executor ran");
    });
}

/// `with_coarse_timeout`: a ready future never enters the table; a pending one ends with
/// `Elapsed` within a tick of its timeout; one that finishes or is dropped leaves the table; a
/// short timeout stays precise.
#[test]
fn coarse_timeouts_fire_within_a_tick_and_leave_no_entry_behind() {
    use executors::coarse::{pending_coarse_deadlines, MIN_COARSE, TICK};
    within(Duration::from_secs(20), || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(PoolConfig::DEFAULT_IO_MEMORY_BYTES)
            .spawn(|| async {
                // Ready at once: no entry, no sweeper.
                assert_eq!(with_coarse_timeout(MIN_COARSE, async { 5 }).await, Ok(5));
                assert_eq!(pending_coarse_deadlines(), 0);

                // Finishes first: Ok, and the entry is gone.
                let quick = with_coarse_timeout(MIN_COARSE, async {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                    assert_eq!(
                        pending_coarse_deadlines(),
                        1,
                        "a pending wait is in the table"
                    );
                    7
                })
                .await;
                assert_eq!(quick, Ok(7));
                assert_eq!(pending_coarse_deadlines(), 0);

                // Never ready: Elapsed within a tick of the timeout.
                let started = Instant::now();
                let late =
                    with_coarse_timeout(MIN_COARSE, futures_lite::future::pending::<()>()).await;
                let took = started.elapsed();
                assert_eq!(late, Err(Elapsed { after: MIN_COARSE }));
                assert!(
                    took >= MIN_COARSE - TICK && took < MIN_COARSE + TICK + TICK / 2,
                    "a {MIN_COARSE:?} coarse timeout fired after {took:?}"
                );
                assert_eq!(pending_coarse_deadlines(), 0);

                // Dropped while pending (a cancelled task): the entry goes with it.
                let waiter = glommio::spawn_local(with_coarse_timeout(
                    Duration::from_secs(60),
                    futures_lite::future::pending::<()>(),
                ));
                glommio::timer::sleep(Duration::from_millis(20)).await;
                assert_eq!(pending_coarse_deadlines(), 1);
                drop(waiter);
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(pending_coarse_deadlines(), 0);

                // Below MIN_COARSE: a precise timer.
                let started = Instant::now();
                let short = with_coarse_timeout(
                    Duration::from_millis(30),
                    futures_lite::future::pending::<()>(),
                )
                .await;
                assert!(short.is_err());
                assert!(
                    started.elapsed() < Duration::from_millis(500),
                    "a 30 ms timeout took {:?}",
                    started.elapsed()
                );
            })
            .expect("spawn executor")
            .join()
            .expect("executor ran");
    });
}

#[test]
fn shutdown_wait_returns_at_once_when_already_triggered() {
    let shutdown = Shutdown::new_for_tests();
    shutdown.trigger();
    shutdown.trigger();
    assert!(shutdown.watch().is_triggered());
    assert_eq!(shutdown.signal_name(), None);
    shutdown.watch().wait_blocking();
    futures_lite::future::block_on(shutdown.watch().wait());
}

#[test]
fn run_pool_rejects_more_cores_than_cpus_in_one_line() {
    let err = run_pool(
        config(online_cpus() + 1, "too-many"),
        Shutdown::new_for_tests(),
        |_ctx: CoreContext<()>| async {},
    )
    .expect_err("more executors than CPUs");
    let line = err.to_string();
    assert!(line.contains("executors") && !line.contains('\n'), "{line}");
}

/// The CPUs an executor thread may run on (`sched_getaffinity` of the calling thread).
fn thread_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel fills at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is ours and sized as passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(
        rc,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `set` was filled by the kernel.
    unsafe { libc::CPU_COUNT(&set) as usize }
}

/// Runs a pool built from `cfg`, calls `probe` once on every executor's thread (after every core
/// reached every core over the mesh), and returns what each returned.
fn probe_every_executor<T: Send + 'static>(cfg: PoolConfig, probe: fn() -> T) -> Vec<T> {
    let shutdown = Shutdown::new_for_tests();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, out) = (shutdown.clone(), Arc::clone(&seen));
    within(Duration::from_secs(30), move || {
        run_pool(cfg, s.clone(), move |ctx: CoreContext<u32>| {
            let (s, out) = (s.clone(), out.clone());
            async move {
                for peer in 0..ctx.cores {
                    ctx.mesh.send_to(peer, 1).await.expect("send to every core");
                }
                let mut got = 0;
                while got < ctx.cores {
                    let (_, n) = ctx.mesh.recv().await.expect("every core sends");
                    got += n as usize;
                }
                let all_in = {
                    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                    out.push(probe());
                    out.len() == ctx.cores
                };
                if all_in {
                    s.trigger();
                }
                ctx.shutdown.wait().await;
            }
        })
    })
    .expect("pool runs cleanly");
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    std::mem::take(&mut *seen)
}

/// Pinned executors run on one CPU each; unpinned ones (`pin: false`) keep the process's whole
/// CPU set, so the kernel may move them, and they work the same (every core reaches every core).
#[test]
fn executors_are_pinned_to_one_cpu_each_unless_pin_is_off() {
    for pin in [true, false] {
        let cores = two_or_fewer();
        let cpus = probe_every_executor(
            PoolConfig {
                pin,
                ..config(cores, "placement")
            },
            thread_cpus,
        );
        assert_eq!(cpus.len(), cores, "pin {pin}: every executor reported");
        for n in cpus {
            if pin {
                assert_eq!(n, 1, "a pinned executor may run on {n} CPUs");
            } else {
                assert_eq!(n, online_cpus(), "an unpinned executor may run on {n} CPUs");
            }
        }
    }
}

/// `sched_batch` puts every executor thread under `SCHED_BATCH`; without it they keep the policy
/// they were started with (`SCHED_OTHER`, as the test harness runs).
#[test]
fn executors_run_under_sched_batch_only_when_asked() {
    for sched_batch in [true, false] {
        let cores = two_or_fewer();
        let batch = probe_every_executor(
            PoolConfig {
                sched_batch,
                ..config(cores, "policy")
            },
            executors::sched::is_batch,
        );
        assert_eq!(batch, vec![sched_batch; cores], "sched_batch {sched_batch}");
    }
}

/// Cross-core wake-ups (the vendored glommio sleeps behind a fence instead of `membarrier`, see
/// vendor/glommio/SRS-PROXY-PATCH.md): two cores bounce one message 20,000 times, so the
/// receiver is usually asleep when it arrives. One lost wake-up hangs the ping-pong and the
/// test fails at its deadline.
#[test]
fn a_ping_pong_between_two_cores_never_loses_a_wake_up() {
    const ROUNDS: usize = 20_000;
    let cores = two_or_fewer();
    if cores < 2 {
        // One CPU: glommio cannot pin two executors; the wake-up path is exercised on two.
        eprintln!("skipped: needs two CPUs, this machine has {cores}");
        return;
    }
    let shutdown = Shutdown::new_for_tests();
    let finished = Arc::new(AtomicUsize::new(0));
    let (s, f) = (shutdown.clone(), Arc::clone(&finished));
    let result = within(Duration::from_secs(60), move || {
        run_pool(
            config(2, "ping-pong"),
            s.clone(),
            move |ctx: CoreContext<usize>| {
                let (f, s) = (f.clone(), s.clone());
                async move {
                    let other = 1 - ctx.core;
                    if ctx.core == 0 {
                        ctx.mesh.send_to(other, 0).await.expect("peer alive");
                    }
                    loop {
                        let (_, n) = ctx.mesh.recv().await.expect("mesh open");
                        if n >= ROUNDS {
                            break;
                        }
                        ctx.mesh.send_to(other, n + 1).await.expect("peer alive");
                        if n + 1 >= ROUNDS {
                            break;
                        }
                    }
                    if f.fetch_add(1, Ordering::SeqCst) == 1 {
                        s.trigger();
                    }
                    ctx.shutdown.wait().await;
                }
            },
        )
    });
    result.expect("pool runs cleanly");
    assert_eq!(finished.load(Ordering::SeqCst), 2);
}

/// The relays' loops never wait when bytes are always queued on one side and room is always left
/// on the other (glommio completes such reads and sends without yielding); they call
/// `glommio::yield_if_needed` each round instead. This pins what that relies on, on a pool
/// executor as the proxy configures it: a task that never waits, but asks, still lets a new
/// connection on the same core be accepted (the reactor runs, the accept task gets its turn).
#[test]
fn a_task_that_never_waits_but_asks_to_yield_lets_the_core_accept() {
    let shutdown = Shutdown::new_for_tests();
    let accepted_while_hot = Arc::new(AtomicUsize::new(0));
    let (s, a) = (shutdown.clone(), Arc::clone(&accepted_while_hot));
    let result = within(Duration::from_secs(30), move || {
        run_pool(
            config(1, "hot-loop"),
            s.clone(),
            move |ctx: CoreContext<()>| {
                let (a, s) = (a.clone(), s.clone());
                async move {
                    let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                    let addr = listener.local_addr().expect("addr");
                    let accepted = std::rc::Rc::new(std::cell::Cell::new(false));
                    let flag = accepted.clone();
                    glommio::spawn_local(async move {
                        if listener.accept().await.is_ok() {
                            flag.set(true);
                        }
                    })
                    .detach();
                    // The client connects from another thread once the hot loop runs.
                    let client = std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        std::net::TcpStream::connect(addr).expect("connect")
                    });
                    // Hot: no await point but the cooperative one, for at most 5 s.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while !accepted.get() && Instant::now() < deadline {
                        glommio::yield_if_needed().await;
                        std::hint::black_box((0..1000u64).sum::<u64>());
                    }
                    if accepted.get() {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    drop(client.join());
                    s.trigger();
                    ctx.shutdown.wait().await;
                }
            },
        )
    });
    result.expect("pool runs cleanly");
    assert_eq!(
        accepted_while_hot.load(Ordering::SeqCst),
        1,
        "the connection was not accepted while the hot task ran (5 s)"
    );
}

/// The vendored glommio keeps an armed latency-ring timer across executor loops when it fires
/// no later than the one wanted (`vendor/glommio/SRS-PROXY-PATCH.md`): a shorter timer armed
/// while a longer one is pending must still wake an idle core in time, and a chain of short
/// sleeps must never lose one (a lost timer would leave the core asleep until the long one).
#[test]
fn a_shorter_timer_wakes_an_idle_core_while_a_longer_one_is_armed() {
    let shutdown = Shutdown::new_for_tests();
    let seen = Arc::new(Mutex::new(None));
    let (s, out) = (shutdown.clone(), Arc::clone(&seen));
    let result = within(Duration::from_secs(30), move || {
        run_pool(
            config(1, "timers"),
            s.clone(),
            move |ctx: CoreContext<()>| {
                let (s, out) = (s.clone(), out.clone());
                async move {
                    let long = glommio::spawn_local(async {
                        glommio::timer::sleep(Duration::from_secs(4)).await;
                    })
                    .detach();
                    // The core now sleeps with the 4 s timer armed.
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    let t0 = Instant::now();
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                    let short = t0.elapsed();
                    let t1 = Instant::now();
                    for _ in 0..50 {
                        glommio::timer::sleep(Duration::from_millis(2)).await;
                    }
                    let chain = t1.elapsed();
                    *out.lock().unwrap_or_else(PoisonError::into_inner) = Some((short, chain));
                    long.cancel();
                    s.trigger();
                    ctx.shutdown.wait().await;
                }
            },
        )
    });
    result.expect("pool runs cleanly");
    let (short, chain) = seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .expect("the timers ran");
    assert!(
        short >= Duration::from_millis(50) && short < Duration::from_millis(1500),
        "a 50 ms sleep took {short:?} while a 4 s timer was armed"
    );
    assert!(
        chain >= Duration::from_millis(100) && chain < Duration::from_millis(2500),
        "50 sleeps of 2 ms took {chain:?}"
    );
}

/// `wake_coalesce`: while a [`Coalescing`] guard is alive, an executor woken from sleep by a
/// datagram waits that long before it handles it (and still handles every one); once the guard
/// is dropped it answers at once again.
#[test]
fn a_woken_executor_waits_the_wake_coalesce_while_a_guard_is_held() {
    const COALESCE: Duration = Duration::from_millis(30);
    const PINGS: usize = 5;
    let shutdown = Shutdown::new_for_tests();
    let (addr_tx, addr_rx) = mpsc::channel();
    let s = shutdown.clone();
    let pool = std::thread::spawn(move || {
        run_pool(
            PoolConfig {
                wake_coalesce: COALESCE,
                ..config(1, "coalesce")
            },
            s,
            move |ctx: CoreContext<()>| {
                let addr_tx = addr_tx.clone();
                async move {
                    // The proxy's way to wait for datagrams: a readiness wait, then a
                    // non-blocking read.
                    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
                    sock.set_nonblocking(true).unwrap();
                    addr_tx.send(sock.local_addr().unwrap()).unwrap();
                    let ready = Readable::new(sock.as_raw_fd()).expect("waiter");
                    let echo = async {
                        let mut buf = [0u8; 16];
                        let mut guard = Some(executors::wake::coalescing());
                        let mut answered = 0;
                        while answered < 2 * PINGS {
                            ready.wait().await.expect("readable");
                            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                                sock.send_to(&buf[..n], from).expect("send");
                                answered += 1;
                                if answered == PINGS {
                                    guard = None;
                                }
                            }
                        }
                        drop(guard);
                    };
                    futures_lite::future::or(echo, ctx.shutdown.wait()).await;
                    ctx.shutdown.wait().await;
                }
            },
        )
    });
    let target = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the executor starts");
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut ping = |i: usize| {
        // Long enough for the executor to have gone back to sleep.
        std::thread::sleep(COALESCE * 2);
        let sent = Instant::now();
        client.send_to(&[i as u8], target).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = client.recv_from(&mut buf).expect("every ping is answered");
        assert_eq!(&buf[..n], &[i as u8]);
        sent.elapsed()
    };
    let mut guarded: Vec<Duration> = (0..PINGS).map(&mut ping).collect();
    let mut unguarded: Vec<Duration> = (PINGS..2 * PINGS).map(&mut ping).collect();
    shutdown.trigger();
    within(Duration::from_secs(10), move || pool.join())
        .expect("pool thread does not panic")
        .expect("pool runs cleanly");
    guarded.sort();
    unguarded.sort();
    // Each guarded ping found the executor asleep: its answer waited out the window first.
    assert!(
        guarded[PINGS / 2] >= COALESCE,
        "median guarded round trip {:?} is shorter than the window; all: {guarded:?}",
        guarded[PINGS / 2]
    );
    // Without a guard nothing waits: a loopback round trip takes microseconds, far below it.
    assert!(
        unguarded[PINGS / 2] < COALESCE,
        "median unguarded round trip {:?} still waited; all: {unguarded:?}",
        unguarded[PINGS / 2]
    );
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How the idle executor below waits for its datagram.
#[derive(Clone, Copy, Debug)]
enum IdleWait {
    /// `executors::udp::Readable`: a ring `POLL_ADD` (the proxy's UDP waits).
    Readable,
    /// glommio's own `UdpSocket::recv_from`: a ring receive op.
    GlommioRecvFrom,
}

/// Thread CPU an executor with nothing else to do uses while it waits `idle` for one datagram.
fn cpu_while_idle(wait: IdleWait, idle: Duration) -> Duration {
    let shutdown = Shutdown::new_for_tests();
    let (addr_tx, addr_rx) = mpsc::channel();
    let (cpu_tx, cpu_rx) = mpsc::channel();
    let s = shutdown.clone();
    let pool = std::thread::spawn(move || {
        run_pool(config(1, "idle"), s, move |ctx: CoreContext<()>| {
            let (addr_tx, cpu_tx) = (addr_tx.clone(), cpu_tx.clone());
            async move {
                match wait {
                    IdleWait::Readable => {
                        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
                        let ready = Readable::new(sock.as_raw_fd()).expect("waiter");
                        let before = thread_cpu();
                        addr_tx.send(sock.local_addr().unwrap()).unwrap();
                        ready.wait().await.expect("readable");
                        cpu_tx.send(thread_cpu() - before).unwrap();
                    }
                    IdleWait::GlommioRecvFrom => {
                        let sock = glommio::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
                        let mut buf = [0u8; 16];
                        let before = thread_cpu();
                        addr_tx.send(sock.local_addr().unwrap()).unwrap();
                        sock.recv_from(&mut buf).await.expect("recv_from");
                        cpu_tx.send(thread_cpu() - before).unwrap();
                    }
                }
                ctx.shutdown.wait().await;
            }
        })
    });
    let target = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the executor starts");
    std::thread::sleep(idle);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"wake", target).unwrap();
    let used = cpu_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the datagram wakes the executor");
    shutdown.trigger();
    within(Duration::from_secs(10), move || pool.join())
        .expect("pool thread does not panic")
        .expect("pool runs cleanly");
    used
}

/// An executor with nothing to do and no timer pending sleeps until I/O, whether it waits with a
/// readiness poll or with a receive op. (The vendored glommio cancels its preemption timer
/// before sleeping; the cancellation's completion, left on the ring, used to wake it at once, so
/// it spun at 100 % of a CPU while idle.)
#[test]
fn an_idle_executor_with_no_timer_sleeps_instead_of_spinning() {
    const IDLE: Duration = Duration::from_millis(400);
    for wait in [IdleWait::Readable, IdleWait::GlommioRecvFrom] {
        let used = cpu_while_idle(wait, IDLE);
        // A sleeping executor uses microseconds here; a spinning one, most of IDLE.
        assert!(
            used < IDLE / 4,
            "{wait:?}: the idle executor used {used:?} of CPU in {IDLE:?}"
        );
    }
}
