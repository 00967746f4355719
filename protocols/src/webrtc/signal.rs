//! Signalling helpers: which route a request is for, the CORS headers, and the legacy SRS JSON
//! envelope (`{"sdp": "…", …}`, spec §5.5, G4).
//!
//! The envelope code is a small bounded JSON scanner rather than a JSON library (the protocols
//! crate depends on `bytes`, `httparse` and `thiserror` only). It reads one top-level object,
//! finds one top-level string field, unescapes it (RFC 8259 §7), and splices a new value into
//! the exact byte range of the old one, so every other field (`streamurl`, `code`,
//! `sessionid`, unknown ones) reaches the other side byte for byte. Nesting is bounded by
//! [`MAX_JSON_DEPTH`] without recursion, size by [`MAX_ENVELOPE_LEN`].

use std::borrow::Cow;
use std::ops::Range;

use super::error::SignalError;
use super::sdp::ice_credentials;
use super::stun::format_session_key;

/// Largest legacy request or response body: an SDP of [`super::sdp::MAX_SDP_LEN`] grows by
/// its `\r\n` escapes, plus a few small fields.
pub const MAX_ENVELOPE_LEN: usize = 160 * 1024;
/// Deepest nesting skipped inside an envelope (SRS's are flat; srs-bench's too).
pub const MAX_JSON_DEPTH: usize = 32;

/// CORS headers on every signalling response, `OPTIONS` included (spec §5.5 step 1), plus
/// `Access-Control-Expose-Headers: Location` so a browser WHIP/WHEP client can read the
/// resource URL it must `DELETE` (spec §10 #10, RFC 9725 §4.2).
pub const CORS_HEADERS: [(&str, &str); 4] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Allow-Methods", "*"),
    ("Access-Control-Expose-Headers", "Location"),
];

/// Which signalling API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// `/rtc/v1/whip/`: the body is an SDP offer to publish (RFC 9725).
    Whip,
    /// `/rtc/v1/whep/`: the body is an SDP offer to play.
    Whep,
    /// `/rtc/v1/publish/`: legacy SRS API, offer in `{"sdp": …}`.
    LegacyPublish,
    /// `/rtc/v1/play/`: legacy SRS API, offer in `{"sdp": …}`.
    LegacyPlay,
}

impl SignalKind {
    /// Publishing (WHIP or legacy publish) rather than playing.
    pub fn is_publish(self) -> bool {
        matches!(self, SignalKind::Whip | SignalKind::LegacyPublish)
    }

    /// The SDP travels inside a JSON envelope ([`sdp_field`]) instead of as the body.
    pub fn is_legacy(self) -> bool {
        matches!(self, SignalKind::LegacyPublish | SignalKind::LegacyPlay)
    }

    /// The `Content-Type` of a successful answer body.
    pub fn answer_content_type(self) -> &'static str {
        if self.is_legacy() {
            "application/json"
        } else {
            "application/sdp"
        }
    }
}

/// Routes a request target (path, optionally with `?query`). Both `/rtc/v1/whip` and
/// `/rtc/v1/whip/` are served directly (spec §10 #28: Go's 301 on a POST breaks clients), and,
/// like Go's `ServeMux` subtree patterns, so is anything below `/rtc/v1/whip/` (a resource
/// path some WHIP clients build). The path is forwarded to the origin as received.
pub fn route(target: &str) -> Option<SignalKind> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let rest = path.strip_prefix("/rtc/v1/")?;
    let name = rest.split_once('/').map_or(rest, |(name, _)| name);
    match name {
        "whip" => Some(SignalKind::Whip),
        "whep" => Some(SignalKind::Whep),
        "publish" => Some(SignalKind::LegacyPublish),
        "play" => Some(SignalKind::LegacyPlay),
        _ => None,
    }
}

/// The session key of an offer/answer exchange: `<answer ufrag>:<offer ufrag>` (spec §5.5
/// step 9), or `None` when either side has no usable ICE credentials.
pub fn exchange_session_key(offer_sdp: &str, answer_sdp: &str) -> Option<String> {
    let offer = ice_credentials(offer_sdp)?;
    let answer = ice_credentials(answer_sdp)?;
    Some(format_session_key(answer.ufrag, offer.ufrag))
}

/// A top-level string field found in an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStringField<'a> {
    /// Byte range of the whole string literal in the body, quotes included: what
    /// [`replace_string_field`] replaces.
    pub range: Range<usize>,
    /// The unescaped value (borrowed when it holds no escapes).
    pub value: Cow<'a, str>,
}

/// The `"sdp"` field of a legacy envelope; [`SignalError::MissingField`] when absent or not a
/// string (an SRS error response such as `{"code":400}` has none).
pub fn sdp_field(body: &[u8]) -> Result<JsonStringField<'_>, SignalError> {
    string_field(body, "sdp")?.ok_or(SignalError::MissingField)
}

/// Finds the top-level string field `key` in a JSON object. `Ok(None)` when the key is absent
/// or its value is not a string. The whole body must be one well-formed object (nested values
/// are checked for bracket balance and string syntax only) within [`MAX_ENVELOPE_LEN`]; a key
/// present twice is refused ([`SignalError::DuplicateKey`]).
pub fn string_field<'a>(
    body: &'a [u8],
    key: &str,
) -> Result<Option<JsonStringField<'a>>, SignalError> {
    if body.len() > MAX_ENVELOPE_LEN {
        return Err(SignalError::TooLarge {
            len: body.len(),
            limit: MAX_ENVELOPE_LEN,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| SignalError::NotUtf8)?;
    let mut s = Scanner { b: body, pos: 0 };
    s.ws();
    s.expect(b'{')?;
    s.ws();
    let mut seen = false;
    let mut found = None;
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            s.ws();
            let k = s.string()?;
            let matches = unescape(&text[k.start + 1..k.end - 1], k.start)? == key;
            s.ws();
            s.expect(b':')?;
            s.ws();
            if matches {
                if seen {
                    return Err(SignalError::DuplicateKey);
                }
                seen = true;
            }
            if matches && s.peek() == Some(b'"') {
                let v = s.string()?;
                let value = unescape(&text[v.start + 1..v.end - 1], v.start)?;
                found = Some(JsonStringField { range: v, value });
            } else {
                s.skip_value()?;
            }
            s.ws();
            match s.bump() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(s.malformed()),
            }
        }
    }
    s.ws();
    if s.pos != body.len() {
        return Err(s.malformed());
    }
    Ok(found)
}

/// `body` with the string literal at `field.range` replaced by `new_value`, JSON-escaped
/// (RFC 8259 §7). Everything else is copied unchanged.
pub fn replace_string_field(body: &[u8], field: &JsonStringField<'_>, new_value: &str) -> Vec<u8> {
    let before = body.get(..field.range.start).unwrap_or(body);
    let after = body.get(field.range.end..).unwrap_or(&[]);
    let mut out =
        Vec::with_capacity(before.len() + new_value.len() + new_value.len() / 16 + after.len() + 2);
    out.extend_from_slice(before);
    escape_into(new_value, &mut out);
    out.extend_from_slice(after);
    out
}

/// Appends `s` as a JSON string literal, quotes included, using the shortest escape for every
/// character (so a re-encoded value is never longer than any valid encoding of it).
pub fn escape_into(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = c as usize;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[n >> 4]);
                out.push(HEX[n & 0xF]);
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn malformed(&self) -> SignalError {
        SignalError::Malformed { offset: self.pos }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), SignalError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.malformed())
        }
    }

    /// Scans a string literal (RFC 8259 §7: no raw control characters, only the listed
    /// escapes) and returns its range, quotes included.
    fn string(&mut self) -> Result<Range<usize>, SignalError> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.bump() {
                Some(b'"') => return Ok(start..self.pos),
                Some(b'\\') => match self.bump() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        for _ in 0..4 {
                            if !self.bump().is_some_and(|c| c.is_ascii_hexdigit()) {
                                return Err(self.malformed());
                            }
                        }
                    }
                    _ => return Err(self.malformed()),
                },
                Some(c) if c >= 0x20 => {}
                _ => return Err(self.malformed()),
            }
        }
    }

    /// Skips any value. Containers are walked with an explicit bracket stack, so hostile
    /// nesting costs no Rust stack.
    fn skip_value(&mut self) -> Result<(), SignalError> {
        let mut stack = [0u8; MAX_JSON_DEPTH];
        let mut depth = 0;
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_JSON_DEPTH {
                        return Err(self.malformed());
                    }
                    stack[depth] = if open == b'{' { b'}' } else { b']' };
                    depth += 1;
                    self.pos += 1;
                    continue;
                }
                Some(close @ (b'}' | b']')) if depth > 0 && stack[depth - 1] == close => {
                    // An empty container, or a close after `,`/`:` (lenient: a trailing comma
                    // inside a skipped value is not worth an error).
                }
                Some(c) if c.is_ascii_alphanumeric() || c == b'-' => {
                    while self.peek().is_some_and(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')
                    }) {
                        self.pos += 1;
                    }
                }
                _ => return Err(self.malformed()),
            }
            // After a value (or at a close): separators and closes until the next value.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                match self.peek() {
                    Some(b',' | b':') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) if c == stack[depth - 1] => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    _ => return Err(self.malformed()),
                }
            }
        }
    }
}

/// Unescapes the inside of a string literal already checked by `Scanner::string`. `\u`
/// surrogates must pair (RFC 8259 §7); a lone one is refused rather than replaced, so the
/// proxy never hands on a value the origin would read differently.
fn unescape(raw: &str, at: usize) -> Result<Cow<'_, str>, SignalError> {
    if !raw.contains('\\') {
        return Ok(Cow::Borrowed(raw));
    }
    let bad = SignalError::Malformed { offset: at };
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or(bad)?;
        out.push(match e {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = hex4(&mut chars).ok_or(bad)?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if chars.next() != Some('\\') || chars.next() != Some('u') {
                        return Err(bad);
                    }
                    let lo = hex4(&mut chars).ok_or(bad)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(bad);
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code).ok_or(bad)?
            }
            _ => return Err(bad),
        });
    }
    Ok(Cow::Owned(out))
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_and_without_trailing_slash_and_query() {
        assert_eq!(
            route("/rtc/v1/whip/?app=live&stream=s"),
            Some(SignalKind::Whip)
        );
        assert_eq!(route("/rtc/v1/whip?app=live"), Some(SignalKind::Whip));
        assert_eq!(route("/rtc/v1/whep"), Some(SignalKind::Whep));
        assert_eq!(route("/rtc/v1/whep/resource/1"), Some(SignalKind::Whep));
        assert_eq!(route("/rtc/v1/publish/"), Some(SignalKind::LegacyPublish));
        assert_eq!(route("/rtc/v1/play"), Some(SignalKind::LegacyPlay));
        assert_eq!(route("/rtc/v1/whipx/"), None);
        assert_eq!(route("/rtc/v1/"), None);
        assert_eq!(route("/api/v1/versions"), None);
    }

    #[test]
    fn replaces_the_sdp_field_and_keeps_every_other_byte() {
        let body = br#"{"api":"x", "streamurl":"webrtc://h/live/s","clientip":null,"n":[1,{"a":"]"}],"sdp":"v=0\r\na=x:\"q\"\r\n","tid":"t"}"#;
        let f = sdp_field(body).unwrap();
        assert_eq!(f.value, "v=0\r\na=x:\"q\"\r\n");
        let out = replace_string_field(body, &f, "v=0\r\nnew\u{1}\r\n");
        let want = br#"{"api":"x", "streamurl":"webrtc://h/live/s","clientip":null,"n":[1,{"a":"]"}],"sdp":"v=0\r\nnew\u0001\r\n","tid":"t"}"#;
        assert_eq!(out, want.to_vec());
        assert_eq!(sdp_field(&out).unwrap().value, "v=0\r\nnew\u{1}\r\n");
        let url = string_field(body, "streamurl").unwrap().unwrap();
        assert_eq!(url.value, "webrtc://h/live/s");
    }

    #[test]
    fn refuses_duplicate_keys_broken_json_and_lone_surrogates() {
        assert_eq!(
            sdp_field(br#"{"sdp":"a","sdp":"b"}"#),
            Err(SignalError::DuplicateKey)
        );
        assert_eq!(
            sdp_field(br#"{"code":400}"#),
            Err(SignalError::MissingField)
        );
        assert_eq!(sdp_field(br#"{"sdp":1}"#), Err(SignalError::MissingField));
        assert!(sdp_field(br#"{"sdp":"a""#).is_err());
        assert!(sdp_field(br#"{"sdp":"a"} x"#).is_err());
        assert!(sdp_field(br#"{"x":[}],"sdp":"a"}"#).is_err());
        assert!(sdp_field(br#"{"sdp":"\ud800"}"#).is_err());
        assert_eq!(
            sdp_field(br#"{"sdp":"\ud83d\ude00"}"#).unwrap().value,
            "\u{1F600}"
        );
        let deep = format!(
            "{{\"x\":{}1{},\"sdp\":\"a\"}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(sdp_field(deep.as_bytes()).is_err());
        assert!(sdp_field(b"{\"sdp\":\"\xff\"}").is_err());
    }
}
