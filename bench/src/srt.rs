//! `srt-relay`: one high-bitrate SRT stream (ffmpeg caller, `-re` MPEG-TS) into an
//! `srt-live-transmit` listener sink, through three paths in turn: direct, nginx `stream` UDP
//! (`proxy_pass`, one worker) and srs-proxy. Per path: bytes the sink received and the relay's
//! CPU (utime + stime) over the same window → CPU-seconds per GB. Target: srs-proxy spends no
//! more CPU per GB than nginx.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::peers::{encoded_source, SourceSpec, SrsProxy};
use crate::util::{
    cpu_seconds, fmt, median, perf_record, require_program, sleep_checked, wait_until, Proc,
    Result, TempDir,
};

#[derive(Debug, Clone)]
pub struct SrtOpts {
    pub reps: usize,
    pub window: Duration,
    pub warmup: Duration,
    pub source: SourceSpec,
    pub proxy_cores: usize,
    /// `perf record` each relay over its window (`--perf`).
    pub perf: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayPath {
    Direct,
    NginxStream,
    Proxy,
}

impl RelayPath {
    fn name(self) -> &'static str {
        match self {
            RelayPath::Direct => "direct",
            RelayPath::NginxStream => "nginx stream (udp)",
            RelayPath::Proxy => "srs-proxy",
        }
    }
}

struct Run {
    bytes: u64,
    secs: f64,
    relay_cpu: Option<f64>,
}

/// The FLV source remuxed to TS (cached next to it).
fn source_ts(spec: &SourceSpec) -> Result<(PathBuf, f64)> {
    let (flv, kbps) = encoded_source(spec)?;
    let ts = flv.with_extension("ts");
    if !ts.is_file() {
        let tmp = flv.with_extension("tmp.ts");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&flv)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(&tmp);
        let log = flv.with_extension("remux.log");
        let mut p = Proc::spawn("ffmpeg-remux", cmd, &log)?;
        if !p.wait_exit(Duration::from_secs(120))? {
            return Err(format!("remux to TS failed: {}", log.display()));
        }
        std::fs::rename(&tmp, &ts).map_err(|e| e.to_string())?;
    }
    Ok((ts, kbps))
}

fn udp_bound(port: u16) -> bool {
    std::net::UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// `srt-live-transmit` listener writing what it receives to `capture` (stdout and its rare
/// stderr lines, with `-q`).
fn sink(dir: &Path) -> Result<(Proc, u16, PathBuf)> {
    let port = crate::util::free_udp_port();
    let capture = dir.join("capture.ts");
    let mut cmd = Command::new("srt-live-transmit");
    cmd.args(["-q", "-a:no"])
        .arg(format!("srt://127.0.0.1:{port}?mode=listener"))
        .arg("file://con");
    let mut p = Proc::spawn("srt-sink", cmd, &capture)?;
    wait_until(Duration::from_secs(10), "srt sink listening", || {
        udp_bound(port) || p.check_alive().is_err()
    })?;
    p.check_alive()?;
    Ok((p, port, capture))
}

pub(crate) struct NginxUdp {
    pub port: u16,
    pub proc: Proc,
    _dir: TempDir,
}

/// nginx `stream` UDP relay in front of `backend` (one worker, `master_process off`);
/// `extra`: more directives for the `server` block.
pub(crate) fn nginx_udp(backend: u16, extra: &str) -> Result<NginxUdp> {
    require_program("nginx")?;
    let dir = TempDir::new("nginx-udp")?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("logs")).map_err(|e| e.to_string())?;
    let port = crate::util::free_udp_port();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid nginx.pid;\n\
         error_log logs/error.log warn;\n\
         load_module {};\n\
         events {{ worker_connections 8192; }}\n\
         stream {{ server {{ listen 127.0.0.1:{port} udp; proxy_pass 127.0.0.1:{backend};\n\
           proxy_timeout 30s; {extra} }} }}\n",
        crate::peers::STREAM_MODULE
    );
    std::fs::write(root.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c")
        .arg(root.join("nginx.conf"))
        .arg("-p")
        .arg(format!("{}/", root.display()))
        .current_dir(root);
    let mut proc = Proc::spawn("nginx-udp", cmd, &root.join("stderr.log"))?;
    wait_until(Duration::from_secs(10), "nginx udp listening", || {
        udp_bound(port) || proc.check_alive().is_err()
    })?;
    proc.check_alive()?;
    Ok(NginxUdp {
        port,
        proc,
        _dir: dir,
    })
}

fn caller(ts: &Path, url: &str, secs: u64, log: &Path) -> Result<Proc> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(ts)
        .args(["-c", "copy", "-t", &secs.to_string(), "-f", "mpegts", url]);
    Proc::spawn("ffmpeg-srt-caller", cmd, log)
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn run_once(path: RelayPath, ts: &Path, o: &SrtOpts) -> Result<Run> {
    let dir = TempDir::new("srt-bench")?;
    let (mut sink_proc, sink_port, capture) = sink(dir.path())?;
    let sid = "#!::r=live/bench,m=publish";
    let mut _nginx = None;
    let mut _proxy = None;
    let (url, relay_pid) = match path {
        RelayPath::Direct => (format!("srt://127.0.0.1:{sink_port}?streamid={sid}"), None),
        RelayPath::NginxStream => {
            let n = nginx_udp(sink_port, "")?;
            let url = format!("srt://127.0.0.1:{}?streamid={sid}", n.port);
            let pid = n.proc.pid();
            _nginx = Some(n);
            (url, Some(pid))
        }
        RelayPath::Proxy => {
            let p = SrsProxy::start(o.proxy_cores)?;
            p.register_srt(sink_port)?;
            let url = format!("srt://127.0.0.1:{}?streamid={sid}", p.srt);
            let pid = p.proc.pid();
            _proxy = Some(p);
            (url, Some(pid))
        }
    };
    let total = o.warmup + o.window + Duration::from_secs(3);
    let mut c = caller(ts, &url, total.as_secs(), &dir.path().join("caller.log"))?;
    wait_until(Duration::from_secs(10), "bytes at the sink", || {
        file_len(&capture) > 100_000 || c.check_alive().is_err()
    })?;
    c.check_alive()?;
    sleep_checked(o.warmup)?;
    let cpu0 = relay_pid.map(cpu_seconds).transpose()?;
    let b0 = file_len(&capture);
    let t0 = Instant::now();
    let perf = match relay_pid {
        Some(pid) if o.perf => Some(perf_record(pid, &format!("srt-{path:?}"), o.window)?),
        _ => None,
    };
    sleep_checked(o.window)?;
    let cpu1 = relay_pid.map(cpu_seconds).transpose()?;
    if let Some(mut p) = perf {
        let _ = p.wait_exit(Duration::from_secs(30));
    }
    let b1 = file_len(&capture);
    let secs = t0.elapsed().as_secs_f64();
    c.check_alive()?;
    sink_proc.check_alive()?;
    c.stop();
    sink_proc.stop();
    Ok(Run {
        bytes: b1.saturating_sub(b0),
        secs,
        relay_cpu: cpu0.zip(cpu1).map(|(a, b)| b - a),
    })
}

pub fn run(o: &SrtOpts) -> Result<String> {
    require_program("srt-live-transmit")?;
    require_program("ffmpeg")?;
    let nginx = Path::new(crate::peers::STREAM_MODULE).is_file();
    if !nginx {
        eprintln!(
            "[bench] {} missing: srt-relay runs without nginx (apt-get install libnginx-mod-stream)",
            crate::peers::STREAM_MODULE
        );
    }
    let (ts, kbps) = source_ts(&o.source)?;
    let mut paths = vec![RelayPath::Direct];
    if nginx {
        paths.push(RelayPath::NginxStream);
    }
    paths.push(RelayPath::Proxy);
    let mut results: Vec<(RelayPath, Vec<Run>)> = paths.iter().map(|p| (*p, vec![])).collect();
    for rep in 0..o.reps {
        for (path, runs) in results.iter_mut() {
            eprintln!(
                "[bench] srt-relay rep {}/{}: {}",
                rep + 1,
                o.reps,
                path.name()
            );
            runs.push(run_once(*path, &ts, o)?);
        }
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Source: {} TS at {:.1} Mbit/s (`ffmpeg -re -stream_loop -1 -c copy -f mpegts srt://…`, \
         1316-byte payloads), sink `srt-live-transmit` listener; window {} s after {} s warm-up; \
         srs-proxy PROXY_CORES={}, nginx 1 worker (`stream {{ listen … udp; proxy_pass …; }}`); \
         medians of {} runs. Relay CPU = utime + stime of the relay process over the window.\n",
        o.source.size,
        kbps / 1000.0,
        o.window.as_secs(),
        o.warmup.as_secs(),
        o.proxy_cores,
        o.reps
    );
    let _ = writeln!(
        md,
        "| path | delivered Mbit/s | relay CPU-s/GB | relay CPU % of a core |\n|---|---|---|---|"
    );
    let mut per_gb = std::collections::HashMap::new();
    for (path, runs) in &results {
        let mbps = median(
            &runs
                .iter()
                .map(|r| r.bytes as f64 * 8.0 / 1e6 / r.secs)
                .collect::<Vec<_>>(),
        );
        let cpu_gb: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.relay_cpu.map(|c| c / (r.bytes.max(1) as f64 / 1e9)))
            .collect();
        let cpu_pct: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.relay_cpu.map(|c| 100.0 * c / r.secs))
            .collect();
        let (gb, pct) = if cpu_gb.is_empty() {
            ("n/a".to_string(), "n/a".to_string())
        } else {
            let g = median(&cpu_gb);
            per_gb.insert(path.name(), g);
            (fmt(g, 3), fmt(median(&cpu_pct), 1))
        };
        let _ = writeln!(md, "| {} | {} | {gb} | {pct} |", path.name(), fmt(mbps, 1));
    }
    if let (Some(p), Some(n)) = (
        per_gb.get(RelayPath::Proxy.name()),
        per_gb.get(RelayPath::NginxStream.name()),
    ) {
        let verdict = if p <= n { "PASS" } else { "FAIL" };
        let _ = writeln!(
            md,
            "\nsrs-proxy / nginx stream = **{:.2}×** CPU per GB (target ≤ 1.00×): **{verdict}**",
            p / n
        );
    }
    Ok(md)
}
