//! A real `redis-server` on 127.0.0.1 with an ephemeral port (test-peers.md: `--save ''
//! --appendonly no`, in the foreground), killed on drop, plus a blocking raw-RESP client for
//! inspecting and writing keys independently of the proxy's own client.

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use srs_proxy::lb::redis::resp::{self, Cmd, Value};
use srs_proxy::lb::redis::ClientConfig;

use super::proc::{die_with_parent, terminate};
use super::{free_tcp_port, require_program, tail_file, TestDir};

/// Runs `f` on a fresh glommio executor (its own thread) and returns its result.
pub fn on_executor<T, Fut>(f: impl FnOnce() -> Fut + Send + 'static) -> T
where
    T: Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move { f().await })
        .expect("executor starts")
        .join()
        .expect("executor finishes")
}

/// A client config for the test server on `port`, with short timeouts and backoff.
pub fn client_config(port: u16) -> ClientConfig {
    ClientConfig {
        host: "127.0.0.1".into(),
        port,
        password: None,
        db: 0,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    }
}

pub struct RedisServer {
    pub port: u16,
    pub password: Option<String>,
    child: Option<Child>,
    dir: TestDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_tcp_port(), None)
    }

    /// With `--requirepass`.
    pub fn start_with_password(password: &str) -> RedisServer {
        RedisServer::start_on(free_tcp_port(), Some(password))
    }

    /// On a given port (to restart a stopped server where clients expect it).
    pub fn start_on(port: u16, password: Option<&str>) -> RedisServer {
        require_program("redis-server");
        let dir = TestDir::new("redis");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path());
        if let Some(pw) = password {
            cmd.args(["--requirepass", pw]);
        }
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("redis.log")).expect("redis.log"))
            .stderr(Stdio::null());
        let child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server: {e}"));
        let mut server = RedisServer {
            port,
            password: password.map(str::to_string),
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "redis-server exited ({status}) on port {port}: {}",
                    tail_file(&server.dir.path().join("redis.log"), 20)
                );
            }
            if server
                .try_cmd(&["PING"])
                .is_ok_and(|v| v == Value::Simple("PONG".into()))
            {
                return server;
            }
            if Instant::now() >= deadline {
                server.stop();
                panic!(
                    "redis-server on port {port} not ready in 10 s: {}",
                    tail_file(&server.dir.path().join("redis.log"), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server now (SIGTERM, then SIGKILL), keeping the handle.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
    }

    /// One command on a fresh connection (AUTH first when a password is set).
    pub fn try_cmd(&self, args: &[&str]) -> std::io::Result<Value> {
        let cmds: Vec<Vec<&[u8]>> = vec![args.iter().map(|a| a.as_bytes()).collect()];
        let mut v = self.try_raw(&cmds)?;
        Ok(v.pop().unwrap_or(Value::Nil))
    }

    /// Binary-safe commands, pipelined on one fresh connection; one reply each.
    pub fn try_raw(&self, cmds: &[Vec<&[u8]>]) -> std::io::Result<Vec<Value>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut out = Vec::new();
        let mut want = cmds.len();
        if let Some(pw) = &self.password {
            Cmd::new("AUTH").arg(pw).encode_into(&mut out);
            want += 1;
        }
        for c in cmds {
            let mut cmd = Cmd::new(std::str::from_utf8(c[0]).expect("command name"));
            for a in &c[1..] {
                cmd = cmd.arg(a);
            }
            cmd.encode_into(&mut out);
        }
        s.write_all(&out)?;
        let mut buf = Vec::new();
        let mut replies = Vec::new();
        let mut chunk = [0u8; 16384];
        while replies.len() < want {
            if let Some((v, n)) = resp::parse(&buf).map_err(std::io::Error::other)? {
                buf.drain(..n);
                replies.push(v);
                continue;
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if self.password.is_some() {
            replies.remove(0);
        }
        Ok(replies)
    }

    /// Writes `bytes` verbatim (hand-encoded RESP) and returns the raw answer up to `want`
    /// replies, for tests that must not depend on our encoder.
    pub fn raw_bytes(&self, bytes: &[u8], want: usize) -> Vec<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect redis");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(bytes).expect("write");
        let mut buf = Vec::new();
        let mut replies = Vec::new();
        let mut chunk = [0u8; 4096];
        while replies.len() < want {
            if let Some((v, n)) = resp::parse(&buf).expect("valid RESP") {
                buf.drain(..n);
                replies.push(v);
                continue;
            }
            let n = s.read(&mut chunk).expect("read");
            assert!(n > 0, "redis closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
        replies
    }

    /// One command; panics naming it on any failure.
    pub fn cmd(&self, args: &[&str]) -> Value {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// `GET key` as text (`None`: missing).
    pub fn get(&self, key: &str) -> Option<String> {
        match self.cmd(&["GET", key]) {
            Value::Nil => None,
            Value::Bulk(b) => Some(String::from_utf8(b).expect("utf-8 value")),
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// `TTL key` in seconds (-1: no TTL, -2: missing).
    pub fn ttl(&self, key: &str) -> i64 {
        match self.cmd(&["TTL", key]) {
            Value::Int(i) => i,
            other => panic!("TTL {key}: {other:?}"),
        }
    }

    /// `PTTL key` in milliseconds.
    pub fn pttl(&self, key: &str) -> i64 {
        match self.cmd(&["PTTL", key]) {
            Value::Int(i) => i,
            other => panic!("PTTL {key}: {other:?}"),
        }
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = match self.cmd(&["KEYS", "*"]) {
            Value::Array(v) => v
                .into_iter()
                .map(|k| match k {
                    Value::Bulk(b) => String::from_utf8(b).expect("utf-8 key"),
                    other => panic!("KEYS item {other:?}"),
                })
                .collect(),
            other => panic!("KEYS: {other:?}"),
        };
        keys.sort();
        keys
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[harness] redis-server :{} log tail:\n{}",
                self.port,
                tail_file(&self.dir.path().join("redis.log"), 20)
            );
        }
        self.stop();
    }
}
