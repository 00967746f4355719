//! WHIP/WHEP and the legacy SRS RTC API on `PROXY_HTTP_API` (spec §5.5, with §10 #10, #12, #14,
//! #15 and #28 fixed).
//!
//! One request → one origin exchange: the offer is forwarded with the same method, path and raw
//! query to the origin that holds the stream; the answer's host candidates on the origin's `rtc`
//! ports are rewritten to the proxy's WebRTC port (and optionally `PROXY_WEBRTC_CANDIDATE`), the
//! result is validated, and the ICE session key is stored in the process-wide table
//! ([`super::table`]) *before* any status is written, so the client's first STUN check finds it
//! on whichever core the kernel hands it to. A broken answer is a 502 with a one-line reason,
//! never a 2xx with an error body. The origin's status, `Location` and other end-to-end headers
//! reach the client, with CORS and `Access-Control-Expose-Headers: Location`.
//!
//! Deadlines: origin connect 5 s (`ORIGIN_CONNECT_TIMEOUT`), the whole answer 20 s (twice
//! `ORIGIN_HEAD_TIMEOUT`). A refused connect moves the stream to another origin (every core) and
//! retries, as for every protocol.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_lite::AsyncWriteExt;
use protocols::http::{query_param, ResponseHead};
use protocols::stream_key::{stream_key_from_http, stream_key_from_url};
use protocols::webrtc::{
    exchange_session_key, ice_credentials, replace_string_field, rewrite_answer, sdp_field,
    sdp_text, string_field, validate_answer, SignalKind, CORS_HEADERS, MAX_ENVELOPE_LEN,
};
use tracing::{info, warn};

use super::table::{Binding, InsertError};
use crate::api::{Header, Request, Response};
use crate::error::{self, Error, Side};
use crate::http::forward::{
    connect_origin_port, read_response_head, read_whole_body, write_request_start,
    ORIGIN_HEAD_TIMEOUT,
};
use crate::lb::Origin;
use crate::metrics::{ErrorKind, Protocol};
use crate::runtime::CoreState;

/// Handles one signalling request routed by [`protocols::webrtc::route`].
pub async fn handle(st: &Rc<CoreState>, req: &Request, kind: SignalKind) -> Response {
    let cid = crate::cid::new_cid();
    let method = req.head.method.as_str();
    if method.eq_ignore_ascii_case("OPTIONS") {
        return with_cors(Response {
            status: 200,
            headers: vec![("Server".into(), crate::version::SERVER.into())],
            body: Vec::new().into(),
        });
    }
    let delete = method.eq_ignore_ascii_case("DELETE");
    if !delete && !method.eq_ignore_ascii_case("POST") {
        let mut r = error_text(405, &format!("{method} is not allowed here: use POST to send an SDP offer, DELETE to end a WHIP/WHEP session, OPTIONS for CORS"));
        r.headers
            .push(("Allow".into(), "POST, DELETE, OPTIONS".into()));
        return r;
    }
    let offer = if delete {
        None
    } else {
        match offer_sdp(kind, &req.body) {
            Ok(o) => Some(o),
            Err(msg) => {
                st.metrics
                    .error(Protocol::HttpApi, ErrorKind::ClientProtocol);
                warn!("WebRTC {kind:?} from {} refused: {msg}", req.peer);
                return error_text(400, &msg);
            }
        }
    };
    let key = match stream_key(req, kind) {
        Ok(k) => k,
        Err(msg) => {
            st.metrics
                .error(Protocol::HttpApi, ErrorKind::ClientProtocol);
            warn!("WebRTC {kind:?} from {} refused: {msg}", req.peer);
            return error_text(400, &msg);
        }
    };
    let started = Instant::now();
    let exchanged = crate::session::origin::with_origin(st, &key, |origin| async move {
        exchange(&origin, req).await
    })
    .await;
    let ((head, body), origin) = match exchanged {
        Ok(r) => r,
        Err(e) => {
            st.metrics.error(Protocol::HttpApi, e.kind);
            warn!("[{cid}] WebRTC {kind:?} {method} for {key}: {e}");
            return error_text(crate::http::failure_status(&e), &e.message);
        }
    };
    let took = started.elapsed();
    let offer = match offer {
        // DELETE, or an origin error: pass the origin's answer through (spec §10 #12, #14).
        Some(offer) if matches!(head.status, 200 | 201) => offer,
        _ => {
            if delete && head.status == 200 {
                if let Some(session) = req
                    .head
                    .query
                    .as_deref()
                    .and_then(|q| query_param(q, "session"))
                {
                    if st.rtc.remove(&session).is_some() {
                        info!("[{cid}] WebRTC session {session} of {key} deleted by the client");
                    }
                }
            }
            info!(
                "[{cid}] WebRTC {kind:?} {method} for {key} via origin {}: {} in {took:?}",
                origin.id, head.status
            );
            return passthrough(&head, body);
        }
    };
    match answer(st, kind, &key, &origin, &offer, &head, &body, &cid) {
        Ok((resp, ufrag)) => {
            // Redis mode: other proxies find the session by its ufrag (spec §4.3, G1
            // semantics). A failure only costs the multi-proxy case: this proxy has it.
            if let Err(e) = st.lb.rtc_store(&ufrag, &key).await {
                warn!("[{cid}] WebRTC session {ufrag} not shared through Redis (clients whose media lands on another proxy will fail): {e}");
            }
            info!(
                "[{cid}] WebRTC {} {key} via origin {} ({}): {}, session {ufrag} in {took:?}",
                if kind.is_publish() { "publish" } else { "play" },
                origin.id,
                origin.ip,
                head.status
            );
            resp
        }
        Err((status, msg)) => {
            st.metrics.error(
                Protocol::HttpApi,
                if status == 503 {
                    ErrorKind::Internal
                } else {
                    ErrorKind::OriginRejected
                },
            );
            warn!(
                "[{cid}] WebRTC {kind:?} for {key} via origin {}: {msg}",
                origin.id
            );
            error_text(status, &msg)
        }
    }
}

/// The offer SDP of a POST: the body (WHIP/WHEP) or its `"sdp"` field (legacy API). An offer
/// without ICE credentials can never become a session: refused here, before an origin pick.
fn offer_sdp(kind: SignalKind, body: &[u8]) -> Result<String, String> {
    let offer = offer_text(kind, body)?;
    if ice_credentials(&offer).is_none() {
        return Err(
            "the SDP offer has no a=ice-ufrag/a=ice-pwd: send a complete WebRTC offer".into(),
        );
    }
    Ok(offer)
}

fn offer_text(kind: SignalKind, body: &[u8]) -> Result<String, String> {
    if kind.is_legacy() {
        sdp_field(body)
            .map(|f| f.value.into_owned())
            .map_err(|e| format!("bad request body: {e}; send {{\"sdp\":\"<offer>\",\"streamurl\":\"webrtc://host/app/stream\"}}"))
    } else {
        sdp_text(body).map(str::to_owned).map_err(|e| {
            format!(
                "bad SDP offer: {e}; send the offer as the body with Content-Type: application/sdp"
            )
        })
    }
}

/// The stream key (spec §4.1): `?app=&stream=` or the path, like Go. A legacy request without
/// them uses the envelope's `streamurl` (Go keys every such request `/rtc/v1/play/`, one key for
/// all streams; the fix only changes requests that Go routed to one arbitrary origin).
fn stream_key(req: &Request, kind: SignalKind) -> Result<String, String> {
    let query = req.head.query.as_deref();
    let has_app_stream = query.is_some_and(|q| {
        query_param(q, "app").is_some_and(|a| !a.is_empty())
            || query_param(q, "stream").is_some_and(|s| !s.is_empty())
    });
    if kind.is_legacy() && !has_app_stream {
        if let Ok(Some(url)) = string_field(&req.body, "streamurl") {
            return stream_key_from_url(&url.value)
                .map_err(|e| format!("bad streamurl {:?}: {e}", url.value));
        }
    }
    stream_key_from_http(req.head.header_str("host"), &req.head.path, query)
        .map_err(|e| format!("bad stream in the request: {e}; use ?app=<app>&stream=<stream>"))
}

/// One request to the origin's HTTP API: same method, path and raw query, the body verbatim.
async fn exchange(origin: &Origin, req: &Request) -> Result<(ResponseHead, Vec<u8>), Error> {
    let (mut s, addr) =
        connect_origin_port(origin, origin.api_port, "http api", &origin.api).await?;
    let request = origin_request(req, addr);
    let io = async {
        s.write_all(&request)
            .await
            .map_err(|e| error::io(Side::Origin, "write", e))?;
        let (head, leftover) = read_response_head(&mut s, false).await?;
        let body = read_whole_body(&mut s, head.body, leftover, MAX_ENVELOPE_LEN).await?;
        Ok::<_, Error>((head, body))
    };
    match executors::with_timeout(ORIGIN_HEAD_TIMEOUT * 2, io).await {
        Ok(r) => r,
        Err(_) => Err(Error::origin(
            ErrorKind::Timeout,
            format!(
                "origin {} api did not answer within {:?}",
                origin.id,
                ORIGIN_HEAD_TIMEOUT * 2
            ),
        )),
    }
}

fn origin_request(req: &Request, addr: std::net::SocketAddr) -> Vec<u8> {
    let head = &req.head;
    let mut out = Vec::with_capacity(256 + req.body.len());
    write_request_start(&mut out, head, addr);
    // Go forwards no client header; the type and a bearer token are what a WHIP origin may
    // check (RFC 9725 §4.1, §4.5), so they pass.
    for name in ["Content-Type", "Authorization"] {
        if let Some(v) = head.header(name) {
            if !v.iter().any(|b| matches!(b, b'\r' | b'\n')) {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            req.body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&req.body);
    out
}

type Answered = Result<(Response, Arc<str>), (u16, String)>;

/// Rewrites, validates and stores a successful answer; the response for the client.
#[allow(clippy::too_many_arguments)]
fn answer(
    st: &CoreState,
    kind: SignalKind,
    key: &str,
    origin: &Arc<Origin>,
    offer: &str,
    head: &ResponseHead,
    body: &[u8],
    cid: &str,
) -> Answered {
    let bad = |msg: String| (502, msg);
    let field = if kind.is_legacy() {
        Some(sdp_field(body).map_err(|e| bad(format!("origin answer without SDP: {e}")))?)
    } else {
        None
    };
    let answer_sdp: Cow<'_, str> = match &field {
        Some(f) => Cow::Borrowed(f.value.as_ref()),
        None => Cow::Borrowed(
            sdp_text(body).map_err(|e| bad(format!("origin answer is not SDP: {e}")))?,
        ),
    };
    let rtc_port = origin.rtc_udp_port.ok_or_else(|| {
        bad(format!(
            "origin {} registered no WebRTC UDP port (rtc {:?}); enable rtc_server and heartbeat ports on",
            origin.id, origin.rtc
        ))
    })?;
    let origin_rtc = origin
        .socket_addr(rtc_port)
        .map_err(|e| bad(format!("origin {} rtc address: {e}", origin.id)))?;
    let rewritten = rewrite_answer(
        &answer_sdp,
        &origin.rtc_ports,
        st.config.webrtc_server.addr.port(),
        st.config.webrtc_candidate,
    )
    .map_err(|e| bad(format!("origin answer: {e}")))?;
    validate_answer(&rewritten).map_err(|e| bad(format!("origin answer is broken: {e}")))?;
    let ufrag: Arc<str> = exchange_session_key(offer, &rewritten)
        .ok_or_else(|| bad("no ICE ufrag in the offer or the answer".to_string()))?
        .into();
    let binding = Arc::new(Binding {
        ufrag: ufrag.clone(),
        stream_key: key.into(),
        origin: origin.clone(),
        origin_rtc,
        publish: kind.is_publish(),
        cid: cid.to_string(),
        created: Instant::now(),
        session: Mutex::new(None),
    });
    st.rtc.insert(binding).map_err(|InsertError::Full| {
        (
            503,
            format!(
                "too many WebRTC sessions ({}); retry later or add proxies",
                super::table::MAX_BINDINGS
            ),
        )
    })?;
    let body = match &field {
        Some(f) => replace_string_field(body, f, &rewritten),
        None => rewritten.into_bytes(),
    };
    let mut headers: Vec<Header> = vec![
        ("Server".into(), crate::version::SERVER.into()),
        ("Content-Type".into(), kind.answer_content_type().into()),
    ];
    headers.extend(origin_headers(head));
    Ok((
        with_cors(Response {
            status: head.status,
            headers,
            body: body.into(),
        }),
        ufrag,
    ))
}

/// The origin's end-to-end headers, minus those this response sets itself.
fn origin_headers(head: &ResponseHead) -> impl Iterator<Item = Header> + '_ {
    head.end_to_end()
        .filter(|(name, _)| {
            ![
                "content-type",
                "content-length",
                "server",
                "transfer-encoding",
            ]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
                && !CORS_HEADERS
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .map(|(n, v)| (Cow::Owned(n.to_string()), Cow::Owned(v.to_string())))
}

/// The origin's status, headers and body, unchanged (errors, DELETE).
fn passthrough(head: &ResponseHead, body: Vec<u8>) -> Response {
    let mut headers: Vec<Header> = vec![("Server".into(), crate::version::SERVER.into())];
    if let Some(ct) = head
        .header("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
    {
        headers.push(("Content-Type".into(), ct.to_string().into()));
    }
    headers.extend(origin_headers(head));
    with_cors(Response {
        status: head.status,
        headers,
        body: body.into(),
    })
}

fn error_text(status: u16, msg: &str) -> Response {
    with_cors(Response::text(status, format!("{msg}\n")))
}

fn with_cors(mut r: Response) -> Response {
    r.headers.extend(
        CORS_HEADERS
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v))),
    );
    r
}
