//! HTTP/1.1 request heads (RFC 9112 §2–§7), parsed incrementally with `httparse`.
//!
//! Contract (design habit #3): [`parse_request_head`] is called with everything buffered so far.
//! `Ok(None)` means "need more bytes" and is not an error; `Ok(Some((head, n)))` means the head is
//! the first `n` bytes and whatever follows (a body, or a pipelined request) belongs to the caller.
//! A head that is not complete within [`Limits::max_head_bytes`] is refused, so a slow or hostile
//! client can never make the caller buffer without bound.

use crate::stream_key::percent_decode_bytes;

/// Upper bound on `Limits::max_headers`: the header slots live on the stack.
const MAX_HEADER_SLOTS: usize = 128;

/// Bounds for one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line + headers + the blank line. Above it → [`HttpError::HeadTooLarge`] (431).
    pub max_head_bytes: usize,
    /// Header fields; capped at 128. Above it → [`HttpError::TooManyHeaders`] (431).
    pub max_headers: usize,
}

impl Default for Limits {
    /// 16 KiB and 64 fields: an SRS heartbeat is ~150 B of head with 5 fields, a browser's
    /// request a few hundred bytes with ~15.
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No `Content-Length` and no `Transfer-Encoding`: a request without a body.
    None,
    ContentLength(u64),
    /// Decode with [`crate::http::ChunkedDecoder`].
    Chunked,
}

/// A parsed request head. Owned, so the read buffer can be reused at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// Raw (still percent-encoded) path without the query. For an absolute-form target
    /// (`GET http://h/p`) only the path; `*` for `OPTIONS *`.
    pub path: String,
    /// Raw query without the `?`; `Some("")` for a bare `?`.
    pub query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// In wire order, names as sent.
    pub headers: Headers,
    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    pub keep_alive: bool,
    pub body: BodyKind,
}

/// A request's header fields in wire order, names as sent. All names share one buffer and all
/// values another, so a head costs three allocations however many fields it has (one `String`
/// and one `Vec` per field before: 21 for a player's ten headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    names: String,
    values: Vec<u8>,
    /// Per field: where its name and its value end in `names` and `values`.
    ends: Vec<(usize, usize)>,
}

impl Headers {
    /// Appends a field.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.names.push_str(name);
        self.values.extend_from_slice(value);
        self.ends.push((self.names.len(), self.values.len()));
    }

    /// Fields in wire order: `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let mut start = (0, 0);
        self.ends.iter().map(move |&(n, v)| {
            let (n0, v0) = std::mem::replace(&mut start, (n, v));
            // Ends are pushed in increasing order, each at a `str` boundary (`push_str`).
            (
                self.names.get(n0..n).unwrap_or_default(),
                self.values.get(v0..v).unwrap_or_default(),
            )
        })
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl RequestHead {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header called `name`, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header called `name`, in wire order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Why a request was refused. [`HttpError::status`] is the response code to send before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("invalid Content-Length")]
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`: the classic smuggling vector (RFC 9112 §6.1).
    #[error("both Content-Length and Transfer-Encoding")]
    ConflictingLength,
    #[error("unsupported Transfer-Encoding")]
    UnsupportedTransferCoding,
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders => 431,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::Malformed(_)
            | HttpError::BadContentLength
            | HttpError::ConflictingLength
            | HttpError::BadChunk(_) => 400,
        }
    }
}

/// Parses one request head from the start of `buf`; see the module doc for the contract.
pub fn parse_request_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, HttpError> {
    // Uninitialised slots: httparse writes only those it fills (initialising all 128 cost more
    // than parsing a typical head).
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADER_SLOTS)];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= limits.max_head_bytes {
                Err(HttpError::HeadTooLarge {
                    limit: limits.max_head_bytes,
                })
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(e) => return Err(HttpError::Malformed(httparse_reason(e))),
    };
    if head_len > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge {
            limit: limits.max_head_bytes,
        });
    }
    // INVARIANT: httparse fills method, path and version before returning Complete; the
    // `ok_or` keeps that a 400 rather than a panic should it ever change.
    let method = req.method.ok_or(HttpError::Malformed("no method"))?;
    let target = req.path.ok_or(HttpError::Malformed("no request target"))?;
    let version_minor = req.version.ok_or(HttpError::Malformed("no version"))?;
    let (path, query) = split_target(target)?;

    let mut headers = Headers {
        names: String::with_capacity(req.headers.iter().map(|h| h.name.len()).sum()),
        values: Vec::with_capacity(req.headers.iter().map(|h| h.value.len()).sum()),
        ends: Vec::with_capacity(req.headers.len()),
    };
    for h in req.headers.iter() {
        headers.push(h.name, h.value);
    }
    let mut head = RequestHead {
        method: method.to_owned(),
        path,
        query,
        version_minor,
        headers,
        keep_alive: false,
        body: BodyKind::None,
    };
    // RFC 9112 §3.2: more than one Host is a 400; it would make routing ambiguous.
    if head.headers_named("host").nth(1).is_some() {
        return Err(HttpError::Malformed("more than one Host header"));
    }
    head.keep_alive = keep_alive(&head);
    head.body = body_kind(&head)?;
    Ok(Some((head, head_len)))
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "invalid HTTP version",
        httparse::Error::TooManyHeaders => "too many headers",
    }
}

/// Origin-form `/p?q`, absolute-form `http://h/p?q` (RFC 9112 §3.2.2, which a server must accept)
/// and asterisk-form `*`. Authority-form (CONNECT) is refused: this proxy is not a forward proxy.
fn split_target(target: &str) -> Result<(String, Option<String>), HttpError> {
    let origin_form = if target.starts_with('/') || target == "*" {
        target
    } else if let Some(rest) = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
    {
        // Skip the authority. `http://h?q` has an empty path, which means "/" (RFC 9110 §4.2.3).
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            Some(i) => return Ok(("/".to_owned(), Some(rest[i + 1..].to_owned()))),
            None => "/",
        }
    } else {
        return Err(HttpError::Malformed("unsupported request target form"));
    };
    Ok(match origin_form.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (origin_form.to_owned(), None),
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))
    .then(|| &s[prefix.len()..])
}

/// Comma-separated tokens of every header called `name`, trimmed, lowercase comparisons left to
/// the caller.
fn tokens<'a>(head: &'a RequestHead, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers_named(name)
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// RFC 9112 §9.3: HTTP/1.1 persists unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive`.
fn keep_alive(head: &RequestHead) -> bool {
    let mut close = false;
    let mut keep = false;
    for t in tokens(head, "connection") {
        close |= t.eq_ignore_ascii_case(b"close");
        keep |= t.eq_ignore_ascii_case(b"keep-alive");
    }
    if close {
        false
    } else if head.version_minor >= 1 {
        true
    } else {
        keep
    }
}

/// RFC 9112 §6.3, strictly: any ambiguity is a 400, because the System API and later the stream
/// server sit in front of origins that might frame the body differently (request smuggling).
fn body_kind(head: &RequestHead) -> Result<BodyKind, HttpError> {
    let has_te = head.header("transfer-encoding").is_some();
    let has_cl = head.header("content-length").is_some();
    if has_te && has_cl {
        return Err(HttpError::ConflictingLength);
    }
    if has_te {
        // Transfer-Encoding arrived with HTTP/1.1; in a 1.0 request it cannot be trusted.
        if head.version_minor == 0 {
            return Err(HttpError::Malformed(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        let codings: Vec<&[u8]> = tokens(head, "transfer-encoding").collect();
        // Only `chunked` is decoded; anything before it (gzip, …) would need decompression we
        // do not do, and a final coding other than chunked cannot frame a request (§6.3 item 4).
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyKind::Chunked),
            [.., last] if last.eq_ignore_ascii_case(b"chunked") => {
                Err(HttpError::UnsupportedTransferCoding)
            }
            [] => Err(HttpError::Malformed("empty Transfer-Encoding")),
            _ => Err(HttpError::Malformed(
                "Transfer-Encoding does not end with chunked",
            )),
        };
    }
    let length = content_length(head.headers_named("content-length"))?;
    Ok(length.map_or(BodyKind::None, BodyKind::ContentLength))
}

/// The body length given by the `Content-Length` header values of a request or a response.
/// RFC 9112 §6.3 item 5: repeated or comma-listed identical values are one value; different ones
/// (or anything not a decimal number) are an error.
pub(crate) fn content_length<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<u64>, HttpError> {
    let mut length: Option<u64> = None;
    for value in values {
        for part in value.split(|b| *b == b',') {
            let n = parse_decimal(part.trim_ascii()).ok_or(HttpError::BadContentLength)?;
            match length {
                Some(prev) if prev != n => return Err(HttpError::BadContentLength),
                _ => length = Some(n),
            }
        }
    }
    Ok(length)
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Decodes `%XX` escapes (a path: `+` stays `+`). `None` for a malformed escape or when the result
/// is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s, false)?).ok()
}

/// The first value of `name` in a query string, with Go `url.ParseQuery` semantics (spec §4.1):
/// pairs split on `&`, a pair containing `;` or a malformed escape is skipped, `+` means space,
/// a key without `=` has the empty value. Non-UTF-8 results are decoded lossily.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(key) = percent_decode_bytes(key, true) else {
            continue;
        };
        let Some(value) = percent_decode_bytes(value, true) else {
            continue;
        };
        if key == name.as_bytes() {
            return Some(String::from_utf8_lossy(&value).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse_request_head(buf, &Limits::default())
    }

    fn complete(buf: &[u8]) -> (RequestHead, usize) {
        parse(buf).expect("valid").expect("complete")
    }

    #[test]
    fn parses_a_simple_get() {
        let (h, n) = complete(b"GET /live/s.flv?a=1 HTTP/1.1\r\nHost: x:1\r\n\r\nrest");
        assert_eq!(n, 43);
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/live/s.flv");
        assert_eq!(h.query.as_deref(), Some("a=1"));
        assert_eq!(h.version_minor, 1);
        assert_eq!(h.header("HOST"), Some(&b"x:1"[..]));
        assert!(h.keep_alive);
        assert_eq!(h.body, BodyKind::None);
    }

    #[test]
    fn keep_alive_follows_version_and_connection_tokens() {
        let cases: [(&[u8], bool); 6] = [
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (
                b"GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
                false,
            ),
        ];
        for (buf, want) in cases {
            assert_eq!(
                complete(buf).0.keep_alive,
                want,
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn body_framing_is_strict() {
        let ok: [(&[u8], BodyKind); 5] = [
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                BodyKind::ContentLength(5),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                BodyKind::ContentLength(5),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
                BodyKind::ContentLength(5),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n",
                BodyKind::Chunked,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                BodyKind::ContentLength(0),
            ),
        ];
        for (buf, want) in ok {
            assert_eq!(complete(buf).0.body, want);
        }
        let bad: [(&[u8], u16); 8] = [
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                400,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                400,
            ),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                501,
            ),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ];
        for (buf, status) in bad {
            let err = parse(buf).expect_err(&String::from_utf8_lossy(buf));
            assert_eq!(err.status(), status, "{err}");
        }
    }

    #[test]
    fn headers_keep_wire_order_names_as_sent_and_raw_values() {
        let (h, _) = complete(
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nAccept: */*\r\nx-obs: caf\xe9\r\naccept: b\r\n\r\n",
        );
        let fields: Vec<(&str, &[u8])> = h.headers.iter().collect();
        assert_eq!(
            fields,
            vec![
                ("Host", &b"a"[..]),
                ("X-Empty", &b""[..]),
                ("Accept", &b"*/*"[..]),
                ("x-obs", &b"caf\xe9"[..]),
                ("accept", &b"b"[..]),
            ]
        );
        assert_eq!(h.headers.len(), 5);
        assert_eq!(h.header("ACCEPT"), Some(&b"*/*"[..]));
        assert_eq!(h.header("x-empty"), Some(&b""[..]));
        assert_eq!(h.header_str("x-obs"), None, "not UTF-8");
        assert_eq!(h.header("missing"), None);
        let accepts: Vec<&[u8]> = h.headers_named("accept").collect();
        assert_eq!(accepts, vec![&b"*/*"[..], &b"b"[..]]);
        let (bare, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(bare.headers.is_empty());
        assert_eq!(bare.headers.iter().count(), 0);
    }

    #[test]
    fn request_target_forms() {
        let (h, _) = complete(b"GET http://a.com:80/live/s.flv?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!(
            (h.path.as_str(), h.query.as_deref()),
            ("/live/s.flv", Some("x=1"))
        );
        let (h, _) = complete(b"GET HTTP://a.com?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!((h.path.as_str(), h.query.as_deref()), ("/", Some("x=1")));
        let (h, _) = complete(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!(h.path, "*");
        let (h, _) = complete(b"GET /a? HTTP/1.1\r\n\r\n");
        assert_eq!(h.query.as_deref(), Some(""));
        assert_eq!(
            parse(b"CONNECT a.com:443 HTTP/1.1\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn partial_head_needs_more_bytes_until_the_limit() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
        let limits = Limits {
            max_head_bytes: 32,
            max_headers: 4,
        };
        let long = b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            parse_request_head(long, &limits),
            Err(HttpError::HeadTooLarge { limit: 32 })
        );
        let complete_but_long = b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaa\r\n\r\n";
        assert_eq!(
            parse_request_head(complete_but_long, &limits)
                .unwrap_err()
                .status(),
            431
        );
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\n\r\n";
        let few = Limits {
            max_head_bytes: 1024,
            max_headers: 2,
        };
        assert_eq!(
            parse_request_head(many, &few),
            Err(HttpError::TooManyHeaders)
        );
    }

    #[test]
    fn query_param_matches_go_parse_query() {
        assert_eq!(
            query_param("app=live&stream=s", "stream").as_deref(),
            Some("s")
        );
        assert_eq!(query_param("app=a&app=b", "app").as_deref(), Some("a"));
        assert_eq!(query_param("app", "app").as_deref(), Some(""));
        assert_eq!(query_param("a%70p=x+y%21", "app").as_deref(), Some("x y!"));
        assert_eq!(query_param("app=x;y&app=z", "app").as_deref(), Some("z"));
        assert_eq!(query_param("app=%g1&app=z", "app").as_deref(), Some("z"));
        assert_eq!(query_param("", "app"), None);
        assert_eq!(query_param("&&=&", "app"), None);
    }

    #[test]
    fn percent_decode_handles_bad_escapes() {
        assert_eq!(percent_decode("/a%20b+c").as_deref(), Some("/a b+c"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
    }
}
