//! HTTP benches.
//!
//! `http-flv-fanout`: node-media-server as the HTTP-FLV origin (ffmpeg publishes the cached source
//! to it over RTMP), K HTTP readers on one stream through four paths in turn: direct, nginx as a
//! reverse proxy, HAProxy `mode tcp` (splice) and srs-proxy. Per path: body bytes delivered and
//! relay CPU (utime+stime, all threads; nginx master + workers) over a fixed window → CPU-seconds
//! per GB, and time to first body byte (TTFB) per reader.
//!
//! `hls-rate`: nginx-rtmp writes HLS (nginx serves the folder); `wrk` keep-alive alternates the
//! playlist and one segment through srs-proxy (`PROXY_CORES=1`) and through nginx as a reverse
//! proxy (`worker_processes 1`, default buffering) → requests per relay core-second and raw requests/s.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::fanout::verdict;
use crate::peers::{
    encoded_source, publisher, Haproxy, NginxHls, NginxHttpProxy, Nms, SourceSpec, SrsProxy,
};
use crate::player::{PlayerSet, PlayerStats};
use crate::register::parse_wrk;
use crate::util::{
    cpu_seconds, fmt, http, local, median, quantile, require_program, sleep_checked, tail_file,
    tree_cpu_seconds, wait_until, Proc, Result, TempDir,
};

#[derive(Debug, Clone)]
pub struct HttpOpts {
    pub readers: usize,
    pub reps: usize,
    pub window: Duration,
    pub warmup: Duration,
    pub source: SourceSpec,
    pub hls_source: SourceSpec,
    pub proxy_cores: usize,
    pub haproxy_threads: usize,
    pub nginx_workers: usize,
    pub stagger: Duration,
    pub hls_secs: u64,
    pub hls_conns: usize,
    /// `PROXY_HTTP_RELAY` of a second srs-proxy measured alongside the default one.
    pub alt_relay: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlvPath {
    Direct,
    Nginx,
    Haproxy,
    Proxy,
    /// srs-proxy with the other body relay (`PROXY_HTTP_RELAY`), for the copy/splice A/B.
    ProxyAlt,
}

impl FlvPath {
    fn name(self) -> &'static str {
        match self {
            FlvPath::Direct => "direct",
            FlvPath::Nginx => "nginx reverse proxy",
            FlvPath::Haproxy => "L4 HAProxy (splice)",
            FlvPath::Proxy => "srs-proxy (default relay)",
            FlvPath::ProxyAlt => "srs-proxy (alternate relay)",
        }
    }
}

/// One HTTP-FLV reader: GET, then count every byte after the response head (chunk framing
/// included, on every path alike). TTFB = TCP connect start → first body byte.
fn flv_reader(addr: SocketAddr, path: &str, stop: &AtomicBool, stats: &PlayerStats) {
    if let Err(e) = flv_reader_inner(addr, path, stop, stats) {
        if !stop.load(Ordering::Relaxed) {
            *stats.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    }
    stats.done.store(true, Ordering::Relaxed);
}

fn flv_reader_inner(
    addr: SocketAddr,
    path: &str,
    stop: &AtomicBool,
    stats: &PlayerStats,
) -> std::result::Result<(), String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_millis(200))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: srs-proxy-bench\r\nAccept: */*\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let mut in_head = true;
    let deadline = t0 + Duration::from_secs(15);
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return Err("closed by peer".into()),
            Ok(n) => {
                let body = if in_head {
                    head.extend_from_slice(&buf[..n]);
                    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if head.len() > 16 * 1024 {
                            return Err("response head too large".into());
                        }
                        continue;
                    };
                    if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
                        return Err(format!(
                            "status: {}",
                            String::from_utf8_lossy(&head[..end.min(80)])
                        ));
                    }
                    in_head = false;
                    (head.len() - end - 4) as u64
                } else {
                    n as u64
                };
                if body > 0 && stats.ttfm_ns.load(Ordering::Relaxed) == 0 {
                    stats
                        .ttfm_ns
                        .store(t0.elapsed().as_nanos().max(1) as u64, Ordering::Relaxed);
                }
                stats.bytes.fetch_add(body, Ordering::Relaxed);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stats.ttfm_ns.load(Ordering::Relaxed) == 0 && Instant::now() > deadline {
                    return Err("no body byte within 15 s".into());
                }
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct FlvRun {
    path: FlvPath,
    bytes: u64,
    secs: f64,
    relay_cpu: Option<f64>,
    ttfb_ms: Vec<f64>,
    errors: Vec<String>,
}

impl FlvRun {
    fn cpu_per_gb(&self) -> f64 {
        self.relay_cpu
            .map_or(f64::NAN, |c| c / (self.bytes as f64 / 1e9))
    }
}

pub fn flv_fanout(opts: &HttpOpts) -> Result<String> {
    let (file, kbps) = encoded_source(&opts.source)?;
    let logs = TempDir::new("http-flv")?;
    let mut origin = Nms::start()?;
    let mut publish = publisher(
        &file,
        &format!("rtmp://127.0.0.1:{}/live/bench", origin.rtmp),
        logs.path(),
    )?;
    let stream_path = "/live/bench.flv";
    {
        let probe = start_readers(1, origin.http, stream_path, Duration::ZERO);
        let mut failed = false;
        wait_until(
            Duration::from_secs(20),
            "the HTTP-FLV stream to play",
            || {
                failed = publish.check_alive().is_err();
                failed || probe.stats[0].ttfm().is_some()
            },
        )?;
        publish.check_alive()?;
    }
    let mut haproxy = Haproxy::start(origin.http, opts.haproxy_threads)?;
    let mut nginx = NginxHttpProxy::start(origin.http, opts.nginx_workers, false)?;
    let mut proxy = SrsProxy::start(opts.proxy_cores)?;
    proxy.register_http(origin.rtmp, origin.http)?;
    let mut alt = match &opts.alt_relay {
        Some(mode) => {
            let p = SrsProxy::start_with_env(opts.proxy_cores, &[("PROXY_HTTP_RELAY", mode)])?;
            p.register_http(origin.rtmp, origin.http)?;
            Some(p)
        }
        None => None,
    };
    let mut paths = vec![
        FlvPath::Direct,
        FlvPath::Nginx,
        FlvPath::Haproxy,
        FlvPath::Proxy,
    ];
    if alt.is_some() {
        paths.push(FlvPath::ProxyAlt);
    }
    let mut runs: Vec<Vec<FlvRun>> = Vec::new();
    for rep in 0..opts.reps {
        let mut this = Vec::new();
        for i in 0..paths.len() {
            let path = paths[(i + rep) % paths.len()];
            let (port, pid, tree) = match path {
                FlvPath::Direct => (origin.http, None, false),
                FlvPath::Nginx => (nginx.port, Some(nginx.proc.pid()), true),
                FlvPath::Haproxy => (haproxy.port, Some(haproxy.proc.pid()), false),
                FlvPath::Proxy => {
                    proxy.register_http(origin.rtmp, origin.http)?;
                    (proxy.http, Some(proxy.proc.pid()), false)
                }
                FlvPath::ProxyAlt => {
                    let p = alt.as_ref().expect("alternate proxy");
                    p.register_http(origin.rtmp, origin.http)?;
                    (p.http, Some(p.proc.pid()), false)
                }
            };
            let run = measure_flv(opts, path, port, stream_path, pid, tree)?;
            eprintln!(
                "[bench] http-flv rep {} {:<20} {:>7.1} MB/s  relay {:>6} CPU-s/GB  \
                 TTFB p50 {:>6} ms  errors {}",
                rep + 1,
                path.name(),
                run.bytes as f64 / run.secs / 1e6,
                fmt(run.cpu_per_gb(), 3),
                fmt(quantile(&run.ttfb_ms, 0.5), 1),
                run.errors.len()
            );
            this.push(run);
            for p in [
                &mut origin.proc,
                &mut publish,
                &mut haproxy.proc,
                &mut nginx.proc,
                &mut proxy.proc,
            ] {
                p.check_alive()?;
            }
            if let Some(p) = alt.as_mut() {
                p.proc.check_alive()?;
            }
        }
        runs.push(this);
    }
    Ok(summarize_flv(opts, kbps, &paths, &runs))
}

fn start_readers(k: usize, port: u16, path: &str, stagger: Duration) -> PlayerSet {
    let path = path.to_string();
    let addr = local(port);
    PlayerSet::spawn(k, stagger, move |stop, st| {
        flv_reader(addr, &path, stop, st)
    })
}

fn measure_flv(
    opts: &HttpOpts,
    path: FlvPath,
    port: u16,
    stream_path: &str,
    relay_pid: Option<u32>,
    tree: bool,
) -> Result<FlvRun> {
    let readers = start_readers(opts.readers, port, stream_path, opts.stagger);
    let k = opts.readers;
    let _ = wait_until(
        Duration::from_secs(20),
        "readers to get a body byte",
        || readers.settled() == k,
    );
    sleep_checked(opts.warmup)?;
    let cpu = |pid: Option<u32>| {
        pid.map(|p| {
            if tree {
                tree_cpu_seconds(p)
            } else {
                cpu_seconds(p)
            }
        })
        .transpose()
    };
    let (b0, c0, t0) = (readers.total_bytes(), cpu(relay_pid)?, Instant::now());
    sleep_checked(opts.window)?;
    let (b1, c1, secs) = (
        readers.total_bytes(),
        cpu(relay_pid)?,
        t0.elapsed().as_secs_f64(),
    );
    let run = FlvRun {
        path,
        bytes: b1 - b0,
        secs,
        relay_cpu: c1.zip(c0).map(|(a, b)| a - b),
        ttfb_ms: readers.ttfm_ms(),
        errors: readers.errors(),
    };
    drop(readers);
    sleep_checked(Duration::from_millis(500))?;
    Ok(run)
}

fn summarize_flv(opts: &HttpOpts, kbps: f64, paths: &[FlvPath], runs: &[Vec<FlvRun>]) -> String {
    let of = |rep: &[FlvRun], p: FlvPath| rep.iter().find(|r| r.path == p).cloned();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Origin node-media-server (HTTP-FLV, chunked); {} readers on one stream; source {kbps:.0} \
         kbit/s (expected delivery {:.1} MB/s); window {} s after {} s warm-up; {} reps, medians; \
         srs-proxy `PROXY_CORES={}`, HAProxy nbthread {}, nginx `worker_processes {}` \
         (`proxy_buffering off`, CPU = master + workers). Bytes = everything after the response \
         head (chunk framing included) on every path.\n",
        opts.readers,
        kbps * 1000.0 / 8.0 * opts.readers as f64 / 1e6,
        opts.window.as_secs(),
        opts.warmup.as_secs(),
        opts.reps,
        opts.proxy_cores,
        opts.haproxy_threads,
        opts.nginx_workers,
    );
    md.push_str(
        "| path | delivered MB/s | relay CPU-s/GB | TTFB p50 ms | TTFB p99 ms | reader errors |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for &p in paths {
        let rs: Vec<FlvRun> = runs.iter().filter_map(|rep| of(rep, p)).collect();
        let m = |f: &dyn Fn(&FlvRun) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
        let errors: usize = rs.iter().map(|r| r.errors.len()).sum();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            p.name(),
            fmt(m(&|r| r.bytes as f64 / r.secs / 1e6), 1),
            if p == FlvPath::Direct {
                "—".into()
            } else {
                fmt(m(&|r| r.cpu_per_gb()), 3)
            },
            fmt(m(&|r| quantile(&r.ttfb_ms, 0.5)), 2),
            fmt(m(&|r| quantile(&r.ttfb_ms, 0.99)), 2),
            errors
        );
        if let Some(e) = rs.iter().flat_map(|r| r.errors.first()).next() {
            let _ = writeln!(md, "<!-- first {} error: {e} -->", p.name());
        }
    }
    let ratio = |num: FlvPath, den: FlvPath| {
        median(
            &runs
                .iter()
                .filter_map(|rep| Some(of(rep, num)?.cpu_per_gb() / of(rep, den)?.cpu_per_gb()))
                .collect::<Vec<_>>(),
        )
    };
    let l4 = ratio(FlvPath::Proxy, FlvPath::Haproxy);
    if paths.contains(&FlvPath::ProxyAlt) {
        let _ = writeln!(
            md,
            "\nalternate relay (`PROXY_HTTP_RELAY={}`) / default relay CPU per GB: **{}×**",
            opts.alt_relay.as_deref().unwrap_or("?"),
            fmt(ratio(FlvPath::ProxyAlt, FlvPath::Proxy), 2)
        );
    }
    let _ = writeln!(
        md,
        "\nproxy/HAProxy CPU per GB (median of per-rep ratios): **{}×** (target ≤ 1.3×: **{}**); \
         proxy/nginx: **{}×**",
        fmt(l4, 2),
        verdict(l4 <= 1.3),
        fmt(ratio(FlvPath::Proxy, FlvPath::Nginx), 2)
    );
    md
}

// ---------------------------------------------------------------------------------------------
// hls-rate

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HlsPath {
    Direct,
    Nginx,
    Proxy,
}

impl HlsPath {
    fn name(self) -> &'static str {
        match self {
            HlsPath::Direct => "direct (nginx origin, reference)",
            HlsPath::Nginx => "nginx reverse proxy",
            HlsPath::Proxy => "srs-proxy",
        }
    }
}

#[derive(Debug, Clone)]
struct HlsRun {
    path: HlsPath,
    requests: u64,
    bad: u64,
    secs: f64,
    cpu: Option<f64>,
    seg_bytes: usize,
}

impl HlsRun {
    fn per_core_s(&self) -> f64 {
        self.cpu.map_or(f64::NAN, |c| self.requests as f64 / c)
    }
}

/// The playlist through `port`, and the first segment's absolute path (with its query).
fn first_segment(port: u16, playlist: &str) -> Result<String> {
    let (status, text) = http(local(port), "GET", playlist, b"")?;
    if status != 200 {
        return Err(format!("GET {playlist}: HTTP {status}"));
    }
    let uri = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| format!("no segment in playlist:\n{text}"))?;
    Ok(if uri.starts_with('/') {
        uri.to_string()
    } else {
        let dir = &playlist[..playlist.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{uri}")
    })
}

pub fn hls_rate(opts: &HttpOpts) -> Result<String> {
    require_program("wrk")?;
    let (file, kbps) = encoded_source(&opts.hls_source)?;
    let dir = TempDir::new("hls-rate")?;
    let mut origin = NginxHls::start()?;
    let mut publish = publisher(
        &file,
        &format!("rtmp://127.0.0.1:{}/live/bench", origin.rtmp),
        dir.path(),
    )?;
    let playlist = "/live/bench.m3u8";
    wait_until(
        Duration::from_secs(30),
        "an HLS playlist with 2 segments",
        || {
            publish.check_alive().is_err()
                || http(local(origin.http), "GET", playlist, b"")
                    .is_ok_and(|(s, t)| s == 200 && t.matches(".ts").count() >= 2)
        },
    )?;
    publish.check_alive()?;
    let mut proxy = SrsProxy::start(1)?;
    proxy.register_http(origin.rtmp, origin.http)?;
    let mut nginx = NginxHttpProxy::start(origin.http, 1, true)?;
    let paths = [HlsPath::Direct, HlsPath::Nginx, HlsPath::Proxy];
    let mut runs: Vec<Vec<HlsRun>> = Vec::new();
    for rep in 0..opts.reps {
        let mut this = Vec::new();
        for i in 0..paths.len() {
            let path = paths[(i + rep) % paths.len()];
            let (port, pid, tree) = match path {
                HlsPath::Direct => (origin.http, Some(origin.proc.pid()), false),
                HlsPath::Nginx => (nginx.port, Some(nginx.proc.pid()), true),
                HlsPath::Proxy => {
                    proxy.register_http(origin.rtmp, origin.http)?;
                    (proxy.http, Some(proxy.proc.pid()), false)
                }
            };
            let seg = first_segment(port, playlist)?;
            let (status, body) = http(local(port), "GET", &seg, b"")?;
            if status != 200 {
                return Err(format!("GET {seg} via {}: HTTP {status}", path.name()));
            }
            let script = dir.path().join(format!("hls-{rep}-{i}.lua"));
            std::fs::write(
                &script,
                format!(
                    "local paths = {{ {playlist:?}, {seg:?} }}\nlocal i = 0\n\
                     request = function()\n  i = i + 1\n  \
                     return wrk.format(\"GET\", paths[(i % 2) + 1])\nend\n"
                ),
            )
            .map_err(|e| e.to_string())?;
            let cpu = |p: u32| {
                if tree {
                    tree_cpu_seconds(p)
                } else {
                    cpu_seconds(p)
                }
            };
            let c0 = pid.map(cpu).transpose()?;
            let log = dir.path().join(format!("wrk-{rep}-{i}.log"));
            let mut cmd = Command::new("wrk");
            cmd.arg("-t1")
                .arg(format!("-c{}", opts.hls_conns))
                .arg(format!("-d{}s", opts.hls_secs))
                .arg("-s")
                .arg(&script)
                .arg(format!("http://127.0.0.1:{port}/"));
            let mut p = Proc::spawn("wrk", cmd, &log)?;
            if !p.wait_exit(Duration::from_secs(opts.hls_secs + 30))? {
                return Err(format!("wrk failed:\n{}", tail_file(&log, 20)));
            }
            let c1 = pid.map(cpu).transpose()?;
            let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
            let (requests, bad, secs) =
                parse_wrk(&text).ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
            let run = HlsRun {
                path,
                requests,
                bad,
                secs,
                cpu: c1.zip(c0).map(|(a, b)| a - b),
                seg_bytes: body.len(),
            };
            eprintln!(
                "[bench] hls-rate rep {} {:<34} {:>8.0} req/s  {:>8} req/core-s  non-2xx {}",
                rep + 1,
                path.name(),
                run.requests as f64 / run.secs,
                fmt(run.per_core_s(), 0),
                run.bad
            );
            this.push(run);
            for p in [
                &mut origin.proc,
                &mut publish,
                &mut nginx.proc,
                &mut proxy.proc,
            ] {
                p.check_alive()?;
            }
        }
        runs.push(this);
    }
    let of = |rep: &[HlsRun], p: HlsPath| rep.iter().find(|r| r.path == p).cloned();
    let mut md = String::new();
    let seg = runs
        .first()
        .and_then(|r| r.first())
        .map_or(0, |r| r.seg_bytes);
    let _ = writeln!(
        md,
        "Origin nginx-rtmp HLS (`hls_fragment 1s`, source {kbps:.0} kbit/s, segment ≈ {} KB) \
         served by its nginx; `wrk -t1 -c{} -d{}s` keep-alive alternating the playlist and one \
         segment; srs-proxy `PROXY_CORES=1`, nginx reverse proxy `worker_processes 1` \
         (nginx defaults: `proxy_buffering on`, no upstream keep-alive; CPU = master + worker); {} reps, medians. \
         req/core-s = requests ÷ relay CPU-seconds (for direct: the origin's own CPU).\n",
        seg / 1000,
        opts.hls_conns,
        opts.hls_secs,
        opts.reps
    );
    md.push_str(
        "| path | requests/s | requests per core-second | non-2xx |\n|---|---:|---:|---:|\n",
    );
    for &p in &paths {
        let rs: Vec<HlsRun> = runs.iter().filter_map(|rep| of(rep, p)).collect();
        let m = |f: &dyn Fn(&HlsRun) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            p.name(),
            fmt(m(&|r| r.requests as f64 / r.secs), 0),
            fmt(m(&|r| r.per_core_s()), 0),
            rs.iter().map(|r| r.bad).sum::<u64>()
        );
    }
    let ratio = median(
        &runs
            .iter()
            .filter_map(|rep| {
                Some(of(rep, HlsPath::Proxy)?.per_core_s() / of(rep, HlsPath::Nginx)?.per_core_s())
            })
            .collect::<Vec<_>>(),
    );
    let _ = writeln!(
        md,
        "\nproxy/nginx requests per core-second (median of per-rep ratios): **{}×** \
         (target ≥ 1.0×: **{}**)",
        fmt(ratio, 2),
        verdict(ratio >= 1.0)
    );
    Ok(md)
}
