//! nginx with `libnginx-mod-rtmp` as a real RTMP origin (config from
//! `shared/design/test-peers.md`, plus `/stat` and an optional `on_publish` hook).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::proc::{die_with_parent, terminate};
use super::{free_tcp_port, http, require_program, tail_file, wait_for, TestDir};

pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

#[derive(Default, Clone)]
pub struct NginxOptions {
    /// URL nginx-rtmp POSTs `on_publish` notifications to (see [`HookRecorder`]).
    pub on_publish: Option<String>,
    /// An RTMP application every published stream is also relayed to (nginx-rtmp `push`).
    pub push: Option<String>,
    /// A local HTTP port that serves `/live/<s>.flv` (node-media-server's HTTP-FLV): nginx
    /// proxies those requests there unbuffered, so one origin offers RTMP, HLS and HTTP-FLV.
    pub flv_upstream: Option<u16>,
}

/// One nginx-rtmp origin: RTMP on `rtmp_port`, HTTP (HLS + `/stat`) on `http_port`.
pub struct NginxRtmpOrigin {
    pub rtmp_port: u16,
    pub http_port: u16,
    child: Option<Child>,
    dir: TestDir,
}

impl NginxRtmpOrigin {
    pub fn start() -> NginxRtmpOrigin {
        NginxRtmpOrigin::start_with(NginxOptions::default())
    }

    pub fn start_with(options: NginxOptions) -> NginxRtmpOrigin {
        NginxRtmpOrigin::start_full(options, false)
    }

    /// Also writes MPEG-DASH (`dash on`, 1 s fragments) and serves `/live/<s>.mpd` and
    /// `/live/<s>-*.m4v|m4a` from its DASH folder.
    pub fn start_with_dash() -> NginxRtmpOrigin {
        NginxRtmpOrigin::start_full(NginxOptions::default(), true)
    }

    fn start_full(options: NginxOptions, dash: bool) -> NginxRtmpOrigin {
        require_program("nginx");
        assert!(
            Path::new(RTMP_MODULE).is_file(),
            "{RTMP_MODULE} is missing: install `libnginx-mod-rtmp` (`make test` does)"
        );
        let dir = TestDir::new("nginx");
        let root = dir.path();
        for sub in ["logs", "tmp", "hls", "dash"] {
            std::fs::create_dir_all(root.join(sub)).expect("create nginx dirs");
        }
        let rtmp_port = free_tcp_port();
        let http_port = free_tcp_port();
        let hls = root.join("hls");
        let hls = hls.display();
        let dash_dir = root.join("dash");
        let (dash_app, dash_http) = if dash {
            (
                format!(
                    "dash on; dash_path {}; dash_fragment 1s; dash_playlist_length 6s; ",
                    dash_dir.display()
                ),
                format!(
                    "location ~ ^/live/(.+\\.(mpd|m4v|m4a))$ {{ alias {}/$1; add_header Cache-Control no-cache; }}\n",
                    dash_dir.display()
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let mut hook = options
            .on_publish
            .as_deref()
            .map(|url| format!("on_publish {url}; "))
            .unwrap_or_default();
        if let Some(push) = &options.push {
            hook += &format!("push {push}; ");
        }
        let flv_http = options
            .flv_upstream
            .map(|port| {
                format!(
                    "location ~ \\.flv$ {{ proxy_pass http://127.0.0.1:{port}; proxy_buffering off; proxy_http_version 1.1; }}\n"
                )
            })
            .unwrap_or_default();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid nginx.pid; error_log logs/error.log info;\n\
             load_module {RTMP_MODULE};\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096;\n\
               application live {{ live on; record off; {hook}{dash_app}hls on; hls_path {hls}; hls_fragment 1s; hls_playlist_length 6s; }} }} }}\n\
             http {{ access_log logs/access.log;\n\
               client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;\n\
               types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; application/dash+xml mpd; video/mp4 m4v; audio/mp4 m4a; }}\n\
               server {{ listen 127.0.0.1:{http_port};\n\
                 location /stat {{ rtmp_stat all; }}\n\
                 {dash_http}{flv_http}\
                 location /live/ {{ alias {hls}/; add_header Cache-Control no-cache; }} }} }}\n"
        );
        std::fs::write(root.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-p")
            .arg(format!("{}/", root.display()))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(root.join("stdout.log")).expect("stdout.log"))
            .stderr(std::fs::File::create(root.join("stderr.log")).expect("stderr.log"));
        let child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn nginx: {e}"));
        let mut origin = NginxRtmpOrigin {
            rtmp_port,
            http_port,
            child: Some(child),
            dir,
        };
        origin.wait_ready();
        origin
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nginx exited early ({status}); stderr: {}\nerror.log: {}",
                    tail_file(&self.dir.path().join("stderr.log"), 20),
                    tail_file(&self.dir.path().join("logs/error.log"), 20)
                );
            }
            let http_ok = http::http_request(self.http_addr(), "GET", "/stat", &[], b"")
                .map(|r| r.status == 200)
                .unwrap_or(false);
            if http_ok
                && TcpStream::connect_timeout(&self.rtmp_addr(), Duration::from_secs(1)).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx not ready in 10 s; error.log: {}",
                tail_file(&self.dir.path().join("logs/error.log"), 20)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rtmp_port))
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// `rtmp://127.0.0.1:<port>/live/<stream>`
    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    /// Streams nginx currently has, from `/stat`.
    pub fn stat(&self) -> Vec<StreamStat> {
        origin_stat(self)
    }

    /// The named stream in `/stat`, if present.
    pub fn stream(&self, name: &str) -> Option<StreamStat> {
        self.stat().into_iter().find(|s| s.name == name)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills nginx hard (SIGKILL): its ports then refuse connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn error_log(&self) -> String {
        tail_file(&self.dir.path().join("logs/error.log"), 40)
    }

    /// The HTTP access log (request lines with their queries), whole.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }
}

impl Drop for NginxRtmpOrigin {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[harness] nginx rtmp={} http={} error.log tail:\n{}",
                self.rtmp_port,
                self.http_port,
                tail_file(&self.dir.path().join("logs/error.log"), 30)
            );
        }
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(3));
        }
    }
}

/// One `<stream>` of nginx-rtmp's `rtmp_stat all` XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStat {
    pub name: String,
    pub publishers: usize,
    pub players: usize,
}

/// Parses `/stat` of `origin` (string scanning is enough for nginx-rtmp's fixed XML layout).
pub fn origin_stat(origin: &NginxRtmpOrigin) -> Vec<StreamStat> {
    let resp = http::get(origin.http_addr(), "/stat");
    assert_eq!(resp.status, 200, "nginx /stat: {}", resp.text());
    parse_stat(&resp.text())
}

pub fn parse_stat(xml: &str) -> Vec<StreamStat> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<stream>") {
        let after = &rest[start + "<stream>".len()..];
        let end = after.find("</stream>").unwrap_or(after.len());
        let block = &after[..end];
        rest = &after[end..];
        let name = between(block, "<name>", "</name>").unwrap_or_default();
        let mut publishers = 0;
        let mut players = 0;
        let mut clients = block;
        while let Some(c) = clients.find("<client>") {
            let body = &clients[c..];
            let close = body.find("</client>").unwrap_or(body.len());
            if body[..close].contains("<publishing/>") {
                publishers += 1;
            } else {
                players += 1;
            }
            clients = &body[close..];
        }
        out.push(StreamStat {
            name: name.to_string(),
            publishers,
            players,
        });
    }
    out
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// A tiny HTTP listener that records the bodies nginx-rtmp POSTs to its notify hooks and
/// answers 200 (allow). Stops on drop.
pub struct HookRecorder {
    pub port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HookRecorder {
    pub fn start() -> HookRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hook listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, stopped) = (Arc::clone(&bodies), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(body) = serve_hook(stream) {
                            sink.lock().unwrap_or_else(|e| e.into_inner()).push(body);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HookRecorder {
            port,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a recorded body containing `needle`.
    pub fn wait_for_body(&self, needle: &str, timeout: Duration) -> String {
        wait_for(
            timeout,
            &format!("a hook call containing {needle:?}"),
            || self.bodies().into_iter().find(|b| b.contains(needle)),
        )
    }
}

impl Drop for HookRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_hook(mut stream: TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                break String::from_utf8_lossy(&raw[end + 4..end + 4 + len]).into_owned();
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(body)
}
