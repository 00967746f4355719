//! A minimal blocking HTTP/1.1 client over `std::net`, enough for the proxy's APIs and nginx's
//! `/stat` (Content-Length, chunked, or read-to-close bodies). Every call has a deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body (status {}): {e}; body: {}",
                self.status,
                self.text()
            )
        })
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let deadline = Instant::now() + TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut parsed: Option<Head> = None;
    loop {
        if let Some((_, headers, head_len)) = &parsed {
            if let Some(done) = body_complete(headers, &raw[*head_len..]) {
                let (status, headers, head_len) = parsed.take().expect("parsed above");
                return Ok(HttpResponse {
                    status,
                    headers,
                    body: done.unwrap_or_else(|| raw[head_len..].to_vec()),
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("HTTP {method} {addr}{path}: no complete response in {TIMEOUT:?}"),
            ));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && parsed.is_some() => break,
            Err(e) => return Err(e),
        }
        if parsed.is_none() {
            parsed = parse_head(&raw)?;
        }
    }
    // EOF: whatever we have is the body (read-to-close framing).
    let (status, headers, head_len) = match parsed.or(parse_head(&raw)?) {
        Some(p) => p,
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                "HTTP {method} {addr}{path}: connection closed before a response head ({} bytes)",
                raw.len()
            ),
            ))
        }
    };
    let body = match body_complete(&headers, &raw[head_len..]) {
        Some(Some(decoded)) => decoded,
        _ => raw[head_len..].to_vec(),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

type Head = (u16, Vec<(String, String)>, usize);

fn parse_head(raw: &[u8]) -> std::io::Result<Option<Head>> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Some((status, headers, end + 4)))
}

/// `Some(None)`: the body so far is complete as is; `Some(Some(b))`: complete, decoded to `b`
/// (chunked); `None`: need more bytes (or read to close).
fn body_complete(headers: &[(String, String)], body: &[u8]) -> Option<Option<Vec<u8>>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return (body.len() >= len).then(|| Some(body[..len].to_vec()));
    }
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return decode_chunked(body).map(Some);
    }
    None
}

fn decode_chunked(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if body.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// GET helper: panics with context on transport errors.
pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[], b"")
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// POST helper with a JSON body: panics with context on transport errors.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    http_request(addr, "POST", path, &all, body.as_bytes())
        .unwrap_or_else(|e| panic!("POST http://{addr}{path}: {e}"))
}

/// The URI lines of an HLS playlist (comments and blank lines skipped).
pub fn playlist_uris(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// The `spbhid` query parameter of a rewritten segment URI (panics without one).
pub fn spbhid_of(uri: &str) -> String {
    let q = uri.split_once('?').expect("a query").1;
    q.split('&')
        .find_map(|p| p.strip_prefix("spbhid="))
        .expect("spbhid in the query")
        .to_string()
}
