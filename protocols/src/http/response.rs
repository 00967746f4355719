//! HTTP/1.1 response heads (RFC 9112 §4).

use std::io::Write;

/// Appends `HTTP/1.1 <status> <reason>`, the headers in order, `Content-Length` when given, and the
/// blank line. The body is the caller's.
///
/// CR, LF and NUL in a name, value or reason are replaced with a space: header values may come
/// from an origin or a client, and a raw CRLF would let them inject headers (response splitting).
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    content_length: Option<u64>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{status}");
    out.push(b' ');
    push_clean(out, reason);
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        push_clean(out, name);
        out.extend_from_slice(b": ");
        push_clean(out, value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = content_length {
        let _ = write!(out, "Content-Length: {len}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn push_clean(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().map(|b| {
        if matches!(b, b'\r' | b'\n' | 0) {
            b' '
        } else {
            b
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_status_headers_and_length() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            "OK",
            &[("Content-Type", "application/json")],
            Some(27),
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
        );
    }

    #[test]
    fn no_content_length_when_absent() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            401,
            "Unauthorized",
            &[("WWW-Authenticate", "Bearer")],
            None,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n\r\n"
        );
    }

    #[test]
    fn header_injection_is_neutralised() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            "OK\r\nX: y",
            &[("Location", "/a\r\nSet-Cookie: x")],
            None,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK  X: y\r\nLocation: /a  Set-Cookie: x\r\n\r\n"
        );
    }
}
