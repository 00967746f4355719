//! The proxy's own HTTP endpoints: the system API (origin registration, versions, metrics,
//! listings), and the version endpoints of the HTTP API and HTTP stream ports (spec §3, §5.5,
//! §5.8).
//!
//! A small HTTP/1.1 server: keep-alive, pipelining (requests are answered in order), bodies by
//! `Content-Length` or chunked, bounded heads (431) and bodies (413), a deadline on every read
//! (slowloris), `400` and a close on garbage.

pub mod register;
pub mod routes;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use protocols::http::{write_response_head, Limits, RequestHead};
use tracing::{debug, Instrument};

use crate::http::conn::{read_request_body, read_request_head, HeadRead};
pub use crate::http::conn::{HEAD_TIMEOUT, IDLE_TIMEOUT};
use crate::metrics::{ErrorKind, Protocol};
use crate::runtime::CoreState;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `PROXY_SYSTEM_API`: registration, versions, metrics, listings.
    System,
    /// `PROXY_HTTP_API`: versions, WHIP/WHEP and the legacy RTC API ([`crate::webrtc::signal`]).
    HttpApi,
    /// `PROXY_HTTP_SERVER`: only its `/api/v1/versions` answer (the port is served by
    /// [`crate::http`]).
    HttpServer,
}

impl Port {
    fn protocol(self) -> Protocol {
        match self {
            Port::System => Protocol::SystemApi,
            Port::HttpApi => Protocol::HttpApi,
            Port::HttpServer => Protocol::HttpStream,
        }
    }
}

/// Largest request body accepted (a heartbeat is under 2 KiB, with summaries).
pub const MAX_BODY: usize = 1 << 20;

/// A request with its whole body.
pub struct Request {
    pub head: RequestHead,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

/// A response header: static names and values (the usual case) cost no allocation.
pub type Header = (Cow<'static, str>, Cow<'static, str>);

/// A response; `Content-Length` is added from the body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<Header>,
    /// Borrowed for fixed bodies (the heartbeat answer), owned otherwise.
    pub body: Cow<'static, [u8]>,
}

fn str_bytes(s: Cow<'static, str>) -> Cow<'static, [u8]> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

impl Response {
    pub fn json(status: u16, body: impl Into<Cow<'static, str>>) -> Response {
        Response {
            status,
            headers: vec![
                ("Server".into(), crate::version::SERVER.into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: str_bytes(body.into()),
        }
    }
    pub fn text(status: u16, body: impl Into<Cow<'static, str>>) -> Response {
        Response {
            status,
            headers: vec![
                ("Server".into(), crate::version::SERVER.into()),
                ("Content-Type".into(), "text/plain; charset=utf-8".into()),
            ],
            body: str_bytes(body.into()),
        }
    }
    /// A JSON error body `{"code":<status>,"error":"..."}`.
    pub fn error(status: u16, msg: &str) -> Response {
        Response::json(
            status,
            serde_json::json!({"code": status, "error": msg}).to_string(),
        )
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Serves one connection until the client closes, errs, idles out, or the proxy shuts down.
pub async fn serve(stream: TcpStream, peer: SocketAddr, st: Rc<CoreState>, port: Port) {
    let cid = crate::cid::new_cid();
    let span = tracing::debug_span!("http", cid = %cid, port = ?port);
    let shutdown = st.shutdown.clone();
    futures_lite::future::or(serve_inner(stream, peer, st, port), async move {
        shutdown.wait().await
    })
    .instrument(span)
    .await
}

async fn serve_inner(mut stream: TcpStream, peer: SocketAddr, st: Rc<CoreState>, port: Port) {
    let protocol = port.protocol();
    let _active = st.metrics.connection(protocol);
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        // A keep-alive client with requests always queued never makes a read wait: give way
        // to the rest of the core when the executor asks.
        glommio::yield_if_needed().await;
        // Read until a complete head is buffered (pipelined requests may already be there).
        let head = match read_request_head(&mut stream, &mut buf, &limits).await {
            HeadRead::Head(h) => h,
            HeadRead::Closed => return,
            HeadRead::Reject {
                status,
                message,
                kind,
            } => {
                debug!("bad request from {peer}: {message}");
                st.metrics.error(protocol, kind);
                let _ = respond(
                    &mut stream,
                    &mut out,
                    Response::error(status, &message),
                    false,
                    false,
                )
                .await;
                return;
            }
        };
        let body = match read_request_body(&mut stream, &mut buf, &head, MAX_BODY).await {
            Ok(b) => b,
            Err(status) => {
                st.metrics.error(protocol, ErrorKind::ClientProtocol);
                let _ = respond(
                    &mut stream,
                    &mut out,
                    Response::error(status, "bad or oversized request body"),
                    false,
                    false,
                )
                .await;
                return;
            }
        };
        let keep_alive = head.keep_alive;
        let is_head = head.method.eq_ignore_ascii_case("HEAD");
        let req = Request { head, body, peer };
        let rtc = match port {
            Port::HttpApi => protocols::webrtc::route(&req.head.path),
            _ => None,
        };
        let resp = match rtc {
            Some(kind) => crate::webrtc::signal::handle(&st, &req, kind).await,
            None => routes::route_async(&st, port, &req).await,
        };
        if respond(&mut stream, &mut out, resp, keep_alive, is_head)
            .await
            .is_err()
            || !keep_alive
        {
            return;
        }
    }
}

/// Writes `resp`; for `HEAD` the headers (with the GET `Content-Length`) and no body.
async fn respond(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    mut resp: Response,
    keep_alive: bool,
    head_only: bool,
) -> std::io::Result<()> {
    out.clear();
    if !keep_alive {
        resp.headers.push(("Connection".into(), "close".into()));
    }
    write_response_head(
        out,
        resp.status,
        reason(resp.status),
        &resp.headers,
        Some(resp.body.len() as u64),
    );
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    stream.write_all(out).await?;
    stream.flush().await
}
