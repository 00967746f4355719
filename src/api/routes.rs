//! Routes of the proxy's own endpoints.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::json;
use tracing::{info, warn};

use super::register::parse_registration;
use super::{Port, Request, Response};
use crate::lb::Origin;
use crate::runtime::CoreState;
use crate::version;

pub fn route(st: &CoreState, port: Port, req: &Request) -> Response {
    let path = req.head.path.as_str();
    match (port, path) {
        (Port::System | Port::HttpApi, "/api/v1/versions") => Response::json(
            200,
            json!({"signature": version::SIGNATURE, "version": version::VERSION}).to_string(),
        ),
        (Port::HttpServer, "/api/v1/versions") => Response::json(
            200,
            json!({
                "code": 0,
                "pid": std::process::id().to_string(),
                "data": {"major": version::MAJOR, "minor": version::MINOR, "revision": version::REVISION, "version": version::VERSION}
            })
            .to_string(),
        ),
        (Port::System, "/metrics") => {
            let mut r = Response::text(200, st.all_metrics.render(st.lb.origin_count(), st.lb.pin_count()));
            r.headers[1].1 = "text/plain; version=0.0.4; charset=utf-8".into();
            r
        }
        (Port::System, "/api/v1/origins") => guarded(st, req, origins),
        (Port::System, "/api/v1/streams") => guarded(st, req, streams),
        _ => Response::error(404, "not found"),
    }
}

/// Applies the optional bearer auth (`PROXY_HTTP_API_AUTH_*`, spec §2.1) before `f`.
fn guarded(st: &CoreState, req: &Request, f: fn(&CoreState, &Request) -> Response) -> Response {
    unauthorized(st, req).unwrap_or_else(|| f(st, req))
}

/// The 401 answer when bearer auth is on and the request lacks the token.
fn unauthorized(st: &CoreState, req: &Request) -> Option<Response> {
    let auth = st.config.api_auth.as_ref()?;
    let given = req
        .head
        .header("authorization")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| {
            let v = v.trim();
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim())
        });
    if given.is_some_and(|t| constant_time_eq(t.as_bytes(), auth.token.as_bytes())) {
        return None;
    }
    warn!(
        "rejected {} {} from {}: missing or wrong bearer token",
        req.head.method, req.head.path, req.peer
    );
    let mut r = Response::error(
        401,
        "unauthorized: send Authorization: Bearer <PROXY_HTTP_API_AUTH_TOKEN>",
    );
    r.headers.push(("WWW-Authenticate".into(), "Bearer".into()));
    Some(r)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The routes that wait on something ([`route`] answers the others): the registration, which
/// in Redis mode also stores the origin there before answering.
pub async fn route_async(st: &CoreState, port: Port, req: &Request) -> Response {
    if port == Port::System && req.head.path == "/api/v1/srs/register" {
        if let Some(denied) = unauthorized(st, req) {
            return denied;
        }
        return register(st, req).await;
    }
    route(st, port, req)
}

/// `POST /api/v1/srs/register` (spec §3.1, with §10 #7/#8/#9 fixed): any method, a JSON body as
/// SRS heartbeats send it; 200 `{"code":0,"pid":"<proxy pid>"}`, or a 4xx JSON error naming the
/// problem. Redis mode: the server key and list are written first (Go `Update`); if Redis
/// fails the registration still applies here, and the answer is a 500 naming the problem.
async fn register(st: &CoreState, req: &Request) -> Response {
    let heartbeat = match prepare_registration(st, req) {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    st.metrics
        .registrations_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (now, wall) = (Instant::now(), SystemTime::now());
    let stored = match st.lb.redis() {
        None => Ok(()),
        Some(_) => {
            let origin = match &heartbeat {
                Heartbeat::Known(o) => o.as_ref(),
                Heartbeat::New(o) => o.as_ref(),
            };
            st.lb
                .store_origin(&crate::lb::redis::heartbeat_record(origin, wall))
                .await
        }
    };
    match heartbeat {
        Heartbeat::Known(known) => {
            // The usual heartbeat: every core shares this record, so touching it is enough.
            known.touch(wall, now);
            known.heard(now);
            remember_heartbeat(&req.body, known);
        }
        Heartbeat::New(origin) => {
            if st.lb.has_origin(&origin.id) {
                info!(
                    "SRS media server changed its registration, {}",
                    origin.describe()
                );
            } else {
                info!("Register SRS media server, {}", origin.describe());
            }
            origin.heard(now);
            st.lb.register(*origin);
        }
    }
    match stored {
        Ok(()) => Response::json(200, register_ok_body()),
        Err(e) => {
            warn!("registration from {} not stored in redis: {e}", req.peer);
            Response::error(500, &format!("store the origin in redis: {e}"))
        }
    }
}

/// A heartbeat, before it is applied.
enum Heartbeat {
    /// The same registration as the record every core shares: only its times change.
    Known(Arc<Origin>),
    /// A new origin, or new fields for a known one.
    New(Box<Origin>),
}

/// Parses a heartbeat, or the 4xx answer. SRS repeats the same body every heartbeat: a body
/// seen before on this core, whose origin record is still current, needs no JSON parse.
fn prepare_registration(st: &CoreState, req: &Request) -> Result<Heartbeat, Response> {
    if let Some(known) = HEARTBEATS.with(|h| h.borrow().get(&req.body).cloned()) {
        if st
            .lb
            .origin(&known.id)
            .is_some_and(|cur| Arc::ptr_eq(&cur, &known))
        {
            return Ok(Heartbeat::Known(known));
        }
    }
    let reg = parse_registration(&req.body).map_err(|e| {
        warn!("rejected registration from {}: {e}", req.peer);
        Response::error(e.status(), &e.to_string())
    })?;
    if let Some(known) = st.lb.origin(&reg.id()) {
        if known.same_registration(&reg) {
            return Ok(Heartbeat::Known(known));
        }
    }
    Ok(Heartbeat::New(Box::new(Origin::from_registration(
        &reg,
        SystemTime::now(),
        Instant::now(),
    ))))
}

/// `GET /api/v1/origins`: every registered origin with its liveness (SRS issue #4646).
fn origins(st: &CoreState, _req: &Request) -> Response {
    let now = Instant::now();
    let list: Vec<_> = st
        .lb
        .origins()
        .iter()
        .map(|o| {
            json!({
                "id": o.id, "ip": o.ip, "device_id": o.device_id, "server_id": o.server,
                "service_id": o.service, "pid": o.pid, "rtmp": o.rtmp, "http": o.http,
                "api": o.api, "srt": o.srt, "rtc": o.rtc,
                "alive": o.is_alive(now, st.config.origin_server_ttl),
                "last_heartbeat_age_ms": now.saturating_duration_since(o.seen()).as_millis() as u64,
                "default_backend": o.is_default,
            })
        })
        .collect();
    Response::json(200, json!({"code": 0, "origins": list}).to_string())
}

/// `GET /api/v1/streams`: stream key → origin id pins known to the answering core.
fn streams(st: &CoreState, _req: &Request) -> Response {
    let pins: serde_json::Map<String, serde_json::Value> = st
        .lb
        .pins()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    Response::json(
        200,
        json!({"code": 0, "core": st.core, "streams": pins}).to_string(),
    )
}

/// `{"code":0,"pid":"<proxy pid>"}`, rendered once (every heartbeat gets it).
fn register_ok_body() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| json!({"code": 0, "pid": std::process::id().to_string()}).to_string())
}

/// Bodies of heartbeats already applied on this core → the origin record they produced.
const HEARTBEAT_CACHE: usize = 4096;

thread_local! {
    static HEARTBEATS: std::cell::RefCell<ahash::AHashMap<Vec<u8>, Arc<Origin>>> =
        std::cell::RefCell::new(ahash::AHashMap::new());
}

fn remember_heartbeat(body: &[u8], origin: Arc<Origin>) {
    HEARTBEATS.with(|h| {
        let mut h = h.borrow_mut();
        if h.get(body).is_some_and(|known| Arc::ptr_eq(known, &origin)) {
            // The usual heartbeat: already remembered, no copy of the body needed.
            return;
        }
        if h.len() >= HEARTBEAT_CACHE {
            // Bounded: start over rather than track ages (a miss only costs a parse).
            h.clear();
        }
        h.insert(body.to_vec(), origin);
    });
}
