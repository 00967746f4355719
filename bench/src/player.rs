//! A blocking RTMP play client on `protocols::rtmp::ClientSession`: handshake, connect,
//! createStream, play; then decode messages until the first audio/video one (time to first
//! media, measured from the start of the TCP connect), then only count bytes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocols::rtmp::chunk::ChunkDecoder;
use protocols::rtmp::handshake::RANDOM_SIZE;
use protocols::rtmp::{ClientConfig, ClientEvent, ClientSession, StreamKind};
use rand::RngCore;

/// What one player observed; shared with the measuring thread.
#[derive(Default)]
pub struct PlayerStats {
    /// Bytes read from the socket so far.
    pub bytes: AtomicU64,
    /// Time to first media in ns (0 = not yet).
    pub ttfm_ns: AtomicU64,
    pub error: Mutex<Option<String>>,
    pub done: AtomicBool,
}

impl PlayerStats {
    pub fn ttfm(&self) -> Option<Duration> {
        match self.ttfm_ns.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Plays `rtmp://<addr>/<app>/<stream>` until `stop` is set (or an error); fills `stats`.
pub fn play(addr: SocketAddr, app: &str, stream: &str, stop: &AtomicBool, stats: &PlayerStats) {
    if let Err(e) = play_inner(addr, app, stream, stop, stats) {
        if !stop.load(Ordering::Relaxed) {
            *stats.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    }
    stats.done.store(true, Ordering::Relaxed);
}

fn play_inner(
    addr: SocketAddr,
    app: &str,
    stream: &str,
    stop: &AtomicBool,
    stats: &PlayerStats,
) -> Result<(), String> {
    let mut p = start_play(addr, app, stream, stop, stats)?;
    first_media(&mut p, stop, stats)?;
    // Steady state: count bytes only.
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match p.sock.read(&mut buf) {
            Ok(0) => return Err("closed by the server".into()),
            Ok(n) => {
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(())
}

/// A play past its command phase.
struct Playing {
    sock: TcpStream,
    /// When the TCP connect started.
    t0: Instant,
    decoder: ChunkDecoder,
    /// Bytes read after the message that made the session Ready.
    pending: Vec<u8>,
}

/// Connects and runs the command phase up to the server's `Play.Start`.
fn start_play(
    addr: SocketAddr,
    app: &str,
    stream: &str,
    stop: &AtomicBool,
    stats: &PlayerStats,
) -> Result<Playing, String> {
    let t0 = Instant::now();
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    sock.set_nodelay(true).ok();
    sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let mut c1 = [0u8; RANDOM_SIZE];
    rand::thread_rng().fill_bytes(&mut c1);
    let mut session = ClientSession::new(
        ClientConfig {
            tc_url: format!("rtmp://{addr}/{app}"),
            stream_name: stream.to_string(),
            kind: StreamKind::Play,
            c1_random: c1,
            phase_timeout: Duration::from_secs(10),
        },
        t0,
    );
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let deadline = t0 + Duration::from_secs(10);
    loop {
        session.poll_transmit(&mut out);
        if !out.is_empty() {
            sock.write_all(&out).map_err(|e| format!("write: {e}"))?;
            out.clear();
        }
        let mut ready = false;
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::Ready => ready = true,
                ClientEvent::Rejected { code, description } => {
                    return Err(format!("play rejected: {code} {description}"))
                }
            }
        }
        if ready {
            break;
        }
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Err("no Play.Start within 10 s".into());
        }
        let n = match sock.read(&mut buf) {
            Ok(0) => return Err("closed during the command phase".into()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        pending.extend_from_slice(&buf[..n]);
        let used = session
            .handle_input(&pending)
            .map_err(|e| format!("rtmp: {e}"))?;
        pending.drain(..used);
    }
    Ok(Playing {
        sock,
        t0,
        decoder: session.into_relay().decoder,
        pending,
    })
}

/// Decodes until the first audio/video message and records the time to it in `stats`.
fn first_media(p: &mut Playing, stop: &AtomicBool, stats: &PlayerStats) -> Result<(), String> {
    let deadline = p.t0 + Duration::from_secs(20);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut pos = 0;
        while pos < p.pending.len() {
            let (used, msg) = p
                .decoder
                .decode(&p.pending[pos..])
                .map_err(|e| format!("rtmp: {e}"))?;
            pos += used;
            if let Some(m) = msg {
                if m.type_id == 8 || m.type_id == 9 {
                    let ns = p.t0.elapsed().as_nanos().max(1) as u64;
                    stats.ttfm_ns.store(ns, Ordering::Relaxed);
                    return Ok(());
                }
            }
            if used == 0 {
                break;
            }
        }
        p.pending.clear();
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Err("no media within 20 s".into());
        }
        match p.sock.read(&mut buf) {
            Ok(0) => return Err("closed before the first media message".into()),
            Ok(n) => {
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                p.pending.extend_from_slice(&buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// One play's setup time from the start of the TCP connect: to the server's `Play.Start`, or
/// with `until_media` to the first audio/video message. The connection is closed after.
pub fn setup_time(
    addr: SocketAddr,
    app: &str,
    stream: &str,
    until_media: bool,
) -> Result<Duration, String> {
    let (stop, stats) = (AtomicBool::new(false), PlayerStats::default());
    let mut p = start_play(addr, app, stream, &stop, &stats)?;
    if !until_media {
        return Ok(p.t0.elapsed());
    }
    first_media(&mut p, &stop, &stats)?;
    stats.ttfm().ok_or_else(|| "no time to first media".into())
}

/// Players running on their own threads.
pub struct PlayerSet {
    pub stats: Vec<Arc<PlayerStats>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl PlayerSet {
    /// Starts `k` players, `stagger` apart.
    pub fn start(k: usize, addr: SocketAddr, stream: &str, stagger: Duration) -> PlayerSet {
        let stream = stream.to_string();
        PlayerSet::spawn(k, stagger, move |stop, st| {
            play(addr, "live", &stream, stop, st)
        })
    }

    /// Starts `k` clients running `client` on their own threads, `stagger` apart.
    pub fn spawn<F>(k: usize, stagger: Duration, client: F) -> PlayerSet
    where
        F: Fn(&AtomicBool, &PlayerStats) + Send + Sync + 'static,
    {
        let client = Arc::new(client);
        let stop = Arc::new(AtomicBool::new(false));
        let mut stats = Vec::with_capacity(k);
        let mut threads = Vec::with_capacity(k);
        for i in 0..k {
            if i > 0 && !stagger.is_zero() {
                std::thread::sleep(stagger);
            }
            let st = Arc::new(PlayerStats::default());
            stats.push(st.clone());
            let stop = stop.clone();
            let client = client.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("player-{i}"))
                    .stack_size(256 * 1024)
                    .spawn(move || client(&stop, &st))
                    .expect("spawn player thread"),
            );
        }
        PlayerSet {
            stats,
            stop,
            threads,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.stats
            .iter()
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Players that have their first media or have given up.
    pub fn settled(&self) -> usize {
        self.stats
            .iter()
            .filter(|s| s.ttfm().is_some() || s.done.load(Ordering::Relaxed))
            .count()
    }

    pub fn errors(&self) -> Vec<String> {
        self.stats.iter().filter_map(|s| s.error()).collect()
    }

    pub fn ttfm_ms(&self) -> Vec<f64> {
        self.stats
            .iter()
            .filter_map(|s| s.ttfm())
            .map(|d| d.as_secs_f64() * 1e3)
            .collect()
    }
}

impl Drop for PlayerSet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
