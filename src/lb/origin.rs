//! One registered origin server: what SRS told us in its heartbeat, plus the ports we route to.
//!
//! The raw endpoint strings are kept as sent (the Redis schema of spec §4.3 stores them verbatim);
//! the ports are parsed once at registration with every form of spec §3.3 / §10 #9 accepted, and
//! only the port is used: the proxy always dials the registered `ip`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Instant, SystemTime};

use protocols::endpoint::parse_endpoint;

use crate::api::register::Registration;

/// A registered origin. Immutable once built: a new heartbeat replaces the whole record (shared as
/// `Arc<Origin>` between the cores' replicas).
#[derive(Debug, Clone)]
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
    /// Wall-clock time of the heartbeat, for listings and the Redis `update_at` field.
    pub updated_at: SystemTime,
    /// Monotonic time of the heartbeat, for the liveness test (`PROXY_ORIGIN_SERVER_TTL`).
    pub seen: Instant,
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
            rtmp: reg.rtmp.clone(),
            http: reg.http.clone(),
            api: reg.api.clone(),
            srt: reg.srt.clone(),
            rtc: reg.rtc.clone(),
            updated_at,
            seen,
            is_default: false,
        }
    }

    /// Whether this origin heartbeated within `ttl` (spec §3.4).
    pub fn is_alive(&self, now: Instant, ttl: std::time::Duration) -> bool {
        self.is_default || now.saturating_duration_since(self.seen) < ttl
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

    /// A short description for log lines.
    pub fn describe(&self) -> String {
        format!(
            "origin id={} ip={} device={} rtmp={:?} http={:?} api={:?} srt={:?} rtc={:?}",
            self.id, self.ip, self.device_id, self.rtmp, self.http, self.api, self.srt, self.rtc
        )
    }
}
