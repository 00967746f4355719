//! Real signals and the force-quit timer. `harness = false`: the process has no other threads that
//! could take SIGTERM before `Shutdown::install` blocks it.

use std::process::Command;
use std::time::{Duration, Instant};

use executors::{run_pool, CoreContext, PoolConfig, Shutdown};

const CHILD_ENV: &str = "EXECUTORS_FORCE_QUIT_CHILD";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        force_quit_child();
    }
    sigterm_wakes_every_executor_and_names_the_signal();
    force_quit_exits_with_code_1_after_the_timeout();
    println!("signals: 2 tests passed");
}

fn sigterm_wakes_every_executor_and_names_the_signal() {
    let shutdown = Shutdown::install().expect("install signal handling");
    let again = Shutdown::install().expect_err("second install");
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);

    // Sent from a thread spawned after install, so it has SIGTERM blocked too.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: kill with our own pid and a valid signal has no memory effects.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    });
    let cores = executors::online_cpus().min(2);
    let cfg = PoolConfig {
        cores,
        pin: true,
        wake_coalesce: Duration::ZERO,
        sched_batch: true,
        io_memory_bytes: PoolConfig::DEFAULT_IO_MEMORY_BYTES,
        name: "signal-test".into(),
        mesh_capacity: 4,
    };
    let started = Instant::now();
    run_pool(cfg, shutdown.clone(), |ctx: CoreContext<()>| async move {
        ctx.shutdown.wait().await;
    })
    .expect("pool ends on SIGTERM");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(shutdown.signal_name(), Some("SIGTERM"));
    println!("test sigterm_wakes_every_executor_and_names_the_signal ... ok");
}

fn force_quit_exits_with_code_1_after_the_timeout() {
    let exe = std::env::current_exe().expect("test binary path");
    let started = Instant::now();
    let output = Command::new(exe)
        .env(CHILD_ENV, "1")
        .output()
        .expect("run child");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Force to exit by timeout"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(4));
    println!("test force_quit_exits_with_code_1_after_the_timeout ... ok");
}

fn force_quit_child() -> ! {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let shutdown = Shutdown::new_for_tests();
    shutdown
        .arm_force_quit(Duration::from_millis(50))
        .expect("force-quit thread");
    shutdown.trigger();
    std::thread::sleep(Duration::from_secs(3));
    // Reaching this line means the force quit did not fire.
    std::process::exit(0);
}
