//! `rtmp-scale`: how the RTMP relay's throughput per core holds as executors are added.
//!
//! Needs no peer beyond the two binaries (so it runs on a bare many-core machine): an in-repo
//! mock RTMP origin (this process; `protocols::rtmp::ServerSession` for the command phase, then
//! a pre-chunked synthetic H.264/AAC-shaped message loop written as fast as the socket takes
//! it) and the blocking Rust players of [`crate::player`]. For each core count N the proxy runs
//! with `PROXY_CORES=N` pinned to CPUs `0..N`; this process (origin + players) is pinned to the
//! remaining CPUs. Load: `players_per_core × N` players, unpaced, so the relay runs as fast as
//! it can (or as fast as the generator on the remaining CPUs can feed it, which the **direct**
//! row of each point shows: the same players straight to the mock origin).
//!
//! Reported per point: delivered GB/s, proxy CPU busy (cores), GB per proxy CPU-second (the
//! throughput per core), and that figure relative to N = 1.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocols::rtmp::chunk::ChunkEncoder;
use protocols::rtmp::message::write_u32_control;
use protocols::rtmp::{ServerConfig, ServerEvent, ServerSession};

use crate::peers::SrsProxy;
use crate::player::PlayerSet;
use crate::util::{cpu_seconds, fmt, local, median, sleep_checked, wait_until, Result};

#[derive(Debug, Clone)]
pub struct ScaleOpts {
    /// Proxy executor counts to measure.
    pub cores: Vec<usize>,
    pub players_per_core: usize,
    pub reps: usize,
    pub window: Duration,
    pub warmup: Duration,
    /// Chunk size the mock origin announces and writes with.
    pub chunk_size: u32,
}

impl Default for ScaleOpts {
    fn default() -> Self {
        ScaleOpts {
            cores: vec![1, 2],
            players_per_core: 8,
            reps: 1,
            window: Duration::from_secs(5),
            warmup: Duration::from_secs(2),
            chunk_size: 60_000,
        }
    }
}

/// The mock origin: accepts RTMP plays and streams a synthetic message loop to each, unpaced.
struct MockOrigin {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl MockOrigin {
    fn start(chunk_size: u32) -> Result<MockOrigin> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || {
                            let _ = serve(sock, chunk_size, &s);
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(MockOrigin { port, stop })
    }
}

impl Drop for MockOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One origin connection: command phase, then the media loop until the peer goes or `stop`.
fn serve(mut sock: TcpStream, chunk_size: u32, stop: &AtomicBool) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    sock.set_write_timeout(Some(Duration::from_millis(500)))?;
    let cfg = ServerConfig {
        srs_id: "b0b0b0b".into(),
        srs_version: "5.0.0".into(),
        s1_random: [7; protocols::rtmp::handshake::RANDOM_SIZE],
        phase_timeout: Duration::from_secs(10),
    };
    let mut session = ServerSession::new(cfg, Instant::now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    let started = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(10) {
            return Ok(());
        }
        let n = match sock.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        };
        if session.handle_input(&buf[..n]).is_err() {
            return Ok(());
        }
        let mut identified = false;
        while let Some(ev) = session.poll_event() {
            if matches!(ev, ServerEvent::Identified { .. }) {
                session.accept();
                identified = true;
            }
        }
        session.poll_transmit(&mut out);
        sock.write_all(&out)?;
        out.clear();
        if identified {
            break;
        }
    }
    let (prefix, media) = media_loop(chunk_size, session.stream_id());
    sock.write_all(&prefix)?;
    // Blocking writes from here on: a timed-out write_all could leave a message half written.
    sock.set_write_timeout(None)?;
    // Drain whatever the client sends (acks) on the side so it never blocks on us.
    let reader = sock.try_clone()?;
    std::thread::spawn(move || drain(reader));
    while !stop.load(Ordering::Relaxed) {
        if sock.write_all(&media).is_err() {
            break;
        }
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn drain(mut sock: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// `(prefix, loop)`: SetChunkSize, then one second of 30 fps video (a 60 KB keyframe and
/// 24 KB frames, ~6 Mbit/s) with AAC-sized audio every 23 ms, on csid 6 / 4 like ffmpeg.
fn media_loop(chunk_size: u32, msid: u32) -> (Vec<u8>, Vec<u8>) {
    let mut enc = ChunkEncoder::new();
    let mut prefix = Vec::new();
    write_u32_control(&enc, 1, chunk_size, &mut prefix);
    enc.set_chunk_size(chunk_size);
    let mut media = Vec::new();
    let mut audio_ts = 0u32;
    for frame in 0..30u32 {
        let ts = frame * 33;
        let (kind, len) = if frame == 0 {
            (0x17, 60_000)
        } else {
            (0x27, 24_000)
        };
        let mut video = vec![0x5au8; len];
        video[0] = kind;
        video[1] = 1;
        enc.write_message(6, ts, 9, msid, &video, &mut media);
        while audio_ts <= ts {
            let mut audio = [0x33u8; 380];
            audio[0] = 0xaf;
            audio[1] = 1;
            enc.write_message(4, audio_ts, 8, msid, &audio, &mut media);
            audio_ts += 23;
        }
    }
    (prefix, media)
}

/// Pins the calling thread (and so the threads and processes it starts later) to `cpus`.
fn pin(cpus: &[usize]) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays inside it for cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity {cpus:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

struct Point {
    cores: usize,
    players: usize,
    direct_gbps: f64,
    proxy_gbps: f64,
    proxy_busy: f64,
    gen_busy: f64,
    errors: usize,
}

impl Point {
    fn gb_per_cpu_s(&self) -> f64 {
        self.proxy_gbps / self.proxy_busy
    }
}

/// Bytes/s the players receive over the window, and CPU-seconds/s of `pid` (if any) and of this
/// process over it.
fn window(
    players: &PlayerSet,
    k: usize,
    pid: Option<u32>,
    opts: &ScaleOpts,
) -> Result<(f64, f64, f64, usize)> {
    let _ = wait_until(Duration::from_secs(20), "players to get media", || {
        players.settled() == k
    });
    sleep_checked(opts.warmup)?;
    let me = std::process::id();
    let cpu = |p: Option<u32>| p.map(cpu_seconds).transpose();
    let (b0, r0, g0, t0) = (
        players.total_bytes(),
        cpu(pid)?,
        cpu_seconds(me)?,
        Instant::now(),
    );
    sleep_checked(opts.window)?;
    let (b1, r1, g1, secs) = (
        players.total_bytes(),
        cpu(pid)?,
        cpu_seconds(me)?,
        t0.elapsed().as_secs_f64(),
    );
    let relay = r1.zip(r0).map_or(f64::NAN, |(a, b)| (a - b) / secs);
    let errors = players.errors();
    if let Some(e) = errors.first() {
        eprintln!(
            "[bench] rtmp-scale: {} of {k} players ({}) failed, first: {e}",
            errors.len(),
            if pid.is_some() { "proxy" } else { "direct" }
        );
    }
    Ok((
        (b1 - b0) as f64 / secs,
        relay,
        (g1 - g0) / secs,
        errors.len(),
    ))
}

pub fn run(opts: &ScaleOpts) -> Result<String> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all: Vec<usize> = (0..online).collect();
    let mut points: Vec<Vec<Point>> = Vec::new();
    for &n in &opts.cores {
        if n >= online {
            eprintln!("[bench] rtmp-scale: skipping {n} cores: only {online} CPUs (one is kept for the generator)");
            continue;
        }
        let mut reps = Vec::new();
        for rep in 0..opts.reps {
            let (proxy_cpus, gen_cpus) = all.split_at(n);
            // The proxy inherits the pin of the thread that spawns it.
            pin(proxy_cpus)?;
            let proxy = SrsProxy::start(n);
            pin(gen_cpus)?;
            let proxy = proxy?;
            let origin = MockOrigin::start(opts.chunk_size)?;
            proxy.register(origin.port)?;
            let k = opts.players_per_core * n;
            let stagger = Duration::from_millis(2);
            let direct = PlayerSet::start(k, local(origin.port), "bench", stagger);
            let (direct_bps, _, _, direct_err) = window(&direct, k, None, opts)?;
            drop(direct);
            sleep_checked(Duration::from_millis(300))?;
            let through = PlayerSet::start(k, local(proxy.rtmp), "bench", stagger);
            let (bps, busy, gen_busy, err) = window(&through, k, Some(proxy.proc.pid()), opts)?;
            drop(through);
            drop(origin);
            drop(proxy);
            pin(&all)?;
            let p = Point {
                cores: n,
                players: k,
                direct_gbps: direct_bps / 1e9,
                proxy_gbps: bps / 1e9,
                proxy_busy: busy,
                gen_busy,
                errors: err + direct_err,
            };
            eprintln!(
                "[bench] rtmp-scale {n} cores rep {}: {k} players, direct {:.2} GB/s, proxy {:.2} GB/s \
                 with {:.2} cores busy = {:.3} GB per CPU-s (generator {:.2} cores), errors {}",
                rep + 1,
                p.direct_gbps,
                p.proxy_gbps,
                p.proxy_busy,
                p.gb_per_cpu_s(),
                p.gen_busy,
                p.errors
            );
            reps.push(p);
            sleep_checked(Duration::from_millis(500))?;
        }
        points.push(reps);
    }
    Ok(summarize(opts, online, &points))
}

fn summarize(opts: &ScaleOpts, online: usize, points: &[Vec<Point>]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Mock RTMP origin (in this bench, unpaced, chunk size {}, ~6 Mbit/s-shaped 30 fps \
         video + audio loop) → {} players per proxy core (blocking Rust players). Proxy \
         `PROXY_CORES=N` pinned to CPUs 0..N, origin + players pinned to the other {} − N CPUs. \
         Window {} s after {} s warm-up; {} rep(s), medians. *direct* = the same players \
         straight to the origin (what the generator can feed on its CPUs).\n",
        opts.chunk_size,
        opts.players_per_core,
        online,
        opts.window.as_secs(),
        opts.warmup.as_secs(),
        opts.reps
    );
    md.push_str(
        "| proxy cores | players | direct GB/s | through proxy GB/s | proxy cores busy | \
         generator cores busy | GB per proxy CPU-s | per core vs 1 core | errors |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let per_core = |rs: &[Point]| median(&rs.iter().map(Point::gb_per_cpu_s).collect::<Vec<_>>());
    let base = points.first().map(|rs| per_core(rs)).unwrap_or(f64::NAN);
    for rs in points {
        let Some(first) = rs.first() else { continue };
        let m = |f: &dyn Fn(&Point) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
        let pc = per_core(rs);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {}× | {} |",
            first.cores,
            first.players,
            fmt(m(&|p| p.direct_gbps), 2),
            fmt(m(&|p| p.proxy_gbps), 2),
            fmt(m(&|p| p.proxy_busy), 2),
            fmt(m(&|p| p.gen_busy), 2),
            fmt(pc, 3),
            fmt(pc / base, 2),
            rs.iter().map(|p| p.errors).sum::<usize>()
        );
    }
    md
}
