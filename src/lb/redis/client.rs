//! One Redis connection per core, shared by every task on that core, pipelined.
//!
//! Why this shape (architecture.md "Redis", performance-notes.md "Redis"): a Redis command costs
//! well under a microsecond at the server; the cost is the round trip. So every task on a core
//! queues its commands on one [`RedisClient`]; a single driver task takes *everything queued*,
//! writes it in one `write`, and reads the replies in order (RESP answers in request order, so a
//! FIFO of reply slots is all the bookkeeping needed). Commands that arrive while a batch is in
//! flight go out together in the next batch. [`RedisClient::round_trips`] counts the exchanges.
//!
//! A caller's commands stay contiguous on the wire (one request = one slice of the batch), so a
//! `MULTI … EXEC` or an `EVAL` sent as one [`RedisClient::pipeline`] is never interleaved with
//! another task's commands. `WATCH` is connection state and must not be used on this shared
//! connection; compare-and-set goes through `EVAL` instead (see `ops.rs`).
//!
//! Failure handling (go-redis defaults for the timeouts, spec §1.3):
//! * connect: at most [`ClientConfig::connect_timeout`] (5 s), then `AUTH` and `SELECT` in one
//!   round trip;
//! * a batch that gets no complete answer within [`ClientConfig::command_timeout`] (3 s) fails
//!   with [`RedisError::Timeout`] and the connection is dropped (a late reply would be matched
//!   to the wrong request);
//! * a dropped connection fails the batch in flight at once with [`RedisError::Unavailable`]; the
//!   next request reconnects. While reconnecting keeps failing, requests fail fast (no connect
//!   attempt) until a backoff of 100 ms doubling to 5 s has passed;
//! * before writing to a connection that sat idle, a non-blocking peek detects a peer that closed
//!   it (Redis restarted, `timeout` config), so the batch goes to a fresh connection instead of
//!   failing.
//!
//! A caller waits at most connect timeout + 2 × command timeout (its batch may queue behind one
//! in flight). The password is sent only in `AUTH` and never appears in a log line or an error.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::net::ToSocketAddrs;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::resp::{self, Cmd, Value};
use crate::config::RedisConfig;
use crate::lb::oneshot;
use crate::metrics::CoreMetrics;

/// Largest batch written at once: later requests wait for the next round trip.
const MAX_BATCH_BYTES: usize = 1 << 20;
const MAX_BATCH_REQUESTS: usize = 1024;
/// Receive buffer bound for one batch's replies (each reply is itself bounded by `resp`).
const MAX_RECV_BYTES: usize = 64 << 20;
const READ_CHUNK: usize = 16 << 10;

/// Where and how to connect. `Debug` masks the password.
#[derive(Clone)]
pub struct ClientConfig {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub db: i64,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl ClientConfig {
    /// `PROXY_REDIS_*` with go-redis's timeouts (5 s dial, 3 s read/write).
    pub fn from_config(c: &RedisConfig) -> ClientConfig {
        ClientConfig {
            host: c.host.clone(),
            port: c.port,
            password: c.password.clone(),
            db: c.db,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// `host:port` for messages (IPv6 literals bracketed).
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The four classes callers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisErrorKind {
    /// No connection (refused, reset, closed, DNS): retry later; the LB may fall back.
    Unavailable,
    /// Connected but no answer in time.
    Timeout,
    /// The byte stream or a reply's shape is wrong: a bug or not a Redis server.
    Protocol,
    /// Redis answered with an error (including a bad password or db).
    Server,
}

/// A failed Redis request. No variant ever carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    #[error("redis {addr} unavailable: {reason}; check PROXY_REDIS_HOST/PROXY_REDIS_PORT and that redis-server is running")]
    Unavailable { addr: String, reason: String },
    #[error("redis {addr} did not answer within {after:?}; check the server's load and the network to it")]
    Timeout { addr: String, after: Duration },
    #[error("redis {addr} protocol error: {reason}; is PROXY_REDIS_HOST/PROXY_REDIS_PORT a Redis server?")]
    Protocol { addr: String, reason: String },
    #[error("redis {addr} refused authentication: {reason}; check PROXY_REDIS_PASSWORD")]
    Auth { addr: String, reason: String },
    #[error("redis {addr} refused SELECT {db}: {reason}; check PROXY_REDIS_DB")]
    Select {
        addr: String,
        db: i64,
        reason: String,
    },
    #[error("redis error on {command}: {reason}")]
    Server { command: String, reason: String },
    #[error("the redis client of this core has shut down")]
    Closed,
}

impl RedisError {
    pub fn kind(&self) -> RedisErrorKind {
        match self {
            RedisError::Unavailable { .. } | RedisError::Closed => RedisErrorKind::Unavailable,
            RedisError::Timeout { .. } => RedisErrorKind::Timeout,
            RedisError::Protocol { .. } => RedisErrorKind::Protocol,
            RedisError::Auth { .. } | RedisError::Select { .. } | RedisError::Server { .. } => {
                RedisErrorKind::Server
            }
        }
    }

    /// Whether the same request may succeed later without a configuration change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            RedisErrorKind::Unavailable | RedisErrorKind::Timeout
        )
    }

    /// A per-command `-ERR` reply turned into an error; `NOAUTH` means a password is missing.
    pub fn from_reply(addr: &str, command: &str, reason: &str) -> RedisError {
        if reason.starts_with("NOAUTH") || reason.starts_with("WRONGPASS") {
            RedisError::Auth {
                addr: addr.to_string(),
                reason: reason.to_string(),
            }
        } else {
            RedisError::Server {
                command: command.to_string(),
                reason: reason.to_string(),
            }
        }
    }
}

type Reply = Result<Vec<Value>, RedisError>;

struct Request {
    bytes: Vec<u8>,
    replies: usize,
    tx: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Request>,
    waker: Option<Waker>,
    closed: bool,
}

struct Shared {
    queue: RefCell<Queue>,
    round_trips: Cell<u64>,
    connects: Cell<u64>,
    addr: String,
    /// Where round trips are also counted for `/metrics` (the core's counters).
    metrics: Option<Arc<CoreMetrics>>,
}

/// This core's Redis connection. Create it inside the core's executor; share it as
/// `Rc<RedisClient>`. Dropping it stops the driver task and closes the connection.
pub struct RedisClient {
    shared: Rc<Shared>,
    command_timeout: Duration,
}

impl Drop for RedisClient {
    fn drop(&mut self) {
        let mut q = self.shared.queue.borrow_mut();
        q.closed = true;
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }
}

impl RedisClient {
    /// Starts the driver on the current glommio executor. Connecting is lazy: the first request
    /// connects (use [`RedisClient::connect`] to check the server at startup).
    pub fn new(cfg: ClientConfig) -> RedisClient {
        RedisClient::with_metrics(cfg, None)
    }

    /// [`RedisClient::new`] that also counts its round trips in `metrics`
    /// (`srs_proxy_redis_round_trips_total`).
    pub fn with_metrics(cfg: ClientConfig, metrics: Option<Arc<CoreMetrics>>) -> RedisClient {
        let shared = Rc::new(Shared {
            queue: RefCell::default(),
            round_trips: Cell::new(0),
            connects: Cell::new(0),
            addr: cfg.addr(),
            metrics,
        });
        let command_timeout = cfg.command_timeout;
        glommio::spawn_local(drive(shared.clone(), cfg)).detach();
        RedisClient {
            shared,
            command_timeout,
        }
    }

    /// [`RedisClient::new`] plus a `PING`, as the Go proxy does at startup (a failure there is
    /// fatal: `unable to connect to redis`).
    pub async fn connect(cfg: ClientConfig) -> Result<RedisClient, RedisError> {
        let client = RedisClient::new(cfg);
        match client.query(Cmd::new("PING")).await? {
            Value::Simple(s) if s == "PONG" => Ok(client),
            Value::Error(e) => Err(RedisError::from_reply(client.addr(), "PING", &e)),
            other => Err(RedisError::Protocol {
                addr: client.addr().to_string(),
                reason: format!("PING answered {other:?}"),
            }),
        }
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Batches written and fully answered (one per round trip; handshakes not counted).
    pub fn round_trips(&self) -> u64 {
        self.shared.round_trips.get()
    }

    /// Connections opened so far (1 + reconnects).
    pub fn connects(&self) -> u64 {
        self.shared.connects.get()
    }

    /// Sends `cmds` back to back and returns their replies in order, one [`Value`] each. A
    /// command the server rejected gives a [`Value::Error`] in its place; the request as a whole
    /// fails only when the connection does. All of `cmds` share one round trip (with whatever
    /// else this core queued meanwhile).
    pub async fn pipeline(&self, cmds: &[Cmd]) -> Result<Vec<Value>, RedisError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut bytes = Vec::new();
        for c in cmds {
            c.encode_into(&mut bytes);
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut q = self.shared.queue.borrow_mut();
            q.items.push_back(Request {
                bytes,
                replies: cmds.len(),
                tx,
            });
            if let Some(w) = q.waker.take() {
                w.wake();
            }
        }
        rx.await.unwrap_or(Err(RedisError::Closed))
    }

    /// One command, one reply (a [`Value::Error`] is returned as a value, see
    /// [`RedisClient::pipeline`]).
    pub async fn query(&self, cmd: Cmd) -> Result<Value, RedisError> {
        let mut v = self.pipeline(std::slice::from_ref(&cmd)).await?;
        v.pop().ok_or_else(|| RedisError::Protocol {
            addr: self.addr().to_string(),
            reason: "no reply".into(),
        })
    }
}

/// The next batch: everything queued, up to the batch bounds. `None` once the client is gone.
async fn next_batch(shared: &Shared) -> Option<Vec<Request>> {
    poll_fn(|cx| {
        let mut q = shared.queue.borrow_mut();
        if q.items.is_empty() {
            if q.closed {
                return Poll::Ready(None);
            }
            q.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(r) = q.items.front() {
            if !batch.is_empty()
                && (bytes + r.bytes.len() > MAX_BATCH_BYTES || batch.len() >= MAX_BATCH_REQUESTS)
            {
                break;
            }
            bytes += r.bytes.len();
            // INVARIANT: `front()` just returned Some.
            batch.push(q.items.pop_front().expect("front exists"));
        }
        Poll::Ready(Some(batch))
    })
    .await
}

fn fail(batch: Vec<Request>, err: &RedisError) {
    for r in batch {
        r.tx.send(Err(err.clone()));
    }
}

async fn drive(shared: Rc<Shared>, cfg: ClientConfig) {
    let mut conn: Option<Conn> = None;
    let mut backoff = cfg.backoff_min;
    let mut down: Option<(Instant, RedisError)> = None;
    while let Some(batch) = next_batch(&shared).await {
        if conn.as_ref().is_some_and(|c| c.peer_closed()) {
            conn = None;
        }
        if conn.is_none() {
            if let Some((until, err)) = &down {
                if Instant::now() < *until {
                    fail(batch, err);
                    continue;
                }
            }
            match Conn::open(&cfg, &shared.addr).await {
                Ok(c) => {
                    shared.connects.set(shared.connects.get() + 1);
                    tracing::debug!(addr = %shared.addr, db = cfg.db, "redis connected");
                    conn = Some(c);
                    backoff = cfg.backoff_min;
                    down = None;
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    down = Some((Instant::now() + backoff, e.clone()));
                    backoff = (backoff * 2).min(cfg.backoff_max);
                    fail(batch, &e);
                    continue;
                }
            }
        }
        // INVARIANT: the branch above either set `conn` or `continue`d.
        let c = conn.as_mut().expect("connected");
        let mut bytes = Vec::with_capacity(batch.iter().map(|r| r.bytes.len()).sum());
        let mut want = 0;
        for r in &batch {
            bytes.extend_from_slice(&r.bytes);
            want += r.replies;
        }
        match c
            .exchange(&bytes, want, cfg.command_timeout, &shared.addr)
            .await
        {
            Ok(mut replies) => {
                shared.round_trips.set(shared.round_trips.get() + 1);
                if let Some(m) = &shared.metrics {
                    m.redis_round_trips_total.fetch_add(1, Relaxed);
                }
                // Hand each request its slice of the replies, in order.
                let mut rest = replies.drain(..);
                for r in batch {
                    let mine: Vec<Value> = rest.by_ref().take(r.replies).collect();
                    r.tx.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::warn!("{e}");
                conn = None;
                fail(batch, &e);
            }
        }
    }
}

/// `PROXY_REDIS_HOST`'s addresses. Blocking resolution, once per (re)connect; the host is
/// normally an IP.
fn resolve(cfg: &ClientConfig, addr: &str) -> Result<Vec<std::net::SocketAddr>, RedisError> {
    Ok((cfg.host.trim_matches(|c| c == '[' || c == ']'), cfg.port)
        .to_socket_addrs()
        .map_err(|e| RedisError::Unavailable {
            addr: addr.to_string(),
            reason: format!("cannot resolve host: {e}"),
        })?
        .collect())
}

/// The `AUTH` and `SELECT` a new connection sends first (when configured), and their names.
fn hello(cfg: &ClientConfig) -> (Vec<u8>, Vec<&'static str>) {
    let mut hello = Vec::new();
    let mut names = Vec::new();
    if let Some(pw) = &cfg.password {
        Cmd::new("AUTH").arg(pw).encode_into(&mut hello);
        names.push("AUTH");
    }
    if cfg.db != 0 {
        Cmd::new("SELECT").arg_int(cfg.db).encode_into(&mut hello);
        names.push("SELECT");
    }
    (hello, names)
}

/// The first error reply to [`hello`] as an error naming the variable to fix.
fn check_hello(
    cfg: &ClientConfig,
    addr: &str,
    names: &[&str],
    replies: Vec<Value>,
) -> Result<(), RedisError> {
    for (name, reply) in names.iter().zip(replies) {
        let Value::Error(reason) = reply else {
            continue;
        };
        // Redis never echoes the password, but make sure no reply text can leak it.
        let reason = match &cfg.password {
            Some(pw) if !pw.is_empty() => reason.replace(pw.as_str(), "***"),
            _ => reason,
        };
        return Err(if *name == "AUTH" {
            RedisError::Auth {
                addr: addr.to_string(),
                reason,
            }
        } else {
            RedisError::Select {
                addr: addr.to_string(),
                db: cfg.db,
                reason,
            }
        });
    }
    Ok(())
}

/// The startup check, before any executor runs (the Go proxy's fatal `unable to connect to
/// redis`, spec §2.1): connect, `AUTH`, `SELECT`, `PING` on a blocking socket, each step within
/// the configured timeouts. Errors are the same as the per-core client's.
pub fn check_blocking(cfg: &ClientConfig) -> Result<(), RedisError> {
    use std::io::{Read, Write};
    let addr = cfg.addr();
    let unavailable = |reason: String| RedisError::Unavailable {
        addr: addr.clone(),
        reason,
    };
    let io = |what: &str, e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            RedisError::Timeout {
                addr: addr.clone(),
                after: cfg.command_timeout,
            }
        } else {
            unavailable(format!("{what}: {e}"))
        }
    };
    let addrs = resolve(cfg, &addr)?;
    let mut last = unavailable("host resolves to no address".into());
    let mut stream = None;
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, cfg.connect_timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = unavailable(format!("connect {a}: {e}")),
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream
        .set_read_timeout(Some(cfg.command_timeout))
        .and_then(|_| stream.set_write_timeout(Some(cfg.command_timeout)))
        .map_err(|e| io("socket", e))?;
    let (mut bytes, mut names) = hello(cfg);
    Cmd::new("PING").encode_into(&mut bytes);
    names.push("PING");
    stream.write_all(&bytes).map_err(|e| io("write", e))?;
    let deadline = Instant::now() + cfg.command_timeout;
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let mut chunk = [0u8; 4096];
    while replies.len() < names.len() {
        match resp::parse(&buf) {
            Ok(Some((v, n))) => {
                buf.drain(..n);
                replies.push(v);
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                return Err(RedisError::Protocol {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })
            }
        }
        if Instant::now() >= deadline || buf.len() > MAX_RECV_BYTES {
            return Err(io("read", std::io::ErrorKind::TimedOut.into()));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(unavailable("connection closed by the server".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(io("read", e)),
        }
    }
    let pong = replies.pop();
    check_hello(cfg, &addr, &names[..names.len() - 1], replies)?;
    match pong {
        Some(Value::Simple(s)) if s == "PONG" => Ok(()),
        Some(Value::Error(e)) => Err(RedisError::from_reply(&addr, "PING", &e)),
        other => Err(RedisError::Protocol {
            addr: addr.clone(),
            reason: format!("PING answered {other:?}"),
        }),
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(cfg: &ClientConfig, addr: &str) -> Result<Conn, RedisError> {
        let unavailable = |reason: String| RedisError::Unavailable {
            addr: addr.to_string(),
            reason,
        };
        let addrs = resolve(cfg, addr)?;
        let mut last = unavailable("host resolves to no address".into());
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(a, cfg.connect_timeout).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = unavailable(format!("connect {a}: {e}")),
            }
        }
        let stream = stream.ok_or(last)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
        };
        let (hello, names) = hello(cfg);
        if names.is_empty() {
            return Ok(conn);
        }
        let replies = conn
            .exchange(&hello, names.len(), cfg.command_timeout, addr)
            .await?;
        check_hello(cfg, addr, &names, replies)?;
        Ok(conn)
    }

    /// Whether the server closed this (idle) connection: a non-blocking peek that reads 0 bytes.
    /// Pending bytes on an idle connection are a desync, treated the same way.
    fn peer_closed(&self) -> bool {
        let mut b = [0u8; 1];
        // SAFETY: recv on the stream's own open fd into a live 1-byte local buffer; MSG_PEEK
        // leaves the socket's data untouched and MSG_DONTWAIT never blocks the executor.
        let n = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            e.kind() != std::io::ErrorKind::WouldBlock
        } else {
            true
        }
    }

    /// Writes `bytes` and reads exactly `want` replies, within `timeout`.
    async fn exchange(
        &mut self,
        bytes: &[u8],
        want: usize,
        timeout: Duration,
        addr: &str,
    ) -> Result<Vec<Value>, RedisError> {
        match executors::with_timeout(timeout, self.exchange_inner(bytes, want, addr)).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::Timeout {
                addr: addr.to_string(),
                after: timeout,
            }),
        }
    }

    async fn exchange_inner(
        &mut self,
        bytes: &[u8],
        want: usize,
        addr: &str,
    ) -> Result<Vec<Value>, RedisError> {
        let io_err = |what: &str, e: std::io::Error| RedisError::Unavailable {
            addr: addr.to_string(),
            reason: format!("{what}: {e}"),
        };
        let protocol = |reason: String| RedisError::Protocol {
            addr: addr.to_string(),
            reason,
        };
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| io_err("write", e))?;
        let mut out = Vec::with_capacity(want.min(MAX_BATCH_REQUESTS));
        self.buf.clear();
        let mut used = 0;
        loop {
            while out.len() < want {
                match resp::parse(&self.buf[used..]) {
                    Ok(Some((v, n))) => {
                        used += n;
                        out.push(v);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(protocol(e.to_string())),
                }
            }
            if out.len() == want {
                if used != self.buf.len() {
                    return Err(protocol("more replies than commands sent".into()));
                }
                return Ok(out);
            }
            self.buf.drain(..used);
            used = 0;
            if self.buf.len() > MAX_RECV_BYTES {
                return Err(protocol(format!(
                    "reply larger than {MAX_RECV_BYTES} bytes"
                )));
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let n = self
                .stream
                .read(&mut self.buf[start..])
                .await
                .map_err(|e| io_err("read", e))?;
            self.buf.truncate(start + n);
            if n == 0 {
                return Err(RedisError::Unavailable {
                    addr: addr.to_string(),
                    reason: "connection closed by the server".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str) -> ClientConfig {
        ClientConfig::from_config(&RedisConfig {
            host: host.into(),
            port: 6379,
            password: Some("hunter2".into()),
            db: 2,
            key_prefix: String::new(),
        })
    }

    #[test]
    fn config_uses_go_redis_timeouts_and_masks_the_password() {
        let c = cfg("127.0.0.1");
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.command_timeout, Duration::from_secs(3));
        assert_eq!(c.addr(), "127.0.0.1:6379");
        assert_eq!(cfg("::1").addr(), "[::1]:6379");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("***"),
            "{debug}"
        );
    }

    #[test]
    fn errors_are_classified_and_name_what_to_check() {
        let e = RedisError::from_reply("h:1", "GET", "NOAUTH Authentication required.");
        assert_eq!(e.kind(), RedisErrorKind::Server);
        assert!(e.to_string().contains("PROXY_REDIS_PASSWORD"));
        let e = RedisError::from_reply("h:1", "GET", "WRONGTYPE Operation against a key");
        assert!(matches!(e, RedisError::Server { .. }));
        assert!(!e.is_retryable());
        let e = RedisError::Timeout {
            addr: "h:1".into(),
            after: Duration::from_secs(3),
        };
        assert!(e.is_retryable() && e.kind() == RedisErrorKind::Timeout);
        let e = RedisError::Select {
            addr: "h:1".into(),
            db: 99,
            reason: "ERR DB index is out of range".into(),
        };
        assert!(e.to_string().contains("PROXY_REDIS_DB"));
    }
}
