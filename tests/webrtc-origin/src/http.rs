//! A tiny HTTP/1.1 API server on `std::net`: one thread per connection, one request per
//! connection (`Connection: close`), bodies by `Content-Length` or chunked, `Expect:
//! 100-continue` answered, bounded head and body, timeouts on every read. Anything it cannot
//! parse gets `400`; nothing a client sends can panic it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use crate::sfu::{Command, Identity, OfferReply, Role};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for the SFU thread to answer.
const SFU_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query (after `?`), empty if none.
    pub query: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The first query parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }
}

/// One response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    fn json(status: u16, body: String) -> Response {
        Response::new(status, "application/json", body)
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nConnection: Close\r\nServer: webrtc-test-origin/{}\r\n\
             Access-Control-Allow-Origin: *\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            env!("CARGO_PKG_VERSION"),
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Accepts connections forever, each on its own thread.
pub fn serve(listener: TcpListener, sfu: Sender<Command>, identity: Identity) {
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let sfu = sfu.clone();
        let identity = identity.clone();
        let spawned = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || handle_connection(stream, &sfu, &identity));
        if let Err(e) = spawned {
            tracing::warn!("spawn an HTTP thread: {e}");
        }
    }
}

fn handle_connection(mut stream: TcpStream, sfu: &Sender<Command>, identity: &Identity) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let on_continue = |s: &mut TcpStream| {
        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    };
    let response = match read_request(&mut stream, on_continue) {
        Ok(request) => {
            let response = route(&request, sfu, identity);
            tracing::info!(
                "{peer} {} {}{}{} -> {}",
                request.method,
                request.path,
                if request.query.is_empty() { "" } else { "?" },
                request.query,
                response.status
            );
            response
        }
        Err(response) => {
            tracing::info!("{peer} bad request -> {}", response.status);
            response
        }
    };
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.flush();
}

/// Bytes already read past the head, then more from the stream.
struct Source<'a, S> {
    buf: Vec<u8>,
    pos: usize,
    stream: &'a mut S,
}

impl<S: Read> Source<'_, S> {
    /// Reads more; `false` at EOF or on an error (a read timeout included).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() - self.pos < n {
            if !self.fill() {
                return None;
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Some(out)
    }

    /// One CRLF-terminated line (without the CRLF), at most 1 KiB.
    fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 2;
                return Some(line);
            }
            if self.buf.len() - self.pos > 1024 || !self.fill() {
                return None;
            }
        }
    }

    /// A `Transfer-Encoding: chunked` body (extensions and trailers ignored).
    fn chunked(&mut self) -> Result<Vec<u8>, Response> {
        let bad = || Response::text(400, "bad chunked body");
        let mut body = Vec::new();
        loop {
            let line = self.line().ok_or_else(bad)?;
            let size = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
                .ok_or_else(bad)?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().ok_or_else(bad)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(Response::text(413, "body too large"));
            }
            body.extend(self.take(size).ok_or_else(bad)?);
            if !self.line().ok_or_else(bad)?.is_empty() {
                return Err(bad());
            }
        }
    }
}

/// Reads one request; `Err` is the response to send instead (400, 413, 431). Bodies come with
/// `Content-Length` or chunked; `on_continue` runs before the body is read when the client sent
/// `Expect: 100-continue` (curl does for bodies over 1 KiB).
fn read_request<S: Read>(
    stream: &mut S,
    on_continue: impl FnOnce(&mut S),
) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_string();
                let target = req.path.unwrap_or("");
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), q.to_string()),
                    None => (target.to_string(), String::new()),
                };
                if !path.starts_with('/') {
                    return Err(Response::text(400, "bad request target"));
                }
                let mut length = 0usize;
                let mut chunked = false;
                let mut expect_continue = false;
                for h in req.headers.iter() {
                    let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                    if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        if !value.eq_ignore_ascii_case("chunked") {
                            return Err(Response::text(400, "unsupported Transfer-Encoding"));
                        }
                        chunked = true;
                    } else if h.name.eq_ignore_ascii_case("content-length") {
                        length = value
                            .parse()
                            .map_err(|_| Response::text(400, "bad Content-Length"))?;
                    } else if h.name.eq_ignore_ascii_case("expect") {
                        expect_continue = value.eq_ignore_ascii_case("100-continue");
                    }
                }
                if length > MAX_BODY {
                    return Err(Response::text(413, "body too large"));
                }
                let rest = buf[head_len..].to_vec();
                if expect_continue && rest.is_empty() && (chunked || length > 0) {
                    on_continue(stream);
                }
                let mut source = Source {
                    buf: rest,
                    pos: 0,
                    stream,
                };
                let body = if chunked {
                    source.chunked()?
                } else {
                    source
                        .take(length)
                        .ok_or_else(|| Response::text(400, "body ended early"))?
                };
                return Ok(Request {
                    method,
                    path,
                    query,
                    body,
                });
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(Response::text(400, format!("bad request: {e}"))),
        }
        if buf.len() >= MAX_HEAD {
            return Err(Response::text(431, "request head too large"));
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(Response::text(400, "request head ended early")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Routes one request (the paths are accepted with and without the trailing slash).
pub fn route(request: &Request, sfu: &Sender<Command>, identity: &Identity) -> Response {
    let path = request.path.trim_end_matches('/');
    let method = request.method.as_str();
    if method == "OPTIONS" {
        let mut r = Response::empty(200);
        r.headers.push((
            "Access-Control-Allow-Methods",
            "GET, POST, DELETE, OPTIONS".into(),
        ));
        r.headers.push(("Access-Control-Allow-Headers", "*".into()));
        return r;
    }
    match (method, path) {
        ("POST", "/rtc/v1/whip") => whip_whep(request, Role::Publish, sfu),
        ("POST", "/rtc/v1/whep") => whip_whep(request, Role::Play, sfu),
        ("DELETE", "/rtc/v1/whip" | "/rtc/v1/whep") => delete(request, sfu),
        ("POST", "/rtc/v1/publish") => json_api(request, Role::Publish, sfu, identity),
        ("POST", "/rtc/v1/play") => json_api(request, Role::Play, sfu, identity),
        ("GET", "/stats") => match ask(sfu, Command::Stats) {
            Some(v) => Response::json(200, v.to_string()),
            None => Response::text(503, "the SFU thread does not answer"),
        },
        (_, "/rtc/v1/whip" | "/rtc/v1/whep" | "/rtc/v1/publish" | "/rtc/v1/play" | "/stats") => {
            Response::text(405, "method not allowed")
        }
        _ => Response::text(404, "not found"),
    }
}

/// Sends `make(reply)` to the SFU thread and waits (bounded) for the reply.
fn ask<T>(sfu: &Sender<Command>, make: impl FnOnce(Sender<T>) -> Command) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    sfu.send(make(tx)).ok()?;
    rx.recv_timeout(SFU_TIMEOUT).ok()
}

fn offer(
    role: Role,
    app: String,
    stream: String,
    sdp: String,
    sfu: &Sender<Command>,
) -> OfferReply {
    ask(sfu, |reply| Command::Offer {
        role,
        app,
        stream,
        sdp,
        reply,
    })
    .unwrap_or_else(|| Err((503, "the SFU thread does not answer".into())))
}

fn whip_whep(request: &Request, role: Role, sfu: &Sender<Command>) -> Response {
    let (Some(app), Some(stream)) = (request.param("app"), request.param("stream")) else {
        return Response::text(400, "need ?app=...&stream=...");
    };
    if app.is_empty() || stream.is_empty() {
        return Response::text(400, "empty app or stream");
    }
    let Ok(sdp) = String::from_utf8(request.body.clone()) else {
        return Response::text(400, "the offer is not UTF-8");
    };
    match offer(role, app, stream, sdp, sfu) {
        Ok(answer) => {
            let mut r = Response::new(201, "application/sdp", answer.sdp);
            r.headers.push(("Location", answer.location));
            r
        }
        Err((status, message)) => Response::text(status, message),
    }
}

fn delete(request: &Request, sfu: &Sender<Command>) -> Response {
    let Some(session) = request.param("session") else {
        return Response::text(400, "need ?session=<answer-ufrag>:<offer-ufrag>");
    };
    let token = request.param("token");
    match ask(sfu, |reply| Command::Delete {
        session,
        token,
        reply,
    }) {
        Some(true) => Response::empty(200),
        Some(false) => Response::text(404, "no such session"),
        None => Response::text(503, "the SFU thread does not answer"),
    }
}

/// SRS's legacy JSON API (`SrsGoApiRtcPublish` / `SrsGoApiRtcPlay`).
fn json_api(request: &Request, role: Role, sfu: &Sender<Command>, identity: &Identity) -> Response {
    let error = |status: u16, message: String| {
        Response::json(
            status,
            serde_json::json!({ "code": status, "error": message }).to_string(),
        )
    };
    let body: serde_json::Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => return error(400, format!("body is not JSON: {e}")),
    };
    let Some(sdp) = body.get("sdp").and_then(|v| v.as_str()) else {
        return error(400, "no \"sdp\" string".into());
    };
    let Some(url) = body.get("streamurl").and_then(|v| v.as_str()) else {
        return error(400, "no \"streamurl\" string".into());
    };
    let Some((app, stream)) = parse_stream_url(url) else {
        return error(400, format!("bad streamurl {url:?}"));
    };
    match offer(role, app, stream, sdp.to_string(), sfu) {
        Ok(answer) => {
            let s = |v: &str| serde_json::Value::from(v).to_string();
            // Keys in SRS's order.
            Response::json(
                200,
                format!(
                    "{{\"code\":0,\"server\":{},\"service\":{},\"pid\":{},\"sdp\":{},\"sessionid\":{}}}",
                    s(&identity.server),
                    s(&identity.service),
                    s(&identity.pid),
                    s(&answer.sdp),
                    s(&answer.session)
                ),
            )
        }
        Err((status, message)) => error(status, message),
    }
}

/// `webrtc://host[:port]/app[/more]/stream[?query]` → (`app[/more]`, `stream`).
pub fn parse_stream_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("webrtc://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (_host, path) = rest.split_once('/')?;
    let (app, stream) = path.trim_matches('/').rsplit_once('/')?;
    if app.is_empty() || stream.is_empty() {
        return None;
    }
    Some((app.to_string(), stream.to_string()))
}

/// The first `name=value` in a query string, percent-decoded (`+` stays `+`).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for the `Location` query).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Request, u16> {
        read_request(&mut &raw[..], |_| {}).map_err(|r| r.status)
    }

    #[test]
    fn reads_a_whip_post() {
        let r = parse(
            b"POST /rtc/v1/whip/?app=live&stream=s%201 HTTP/1.1\r\nContent-Length: 3\r\n\r\nv=0",
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/rtc/v1/whip/");
        assert_eq!(r.param("app").as_deref(), Some("live"));
        assert_eq!(r.param("stream").as_deref(), Some("s 1"));
        assert_eq!(r.body, b"v=0");
    }

    #[test]
    fn reads_chunked_bodies_and_answers_expect_continue() {
        let r = parse(
            b"POST /rtc/v1/whep HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;ext=1\r\nv=0\r\n2\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"v=0\r\n");
        let raw = b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let mut continued = false;
        // The body is not there yet: the 100 goes out first, then the read fails here.
        let got = read_request(&mut &raw[..], |_| continued = true);
        assert!(continued);
        assert_eq!(got.unwrap_err().status, 400);
    }

    #[test]
    fn bad_requests_are_400_not_panics() {
        for raw in [
            &b"\x00\x01garbage\r\n\r\n"[..],
            b"GET",
            b"POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(raw).unwrap_err(),
                400,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let huge = format!(
            "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(parse(huge.as_bytes()).unwrap_err(), 413);
        let long = format!("GET /x HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(long.as_bytes()).unwrap_err(), 431);
    }

    #[test]
    fn parses_stream_urls() {
        assert_eq!(
            parse_stream_url("webrtc://127.0.0.1:1985/live/livestream?x=1"),
            Some(("live".into(), "livestream".into()))
        );
        assert_eq!(parse_stream_url("webrtc://h/live"), None);
        assert_eq!(parse_stream_url("rtmp://h/live/s"), None);
        assert_eq!(parse_stream_url("webrtc://h//s"), None);
    }

    #[test]
    fn query_helpers_round_trip() {
        assert_eq!(query_param("a=1&b=%2", "b").as_deref(), Some("%2"));
        assert_eq!(query_param("flag&b=x", "flag").as_deref(), Some(""));
        assert_eq!(query_param("a=1", "b"), None);
        assert_eq!(percent_decode(&percent_encode("a b/é:?")), "a b/é:?");
    }
}
