//! Real SRT peers (`shared/design/test-peers.md`): `srt-live-transmit` (Debian srt-tools) as a
//! listener origin that captures what it receives, ffmpeg's libsrt listener as an origin serving
//! MPEG-TS, ffmpeg/ffprobe as callers through the proxy. Everything on 127.0.0.1, ephemeral UDP
//! ports.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::media::encoded_source_flv;
use super::proc::{die_with_parent, run_with_timeout, terminate, wait_timeout, Captured};
use super::proxy::{post_register, Proxy};
use super::{free_tcp_port, free_udp_port, require_program, scratch_root, wait_until, TestDir};
use super::{HttpResponse, OriginIds};

/// The shared H.264 + AAC source remuxed to MPEG-TS (cached like the FLV).
pub fn source_ts() -> PathBuf {
    static SOURCE: OnceLock<PathBuf> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let flv = encoded_source_flv();
            let path = scratch_root().join("source-4s-v1.ts");
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000) {
                return path;
            }
            let partial = scratch_root().join(format!("source-{}.partial.ts", std::process::id()));
            let out = run_with_timeout(
                Command::new("ffmpeg")
                    .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
                    .arg(&flv)
                    .args(["-c", "copy", "-f", "mpegts"])
                    .arg(&partial),
                Duration::from_secs(60),
            );
            assert!(out.success(), "remux to TS failed: {}", out.describe());
            std::fs::rename(&partial, &path).expect("rename source TS");
            path
        })
        .clone()
}

/// `srt://127.0.0.1:<port>?streamid=<sid>[&passphrase=…]` for a caller.
pub fn caller_url(port: u16, stream_id: &str, passphrase: Option<&str>) -> String {
    let mut url = format!("srt://127.0.0.1:{port}?streamid={stream_id}");
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={p}"));
    }
    url
}

fn listener_url(port: u16, passphrase: Option<&str>) -> String {
    let mut url = format!("srt://127.0.0.1:{port}?mode=listener");
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={p}"));
    }
    url
}

/// Waits until something holds UDP `port` on 127.0.0.1 (a plain bind fails).
fn wait_udp_bound(port: u16, what: &str) {
    wait_until(Duration::from_secs(10), what, || {
        UdpSocket::bind(("127.0.0.1", port)).is_err()
    });
}

/// An `srt-live-transmit` listener origin writing every payload it receives to a file.
pub struct SrtSink {
    pub port: u16,
    child: Option<Child>,
    dir: TestDir,
}

impl SrtSink {
    pub fn start(passphrase: Option<&str>) -> SrtSink {
        require_program("srt-live-transmit");
        let dir = TestDir::new("srt-sink");
        let port = free_udp_port();
        let mut cmd = Command::new("srt-live-transmit");
        cmd.args(["-q", "-a:no"])
            .arg(listener_url(port, passphrase) + "&tlpktdrop=false")
            .arg("file://con")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("capture.ts")).expect("capture.ts"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr.log"));
        let child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn srt-live-transmit: {e}"));
        wait_udp_bound(port, "srt-live-transmit listening");
        SrtSink {
            port,
            child: Some(child),
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn capture_path(&self) -> PathBuf {
        self.dir.path().join("capture.ts")
    }

    pub fn captured_len(&self) -> u64 {
        std::fs::metadata(self.capture_path())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for SrtSink {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[harness] srt-live-transmit stderr:\n{}", self.stderr());
        }
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(2));
        }
    }
}

/// An ffmpeg libsrt listener origin serving the source TS in a loop (`-re`) to one caller.
pub struct SrtTsSource {
    pub port: u16,
    child: Option<Child>,
    stderr: Option<Captured>,
}

impl SrtTsSource {
    pub fn start(passphrase: Option<&str>) -> SrtTsSource {
        let source = source_ts();
        SrtTsSource::spawn(
            &["-re", "-stream_loop", "-1"],
            source.as_os_str(),
            passphrase,
            free_udp_port(),
        )
    }

    /// Relays a live input (e.g. an origin's `rtmp://…/live/<s>`) to one SRT caller on `port`:
    /// an SRT server in front of an RTMP origin, as SRS has. ffmpeg opens the input first, so
    /// the stream must be published already.
    pub fn relay(input: &str, port: u16) -> SrtTsSource {
        SrtTsSource::spawn(&[], std::ffi::OsStr::new(input), None, port)
    }

    fn spawn(
        input_options: &[&str],
        input: &std::ffi::OsStr,
        passphrase: Option<&str>,
        port: u16,
    ) -> SrtTsSource {
        require_program("ffmpeg");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(input_options)
            .arg("-i")
            .arg(input)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(listener_url(port, passphrase))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ffmpeg SRT listener: {e}"));
        let stderr = Captured::new(child.stderr.take().expect("piped stderr"));
        wait_udp_bound(port, "ffmpeg SRT listener");
        SrtTsSource {
            port,
            child: Some(child),
            stderr: Some(stderr),
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default()
    }
}

impl Drop for SrtTsSource {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[harness] ffmpeg SRT listener stderr:\n{}", self.stderr());
        }
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(2));
        }
    }
}

/// `ffmpeg -re -i source.ts -c copy -f mpegts <url>`: an SRT caller publishing the source once.
pub struct SrtPublisher {
    child: Child,
    stderr: Option<Captured>,
}

impl SrtPublisher {
    pub fn start(url: &str, loops: bool) -> SrtPublisher {
        require_program("ffmpeg");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"]);
        if loops {
            cmd.args(["-stream_loop", "-1"]);
        }
        cmd.arg("-i")
            .arg(source_ts())
            .args(["-c", "copy", "-f", "mpegts", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ffmpeg SRT publisher: {e}"));
        let stderr = Captured::new(child.stderr.take().expect("piped stderr"));
        SrtPublisher {
            child,
            stderr: Some(stderr),
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default()
    }
}

impl Drop for SrtPublisher {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[harness] SRT publisher stderr:\n{}", self.stderr());
        }
        terminate(&mut self.child, Duration::from_secs(2));
    }
}

/// Registers an origin whose SRT server is on 127.0.0.1:`srt_port` (as SRS 7 sends it,
/// `udp://0.0.0.0:<port>`), with an unused RTMP port (the field is required).
pub fn register_srt(proxy: &Proxy, ids: &OriginIds, srt_port: u16) -> HttpResponse {
    let body = serde_json::json!({
        "device_id": ids.device_id,
        "ip": "127.0.0.1",
        "server": ids.server,
        "service": ids.service,
        "pid": ids.pid,
        "rtmp": [free_tcp_port().to_string()],
        "srt": [format!("udp://0.0.0.0:{srt_port}")],
    })
    .to_string();
    let resp = post_register(proxy.system_api(), &body, &[]);
    assert_eq!(resp.status, 200, "register {}: {}", ids.id(), resp.text());
    resp
}

/// Per-packet (stream, size, MD5 of the data) of a TS file, in file order.
pub fn packet_hashes(path: &Path) -> Vec<String> {
    require_program("ffprobe");
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-hide_banner", "-v", "error", "-show_data_hash", "MD5"])
            .args(["-show_entries", "packet=stream_index,size,data_hash"])
            .args(["-of", "json"])
            .arg(path),
        Duration::from_secs(30),
    );
    assert!(
        out.success(),
        "ffprobe packets of {}: {}",
        path.display(),
        out.describe()
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("ffprobe json");
    json["packets"]
        .as_array()
        .map(|packets| {
            packets
                .iter()
                .map(|p| format!("{},{},{}", p["stream_index"], p["size"], p["data_hash"]))
                .collect()
        })
        .unwrap_or_default()
}
