//! Shared harness for the end-to-end tests: real processes (the proxy binary, nginx-rtmp, ffmpeg,
//! ffprobe, the str0m WebRTC test origin, aiortc clients) on 127.0.0.1 with ephemeral ports.
//!
//! Rules every helper follows: readiness is waited for with a deadline (never a bare sleep), every
//! loop is bounded, and every process a helper starts is stopped by its handle's `Drop` (children
//! also get `PR_SET_PDEATHSIG`, so a test runner killed mid-test leaves nothing behind). When a
//! test panics, handles keep their temp dirs and print where they are, plus their log tails.
//!
//! Each test binary uses a subset of these helpers, hence the `dead_code` and `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

pub mod http;
pub mod media;
pub mod nginx;
pub mod nms;
pub mod proc;
pub mod proxy;
pub mod redis;
pub mod rtmp_raw;
pub mod srt;
pub mod webrtc;

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use http::{http_request, playlist_uris, spbhid_of, HttpResponse};
pub use media::{
    encoded_source_flv, ffmpeg_play, ffmpeg_publish, ffprobe, spawn_ffmpeg_play, FfmpegPlayer,
    FfmpegPublisher, PublishOptions,
};
pub use nginx::{origin_stat, HookRecorder, NginxOptions, NginxRtmpOrigin, StreamStat};
pub use nms::NodeMediaServer;
pub use proxy::{
    post_register, register, register_body, run_proxy_expecting_exit, Heartbeat, OriginIds, Proxy,
    ProxyPorts,
};

/// Ports handed out by this process, so two helpers in parallel tests never get the same one from
/// the kernel's ephemeral range between "bind 0, release" and the real bind.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(port)
}

/// A free TCP port on 127.0.0.1 (bound to :0, then released).
pub fn free_tcp_port() -> u16 {
    for _ in 0..64 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if claim(port) {
            return port;
        }
    }
    panic!("no free TCP port after 64 tries");
}

/// A free UDP port on 127.0.0.1 (bound to :0, then released).
pub fn free_udp_port() -> u16 {
    for _ in 0..64 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("bind udp 127.0.0.1:0")
            .port();
        if claim(port) {
            return port;
        }
    }
    panic!("no free UDP port after 64 tries");
}

/// Polls `check` every 50 ms until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` every 50 ms until it is true, or panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    wait_for(timeout, what, || check().then_some(()))
}

/// Like [`wait_until`] but reports instead of panicking.
pub fn poll_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the harness keeps its files: cargo's per-target scratch dir for integration tests.
pub fn scratch_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e")
}

/// A per-test (per-process-handle) directory, removed on drop unless the thread is panicking, in
/// which case it is kept for post-mortem and its path printed.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = scratch_root().join(format!("{label}-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[harness] kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The last `n` lines of a text file (empty if it cannot be read).
pub fn tail_file(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    tail_lines(&text, n)
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Fails the test with a clear message when a required peer program is missing. A missing peer
/// is a failure, never a skip: `make test` installs them.
pub fn require_program(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "test peer `{name}` is not installed; run `make test` (it installs ffmpeg, nginx-light, \
         libnginx-mod-rtmp, …) or `scripts/install-peers.sh`"
    );
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone)]
pub struct MetricSample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl MetricSample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of metric `name` in a Prometheus text body (comments skipped; simple label
/// values without escaped quotes, which is all the proxy emits).
pub fn metric_samples(text: &str, name: &str) -> Vec<MetricSample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || !line.starts_with(name) {
            continue;
        }
        let rest = &line[name.len()..];
        let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
            let Some(end) = inner.find('}') else { continue };
            (parse_labels(&inner[..end]), inner[end + 1..].trim())
        } else if rest.starts_with(' ') {
            (Vec::new(), rest.trim())
        } else {
            continue; // a longer metric name sharing this prefix
        };
        let value = value.split_whitespace().next().unwrap_or("");
        if let Ok(value) = value.parse::<f64>() {
            out.push(MetricSample { labels, value });
        }
    }
    out
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

/// Sum of the samples of `name` whose labels include every `(key, value)` in `filter`.
pub fn metric_sum(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    metric_samples(text, name)
        .iter()
        .filter(|s| filter.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .sum()
}
