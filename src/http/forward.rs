//! Forwarding one request to the origin that holds its stream (spec §5.3, §5.4 with the §10 #10–#13
//! fixes): the same method and path, the query kept (origin auth hooks need it), the client's
//! end-to-end headers, `Host` set to the origin and `Connection: close`. The origin's status and
//! end-to-end headers reach the client, with the CORS headers; a playlist (HLS or DASH) is read
//! whole, rewritten and sent with its new `Content-Length`; any other body is relayed opaquely.
//!
//! Deadlines: connect [`ORIGIN_CONNECT_TIMEOUT`], response head [`ORIGIN_HEAD_TIMEOUT`] (504 after
//! it; SRS holds an HTTP-FLV request for an unpublished stream open without a byte), a playlist
//! body the same; a streaming body none. A refused connect moves the pin (every core) and retries.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use protocols::http::{
    is_hop_by_hop, parse_response_head, rewrite_mpd, rewrite_playlist, write_response_head,
    ChunkedDecoder, ChunkedLimits, Limits, RequestHead, ResponseBody, ResponseHead,
};
use tracing::{debug, info, warn};

use super::relay::{relay_body, RelayMode};
use super::{failure_status, write_text, Next, CORS};
use crate::error::{self, Error, Side};
use crate::lb::Origin;
use crate::metrics::ErrorKind;
use crate::runtime::CoreState;
use crate::session::io::{read_into, ReadOutcome};

/// TCP connect deadline to an origin.
pub const ORIGIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline for the origin's response head (and a whole playlist body).
pub const ORIGIN_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Origins tried when they refuse connections.
/// Largest playlist accepted for rewriting.
const MAX_PLAYLIST: usize = 4 << 20;
/// Read size while reading the origin's head and a playlist.
const HEAD_READ: usize = 16 * 1024;

/// What to do with the origin's response body.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Relay it unchanged (live FLV/TS, segments, manifests).
    Passthrough,
    /// An HLS playlist: rewrite its segment URIs with this affinity id.
    Playlist { spbhid: Arc<str> },
    /// A DASH manifest: rewrite its segment URLs with this affinity id.
    Manifest { spbhid: Arc<str> },
}

/// Forwards `head` for stream `key`. Failures before the response head are answered here (502,
/// 503, 504); `Err` means the response was cut after its head.
pub async fn forward(
    client: &mut TcpStream,
    st: &Rc<CoreState>,
    head: &RequestHead,
    key: &str,
    mode: Mode,
) -> Result<Next, Error> {
    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    let next = if head.keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    };
    let ((mut origin_stream, origin_addr), origin) = match connect(st, key).await {
        Ok(c) => c,
        Err(e) => {
            warn!("HTTP {} for {key}: {e}", head.path);
            st.metrics
                .error(crate::metrics::Protocol::HttpStream, e.kind);
            return Ok(write_text(client, failure_status(&e), &e.message, next, head_only).await);
        }
    };
    let _pin = st.lb.session(key);
    let playlist = matches!(mode, Mode::Playlist { .. } | Mode::Manifest { .. });
    let request = origin_request(head, origin_addr, playlist);
    let exchange = async {
        origin_stream
            .write_all(&request)
            .await
            .map_err(|e| error::io(Side::Origin, "write", e))?;
        read_response_head(&mut origin_stream, head_only).await
    };
    let (resp, leftover) = match exchange.await {
        Ok(r) => r,
        Err(e) => {
            warn!("HTTP {} for {key} via origin {}: {e}", head.path, origin.id);
            st.metrics
                .error(crate::metrics::Protocol::HttpStream, e.kind);
            return Ok(write_text(client, failure_status(&e), &e.message, next, head_only).await);
        }
    };
    info!(
        "HTTP {} {} for {key} via origin {} ({}): {}",
        head.method, head.path, origin.id, origin.ip, resp.status
    );
    if let (Mode::Playlist { spbhid } | Mode::Manifest { spbhid }, 200) = (&mode, resp.status) {
        let dash = matches!(mode, Mode::Manifest { .. });
        return send_playlist(
            client,
            &mut origin_stream,
            &resp,
            leftover,
            spbhid,
            dash,
            next,
            head_only,
        )
        .await;
    }
    let mode = st.config.http_relay;
    send_passthrough(
        client,
        &mut origin_stream,
        head,
        &resp,
        leftover,
        next,
        mode,
    )
    .await
}

/// Picks the stream's origin and connects to its HTTP port; a refused connect moves the pin.
async fn connect(
    st: &CoreState,
    key: &str,
) -> Result<((TcpStream, SocketAddr), Arc<Origin>), Error> {
    crate::session::origin::with_origin(
        st,
        key,
        |origin| async move { connect_origin(&origin).await },
    )
    .await
}

async fn connect_origin(origin: &Origin) -> Result<(TcpStream, SocketAddr), Error> {
    connect_origin_port(origin, origin.http_port, "http server", &origin.http).await
}

/// Connects to `port` of `origin` (`what`/`registered` name it in errors) within
/// [`ORIGIN_CONNECT_TIMEOUT`]; a refusal is retryable (the stream moves). Returns the address
/// dialled too (the `Host` of requests to it).
pub(crate) async fn connect_origin_port(
    origin: &Origin,
    port: Option<u16>,
    what: &str,
    registered: &[String],
) -> Result<(TcpStream, SocketAddr), Error> {
    let port = port.ok_or_else(|| {
        Error::origin(
            ErrorKind::OriginRejected,
            format!(
                "no {what}: origin {} registered {registered:?} (SRS: enable it and heartbeat ports on)",
                origin.id
            ),
        )
    })?;
    let addr = origin
        .socket_addr(port)
        .map_err(|e| Error::origin(ErrorKind::OriginUnreachable, e.to_string()))?;
    let s = TcpStream::connect_timeout(addr, ORIGIN_CONNECT_TIMEOUT)
        .await
        .map_err(|e| {
            Error::origin(
                ErrorKind::OriginUnreachable,
                format!("connect to origin {} {what} at {addr}: {e}", origin.id),
            )
        })?;
    let _ = s.set_nodelay(true);
    Ok((s, addr))
}

/// `<METHOD> <path>[?<query>] HTTP/1.1` and `Host: <addr>`: the start of every request to an
/// origin (same method, path and raw query as the client's).
pub(crate) fn write_request_start(out: &mut Vec<u8>, head: &RequestHead, host: SocketAddr) {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path.as_bytes());
    if let Some(q) = &head.query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(format!(" HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
}

/// The request line and headers for the origin.
fn origin_request(head: &RequestHead, addr: SocketAddr, playlist: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_request_start(&mut out, head, addr);
    let named: Vec<&[u8]> = head
        .headers_named("connection")
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| t.trim_ascii())
        .collect();
    for (name, value) in head.headers.iter() {
        let skip = name.eq_ignore_ascii_case("host")
            || is_hop_by_hop(name)
            // A playlist must arrive whole and uncompressed to be rewritten: a ranged request
            // (ffmpeg reloads playlists with `Range: bytes=0-`) would get a 206 that cannot be,
            // and its segments would then be routed without their `spbhid`. The client gets
            // the whole rewritten playlist with 200, which HTTP allows for any Range.
            || (playlist
                && ["accept-encoding", "range", "if-range"]
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h)))
            || named.iter().any(|t| t.eq_ignore_ascii_case(name.as_bytes()));
        if skip || value.iter().any(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// Reads the origin's response head within [`ORIGIN_HEAD_TIMEOUT`]; returns it and the body bytes
/// read with it.
pub(crate) async fn read_response_head(
    origin: &mut TcpStream,
    head_request: bool,
) -> Result<(ResponseHead, Vec<u8>), Error> {
    let deadline = Instant::now() + ORIGIN_HEAD_TIMEOUT;
    let limits = Limits::default();
    let mut buf = Vec::with_capacity(HEAD_READ);
    loop {
        match parse_response_head(&buf, &limits, head_request) {
            Ok(Some((head, n))) => {
                buf.drain(..n);
                return Ok((head, buf));
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Error::origin(
                    ErrorKind::OriginRejected,
                    format!("bad response head from origin: {e}"),
                ))
            }
        }
        match read_into(origin, &mut buf, HEAD_READ, Some(deadline)).await {
            Ok(ReadOutcome::Data(_)) => {}
            Ok(ReadOutcome::Eof) => {
                return Err(Error::origin(
                    ErrorKind::OriginRejected,
                    "origin closed before a response head",
                ))
            }
            Ok(ReadOutcome::TimedOut) => {
                return Err(Error::origin(
                    ErrorKind::Timeout,
                    format!("origin sent no response head within {ORIGIN_HEAD_TIMEOUT:?}"),
                ))
            }
            Err(e) => return Err(error::io(Side::Origin, "read", e)),
        }
    }
}

/// Response head for the client: origin status, CORS, the end-to-end headers minus `drop`.
fn client_head(
    out: &mut Vec<u8>,
    resp: &ResponseHead,
    drop: &[&str],
    framing: &[(&str, &str)],
    content_length: Option<u64>,
) {
    let mut headers: Vec<(&str, &str)> = CORS.to_vec();
    for (name, value) in resp.end_to_end() {
        let ours = CORS.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !ours && !drop.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            headers.push((name, value));
        }
    }
    headers.extend_from_slice(framing);
    let reason = if resp.reason.is_empty() {
        crate::api::reason(resp.status)
    } else {
        resp.reason.as_str()
    };
    write_response_head(out, resp.status, reason, &headers, content_length);
}

/// Headers that no longer describe a rewritten body (the G4 list, spec §5.4 step 7).
const REWRITE_DROPS: [&str; 8] = [
    "accept-ranges",
    "content-digest",
    "content-encoding",
    "content-md5",
    "content-range",
    "digest",
    "etag",
    "repr-digest",
];

/// Reads a playlist (`dash`: a DASH manifest) whole, tags its segment URLs and sends it.
#[allow(clippy::too_many_arguments)]
async fn send_playlist(
    client: &mut TcpStream,
    origin: &mut TcpStream,
    resp: &ResponseHead,
    leftover: Vec<u8>,
    spbhid: &str,
    dash: bool,
    next: Next,
    head_only: bool,
) -> Result<Next, Error> {
    let body = match read_whole_body(origin, resp.body, leftover, MAX_PLAYLIST).await {
        Ok(b) => b,
        Err(e) => {
            return Ok(write_text(client, failure_status(&e), &e.message, next, head_only).await)
        }
    };
    let mut rewritten = Vec::new();
    let tagged = if dash {
        rewrite_mpd(&body, spbhid, &mut rewritten)
    } else {
        rewrite_playlist(&body, spbhid, &mut rewritten)
    };
    debug!("playlist: {tagged} URIs tagged with spbhid={spbhid}");
    let mut out = Vec::with_capacity(512 + rewritten.len());
    let mut drops: Vec<&str> = REWRITE_DROPS.to_vec();
    let mut framing: Vec<(&str, &str)> = Vec::new();
    if resp.header("content-type").is_none() {
        framing.push((
            "Content-Type",
            if dash {
                "application/dash+xml"
            } else {
                "application/vnd.apple.mpegurl"
            },
        ));
    }
    if next == Next::Close {
        framing.push(("Connection", "close"));
    }
    drops.push("content-length");
    client_head(
        &mut out,
        resp,
        &drops,
        &framing,
        Some(rewritten.len() as u64),
    );
    if !head_only {
        out.extend_from_slice(&rewritten);
    }
    client
        .write_all(&out)
        .await
        .map_err(|e| error::io(Side::Client, "write", e))?;
    Ok(next)
}

/// Reads a whole body of at most `max` bytes, de-chunked, within [`ORIGIN_HEAD_TIMEOUT`].
pub(crate) async fn read_whole_body(
    origin: &mut TcpStream,
    kind: ResponseBody,
    mut buf: Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, Error> {
    let deadline = Instant::now() + ORIGIN_HEAD_TIMEOUT;
    let too_big = || {
        Error::origin(
            ErrorKind::OriginRejected,
            format!("origin response body larger than {max} bytes"),
        )
    };
    let mut decoder = ChunkedDecoder::new(ChunkedLimits {
        max_body_bytes: max as u64,
        ..Default::default()
    });
    let mut body = Vec::new();
    loop {
        let done = match kind {
            ResponseBody::None => return Ok(Vec::new()),
            ResponseBody::ContentLength(n) => {
                if n > max as u64 {
                    return Err(too_big());
                }
                if buf.len() as u64 >= n {
                    // INVARIANT: n <= max, so it fits a usize.
                    buf.truncate(usize::try_from(n).expect("bounded above"));
                    return Ok(buf);
                }
                false
            }
            ResponseBody::Chunked => {
                let status = decoder.decode(&buf, &mut body).map_err(|e| {
                    Error::origin(ErrorKind::OriginRejected, format!("bad chunked body: {e}"))
                })?;
                buf.drain(..status.consumed);
                if status.done {
                    return Ok(body);
                }
                false
            }
            ResponseBody::UntilClose => buf.len() > max,
        };
        if done {
            return Err(too_big());
        }
        match read_into(origin, &mut buf, HEAD_READ, Some(deadline)).await {
            Ok(ReadOutcome::Data(_)) => {}
            Ok(ReadOutcome::Eof) if kind == ResponseBody::UntilClose => return Ok(buf),
            Ok(ReadOutcome::Eof) => {
                return Err(Error::origin(
                    ErrorKind::OriginRejected,
                    "origin closed inside the response body",
                ))
            }
            Ok(ReadOutcome::TimedOut) => {
                return Err(Error::origin(
                    ErrorKind::Timeout,
                    format!("origin response body not complete within {ORIGIN_HEAD_TIMEOUT:?}"),
                ))
            }
            Err(e) => return Err(error::io(Side::Origin, "read", e)),
        }
    }
}

async fn send_passthrough(
    client: &mut TcpStream,
    origin: &mut TcpStream,
    head: &RequestHead,
    resp: &ResponseHead,
    leftover: Vec<u8>,
    next: Next,
    mode: RelayMode,
) -> Result<Next, Error> {
    let chunked_ok = head.version_minor >= 1;
    let mut out = Vec::with_capacity(512);
    let origin_length = resp
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (length, next, framing): (Option<u64>, Next, Vec<(&str, &str)>) = match resp.body {
        // HEAD, 204, 304: keep what the origin said the length is.
        ResponseBody::None => (origin_length, next, Vec::new()),
        ResponseBody::ContentLength(n) => (Some(n), next, Vec::new()),
        // Relayed verbatim (chunk framing included) until the origin closes; the client
        // connection ends with it.
        ResponseBody::Chunked if chunked_ok => (
            None,
            Next::Close,
            vec![("Transfer-Encoding", "chunked"), ("Connection", "close")],
        ),
        ResponseBody::Chunked | ResponseBody::UntilClose => {
            (None, Next::Close, vec![("Connection", "close")])
        }
    };
    let mut framing = framing;
    if next == Next::Close && !framing.iter().any(|(n, _)| *n == "Connection") {
        framing.push(("Connection", "close"));
    }
    client_head(&mut out, resp, &[], &framing, length);
    client
        .write_all(&out)
        .await
        .map_err(|e| error::io(Side::Client, "write", e))?;
    match resp.body {
        ResponseBody::None => Ok(next),
        ResponseBody::ContentLength(n) => {
            relay_body(origin, client, &leftover, Some(n), mode).await?;
            Ok(next)
        }
        ResponseBody::Chunked if !chunked_ok => {
            dechunk(origin, client, leftover).await?;
            Ok(Next::Close)
        }
        ResponseBody::Chunked | ResponseBody::UntilClose => {
            info!("HTTP start streaming");
            let n = relay_body(origin, client, &leftover, None, mode).await?;
            info!("HTTP client done, {n} bytes");
            Ok(Next::Close)
        }
    }
}

/// HTTP/1.0 clients cannot take chunked framing: decode it and send the data until the end.
async fn dechunk(
    origin: &mut TcpStream,
    client: &mut TcpStream,
    mut buf: Vec<u8>,
) -> Result<(), Error> {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits {
        max_body_bytes: u64::MAX,
        ..Default::default()
    });
    let mut data = Vec::with_capacity(super::relay::RELAY_BUF);
    loop {
        // A read that finds bytes waiting does not yield: give way when the executor asks.
        glommio::yield_if_needed().await;
        data.clear();
        let status = decoder.decode(&buf, &mut data).map_err(|e| {
            Error::origin(ErrorKind::OriginRejected, format!("bad chunked body: {e}"))
        })?;
        buf.drain(..status.consumed);
        client
            .write_all(&data)
            .await
            .map_err(|e| error::io(Side::Client, "write", e))?;
        if status.done {
            return Ok(());
        }
        match read_into(origin, &mut buf, HEAD_READ, None).await {
            Ok(ReadOutcome::Data(_)) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(error::io(Side::Origin, "read", e)),
        }
    }
}
