//! `udp::Readable`: the ring wait that leaves the datagram queued, on a real glommio executor
//! and real loopback sockets.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use executors::udp::{Batch, Readable};
use executors::PoolConfig;

/// Runs `f` to completion on a fresh glommio executor.
fn on_executor<F: std::future::Future<Output = ()> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) {
    glommio::LocalExecutorBuilder::default()
        .io_memory(PoolConfig::DEFAULT_IO_MEMORY_BYTES)
        .spawn(move || async move { f().await })
        .expect("spawn executor")
        .join()
        .expect("executor finishes");
}

#[test]
fn wait_resolves_on_arrival_and_leaves_every_datagram_queued() {
    on_executor(|| async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let ready = Readable::new(rx.as_raw_fd()).unwrap();
        // A sender on another thread, 50 ms later: the wait must really wait.
        let started = Instant::now();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..3u8 {
                tx.send_to(&[i; 700], to).unwrap();
            }
            tx.local_addr().unwrap()
        });
        ready.wait().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(40));
        let from = sender.join().unwrap();
        // The peek took nothing: all three are there, whole, in order.
        let mut batch = Batch::new(1500);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 3 && Instant::now() < deadline {
            let n = batch.recv(rx.as_raw_fd()).unwrap();
            for i in 0..n {
                let (d, peer) = batch.get(i);
                assert_eq!(peer, Some(from));
                got.push(d.to_vec());
            }
        }
        assert_eq!(got, vec![vec![0u8; 700], vec![1u8; 700], vec![2u8; 700]]);
        // Queued already: resolves at once, again without taking it.
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", to).unwrap();
        ready.wait().await.unwrap();
        ready.wait().await.unwrap();
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), 1);
        assert_eq!(batch.get(0).0, b"x");
    });
}

#[test]
fn wait_reports_an_icmp_error_on_a_connected_socket() {
    on_executor(|| async {
        // A port nobody listens on: the send draws ICMP port unreachable.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(dead).unwrap();
        let ready = Readable::new(s.as_raw_fd()).unwrap();
        s.send(b"anyone?").unwrap();
        let e = ready.wait().await.expect_err("ICMP error reported");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    });
}

#[test]
fn dropping_the_waiter_leaves_the_socket_open() {
    on_executor(|| async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        drop(Readable::new(rx.as_raw_fd()).unwrap());
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"still here", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 32];
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"still here");
    });
}

/// A task woken by a datagram runs before its core sleeps again. The vendored glommio keeps an
/// armed preemption timer across executor loops (`vendor/glommio/SRS-PROXY-PATCH.md`); when
/// such a timer fired between the ring poll that woke the task and the task queue run, the
/// executor saw "preempt" before running anything, took that for "idle", and slept with the
/// task runnable until some later event: UDP relays stalled for up to 237 ms. A 1 ms
/// preemption timer and a long user timer kept pending make that timer fire thousands of times
/// during the echo below; each ping must come back.
#[test]
fn a_task_woken_by_a_datagram_runs_before_the_core_sleeps_again() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = echo.local_addr().unwrap();
    let core = glommio::LocalExecutorBuilder::default()
        .io_memory(PoolConfig::DEFAULT_IO_MEMORY_BYTES)
        .preempt_timer(Duration::from_millis(1))
        .spawn(move || async move {
            // A user timer far away: a sleeping core keeps its armed preemption timer.
            let far = glommio::spawn_local(glommio::timer::sleep(Duration::from_secs(60))).detach();
            let ready = Readable::new(echo.as_raw_fd()).unwrap();
            let mut batch = Batch::new(64);
            'serve: loop {
                ready.wait().await.unwrap();
                let n = batch.recv(echo.as_raw_fd()).unwrap();
                for i in 0..n {
                    let (d, peer) = batch.get(i);
                    echo.send_to(d, peer.unwrap()).unwrap();
                    if d == b"stop" {
                        break 'serve;
                    }
                }
            }
            far.cancel();
        })
        .expect("spawn executor");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let (mut stalled, mut worst) = (0, Duration::ZERO);
    for seq in 0..20_000u32 {
        let sent = Instant::now();
        client.send_to(&seq.to_be_bytes(), to).unwrap();
        // Replies to an earlier, stalled ping may arrive first: wait for this one.
        loop {
            match client.recv_from(&mut buf) {
                Ok((4, _)) if buf[..4] == seq.to_be_bytes() => {
                    worst = worst.max(sent.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => {
                    stalled += 1;
                    break;
                }
            }
        }
        if stalled >= 3 {
            break;
        }
    }
    // The stop may itself be the datagram a stalled core sits on: repeat it until answered.
    let mut stopped = false;
    for _ in 0..10 {
        client.send_to(b"stop", to).unwrap();
        if matches!(client.recv_from(&mut buf), Ok((4, _)) if &buf[..4] == b"stop") {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the echo core never answered the stop");
    core.join().expect("executor finishes");
    assert_eq!(
        stalled, 0,
        "{stalled} pings got no echo within 500 ms (worst answered round trip {worst:?})"
    );
}
