//! The SRS heartbeat (`shared/spec/srs-proxy-behaviour.md` §3.2): `POST <url>` with compact JSON,
//! keys in SRS's insertion order, on a new TCP connection per beat; the reply is read and ignored.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::sfu::Identity;

/// What one origin reports.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub url: String,
    pub interval: Duration,
    pub device_id: String,
    pub ip: String,
    pub identity: Identity,
    /// The `rtmp` entry (the proxy requires one; this peer has no RTMP).
    pub rtmp: String,
    pub api_port: u16,
    pub udp_port: u16,
}

/// `http://host:port/path` → (`host:port`, `/path`). Only plain HTTP, as SRS's own tests use.
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

impl Heartbeat {
    /// The body, byte for byte in SRS's key order (`ports on`; no `http`/`srt`: this peer has
    /// neither).
    pub fn body(&self) -> String {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        format!(
            "{{\"device_id\":{},\"ip\":{},\"server\":{},\"service\":{},\"pid\":{},\"rtmp\":[{}],\"api\":[{}],\"rtc\":[{}]}}",
            s(&self.device_id),
            s(&self.ip),
            s(&self.identity.server),
            s(&self.identity.service),
            s(&self.identity.pid),
            s(&self.rtmp),
            s(&self.api_port.to_string()),
            s(&format!("udp://0.0.0.0:{}", self.udp_port)),
        )
    }

    /// Beats forever (the process is killed to stop it). Errors are logged, like SRS's
    /// `heartbeat err=…`, and the next beat comes on schedule.
    pub fn run(self) {
        let mut beats: u64 = 0;
        let mut next = Instant::now();
        loop {
            match self.beat() {
                Ok(status) => {
                    beats += 1;
                    if beats == 1 || status != 200 {
                        tracing::info!("heartbeat #{beats} to {}: HTTP {status}", self.url);
                    }
                }
                Err(e) => tracing::warn!("heartbeat err={e} url={}", self.url),
            }
            next += self.interval;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    }

    fn beat(&self) -> Result<u16, String> {
        let (authority, path) = parse_url(&self.url)?;
        let addr: SocketAddr = authority
            .to_socket_addrs()
            .map_err(|e| format!("resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("resolve {authority}: no address"))?;
        let timeout = Duration::from_secs(3);
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| e.to_string())?;
        let body = self.body();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Keep-Alive\r\n\
             Content-Length: {}\r\nContent-Type: application/json\r\n\
             User-Agent: webrtc-test-origin/{}\r\n\r\n{body}",
            body.len(),
            env!("CARGO_PKG_VERSION"),
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        // Read the status line (and whatever fits); the reply is otherwise ignored, as SRS does.
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        while !got.windows(2).any(|w| w == b"\r\n") && got.len() < 1024 {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
        let line = String::from_utf8_lossy(&got);
        line.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no HTTP status in reply {:?}", line.lines().next()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_srs_keys_in_srs_order() {
        let hb = Heartbeat {
            url: "http://127.0.0.1:1/api/v1/srs/register".into(),
            interval: Duration::from_secs(1),
            device_id: "o1".into(),
            ip: "127.0.0.1".into(),
            identity: Identity {
                server: "o1".into(),
                service: "o1".into(),
                pid: "42".into(),
            },
            rtmp: "5000".into(),
            api_port: 5001,
            udp_port: 5002,
        };
        assert_eq!(
            hb.body(),
            r#"{"device_id":"o1","ip":"127.0.0.1","server":"o1","service":"o1","pid":"42","rtmp":["5000"],"api":["5001"],"rtc":["udp://0.0.0.0:5002"]}"#
        );
    }

    #[test]
    fn parses_register_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:12025/api/v1/srs/register").unwrap(),
            ("127.0.0.1:12025".into(), "/api/v1/srs/register".into())
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
