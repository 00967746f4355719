//! Timers on an otherwise idle glommio executor (the vendored reactor keeps its latency timer
//! armed across loops; see `vendor/glommio/SRS-PROXY-PATCH.md`).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use executors::PoolConfig;

/// An executor with nothing else to do sleeps until its next timer. When that timer is due in a
/// few microseconds it can fire between the moment the reactor arms it and the moment the thread
/// sleeps; the reactor must notice and not sleep, or the executor sleeps until unrelated I/O
/// arrives (seen in the proxy as a 10 s body deadline that never fired, about once in a hundred
/// sleeps). Thousands of sleeps of 1–40 µs, one after another, each must end.
#[test]
fn a_timer_that_fires_while_the_executor_goes_to_sleep_still_wakes_it() {
    const SLEEPS: u32 = 5_000;
    let (done, finished) = mpsc::channel();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = progress.clone();
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(PoolConfig::DEFAULT_IO_MEMORY_BYTES)
            .spawn(move || async move {
                let started = Instant::now();
                for i in 0..SLEEPS {
                    let us = 1 + u64::from(i.wrapping_mul(2_654_435_761) % 40);
                    glommio::timer::sleep(Duration::from_micros(us)).await;
                    seen.store(i + 1, std::sync::atomic::Ordering::Relaxed);
                }
                started.elapsed()
            })
            .expect("spawn executor")
            .join()
            .map(|took| done.send(took))
            .expect("executor finishes")
            .expect("test waits");
    });
    // Each sleep takes well under a millisecond; 5,000 of them take a few seconds at most in a
    // debug build on a busy machine. A lost wake-up never ends by itself.
    match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(took) => eprintln!("{SLEEPS} short sleeps took {took:?}"),
        Err(_) => panic!(
            "the executor stopped waking after {} of {SLEEPS} short sleeps: a timer that fired \
             before the executor slept was lost",
            progress.load(std::sync::atomic::Ordering::Relaxed)
        ),
    }
}
