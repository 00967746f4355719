//! `rtmp-fanout`: one publisher into an nginx-rtmp origin, K players reading through three paths
//! in turn (direct, L4 relay, srs-proxy). Per path: bytes delivered and relay CPU over a fixed
//! window → CPU-seconds per GB, time to first media (TTFM) per player, and the relay's context
//! switches per second (sleeps and preemptions: with players, origin and relay on the same CPUs,
//! a relay that is preempted more pays for it in CPU time).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::peers::{
    encoded_source, publisher, Haproxy, NginxRtmp, NginxStream, SourceSpec, SrsProxy,
};
use crate::player::PlayerSet;
use crate::util::{
    cpu_seconds, ctx_switches, fmt, local, median, quantile, sleep_checked, wait_until, Proc,
    Result, TempDir,
};

#[derive(Debug, Clone)]
pub struct FanoutOpts {
    pub players: usize,
    pub reps: usize,
    pub window: Duration,
    pub warmup: Duration,
    pub chunk_sizes: Vec<u32>,
    pub source: SourceSpec,
    pub proxy_cores: usize,
    pub haproxy_threads: usize,
    pub nginx_stream: bool,
    pub stagger: Duration,
    /// Record `perf record -e cpu-clock -g` of each relay during its window.
    pub perf: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Direct,
    Haproxy,
    NginxStream,
    Proxy,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Haproxy => "L4 HAProxy (splice)",
            Path::NginxStream => "L4 nginx stream",
            Path::Proxy => "srs-proxy",
        }
    }
}

#[derive(Debug, Clone)]
struct Run {
    path: Path,
    bytes: u64,
    secs: f64,
    relay_cpu: Option<f64>,
    /// The relay's (voluntary, involuntary) context switches over the window.
    relay_ctx: Option<(u64, u64)>,
    origin_cpu: f64,
    ttfm_ms: Vec<f64>,
    errors: Vec<String>,
}

impl Run {
    fn gb(&self) -> f64 {
        self.bytes as f64 / 1e9
    }
    fn relay_cpu_per_gb(&self) -> f64 {
        self.relay_cpu.map_or(f64::NAN, |c| c / self.gb())
    }
    /// (sleeps, preemptions) of the relay per second of the window.
    fn relay_ctx_per_s(&self) -> (f64, f64) {
        self.relay_ctx.map_or((f64::NAN, f64::NAN), |(v, i)| {
            (v as f64 / self.secs, i as f64 / self.secs)
        })
    }
    fn origin_cpu_per_gb(&self) -> f64 {
        self.origin_cpu / self.gb()
    }
    fn p50(&self) -> f64 {
        quantile(&self.ttfm_ms, 0.5)
    }
}

/// Result of one origin variant (chunk size), ready to print.
pub struct VariantResult {
    pub chunk_size: u32,
    pub markdown: String,
}

pub fn run(opts: &FanoutOpts) -> Result<Vec<VariantResult>> {
    let (file, kbps) = encoded_source(&opts.source)?;
    eprintln!("[bench] source {} at {kbps:.0} kbit/s", file.display());
    let mut out = Vec::new();
    for &cs in &opts.chunk_sizes {
        out.push(run_variant(opts, &file, kbps, cs)?);
    }
    Ok(out)
}

fn run_variant(
    opts: &FanoutOpts,
    file: &std::path::Path,
    kbps: f64,
    chunk_size: u32,
) -> Result<VariantResult> {
    let logs = TempDir::new("fanout")?;
    let mut origin = NginxRtmp::start(chunk_size)?;
    let origin_addr = local(origin.port);
    let mut publish = publisher(
        file,
        &format!("rtmp://127.0.0.1:{}/live/bench", origin.port),
        logs.path(),
    )?;
    // Live once a probe player gets media.
    {
        let probe = PlayerSet::start(1, origin_addr, "bench", Duration::ZERO);
        let mut failed = false;
        wait_until(
            Duration::from_secs(20),
            "the published stream to play",
            || {
                failed = publish.check_alive().is_err();
                failed || probe.stats[0].ttfm().is_some()
            },
        )?;
        publish.check_alive()?;
    }
    let mut haproxy = Haproxy::start(origin.port, opts.haproxy_threads)?;
    let mut nginx_stream = if opts.nginx_stream && NginxStream::available() {
        Some(NginxStream::start(origin.port)?)
    } else {
        None
    };
    let mut proxy = SrsProxy::start(opts.proxy_cores)?;
    proxy.register(origin.port)?;
    let mut paths = vec![Path::Direct, Path::Haproxy];
    if nginx_stream.is_some() {
        paths.push(Path::NginxStream);
    }
    paths.push(Path::Proxy);

    let mut runs: Vec<Vec<Run>> = Vec::new();
    for rep in 0..opts.reps {
        let mut this = Vec::new();
        // Rotate the order so no path always runs first (the origin warms up).
        for i in 0..paths.len() {
            let path = paths[(i + rep) % paths.len()];
            let (port, pid) = match path {
                Path::Direct => (origin.port, None),
                Path::Haproxy => (haproxy.port, Some(haproxy.proc.pid())),
                Path::NginxStream => {
                    let s = nginx_stream.as_ref().expect("nginx stream");
                    (s.port, Some(s.proc.pid()))
                }
                Path::Proxy => {
                    proxy.register(origin.port)?;
                    (proxy.rtmp, Some(proxy.proc.pid()))
                }
            };
            let spliced_before = match path {
                Path::Proxy => proxy.counter("srs_proxy_relays_spliced_total", "rtmp")?,
                _ => 0.0,
            };
            let run = measure(opts, path, port, pid, origin.proc.pid())?;
            if path == Path::Proxy {
                let n = proxy.counter("srs_proxy_relays_spliced_total", "rtmp")? - spliced_before;
                eprintln!(
                    "[bench] chunk {chunk_size} rep {}: {n} of {} proxy relays switched to splice",
                    rep + 1,
                    opts.players
                );
            }
            eprintln!(
                "[bench] chunk {chunk_size} rep {} {:<20} {:>7.1} MB/s  relay {:>6} CPU-s/GB  \
                 TTFM p50 {:>6} ms  errors {}  relay sleeps/s {} preemptions/s {}",
                rep + 1,
                path.name(),
                run.bytes as f64 / run.secs / 1e6,
                fmt(run.relay_cpu_per_gb(), 2),
                fmt(run.p50(), 1),
                run.errors.len(),
                fmt(run.relay_ctx_per_s().0, 0),
                fmt(run.relay_ctx_per_s().1, 0),
            );
            this.push(run);
            for p in [
                &mut origin.proc,
                &mut publish,
                &mut haproxy.proc,
                &mut proxy.proc,
            ] {
                p.check_alive()?;
            }
            if let Some(s) = nginx_stream.as_mut() {
                s.proc.check_alive()?;
            }
        }
        runs.push(this);
    }
    Ok(summarize(opts, chunk_size, kbps, &paths, &runs))
}

fn measure(
    opts: &FanoutOpts,
    path: Path,
    port: u16,
    relay_pid: Option<u32>,
    origin_pid: u32,
) -> Result<Run> {
    let players = PlayerSet::start(opts.players, local(port), "bench", opts.stagger);
    let k = opts.players;
    let _ = wait_until(Duration::from_secs(20), "players to get media", || {
        players.settled() == k
    });
    sleep_checked(opts.warmup)?;
    let cpu = |pid: Option<u32>| pid.map(cpu_seconds).transpose();
    let ctx = |pid: Option<u32>| pid.map(ctx_switches).transpose();
    let c0 = ctx(relay_pid)?;
    let (b0, r0, o0, t0) = (
        players.total_bytes(),
        cpu(relay_pid)?,
        cpu_seconds(origin_pid)?,
        Instant::now(),
    );
    let perf = match relay_pid {
        Some(pid) if opts.perf => Some(perf_record(pid, path, opts.window)?),
        _ => None,
    };
    sleep_checked(opts.window)?;
    let (b1, r1, o1, secs) = (
        players.total_bytes(),
        cpu(relay_pid)?,
        cpu_seconds(origin_pid)?,
        t0.elapsed().as_secs_f64(),
    );
    let c1 = ctx(relay_pid)?;
    let run = Run {
        path,
        bytes: b1 - b0,
        secs,
        relay_cpu: r1.zip(r0).map(|(a, b)| a - b),
        relay_ctx: c1
            .zip(c0)
            .map(|((v1, i1), (v0, i0))| (v1.saturating_sub(v0), i1.saturating_sub(i0))),
        origin_cpu: o1 - o0,
        ttfm_ms: players.ttfm_ms(),
        errors: players.errors(),
    };
    if let Some(mut p) = perf {
        let _ = p.wait_exit(Duration::from_secs(30));
    }
    drop(players);
    sleep_checked(Duration::from_millis(500))?;
    Ok(run)
}

/// `perf record` of the relay on `path` (see [`crate::util::perf_record`]).
fn perf_record(pid: u32, path: Path, window: Duration) -> Result<Proc> {
    let tag = match path {
        Path::Direct => "direct",
        Path::Haproxy => "haproxy",
        Path::NginxStream => "nginx-stream",
        Path::Proxy => "proxy",
    };
    crate::util::perf_record(pid, tag, window)
}

fn summarize(
    opts: &FanoutOpts,
    chunk_size: u32,
    kbps: f64,
    paths: &[Path],
    runs: &[Vec<Run>],
) -> VariantResult {
    let of = |rep: &[Run], p: Path| rep.iter().find(|r| r.path == p).cloned();
    let per_rep = |p: Path, f: &dyn Fn(&Run, &Run) -> f64| -> Vec<f64> {
        runs.iter()
            .filter_map(|rep| Some(f(&of(rep, p)?, &of(rep, Path::Direct)?)))
            .collect()
    };
    let pin = if crate::peers::proxy_pin() {
        ""
    } else {
        " `PROXY_PIN_CORES=off`"
    };
    let wake = crate::peers::proxy_wake_coalesce()
        .map(|v| format!(" `PROXY_WAKE_COALESCE={v}`"))
        .unwrap_or_default();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Origin nginx-rtmp `chunk_size {chunk_size}`; {} players; source {kbps:.0} kbit/s \
         (expected delivery {:.1} MB/s); window {} s after {} s warm-up; {} reps, medians; \
         proxy `PROXY_CORES={}`{pin}{wake}, HAProxy nbthread {}.\n",
        opts.players,
        kbps * 1000.0 / 8.0 * opts.players as f64 / 1e6,
        opts.window.as_secs(),
        opts.warmup.as_secs(),
        opts.reps,
        opts.proxy_cores,
        opts.haproxy_threads,
    );
    md.push_str(
        "| path | delivered MB/s | relay CPU-s/GB | origin CPU-s/GB | TTFM p50 ms | TTFM p99 ms \
         | added TTFM p50 ms | player errors | relay sleeps / preemptions per s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for &p in paths {
        let rs: Vec<Run> = runs.iter().filter_map(|rep| of(rep, p)).collect();
        let m = |f: &dyn Fn(&Run) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
        let added = median(&per_rep(p, &|r, d| r.p50() - d.p50()));
        let errors: usize = rs.iter().map(|r| r.errors.len()).sum();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name(),
            fmt(m(&|r| r.bytes as f64 / r.secs / 1e6), 1),
            fmt(m(&|r| r.relay_cpu_per_gb()), 3),
            fmt(m(&|r| r.origin_cpu_per_gb()), 3),
            fmt(m(&|r| r.p50()), 2),
            fmt(m(&|r| quantile(&r.ttfm_ms, 0.99)), 2),
            if p == Path::Direct {
                "—".into()
            } else {
                fmt(added, 2)
            },
            errors,
            if p == Path::Direct {
                "n/a".to_string()
            } else {
                format!(
                    "{} / {}",
                    fmt(m(&|r| r.relay_ctx_per_s().0), 0),
                    fmt(m(&|r| r.relay_ctx_per_s().1), 0)
                )
            }
        );
        if let Some(e) = rs.iter().flat_map(|r| r.errors.first()).next() {
            let _ = writeln!(md, "<!-- first {} error: {e} -->", p.name());
        }
    }
    let ratio = |num: Path, den: Path| {
        median(
            &runs
                .iter()
                .filter_map(|rep| {
                    Some(of(rep, num)?.relay_cpu_per_gb() / of(rep, den)?.relay_cpu_per_gb())
                })
                .collect::<Vec<_>>(),
        )
    };
    let cpu_ratio = ratio(Path::Proxy, Path::Haproxy);
    let proxy_added = median(&per_rep(Path::Proxy, &|r, d| r.p50() - d.p50()));
    let l4_added = median(&per_rep(Path::Haproxy, &|r, d| r.p50() - d.p50()));
    let _ = writeln!(
        md,
        "\nproxy/HAProxy CPU per GB (median of per-rep ratios): **{}×** (target ≤ 1.5×: **{}**)",
        fmt(cpu_ratio, 2),
        verdict(cpu_ratio <= 1.5)
    );
    if paths.contains(&Path::NginxStream) {
        let _ = writeln!(
            md,
            "proxy/nginx-stream CPU per GB: {}×",
            fmt(ratio(Path::Proxy, Path::NginxStream), 2)
        );
    }
    let _ = writeln!(
        md,
        "added TTFM p50: proxy {} ms vs HAProxy {} ms (target proxy ≤ L4: **{}**)",
        fmt(proxy_added, 2),
        fmt(l4_added, 2),
        verdict(proxy_added <= l4_added)
    );
    VariantResult {
        chunk_size,
        markdown: md,
    }
}

pub fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}
