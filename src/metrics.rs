//! Counters that operators and tests read, rendered as Prometheus text at `GET /metrics` on the
//! system API.
//!
//! Every core owns one [`CoreMetrics`] and is its only writer, so the counters are plain relaxed
//! atomics with no cache-line contention on the data path; the renderer reads them all.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The proxied protocols (and the two APIs), as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtmp = 0,
    HttpStream = 1,
    HttpApi = 2,
    SystemApi = 3,
    WebRtc = 4,
    Srt = 5,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::Rtmp,
        Protocol::HttpStream,
        Protocol::HttpApi,
        Protocol::SystemApi,
        Protocol::WebRtc,
        Protocol::Srt,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpStream => "http_stream",
            Protocol::HttpApi => "http_api",
            Protocol::SystemApi => "system_api",
            Protocol::WebRtc => "webrtc",
            Protocol::Srt => "srt",
        }
    }
}

/// Why a session failed, for `srs_proxy_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent bytes that break the protocol.
    ClientProtocol = 0,
    /// A phase deadline passed (handshake, command phase, origin connect).
    Timeout = 1,
    /// No origin is registered for the stream.
    NoOrigin = 2,
    /// The origin could not be reached (refused, unreachable).
    OriginUnreachable = 3,
    /// The origin answered but refused the stream (busy, not found) or broke the protocol.
    OriginRejected = 4,
    /// An I/O error on an established session (reset, broken pipe).
    Io = 5,
    /// A bug or resource limit on our side.
    Internal = 6,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::ClientProtocol,
        ErrorKind::Timeout,
        ErrorKind::NoOrigin,
        ErrorKind::OriginUnreachable,
        ErrorKind::OriginRejected,
        ErrorKind::Io,
        ErrorKind::Internal,
    ];
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::ClientProtocol => "client_protocol",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NoOrigin => "no_origin",
            ErrorKind::OriginUnreachable => "origin_unreachable",
            ErrorKind::OriginRejected => "origin_rejected",
            ErrorKind::Io => "io",
            ErrorKind::Internal => "internal",
        }
    }
}

const NP: usize = Protocol::ALL.len();
const NE: usize = ErrorKind::ALL.len();

/// One protocol's counters on one core.
#[derive(Default)]
pub struct ProtocolCounters {
    pub connections_total: AtomicU64,
    pub active: AtomicI64,
    pub client_to_origin_bytes: AtomicU64,
    pub origin_to_client_bytes: AtomicU64,
    /// Relay writes (syscalls that moved relayed bytes): bytes per write shows the batching.
    pub relay_writes: AtomicU64,
    /// RTMP relay directions that stopped parsing and spliced the rest (see docs/rtmp.md).
    pub spliced: AtomicU64,
    pub errors: [AtomicU64; NE],
}

/// One core's counters.
#[derive(Default)]
pub struct CoreMetrics {
    pub protocols: [ProtocolCounters; NP],
    pub picks_total: AtomicU64,
    pub pick_errors_total: AtomicU64,
    /// Pins moved off an origin that stopped heartbeating or refused a connection.
    pub repicks_total: AtomicU64,
    pub registrations_total: AtomicU64,
    /// SRT datagrams that matched no connection (garbage, stale peers): dropped, no state made.
    pub srt_dropped_total: AtomicU64,
    /// WebRTC datagrams from addresses no session knows: dropped, no state made.
    pub webrtc_dropped_total: AtomicU64,
    /// Redis mode: request batches this core's connection wrote and got answered.
    pub redis_round_trips_total: AtomicU64,
    /// Redis mode: load-balancer operations on Redis that failed (unreachable, timeout, error).
    pub redis_errors_total: AtomicU64,
}

impl CoreMetrics {
    pub fn proto(&self, p: Protocol) -> &ProtocolCounters {
        &self.protocols[p as usize]
    }
    pub fn error(&self, p: Protocol, kind: ErrorKind) {
        self.proto(p).errors[kind as usize].fetch_add(1, Relaxed);
    }
    /// Counts a new connection and returns a guard that keeps it in `active` until dropped.
    pub fn connection(self: &Arc<Self>, p: Protocol) -> ActiveGuard {
        let c = self.proto(p);
        c.connections_total.fetch_add(1, Relaxed);
        c.active.fetch_add(1, Relaxed);
        ActiveGuard {
            metrics: self.clone(),
            protocol: p,
        }
    }
}

/// Decrements `srs_proxy_active_connections` when the connection ends, however it ends.
pub struct ActiveGuard {
    metrics: Arc<CoreMetrics>,
    protocol: Protocol,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.metrics
            .proto(self.protocol)
            .active
            .fetch_sub(1, Relaxed);
    }
}

/// All cores' counters.
pub struct Metrics {
    pub cores: Vec<Arc<CoreMetrics>>,
}

impl Metrics {
    pub fn new(cores: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            cores: (0..cores)
                .map(|_| Arc::new(CoreMetrics::default()))
                .collect(),
        })
    }

    pub fn core(&self, core: usize) -> &Arc<CoreMetrics> {
        &self.cores[core]
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, origins: usize, pins: usize) -> String {
        let mut s = String::with_capacity(8192);
        let mut family = |name: &str, kind: &str, help: &str, f: &mut dyn FnMut(&mut String)| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            f(&mut s);
        };
        family(
            "srs_proxy_connections_total",
            "counter",
            "Client connections (or HTTP requests) accepted.",
            &mut |s| {
                self.each(|core, p, c| {
                    let v = c.connections_total.load(Relaxed);
                    let _ = writeln!(
                        s,
                        "srs_proxy_connections_total{{protocol=\"{}\",core=\"{core}\"}} {v}",
                        p.label()
                    );
                })
            },
        );
        family(
            "srs_proxy_active_connections",
            "gauge",
            "Client connections open now.",
            &mut |s| {
                self.each(|core, p, c| {
                    let v = c.active.load(Relaxed);
                    let _ = writeln!(
                        s,
                        "srs_proxy_active_connections{{protocol=\"{}\",core=\"{core}\"}} {v}",
                        p.label()
                    );
                })
            },
        );
        family(
            "srs_proxy_bytes_total",
            "counter",
            "Bytes relayed, by direction.",
            &mut |s| {
                self.each(|core, p, c| {
                    for (dir, v) in [
                        ("client_to_origin", c.client_to_origin_bytes.load(Relaxed)),
                        ("origin_to_client", c.origin_to_client_bytes.load(Relaxed)),
                    ] {
                        let _ = writeln!(
                            s,
                            "srs_proxy_bytes_total{{protocol=\"{}\",direction=\"{dir}\",core=\"{core}\"}} {v}",
                            p.label()
                        );
                    }
                })
            },
        );
        family(
            "srs_proxy_relay_writes_total",
            "counter",
            "Writes that moved relayed bytes (bytes_total / this = bytes per write).",
            &mut |s| {
                self.each(|core, p, c| {
                    let v = c.relay_writes.load(Relaxed);
                    let _ = writeln!(
                        s,
                        "srs_proxy_relay_writes_total{{protocol=\"{}\",core=\"{core}\"}} {v}",
                        p.label()
                    );
                })
            },
        );
        family(
            "srs_proxy_relays_spliced_total",
            "counter",
            "RTMP origin-to-player directions that switched to splice once the player's chunk streams matched the origin's.",
            &mut |s| {
                self.each(|core, p, c| {
                    let v = c.spliced.load(Relaxed);
                    let _ = writeln!(
                        s,
                        "srs_proxy_relays_spliced_total{{protocol=\"{}\",core=\"{core}\"}} {v}",
                        p.label()
                    );
                })
            },
        );
        family(
            "srs_proxy_errors_total",
            "counter",
            "Failed sessions, by kind.",
            &mut |s| {
                self.each(|core, p, c| {
                    for k in ErrorKind::ALL {
                        let v = c.errors[k as usize].load(Relaxed);
                        let _ = writeln!(
                            s,
                            "srs_proxy_errors_total{{protocol=\"{}\",kind=\"{}\",core=\"{core}\"}} {v}",
                            p.label(),
                            k.label()
                        );
                    }
                })
            },
        );
        let per_core = |s: &mut String, name: &str, get: &dyn Fn(&CoreMetrics) -> u64| {
            for (core, m) in self.cores.iter().enumerate() {
                let _ = writeln!(s, "{name}{{core=\"{core}\"}} {}", get(m));
            }
        };
        family(
            "srs_proxy_picks_total",
            "counter",
            "Load-balancer picks.",
            &mut |s| per_core(s, "srs_proxy_picks_total", &|m| m.picks_total.load(Relaxed)),
        );
        family(
            "srs_proxy_pick_errors_total",
            "counter",
            "Picks that found no origin.",
            &mut |s| {
                per_core(s, "srs_proxy_pick_errors_total", &|m| {
                    m.pick_errors_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_repicks_total",
            "counter",
            "Stream pins moved off a dead or refusing origin.",
            &mut |s| {
                per_core(s, "srs_proxy_repicks_total", &|m| {
                    m.repicks_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_registrations_total",
            "counter",
            "Origin registrations (heartbeats) accepted.",
            &mut |s| {
                per_core(s, "srs_proxy_registrations_total", &|m| {
                    m.registrations_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_srt_dropped_datagrams_total",
            "counter",
            "SRT datagrams dropped because they matched no connection (no state is created).",
            &mut |s| {
                per_core(s, "srs_proxy_srt_dropped_datagrams_total", &|m| {
                    m.srt_dropped_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_webrtc_dropped_datagrams_total",
            "counter",
            "WebRTC datagrams dropped because no session knows their source address (no state is created).",
            &mut |s| {
                per_core(s, "srs_proxy_webrtc_dropped_datagrams_total", &|m| {
                    m.webrtc_dropped_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_redis_round_trips_total",
            "counter",
            "Redis round trips (pipelined batches) of this core's connection (Redis load balancer).",
            &mut |s| {
                per_core(s, "srs_proxy_redis_round_trips_total", &|m| {
                    m.redis_round_trips_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_redis_errors_total",
            "counter",
            "Load-balancer operations on Redis that failed (unreachable, timeout, error reply).",
            &mut |s| {
                per_core(s, "srs_proxy_redis_errors_total", &|m| {
                    m.redis_errors_total.load(Relaxed)
                })
            },
        );
        family(
            "srs_proxy_origins",
            "gauge",
            "Registered origins (alive or not).",
            &mut |s| {
                let _ = writeln!(s, "srs_proxy_origins {origins}");
            },
        );
        family(
            "srs_proxy_stream_pins",
            "gauge",
            "Stream pins known to the answering core.",
            &mut |s| {
                let _ = writeln!(s, "srs_proxy_stream_pins {pins}");
            },
        );
        s
    }

    fn each(&self, mut f: impl FnMut(usize, Protocol, &ProtocolCounters)) {
        for (core, m) in self.cores.iter().enumerate() {
            for p in Protocol::ALL {
                f(core, p, m.proto(p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_core_and_counts_connections() {
        let m = Metrics::new(2);
        let g = m.core(1).connection(Protocol::Rtmp);
        m.core(1)
            .proto(Protocol::Rtmp)
            .client_to_origin_bytes
            .fetch_add(42, Relaxed);
        let text = m.render(3, 1);
        assert!(text.contains("srs_proxy_connections_total{protocol=\"rtmp\",core=\"1\"} 1"));
        assert!(text.contains("srs_proxy_active_connections{protocol=\"rtmp\",core=\"1\"} 1"));
        assert!(text.contains(
            "srs_proxy_bytes_total{protocol=\"rtmp\",direction=\"client_to_origin\",core=\"1\"} 42"
        ));
        assert!(text.contains("srs_proxy_origins 3"));
        drop(g);
        let text = m.render(3, 1);
        assert!(text.contains("srs_proxy_active_connections{protocol=\"rtmp\",core=\"1\"} 0"));
    }
}
