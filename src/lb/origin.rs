//! One registered origin server: what SRS told us in its heartbeat, plus the ports we route to.
//!
//! The raw endpoint strings are kept as sent (the Redis schema of spec §4.3 stores them verbatim);
//! the ports are parsed once at registration with every form of spec §3.3 / §10 #9 accepted, and
//! only the port is used: the proxy always dials the registered `ip`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocols::endpoint::parse_endpoint;

use crate::api::register::Registration;

/// A registered origin, shared as `Arc<Origin>` between the cores' replicas. A heartbeat that
/// changes nothing but the time only touches the two atomic timestamps, which every core sees
/// at once; a heartbeat with new fields replaces the record (and is broadcast).
#[derive(Debug)]
pub struct Origin {
    /// `<server>-<service>-<pid>`, the Go proxy's `SRSServer.ID()`.
    pub id: String,
    pub ip: String,
    pub device_id: String,
    pub server: String,
    pub service: String,
    pub pid: String,
    pub rtmp: Vec<String>,
    pub http: Vec<String>,
    pub api: Vec<String>,
    pub srt: Vec<String>,
    pub rtc: Vec<String>,
    pub rtmp_port: Option<u16>,
    pub http_port: Option<u16>,
    pub api_port: Option<u16>,
    pub srt_port: Option<u16>,
    /// Every `rtc` entry's port: all of them are rewritten in SDP answers (spec §5.5 step 7).
    pub rtc_ports: Vec<u16>,
    /// The WebRTC UDP port media is relayed to: the first `rtc` entry that is not `tcp://`
    /// (SRS lists its UDP listener first; Go dials `RTC[0]`, spec §5.6).
    pub rtc_udp_port: Option<u16>,
    /// Wall-clock time of the last heartbeat (ns since the Unix epoch), for listings and the
    /// Redis `update_at` field.
    updated_at_ns: AtomicU64,
    /// Monotonic time of the last heartbeat (ms relative to [`epoch`]), for the liveness test
    /// (`PROXY_ORIGIN_SERVER_TTL`).
    seen_ms: AtomicI64,
    /// Monotonic time (as `seen_ms`) of the last heartbeat that reached *this* proxy's API,
    /// `i64::MIN` if none did (an origin learnt from Redis only). Redis mode: such an origin's
    /// liveness does not depend on what Redis says (see [`Origin::heard_within`]).
    heard_ms: AtomicI64,
    /// The built-in default backend (`PROXY_DEFAULT_BACKEND_ENABLED=on`): always alive.
    pub is_default: bool,
}

fn first_port(list: &[String]) -> Option<u16> {
    list.first()
        .and_then(|s| parse_endpoint(s).ok())
        .map(|e| e.port)
}

impl Origin {
    /// Builds the record from a validated registration (spec §3.1).
    pub fn from_registration(reg: &Registration, updated_at: SystemTime, seen: Instant) -> Origin {
        Origin {
            id: reg.id(),
            ip: reg.ip.clone(),
            device_id: reg.device_id.clone(),
            server: reg.server.clone(),
            service: reg.service.clone(),
            pid: reg.pid.clone(),
            rtmp_port: first_port(&reg.rtmp),
            http_port: first_port(&reg.http),
            api_port: first_port(&reg.api),
            srt_port: first_port(&reg.srt),
            rtc_ports: reg
                .rtc
                .iter()
                .filter_map(|s| parse_endpoint(s).ok())
                .map(|e| e.port)
                .collect(),
            rtc_udp_port: reg
                .rtc
                .iter()
                .filter_map(|s| parse_endpoint(s).ok())
                .find(|e| e.scheme != Some(protocols::endpoint::Transport::Tcp))
                .map(|e| e.port),
            rtmp: reg.rtmp.clone(),
            http: reg.http.clone(),
            api: reg.api.clone(),
            srt: reg.srt.clone(),
            rtc: reg.rtc.clone(),
            updated_at_ns: AtomicU64::new(unix_ns(updated_at)),
            seen_ms: AtomicI64::new(to_ms(seen)),
            heard_ms: AtomicI64::new(i64::MIN),
            is_default: false,
        }
    }

    /// Records a heartbeat that changed nothing else.
    pub fn touch(&self, updated_at: SystemTime, seen: Instant) {
        self.updated_at_ns.store(unix_ns(updated_at), Relaxed);
        self.seen_ms.fetch_max(to_ms(seen), Relaxed);
    }

    /// Records a heartbeat that reached this proxy's API (on top of [`Origin::touch`]).
    pub fn heard(&self, at: Instant) {
        self.heard_ms.fetch_max(to_ms(at), Relaxed);
    }

    /// Whether a heartbeat reached this proxy's API within `ttl` before `now`. Redis mode: the
    /// origin is then alive whatever Redis lists (an empty Redis after a restart lists nothing
    /// until the next heartbeat stores the key again).
    pub fn heard_within(&self, now: Instant, ttl: Duration) -> bool {
        let ms = self.heard_ms.load(Relaxed);
        ms != i64::MIN
            && to_ms(now).saturating_sub(ms) < i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Makes the origin look silent for `ttl` already (Redis mode: its server key is gone), on
    /// every core sharing this record; the next heartbeat or sync revives it.
    pub fn expire(&self, ttl: Duration) {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        self.seen_ms
            .store(to_ms(Instant::now()).saturating_sub(ms + 1), Relaxed);
    }

    /// Monotonic time of the last heartbeat.
    pub fn seen(&self) -> Instant {
        let ms = self.seen_ms.load(Relaxed);
        let e = epoch();
        if ms >= 0 {
            e + Duration::from_millis(ms as u64)
        } else {
            e.checked_sub(Duration::from_millis(ms.unsigned_abs()))
                .unwrap_or(e)
        }
    }

    /// Wall-clock time of the last heartbeat.
    pub fn updated_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.updated_at_ns.load(Relaxed))
    }

    /// Whether `reg` says the same as this record (apart from the time): then a heartbeat only
    /// touches the timestamps.
    pub fn same_registration(&self, reg: &Registration) -> bool {
        self.ip == reg.ip
            && self.device_id == reg.device_id
            && self.rtmp == reg.rtmp
            && self.http == reg.http
            && self.api == reg.api
            && self.srt == reg.srt
            && self.rtc == reg.rtc
    }

    /// Whether this origin heartbeated within `ttl` (spec §3.4).
    pub fn is_alive(&self, now: Instant, ttl: std::time::Duration) -> bool {
        self.is_default || now.saturating_duration_since(self.seen()) < ttl
    }

    /// The socket address for `port` on this origin's registered ip. IPv6 literals work (the Go
    /// proxy breaks on them, spec §3.1); a host name is resolved (rare: SRS sends an IP).
    pub fn socket_addr(&self, port: u16) -> std::io::Result<SocketAddr> {
        let host = self.ip.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        (host, port).to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("origin ip {:?} does not resolve", self.ip),
            )
        })
    }

    /// A copy with the same fields (each core installs its own default backend).
    pub fn duplicate(&self) -> Origin {
        Origin {
            id: self.id.clone(),
            ip: self.ip.clone(),
            device_id: self.device_id.clone(),
            server: self.server.clone(),
            service: self.service.clone(),
            pid: self.pid.clone(),
            rtmp: self.rtmp.clone(),
            http: self.http.clone(),
            api: self.api.clone(),
            srt: self.srt.clone(),
            rtc: self.rtc.clone(),
            rtmp_port: self.rtmp_port,
            http_port: self.http_port,
            api_port: self.api_port,
            srt_port: self.srt_port,
            rtc_ports: self.rtc_ports.clone(),
            rtc_udp_port: self.rtc_udp_port,
            updated_at_ns: AtomicU64::new(self.updated_at_ns.load(Relaxed)),
            seen_ms: AtomicI64::new(self.seen_ms.load(Relaxed)),
            heard_ms: AtomicI64::new(self.heard_ms.load(Relaxed)),
            is_default: self.is_default,
        }
    }

    /// A short description for log lines.
    pub fn describe(&self) -> String {
        format!(
            "origin id={} ip={} device={} rtmp={:?} http={:?} api={:?} srt={:?} rtc={:?}",
            self.id, self.ip, self.device_id, self.rtmp, self.http, self.api, self.srt, self.rtc
        )
    }
}

/// The reference point of the monotonic heartbeat times (set on first use).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn to_ms(t: Instant) -> i64 {
    let e = epoch();
    if t >= e {
        t.duration_since(e).as_millis() as i64
    } else {
        -(e.duration_since(t).as_millis() as i64)
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
