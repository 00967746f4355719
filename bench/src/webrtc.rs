//! `webrtc-relay`: many WebRTC-like UDP sessions (1,200-byte RTP-like datagrams) from one
//! generator into a mock WebRTC origin, through direct, nginx `stream` UDP (one worker) and
//! srs-proxy (`PROXY_CORES=1`, optionally more), in rotating order. Per path: datagrams per
//! second the origin's sink received, the relay's CPU (utime + stime) over the same window →
//! **packets per core-second**, loss, and the latency of a low-rate ping session under the
//! same load (one-way client → origin, and the round trip back through the relay). Target:
//! srs-proxy ≥ 2.0× nginx's packets per core-second.
//!
//! Everything but the relays runs in this process, on its own threads:
//!
//! * **Mock origin** ([`MockOrigin`]): an HTTP API that answers every WHIP `POST` with 201 and a
//!   minimal SDP answer that passes [`protocols::webrtc::validate_answer`] (a unique
//!   `a=ice-ufrag`, one host candidate on its UDP port), and a UDP sink on that port that
//!   drains with `recvmmsg`, counts datagrams by kind and echoes the ping session's datagrams
//!   back to where they came from (the relay, or the client when direct).
//! * **Sessions**: one client UDP socket each. For srs-proxy each session first signals through
//!   the proxy's `PROXY_HTTP_API` (`POST /rtc/v1/whip/?app=live&stream=…`), checks that the
//!   answer's candidate was rewritten to the proxy's WebRTC port, and sends one STUN binding
//!   request whose `USERNAME` is `<answer-ufrag>:<offer-ufrag>`; on the other paths it sends
//!   the same kind of STUN request, so every path carries the same datagrams. Media starts
//!   once the sink has seen every session's STUN request.
//! * **Generator** ([`generate`]): one thread; every tick (1 ms, then 200 µs: one set of runs
//!   each) it sends what the target aggregate rate owes, spread over the sessions, with one
//!   `sendmmsg` per session (or, with rate 0, batches of 16 per session as fast as it can).
//! * **Ping**: one more session sends a timestamped datagram every 2 ms; the sink records the
//!   one-way delay and echoes it; the session records the round trip.
//!
//! nginx keeps its default `proxy_responses` (unlimited) with `proxy_timeout 30s`: with
//! `proxy_responses 0` it ends the UDP session after every datagram (a new upstream socket per
//! datagram) and relays nothing back, which no WebRTC flow survives. `--rtc-nginx-responses N`
//! sets it anyway, for comparison.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::peers::{SrsProxy, STREAM_MODULE};
use crate::util::{
    cpu_seconds, fmt, local, median, perf_record, quantile, sleep_checked, wait_until, Result,
};

#[derive(Debug, Clone)]
pub struct RtcOpts {
    pub reps: usize,
    pub window: Duration,
    pub warmup: Duration,
    /// Media sessions (client sockets), besides the ping session.
    pub sessions: usize,
    /// Aggregate datagrams per second over all sessions; 0: as fast as the generator can.
    pub rate: u64,
    /// Datagram size in bytes (RTP-like: first byte 0x80).
    pub size: usize,
    /// The paced generator pays the rate's debt once per tick; one set of runs per tick (the
    /// arrival pattern: few large bursts or many small ones).
    pub ticks: Vec<Duration>,
    /// srs-proxy `PROXY_CORES` values, one path each.
    pub proxy_cores: Vec<usize>,
    pub nginx: bool,
    /// `proxy_responses N;` in the nginx config (`None`: nginx's default, unlimited).
    pub nginx_responses: Option<u64>,
    pub perf: bool,
}

/// Second byte (RTP marker + payload type) of load datagrams: PT 96.
const LOAD_PT: u8 = 96;
/// Second byte of ping datagrams: marker bit + PT 110; the sink echoes these.
const PING_PT: u8 = 0x80 | 110;
/// Datagrams per `recvmmsg`/`sendmmsg`.
const BATCH: usize = 64;
/// Datagrams per session per round when sending as fast as possible.
const AFAP_BURST: u64 = 16;
/// Receive buffer per datagram at the sink and the ping session.
const BUF: usize = 2048;
const PING_EVERY: Duration = Duration::from_millis(2);
/// How many ticks the paced generator may fall behind before it gives the debt up (no
/// catch-up burst after being descheduled for a while).
const MAX_DEBT_TICKS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
enum RelayPath {
    Direct,
    NginxStream,
    Proxy(usize),
}

impl RelayPath {
    fn name(&self) -> String {
        match self {
            RelayPath::Direct => "direct".into(),
            RelayPath::NginxStream => "nginx stream (udp)".into(),
            RelayPath::Proxy(c) => {
                format!("srs-proxy ({c} core{})", if *c == 1 { "" } else { "s" })
            }
        }
    }

    fn tag(&self) -> String {
        match self {
            RelayPath::Direct => "rtc-direct".into(),
            RelayPath::NginxStream => "rtc-nginx-stream".into(),
            RelayPath::Proxy(c) => format!("rtc-proxy-{c}c"),
        }
    }
}

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------------------
// Batched UDP I/O.

/// `BATCH` receive slots for `recvmmsg`, with stable heap addresses (the pointers in `hdrs`
/// point into the other vectors, which are never resized).
struct RecvBatch {
    bufs: Vec<u8>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    fn new() -> Box<RecvBatch> {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let zero_name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut b = Box::new(RecvBatch {
            bufs: vec![0u8; BATCH * BUF],
            iovs: Vec::with_capacity(BATCH),
            names: vec![zero_name; BATCH],
            hdrs: Vec::with_capacity(BATCH),
        });
        let base = b.bufs.as_mut_ptr();
        for i in 0..BATCH {
            b.iovs.push(libc::iovec {
                // SAFETY: i * BUF < BATCH * BUF, inside `bufs`.
                iov_base: unsafe { base.add(i * BUF) }.cast(),
                iov_len: BUF,
            });
        }
        for i in 0..BATCH {
            // SAFETY: all-zero is a valid msghdr.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&mut b.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_iov = &mut b.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            b.hdrs.push(h);
        }
        b
    }

    /// One `recvmmsg` (blocking for the first datagram up to the socket's receive timeout);
    /// the number received, 0 on timeout or error.
    fn recv(&mut self, fd: i32) -> usize {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_len = 0;
        }
        // SAFETY: `hdrs` holds BATCH valid headers pointing into buffers owned by `self`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        n.max(0) as usize
    }

    fn data(&self, i: usize) -> &[u8] {
        let len = (self.hdrs[i].msg_len as usize).min(BUF);
        &self.bufs[i * BUF..i * BUF + len]
    }

    fn name(&self, i: usize) -> (&libc::sockaddr_storage, u32) {
        (&self.names[i], self.hdrs[i].msg_hdr.msg_namelen)
    }
}

fn sockaddr_v4(sa: &libc::sockaddr_storage) -> Option<SocketAddr> {
    if i32::from(sa.ss_family) != libc::AF_INET {
        return None;
    }
    // SAFETY: the family says it is a sockaddr_in, which fits in sockaddr_storage.
    let sin = unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
    let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
}

/// Sends `count` copies of `pkt` on the connected socket `fd` with `sendmmsg` (at most BATCH
/// per call); returns how many the kernel took.
fn send_copies(fd: i32, pkt: &[u8], count: usize, hdrs: &mut [libc::mmsghdr]) -> usize {
    let mut iov = libc::iovec {
        iov_base: pkt.as_ptr() as *mut libc::c_void,
        iov_len: pkt.len(),
    };
    let mut done = 0;
    while done < count {
        let k = (count - done).min(hdrs.len());
        for h in hdrs[..k].iter_mut() {
            h.msg_hdr.msg_iov = &mut iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: k headers, each with one iovec pointing at `pkt`, which outlives the call.
        let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), k as u32, libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
        done += n as usize;
        if (n as usize) < k {
            break;
        }
    }
    done
}

// ---------------------------------------------------------------------------------------------
// Mock origin: HTTP API + UDP sink.

#[derive(Default)]
struct SinkStats {
    load: AtomicU64,
    stun: AtomicU64,
    pings: AtomicU64,
    other: AtomicU64,
    /// Distinct source addresses seen (relay-side sockets, or clients when direct).
    sources: AtomicU64,
    /// One-way client → origin delay of ping datagrams, µs.
    oneway_us: Mutex<Vec<f64>>,
}

pub struct MockOrigin {
    pub api: u16,
    pub udp: u16,
    answers: Arc<AtomicU64>,
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl MockOrigin {
    pub fn start() -> Result<MockOrigin> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("sink bind: {e}"))?;
        set_rcvbuf(&sock, 8 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let udp = sock.local_addr().map_err(|e| e.to_string())?.port();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("api bind: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let api = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SinkStats::default());
        let answers = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        {
            let (stop, stats) = (stop.clone(), stats.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("rtc-sink".into())
                    .spawn(move || sink_loop(sock, &stats, &stop))
                    .map_err(|e| e.to_string())?,
            );
        }
        {
            let (api_stop, answers) = (stop.clone(), answers.clone());
            let spawned = std::thread::Builder::new()
                .name("rtc-origin-api".into())
                .spawn(move || api_loop(listener, udp, &answers, &api_stop));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    stop.store(true, Relaxed);
                    return Err(e.to_string());
                }
            }
        }
        Ok(MockOrigin {
            api,
            udp,
            answers,
            stats,
            stop,
            threads,
        })
    }

    /// The SRS heartbeat of this origin (`api` and `rtc` ports; RTMP: an unused port).
    pub fn heartbeat(&self) -> String {
        format!(
            r#"{{"ip":"127.0.0.1","server":"bench-rtc","service":"s1","pid":"{}","rtmp":["{}"],"api":["{}"],"rtc":["udp://0.0.0.0:{}"]}}"#,
            std::process::id(),
            crate::util::free_port(),
            self.api,
            self.udp
        )
    }
}

impl Drop for MockOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn set_rcvbuf(sock: &UdpSocket, bytes: i32) {
    // SAFETY: setsockopt with a pointer to a local int of the stated size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        );
    }
}

fn sink_loop(sock: UdpSocket, stats: &SinkStats, stop: &AtomicBool) {
    let fd = sock.as_raw_fd();
    let mut batch = RecvBatch::new();
    let mut sources: HashSet<SocketAddr> = HashSet::new();
    let mut last: Option<SocketAddr> = None;
    while !stop.load(Relaxed) {
        let n = batch.recv(fd);
        let (mut load, mut stun, mut other) = (0u64, 0u64, 0u64);
        for i in 0..n {
            let (name, namelen) = batch.name(i);
            let from = sockaddr_v4(name);
            if from != last {
                if let Some(a) = from {
                    if sources.insert(a) {
                        stats.sources.store(sources.len() as u64, Relaxed);
                    }
                }
                last = from;
            }
            let d = batch.data(i);
            match d {
                [0..=3, ..] => stun += 1,
                [0x80, PING_PT, ..] if d.len() >= 16 => {
                    let sent = u64::from_be_bytes(d[8..16].try_into().unwrap_or_default());
                    let us = mono_ns().saturating_sub(sent) as f64 / 1e3;
                    if let Ok(mut v) = stats.oneway_us.lock() {
                        v.push(us);
                    }
                    stats.pings.fetch_add(1, Relaxed);
                    // SAFETY: echo to the sender's address as recvmmsg filled it in.
                    unsafe {
                        libc::sendto(
                            fd,
                            d.as_ptr().cast(),
                            d.len(),
                            libc::MSG_DONTWAIT,
                            (name as *const libc::sockaddr_storage).cast(),
                            namelen,
                        );
                    }
                }
                [0x80, ..] => load += 1,
                _ => other += 1,
            }
        }
        if load > 0 {
            stats.load.fetch_add(load, Relaxed);
        }
        if stun > 0 {
            stats.stun.fetch_add(stun, Relaxed);
        }
        if other > 0 {
            stats.other.fetch_add(other, Relaxed);
        }
    }
}

/// A minimal WHIP answer: what `validate_answer` requires, one host candidate on `udp`.
fn answer_sdp(ufrag: &str, udp: u16) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\na=group:BUNDLE 0\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:benchpassword0123456789abcd\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:passive\r\na=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:96 H264/90000\r\n\
         a=candidate:0 1 udp 2130706431 127.0.0.1 {udp} typ host generation 0\r\n",
        FINGERPRINT
    )
}

const FINGERPRINT: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:\
AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

fn offer_sdp(ufrag: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:offerpassword0123456789abc\r\n\
         a=fingerprint:sha-256 {FINGERPRINT}\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\n\
         a=rtpmap:96 H264/90000\r\n"
    )
}

fn api_loop(listener: TcpListener, udp: u16, answers: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = serve_whip(s, udp, answers);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One request on one connection (the proxy sends `Connection: close`): 201 + SDP answer to a
/// WHIP/WHEP `POST`, 200 to anything else.
fn serve_whip(mut s: TcpStream, udp: u16, answers: &AtomicU64) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
        if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if req.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&req[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
        .min(256 * 1024);
    while req.len() < head_end + len {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let resp = if head.starts_with("POST ") && target.starts_with("/rtc/v1/wh") {
        let n = answers.fetch_add(1, Relaxed);
        let ufrag = format!("bench{n:06}");
        let body = answer_sdp(&ufrag, udp);
        format!(
            "HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\n\
             Location: /rtc/v1/whip/?session={ufrag}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    };
    s.write_all(resp.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Client side: signalling, STUN, load, ping.

/// A STUN binding request carrying only `USERNAME` (RFC 8489 §5, §14.3; value padded to 4).
fn stun_binding_request(username: &str, txid: [u8; 12]) -> Vec<u8> {
    let name = username.as_bytes();
    let padded = name.len().div_ceil(4) * 4;
    let mut m = Vec::with_capacity(20 + 4 + padded);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&txid);
    m.extend_from_slice(&0x0006u16.to_be_bytes());
    m.extend_from_slice(&(name.len() as u16).to_be_bytes());
    m.extend_from_slice(name);
    m.resize(20 + 4 + padded, 0);
    m
}

/// The first `a=ice-ufrag:` value and the port of the first host candidate of an answer.
fn parse_answer(sdp: &str) -> Option<(String, u16)> {
    let mut ufrag = None;
    let mut port = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if ufrag.is_none() {
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(v.split_whitespace().next()?.to_string());
            }
        }
        if port.is_none() && line.starts_with("a=candidate:") && line.contains(" typ host") {
            port = line.split(' ').nth(5).and_then(|p| p.parse::<u16>().ok());
        }
    }
    Some((ufrag?, port?))
}

/// WHIP through the proxy: the STUN `USERNAME` of the session and the answer's candidate port.
fn whip(proxy_api: u16, stream: &str, offer_ufrag: &str) -> Result<(String, u16)> {
    let (status, body) = crate::util::http_typed(
        local(proxy_api),
        "POST",
        &format!("/rtc/v1/whip/?app=live&stream={stream}"),
        "application/sdp",
        offer_sdp(offer_ufrag).as_bytes(),
    )?;
    if status != 201 {
        return Err(format!("WHIP for {stream}: HTTP {status}: {body:.200}"));
    }
    let (answer_ufrag, port) = parse_answer(&body)
        .ok_or_else(|| format!("WHIP answer without ufrag/candidate: {body:.300}"))?;
    Ok((format!("{answer_ufrag}:{offer_ufrag}"), port))
}

/// Opens `n` client sockets to `target` and sends each one STUN binding request; for the
/// proxy (`proxy`: its HTTP API and WebRTC ports) each first signals through WHIP.
fn open_sessions(n: usize, target: u16, proxy: Option<(u16, u16)>) -> Result<Vec<UdpSocket>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let offer_ufrag = format!("c{i:05}");
        let (username, port) = match proxy {
            Some((api, rtc)) => {
                let (username, port) = whip(api, &format!("bench{i}"), &offer_ufrag)?;
                if port != rtc {
                    return Err(format!(
                        "the proxy's answer names candidate port {port}, not its WebRTC port {rtc}"
                    ));
                }
                (username, port)
            }
            None => (format!("direct:{offer_ufrag}"), target),
        };
        let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("client bind: {e}"))?;
        s.connect(local(port))
            .map_err(|e| format!("client connect: {e}"))?;
        let mut txid = [0u8; 12];
        txid[..8].copy_from_slice(&(i as u64).to_be_bytes());
        s.send(&stun_binding_request(&username, txid))
            .map_err(|e| format!("STUN send: {e}"))?;
        out.push(s);
    }
    Ok(out)
}

#[derive(Default)]
struct LoadStats {
    sent: AtomicU64,
    send_short: AtomicU64,
    /// Round trips of the ping session, µs.
    rtt_us: Mutex<Vec<f64>>,
    pings_sent: AtomicU64,
}

/// The generator and ping threads; stopped and joined on drop.
struct Load {
    stats: Arc<LoadStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(
        sockets: Vec<UdpSocket>,
        ping: UdpSocket,
        o: &RtcOpts,
        tick: Duration,
        run_for: Duration,
    ) -> Result<Load> {
        let stats = Arc::new(LoadStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut load = Load {
            stats: stats.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        let deadline = Instant::now() + run_for;
        let (rate, size) = (o.rate, o.size);
        {
            let (stats, stop) = (stats.clone(), stop.clone());
            load.threads.push(
                std::thread::Builder::new()
                    .name("rtc-generator".into())
                    .spawn(move || generate(&sockets, rate, size, tick, deadline, &stats, &stop))
                    .map_err(|e| e.to_string())?,
            );
        }
        load.threads.push(
            std::thread::Builder::new()
                .name("rtc-ping".into())
                .spawn(move || ping_loop(&ping, size, deadline, &stats, &stop))
                .map_err(|e| e.to_string())?,
        );
        Ok(load)
    }

    fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Paced (rate > 0) or as-fast-as-possible load over `sockets` until `deadline` or `stop`.
fn generate(
    sockets: &[UdpSocket],
    rate: u64,
    size: usize,
    tick: Duration,
    deadline: Instant,
    stats: &LoadStats,
    stop: &AtomicBool,
) {
    let mut pkt = vec![0u8; size.max(16)];
    pkt[0] = 0x80;
    pkt[1] = LOAD_PT;
    // SAFETY: all-zero is a valid mmsghdr (no name: the sockets are connected).
    let mut hdrs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    let n = sockets.len().max(1) as u64;
    let start = Instant::now();
    let max_debt = ((rate as f64 * (tick * MAX_DEBT_TICKS).as_secs_f64()) as u64).max(1);
    // Sleep close to `tick` (the default 50 µs timer slack is a lot for a 100 µs tick).
    // SAFETY: prctl on the calling thread with an integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64);
    }
    let mut due_total = 0u64;
    let mut next = 0usize;
    let mut sent = 0u64;
    while !stop.load(Relaxed) && Instant::now() < deadline {
        let owed = if rate == 0 {
            n * AFAP_BURST
        } else {
            let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
            let owed = due.saturating_sub(due_total);
            if owed > max_debt {
                // Descheduled for a while: drop the debt beyond MAX_DEBT, no catch-up burst.
                due_total = due - max_debt;
            }
            owed.min(max_debt)
        };
        if owed == 0 {
            std::thread::sleep(tick);
            continue;
        }
        let (per, extra) = (owed / n, (owed % n) as usize);
        for j in 0..sockets.len() {
            let i = (next + j) % sockets.len();
            let k = per as usize + usize::from(j < extra);
            if k == 0 {
                continue;
            }
            let done = send_copies(sockets[i].as_raw_fd(), &pkt, k, &mut hdrs);
            sent += done as u64;
            if done < k {
                stats.send_short.fetch_add((k - done) as u64, Relaxed);
            }
        }
        next = (next + extra) % sockets.len().max(1);
        due_total += owed;
        stats.sent.store(sent, Relaxed);
        if rate > 0 {
            std::thread::sleep(tick);
        }
    }
    stats.sent.store(sent, Relaxed);
}

/// Sends a timestamped ping every [`PING_EVERY`] and records the round trip of each echo.
fn ping_loop(
    sock: &UdpSocket,
    size: usize,
    deadline: Instant,
    stats: &LoadStats,
    stop: &AtomicBool,
) {
    let mut pkt = vec![0u8; size.max(16)];
    pkt[0] = 0x80;
    pkt[1] = PING_PT;
    let mut buf = vec![0u8; BUF];
    let mut next = Instant::now();
    let mut seq: u16 = 0;
    while !stop.load(Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next {
            seq = seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            pkt[8..16].copy_from_slice(&mono_ns().to_be_bytes());
            if sock.send(&pkt).is_ok() {
                stats.pings_sent.fetch_add(1, Relaxed);
            }
            next += PING_EVERY;
            if next < now {
                next = now + PING_EVERY;
            }
            continue;
        }
        let wait = (next - now).max(Duration::from_micros(50));
        if sock.set_read_timeout(Some(wait)).is_err() {
            std::thread::sleep(wait);
            continue;
        }
        if let Ok(n) = sock.recv(&mut buf) {
            if n >= 16 && buf[1] == PING_PT {
                let sent = u64::from_be_bytes(buf[8..16].try_into().unwrap_or_default());
                let us = mono_ns().saturating_sub(sent) as f64 / 1e3;
                if let Ok(mut v) = stats.rtt_us.lock() {
                    v.push(us);
                }
            }
        }
    }
}

/// Datagrams the kernel dropped at the UDP sockets bound to local `port` (`drops` column of
/// `/proc/net/udp`: receive queue full), summed over SO_REUSEPORT siblings.
fn udp_drops(port: u16) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            (u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| f.get(12)?.parse::<u64>().ok())?
        })
        .sum()
}

fn take(v: &Mutex<Vec<f64>>) -> Vec<f64> {
    v.lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// One run per path.

struct Run {
    packets: u64,
    secs: f64,
    relay_cpu: Option<f64>,
    sent_total: u64,
    delivered_total: u64,
    oneway_us: Vec<f64>,
    rtt_us: Vec<f64>,
    sources: u64,
    /// Dropped at the relay's (or, direct, the sink's) receive queue over the whole run.
    rx_drops: u64,
    /// Datagrams the generator's `sendmmsg` did not take (socket errors).
    send_failed: u64,
}

impl Run {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.secs
    }
    fn per_core_s(&self) -> Option<f64> {
        self.relay_cpu.map(|c| self.packets as f64 / c.max(1e-3))
    }
    fn cpu_pct(&self) -> Option<f64> {
        self.relay_cpu.map(|c| 100.0 * c / self.secs)
    }
    fn loss_pct(&self) -> f64 {
        100.0 * (1.0 - self.delivered_total as f64 / self.sent_total.max(1) as f64)
    }
    fn rx_drop_pct(&self) -> f64 {
        100.0 * self.rx_drops as f64 / self.sent_total.max(1) as f64
    }
}

fn run_once(path: &RelayPath, o: &RtcOpts, tick: Duration) -> Result<Run> {
    let origin = MockOrigin::start()?;
    let mut _nginx = None;
    let mut _proxy = None;
    let (target, relay_pid, signal) = match path {
        RelayPath::Direct => (origin.udp, None, None),
        RelayPath::NginxStream => {
            let extra = o
                .nginx_responses
                .map(|n| format!("proxy_responses {n};"))
                .unwrap_or_default();
            let n = crate::srt::nginx_udp(origin.udp, &extra)?;
            let (port, pid) = (n.port, n.proc.pid());
            _nginx = Some(n);
            (port, Some(pid), None)
        }
        RelayPath::Proxy(cores) => {
            let p = SrsProxy::start(*cores)?;
            p.register_body(&origin.heartbeat())?;
            let (port, pid, api) = (p.webrtc, p.proc.pid(), p.http_api);
            _proxy = Some(p);
            (port, Some(pid), Some((api, port)))
        }
    };
    let mut sockets = open_sessions(o.sessions + 1, target, signal)?;
    let ping = sockets.pop().ok_or("no ping session")?;
    let want = (o.sessions + 1) as u64;
    wait_until(
        Duration::from_secs(10),
        "every session's STUN at the origin",
        || origin.stats.stun.load(Relaxed) >= want,
    )?;
    if signal.is_some() && origin.answers.load(Relaxed) < want {
        return Err("the mock origin answered fewer WHIP offers than sessions".into());
    }
    let run_for = o.warmup + o.window + Duration::from_secs(1);
    let mut load = Load::start(sockets, ping, o, tick, run_for)?;
    sleep_checked(o.warmup)?;
    let cpu = |pid: Option<u32>| pid.map(cpu_seconds).transpose();
    take(&origin.stats.oneway_us);
    take(&load.stats.rtt_us);
    let (c0, p0, t0) = (
        cpu(relay_pid)?,
        origin.stats.load.load(Relaxed),
        Instant::now(),
    );
    let perf = match relay_pid {
        Some(pid) if o.perf => Some(perf_record(pid, &path.tag(), o.window)?),
        _ => None,
    };
    sleep_checked(o.window)?;
    let (c1, p1, secs) = (
        cpu(relay_pid)?,
        origin.stats.load.load(Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let oneway_us = take(&origin.stats.oneway_us);
    let rtt_us = take(&load.stats.rtt_us);
    load.stop();
    if let Some(mut p) = perf {
        let _ = p.wait_exit(Duration::from_secs(30));
    }
    // Let what is in flight arrive before counting loss.
    sleep_checked(Duration::from_millis(300))?;
    if let Some(p) = _proxy.as_mut() {
        p.proc.check_alive()?;
    }
    if let Some(n) = _nginx.as_mut() {
        n.proc.check_alive()?;
    }
    Ok(Run {
        packets: p1.saturating_sub(p0),
        secs,
        relay_cpu: c0.zip(c1).map(|(a, b)| b - a),
        sent_total: load.stats.sent.load(Relaxed),
        delivered_total: origin.stats.load.load(Relaxed),
        oneway_us,
        rtt_us,
        sources: origin.stats.sources.load(Relaxed),
        rx_drops: udp_drops(target),
        send_failed: load.stats.send_short.load(Relaxed),
    })
}

pub fn run(o: &RtcOpts) -> Result<String> {
    let nginx = o.nginx && std::path::Path::new(STREAM_MODULE).is_file();
    if o.nginx && !nginx {
        eprintln!(
            "[bench] {STREAM_MODULE} missing: webrtc-relay runs without nginx (apt-get install libnginx-mod-stream)"
        );
    }
    let mut paths = vec![RelayPath::Direct];
    if nginx {
        paths.push(RelayPath::NginxStream);
    }
    paths.extend(o.proxy_cores.iter().map(|c| RelayPath::Proxy(*c)));
    // As fast as possible has no tick.
    let ticks = if o.rate == 0 {
        vec![Duration::ZERO]
    } else {
        o.ticks.clone()
    };
    let mut md = intro(o);
    for tick in ticks {
        let mut results: Vec<(RelayPath, Vec<Run>)> =
            paths.iter().map(|p| (p.clone(), vec![])).collect();
        for rep in 0..o.reps {
            let k = results.len();
            for j in 0..k {
                // Rotating order: each rep starts one path later.
                let (path, runs) = &mut results[(rep + j) % k];
                eprintln!(
                    "[bench] webrtc-relay tick {} µs, rep {}/{}: {}",
                    tick.as_micros(),
                    rep + 1,
                    o.reps,
                    path.name()
                );
                let r = run_once(path, o, tick)?;
                eprintln!(
                    "[bench]   {:.0} pkt/s, relay CPU {}, {} pkt/core-s, loss {:.2} % ({:.2} % at \
                     the relay's receive queue), {} origin-side sources, {} generator send \
                     failures",
                    r.pps(),
                    r.relay_cpu.map_or("n/a".into(), |c| format!("{c:.2} s")),
                    r.per_core_s().map_or("n/a".into(), |x| format!("{x:.0}")),
                    r.loss_pct(),
                    r.rx_drop_pct(),
                    r.sources,
                    r.send_failed
                );
                runs.push(r);
            }
        }
        md.push_str(&report(o, tick, &results));
    }
    Ok(format!("{}\n", md.trim_end()))
}

fn intro(o: &RtcOpts) -> String {
    let rate = if o.rate == 0 {
        "as fast as one generator thread can send (batches of 16 per session)".to_string()
    } else {
        format!(
            "paced at {} datagrams/s aggregate ({:.0} Mbit/s of payload; every tick the generator \
             sends what the rate owes)",
            o.rate,
            o.rate as f64 * o.size as f64 * 8.0 / 1e6,
        )
    };
    format!(
        "Load: {} sessions (one client UDP socket each), {}-byte RTP-like datagrams, {rate}, \
         `sendmmsg` per session; plus one ping session (a timestamped datagram every {} ms, echoed \
         by the origin). Mock WebRTC origin: WHIP answers + a `recvmmsg` sink thread. srs-proxy: \
         every session signals WHIP through `PROXY_HTTP_API` and sends one STUN binding request \
         (USERNAME) before media; other paths get the same STUN datagram. nginx: 1 worker, \
         `stream {{ listen … udp; proxy_pass …; {}}}`. Window {} s after {} s warm-up; medians of \
         {} runs, paths in rotating order. Relay CPU = utime + stime of the relay process over \
         the window; packets per core-second = datagrams the sink received in the window ÷ relay \
         CPU-seconds. Loss over the whole run (warm-up included); in brackets the part the \
         kernel dropped at the relay's full receive queue (`/proc/net/udp`). Latency: the ping \
         session under load, one-way client → origin and round trip (client → relay → origin → \
         relay → client), medians over runs of each run's p50/p99.\n\n",
        o.sessions,
        o.size,
        PING_EVERY.as_millis(),
        o.nginx_responses
            .map(|n| format!("proxy_responses {n}; "))
            .unwrap_or_else(|| "proxy_timeout 30s; ".into()),
        o.window.as_secs(),
        o.warmup.as_secs(),
        o.reps
    )
}

fn report(o: &RtcOpts, tick: Duration, results: &[(RelayPath, Vec<Run>)]) -> String {
    let mut md = String::new();
    if tick > Duration::ZERO {
        let _ = writeln!(
            md,
            "**Tick {} µs** (≈ {} datagrams per tick):\n",
            tick.as_micros(),
            (o.rate as f64 * tick.as_secs_f64()).round()
        );
    }
    let _ = writeln!(
        md,
        "| path | delivered pkt/s | relay CPU % of a core | **packets per core-second** | loss % (at relay rx queue) | one-way p50 / p99 µs | RTT p50 / p99 µs |\n|---|---|---|---|---|---|---|"
    );
    let mut per_core: Vec<(RelayPath, f64)> = Vec::new();
    let mut lat: Vec<(RelayPath, f64, f64)> = Vec::new();
    for (path, runs) in results {
        let med = |f: &dyn Fn(&Run) -> Option<f64>| -> f64 {
            median(&runs.iter().filter_map(f).collect::<Vec<_>>())
        };
        let pps = med(&|r| Some(r.pps()));
        let pcs = med(&|r| r.per_core_s());
        let pct = med(&|r| r.cpu_pct());
        let loss = med(&|r| Some(r.loss_pct()));
        let rx_drop = med(&|r| Some(r.rx_drop_pct()));
        let ow50 = med(&|r| Some(quantile(&r.oneway_us, 0.5)));
        let ow99 = med(&|r| Some(quantile(&r.oneway_us, 0.99)));
        let rt50 = med(&|r| Some(quantile(&r.rtt_us, 0.5)));
        let rt99 = med(&|r| Some(quantile(&r.rtt_us, 0.99)));
        if pcs.is_finite() {
            per_core.push((path.clone(), pcs));
        }
        lat.push((path.clone(), ow50, rt50));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} ({}) | {} / {} | {} / {} |",
            path.name(),
            fmt(pps, 0),
            fmt(pct, 1),
            if pcs.is_finite() {
                format!("**{}**", fmt(pcs, 0))
            } else {
                "n/a".into()
            },
            fmt(loss, 2),
            fmt(rx_drop, 2),
            fmt(ow50, 0),
            fmt(ow99, 0),
            fmt(rt50, 0),
            fmt(rt99, 0)
        );
    }
    if let Some((_, d_ow, d_rt)) = lat.iter().find(|(p, _, _)| *p == RelayPath::Direct) {
        let added: Vec<String> = lat
            .iter()
            .filter(|(p, _, _)| *p != RelayPath::Direct)
            .map(|(p, ow, rt)| {
                format!(
                    "{} +{} / +{} µs",
                    p.name(),
                    fmt(ow - d_ow, 0),
                    fmt(rt - d_rt, 0)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "\nAdded latency vs direct (one-way p50 / RTT p50): {}.",
            added.join("; ")
        );
    }
    let nginx = per_core
        .iter()
        .find(|(p, _)| *p == RelayPath::NginxStream)
        .map(|(_, v)| *v);
    if let Some(n) = nginx {
        let nginx_runs = results
            .iter()
            .find(|(p, _)| *p == RelayPath::NginxStream)
            .map(|(_, r)| r);
        for (p, v) in per_core
            .iter()
            .filter(|(p, _)| matches!(p, RelayPath::Proxy(_)))
        {
            let verdict = if v / n >= 2.0 { "PASS" } else { "FAIL" };
            let per_rep: Vec<String> = results
                .iter()
                .find(|(q, _)| q == p)
                .zip(nginx_runs)
                .map(|((_, pr), nr)| {
                    pr.iter()
                        .zip(nr.iter())
                        .filter_map(|(a, b)| Some(a.per_core_s()? / b.per_core_s()?))
                        .map(|x| format!("{x:.2}"))
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "\n{} / nginx stream = **{:.2}×** packets per core-second (target ≥ 2.00×): \
                 **{verdict}** (per rep: {})",
                p.name(),
                v / n,
                per_rep.join(", ")
            );
        }
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::webrtc::{rewrite_answer, validate_answer, StunMessage};

    #[test]
    fn stun_request_parses_with_its_username() {
        for name in ["a:b", "bench000001:c00001", "abcd:efg"] {
            let m = stun_binding_request(name, [7; 12]);
            let msg = StunMessage::parse(&m).expect("valid STUN");
            assert!(msg.is_binding_request());
            assert_eq!(msg.username().unwrap(), Some(name));
            assert_eq!(
                protocols::webrtc::classify(&m),
                protocols::webrtc::DatagramKind::Stun
            );
        }
    }

    #[test]
    fn mock_answer_is_valid_and_rewritable() {
        let sdp = answer_sdp("bench000042", 40000);
        validate_answer(&sdp).expect("valid answer");
        let rewritten = rewrite_answer(&sdp, &[40000], 18000, None).unwrap();
        validate_answer(&rewritten).unwrap();
        assert_eq!(
            parse_answer(&rewritten),
            Some(("bench000042".into(), 18000))
        );
        let key = protocols::webrtc::exchange_session_key(&offer_sdp("c00001"), &rewritten);
        assert_eq!(key.as_deref(), Some("bench000042:c00001"));
    }

    #[test]
    fn sink_counts_and_echoes_pings() {
        let origin = MockOrigin::start().unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(local(origin.udp)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.send(&stun_binding_request("x:y", [0; 12])).unwrap();
        let mut hdrs: Vec<libc::mmsghdr> =
            (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        let pkt = [0x80, LOAD_PT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(send_copies(c.as_raw_fd(), &pkt, 100, &mut hdrs), 100);
        let mut ping = [0u8; 32];
        ping[0] = 0x80;
        ping[1] = PING_PT;
        ping[8..16].copy_from_slice(&mono_ns().to_be_bytes());
        c.send(&ping).unwrap();
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).expect("echo");
        assert_eq!(&buf[..n], &ping);
        wait_until(Duration::from_secs(2), "sink counts", || {
            origin.stats.load.load(Relaxed) == 100 && origin.stats.stun.load(Relaxed) == 1
        })
        .unwrap();
        assert_eq!(origin.stats.sources.load(Relaxed), 1);
        assert_eq!(take(&origin.stats.oneway_us).len(), 1);
    }

    #[test]
    fn mock_api_answers_whip() {
        let origin = MockOrigin::start().unwrap();
        let (status, body) = crate::util::http_typed(
            local(origin.api),
            "POST",
            "/rtc/v1/whip/?app=live&stream=s",
            "application/sdp",
            offer_sdp("c1").as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 201);
        assert_eq!(
            parse_answer(&body),
            Some(("bench000000".into(), origin.udp))
        );
    }
}
