//! The proxy binary under test: spawn with `PROXY_*` env on ephemeral loopback ports, wait for
//! `GET /api/v1/versions` on the system API, SIGTERM on drop. Also origin registration helpers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::nginx::NginxRtmpOrigin;
use super::proc::{die_with_parent, signal, terminate, wait_timeout};
use super::{free_tcp_port, free_udp_port, http, tail_file, HttpResponse, TestDir};

pub const PROXY_BIN: &str = env!("CARGO_BIN_EXE_srs-proxy");

/// The six listeners, all on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct ProxyPorts {
    pub rtmp: u16,
    pub http: u16,
    pub http_api: u16,
    pub webrtc: u16,
    pub srt: u16,
    pub system_api: u16,
}

impl ProxyPorts {
    pub fn pick() -> ProxyPorts {
        ProxyPorts {
            rtmp: free_tcp_port(),
            http: free_tcp_port(),
            http_api: free_tcp_port(),
            webrtc: free_udp_port(),
            srt: free_udp_port(),
            system_api: free_tcp_port(),
        }
    }

    /// The default `PROXY_*` env for these ports (loopback only, 2 cores, static dir of the repo).
    pub fn env(&self) -> Vec<(String, String)> {
        let addr = |p: u16| format!("127.0.0.1:{p}");
        vec![
            ("PROXY_RTMP_SERVER".into(), addr(self.rtmp)),
            ("PROXY_HTTP_SERVER".into(), addr(self.http)),
            ("PROXY_HTTP_API".into(), addr(self.http_api)),
            ("PROXY_WEBRTC_SERVER".into(), addr(self.webrtc)),
            ("PROXY_SRT_SERVER".into(), addr(self.srt)),
            ("PROXY_SYSTEM_API".into(), addr(self.system_api)),
            ("PROXY_STATIC_FILES".into(), static_dir()),
            ("PROXY_CORES".into(), "2".into()),
            ("PROXY_GRACE_QUIT_TIMEOUT".into(), "3s".into()),
            ("PROXY_FORCE_QUIT_TIMEOUT".into(), "6s".into()),
            ("PROXY_LOG_LEVEL".into(), "info".into()),
        ]
    }
}

fn static_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/static").to_string()
}

/// Builds the proxy command: inherited `PROXY_*` variables removed, `env` applied (later entries
/// win), `overrides` applied last; a value of `None` unsets the variable. Runs in `cwd` so no
/// stray `.env` from the repo is read.
fn proxy_command(
    cwd: &std::path::Path,
    env: &[(String, String)],
    overrides: &[(&str, Option<&str>)],
) -> Command {
    let mut cmd = Command::new(PROXY_BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PROXY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, v) in overrides {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(cwd).stdin(Stdio::null());
    cmd
}

pub struct Proxy {
    pub ports: ProxyPorts,
    child: Option<Child>,
    dir: TestDir,
}

impl Proxy {
    /// Starts the proxy on fresh ports with `overrides` on top of [`ProxyPorts::env`].
    pub fn start(overrides: &[(&str, &str)]) -> Proxy {
        let overrides: Vec<(&str, Option<&str>)> =
            overrides.iter().map(|(k, v)| (*k, Some(*v))).collect();
        Proxy::start_raw(ProxyPorts::pick(), &overrides, None)
    }

    /// Full control: explicit ports, overrides that may unset (`None`), and an optional `.env`
    /// file written into the proxy's working directory.
    pub fn start_raw(
        ports: ProxyPorts,
        overrides: &[(&str, Option<&str>)],
        dotenv: Option<&str>,
    ) -> Proxy {
        let dir = TestDir::new("proxy");
        if let Some(text) = dotenv {
            std::fs::write(dir.path().join(".env"), text).expect("write .env");
        }
        let mut cmd = proxy_command(dir.path(), &ports.env(), overrides);
        cmd.stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("stdout.log"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr.log"));
        let child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {PROXY_BIN}: {e}"));
        let mut proxy = Proxy {
            ports,
            child: Some(child),
            dir,
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "srs-proxy exited during startup ({status}); logs:\n{}",
                    self.logs_tail(40)
                );
            }
            if let Ok(resp) =
                http::http_request(self.system_api(), "GET", "/api/v1/versions", &[], b"")
            {
                if resp.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "srs-proxy not ready (GET /api/v1/versions on {}) in 15 s; logs:\n{}",
                self.system_api(),
                self.logs_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn system_api(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.system_api))
    }

    pub fn http_api(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.http_api))
    }

    pub fn http_server(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.http))
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.rtmp))
    }

    /// `rtmp://127.0.0.1:<rtmp>/live/<stream>` (the stream may carry a `?query`).
    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.ports.rtmp)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `GET /metrics` on the system API, as text.
    pub fn metrics(&self) -> String {
        let resp = http::get(self.system_api(), "/metrics");
        assert_eq!(resp.status, 200, "GET /metrics: {}", resp.text());
        resp.text()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http::get(self.system_api(), path)
    }

    /// stdout followed by stderr.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    pub fn logs_tail(&self, n: usize) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            tail_file(&self.dir.path().join("stdout.log"), n),
            tail_file(&self.dir.path().join("stderr.log"), n)
        )
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; `None` if it is still running.
    pub fn sigterm_and_wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        signal(child.id(), libc::SIGTERM);
        let status = wait_timeout(child, timeout);
        if status.is_some() {
            self.child = None;
        }
        status
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[harness] srs-proxy (rtmp={} system_api={}) logs:\n{}",
                self.ports.rtmp,
                self.ports.system_api,
                self.logs_tail(60)
            );
        }
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(8));
        }
    }
}

/// Runs the proxy expecting it to exit by itself within `timeout` (bad config, port in use).
/// Returns the exit status and stdout+stderr; panics if it is still running at the deadline.
pub fn run_proxy_expecting_exit(
    ports: ProxyPorts,
    overrides: &[(&str, Option<&str>)],
    timeout: Duration,
) -> (ExitStatus, String) {
    let dir = TestDir::new("proxy-exit");
    let mut cmd = proxy_command(dir.path(), &ports.env(), overrides);
    let out = super::proc::run_with_timeout(&mut cmd, timeout);
    let logs = format!("{}{}", out.stdout, out.stderr);
    match out.status {
        Some(status) => (status, logs),
        None => panic!("srs-proxy still running after {timeout:?}; logs:\n{logs}"),
    }
}

/// The identity fields of an SRS heartbeat.
#[derive(Debug, Clone)]
pub struct OriginIds {
    pub device_id: String,
    pub server: String,
    pub service: String,
    pub pid: String,
}

impl OriginIds {
    /// Distinct, SRS-shaped ids for origin number `n`.
    pub fn numbered(n: u32) -> OriginIds {
        OriginIds {
            device_id: format!("origin{n}"),
            server: format!("vid-test{n:03}"),
            service: format!("svc{n:05}"),
            pid: format!("{}", 4200 + n),
        }
    }

    /// `<server>-<service>-<pid>`, the proxy's origin id (spec §3.4).
    pub fn id(&self) -> String {
        format!("{}-{}-{}", self.server, self.service, self.pid)
    }
}

/// The compact SRS heartbeat JSON (spec §3.2) for `origin` with `ids`.
pub fn register_body(origin: &NginxRtmpOrigin, ids: &OriginIds) -> String {
    serde_json::json!({
        "device_id": ids.device_id,
        "ip": "127.0.0.1",
        "server": ids.server,
        "service": ids.service,
        "pid": ids.pid,
        "rtmp": [origin.rtmp_port.to_string()],
        "http": [origin.http_port.to_string()],
    })
    .to_string()
}

/// Registers `origin` through `POST /api/v1/srs/register`, as an SRS heartbeat would, and
/// asserts the documented success reply.
pub fn register(proxy: &Proxy, origin: &NginxRtmpOrigin, ids: &OriginIds) -> HttpResponse {
    let resp = post_register(proxy.system_api(), &register_body(origin, ids), &[]);
    assert_eq!(resp.status, 200, "register {}: {}", ids.id(), resp.text());
    let json = resp.json();
    assert_eq!(json["code"], 0, "register reply: {json}");
    resp
}

/// One heartbeat POST with SRS's own headers.
pub fn post_register(addr: SocketAddr, body: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let mut headers = vec![("User-Agent", "SRS/7.0.18(Hang)")];
    headers.extend_from_slice(extra);
    http::post_json(addr, "/api/v1/srs/register", &headers, body)
}

/// Re-registers an origin every `interval` (what SRS's heartbeat does) until dropped.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(addr: SocketAddr, body: String, interval: Duration) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let _ = http::http_request(
                    addr,
                    "POST",
                    "/api/v1/srs/register",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                );
                let next = Instant::now() + interval;
                while Instant::now() < next && !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Heartbeat {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the proxy binary is (for messages).
pub fn proxy_bin() -> PathBuf {
    PathBuf::from(PROXY_BIN)
}
