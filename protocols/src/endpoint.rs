//! Endpoint strings an SRS origin reports in its heartbeat (spec §3.2, §3.3, §10 #9).
//!
//! SRS sends its `listen` values verbatim, and the form changed between SRS releases: `"19351"`,
//! `"127.0.0.1:19351"`, `"[::]:1935"`, `"udp://0.0.0.0:8001"` (2024 SRS), `"udp://8001"` (newer SRS,
//! which the Go G1 parser rejects, proxy-go issue #3), `"tcp://0.0.0.0:8002"` and the legacy
//! `"tcp:1.2.3.4:1935"`. G1 accepted only some of these, and only bare ports for `rtmp`/`http`/`api`.
//! This parser is the compatible superset §10 #9 asks for: every form above, for every field.
//!
//! The proxy dials the origin's registered `ip`, never the host in the endpoint (§3.3), so callers
//! use only [`Endpoint::port`]; `host` is kept for logs and diagnostics.

use std::fmt;
use std::net::Ipv6Addr;

/// The transport named by a `tcp://` / `udp://` prefix (or the legacy `tcp:` form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// A parsed endpoint string. Only `port` matters for routing (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `Some` when the string carried a scheme; a bare `port` / `host:port` has none.
    pub scheme: Option<Transport>,
    /// The host part without brackets (`"::"` for `[::]:8000`), `None` when absent or empty.
    pub host: Option<String>,
    /// Never 0: a zero port cannot be dialed.
    pub port: u16,
}

/// Why an endpoint string was refused. Display names the input, so a registration error can be
/// shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("empty endpoint")]
    Empty,
    #[error("unknown scheme in endpoint {0:?}: use tcp:// or udp://")]
    UnknownScheme(String),
    #[error("invalid port in endpoint {0:?}: expected 1..=65535")]
    InvalidPort(String),
    #[error("invalid host in endpoint {0:?}")]
    InvalidHost(String),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// Parses any endpoint form of §3.3 / §10 #9. Surrounding ASCII whitespace is ignored.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, EndpointError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(EndpointError::Empty);
    }
    // `proto://rest`: the modern form. `rest` may be `port`, `:port`, `host:port`, `[v6]:port`.
    if let Some((scheme, rest)) = input.split_once("://") {
        let scheme = parse_scheme(scheme).ok_or_else(|| EndpointError::UnknownScheme(s.into()))?;
        let (host, port) = host_port(rest, s)?;
        return Ok(Endpoint {
            scheme: Some(scheme),
            host,
            port,
        });
    }
    // Legacy `tcp:1.2.3.4:1935` (and `udp:…`): G1's `parseListenEndpoint` split it on ':'.
    for (prefix, transport) in [("tcp:", Transport::Tcp), ("udp:", Transport::Udp)] {
        if input.len() >= prefix.len() && input[..prefix.len()].eq_ignore_ascii_case(prefix) {
            let (host, port) = host_port(&input[prefix.len()..], s)?;
            return Ok(Endpoint {
                scheme: Some(transport),
                host,
                port,
            });
        }
    }
    let (host, port) = host_port(input, s)?;
    Ok(Endpoint {
        scheme: None,
        host,
        port,
    })
}

fn parse_scheme(s: &str) -> Option<Transport> {
    if s.eq_ignore_ascii_case("tcp") {
        Some(Transport::Tcp)
    } else if s.eq_ignore_ascii_case("udp") {
        Some(Transport::Udp)
    } else {
        None
    }
}

/// `port`, `:port`, `host:port` or `[v6]:port`. `original` is only for error messages.
fn host_port(s: &str, original: &str) -> Result<(Option<String>, u16), EndpointError> {
    let (host, port) = if let Some(bracketed) = s.strip_prefix('[') {
        let (inner, after) = bracketed
            .split_once(']')
            .ok_or_else(|| EndpointError::InvalidHost(original.into()))?;
        // Bracketed hosts are IPv6 literals by definition (RFC 3986 §3.2.2); refusing anything
        // else keeps garbage such as `[x]:1` out of the logs.
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(EndpointError::InvalidHost(original.into()));
        }
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| EndpointError::InvalidPort(original.into()))?;
        (Some(inner), port)
    } else if let Some((host, port)) = s.split_once(':') {
        // A second ':' means an unbracketed IPv6 literal: ambiguous, so refused.
        if port.contains(':') {
            return Err(EndpointError::InvalidHost(original.into()));
        }
        if host
            .bytes()
            .any(|b| b == b'/' || b == b'@' || b.is_ascii_whitespace())
        {
            return Err(EndpointError::InvalidHost(original.into()));
        }
        (Some(host), port)
    } else {
        (None, s)
    };
    let port = parse_port(port).ok_or_else(|| EndpointError::InvalidPort(original.into()))?;
    let host = host.filter(|h| !h.is_empty()).map(str::to_owned);
    Ok((host, port))
}

/// Decimal digits only (no sign, no spaces), 1..=65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(scheme: Option<Transport>, host: Option<&str>, port: u16) -> Endpoint {
        Endpoint {
            scheme,
            host: host.map(str::to_owned),
            port,
        }
    }

    #[test]
    fn accepts_every_form_srs_sends() {
        use Transport::*;
        let cases = [
            ("19351", ep(None, None, 19351)),
            ("127.0.0.1:19351", ep(None, Some("127.0.0.1"), 19351)),
            ("[::1]:19351", ep(None, Some("::1"), 19351)),
            ("udp://0.0.0.0:8001", ep(Some(Udp), Some("0.0.0.0"), 8001)),
            ("udp://8001", ep(Some(Udp), None, 8001)),
            ("udp://:8001", ep(Some(Udp), None, 8001)),
            ("tcp://:1935", ep(Some(Tcp), None, 1935)),
            ("udp://[::]:8000", ep(Some(Udp), Some("::"), 8000)),
            ("tcp:1.2.3.4:1935", ep(Some(Tcp), Some("1.2.3.4"), 1935)),
            ("0.0.0.0:8000", ep(None, Some("0.0.0.0"), 8000)),
            ("tcp://0.0.0.0:51802", ep(Some(Tcp), Some("0.0.0.0"), 51802)),
            ("UDP://8000", ep(Some(Udp), None, 8000)),
            (":1935", ep(None, None, 1935)),
            (" 1935 ", ep(None, None, 1935)),
            ("localhost:1935", ep(None, Some("localhost"), 1935)),
            ("tcp:1935", ep(Some(Tcp), None, 1935)),
            ("65535", ep(None, None, 65535)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_endpoint(input), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn rejects_bad_endpoints_with_the_input_in_the_message() {
        let cases = [
            ("", EndpointError::Empty),
            ("   ", EndpointError::Empty),
            ("0", EndpointError::InvalidPort("0".into())),
            ("65536", EndpointError::InvalidPort("65536".into())),
            ("+1935", EndpointError::InvalidPort("+1935".into())),
            ("19 35", EndpointError::InvalidPort("19 35".into())),
            (
                "http://1935",
                EndpointError::UnknownScheme("http://1935".into()),
            ),
            ("udp://", EndpointError::InvalidPort("udp://".into())),
            ("::1:8000", EndpointError::InvalidHost("::1:8000".into())),
            ("[::1", EndpointError::InvalidHost("[::1".into())),
            ("[::1]8000", EndpointError::InvalidPort("[::1]8000".into())),
            ("[zz]:8000", EndpointError::InvalidHost("[zz]:8000".into())),
            ("1.2.3.4:", EndpointError::InvalidPort("1.2.3.4:".into())),
            ("a/b:80", EndpointError::InvalidHost("a/b:80".into())),
            (
                "99999999999999999999",
                EndpointError::InvalidPort("99999999999999999999".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_endpoint(input), Err(want.clone()), "input {input:?}");
            assert!(want.to_string().contains(input.trim()) || input.trim().is_empty());
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "[", "]", "[]:", "://", "tcp:", "udp://[", "é:1", "\u{0}:1", "[::1]:é",
        ] {
            let _ = parse_endpoint(s);
        }
    }
}
