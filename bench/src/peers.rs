//! The processes a bench starts, each on ephemeral loopback ports with a readiness deadline and
//! killed on drop: nginx-rtmp (origin), HAProxy `mode tcp` and nginx `stream` (L4 relays),
//! srs-proxy, and ffmpeg (encoder, publisher).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{
    free_port, free_udp_port, http, local, require_program, tail_file, wait_until, Proc, Result,
    TempDir,
};

pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

fn tcp_ready(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits for `addr` to accept, failing early (with the log) if `proc` exits.
fn wait_listening(proc: &mut Proc, addr: SocketAddr, what: &str) -> Result<()> {
    let mut dead = None;
    let r = wait_until(Duration::from_secs(10), what, || {
        if let Err(e) = proc.check_alive() {
            dead = Some(e);
            return true;
        }
        tcp_ready(addr)
    });
    match dead {
        Some(e) => Err(e),
        None => r.map_err(|e| format!("{e}; log tail:\n{}", tail_file(&proc.log, 15))),
    }
}

/// nginx with the RTMP module as the origin (`live on`, no HLS, no recording).
pub struct NginxRtmp {
    pub port: u16,
    pub proc: Proc,
    _dir: TempDir,
}

impl NginxRtmp {
    pub fn start(chunk_size: u32) -> Result<NginxRtmp> {
        require_program("nginx")?;
        if !Path::new(RTMP_MODULE).is_file() {
            return Err(format!(
                "{RTMP_MODULE} missing: install libnginx-mod-rtmp (scripts/install-peers.sh)"
            ));
        }
        let dir = TempDir::new("nginx-rtmp")?;
        let root = dir.path();
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| e.to_string())?;
        }
        let port = free_port();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid nginx.pid;\n\
             error_log logs/error.log warn;\n\
             load_module {RTMP_MODULE};\n\
             events {{ worker_connections 8192; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size {chunk_size};\n\
               application live {{ live on; record off; }} }} }}\n"
        );
        std::fs::write(root.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-p")
            .arg(format!("{}/", root.display()))
            .current_dir(root);
        let mut proc = Proc::spawn("nginx-rtmp", cmd, &root.join("stderr.log"))?;
        wait_listening(&mut proc, local(port), "nginx-rtmp listening")?;
        Ok(NginxRtmp {
            port,
            proc,
            _dir: dir,
        })
    }
}

/// HAProxy `mode tcp` in front of `backend`, kernel splicing enabled both ways.
pub struct Haproxy {
    pub port: u16,
    pub proc: Proc,
    _dir: TempDir,
}

impl Haproxy {
    pub fn start(backend: u16, threads: usize) -> Result<Haproxy> {
        require_program("haproxy")?;
        let dir = TempDir::new("haproxy")?;
        let port = free_port();
        let conf = format!(
            "global\n  maxconn 4000\n  nbthread {threads}\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\
               option splice-request\n  option splice-response\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server o1 127.0.0.1:{backend}\n"
        );
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, conf).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&cfg).current_dir(dir.path());
        let mut proc = Proc::spawn("haproxy", cmd, &dir.path().join("haproxy.log"))?;
        wait_listening(&mut proc, local(port), "haproxy listening")?;
        Ok(Haproxy {
            port,
            proc,
            _dir: dir,
        })
    }
}

/// nginx `stream` (L4) in front of `backend`; `None` when the stream module is not installed.
pub struct NginxStream {
    pub port: u16,
    pub proc: Proc,
    _dir: TempDir,
}

impl NginxStream {
    pub fn available() -> bool {
        Path::new(STREAM_MODULE).is_file()
    }

    pub fn start(backend: u16) -> Result<NginxStream> {
        require_program("nginx")?;
        let dir = TempDir::new("nginx-stream")?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("logs")).map_err(|e| e.to_string())?;
        let port = free_port();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid nginx.pid;\n\
             error_log logs/error.log warn;\n\
             load_module {STREAM_MODULE};\n\
             events {{ worker_connections 8192; }}\n\
             stream {{ server {{ listen 127.0.0.1:{port}; proxy_pass 127.0.0.1:{backend};\n\
               proxy_buffer_size 64k; }} }}\n"
        );
        std::fs::write(root.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-p")
            .arg(format!("{}/", root.display()))
            .current_dir(root);
        let mut proc = Proc::spawn("nginx-stream", cmd, &root.join("stderr.log"))?;
        wait_listening(&mut proc, local(port), "nginx stream listening")?;
        Ok(NginxStream {
            port,
            proc,
            _dir: dir,
        })
    }
}

/// Whether the benches start srs-proxy with pinned executors (`PROXY_PIN_CORES`; `--proxy-pin`).
static PROXY_PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets `PROXY_PIN_CORES` for every srs-proxy the benches start from now on.
pub fn set_proxy_pin(pin: bool) {
    PROXY_PIN.store(pin, std::sync::atomic::Ordering::Relaxed);
}

/// The `PROXY_PIN_CORES` the benches give srs-proxy.
pub fn proxy_pin() -> bool {
    PROXY_PIN.load(std::sync::atomic::Ordering::Relaxed)
}

/// `PROXY_WAKE_COALESCE` for srs-proxy (`--proxy-wake-coalesce`); `None`: the proxy's default.
static PROXY_WAKE_COALESCE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Sets `PROXY_WAKE_COALESCE` (a Go duration) for every srs-proxy the benches start from now on.
pub fn set_proxy_wake_coalesce(value: String) {
    *PROXY_WAKE_COALESCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
}

/// The `PROXY_WAKE_COALESCE` the benches give srs-proxy, if not its default.
pub fn proxy_wake_coalesce() -> Option<String> {
    PROXY_WAKE_COALESCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The proxy binary: `BENCH_PROXY_BIN`, else `<workspace>/target/release/srs-proxy`.
pub fn proxy_bin() -> Result<PathBuf> {
    let bin = match std::env::var_os("BENCH_PROXY_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("release/srs-proxy")
        }
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release --locked` first (make bench does)",
            bin.display()
        ))
    }
}

/// srs-proxy on fresh loopback ports.
pub struct SrsProxy {
    pub rtmp: u16,
    pub system_api: u16,
    /// `PROXY_HTTP_SERVER` (HTTP-FLV/TS, HLS).
    pub http: u16,
    /// `PROXY_SRT_SERVER` (UDP).
    pub srt: u16,
    /// `PROXY_HTTP_API` (WebRTC signalling).
    pub http_api: u16,
    /// `PROXY_WEBRTC_SERVER` (UDP).
    pub webrtc: u16,
    pub proc: Proc,
    _dir: TempDir,
}

/// Sum of metric `name` over its label sets that contain `label` (`""`: all of them), from the
/// proxy's `GET /metrics` at `api`.
pub fn metric_sum(api: SocketAddr, name: &str, label: &str) -> Result<f64> {
    let (status, text) = http(api, "GET", "/metrics", b"")?;
    if status != 200 {
        return Err(format!("GET /metrics: HTTP {status}"));
    }
    let prefix = format!("{name}{{");
    Ok(text
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

impl SrsProxy {
    pub fn start(cores: usize) -> Result<SrsProxy> {
        SrsProxy::start_with_env(cores, &[])
    }

    /// [`SrsProxy::start`] with extra `PROXY_*` settings.
    pub fn start_with_env(cores: usize, env: &[(&str, &str)]) -> Result<SrsProxy> {
        let bin = proxy_bin()?;
        let dir = TempDir::new("proxy")?;
        let (rtmp, system_api, http_server) = (free_port(), free_port(), free_port());
        let srt = free_udp_port();
        let (http_api, webrtc) = (free_port(), free_udp_port());
        let addr = |p: u16| format!("127.0.0.1:{p}");
        let mut cmd = Command::new(&bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PROXY_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG")
            .env("PROXY_RTMP_SERVER", addr(rtmp))
            .env("PROXY_SYSTEM_API", addr(system_api))
            .env("PROXY_HTTP_API", addr(http_api))
            .env("PROXY_HTTP_SERVER", addr(http_server))
            .env("PROXY_WEBRTC_SERVER", addr(webrtc))
            .env("PROXY_SRT_SERVER", addr(srt))
            .env("PROXY_STATIC_FILES", "off")
            .env("PROXY_CORES", cores.to_string())
            .env("PROXY_PIN_CORES", if proxy_pin() { "on" } else { "off" })
            .envs(proxy_wake_coalesce().map(|v| ("PROXY_WAKE_COALESCE".to_string(), v)))
            .env("PROXY_LOG_LEVEL", "warn")
            .env("PROXY_GRACE_QUIT_TIMEOUT", "1s")
            .env("PROXY_FORCE_QUIT_TIMEOUT", "2s")
            .envs(env.iter().copied())
            .current_dir(dir.path());
        let mut proc = Proc::spawn("srs-proxy", cmd, &dir.path().join("proxy.log"))?;
        let api = local(system_api);
        let mut dead = None;
        wait_until(Duration::from_secs(15), "srs-proxy ready", || {
            if let Err(e) = proc.check_alive() {
                dead = Some(e);
                return true;
            }
            matches!(http(api, "GET", "/api/v1/versions", b""), Ok((200, _)))
        })?;
        if let Some(e) = dead {
            return Err(e);
        }
        wait_listening(&mut proc, local(rtmp), "srs-proxy RTMP listening")?;
        Ok(SrsProxy {
            rtmp,
            system_api,
            http: http_server,
            srt,
            http_api,
            webrtc,
            proc,
            _dir: dir,
        })
    }

    /// Registers an origin whose SRT server listens on UDP `srt_port` (RTMP: an unused port).
    pub fn register_srt(&self, srt_port: u16) -> Result<()> {
        self.register_body(&format!(
            r#"{{"ip":"127.0.0.1","server":"o1","service":"s1","pid":"1","rtmp":["{}"],"srt":["udp://0.0.0.0:{srt_port}"]}}"#,
            free_port()
        ))
    }

    /// Registers an origin whose RTMP listens on `rtmp_port`.
    pub fn register(&self, rtmp_port: u16) -> Result<()> {
        self.register_body(&register_body(rtmp_port))
    }

    /// Registers an origin with RTMP on `rtmp_port` and its HTTP server on `http_port`.
    pub fn register_http(&self, rtmp_port: u16, http_port: u16) -> Result<()> {
        self.register_body(&format!(
            r#"{{"ip":"127.0.0.1","server":"o1","service":"s1","pid":"1","rtmp":["{rtmp_port}"],"http":["{http_port}"]}}"#
        ))
    }

    /// Sum of a counter over its label sets matching `protocol` (from `GET /metrics`).
    pub fn counter(&self, name: &str, protocol: &str) -> Result<f64> {
        metric_sum(
            local(self.system_api),
            name,
            &format!("protocol=\"{protocol}\""),
        )
    }

    /// Registers an origin by its heartbeat JSON.
    pub fn register_body(&self, body: &str) -> Result<()> {
        let (status, text) = http(
            local(self.system_api),
            "POST",
            "/api/v1/srs/register",
            body.as_bytes(),
        )?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("register: HTTP {status}: {text}"))
        }
    }
}

pub fn register_body(rtmp_port: u16) -> String {
    format!(r#"{{"ip":"127.0.0.1","server":"o1","service":"s1","pid":"1","rtmp":["{rtmp_port}"]}}"#)
}

/// Source media settings for the fan-out.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub bitrate_kbps: u32,
    pub seconds: u32,
    pub size: String,
}

/// Encodes (once, cached under `target/bench-cache`) a noisy testsrc + sine FLV at the given
/// bitrate; returns its path and measured bitrate in kbit/s.
pub fn encoded_source(spec: &SourceSpec) -> Result<(PathBuf, f64)> {
    require_program("ffmpeg")?;
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cache");
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let file = cache.join(format!(
        "src-{}-{}k-{}s.flv",
        spec.size, spec.bitrate_kbps, spec.seconds
    ));
    if !file.is_file() {
        eprintln!(
            "[bench] encoding {} ({} s, {} kbit/s, once; cached)",
            file.display(),
            spec.seconds,
            spec.bitrate_kbps
        );
        let tmp = file.with_extension("tmp.flv");
        let b = format!("{}k", spec.bitrate_kbps);
        let buf = format!("{}k", spec.bitrate_kbps * 2);
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=size={}:rate=30", spec.size))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
        ])
        .arg(spec.seconds.to_string())
        .args(["-vf", "noise=alls=25:allf=t+u"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g", "60", "-pix_fmt", "yuv420p", "-b:v", &b, "-minrate", &b,
        ])
        .args([
            "-maxrate",
            &b,
            "-bufsize",
            &buf,
            "-x264-params",
            "nal-hrd=cbr",
        ])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(&tmp);
        let log = cache.join("encode.log");
        let mut p = Proc::spawn("ffmpeg-encode", cmd, &log)?;
        if !p.wait_exit(Duration::from_secs(300))? {
            return Err(format!("ffmpeg encode failed:\n{}", tail_file(&log, 15)));
        }
        std::fs::rename(&tmp, &file).map_err(|e| e.to_string())?;
    }
    let len = std::fs::metadata(&file).map_err(|e| e.to_string())?.len();
    Ok((file, len as f64 * 8.0 / 1000.0 / spec.seconds as f64))
}

/// `ffmpeg -re -stream_loop -1 -i file -c copy -f flv url` until dropped.
pub fn publisher(file: &Path, url: &str, log_dir: &Path) -> Result<Proc> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-stream_loop",
        "-1",
        "-i",
    ])
    .arg(file)
    .args(["-c", "copy", "-f", "flv", url]);
    Proc::spawn("ffmpeg-publish", cmd, &log_dir.join("publish.log"))
}

fn spawn_nginx(label: &str, root: &Path, conf: &str) -> Result<Proc> {
    require_program("nginx")?;
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).map_err(|e| e.to_string())?;
    }
    std::fs::write(root.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c")
        .arg(root.join("nginx.conf"))
        .arg("-p")
        .arg(format!("{}/", root.display()))
        .current_dir(root);
    Proc::spawn(label, cmd, &root.join("stderr.log"))
}

/// node-media-server (`scripts/install-peers.sh` puts it under [`NMS_DIR`]) as an HTTP-FLV
/// origin: RTMP in, `/live/<stream>.flv` out, every listener pinned to 127.0.0.1.
pub struct Nms {
    pub rtmp: u16,
    pub http: u16,
    pub proc: Proc,
    _dir: TempDir,
}

pub const NMS_DIR: &str = "/opt/srs-proxy-test-peers";

impl Nms {
    pub fn start() -> Result<Nms> {
        require_program("node")?;
        let module = Path::new(NMS_DIR).join("node_modules/node-media-server");
        if !module.is_dir() {
            return Err(format!(
                "{} missing: run scripts/install-peers.sh",
                module.display()
            ));
        }
        let dir = TempDir::new("nms")?;
        let (rtmp, http) = (free_port(), free_port());
        let script = format!(
            "const net = require('net');\n\
             const listen = net.Server.prototype.listen;\n\
             net.Server.prototype.listen = function (port, ...rest) {{\n\
               if (typeof port === 'number') {{ return listen.call(this, port, '127.0.0.1', ...rest.filter(a => typeof a === 'function')); }}\n\
               return listen.call(this, port, ...rest);\n\
             }};\n\
             const NodeMediaServer = require({module:?});\n\
             new NodeMediaServer({{ logType: 1,\n\
               rtmp: {{ port: {rtmp}, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 }},\n\
               http: {{ port: {http}, allow_origin: '*', mediaroot: {media:?} }} }}).run();\n",
            module = module.display().to_string(),
            media = dir.path().display().to_string(),
        );
        std::fs::write(dir.path().join("nms.js"), script).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("node");
        cmd.arg(dir.path().join("nms.js")).current_dir(dir.path());
        let mut proc = Proc::spawn("node-media-server", cmd, &dir.path().join("nms.log"))?;
        wait_listening(&mut proc, local(rtmp), "node-media-server RTMP listening")?;
        wait_listening(&mut proc, local(http), "node-media-server HTTP listening")?;
        Ok(Nms {
            rtmp,
            http,
            proc,
            _dir: dir,
        })
    }
}

/// nginx as an HTTP reverse proxy in front of `backend` (`proxy_pass`, `proxy_http_version 1.1`,
/// no upstream keep-alive; `proxy_buffering off` unless `buffering`), master + `workers` workers.
pub struct NginxHttpProxy {
    pub port: u16,
    pub proc: Proc,
    _dir: TempDir,
}

impl NginxHttpProxy {
    pub fn start(backend: u16, workers: usize, buffering: bool) -> Result<NginxHttpProxy> {
        let buffering = if buffering { "on" } else { "off" };
        let dir = TempDir::new("nginx-http-proxy")?;
        let port = free_port();
        let conf = format!(
            "daemon off; master_process on; worker_processes {workers}; pid nginx.pid;\n\
             error_log logs/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{ access_log off;\n\
               client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp;\n\
               uwsgi_temp_path tmp; scgi_temp_path tmp;\n\
               server {{ listen 127.0.0.1:{port};\n\
                 location / {{ proxy_pass http://127.0.0.1:{backend}; proxy_buffering {buffering};\n\
                   proxy_http_version 1.1; }} }} }}\n"
        );
        let mut proc = spawn_nginx("nginx-http-proxy", dir.path(), &conf)?;
        wait_listening(&mut proc, local(port), "nginx reverse proxy listening")?;
        Ok(NginxHttpProxy {
            port,
            proc,
            _dir: dir,
        })
    }
}

/// nginx-rtmp with HLS (`hls_fragment 1s`, `hls_cleanup off` so a segment chosen at the start
/// stays fetchable) and an HTTP server for the HLS folder at `/live/`.
pub struct NginxHls {
    pub rtmp: u16,
    pub http: u16,
    pub proc: Proc,
    _dir: TempDir,
}

impl NginxHls {
    pub fn start() -> Result<NginxHls> {
        if !Path::new(RTMP_MODULE).is_file() {
            return Err(format!(
                "{RTMP_MODULE} missing: install libnginx-mod-rtmp (scripts/install-peers.sh)"
            ));
        }
        let dir = TempDir::new("nginx-hls")?;
        let root = dir.path();
        let hls = root.join("hls");
        std::fs::create_dir_all(&hls).map_err(|e| e.to_string())?;
        let (rtmp, http) = (free_port(), free_port());
        let hls = hls.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid nginx.pid;\n\
             error_log logs/error.log warn;\n\
             load_module {RTMP_MODULE};\n\
             events {{ worker_connections 8192; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp}; chunk_size 4096;\n\
               application live {{ live on; record off; hls on; hls_path {hls};\n\
                 hls_fragment 1s; hls_playlist_length 6s; hls_cleanup off; }} }} }}\n\
             http {{ access_log off;\n\
               client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp;\n\
               uwsgi_temp_path tmp; scgi_temp_path tmp;\n\
               types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}\n\
               server {{ listen 127.0.0.1:{http};\n\
                 location /live/ {{ alias {hls}/; add_header Cache-Control no-cache; }} }} }}\n"
        );
        let mut proc = spawn_nginx("nginx-hls", root, &conf)?;
        wait_listening(&mut proc, local(rtmp), "nginx-rtmp HLS origin listening")?;
        wait_listening(&mut proc, local(http), "nginx HLS HTTP listening")?;
        Ok(NginxHls {
            rtmp,
            http,
            proc,
            _dir: dir,
        })
    }
}

/// `redis-server` in the foreground, no persistence (`shared/design/test-peers.md`).
pub struct RedisServer {
    pub port: u16,
    _proc: Proc,
    _dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Result<RedisServer> {
        require_program("redis-server")?;
        let dir = TempDir::new("redis")?;
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .current_dir(dir.path());
        let mut proc = Proc::spawn("redis-server", cmd, &dir.path().join("redis.log"))?;
        wait_listening(&mut proc, local(port), "redis-server listening")?;
        Ok(RedisServer {
            port,
            _proc: proc,
            _dir: dir,
        })
    }
}
