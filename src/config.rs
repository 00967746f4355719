//! Process configuration: the Go srs-proxy's `PROXY_*` environment, typed and validated once at
//! startup (spec §2, design habit #8).
//!
//! There is no config file, only the environment plus an optional `./.env` (§2.3, the G4 parser:
//! values already in the environment win, even empty ones). Every variable has the Go default
//! (§2.1, G1/G4), applied when the variable is **unset or empty**, so no variable can be set to the
//! empty string to override a non-empty default. Every invalid value is a [`ConfigError`] whose
//! Display is one line naming the variable, the bad value and the fix; the effective
//! configuration is logged once with [`Config::redacted_summary`], secrets masked (Go printed the
//! Redis password in clear).
//!
//! Differences from Go, each a compatible superset or a fatal error where Go misbehaved silently:
//!
//! * `PROXY_STATIC_FILES` defaults to `./static`, not Go's `../trunk/research`: that path only
//!   exists inside an SRS source tree, while this repository ships a `static/` folder at its root,
//!   so `make run` works from a checkout. Set the variable to keep Go's layout. `off` or `none`
//!   disables static files (requests get 404, §10 #18); any other value must be a directory.
//! * `PROXY_LOAD_BALANCER_TYPE` other than `memory`/`redis` is fatal, as in G1 (§10 #26), so a typo
//!   never silently becomes a single-node setup. Case is ignored.
//! * Listen values (§2.2): a value without `:` means all interfaces, dual-stack (`[::]:PORT`), as
//!   Go's `":" + value` does. Host names (`localhost:1935`) are resolved once, here.
//! * On/off variables accept `on|off|true|false|1|0|yes|no` and refuse anything else. Go enabled
//!   the default backend only for the exact `on` and ignored other values; refusing them catches a
//!   `PROXY_HTTP_API_AUTH_ENABLED=ture` that would otherwise leave registration open.
//! * `PROXY_REDIS_PORT`/`PROXY_REDIS_DB` are validated in memory mode too (Go checked them only when
//!   connecting): a broken value is a broken deployment waiting for the switch to Redis.
//! * `PROXY_HTTP_API_AUTH_*` follows the newest G4 (§2.1): bearer only.
//! * New: `PROXY_CORES` (worker threads, default all online CPUs), `PROXY_PIN_CORES` (pin each
//!   worker thread to its own CPU, default `on`), `PROXY_WAKE_COALESCE` (how long a woken worker
//!   that relays streams waits before handling what woke it, default `250us`, at most `10ms`),
//!   `PROXY_SCHED_BATCH` (worker threads under `SCHED_BATCH`, default `on`) and
//!   `PROXY_LOG_LEVEL` (default `info`; a level or a `tracing` filter such as
//!   `srs_proxy=debug,info`).

use protocols::endpoint::parse_endpoint;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How HTTP-FLV/TS and segment bodies are moved (`PROXY_HTTP_RELAY`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HttpRelay {
    /// `splice(2)` socket → pipe → socket, no user-space copy (measured cheaper, the default).
    Splice,
    /// A pooled 64 KiB buffer.
    Copy,
}

/// How the RTMP relay moves origin → client bytes once it may (`PROXY_RTMP_RELAY`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RtmpRelay {
    /// Rewrite chunk headers until the player's header cache matches the origin's, then
    /// `splice(2)` the origin's bytes unchanged (the default; see docs/rtmp.md).
    Splice,
    /// Rewrite every chunk header for the whole session (the relay never stops parsing).
    Rewrite,
}

/// The effective configuration. Built once by [`Config::from_env`]; read-only afterwards.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// `PROXY_HTTP_API`: WHIP/WHEP and the legacy RTC API (default `11985`).
    pub http_api: Listen,
    /// `PROXY_HTTP_SERVER`: HTTP-FLV/TS, HLS and static files (default `18080`).
    pub http_server: Listen,
    /// `PROXY_RTMP_SERVER` (default `11935`).
    pub rtmp_server: Listen,
    /// `PROXY_WEBRTC_SERVER`, UDP; its port is also the candidate port in SDP answers (default `18000`).
    pub webrtc_server: Listen,
    /// `PROXY_WEBRTC_CANDIDATE` (new, spec §10 #15 option): an IP address written into the SDP
    /// answer's rewritten host candidates, for origins that cannot advertise the proxy's public
    /// address themselves. Unset: only the port is rewritten (Go behaviour).
    pub webrtc_candidate: Option<std::net::IpAddr>,
    /// `PROXY_SRT_SERVER`, UDP (default `20080`).
    pub srt_server: Listen,
    /// `PROXY_SYSTEM_API`: origin registration (default `12025`).
    pub system_api: Listen,
    /// `PROXY_STATIC_FILES`, relative to the working directory; `None` when `off`/`none`.
    pub static_files: Option<PathBuf>,
    /// `PROXY_LOAD_BALANCER_TYPE` (default `memory`).
    pub load_balancer: LoadBalancerType,
    pub redis: RedisConfig,
    /// `PROXY_DEFAULT_BACKEND_*`: a built-in origin for debugging, `None` unless enabled.
    pub default_backend: Option<DefaultBackend>,
    /// `PROXY_GRACE_QUIT_TIMEOUT` (default 20 s): how long in-flight HTTP requests may finish.
    pub grace_quit_timeout: Duration,
    /// `PROXY_FORCE_QUIT_TIMEOUT` (default 30 s): exit no matter what, this long after shutdown starts.
    pub force_quit_timeout: Duration,
    /// `PROXY_ORIGIN_SERVER_TTL` (default 300 s, > 0): an origin without a heartbeat for this long
    /// is dead (§3.4).
    pub origin_server_ttl: Duration,
    /// `PROXY_HTTP_API_AUTH_*`: bearer token for the registration API; `None` = open (Go default).
    pub api_auth: Option<ApiAuth>,
    /// `PROXY_CORES`: worker threads, 1..=online CPUs (default: online CPUs).
    pub cores: usize,
    /// `PROXY_PIN_CORES` (default `on`): pin each worker thread to its own CPU. `off` lets the
    /// kernel place them, for hosts where other busy processes share the proxy's CPUs.
    pub pin_cores: bool,
    /// `PROXY_WAKE_COALESCE` (default [`DEFAULT_WAKE_COALESCE`], at most
    /// [`MAX_WAKE_COALESCE`]): while a worker thread relays RTMP or live HTTP-FLV/TS streams, how
    /// long it waits after a sleep before it handles what woke it, so that one wake-up handles a
    /// whole burst of media (see `docs/operations.md`). `0` handles every wake-up at once.
    pub wake_coalesce: Duration,
    /// `PROXY_SCHED_BATCH` (default `on`): run the worker threads under `SCHED_BATCH`, so that a
    /// woken worker does not preempt another process on its CPU but handles what arrived
    /// meanwhile in one pass (see `docs/operations.md`). `off`: the default policy.
    pub sched_batch: bool,
    /// `GO_PPROF`: kept for compatibility; the listen address of a debug server, `None` when empty.
    pub go_pprof: Option<String>,
    /// `PROXY_LOG_LEVEL` (default `info`).
    pub log_level: String,
    /// `PROXY_HTTP_RELAY`: how HTTP bodies are moved (default `splice`, see docs/http.md).
    pub http_relay: HttpRelay,
    /// `PROXY_RTMP_RELAY`: whether origin → player RTMP bytes may be spliced (default `splice`).
    pub rtmp_relay: RtmpRelay,
}

/// A listen address and the text it came from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Listen {
    pub addr: SocketAddr,
    /// The variable's value as given (or the default), for logs.
    pub raw: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LoadBalancerType {
    Memory,
    Redis,
}

/// `PROXY_REDIS_*`. Debug masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    /// `None` when unset or empty.
    pub password: Option<String>,
    pub db: i64,
    /// `PROXY_REDIS_KEY_PREFIX` (G4): `xxx` makes every key `xxx:srs-proxy-…` (§4.3).
    pub key_prefix: String,
}

/// The debug origin of `PROXY_DEFAULT_BACKEND_ENABLED=on` (§3.4). Port strings as configured;
/// each has been checked with [`parse_endpoint`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DefaultBackend {
    pub ip: String,
    pub rtmp: String,
    /// No default: without it, HTTP-FLV/HLS to the default backend fail (`no http stream server`).
    pub http: Option<String>,
    pub api: Option<String>,
    pub rtc: Option<String>,
    pub srt: Option<String>,
}

/// Bearer authentication for the registration API. Debug masks the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiAuth {
    pub token: String,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiAuth").field("token", &"***").finish()
    }
}

/// A configuration the proxy must not start with. Display is one line: variable, value, fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?} {problem}: {fix}")]
    Invalid {
        var: &'static str,
        value: String,
        problem: String,
        fix: String,
    },
    #[error("{var} must be set when {because}: {fix}")]
    Missing {
        var: &'static str,
        because: &'static str,
        fix: &'static str,
    },
    #[error("PROXY_STATIC_FILES={path:?} {problem} (working directory {cwd:?}): create the directory, point PROXY_STATIC_FILES at one, or set PROXY_STATIC_FILES=off")]
    StaticDir {
        path: PathBuf,
        cwd: PathBuf,
        problem: String,
    },
    #[error("cannot read {path:?}: {message}: fix its permissions or remove it")]
    Dotenv { path: PathBuf, message: String },
}

/// What [`load_dotenv`] did, for the startup log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotenvReport {
    pub path: PathBuf,
    /// `false`: no file, nothing done (not an error, §2.3).
    pub found: bool,
    /// Lines in the file.
    pub lines: usize,
    /// Keys taken from the file.
    pub applied: Vec<String>,
    /// Keys in the file that the environment already had (even empty): the environment wins.
    pub kept_from_env: Vec<String>,
    /// 1-based numbers of non-blank, non-comment lines without `KEY=`.
    pub ignored_lines: Vec<usize>,
}

// Defaults, §2.1 (G1 = G4 unless noted).
const DEFAULT_HTTP_API: &str = "11985";
const DEFAULT_HTTP_SERVER: &str = "18080";
const DEFAULT_RTMP_SERVER: &str = "11935";
const DEFAULT_WEBRTC_SERVER: &str = "18000";
const DEFAULT_SRT_SERVER: &str = "20080";
const DEFAULT_SYSTEM_API: &str = "12025";
/// Not Go's `../trunk/research`: see the module doc.
const DEFAULT_STATIC_FILES: &str = "./static";
const DEFAULT_REDIS_HOST: &str = "127.0.0.1";
const DEFAULT_REDIS_PORT: &str = "6379";
const DEFAULT_BACKEND_IP: &str = "127.0.0.1";
const DEFAULT_BACKEND_RTMP: &str = "1935";
const DEFAULT_BACKEND_API: &str = "1985";
const DEFAULT_BACKEND_RTC: &str = "8000";
const DEFAULT_BACKEND_SRT: &str = "10080";
const DEFAULT_GRACE_QUIT_TIMEOUT: &str = "20s";
const DEFAULT_FORCE_QUIT_TIMEOUT: &str = "30s";
const DEFAULT_ORIGIN_SERVER_TTL: &str = "300s";
const DEFAULT_LOG_LEVEL: &str = "info";
/// `PROXY_WAKE_COALESCE` when unset (see `docs/operations.md`, "Wake-up coalescing").
pub const DEFAULT_WAKE_COALESCE: &str = "250us";
/// The largest `PROXY_WAKE_COALESCE`: above it the wait is latency no burst needs.
pub const MAX_WAKE_COALESCE: Duration = Duration::from_millis(10);

impl Config {
    /// Reads `./.env` (G4 parser, environment wins) and then the environment. Does not modify the
    /// process environment: the file's values are an overlay consulted only for unset variables,
    /// so this is safe to call after threads have started.
    pub fn from_env(online_cpus: usize) -> Result<(Config, DotenvReport), ConfigError> {
        let path = Path::new(".env");
        let mut overlay: HashMap<String, String> = HashMap::new();
        let in_env = |k: &str| std::env::var_os(k).is_some();
        let report = {
            let overlay_ref = std::cell::RefCell::new(&mut overlay);
            load_dotenv(
                path,
                |k, v| {
                    overlay_ref.borrow_mut().insert(k.to_owned(), v.to_owned());
                },
                // A key repeated in the file keeps its first value, as with G4's os.Setenv.
                |k| in_env(k) || overlay_ref.borrow().contains_key(k),
            )
            .map_err(|e| ConfigError::Dotenv {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        let lookup = |k: &str| match std::env::var_os(k) {
            Some(v) => Some(v.to_string_lossy().into_owned()),
            None => overlay.get(k).cloned(),
        };
        let config = Config::from_lookup(lookup, online_cpus)?;
        Ok((config, report))
    }

    /// Builds and validates the configuration from `lookup` (the testable core of `from_env`).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        online_cpus: usize,
    ) -> Result<Config, ConfigError> {
        // §2.1: unset and empty are the same.
        let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
        let get_or = |var: &str, default: &str| get(var).unwrap_or_else(|| default.to_owned());
        let online_cpus = online_cpus.max(1);

        let listen = |var: &'static str, default: &str| parse_listen(var, &get_or(var, default));
        let http_api = listen("PROXY_HTTP_API", DEFAULT_HTTP_API)?;
        let http_server = listen("PROXY_HTTP_SERVER", DEFAULT_HTTP_SERVER)?;
        let rtmp_server = listen("PROXY_RTMP_SERVER", DEFAULT_RTMP_SERVER)?;
        let webrtc_server = listen("PROXY_WEBRTC_SERVER", DEFAULT_WEBRTC_SERVER)?;
        let srt_server = listen("PROXY_SRT_SERVER", DEFAULT_SRT_SERVER)?;
        let webrtc_candidate = match get("PROXY_WEBRTC_CANDIDATE") {
            None => None,
            Some(raw) => Some(raw.trim().parse::<std::net::IpAddr>().map_err(|_| {
                invalid(
                    "PROXY_WEBRTC_CANDIDATE",
                    &raw,
                    "is not an IP address",
                    "use the proxy's public IPv4 or IPv6 address, e.g. 203.0.113.7, or leave it unset",
                )
            })?),
        };
        let system_api = listen("PROXY_SYSTEM_API", DEFAULT_SYSTEM_API)?;

        let static_raw = get_or("PROXY_STATIC_FILES", DEFAULT_STATIC_FILES);
        let static_files =
            if static_raw.eq_ignore_ascii_case("off") || static_raw.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(PathBuf::from(static_raw))
            };

        let lb_raw = get_or("PROXY_LOAD_BALANCER_TYPE", "memory");
        let load_balancer = one_of(
            "PROXY_LOAD_BALANCER_TYPE",
            &lb_raw,
            &[
                ("memory", LoadBalancerType::Memory),
                ("redis", LoadBalancerType::Redis),
            ],
            "is not a load balancer type",
            "use memory (one proxy) or redis (several proxies sharing state)",
        )?;

        let redis_host = get_or("PROXY_REDIS_HOST", DEFAULT_REDIS_HOST);
        if redis_host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'/' || b == b'@')
        {
            return Err(invalid(
                "PROXY_REDIS_HOST",
                &redis_host,
                "is not a host name or IP address",
                "use e.g. 127.0.0.1 or redis.internal",
            ));
        }
        let redis_port_raw = get_or("PROXY_REDIS_PORT", DEFAULT_REDIS_PORT);
        let redis_port = parse_port(&redis_port_raw)
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                invalid(
                    "PROXY_REDIS_PORT",
                    &redis_port_raw,
                    "is not a TCP port",
                    "use a number in 1..=65535, e.g. 6379",
                )
            })?;
        let redis_db_raw = get_or("PROXY_REDIS_DB", "0");
        let redis_db = redis_db_raw
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| {
                invalid(
                    "PROXY_REDIS_DB",
                    &redis_db_raw,
                    "is not a Redis database number",
                    "use 0 or more, e.g. 0",
                )
            })?;
        let redis = RedisConfig {
            host: redis_host,
            port: redis_port,
            password: get("PROXY_REDIS_PASSWORD"),
            db: redis_db,
            key_prefix: get("PROXY_REDIS_KEY_PREFIX").unwrap_or_default(),
        };

        let default_backend = if parse_on_off(
            "PROXY_DEFAULT_BACKEND_ENABLED",
            get("PROXY_DEFAULT_BACKEND_ENABLED"),
        )? {
            let ip = get_or("PROXY_DEFAULT_BACKEND_IP", DEFAULT_BACKEND_IP);
            if ip.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
                return Err(invalid(
                    "PROXY_DEFAULT_BACKEND_IP",
                    &ip,
                    "is not an IP address or host name",
                    "use e.g. 127.0.0.1",
                ));
            }
            let port = |var: &'static str, value: String| -> Result<String, ConfigError> {
                parse_endpoint(&value).map(|_| value.clone()).map_err(|e| {
                    invalid(
                        var,
                        &value,
                        &format!("is not a port ({e})"),
                        "use a port such as 1935",
                    )
                })
            };
            let optional = |var: &'static str, default: Option<&str>| {
                get(var)
                    .or_else(|| default.map(str::to_owned))
                    .map(|v| port(var, v))
                    .transpose()
            };
            Some(DefaultBackend {
                ip,
                rtmp: port(
                    "PROXY_DEFAULT_BACKEND_RTMP",
                    get_or("PROXY_DEFAULT_BACKEND_RTMP", DEFAULT_BACKEND_RTMP),
                )?,
                http: optional("PROXY_DEFAULT_BACKEND_HTTP", None)?,
                api: optional("PROXY_DEFAULT_BACKEND_API", Some(DEFAULT_BACKEND_API))?,
                rtc: optional("PROXY_DEFAULT_BACKEND_RTC", Some(DEFAULT_BACKEND_RTC))?,
                srt: optional("PROXY_DEFAULT_BACKEND_SRT", Some(DEFAULT_BACKEND_SRT))?,
            })
        } else {
            None
        };

        let duration = |var: &'static str, default: &str| -> Result<Duration, ConfigError> {
            let raw = get_or(var, default);
            parse_go_duration(&raw).map_err(|e| duration_error(var, &raw, &e))
        };
        let grace_quit_timeout = duration("PROXY_GRACE_QUIT_TIMEOUT", DEFAULT_GRACE_QUIT_TIMEOUT)?;
        let force_quit_timeout = duration("PROXY_FORCE_QUIT_TIMEOUT", DEFAULT_FORCE_QUIT_TIMEOUT)?;
        let origin_server_ttl = duration("PROXY_ORIGIN_SERVER_TTL", DEFAULT_ORIGIN_SERVER_TTL)?;
        if origin_server_ttl.is_zero() {
            // G4: zero or negative is fatal; an origin must live at least one heartbeat.
            return Err(invalid(
                "PROXY_ORIGIN_SERVER_TTL",
                &get_or("PROXY_ORIGIN_SERVER_TTL", DEFAULT_ORIGIN_SERVER_TTL),
                "must be positive",
                "use a duration above the SRS heartbeat interval, e.g. 300s",
            ));
        }

        let api_auth = parse_api_auth(&get)?;

        let cores = match get("PROXY_CORES") {
            None => online_cpus,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=online_cpus).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "PROXY_CORES",
                        &raw,
                        "is not a usable number of cores",
                        &format!("use 1..={online_cpus} (online CPUs), or leave it unset for all"),
                    )
                })?,
        };

        let pin_cores = match get("PROXY_PIN_CORES") {
            None => true,
            some => parse_on_off("PROXY_PIN_CORES", some)?,
        };

        let sched_batch = match get("PROXY_SCHED_BATCH") {
            None => true,
            some => parse_on_off("PROXY_SCHED_BATCH", some)?,
        };

        let wake_coalesce = duration("PROXY_WAKE_COALESCE", DEFAULT_WAKE_COALESCE)?;
        if wake_coalesce > MAX_WAKE_COALESCE {
            return Err(invalid(
                "PROXY_WAKE_COALESCE",
                &get_or("PROXY_WAKE_COALESCE", DEFAULT_WAKE_COALESCE),
                "is too long",
                "use 0s to 10ms, e.g. 200us",
            ));
        }

        let log_level = get_or("PROXY_LOG_LEVEL", DEFAULT_LOG_LEVEL);
        validate_log_level(&log_level)?;

        let rtmp_raw = get_or("PROXY_RTMP_RELAY", "splice");
        let rtmp_relay = one_of(
            "PROXY_RTMP_RELAY",
            &rtmp_raw,
            &[
                ("splice", RtmpRelay::Splice),
                ("rewrite", RtmpRelay::Rewrite),
            ],
            "is not an RTMP relay mode",
            "use splice (default) or rewrite",
        )?;

        let relay_raw = get_or("PROXY_HTTP_RELAY", "splice");
        let http_relay = one_of(
            "PROXY_HTTP_RELAY",
            &relay_raw,
            &[("splice", HttpRelay::Splice), ("copy", HttpRelay::Copy)],
            "is not an HTTP body relay mode",
            "use splice (default) or copy",
        )?;

        Ok(Config {
            http_api,
            http_server,
            rtmp_server,
            webrtc_server,
            webrtc_candidate,
            srt_server,
            system_api,
            static_files,
            load_balancer,
            redis,
            default_backend,
            grace_quit_timeout,
            force_quit_timeout,
            origin_server_ttl,
            api_auth,
            cores,
            pin_cores,
            wake_coalesce,
            sched_batch,
            go_pprof: get("GO_PPROF"),
            log_level,
            http_relay,
            rtmp_relay,
        })
    }

    /// One line with every effective value, for the startup log. Secrets show as `***`.
    pub fn redacted_summary(&self) -> String {
        let listen = |l: &Listen| format!("{} ({})", esc(&l.raw), l.addr);
        let opt = |o: &Option<String>| o.as_deref().map(esc).unwrap_or_default();
        let secret = |o: bool| if o { "***" } else { "" };
        let mut parts = vec![
            format!("PROXY_HTTP_API={}", listen(&self.http_api)),
            format!("PROXY_HTTP_SERVER={}", listen(&self.http_server)),
            format!("PROXY_RTMP_SERVER={}", listen(&self.rtmp_server)),
            format!("PROXY_WEBRTC_SERVER={}", listen(&self.webrtc_server)),
            format!(
                "PROXY_WEBRTC_CANDIDATE={}",
                self.webrtc_candidate
                    .map(|ip| ip.to_string())
                    .unwrap_or_default()
            ),
            format!("PROXY_SRT_SERVER={}", listen(&self.srt_server)),
            format!("PROXY_SYSTEM_API={}", listen(&self.system_api)),
            format!(
                "PROXY_STATIC_FILES={}",
                self.static_files
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), |p| esc(&p.to_string_lossy()))
            ),
            format!(
                "PROXY_LOAD_BALANCER_TYPE={}",
                match self.load_balancer {
                    LoadBalancerType::Memory => "memory",
                    LoadBalancerType::Redis => "redis",
                }
            ),
            format!(
                "PROXY_HTTP_RELAY={}",
                match self.http_relay {
                    HttpRelay::Splice => "splice",
                    HttpRelay::Copy => "copy",
                }
            ),
            format!(
                "PROXY_RTMP_RELAY={}",
                match self.rtmp_relay {
                    RtmpRelay::Splice => "splice",
                    RtmpRelay::Rewrite => "rewrite",
                }
            ),
            format!("PROXY_REDIS_HOST={}", esc(&self.redis.host)),
            format!("PROXY_REDIS_PORT={}", self.redis.port),
            format!(
                "PROXY_REDIS_PASSWORD={}",
                secret(self.redis.password.is_some())
            ),
            format!("PROXY_REDIS_DB={}", self.redis.db),
            format!("PROXY_REDIS_KEY_PREFIX={}", esc(&self.redis.key_prefix)),
        ];
        match &self.default_backend {
            None => parts.push("PROXY_DEFAULT_BACKEND_ENABLED=off".into()),
            Some(b) => parts.extend([
                "PROXY_DEFAULT_BACKEND_ENABLED=on".into(),
                format!("PROXY_DEFAULT_BACKEND_IP={}", esc(&b.ip)),
                format!("PROXY_DEFAULT_BACKEND_RTMP={}", esc(&b.rtmp)),
                format!("PROXY_DEFAULT_BACKEND_HTTP={}", opt(&b.http)),
                format!("PROXY_DEFAULT_BACKEND_API={}", opt(&b.api)),
                format!("PROXY_DEFAULT_BACKEND_RTC={}", opt(&b.rtc)),
                format!("PROXY_DEFAULT_BACKEND_SRT={}", opt(&b.srt)),
            ]),
        }
        parts.extend([
            format!(
                "PROXY_GRACE_QUIT_TIMEOUT={}",
                format_go_duration(self.grace_quit_timeout)
            ),
            format!(
                "PROXY_FORCE_QUIT_TIMEOUT={}",
                format_go_duration(self.force_quit_timeout)
            ),
            format!(
                "PROXY_ORIGIN_SERVER_TTL={}",
                format_go_duration(self.origin_server_ttl)
            ),
        ]);
        match &self.api_auth {
            None => parts.push("PROXY_HTTP_API_AUTH_ENABLED=off".into()),
            Some(_) => parts.extend([
                "PROXY_HTTP_API_AUTH_ENABLED=on".into(),
                "PROXY_HTTP_API_AUTH_TYPE=bearer".into(),
                "PROXY_HTTP_API_AUTH_TOKEN=***".into(),
            ]),
        }
        parts.extend([
            format!("PROXY_CORES={}", self.cores),
            format!(
                "PROXY_PIN_CORES={}",
                if self.pin_cores { "on" } else { "off" }
            ),
            format!(
                "PROXY_WAKE_COALESCE={}",
                format_go_duration(self.wake_coalesce)
            ),
            format!(
                "PROXY_SCHED_BATCH={}",
                if self.sched_batch { "on" } else { "off" }
            ),
            format!("GO_PPROF={}", opt(&self.go_pprof)),
            format!("PROXY_LOG_LEVEL={}", esc(&self.log_level)),
        ]);
        parts.join(", ")
    }

    /// The static directory must exist (Go: `os.Stat`, fatal) unless disabled. Separate from
    /// parsing so that tests and tools can build a `Config` without touching the file system.
    pub fn validate_static_dir(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.static_files else {
            return Ok(());
        };
        let problem = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => "is not a directory".to_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => "does not exist".to_owned(),
            Err(e) => format!("cannot be read ({e})"),
        };
        Err(ConfigError::StaticDir {
            path: path.clone(),
            cwd: std::env::current_dir().unwrap_or_default(),
            problem,
        })
    }
}

/// The value of `choices` whose name equals `raw` (ASCII case-insensitive), else an
/// [`invalid`] error naming `var`.
fn one_of<T: Copy>(
    var: &'static str,
    raw: &str,
    choices: &[(&str, T)],
    problem: &str,
    fix: &str,
) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| raw.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
        .ok_or_else(|| invalid(var, raw, problem, fix))
}

fn invalid(var: &'static str, value: &str, problem: &str, fix: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        problem: problem.to_owned(),
        fix: fix.to_owned(),
    }
}

fn duration_error(var: &'static str, value: &str, err: &str) -> ConfigError {
    if err.starts_with("missing unit") {
        invalid(var, value, "is not a Go duration", "use a unit, e.g. 20s")
    } else {
        invalid(
            var,
            value,
            &format!("is not a Go duration ({err})"),
            "use a non-negative number with a unit, e.g. 20s, 1m30s or 500ms",
        )
    }
}

/// Keeps a logged value on one line.
fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

fn parse_on_off(var: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    let Some(v) = value else {
        return Ok(false);
    };
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(var, &v, "is not on or off", "use on or off")),
    }
}

/// §2.1 [G4-latest]: enabled without a type, a type other than bearer, or no token are fatal.
fn parse_api_auth(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<ApiAuth>, ConfigError> {
    if !parse_on_off(
        "PROXY_HTTP_API_AUTH_ENABLED",
        get("PROXY_HTTP_API_AUTH_ENABLED"),
    )? {
        return Ok(None);
    }
    let Some(kind) = get("PROXY_HTTP_API_AUTH_TYPE") else {
        return Err(ConfigError::Missing {
            var: "PROXY_HTTP_API_AUTH_TYPE",
            because: "PROXY_HTTP_API_AUTH_ENABLED is on",
            fix: "set PROXY_HTTP_API_AUTH_TYPE=bearer",
        });
    };
    if !kind.eq_ignore_ascii_case("bearer") {
        return Err(invalid(
            "PROXY_HTTP_API_AUTH_TYPE",
            &kind,
            "is not supported: the proxy only supports bearer",
            "set PROXY_HTTP_API_AUTH_TYPE=bearer",
        ));
    }
    let Some(token) = get("PROXY_HTTP_API_AUTH_TOKEN") else {
        return Err(ConfigError::Missing {
            var: "PROXY_HTTP_API_AUTH_TOKEN",
            because: "PROXY_HTTP_API_AUTH_ENABLED is on",
            fix: "set it to the token SRS sends (SRS_HEARTBEAT_AUTH_TOKEN)",
        });
    };
    Ok(Some(ApiAuth { token }))
}

/// `PROXY_LOG_LEVEL`: a bare word must be a level; anything with `=`/`,`/`[` is a `tracing`
/// directive list, checked by the subscriber when logging starts.
fn validate_log_level(value: &str) -> Result<(), ConfigError> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    if value.contains(['=', ',', '[']) || LEVELS.iter().any(|l| l.eq_ignore_ascii_case(value)) {
        return Ok(());
    }
    Err(invalid(
        "PROXY_LOG_LEVEL",
        value,
        "is not a log level",
        "use trace, debug, info, warn, error or off (or a filter such as srs_proxy=debug,info)",
    ))
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// §2.2: no `:` → all interfaces, dual-stack; else `host:port`, `[v6]:port`, `:port`. Port 0
/// (an ephemeral port, useful in tests) is allowed as in Go.
fn parse_listen(var: &'static str, raw: &str) -> Result<Listen, ConfigError> {
    let fail = |problem: &str| {
        invalid(
            var,
            raw,
            problem,
            "use a port (11935), host:port (127.0.0.1:11935) or [ipv6]:port ([::]:11935)",
        )
    };
    let any = |port: u16| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    let addr = if !raw.contains(':') {
        any(parse_port(raw).ok_or_else(|| fail("is not a port"))?)
    } else if raw.starts_with('[') {
        raw.parse::<SocketAddr>()
            .map_err(|_| fail("is not a valid [ipv6]:port"))?
    } else {
        // INVARIANT: `raw` contains ':' in this branch.
        let (host, port) = raw.rsplit_once(':').unwrap_or((raw, ""));
        let port = parse_port(port).ok_or_else(|| fail("has no valid port"))?;
        if host.is_empty() {
            any(port)
        } else if host.contains(':') {
            return Err(fail("has an IPv6 address without brackets"));
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            SocketAddr::new(ip, port)
        } else if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            // Checked before resolving, so garbage never reaches the resolver.
            return Err(fail("has an invalid host name"));
        } else {
            // A host name, resolved once at startup like Go's ResolveTCPAddr; IPv4 first, as Go
            // prefers it for dual-stack names such as localhost.
            let addrs: Vec<SocketAddr> = (host, port)
                .to_socket_addrs()
                .map_err(|e| fail(&format!("cannot be resolved ({e})")))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| fail("resolves to no address"))?
        }
    };
    Ok(Listen {
        addr,
        raw: raw.to_owned(),
    })
}

/// Go `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units ns, us, µs, μs, ms, s, m,
/// h; `"0"` alone needs no unit. Negative durations are refused (every caller needs `>= 0`), as
/// are values above Go's limit (about 292 years). Errors read like Go's.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let quoted = format!("{s:?}");
    let mut rest = s;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration {quoted}"));
    }
    const MAX_NS: u128 = i64::MAX as u128;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("invalid duration {quoted}"));
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "" => return Err(format!("missing unit in duration {quoted}")),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => return Err(format!("unknown unit {other:?} in duration {quoted}")),
        };
        let overflow = || format!("invalid duration {quoted}");
        // 20 digits exceed i64::MAX ns in any unit; refusing them early keeps u128 math safe.
        if int_part.len() > 20 {
            return Err(overflow());
        }
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut value = whole.checked_mul(unit_ns).ok_or_else(overflow)?;
        // Like Go's leadingFraction, digits past what can matter are ignored.
        let frac_digits = &frac_part[..frac_part.len().min(24)];
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| overflow())?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            // frac < scale ≤ 1e24 and unit_ns ≤ 3.6e12: the product fits in u128 (< 3.6e36).
            value += frac * unit_ns / scale;
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= MAX_NS)
            .ok_or_else(overflow)?;
        rest = after;
    }
    if negative && total != 0 {
        return Err(format!("negative duration {quoted} is not allowed"));
    }
    // `total` ≤ i64::MAX, so it fits in u64.
    Ok(Duration::from_nanos(total as u64))
}

/// Go `Duration.String()` for the startup log: `20s`, `5m0s`, `1h2m3.5s`, `300ms`.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |value: u128, unit: u128| -> String {
        let whole = value / unit;
        let rem = value % unit;
        if rem == 0 {
            return whole.to_string();
        }
        let width = unit.to_string().len() - 1;
        let digits = format!("{rem:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let hours = ns / 3_600_000_000_000;
    let minutes = ns / 60_000_000_000 % 60;
    let seconds = frac(ns % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// The G4 `.env` parser (§2.3, §10 #27): lines split on `\n` (a trailing `\r` dropped), trimmed;
/// blank and `#` lines skipped; an `export ` prefix stripped; split on the first `=`. Values:
/// `'…'` literal, `"…"` with `\n`, `\r`, `\"`, `\\` unescaped, otherwise cut at the first ` #`.
/// A quoted value may be followed by ` # comment`. `set` is called only for keys for which
/// `is_set` is false: the environment wins, even when its value is empty. A missing file is not an
/// error (`found: false`).
pub fn load_dotenv(
    path: &Path,
    mut set: impl FnMut(&str, &str),
    is_set: impl Fn(&str) -> bool,
) -> io::Result<DotenvReport> {
    let mut report = DotenvReport {
        path: path.to_owned(),
        ..DotenvReport::default()
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e),
    };
    report.found = true;
    let text = String::from_utf8_lossy(&bytes);
    for (index, line) in text.split('\n').enumerate() {
        report.lines = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(r) if r.starts_with([' ', '\t']) => r.trim_start(),
            _ => line,
        };
        let Some((key, value)) = line.split_once('=') else {
            report.ignored_lines.push(index + 1);
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            report.ignored_lines.push(index + 1);
            continue;
        }
        let value = dotenv_value(value.trim());
        if is_set(key) {
            report.kept_from_env.push(key.to_owned());
        } else {
            set(key, &value);
            report.applied.push(key.to_owned());
        }
    }
    // A final newline does not make one more line.
    if text.ends_with('\n') {
        report.lines -= 1;
    }
    Ok(report)
}

fn dotenv_value(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'') {
        if let Some(end) = inner.find('\'') {
            if is_comment_or_empty(&inner[end + 1..]) {
                return inner[..end].to_owned();
            }
        }
    }
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                '"' if is_comment_or_empty(&inner[i + 1..]) => return out,
                '"' => break,
                c => out.push(c),
            }
        }
        // No proper closing quote: fall through and keep the text literally, like G4.
    }
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_owned(),
        None => v.to_owned(),
    }
}

fn is_comment_or_empty(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn build(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(env(pairs), 4)
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        build(pairs).expect_err("should be invalid").to_string()
    }

    fn any(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
    }

    #[test]
    fn webrtc_candidate_is_an_optional_ip() {
        assert_eq!(build(&[]).unwrap().webrtc_candidate, None);
        let c = build(&[("PROXY_WEBRTC_CANDIDATE", " 203.0.113.7 ")]).unwrap();
        assert_eq!(c.webrtc_candidate, Some("203.0.113.7".parse().unwrap()));
        assert!(c
            .redacted_summary()
            .contains("PROXY_WEBRTC_CANDIDATE=203.0.113.7"));
        let c = build(&[("PROXY_WEBRTC_CANDIDATE", "2001:db8::7")]).unwrap();
        assert_eq!(c.webrtc_candidate, Some("2001:db8::7".parse().unwrap()));
    }

    #[test]
    fn http_relay_mode_is_validated() {
        let c = build(&[]).expect("defaults are valid");
        assert_eq!(c.http_relay, HttpRelay::Splice);
        let c = build(&[("PROXY_HTTP_RELAY", "copy")]).expect("copy is valid");
        assert_eq!(c.http_relay, HttpRelay::Copy);
        let e = err(&[("PROXY_HTTP_RELAY", "sendfile")]);
        assert!(
            e.contains("PROXY_HTTP_RELAY") && e.contains("splice"),
            "{e}"
        );
    }

    #[test]
    fn rtmp_relay_mode_is_validated() {
        assert_eq!(build(&[]).unwrap().rtmp_relay, RtmpRelay::Splice);
        let c = build(&[("PROXY_RTMP_RELAY", "REWRITE")]).expect("rewrite is valid");
        assert_eq!(c.rtmp_relay, RtmpRelay::Rewrite);
        assert!(c.redacted_summary().contains("PROXY_RTMP_RELAY=rewrite"));
        let e = err(&[("PROXY_RTMP_RELAY", "copy")]);
        assert!(
            e.contains("PROXY_RTMP_RELAY") && e.contains("rewrite"),
            "{e}"
        );
    }

    #[test]
    fn defaults_match_spec_2_1() {
        let c = build(&[]).unwrap();
        let listens = [
            (&c.http_api, 11985),
            (&c.http_server, 18080),
            (&c.rtmp_server, 11935),
            (&c.webrtc_server, 18000),
            (&c.srt_server, 20080),
            (&c.system_api, 12025),
        ];
        for (listen, port) in listens {
            assert_eq!(listen.addr, any(port));
            assert_eq!(listen.raw, port.to_string());
        }
        assert_eq!(c.static_files, Some(PathBuf::from("./static")));
        assert_eq!(c.load_balancer, LoadBalancerType::Memory);
        assert_eq!(
            c.redis,
            RedisConfig {
                host: "127.0.0.1".into(),
                port: 6379,
                password: None,
                db: 0,
                key_prefix: String::new(),
            }
        );
        assert_eq!(c.default_backend, None);
        assert_eq!(c.grace_quit_timeout, Duration::from_secs(20));
        assert_eq!(c.force_quit_timeout, Duration::from_secs(30));
        assert_eq!(c.origin_server_ttl, Duration::from_secs(300));
        assert_eq!(c.api_auth, None);
        assert_eq!(c.cores, 4);
        assert!(c.pin_cores, "executors are pinned by default");
        assert!(c.sched_batch, "workers run under SCHED_BATCH by default");
        assert_eq!(
            c.wake_coalesce,
            parse_go_duration(DEFAULT_WAKE_COALESCE).unwrap()
        );
        assert_eq!(c.go_pprof, None);
        assert_eq!(c.log_level, "info");
    }

    #[test]
    fn empty_values_mean_default() {
        let vars = [
            "PROXY_HTTP_API",
            "PROXY_RTMP_SERVER",
            "PROXY_STATIC_FILES",
            "PROXY_LOAD_BALANCER_TYPE",
            "PROXY_REDIS_PORT",
            "PROXY_GRACE_QUIT_TIMEOUT",
            "PROXY_ORIGIN_SERVER_TTL",
            "PROXY_CORES",
            "PROXY_LOG_LEVEL",
            "PROXY_DEFAULT_BACKEND_ENABLED",
            "PROXY_HTTP_API_AUTH_ENABLED",
        ];
        let pairs: Vec<(&str, &str)> = vars.iter().map(|v| (*v, "")).collect();
        assert_eq!(build(&pairs).unwrap(), build(&[]).unwrap());
    }

    #[test]
    fn default_backend_defaults_when_enabled() {
        let c = build(&[("PROXY_DEFAULT_BACKEND_ENABLED", "on")]).unwrap();
        assert_eq!(
            c.default_backend,
            Some(DefaultBackend {
                ip: "127.0.0.1".into(),
                rtmp: "1935".into(),
                http: None,
                api: Some("1985".into()),
                rtc: Some("8000".into()),
                srt: Some("10080".into()),
            })
        );
        let c = build(&[
            ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
            ("PROXY_DEFAULT_BACKEND_HTTP", "8080"),
            ("PROXY_DEFAULT_BACKEND_RTC", "udp://8000"),
        ])
        .unwrap();
        let b = c.default_backend.unwrap();
        assert_eq!(
            (b.http.as_deref(), b.rtc.as_deref()),
            (Some("8080"), Some("udp://8000"))
        );
        assert_eq!(
            build(&[("PROXY_DEFAULT_BACKEND_ENABLED", "off")])
                .unwrap()
                .default_backend,
            None
        );
    }

    #[test]
    fn explicit_values_are_used() {
        let c = build(&[
            ("PROXY_HTTP_API", "127.0.0.1:1985"),
            ("PROXY_RTMP_SERVER", "[::1]:1935"),
            ("PROXY_SYSTEM_API", ":12026"),
            ("PROXY_STATIC_FILES", "off"),
            ("PROXY_LOAD_BALANCER_TYPE", "Redis"),
            ("PROXY_REDIS_HOST", "redis.internal"),
            ("PROXY_REDIS_PORT", "6380"),
            ("PROXY_REDIS_PASSWORD", "hunter2"),
            ("PROXY_REDIS_DB", "3"),
            ("PROXY_REDIS_KEY_PREFIX", "xxx"),
            ("PROXY_GRACE_QUIT_TIMEOUT", "1.5s"),
            ("PROXY_FORCE_QUIT_TIMEOUT", "1m"),
            ("PROXY_ORIGIN_SERVER_TTL", "45s"),
            ("PROXY_CORES", "2"),
            ("PROXY_PIN_CORES", "off"),
            ("PROXY_WAKE_COALESCE", "250us"),
            ("PROXY_SCHED_BATCH", "off"),
            ("GO_PPROF", ":6060"),
            ("PROXY_LOG_LEVEL", "srs_proxy=debug,info"),
        ])
        .unwrap();
        assert_eq!(c.http_api.addr, "127.0.0.1:1985".parse().unwrap());
        assert_eq!(c.rtmp_server.addr, "[::1]:1935".parse().unwrap());
        assert_eq!(c.system_api.addr, any(12026));
        assert_eq!(c.static_files, None);
        assert_eq!(c.load_balancer, LoadBalancerType::Redis);
        assert_eq!(c.redis.password.as_deref(), Some("hunter2"));
        assert_eq!(
            (c.redis.port, c.redis.db, c.redis.key_prefix.as_str()),
            (6380, 3, "xxx")
        );
        assert_eq!(c.grace_quit_timeout, Duration::from_millis(1500));
        assert_eq!(c.force_quit_timeout, Duration::from_secs(60));
        assert_eq!(c.origin_server_ttl, Duration::from_secs(45));
        assert_eq!(c.cores, 2);
        assert!(!c.pin_cores);
        assert_eq!(c.wake_coalesce, Duration::from_micros(250));
        assert!(!c.sched_batch);
        assert_eq!(c.go_pprof.as_deref(), Some(":6060"));
        assert_eq!(c.log_level, "srs_proxy=debug,info");
        assert_eq!(
            build(&[("PROXY_STATIC_FILES", "NONE")])
                .unwrap()
                .static_files,
            None
        );
    }

    #[test]
    fn listen_rule_of_spec_2_2() {
        let cases = [
            ("11935", any(11935)),
            (":11935", any(11935)),
            ("0.0.0.0:11935", "0.0.0.0:11935".parse().unwrap()),
            ("127.0.0.1:12025", "127.0.0.1:12025".parse().unwrap()),
            ("[::]:18080", any(18080)),
            ("[::1]:0", "[::1]:0".parse().unwrap()),
            ("localhost:1935", "127.0.0.1:1935".parse().unwrap()),
        ];
        for (raw, want) in cases {
            let l = parse_listen("PROXY_RTMP_SERVER", raw).unwrap();
            assert_eq!((l.addr, l.raw.as_str()), (want, raw), "{raw}");
        }
        for raw in [
            "abc",
            "70000",
            "1.2.3.4:",
            "1.2.3.4:x",
            "::1:80",
            "[::1]",
            "[zz]:80",
            "-1",
            "tcp://:1935",
        ] {
            let e = parse_listen("PROXY_RTMP_SERVER", raw)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("PROXY_RTMP_SERVER={raw:?} ")), "{e}");
            assert!(e.contains("use a port (11935)"), "{e}");
        }
    }

    #[test]
    fn each_invalid_variable_is_named_with_value_and_fix() {
        let cases: [(&str, &str, &str); 21] = [
            ("PROXY_HTTP_API", "x", "use a port"),
            ("PROXY_HTTP_SERVER", "99999", "use a port"),
            ("PROXY_WEBRTC_SERVER", "1.2.3.4:", "use a port"),
            ("PROXY_SRT_SERVER", "a b:1", "use a port"),
            ("PROXY_SYSTEM_API", "[::1", "use a port"),
            ("PROXY_LOAD_BALANCER_TYPE", "redsi", "use memory"),
            ("PROXY_REDIS_HOST", "a b", "use e.g."),
            ("PROXY_REDIS_PORT", "0", "1..=65535"),
            ("PROXY_REDIS_DB", "one", "use 0 or more"),
            ("PROXY_REDIS_DB", "-1", "use 0 or more"),
            ("PROXY_FORCE_QUIT_TIMEOUT", "30", "use a unit, e.g. 20s"),
            ("PROXY_ORIGIN_SERVER_TTL", "0s", "e.g. 300s"),
            ("PROXY_ORIGIN_SERVER_TTL", "-5m", "non-negative"),
            ("PROXY_CORES", "0", "use 1..=4"),
            ("PROXY_CORES", "5", "use 1..=4"),
            ("PROXY_PIN_CORES", "sometimes", "use on or off"),
            ("PROXY_SCHED_BATCH", "batch", "use on or off"),
            ("PROXY_WAKE_COALESCE", "11ms", "use 0s to 10ms"),
            ("PROXY_WAKE_COALESCE", "200", "use a unit"),
            ("PROXY_LOG_LEVEL", "verbose", "use trace"),
            (
                "PROXY_WEBRTC_CANDIDATE",
                "proxy.example.com",
                "public IPv4 or IPv6",
            ),
        ];
        for (var, value, fix) in cases {
            let e = err(&[(var, value)]);
            assert!(e.starts_with(&format!("{var}={value:?} ")), "{e}");
            assert!(e.contains(fix), "{e}");
            assert!(!e.contains('\n'));
        }
        assert_eq!(
            err(&[("PROXY_GRACE_QUIT_TIMEOUT", "20")]),
            r#"PROXY_GRACE_QUIT_TIMEOUT="20" is not a Go duration: use a unit, e.g. 20s"#
        );
        assert!(err(&[("PROXY_DEFAULT_BACKEND_ENABLED", "maybe")]).contains("use on or off"));
        let backend = |var: &'static str, value: &'static str| {
            err(&[("PROXY_DEFAULT_BACKEND_ENABLED", "on"), (var, value)])
        };
        assert!(backend("PROXY_DEFAULT_BACKEND_RTMP", "x")
            .starts_with("PROXY_DEFAULT_BACKEND_RTMP=\"x\""));
        assert!(backend("PROXY_DEFAULT_BACKEND_HTTP", "0")
            .starts_with("PROXY_DEFAULT_BACKEND_HTTP=\"0\""));
        assert!(backend("PROXY_DEFAULT_BACKEND_IP", "a/b").starts_with("PROXY_DEFAULT_BACKEND_IP="));
        // A multi-line value stays on one line.
        assert!(!err(&[("PROXY_HTTP_API", "a\nb")]).contains('\n'));
    }

    #[test]
    fn api_auth_rules_of_g4() {
        assert_eq!(
            build(&[("PROXY_HTTP_API_AUTH_TOKEN", "t")])
                .unwrap()
                .api_auth,
            None
        );
        let e = err(&[("PROXY_HTTP_API_AUTH_ENABLED", "on")]);
        assert!(e.starts_with("PROXY_HTTP_API_AUTH_TYPE must be set"), "{e}");
        let e = err(&[
            ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
            ("PROXY_HTTP_API_AUTH_TYPE", "basic"),
        ]);
        assert!(e.contains("only supports bearer"), "{e}");
        let e = err(&[
            ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
            ("PROXY_HTTP_API_AUTH_TYPE", "bearer"),
        ]);
        assert!(
            e.starts_with("PROXY_HTTP_API_AUTH_TOKEN must be set"),
            "{e}"
        );
        let e = err(&[("PROXY_HTTP_API_AUTH_ENABLED", "ture")]);
        assert!(e.starts_with("PROXY_HTTP_API_AUTH_ENABLED=\"ture\""), "{e}");
        let c = build(&[
            ("PROXY_HTTP_API_AUTH_ENABLED", "true"),
            ("PROXY_HTTP_API_AUTH_TYPE", "Bearer"),
            ("PROXY_HTTP_API_AUTH_TOKEN", "s3cret"),
        ])
        .unwrap();
        assert_eq!(
            c.api_auth.as_ref().map(|a| a.token.as_str()),
            Some("s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn summary_is_one_line_with_secrets_masked() {
        let c = build(&[
            ("PROXY_REDIS_PASSWORD", "hunter2"),
            ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
            ("PROXY_HTTP_API_AUTH_TYPE", "bearer"),
            ("PROXY_HTTP_API_AUTH_TOKEN", "s3cret"),
            ("PROXY_REDIS_KEY_PREFIX", "a\nb"),
            ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
        ])
        .unwrap();
        let s = c.redacted_summary();
        assert!(!s.contains('\n'));
        assert!(!s.contains("hunter2") && !s.contains("s3cret"), "{s}");
        for needle in [
            "PROXY_HTTP_API=11985 ([::]:11985)",
            "PROXY_STATIC_FILES=./static",
            "PROXY_REDIS_PASSWORD=***",
            "PROXY_HTTP_API_AUTH_TOKEN=***",
            "PROXY_GRACE_QUIT_TIMEOUT=20s",
            "PROXY_ORIGIN_SERVER_TTL=5m0s",
            "PROXY_DEFAULT_BACKEND_RTC=8000",
            "PROXY_DEFAULT_BACKEND_HTTP=,",
            "PROXY_CORES=4",
            "PROXY_LOG_LEVEL=info",
        ] {
            assert!(s.contains(needle), "{needle} not in {s}");
        }
        assert!(build(&[])
            .unwrap()
            .redacted_summary()
            .contains("PROXY_REDIS_PASSWORD=, "));
    }

    #[test]
    fn static_dir_must_exist_unless_disabled() {
        let dir =
            std::env::temp_dir().join(format!("srs-proxy-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let with = |p: &Path| build(&[("PROXY_STATIC_FILES", &p.to_string_lossy())]).unwrap();
        assert_eq!(with(&dir).validate_static_dir(), Ok(()));
        let missing = dir.join("missing");
        let e = with(&missing)
            .validate_static_dir()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not exist") && e.contains("PROXY_STATIC_FILES=off"),
            "{e}"
        );
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(with(&file)
            .validate_static_dir()
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        assert_eq!(
            build(&[("PROXY_STATIC_FILES", "off")])
                .unwrap()
                .validate_static_dir(),
            Ok(())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn go_duration_vectors() {
        let ok: [(&str, Duration); 17] = [
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("20s", Duration::from_secs(20)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("1h2m3.5s", Duration::from_millis(3_723_500)),
            ("500us", Duration::from_micros(500)),
            ("500µs", Duration::from_micros(500)),
            ("500μs", Duration::from_micros(500)),
            ("7ns", Duration::from_nanos(7)),
            (".5s", Duration::from_millis(500)),
            ("5.s", Duration::from_secs(5)),
            ("+10m", Duration::from_secs(600)),
            ("1.000000001s", Duration::from_nanos(1_000_000_001)),
            ("2562047h", Duration::from_secs(2_562_047 * 3600)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        let bad = [
            "",
            "20",
            "s",
            ".s",
            "-",
            "1d",
            "1 s",
            "1s ",
            "--1s",
            "-1s",
            "3000000h",
            "1e3s",
            "9223372036854775808ns",
            "99999999999999999999999h",
        ];
        for s in bad {
            assert!(parse_go_duration(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_go_duration("20"),
            Err(r#"missing unit in duration "20""#.into())
        );
    }

    #[test]
    fn go_duration_format_round_trips() {
        for (d, s) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(20), "20s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(3_723_500), "1h2m3.5s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(7), "7ns"),
        ] {
            assert_eq!(format_go_duration(d), s);
            assert_eq!(parse_go_duration(s), Ok(d));
        }
    }

    fn dotenv(content: &[u8], preset: &[(&str, &str)]) -> (HashMap<String, String>, DotenvReport) {
        let dir = std::env::temp_dir().join(format!(
            "srs-proxy-dotenv-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(&path, content).unwrap();
        let mut map: HashMap<String, String> = preset
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cell = std::cell::RefCell::new(&mut map);
        let report = load_dotenv(
            &path,
            |k, v| {
                cell.borrow_mut().insert(k.into(), v.into());
            },
            |k| cell.borrow().contains_key(k),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (map, report)
    }

    #[test]
    fn dotenv_parser_vectors() {
        let file = concat!(
            "# comment\r\n",
            "\r\n",
            "PLAIN=value\r\n",
            "  SPACED  =  spaced value  \n",
            "export EXPORTED=1\n",
            "SINGLE='lit \\n # x'\n",
            "DOUBLE=\"a\\nb\\r\\\"q\\\"\\\\z\\t\"\n",
            "COMMENTED=v # trailing\n",
            "HASH=v#not-a-comment\n",
            "QUOTED_COMMENT=\"q v\" # c\n",
            "UNCLOSED=\"abc\n",
            "EMPTY=\n",
            "EQUALS=a=b=c\n",
            "no equals line\n",
            "=novalue\n",
            "DUP=first\n",
            "DUP=second\n",
            "exporter=x\n",
        );
        let (m, r) = dotenv(file.as_bytes(), &[]);
        let get = |k: &str| m.get(k).map(String::as_str);
        assert_eq!(get("PLAIN"), Some("value"));
        assert_eq!(get("SPACED"), Some("spaced value"));
        assert_eq!(get("EXPORTED"), Some("1"));
        assert_eq!(get("SINGLE"), Some("lit \\n # x"));
        assert_eq!(get("DOUBLE"), Some("a\nb\r\"q\"\\z\\t"));
        assert_eq!(get("COMMENTED"), Some("v"));
        assert_eq!(get("HASH"), Some("v#not-a-comment"));
        assert_eq!(get("QUOTED_COMMENT"), Some("q v"));
        assert_eq!(get("UNCLOSED"), Some("\"abc"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("EQUALS"), Some("a=b=c"));
        assert_eq!(get("DUP"), Some("first"));
        assert_eq!(get("exporter"), Some("x"));
        assert!(r.found);
        assert_eq!(r.lines, 18);
        assert_eq!(r.ignored_lines, [14, 15]);
        assert_eq!(r.kept_from_env, ["DUP"]);
    }

    #[test]
    fn environment_wins_over_dotenv_even_when_empty() {
        let (m, r) = dotenv(
            b"PROXY_RTMP_SERVER=1935\nPROXY_HTTP_API=1985\n",
            &[("PROXY_HTTP_API", "")],
        );
        assert_eq!(m.get("PROXY_HTTP_API").map(String::as_str), Some(""));
        assert_eq!(m.get("PROXY_RTMP_SERVER").map(String::as_str), Some("1935"));
        assert_eq!(r.applied, ["PROXY_RTMP_SERVER"]);
        assert_eq!(r.kept_from_env, ["PROXY_HTTP_API"]);
        // Then the empty env value means "default" (§2.1), not the .env value.
        let c = Config::from_lookup(|k| m.get(k).cloned(), 1).unwrap();
        assert_eq!(c.http_api.addr, any(11985));
        assert_eq!(c.rtmp_server.addr, any(1935));
    }

    #[test]
    fn missing_dotenv_is_not_an_error() {
        let r = load_dotenv(
            Path::new("/nonexistent/srs-proxy/.env"),
            |_, _| {},
            |_| false,
        )
        .unwrap();
        assert!(!r.found);
        assert_eq!(r.lines, 0);
    }
}
