//! HTTP/1.1 response heads (RFC 9112 §4).

use std::io::Write;

/// Appends `HTTP/1.1 <status> <reason>`, the headers in order, `Content-Length` when given, and the
/// blank line. The body is the caller's.
///
/// CR, LF and NUL in a name, value or reason are replaced with a space: header values may come
/// from an origin or a client, and a raw CRLF would let them inject headers (response splitting).
pub fn write_response_head<H: HeaderPair>(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    headers: impl IntoIterator<Item = H>,
    content_length: Option<u64>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{status}");
    out.push(b' ');
    push_clean(out, reason);
    out.extend_from_slice(b"\r\n");
    for h in headers {
        push_clean(out, h.name());
        out.extend_from_slice(b": ");
        push_clean(out, h.value());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = content_length {
        let _ = write!(out, "Content-Length: {len}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A `(name, value)` header as [`write_response_head`] takes it: a pair of anything that is a
/// `str` (`&str`, `String`, `Cow<str>`), or a reference to one, so callers need not collect
/// their headers into a new `Vec<(&str, &str)>` per response.
pub trait HeaderPair {
    fn name(&self) -> &str;
    fn value(&self) -> &str;
}

impl<A: AsRef<str>, B: AsRef<str>> HeaderPair for (A, B) {
    fn name(&self) -> &str {
        self.0.as_ref()
    }
    fn value(&self) -> &str {
        self.1.as_ref()
    }
}

impl<T: HeaderPair + ?Sized> HeaderPair for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn value(&self) -> &str {
        (**self).value()
    }
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
            [("Content-Type", "application/json")],
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
            [("WWW-Authenticate", "Bearer")],
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
            [("Location", "/a\r\nSet-Cookie: x")],
            None,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK  X: y\r\nLocation: /a  Set-Cookie: x\r\n\r\n"
        );
    }

    #[test]
    fn takes_owned_borrowed_and_referenced_pairs_alike() {
        use std::borrow::Cow;
        let owned: Vec<(Cow<'static, str>, Cow<'static, str>)> = vec![
            ("Server".into(), "x".into()),
            (Cow::Owned("X-N".to_string()), Cow::Owned(7.to_string())),
        ];
        let mut a = Vec::new();
        write_response_head(&mut a, 200, "OK", &owned, None);
        let mut b = Vec::new();
        write_response_head(&mut b, 200, "OK", [("Server", "x"), ("X-N", "7")], None);
        assert_eq!(a, b);
        assert_eq!(a, b"HTTP/1.1 200 OK\r\nServer: x\r\nX-N: 7\r\n\r\n");
    }
}
