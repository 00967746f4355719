//! `redis-setup`: the session-setup time the Redis load balancer adds, against the memory one
//! and the origin itself, in one run. One node-media-server origin (RTMP + HTTP-FLV) with one
//! published stream; a memory-mode and a Redis-mode srs-proxy (one `redis-server`) with the
//! origin registered. Sequential setups, interleaved over the three targets so the machine's
//! noise hits them alike:
//!
//! * RTMP play of the published stream, TCP connect → first audio/video message;
//! * RTMP play of a stream never seen before (a new key each time: the Redis proxy decides and
//!   claims a pin), TCP connect → `Play.Start` (node-media-server answers it for idle streams);
//! * HTTP-FLV GET of the published stream, TCP connect → first body byte;
//! * HTTP GET of a new stream key on the stateless HTTP-TS route (`/live/<new>.ts`, which
//!   node-media-server answers with a 404 at once), TCP connect → the origin's response head:
//!   the proxy's decision without the origin's RTMP latency around it.
//!
//! Redis round trips per setup come from the Redis proxy's `srs_proxy_redis_round_trips_total`
//! (all cores), minus its background rate (the origin-table read, measured idle first).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::peers::{encoded_source, publisher, Nms, RedisServer, SourceSpec, SrsProxy};
use crate::player::setup_time;
use crate::util::{
    check_interrupt, fmt, local, median, quantile, require_program, sleep_checked, wait_until,
    Result, TempDir,
};

#[derive(Debug, Clone)]
pub struct SetupOpts {
    /// Setups per case, target and rep.
    pub setups: usize,
    pub reps: usize,
    pub proxy_cores: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    RtmpKnown,
    RtmpNew,
    FlvKnown,
    HttpNew,
}

impl Case {
    const ALL: [Case; 4] = [
        Case::RtmpKnown,
        Case::RtmpNew,
        Case::FlvKnown,
        Case::HttpNew,
    ];

    fn label(self) -> &'static str {
        match self {
            Case::RtmpKnown => "RTMP play, published stream → first media",
            Case::RtmpNew => "RTMP play, new stream key → Play.Start",
            Case::FlvKnown => "HTTP-FLV GET, published stream → first body byte",
            Case::HttpNew => "HTTP-TS GET, new stream key → origin's 404 head",
        }
    }
}

/// Where a setup goes: the origin itself or a proxy in front of it.
struct Target {
    name: &'static str,
    rtmp: SocketAddr,
    http: SocketAddr,
    /// The proxy's system API, when its Redis round trips are counted.
    metrics: Option<SocketAddr>,
}

/// One sample per setup (ms), and the Redis round trips over them (background removed).
#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    round_trips: f64,
    setups: usize,
}

/// TCP connect → the response to `GET path`: its first body byte when `want` is 200, else the
/// end of its head (which must carry `want`).
fn http_setup(addr: SocketAddr, path: &str, want: u16) -> std::result::Result<Duration, String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed early: {:?}", String::from_utf8_lossy(&got)));
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if !got.starts_with(format!("HTTP/1.1 {want}").as_bytes()) {
                return Err(format!("answer {:?}", String::from_utf8_lossy(&got[..end])));
            }
            if want != 200 || got.len() > end + 4 {
                return Ok(t0.elapsed());
            }
        }
        if got.len() > 64 * 1024 {
            return Err("no end of head in 64 KiB".into());
        }
    }
}

/// Sum of `srs_proxy_redis_round_trips_total` over every core.
fn round_trips(api: SocketAddr) -> Result<f64> {
    crate::peers::metric_sum(api, "srs_proxy_redis_round_trips_total", "")
}

fn setup(case: Case, t: &Target, key: &str) -> std::result::Result<Duration, String> {
    match case {
        Case::RtmpKnown => setup_time(t.rtmp, "live", "known", true),
        Case::RtmpNew => setup_time(t.rtmp, "live", key, false),
        Case::FlvKnown => http_setup(t.http, "/live/known.flv", 200),
        Case::HttpNew => http_setup(t.http, &format!("/live/{key}.ts"), 404),
    }
}

pub fn run(opts: &SetupOpts) -> Result<String> {
    for p in ["redis-server", "node", "ffmpeg"] {
        require_program(p)?;
    }
    let dir = TempDir::new("redis-setup")?;
    let redis = RedisServer::start()?;
    let nms = Nms::start()?;
    let (file, _) = encoded_source(&SourceSpec {
        bitrate_kbps: 1000,
        seconds: 30,
        size: "640x360".into(),
    })?;
    let _publisher = publisher(
        &file,
        &format!("rtmp://127.0.0.1:{}/live/known", nms.rtmp),
        dir.path(),
    )?;
    let memory = SrsProxy::start(opts.proxy_cores)?;
    let redis_port = redis.port.to_string();
    let shared = SrsProxy::start_with_env(
        opts.proxy_cores,
        &[
            ("PROXY_LOAD_BALANCER_TYPE", "redis"),
            ("PROXY_REDIS_PORT", &redis_port),
        ],
    )?;
    memory.register_http(nms.rtmp, nms.http)?;
    shared.register_http(nms.rtmp, nms.http)?;
    let targets = [
        Target {
            name: "origin (direct)",
            rtmp: local(nms.rtmp),
            http: local(nms.http),
            metrics: None,
        },
        Target {
            name: "srs-proxy, memory LB",
            rtmp: local(memory.rtmp),
            http: local(memory.http),
            metrics: None,
        },
        Target {
            name: "srs-proxy, Redis LB",
            rtmp: local(shared.rtmp),
            http: local(shared.http),
            metrics: Some(local(shared.system_api)),
        },
    ];
    wait_until(
        Duration::from_secs(20),
        "the published stream plays",
        || {
            targets
                .iter()
                .all(|t| setup(Case::RtmpKnown, t, "").is_ok())
        },
    )?;
    // The Redis proxy's own traffic: the origin-table read on one core.
    let api = local(shared.system_api);
    let idle = Duration::from_secs(3);
    let before = round_trips(api)?;
    sleep_checked(idle)?;
    let background = (round_trips(api)? - before) / idle.as_secs_f64();
    eprintln!("[bench] redis-setup: background {background:.2} redis round trips/s");

    let mut samples: Vec<Vec<Samples>> = Case::ALL
        .iter()
        .map(|_| targets.iter().map(|_| Samples::default()).collect())
        .collect();
    let mut key = 0u64;
    for rep in 0..opts.reps {
        for (ci, case) in Case::ALL.iter().enumerate() {
            for (ti, t) in targets.iter().enumerate() {
                check_interrupt()?;
                let rt0 = t.metrics.map(round_trips).transpose()?;
                let started = Instant::now();
                for _ in 0..opts.setups {
                    key += 1;
                    let d = setup(*case, t, &format!("new{key}"))
                        .map_err(|e| format!("{} via {}: {e}", case.label(), t.name))?;
                    samples[ci][ti].ms.push(d.as_secs_f64() * 1e3);
                }
                let s = &mut samples[ci][ti];
                s.setups += opts.setups;
                if let (Some(api), Some(rt0)) = (t.metrics, rt0) {
                    let spent = started.elapsed().as_secs_f64();
                    s.round_trips += (round_trips(api)? - rt0 - background * spent).max(0.0);
                }
                eprintln!(
                    "[bench] redis-setup rep {}: {} via {}: median {:.2} ms",
                    rep + 1,
                    case.label(),
                    t.name,
                    median(&samples[ci][ti].ms)
                );
            }
        }
    }

    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} setups per case, target and rep, {} reps, interleaved; sequential (one setup at a \
         time); proxies `PROXY_CORES={}`, one loopback `redis-server` (no persistence); origin: \
         node-media-server 2.7 with one 1 Mbit/s stream. Times from the start of the TCP \
         connect; p50 / p90 over all setups. Added = proxy p50 − origin p50. Redis round trips \
         per setup from `srs_proxy_redis_round_trips_total`, the proxy's idle rate \
         ({background:.2}/s) removed.\n",
        opts.setups, opts.reps, opts.proxy_cores
    );
    md.push_str(
        "| setup | origin p50 / p90 (ms) | memory LB p50 / p90 (ms) | Redis LB p50 / p90 (ms) | \
         added by memory LB (ms) | added by Redis LB (ms) | Redis − memory (ms) | Redis round trips / setup |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (ci, case) in Case::ALL.iter().enumerate() {
        let [direct, mem, red] = [0, 1, 2].map(|ti| &samples[ci][ti]);
        let p = |s: &Samples| {
            format!(
                "{} / {}",
                fmt(median(&s.ms), 2),
                fmt(quantile(&s.ms, 0.9), 2)
            )
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            case.label(),
            p(direct),
            p(mem),
            p(red),
            fmt(median(&mem.ms) - median(&direct.ms), 2),
            fmt(median(&red.ms) - median(&direct.ms), 2),
            fmt(median(&red.ms) - median(&mem.ms), 2),
            fmt(red.round_trips / red.setups.max(1) as f64, 2),
        );
    }
    md.push_str(
        "\nA published stream's pin is cached on every core after its first setup and trusted \
         for 5 s (`REVALIDATE`), so most of its setups cost no round trip and one in a few \
         seconds costs one; a new key costs two (read the pin with its origin's record, then \
         `SET NX`).\n",
    );
    drop(redis);
    Ok(md)
}
