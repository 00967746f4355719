//! HTTP/1.1 response heads from origins (RFC 9112 §4, §6.3) and the header filter between an
//! origin and a client (RFC 9110 §7.6.1: hop-by-hop fields are not forwarded).
//!
//! Same contract as [`super::parse_request_head`]: `Ok(None)` is "need more bytes", `Ok(Some((head,
//! n)))` means the head is the first `n` bytes and the rest is body, and the head is bounded by
//! [`Limits`].

use super::request::{content_length, HttpError, Limits};

/// Upper bound on header slots kept on the stack.
const MAX_HEADER_SLOTS: usize = 128;

/// How an origin's response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: a response to `HEAD`, or 1xx/204/304.
    None,
    ContentLength(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Neither: the body ends when the origin closes the connection.
    UntilClose,
}

/// A parsed response head, owned so the read buffer can be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub version_minor: u8,
    /// In wire order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: ResponseBody,
}

impl ResponseHead {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The end-to-end headers (RFC 9110 §7.6.1): everything except the hop-by-hop fields and the
    /// fields the origin names in `Connection`. Values that are not UTF-8 are skipped (they cannot
    /// be forwarded through [`super::write_response_head`] faithfully).
    pub fn end_to_end(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let named: Vec<&[u8]> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .map(|t| t.trim_ascii())
            .filter(|t| !t.is_empty())
            .collect();
        self.headers.iter().filter_map(move |(n, v)| {
            if is_hop_by_hop(n) || named.iter().any(|t| t.eq_ignore_ascii_case(n.as_bytes())) {
                return None;
            }
            Some((n.as_str(), std::str::from_utf8(v).ok()?))
        })
    }
}

/// The hop-by-hop fields Go's `httputil` drops (the G4 list, spec §5.3 step 5), plus
/// `Content-Length`, which the proxy always writes itself from the framing it chose.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 10] = [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Parses one response head from the start of `buf`. `head_request`: the request was `HEAD`, so
/// the response has no body whatever its headers say (RFC 9112 §6.3 item 1).
pub fn parse_response_head(
    buf: &[u8],
    limits: &Limits,
    head_request: bool,
) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADER_SLOTS)];
    let mut resp = httparse::Response::new(slots);
    let head_len = match resp.parse(buf) {
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
        Err(_) => return Err(HttpError::Malformed("malformed response head")),
    };
    if head_len > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge {
            limit: limits.max_head_bytes,
        });
    }
    let status = resp.code.ok_or(HttpError::Malformed("no status"))?;
    let version_minor = resp.version.ok_or(HttpError::Malformed("no version"))?;
    let reason = resp.reason.unwrap_or("").to_owned();
    let headers: Vec<(String, Vec<u8>)> = resp
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    let mut head = ResponseHead {
        status,
        reason,
        version_minor,
        headers,
        body: ResponseBody::None,
    };
    head.body = body_kind(&head, head_request)?;
    Ok(Some((head, head_len)))
}

fn body_kind(head: &ResponseHead, head_request: bool) -> Result<ResponseBody, HttpError> {
    if head_request || (100..200).contains(&head.status) || matches!(head.status, 204 | 304) {
        return Ok(ResponseBody::None);
    }
    let codings: Vec<&[u8]> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(|b| *b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        // §6.3 item 4: chunked last frames the body; any other final coding means "until close".
        return Ok(if last.eq_ignore_ascii_case(b"chunked") {
            ResponseBody::Chunked
        } else {
            ResponseBody::UntilClose
        });
    }
    let values = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_slice());
    let length = content_length(values)?;
    Ok(length.map_or(ResponseBody::UntilClose, ResponseBody::ContentLength))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../shared/fixtures/http/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse(buf: &[u8]) -> (ResponseHead, usize) {
        parse_response_head(buf, &Limits::default(), false)
            .expect("valid")
            .expect("complete")
    }

    #[test]
    fn srs_flv_head_is_chunked_and_keeps_its_content_type() {
        let raw = fixture("flv.response.bin");
        let (head, n) = parse(&raw);
        assert_eq!(head.status, 200);
        assert_eq!(head.body, ResponseBody::Chunked);
        // The body starts with the first chunk: `9\r\n` + the FLV header.
        assert_eq!(&raw[n..n + 6], b"9\r\nFLV");
        let e2e: Vec<_> = head.end_to_end().collect();
        assert_eq!(
            e2e,
            vec![
                ("Content-Type", "video/x-flv"),
                ("Server", "SRS/7.0.18(Hang)")
            ]
        );
    }

    #[test]
    fn srs_segment_and_playlist_heads_have_lengths() {
        let (head, _) = parse(&fixture("hls-segment.response.bin"));
        assert_eq!(head.body, ResponseBody::ContentLength(185556));
        assert_eq!(head.header("content-type"), Some(&b"video/MP2T"[..]));
        let (head, n) = parse(&fixture("hls-variant.response.http"));
        assert_eq!(head.body, ResponseBody::ContentLength(409));
        assert_eq!(fixture("hls-variant.response.http").len() - n, 409);
        let (head, _) = parse(&fixture("hls-404.response.http"));
        assert_eq!(
            (head.status, head.body),
            (404, ResponseBody::ContentLength(9))
        );
        let (head, _) = parse(&fixture("ts.response.bin"));
        assert_eq!(head.body, ResponseBody::Chunked);
    }

    #[test]
    fn body_framing_follows_rfc_9112() {
        let cases: [(&[u8], bool, ResponseBody); 6] = [
            (b"HTTP/1.1 200 OK\r\n\r\n", false, ResponseBody::UntilClose),
            (
                b"HTTP/1.1 204 No\r\nContent-Length: 5\r\n\r\n",
                false,
                ResponseBody::None,
            ),
            (b"HTTP/1.1 304 NM\r\n\r\n", false, ResponseBody::None),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                ResponseBody::None,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                ResponseBody::UntilClose,
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
                false,
                ResponseBody::ContentLength(3),
            ),
        ];
        for (buf, head_req, want) in cases {
            let (h, _) = parse_response_head(buf, &Limits::default(), head_req)
                .unwrap()
                .unwrap();
            assert_eq!(h.body, want, "{}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn hostile_response_heads_are_errors_not_panics() {
        let bad: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"FLV\x01\x05\0\0\0\x09",
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ];
        for b in bad {
            assert!(
                parse_response_head(b, &Limits::default(), false).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nServer: x", &Limits::default(), false),
            Ok(None)
        );
        let huge = [b'a'; 20_000];
        let mut buf = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        buf.extend_from_slice(&huge);
        assert_eq!(
            parse_response_head(&buf, &Limits::default(), false)
                .unwrap_err()
                .status(),
            431
        );
    }

    #[test]
    fn connection_named_and_hop_by_hop_fields_are_dropped() {
        let (h, _) = parse(
            b"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: t=5\r\n\
              Transfer-Encoding: chunked\r\nLocation: /a\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
        );
        let e2e: Vec<_> = h.end_to_end().collect();
        assert_eq!(
            e2e,
            vec![("Location", "/a"), ("Access-Control-Allow-Origin", "*")]
        );
    }
}
