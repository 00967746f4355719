//! Stream keys ("stream URLs"): the single most important compatibility point (spec §4.1).
//!
//! Every protocol turns its request into a key, and the load balancer pins the key to one origin.
//! A publisher and its players must produce the same key, and when this proxy shares a Redis
//! cluster with Go proxies, it must produce the same key as Go does. So the key format follows Go's
//! `buildStreamURL` exactly (§10 #1, replicate):
//!
//! 1. parse the URL with Go `url.Parse` semantics (reproduced by `GoUrl` below: `#` cuts the
//!    fragment, `?` the query, the authority's `user@` and `:port` and IPv6 brackets are dropped,
//!    the path is percent-decoded, and malformed escapes, control bytes or a bad port are errors);
//! 2. the key is `host + path`, except that a host with no `.` or an IPv4 literal (Go
//!    `net.ParseIP(host).To4() != nil`, which includes `::ffff:a.b.c.d`) becomes `__defaultVhost__`;
//! 3. the query is always dropped.
//!
//! # Deliberate difference from Go: RTMP tcUrl with a query (§10 #2, fixed)
//!
//! Go builds the RTMP key from `tcUrl + "/" + streamName`, so `rtmp://h/live?vhost=v1` +
//! `livestream` parses as path `/live` with query `vhost=v1/livestream`: every stream of the app
//! collides on `__defaultVhost__/live`. [`stream_key_from_rtmp`] instead takes the tcUrl's path
//! without its query, appends the stream name, and honours SRS's vhost parameter (`vhost=` or,
//! failing that, `domain=`, in the tcUrl query or the stream name's query, with SRS's separators
//! `?`, `&`, `&&`, `,` and the FMLE form `...vhost...v1`) as the host. The vhost still goes through
//! rule 2, so `?vhost=v1` stays in `__defaultVhost__` and only a dotted vhost gets its own key.
//!
//! **Mixed Go/Rust Redis clusters:** for a tcUrl *without* a query (what ffmpeg, OBS and SRS's own
//! tools send) the keys are byte-identical to Go's. For a tcUrl *with* a query, Go computes
//! `<host>/<app>` (the collision above) and this proxy computes `<vhost-or-host>/<app>/<stream>`,
//! so a publisher routed by a Go proxy and a player routed by a Rust proxy may land on different
//! origins. Run one implementation per cluster if clients put queries in the tcUrl. Likewise a
//! stream name carrying `?vhost=example.com` gets `example.com/…` here and `__defaultVhost__/…` or
//! `<tcUrl host>/…` in Go.
//!
//! Keys are built from untrusted bytes: nothing here panics, and every input either yields a key
//! or a [`StreamKeyError`] (which callers turn into a refused request, as Go does).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The vhost SRS uses when none is given; also the key prefix for dot-less and IPv4 hosts.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// Why no key could be built: Go's `url.Parse` would have failed on the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamKeyError {
    #[error("invalid control character in URL {0:?}")]
    ControlCharacter(String),
    #[error("missing protocol scheme in URL {0:?}")]
    MissingScheme(String),
    #[error("invalid URL escape in {0:?}")]
    InvalidEscape(String),
    #[error("invalid port in URL {0:?}")]
    InvalidPort(String),
    #[error("invalid host in URL {0:?}")]
    InvalidHost(String),
    #[error("invalid userinfo in URL {0:?}")]
    InvalidUserinfo(String),
    #[error("first path segment in URL cannot contain colon: {0:?}")]
    ColonInFirstSegment(String),
}

/// Go `buildStreamURL(u)`: the general rule, for any URL string (§4.1 steps 1–4).
pub fn stream_key_from_url(url: &str) -> Result<String, StreamKeyError> {
    let parsed = GoUrl::parse(url)?;
    Ok(key_from_host_and_path(parsed.hostname(), &parsed.path))
}

/// RTMP: `tcUrl` from `connect`, `stream_name` exactly as sent in `publish`/`play` (any `?query`
/// included). Identical to Go for a tcUrl without a query; see the module doc for §10 #2.
pub fn stream_key_from_rtmp(tc_url: &str, stream_name: &str) -> Result<String, StreamKeyError> {
    let (base, tc_query) = split_tc_url(tc_url);
    let (_, stream_query) = split_once_any(stream_name, &["?"]);
    // The stream name's query and fragment are dropped by the URL parse below, as in Go.
    let parsed = GoUrl::parse(&format!("{base}/{stream_name}"))?;
    let vhost = tc_query
        .and_then(srs_vhost_param)
        .or_else(|| stream_query.and_then(srs_vhost_param));
    let host = match vhost {
        // The vhost is a name the client chose; reject what could not be a host, the way Go's
        // parser rejects a bad authority, instead of smuggling '/' or '?' into the key.
        Some(v) => {
            if v.bytes().any(|b| b < 0x80 && host_char_needs_escape(b)) {
                return Err(StreamKeyError::InvalidHost(v));
            }
            v
        }
        None => parsed.hostname().to_owned(),
    };
    Ok(key_from_host_and_path(&host, &parsed.path))
}

/// HTTP-FLV/TS, HLS, WHIP/WHEP: Go `convertURLToStreamURL` then `buildStreamURL` (§4.1).
///
/// `host_header` is the `Host` value (`None` when absent, as in HTTP/1.0), `path` the raw request
/// path without the query (still percent-encoded), `query` the raw query without `?`.
///
/// The hostname is used only when the `Host` value contains `:` (Go `net.SplitHostPort`), so
/// `Host: example.com` lands in `__defaultVhost__` (§4.1, locked in by G4's unit test). The path is
/// decoded twice, as Go does (once by the HTTP server, once by re-parsing the unified URL).
pub fn stream_key_from_http(
    host_header: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> Result<String, StreamKeyError> {
    let hostname = host_header
        .filter(|h| h.contains(':'))
        .and_then(go_split_host_port)
        .unwrap_or(DEFAULT_VHOST);
    let app = query.and_then(|q| crate::http::query_param(q, "app"));
    let stream = query.and_then(|q| crate::http::query_param(q, "stream"));
    let app = app.filter(|a| !a.is_empty());
    let stream = stream.filter(|s| !s.is_empty());
    let app_stream = if app.is_some() || stream.is_some() {
        let mut s = String::new();
        if let Some(app) = app {
            s.push('/');
            s.push_str(&app);
        }
        if let Some(stream) = stream {
            s.push('/');
            s.push_str(&stream);
        }
        s
    } else {
        // Go's server has already decoded r.URL.Path once.
        let decoded =
            unescape(path, Mode::Path).ok_or_else(|| StreamKeyError::InvalidEscape(path.into()))?;
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let ext = go_path_ext(&decoded);
        decoded[..decoded.len() - ext.len()].to_owned()
    };
    stream_key_from_url(&format!("http://{hostname}{app_stream}"))
}

/// SRT: `"srt://" + (h or "localhost") + "/" + r` from the stream id (§4.1, §5.7).
pub fn stream_key_from_srt(host: Option<&str>, resource: &str) -> Result<String, StreamKeyError> {
    let host = host.filter(|h| !h.is_empty()).unwrap_or("localhost");
    stream_key_from_url(&format!("srt://{host}/{resource}"))
}

fn key_from_host_and_path(host: &str, path: &str) -> String {
    if !host.contains('.') || is_go_ipv4(host) {
        format!("{DEFAULT_VHOST}{path}")
    } else {
        format!("{host}{path}")
    }
}

/// Go `net.ParseIP(host).To4() != nil`: dotted IPv4, or an IPv4-mapped IPv6 literal.
fn is_go_ipv4(host: &str) -> bool {
    host.parse::<Ipv4Addr>().is_ok()
        || host
            .parse::<Ipv6Addr>()
            .is_ok_and(|v6| v6.to_ipv4_mapped().is_some())
}

/// Splits the tcUrl into `scheme://authority/path` and its query. Besides `?`, SRS treats the FMLE
/// separator `...` as the start of the query (`rtmp://h/app...vhost...v1`), but only after the
/// authority, so a hostname can never be cut.
fn split_tc_url(tc_url: &str) -> (&str, Option<&str>) {
    let after_scheme = tc_url.find("://").map_or(0, |i| i + 3);
    let path_start = tc_url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(tc_url.len(), |i| after_scheme + i);
    let (head, rest) = tc_url.split_at(path_start);
    let (path, query) = split_once_any(rest, &["?", "..."]);
    // INVARIANT: `path` is a prefix of `rest`, which starts at a char boundary of `tc_url`.
    let base = &tc_url[..head.len() + path.len()];
    (base, query)
}

/// Splits at the earliest of `seps`; returns the text before it and after it.
fn split_once_any<'a>(s: &'a str, seps: &[&str]) -> (&'a str, Option<&'a str>) {
    let best = seps
        .iter()
        .filter_map(|sep| s.find(sep).map(|i| (i, sep.len())))
        .min_by_key(|(i, _)| *i);
    match best {
        Some((i, len)) => (&s[..i], Some(&s[i + len..])),
        None => (s, None),
    }
}

/// SRS `srs_vhost_resolve`: the query separators `?`, `&`, `,`, `=` and `...` are all equivalent,
/// and the value follows the token `vhost` (or `domain`, SRS 4+). `__defaultVhost__` means
/// "no vhost", as in SRS.
fn srs_vhost_param(query: &str) -> Option<String> {
    let normalized = query.replace("...", "?");
    let tokens: Vec<&str> = normalized.split(['?', '&', ',', '=', '#', '/']).collect();
    let find = |name: &str| {
        tokens
            .windows(2)
            .find(|w| w[0] == name && !w[1].is_empty())
            .map(|w| w[1])
    };
    let value = find("vhost").or_else(|| find("domain"))?;
    let decoded = unescape(value, Mode::Query)?;
    let decoded = String::from_utf8_lossy(&decoded).into_owned();
    (decoded != DEFAULT_VHOST && !decoded.is_empty()).then_some(decoded)
}

/// Go `net.SplitHostPort` (host part only): `[v6]:port` → `v6`; `host:port` → `host` where `host`
/// has no further ':'. Port text is not checked, as in Go.
fn go_split_host_port(hp: &str) -> Option<&str> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let (host, after) = (&rest[..end], &rest[end + 1..]);
        let port = after.strip_prefix(':')?;
        if port.contains([':', '[', ']']) || host.contains(['[', ']']) {
            return None;
        }
        return Some(host);
    }
    let colon = hp.rfind(':')?;
    let host = &hp[..colon];
    if host.contains([':', '[', ']']) || hp[colon + 1..].contains([']', '[']) {
        return None;
    }
    Some(host)
}

/// Go `path.Ext`: the suffix from the final `.` in the final `/`-separated element.
fn go_path_ext(p: &str) -> &str {
    for (i, b) in p.bytes().enumerate().rev() {
        match b {
            b'/' => return "",
            b'.' => return &p[i..],
            _ => {}
        }
    }
    ""
}

/// The parts of Go's `url.URL` the key needs.
#[derive(Debug)]
struct GoUrl {
    /// `u.Host`: authority without userinfo, still with port and brackets.
    host: String,
    /// `u.Path`: percent-decoded.
    path: String,
}

impl GoUrl {
    /// Go `url.Parse` (net/url `parse`, `viaRequest == false`), reduced to host and path.
    fn parse(raw: &str) -> Result<GoUrl, StreamKeyError> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(StreamKeyError::ControlCharacter(raw.into()));
        }
        let raw_no_frag = raw.split_once('#').map_or(raw, |(u, _)| u);
        if raw_no_frag == "*" {
            return Ok(GoUrl {
                host: String::new(),
                path: "*".into(),
            });
        }
        let (scheme, rest) =
            go_scheme(raw_no_frag).ok_or_else(|| StreamKeyError::MissingScheme(raw.into()))?;
        let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
            &rest[..rest.len() - 1]
        } else {
            rest.split_once('?').map_or(rest, |(p, _)| p)
        };
        if !rest.starts_with('/') {
            if !scheme.is_empty() {
                // Opaque URL such as `rtmp:live`: Go leaves Host and Path empty.
                return Ok(GoUrl {
                    host: String::new(),
                    path: String::new(),
                });
            }
            let first_segment = rest.split_once('/').map_or(rest, |(s, _)| s);
            if first_segment.contains(':') {
                return Err(StreamKeyError::ColonInFirstSegment(raw.into()));
            }
        }
        let mut host = String::new();
        let mut path = rest;
        if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, p) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            host = parse_authority(authority, raw)?;
            path = p;
        }
        let decoded =
            unescape(path, Mode::Path).ok_or_else(|| StreamKeyError::InvalidEscape(raw.into()))?;
        Ok(GoUrl {
            host,
            path: String::from_utf8_lossy(&decoded).into_owned(),
        })
    }

    /// Go `URL.Hostname()`: without a valid `:port` suffix and without IPv6 brackets.
    fn hostname(&self) -> &str {
        let mut h = self.host.as_str();
        if let Some(colon) = h.rfind(':') {
            if valid_optional_port(&h[colon..]) {
                h = &h[..colon];
            }
        }
        if h.starts_with('[') && h.ends_with(']') && h.len() >= 2 {
            h = &h[1..h.len() - 1];
        }
        h
    }
}

/// Go `getScheme`: `Some(("", raw))` when there is no scheme, `None` for a leading ':'.
fn go_scheme(raw: &str) -> Option<(&str, &str)> {
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((&raw[..i], &raw[i + 1..])),
            _ => return Some(("", raw)),
        }
    }
    Some(("", raw))
}

/// Go `parseAuthority` + `parseHost`; returns `u.Host` (decoded, brackets and port kept).
fn parse_authority(authority: &str, raw: &str) -> Result<String, StreamKeyError> {
    let host = match authority.rfind('@') {
        Some(i) => {
            if !authority[..i].bytes().all(valid_userinfo_byte) {
                return Err(StreamKeyError::InvalidUserinfo(raw.into()));
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    if host.starts_with('[') {
        let end = host
            .rfind(']')
            .ok_or_else(|| StreamKeyError::InvalidHost(raw.into()))?;
        if !valid_optional_port(&host[end + 1..]) {
            return Err(StreamKeyError::InvalidPort(raw.into()));
        }
    } else if let Some(colon) = host.rfind(':') {
        if !valid_optional_port(&host[colon..]) {
            return Err(StreamKeyError::InvalidPort(raw.into()));
        }
    }
    let decoded =
        unescape(host, Mode::Host).ok_or_else(|| StreamKeyError::InvalidHost(raw.into()))?;
    Ok(String::from_utf8_lossy(&decoded).into_owned())
}

/// Go `validOptionalPort`: empty, or ':' followed by digits only (":" alone is valid).
fn valid_optional_port(s: &str) -> bool {
    s.is_empty()
        || s.strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Go `validUserinfo`.
fn valid_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b':'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
                | b'@'
        )
        || b >= 0x80
}

/// Go `shouldEscape(c, encodeHost)` for ASCII: a byte a host may not contain.
fn host_char_needs_escape(b: u8) -> bool {
    !(b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    /// Query component: '+' means space.
    Query,
}

/// Go `unescape`: `None` for a malformed `%` escape, or for what Go rejects in a host.
fn unescape(s: &str, mode: Mode) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                // Go: in a host only non-ASCII bytes may be escaped, except "%25" (RFC 6874 zones).
                if mode == Mode::Host && hi < 8 && &bytes[i..i + 3] != b"%25" {
                    return None;
                }
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if mode == Mode::Query => {
                out.push(b' ');
                i += 1;
            }
            b if mode == Mode::Host && b < 0x80 && host_char_needs_escape(b) => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` (and '+' as space when `plus_as_space`); shared with the HTTP helpers.
pub(crate) fn percent_decode_bytes(s: &str, plus_as_space: bool) -> Option<Vec<u8>> {
    unescape(
        s,
        if plus_as_space {
            Mode::Query
        } else {
            Mode::Path
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = DEFAULT_VHOST;

    #[test]
    fn rtmp_examples_from_spec_4_1() {
        let cases = [
            (
                "rtmp://localhost/live",
                "livestream",
                format!("{D}/live/livestream"),
            ),
            (
                "rtmp://192.168.1.10:1935/live",
                "livestream?secret=x",
                format!("{D}/live/livestream"),
            ),
            (
                "rtmp://example.com/live",
                "livestream",
                "example.com/live/livestream".into(),
            ),
            ("rtmp://[::1]/live", "s", format!("{D}/live/s")),
            // Fixtures README, "Stream keys a proxy should derive".
            (
                "rtmp://127.0.0.1:51936/live",
                "livestream",
                format!("{D}/live/livestream"),
            ),
            (
                "rtmp://127.0.0.1:51936/live",
                "livestream?secret=abc123",
                format!("{D}/live/livestream"),
            ),
        ];
        for (tc_url, stream, want) in cases {
            assert_eq!(
                stream_key_from_rtmp(tc_url, stream).as_deref(),
                Ok(want.as_str()),
                "{tc_url} + {stream}"
            );
            // Without a tcUrl query the key is exactly Go's `buildStreamURL(tcUrl + "/" + stream)`.
            assert_eq!(
                stream_key_from_url(&format!("{tc_url}/{stream}")).as_deref(),
                Ok(want.as_str())
            );
        }
    }

    #[test]
    fn rtmp_tcurl_query_no_longer_swallows_the_stream_name() {
        // §4.1: Go gives `__defaultVhost__/live` here (§10 #2); the fix keeps the stream name.
        assert_eq!(
            stream_key_from_url("rtmp://localhost/live?vhost=v1/livestream").unwrap(),
            format!("{D}/live")
        );
        assert_eq!(
            stream_key_from_rtmp("rtmp://localhost/live?vhost=v1", "livestream").unwrap(),
            format!("{D}/live/livestream")
        );
        assert_eq!(
            stream_key_from_rtmp("rtmp://localhost/live?secret=1", "a").unwrap(),
            format!("{D}/live/a")
        );
    }

    #[test]
    fn rtmp_honours_srs_vhost_parameters() {
        let cases = [
            (
                "rtmp://127.0.0.1/live?vhost=example.com",
                "s",
                "example.com/live/s",
            ),
            (
                "rtmp://127.0.0.1/live...vhost...example.com",
                "s",
                "example.com/live/s",
            ),
            (
                "rtmp://127.0.0.1/live?token=1&&vhost=example.com",
                "s",
                "example.com/live/s",
            ),
            (
                "rtmp://127.0.0.1/live?token=1&vhost=example.com",
                "s",
                "example.com/live/s",
            ),
            (
                "rtmp://127.0.0.1/live?domain=example.com",
                "s",
                "example.com/live/s",
            ),
            (
                "rtmp://127.0.0.1/live?domain=a.com&vhost=b.com",
                "s",
                "b.com/live/s",
            ),
            (
                "rtmp://127.0.0.1/live",
                "s?vhost=example.com",
                "example.com/live/s",
            ),
            (
                "rtmp://other.org/live?vhost=__defaultVhost__",
                "s",
                "other.org/live/s",
            ),
            (
                "rtmp://example.com/live?vhost=v1",
                "s",
                "__defaultVhost__/live/s",
            ),
            (
                "rtmp://example.com/live?vhost=10.0.0.1",
                "s",
                "__defaultVhost__/live/s",
            ),
            ("rtmp://example.com/live?vhost=", "s", "example.com/live/s"),
        ];
        for (tc_url, stream, want) in cases {
            assert_eq!(
                stream_key_from_rtmp(tc_url, stream).as_deref(),
                Ok(want),
                "{tc_url} + {stream}"
            );
        }
    }

    #[test]
    fn rtmp_rejects_a_vhost_that_is_not_a_host() {
        assert!(stream_key_from_rtmp("rtmp://h/live?vhost=a%2Fb.com", "s").is_err());
        assert!(stream_key_from_rtmp("rtmp://h/live?vhost=a b.com", "s").is_err());
    }

    #[test]
    fn http_examples_from_spec_4_1() {
        let cases: [(Option<&str>, &str, Option<&str>, String); 9] = [
            (
                Some("example.com:18080"),
                "/live/livestream.flv",
                None,
                "example.com/live/livestream".into(),
            ),
            (
                Some("example.com"),
                "/live/livestream.flv",
                None,
                format!("{D}/live/livestream"),
            ),
            (
                Some("127.0.0.1:18080"),
                "/live/livestream.m3u8",
                None,
                format!("{D}/live/livestream"),
            ),
            (
                Some("localhost:11985"),
                "/rtc/v1/whip/",
                Some("app=live&stream=livestream"),
                format!("{D}/live/livestream"),
            ),
            (
                Some("127.0.0.1:11985"),
                "/rtc/v1/play/",
                None,
                format!("{D}/rtc/v1/play/"),
            ),
            (
                Some("[::1]:8080"),
                "/live/s.flv",
                None,
                format!("{D}/live/s"),
            ),
            (None, "/live/s.flv", None, format!("{D}/live/s")),
            (
                Some("127.0.0.1:51081"),
                "/live/livestream.ts",
                Some("hls_ctx=46kh9n5v"),
                format!("{D}/live/livestream"),
            ),
            (
                Some("127.0.0.1:51986"),
                "/rtc/v1/whip/",
                Some("app=live&stream=whipstream"),
                format!("{D}/live/whipstream"),
            ),
        ];
        for (host, path, query, want) in cases {
            assert_eq!(
                stream_key_from_http(host, path, query).as_deref(),
                Ok(want.as_str()),
                "{host:?} {path} {query:?}"
            );
        }
    }

    #[test]
    fn http_query_params_follow_go_url_values() {
        let h = Some("a.com:80");
        assert_eq!(
            stream_key_from_http(h, "/x", Some("stream=s")).unwrap(),
            "a.com/s"
        );
        assert_eq!(
            stream_key_from_http(h, "/x", Some("app=live")).unwrap(),
            "a.com/live"
        );
        assert_eq!(
            stream_key_from_http(h, "/x.flv", Some("app=&stream=")).unwrap(),
            "a.com/x"
        );
        assert_eq!(
            stream_key_from_http(h, "/x", Some("app=my+app&stream=s%21")).unwrap(),
            "a.com/my app/s!"
        );
        // Go drops pairs with ';' or a bad escape.
        assert_eq!(
            stream_key_from_http(h, "/x.flv", Some("app=a;b")).unwrap(),
            "a.com/x"
        );
        assert_eq!(
            stream_key_from_http(h, "/x.flv", Some("app=%zz&app=b")).unwrap(),
            "a.com/b"
        );
    }

    #[test]
    fn http_path_is_decoded_twice_like_go() {
        let h = Some("a.com:80");
        assert_eq!(
            stream_key_from_http(h, "/live/a%2520b.flv", None).unwrap(),
            "a.com/live/a b"
        );
        assert_eq!(
            stream_key_from_http(h, "/live/a%3Fb.flv", None).unwrap(),
            "a.com/live/a"
        );
        assert!(stream_key_from_http(h, "/live/a%25zz", None).is_err());
        assert!(stream_key_from_http(h, "/live/%zz", None).is_err());
        assert_eq!(
            stream_key_from_http(h, "/live/dir.v2/s", None).unwrap(),
            "a.com/live/dir.v2/s"
        );
        assert_eq!(
            stream_key_from_http(h, "/live/s", None).unwrap(),
            "a.com/live/s"
        );
    }

    #[test]
    fn http_host_header_edge_cases() {
        // SplitHostPort fails → default vhost.
        assert_eq!(
            stream_key_from_http(Some("a.b:c:d"), "/l/s", None).unwrap(),
            format!("{D}/l/s")
        );
        assert_eq!(
            stream_key_from_http(Some("a.com:"), "/l/s", None).unwrap(),
            "a.com/l/s"
        );
        assert_eq!(
            stream_key_from_http(Some("[2001:db8::1]:80"), "/l/s", None).unwrap(),
            format!("{D}/l/s")
        );
        // Go's url.Parse fails on "http://::ffff:1.2.3.4/…" (":1.2.3.4" is not a port).
        assert!(stream_key_from_http(Some("[::ffff:1.2.3.4]:80"), "/l/s", None).is_err());
        assert!(stream_key_from_http(Some("a b.com:80"), "/l/s", None).is_err());
    }

    #[test]
    fn srt_examples_from_spec_4_1() {
        assert_eq!(
            stream_key_from_srt(None, "live/livestream").unwrap(),
            format!("{D}/live/livestream")
        );
        assert_eq!(
            stream_key_from_srt(Some("example.com"), "live/livestream").unwrap(),
            "example.com/live/livestream"
        );
        assert_eq!(
            stream_key_from_srt(None, "live/srtstream").unwrap(),
            format!("{D}/live/srtstream")
        );
        assert_eq!(
            stream_key_from_srt(None, "live/srtenc").unwrap(),
            format!("{D}/live/srtenc")
        );
        assert_eq!(
            stream_key_from_srt(Some(""), "live/s").unwrap(),
            format!("{D}/live/s")
        );
    }

    #[test]
    fn go_url_parse_vectors() {
        let cases: [(&str, Result<String, ()>); 16] = [
            ("rtmp://a.com:1935/live/s", Ok("a.com/live/s".into())),
            ("rtmp://user:pw@a.com/live/s", Ok("a.com/live/s".into())),
            ("rtmp://a.com/live/s#frag", Ok("a.com/live/s".into())),
            ("rtmp://a.com/live/s%20x", Ok("a.com/live/s x".into())),
            ("rtmp://a.com/live/a+b", Ok("a.com/live/a+b".into())),
            ("rtmp://[::ffff:1.2.3.4]/l/s", Ok(format!("{D}/l/s"))),
            ("rtmp://[2001:db8::1]:1935/l/s", Ok(format!("{D}/l/s"))),
            ("rtmp://1.2.3.4/l/s", Ok(format!("{D}/l/s"))),
            ("rtmp://01.2.3.4/l/s", Ok("01.2.3.4/l/s".into())),
            ("rtmp:live", Ok(D.into())),
            ("", Ok(D.into())),
            ("rtmp://a.com:x/l", Err(())),
            ("rtmp://a.com/l%zz", Err(())),
            ("rtmp://a\u{1}.com/l", Err(())),
            ("://a.com/l", Err(())),
            ("rtmp://[::1/l", Err(())),
        ];
        for (url, want) in cases {
            assert_eq!(stream_key_from_url(url).map_err(|_| ()), want, "{url}");
        }
        assert_eq!(
            stream_key_from_url("http://::1/live/s").unwrap(),
            format!("{D}/live/s")
        );
        assert_eq!(stream_key_from_url("a:b/c").map_err(|_| ()), Ok(D.into()));
        assert!(stream_key_from_url("/a:b").is_ok());
        assert!(stream_key_from_url("a/b:c").is_ok());
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let nasty = [
            "",
            "?",
            "#",
            "...",
            "rtmp://",
            "rtmp://[",
            "rtmp://]",
            "rtmp://@",
            "rtmp://%",
            "rtmp://%e9.com/x",
            "rtmp://h/%",
            "rtmp://h/%e",
            "rtmp://h/\u{7f}",
            "é://x",
            "rtmp://é.com/é",
            "rtmp://h/live?vhost",
            "rtmp://h/live?vhost=%",
            "rtmp://h/live?vhost=%ff.com",
            "rtmp://h...vhost...x.y/app",
            "////",
            "rtmp:////x",
            "[",
            "\u{0}",
        ];
        for a in nasty {
            for b in nasty {
                let _ = stream_key_from_rtmp(a, b);
                let _ = stream_key_from_http(Some(a), b, Some(a));
                let _ = stream_key_from_srt(Some(a), b);
            }
            let _ = stream_key_from_url(a);
        }
    }
}
