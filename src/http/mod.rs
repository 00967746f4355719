//! The HTTP stream server (`PROXY_HTTP_SERVER`, spec §5.2–§5.4, §5.8): HTTP-FLV and HTTP-TS live
//! streams, HLS playlists and DASH manifests and their segments (with the `spbhid` affinity id), the
//! versions endpoint and static files.
//!
//! One task per connection: keep-alive and pipelined requests are answered in order; every head
//! read has a deadline ([`conn::HEAD_TIMEOUT`], against slowloris), heads are bounded (431) and
//! garbage gets a `400` and a close. Each request gets its own cid and tracing span.

pub mod conn;
pub(crate) mod forward;
pub(crate) mod relay;
mod static_files;

use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use protocols::http::{classify, write_response_head, Limits, RequestHead, StreamRoute};
use tracing::{debug, info, warn, Instrument};

use crate::error::Error;
use crate::metrics::{ErrorKind, Protocol};
use crate::runtime::CoreState;
use conn::{read_request_body, read_request_head, HeadRead};
use forward::Mode;

/// Request bodies on this port are read and dropped (nothing here takes one); bounded.
const MAX_DISCARDED_BODY: usize = 64 * 1024;

/// CORS headers on every streaming response (spec §5.3 step 1).
pub const CORS: [(&str, &str); 3] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Allow-Methods", "*"),
];

/// Whether the connection may carry another request after the current response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
}

/// Serves one connection until the client closes, errs, idles out, or the proxy shuts down.
pub async fn serve(stream: TcpStream, peer: SocketAddr, st: Rc<CoreState>) {
    let shutdown = st.shutdown.clone();
    futures_lite::future::or(serve_inner(stream, peer, st), async move {
        shutdown.wait().await
    })
    .await
}

async fn serve_inner(mut stream: TcpStream, peer: SocketAddr, st: Rc<CoreState>) {
    let _active = st.metrics.connection(Protocol::HttpStream);
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // A keep-alive client with requests always queued never makes a read wait: give way
        // to the rest of the core when the executor asks.
        glommio::yield_if_needed().await;
        let head = match read_request_head(&mut stream, &mut buf, &limits).await {
            HeadRead::Head(h) => h,
            HeadRead::Closed => return,
            HeadRead::Reject {
                status,
                message,
                kind,
            } => {
                debug!("bad request from {peer}: {message}");
                st.metrics.error(Protocol::HttpStream, kind);
                let _ = write_text(&mut stream, status, &message, Next::Close, false).await;
                conn::lingering_close(&mut stream).await;
                return;
            }
        };
        if let Err(status) =
            read_request_body(&mut stream, &mut buf, &head, MAX_DISCARDED_BODY).await
        {
            st.metrics
                .error(Protocol::HttpStream, ErrorKind::ClientProtocol);
            let _ = write_text(&mut stream, status, "bad request body", Next::Close, false).await;
            conn::lingering_close(&mut stream).await;
            return;
        }
        let cid = crate::cid::new_cid();
        let span = tracing::info_span!("http", cid = %cid);
        let next = handle(&mut stream, peer, &st, &head).instrument(span).await;
        if next == Next::Close || !head.keep_alive {
            return;
        }
    }
}

/// Answers one request; returns whether the connection can go on.
async fn handle(
    client: &mut TcpStream,
    peer: SocketAddr,
    st: &Rc<CoreState>,
    head: &RequestHead,
) -> Next {
    let route = classify(&head.path, head.query.as_deref());
    let next = if head.keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    };
    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    if route == StreamRoute::Versions {
        let req = crate::api::Request {
            head: head.clone(),
            body: Vec::new(),
            peer,
        };
        let resp = crate::api::routes::route(st, crate::api::Port::HttpServer, &req);
        let headers: Vec<(&str, &str)> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        return write_full(client, resp.status, &headers, &resp.body, next, head_only).await;
    }
    if head.method.eq_ignore_ascii_case("OPTIONS") {
        return write_full(client, 200, &CORS, b"", next, false).await;
    }
    if !head_only && !head.method.eq_ignore_ascii_case("GET") {
        return write_text(client, 405, "only GET, HEAD and OPTIONS", next, false).await;
    }
    if route == StreamRoute::Static {
        return static_files::serve(client, st, head, next).await;
    }
    let res = match route {
        StreamRoute::HlsSegment { spbhid } => match st.lb.hls_key(&spbhid).await {
            Some(key) => forward::forward(client, st, head, &key, Mode::Passthrough).await,
            None => {
                info!("unknown spbhid {spbhid} for {}", head.path);
                return write_text(
                    client,
                    400,
                    &format!("load stream by spbhid {spbhid}"),
                    next,
                    head_only,
                )
                .await;
            }
        },
        route => {
            let key = match protocols::stream_key::stream_key_from_http(
                head.header_str("host"),
                &head.path,
                head.query.as_deref(),
            ) {
                Ok(k) => k,
                Err(e) => {
                    st.metrics
                        .error(Protocol::HttpStream, ErrorKind::ClientProtocol);
                    return write_text(
                        client,
                        400,
                        &format!("build stream url from {}: {e}", head.path),
                        next,
                        head_only,
                    )
                    .await;
                }
            };
            let mode = match route {
                StreamRoute::HlsPlaylist | StreamRoute::DashManifest => {
                    match st.lb.hls_id(&key).await {
                        Some(id) if route == StreamRoute::DashManifest => {
                            Mode::Manifest { spbhid: id }
                        }
                        Some(id) => Mode::Playlist { spbhid: id },
                        None => {
                            return write_text(
                                client,
                                503,
                                &format!("no hls affinity id for {key}"),
                                next,
                                head_only,
                            )
                            .await
                        }
                    }
                }
                _ => Mode::Passthrough,
            };
            forward::forward(client, st, head, &key, mode).await
        }
    };
    match res {
        Ok(n) => n,
        Err(e) => {
            if e.is_peer_closed() {
                debug!("HTTP peer closed: {e}");
            } else {
                st.metrics.error(Protocol::HttpStream, e.kind);
                warn!("HTTP serve {} err: {e}", head.path);
            }
            Next::Close
        }
    }
}

/// Writes a complete response with a `Content-Length` body (none on the wire for `HEAD`).
pub async fn write_full(
    client: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    next: Next,
    head_only: bool,
) -> Next {
    let mut out = Vec::with_capacity(256 + if head_only { 0 } else { body.len() });
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if next == Next::Close {
        all.push(("Connection", "close"));
    }
    write_response_head(
        &mut out,
        status,
        crate::api::reason(status),
        &all,
        Some(body.len() as u64),
    );
    if !head_only {
        out.extend_from_slice(body);
    }
    match client.write_all(&out).await {
        Ok(()) => next,
        Err(_) => Next::Close,
    }
}

/// A short `text/plain` answer with the CORS headers (errors on the stream routes).
pub async fn write_text(
    client: &mut TcpStream,
    status: u16,
    text: &str,
    next: Next,
    head_only: bool,
) -> Next {
    let mut headers: Vec<(&str, &str)> = CORS.to_vec();
    headers.push(("Server", crate::version::SERVER));
    headers.push(("Content-Type", "text/plain; charset=utf-8"));
    let body = format!("{text}\n");
    write_full(client, status, &headers, body.as_bytes(), next, head_only).await
}

/// Maps a proxy-side failure to the status a client gets before any byte of the response.
pub fn failure_status(e: &Error) -> u16 {
    match e.kind {
        ErrorKind::NoOrigin => 503,
        ErrorKind::Timeout => 504,
        _ => 502,
    }
}
