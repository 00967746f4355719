//! Wake-ups of idle glommio executors: every timer, cross-executor message and socket completion
//! must wake an executor that went to sleep. The vendored reactor's sleep path is patched (it
//! keeps its latency timer armed across loops, `vendor/glommio/SRS-PROXY-PATCH.md`); a wake-up
//! lost there stalls a core until unrelated I/O arrives, which no other test would notice.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use executors::PoolConfig;

/// Small deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Reads datagrams until the answer to `seq` (answers to earlier, timed-out steps may come late).
async fn answer(udp: &glommio::net::UdpSocket, seq: u32) {
    let mut buf = [0u8; 64];
    loop {
        let (n, _) = udp.recv_from(&mut buf).await.unwrap();
        if buf[..n] == seq.to_le_bytes() {
            return;
        }
    }
}

/// Runs `f` on a fresh glommio executor in a thread of its own and reports on `done` when it
/// returns (one that stalls never does: [`watch`] notices).
fn executor_thread<F, Fut>(done: mpsc::Sender<()>, f: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(PoolConfig::DEFAULT_IO_MEMORY_BYTES)
            .spawn(f)
            .expect("spawn executor")
            .join()
            .expect("executor finishes");
        done.send(()).unwrap();
    })
}

/// Waits until every executor thread reported on `finished`, failing the test when one of the
/// `progress` counters stops moving for `stall`: a lost wake-up never ends by itself.
fn watch(progress: &[Arc<AtomicU32>], finished: &mpsc::Receiver<()>, stall: Duration) {
    let mut last: Vec<u32> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    let mut moved = Instant::now();
    let mut done = 0;
    while done < progress.len() {
        match finished.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => done += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("an executor thread panicked"),
        }
        let now: Vec<u32> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
        if now != last {
            last = now;
            moved = Instant::now();
        }
        assert!(
            moved.elapsed() < stall,
            "no progress for {stall:?} (counters {last:?}): an executor slept through a timer, \
             a message or a socket event"
        );
    }
}

/// Two executors, each mostly idle, doing in random order what the proxy does: short timers,
/// cross-executor messages (the channel mesh), loopback datagrams and TCP messages answered by
/// plain threads after a random delay, reads that race a timeout (a cancelled read and a
/// cancelled timer), and accepts of connections a thread opens after a random delay. Nearly
/// every step puts an executor to sleep, woken by a timer, a receive or an accept (all complete
/// on the latency ring) or by the other executor (its eventfd). A receive that completed while the
/// reactor cancelled its old timer before sleeping used to be taken without running the woken
/// task: this test stalled within a few hundred steps in nearly every run.
#[test]
fn idle_executors_wake_for_every_timer_message_receive_and_accept() {
    stress(None);
}

/// The same with wake-up coalescing on (`PROXY_WAKE_COALESCE`, which the proxy turns on while a
/// core relays streams): each wake-up first sleeps the window, then takes the completions.
#[test]
fn idle_executors_wake_for_everything_while_coalescing_wake_ups() {
    stress(Some(Duration::from_micros(50)));
}

fn stress(coalesce: Option<Duration>) {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use glommio::channels::shared_channel;
    use glommio::net::{TcpListener, TcpStream, UdpSocket};
    use std::io::{Read, Write};

    const STEPS: u32 = 10_000;
    const STOP: u32 = u32::MAX;
    let (to_b, from_a) = shared_channel::new_bounded::<u32>(4);
    let (to_a, from_b) = shared_channel::new_bounded::<u32>(4);

    // The datagram echo: answers each datagram after 0–300 µs; ends on an empty datagram or when
    // nothing has come for 30 s (a failed test must not leave it running).
    let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    echo.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let echo_thread = std::thread::spawn(move || {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            if n == 0 {
                return;
            }
            std::thread::sleep(Duration::from_micros(rng.below(300)));
            let _ = echo.send_to(&buf[..n], from);
        }
    });

    // The TCP echo: one connection, each 4-byte message answered after 0–300 µs; ends at EOF.
    let tcp_echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_echo_addr = tcp_echo.local_addr().unwrap();
    let tcp_echo_thread = std::thread::spawn(move || {
        let (mut conn, _) = tcp_echo.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rng = Rng(0x8cb9_2ba7_2f3d_8dd7);
        let mut msg = [0u8; 4];
        while conn.read_exact(&mut msg).is_ok() {
            std::thread::sleep(Duration::from_micros(rng.below(300)));
            if conn.write_all(&msg).is_err() {
                return;
            }
        }
    });
    // The dialer: connects to the address it is given after 0–300 µs (an accept for executor a
    // to wait on); ends when its sender is dropped.
    let (dial, dials) = mpsc::channel::<std::net::SocketAddr>();
    let dialer = std::thread::spawn(move || {
        let mut rng = Rng(0x4f1b_bcdc_bfa5_3e0b);
        while let Ok(to) = dials.recv_timeout(Duration::from_secs(30)) {
            std::thread::sleep(Duration::from_micros(rng.below(300)));
            drop(std::net::TcpStream::connect(to));
        }
    });

    let progress = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
    let (finished, finishes) = mpsc::channel();
    let (seen_a, done_a) = (progress[0].clone(), finished.clone());
    let a = executor_thread(done_a, move || async move {
        glommio::executor().set_wake_coalesce(coalesce);
        let (to_b, from_b) = (to_b.connect().await, from_b.connect().await);
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut tcp = TcpStream::connect(tcp_echo_addr).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for step in 0..STEPS {
            match rng.below(6) {
                0 => glommio::timer::sleep(Duration::from_micros(1 + rng.below(200))).await,
                1 => {
                    to_b.send(step).await.unwrap();
                    assert_eq!(from_b.recv().await, Some(step));
                }
                2 => {
                    udp.send_to(&step.to_le_bytes(), echo_addr).await.unwrap();
                    answer(&udp, step).await;
                }
                3 => {
                    udp.send_to(&step.to_le_bytes(), echo_addr).await.unwrap();
                    let within = Duration::from_micros(1 + rng.below(300));
                    let _ = executors::with_timeout(within, answer(&udp, step)).await;
                }
                4 => {
                    tcp.write_all(&step.to_le_bytes()).await.unwrap();
                    let mut back = [0u8; 4];
                    tcp.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, step.to_le_bytes());
                }
                _ => {
                    dial.send(listener.local_addr().unwrap()).unwrap();
                    drop(listener.accept().await.unwrap());
                }
            }
            seen_a.store(step + 1, Ordering::Relaxed);
        }
        to_b.send(STOP).await.unwrap();
        udp.send_to(&[], echo_addr).await.unwrap();
        drop((tcp, dial));
    });
    let (seen_b, done_b) = (progress[1].clone(), finished);
    let b = executor_thread(done_b, move || async move {
        glommio::executor().set_wake_coalesce(coalesce);
        let (from_a, to_a) = (from_a.connect().await, to_a.connect().await);
        let mut rng = Rng(0xd1b5_4a32_d192_ed03);
        while let Some(step) = from_a.recv().await {
            if step == STOP {
                return;
            }
            if rng.below(2) == 0 {
                glommio::timer::sleep(Duration::from_micros(rng.below(100))).await;
            }
            to_a.send(step).await.unwrap();
            seen_b.fetch_add(1, Ordering::Relaxed);
        }
    });

    watch(&progress, &finishes, Duration::from_secs(5));
    a.join().unwrap();
    b.join().unwrap();
    echo_thread.join().unwrap();
    tcp_echo_thread.join().unwrap();
    dialer.join().unwrap();
    assert_eq!(progress[0].load(Ordering::Relaxed), STEPS);
}

/// An executor with nothing else to do sleeps until its next timer. When that timer is due in a
/// few microseconds it can fire between the moment the reactor arms it and the moment the thread
/// sleeps; the reactor must notice and not sleep, or the executor sleeps until unrelated I/O
/// arrives (seen in the proxy as a 10 s body deadline that never fired, about once in a hundred
/// sleeps). Thousands of sleeps of 1–40 µs, one after another, each must end.
#[test]
fn a_timer_that_fires_while_the_executor_goes_to_sleep_still_wakes_it() {
    const SLEEPS: u32 = 5_000;
    let progress = Arc::new(AtomicU32::new(0));
    let seen = progress.clone();
    let (finished, finishes) = mpsc::channel();
    let sleeper = executor_thread(finished, move || async move {
        for i in 0..SLEEPS {
            let us = 1 + u64::from(i.wrapping_mul(2_654_435_761) % 40);
            glommio::timer::sleep(Duration::from_micros(us)).await;
            seen.store(i + 1, Ordering::Relaxed);
        }
    });
    // Each sleep takes well under a millisecond (all of them about 0.3 s in a debug build).
    watch(&[progress], &finishes, Duration::from_secs(5));
    sleeper.join().unwrap();
}
