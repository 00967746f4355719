//! Child processes that cannot outlive the test: `PR_SET_PDEATHSIG`, kill on drop, bounded waits.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Makes `cmd`'s child die with SIGKILL if the thread that spawned it dies first.
///
/// The signal follows the *spawning thread*, so only spawn long-lived children from the test's
/// own thread (not from short-lived helper threads).
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent; this is the
    // documented use of pre_exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Sends `signal` to `pid` (ignores "no such process").
pub fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: plain syscall on a pid we spawned.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Waits for `child` up to `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("try_wait: {e}"),
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL and reap.
pub fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    signal(child.id(), libc::SIGTERM);
    if let Some(status) = wait_timeout(child, grace) {
        return status;
    }
    let _ = child.kill();
    child.wait().unwrap_or_else(|_| ExitStatus::from_raw(9))
}

/// Collects a pipe into a shared string on a background thread.
pub struct Captured {
    text: Arc<Mutex<String>>,
    thread: Option<JoinHandle<()>>,
}

impl Captured {
    pub fn new(mut pipe: impl Read + Send + 'static) -> Captured {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Captured {
            text,
            thread: Some(thread),
        }
    }

    /// What has been read so far.
    pub fn snapshot(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) for the pipe to close, then returns everything.
    pub fn finish(mut self, timeout: Duration) -> String {
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + timeout;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        self.snapshot()
    }
}

/// Output of a finished (or killed) short-lived command.
#[derive(Debug)]
pub struct RunOutput {
    /// `None` when the command ran past its timeout and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }

    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => format!("{s}"),
            None => "killed after timeout".to_string(),
        };
        format!(
            "{status}; stderr: {}; stdout: {}",
            super::tail_lines(&self.stderr, 15),
            super::tail_lines(&self.stdout, 5)
        )
    }
}

/// Runs `cmd` to completion with a wall-clock limit (killed past it), capturing both pipes.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> RunOutput {
    let program = format!("{:?}", cmd.get_program());
    let mut child = die_with_parent(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .spawn()
    .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let stdout = Captured::new(child.stdout.take().expect("piped stdout"));
    let stderr = Captured::new(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    RunOutput {
        status,
        stdout: stdout.finish(Duration::from_secs(2)),
        stderr: stderr.finish(Duration::from_secs(2)),
    }
}
