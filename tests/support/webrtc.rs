//! Real WebRTC peers: the str0m test origin (`tests/webrtc-origin`, an ICE-lite SRS stand-in)
//! and the aiortc clients (`tests/webrtc/whip_publish.py`, `whep_play.py`). Everything on
//! 127.0.0.1 with ephemeral ports (the origin binds port 0 and reports its ports).
//!
//! The origin binary is `<target dir>/debug/webrtc-test-origin`; the first use in a test process
//! runs `cargo build -p webrtc-test-origin` (a no-op when it is fresh) so `cargo test` alone works.
//! aiortc comes from `scripts/install-peers.sh` (a venv, see [`aiortc_venv_python`]);
//! `WEBRTC_TEST_PYTHON` overrides the interpreter.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::http::http_request;
use super::proc::{die_with_parent, run_with_timeout, terminate, wait_timeout, Captured};
use super::{tail_file, tail_lines, TestDir};

/// `<target dir>/debug/webrtc-test-origin`, built (once per test process) if stale or missing.
pub fn origin_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR is <target dir>/tmp")
            .to_path_buf();
        let bin = target.join("debug").join("webrtc-test-origin");
        let out = run_with_timeout(
            Command::new(env!("CARGO"))
                .args(["build", "--locked", "-p", "webrtc-test-origin"])
                .arg("--manifest-path")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target),
            Duration::from_secs(600),
        );
        assert!(
            out.success() && bin.is_file(),
            "building webrtc-test-origin failed ({}): {}",
            bin.display(),
            out.describe()
        );
        bin
    })
    .clone()
}

/// Where `scripts/install-peers.sh` puts aiortc: a venv in [`NMS_DIR`](super::nms::NMS_DIR).
pub fn aiortc_venv_python() -> PathBuf {
    Path::new(super::nms::NMS_DIR).join("venv/bin/python3")
}

/// The interpreter that runs the aiortc clients (`WEBRTC_TEST_PYTHON`, else install-peers.sh's
/// venv, else `python3`), checked once to have aiortc.
pub fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let python = std::env::var("WEBRTC_TEST_PYTHON").unwrap_or_else(|_| {
                let venv = aiortc_venv_python();
                if venv.is_file() {
                    venv.display().to_string()
                } else {
                    "python3".to_string()
                }
            });
            let out = run_with_timeout(
                Command::new(&python).args(["-c", "import aiortc; print(aiortc.__version__)"]),
                Duration::from_secs(30),
            );
            assert!(
                out.success(),
                "`{python}` cannot import aiortc: run scripts/install-peers.sh (`make test` does): {}",
                out.describe()
            );
            python
        })
        .clone()
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/webrtc")
        .join(name)
}

/// A running `webrtc-test-origin`, stopped on drop.
pub struct WebrtcOrigin {
    pub udp_port: u16,
    pub http_port: u16,
    pub server_id: String,
    child: Option<Child>,
    dir: TestDir,
}

impl WebrtcOrigin {
    /// Starts an origin that registers with `register_url` (the proxy's
    /// `http://127.0.0.1:PORT/api/v1/srs/register`) every second, if given.
    pub fn start(register_url: Option<&str>, server_id: &str) -> WebrtcOrigin {
        let mut args: Vec<String> = Vec::new();
        if let Some(url) = register_url {
            args.extend(["--register".into(), url.into()]);
        }
        WebrtcOrigin::start_with(server_id, &args)
    }

    /// Starts an origin with extra command-line arguments (`--heartbeat-ms`, `--candidate`, …).
    pub fn start_with(server_id: &str, extra: &[String]) -> WebrtcOrigin {
        let bin = origin_bin();
        let dir = TestDir::new("webrtc-origin");
        let mut cmd = Command::new(&bin);
        cmd.args(["--listen", "127.0.0.1", "--server-id", server_id])
            .args(extra)
            .env("RUST_LOG", "webrtc_test_origin=debug,str0m=warn,warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("origin.log")).expect("origin.log"));
        let mut child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        // The READY line, read on a helper thread so a silent origin cannot hang the test.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            for _ in lines {} // keep the pipe drained
        });
        let ready = rx.recv_timeout(Duration::from_secs(15)).ok().flatten();
        let mut origin = WebrtcOrigin {
            udp_port: 0,
            http_port: 0,
            server_id: server_id.to_string(),
            child: Some(child),
            dir,
        };
        let parsed = ready.as_deref().and_then(parse_ready);
        let Some((udp_port, http_port)) = parsed else {
            origin.stop();
            panic!(
                "webrtc-test-origin printed {ready:?} instead of `READY udp=… http=…`; log:\n{}",
                origin.logs_tail(30)
            );
        };
        origin.udp_port = udp_port;
        origin.http_port = http_port;
        origin
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// `http://127.0.0.1:<http>/rtc/v1/whip/?app=…&stream=…`
    pub fn whip_url(&self, app: &str, stream: &str) -> String {
        format!(
            "http://127.0.0.1:{}/rtc/v1/whip/?app={app}&stream={stream}",
            self.http_port
        )
    }

    /// `http://127.0.0.1:<http>/rtc/v1/whep/?app=…&stream=…`
    pub fn whep_url(&self, app: &str, stream: &str) -> String {
        format!(
            "http://127.0.0.1:{}/rtc/v1/whep/?app={app}&stream={stream}",
            self.http_port
        )
    }

    /// The legacy JSON API: `/rtc/v1/publish/` or `/rtc/v1/play/`.
    pub fn json_api_url(&self, publish: bool) -> String {
        let what = if publish { "publish" } else { "play" };
        format!("http://127.0.0.1:{}/rtc/v1/{what}/", self.http_port)
    }

    /// `GET /stats` (see the origin's docs for the fields).
    pub fn stats(&self) -> serde_json::Value {
        let resp = http_request(self.http_addr(), "GET", "/stats", &[], b"")
            .unwrap_or_else(|e| panic!("GET /stats on {}: {e}", self.http_addr()));
        assert_eq!(resp.status, 200, "GET /stats: {}", resp.text());
        resp.json()
    }

    /// Polls `/stats` until `check` holds; panics naming `what` (with the last stats) after
    /// `timeout`.
    pub fn wait_stats(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if check(&stats) {
                return stats;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {what}; stats: {stats}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The sessions in `/stats` whose role is `role` (`"publish"` or `"play"`).
    pub fn sessions(stats: &serde_json::Value, role: &str) -> Vec<serde_json::Value> {
        stats["sessions"]
            .as_array()
            .map(|v| v.iter().filter(|s| s["role"] == role).cloned().collect())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("origin.log")).unwrap_or_default()
    }

    pub fn logs_tail(&self, n: usize) -> String {
        tail_file(&self.dir.path().join("origin.log"), n)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, bounded wait, SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(3));
        }
    }
}

impl Drop for WebrtcOrigin {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[harness] webrtc-test-origin {} (udp {} http {}) log tail:\n{}",
                self.server_id,
                self.udp_port,
                self.http_port,
                self.logs_tail(40)
            );
        }
        self.stop();
    }
}

fn parse_ready(line: &str) -> Option<(u16, u16)> {
    let mut udp = None;
    let mut http = None;
    let mut words = line.split_whitespace();
    if words.next()? != "READY" {
        return None;
    }
    for w in words {
        if let Some(v) = w.strip_prefix("udp=") {
            udp = v.parse().ok();
        } else if let Some(v) = w.strip_prefix("http=") {
            http = v.parse().ok();
        }
    }
    Some((udp?, http?))
}

/// A running aiortc client (`whip_publish.py` or `whep_play.py`), killed on drop.
pub struct RtcClient {
    label: String,
    child: Option<Child>,
    stdout: Option<Captured>,
    stderr: Option<Captured>,
    limit: Duration,
    started: Instant,
}

impl RtcClient {
    fn spawn(script_name: &str, url: &str, seconds: f64, extra: &[&str]) -> RtcClient {
        let python = python();
        let mut cmd = Command::new(&python);
        cmd.arg(script(script_name))
            .args(["--url", url, "--seconds", &seconds.to_string()])
            .args(extra)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {python} {script_name}: {e}"));
        RtcClient {
            label: format!("{script_name} {url}"),
            stdout: Some(Captured::new(child.stdout.take().expect("piped stdout"))),
            stderr: Some(Captured::new(child.stderr.take().expect("piped stderr"))),
            child: Some(child),
            // Connection, HTTP and teardown on top of the media time.
            limit: Duration::from_secs_f64(seconds) + Duration::from_secs(40),
            started: Instant::now(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits (bounded) for the client to exit and returns its JSON line, plus `exit_code` (null
    /// when it was killed at the time limit) and `stderr_tail`. Never panics: a client that
    /// printed no JSON gives `{"error": "…", …}`.
    pub fn finish(mut self) -> serde_json::Value {
        let status: Option<ExitStatus> = self.child.as_mut().and_then(|c| {
            let left = self.limit.saturating_sub(self.started.elapsed());
            let status = wait_timeout(c, left);
            if status.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
            status
        });
        self.child = None;
        let stdout = self
            .stdout
            .take()
            .map(|c| c.finish(Duration::from_secs(2)))
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|c| c.finish(Duration::from_secs(2)))
            .unwrap_or_default();
        let mut value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.is_object())
            .unwrap_or_else(|| {
                serde_json::json!({
                    "error": format!("{}: no JSON result line; stdout: {}", self.label, tail_lines(&stdout, 5)),
                })
            });
        value["exit_code"] = status.and_then(|s| s.code()).into();
        value["stderr_tail"] = tail_lines(&stderr, 15).into();
        value
    }
}

impl Drop for RtcClient {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if std::thread::panicking() {
                eprintln!(
                    "[harness] {} still running; stderr:\n{}",
                    self.label,
                    self.stderr
                        .as_ref()
                        .map(|s| tail_lines(&s.snapshot(), 15))
                        .unwrap_or_default()
                );
            }
            terminate(&mut c, Duration::from_secs(3));
        }
    }
}

/// Starts `whip_publish.py --url URL --seconds N EXTRA…` in the background.
pub fn spawn_whip_publish(url: &str, seconds: f64, extra: &[&str]) -> RtcClient {
    RtcClient::spawn("whip_publish.py", url, seconds, extra)
}

/// Starts `whep_play.py --url URL --seconds N EXTRA…` in the background.
pub fn spawn_whep_play(url: &str, seconds: f64, extra: &[&str]) -> RtcClient {
    RtcClient::spawn("whep_play.py", url, seconds, extra)
}

/// Runs `whip_publish.py` to the end; its JSON line (see [`RtcClient::finish`]).
pub fn whip_publish(url: &str, seconds: f64, extra: &[&str]) -> serde_json::Value {
    spawn_whip_publish(url, seconds, extra).finish()
}

/// Runs `whep_play.py` to the end; its JSON line (see [`RtcClient::finish`]).
pub fn whep_play(url: &str, seconds: f64, extra: &[&str]) -> serde_json::Value {
    spawn_whep_play(url, seconds, extra).finish()
}

/// Runs the origin binary to completion (for `--help` and bad-argument checks).
pub fn run_origin(args: &[&str], timeout: Duration) -> super::proc::RunOutput {
    run_with_timeout(Command::new(origin_bin()).args(args), timeout)
}

/// Waits until `origin` has a connected publisher of `stream` that has sent frames.
pub fn wait_publishing(origin: &WebrtcOrigin, stream: &str) -> serde_json::Value {
    origin.wait_stats(Duration::from_secs(30), "a connected publisher", |s| {
        WebrtcOrigin::sessions(s, "publish").iter().any(|p| {
            p["stream"] == stream && p["connected"] == true && p["frames_in"].as_u64() > Some(10)
        })
    })
}

/// Fails unless the client exited 0 with no error; logs what it reported.
pub fn assert_clean(v: &serde_json::Value, what: &str) {
    eprintln!(
        "{what}: status {} frames {} ({}x{}) after-rebind {} rebind {} error {}",
        v["status"],
        v["frames"],
        v["width"],
        v["height"],
        v["frames_after_rebind"],
        v["rebind"],
        v["error"]
    );
    assert!(
        v["error"].is_null() && v["exit_code"] == 0,
        "{what} failed: {v:#}"
    );
}
