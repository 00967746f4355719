//! `rtmp-idle-memory`: M idle connections to the RTMP port, (a) silent, (b) after the RTMP
//! handshake (C0C1 → S0S1S2 → C2); the relay's RSS / Pss / Private_Dirty before and after,
//! divided by M. A fresh relay process per case (freed memory is not returned predictably).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::fanout::verdict;
use crate::peers::{Haproxy, NginxRtmp, SrsProxy};
use crate::util::{check_interrupt, fmt, local, median, mem, sleep_checked, Mem, Result};

#[derive(Debug, Clone)]
pub struct IdleOpts {
    pub conns: usize,
    pub reps: usize,
    pub proxy_cores: Vec<usize>,
    pub haproxy_threads: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Silent,
    Handshake,
}

fn open(port: u16, n: usize, mode: Mode) -> Result<Vec<TcpStream>> {
    let mut v = Vec::with_capacity(n);
    let mut c0c1 = vec![0u8; 1537];
    c0c1[0] = 3;
    for (i, b) in c0c1[9..].iter_mut().enumerate() {
        *b = (i * 7 + 1) as u8;
    }
    let mut s012 = vec![0u8; 3073];
    for i in 0..n {
        if i % 100 == 0 {
            check_interrupt()?;
        }
        let mut s = TcpStream::connect(local(port)).map_err(|e| format!("connect #{i}: {e}"))?;
        if mode == Mode::Handshake {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            s.write_all(&c0c1)
                .and_then(|_| s.read_exact(&mut s012))
                .map_err(|e| format!("handshake #{i}: {e}"))?;
            // C2 echoes S1.
            s.write_all(&s012[1..1537])
                .map_err(|e| format!("C2 #{i}: {e}"))?;
        }
        v.push(s);
    }
    Ok(v)
}

/// Per-connection growth of (RSS, Pss, Private_Dirty) in bytes.
fn per_conn(before: Mem, after: Mem, n: usize) -> [f64; 3] {
    let d = |a: u64, b: u64| (a as f64 - b as f64) / n as f64;
    [
        d(after.rss, before.rss),
        d(after.pss, before.pss),
        d(after.private_dirty, before.private_dirty),
    ]
}

fn measure(pid: u32, port: u16, opts: &IdleOpts, mode: Mode) -> Result<[f64; 3]> {
    // Warm-up: a few connections so lazily created per-core state exists before the baseline.
    drop(open(port, 8, mode)?);
    sleep_checked(Duration::from_millis(700))?;
    let before = mem(pid)?;
    let conns = open(port, opts.conns, mode)?;
    sleep_checked(Duration::from_secs(2))?;
    let after = mem(pid)?;
    // Still open? (The proxy closes an RTMP client with no publish/play after 30 s.)
    let mut probe = [0u8; 1];
    let alive = conns
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).ok();
            matches!((&**s).read(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    if alive < opts.conns * 99 / 100 {
        return Err(format!(
            "only {alive}/{} idle connections still open at measurement",
            opts.conns
        ));
    }
    drop(conns);
    Ok(per_conn(before, after, opts.conns))
}

pub fn run(opts: &IdleOpts) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} idle connections per case, {} reps (fresh process each), medians, bytes per connection. \
         (a) silent: TCP connect only; (b) after the RTMP handshake C0C1/S0S1S2/C2. HAProxy also \
         holds a connection to the origin (nginx-rtmp) per client; kernel socket memory is not in \
         any column.\n",
        opts.conns, opts.reps
    );
    md.push_str(
        "| relay | case | RSS B/conn | Pss B/conn | Private_Dirty B/conn | target ≤ 8 KiB (RSS) |\n\
         |---|---|---:|---:|---:|---|\n",
    );
    let origin = NginxRtmp::start(4096)?;
    let mut targets: Vec<(String, Option<usize>)> = opts
        .proxy_cores
        .iter()
        .map(|c| (format!("srs-proxy PROXY_CORES={c}"), Some(*c)))
        .collect();
    targets.push((format!("HAProxy nbthread {}", opts.haproxy_threads), None));
    for (name, cores) in targets {
        for (mode, mname) in [
            (Mode::Silent, "silent"),
            (Mode::Handshake, "handshake done"),
        ] {
            let mut samples = Vec::new();
            for _ in 0..opts.reps {
                let s = match cores {
                    Some(c) => {
                        let p = SrsProxy::start(c)?;
                        p.register(origin.port)?;
                        measure(p.proc.pid(), p.rtmp, opts, mode)?
                    }
                    None => {
                        let h = Haproxy::start(origin.port, opts.haproxy_threads)?;
                        measure(h.proc.pid(), h.port, opts, mode)?
                    }
                };
                samples.push(s);
            }
            let col = |i: usize| median(&samples.iter().map(|s| s[i]).collect::<Vec<_>>());
            let rss = col(0);
            eprintln!("[bench] idle {name} {mname}: {} B/conn RSS", fmt(rss, 0));
            let _ = writeln!(
                md,
                "| {name} | {mname} | {} | {} | {} | {} |",
                fmt(rss, 0),
                fmt(col(1), 0),
                fmt(col(2), 0),
                if cores.is_some() {
                    verdict(rss <= 8192.0)
                } else {
                    "(reference)"
                }
            );
        }
    }
    Ok(md)
}
