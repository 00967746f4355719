//! The few SDP operations the signalling proxy needs: ICE credentials, the answer's candidate
//! rewrite and the answer check (RFC 8866 syntax, RFC 8839 ICE attributes).
//!
//! The proxy never parses SDP into a model: it reads lines, changes the `a=candidate:` lines
//! that point at the origin's media port, and copies every other byte, line endings included
//! (CRLF per RFC 8866 §5, bare LF tolerated). Offers and answers are bounded by
//! [`MAX_SDP_LEN`].

use std::fmt::Write as _;
use std::net::IpAddr;

use super::error::SdpError;

/// Largest offer or answer accepted. Browser offers with many codecs and simulcast are ~10 KiB;
/// SRS answers are ~1–2 KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// RFC 8839 §5.4: ufrag is 4–256 `ice-char`s, pwd 22–256. We bound by the maximum only (SRS
/// and aiortc respect the minimum; refusing short ones would buy nothing).
pub const MAX_ICE_CREDENTIAL_LEN: usize = 256;

/// `a=ice-ufrag` and `a=ice-pwd` of an offer or answer (RFC 8839 §5.4), borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceCredentials<'a> {
    /// The ICE username fragment; half of the STUN `USERNAME`.
    pub ufrag: &'a str,
    /// The ICE password (the STUN `MESSAGE-INTEGRITY` key; the proxy only stores it).
    pub pwd: &'a str,
}

/// Checks size and UTF-8 of an HTTP body before any other function here sees it.
pub fn sdp_text(body: &[u8]) -> Result<&str, SdpError> {
    if body.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len: body.len(),
            limit: MAX_SDP_LEN,
        });
    }
    std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)
}

/// The first `a=ice-ufrag:` and the first `a=ice-pwd:` line, session- or media-level, each
/// value up to the first whitespace (as Go's `a=ice-ufrag:(\S+)`, spec §5.5 step 8). WebRTC
/// bundles every m-section on one transport (RFC 8843), so all sections carry the same pair
/// and the first is the one. `None` when either is missing, empty, longer than
/// [`MAX_ICE_CREDENTIAL_LEN`], or the ufrag contains `:` (not an `ice-char`, RFC 8839 §5.4, and
/// it would make the session key `answer:offer` ambiguous).
pub fn ice_credentials(sdp: &str) -> Option<IceCredentials<'_>> {
    let mut ufrag = None;
    let mut pwd = None;
    for line in lines(sdp) {
        if ufrag.is_none() {
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(first_token(v));
            }
        }
        if pwd.is_none() {
            if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                pwd = Some(first_token(v));
            }
        }
        if ufrag.is_some() && pwd.is_some() {
            break;
        }
    }
    let (ufrag, pwd) = (ufrag?, pwd?);
    let ok = |s: &str| !s.is_empty() && s.len() <= MAX_ICE_CREDENTIAL_LEN;
    if !ok(ufrag) || !ok(pwd) || ufrag.contains(':') {
        return None;
    }
    Some(IceCredentials { ufrag, pwd })
}

/// Rewrites the origin's answer so that the client sends media to the proxy (spec §5.5 step
/// 7, §10 #15).
///
/// Only `a=candidate:` lines change (RFC 8839 §5.1: `foundation component transport priority
/// address port typ type …`), and only those of type `host` whose port is one of the origin's
/// registered `rtc` ports (`origin_rtc_ports`, the port numbers whatever form the heartbeat
/// gave them):
///
/// * **UDP**: the port becomes `proxy_port`; with `public_ip`, the address becomes it too
///   (otherwise the origin must advertise an address that reaches the proxy, as with Go).
///   Nothing is added, so candidate counts and order stay the origin's.
/// * **TCP** (RFC 6544 `tcptype`): the line is **dropped**. The proxy has no WebRTC-over-TCP
///   listener, so Go's rewrite to the proxy port (spec §5.5 step 7) advertises a dead
///   candidate that the client tries and times out on; leaving the origin's port in would
///   bypass the proxy, which is what a proxy deployment exists to prevent.
///
/// Candidates of other types (srflx/relay), other ports or other transports, and every other
/// line, are copied byte for byte, with their line endings. Rewritten lines are re-joined with
/// single spaces (the RFC 8866 grammar has no other separator). Errors only on size.
pub fn rewrite_answer(
    answer: &str,
    origin_rtc_ports: &[u16],
    proxy_port: u16,
    public_ip: Option<IpAddr>,
) -> Result<String, SdpError> {
    if answer.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len: answer.len(),
            limit: MAX_SDP_LEN,
        });
    }
    let mut out = String::with_capacity(answer.len() + 64);
    for raw in answer.split_inclusive('\n') {
        let body = strip_eol(raw);
        // `body` is `raw` minus an ASCII suffix, so this is a char boundary.
        let ending = &raw[body.len()..];
        let Some(cand) = Candidate::parse(body) else {
            out.push_str(raw);
            continue;
        };
        if !cand.is_host() || !origin_rtc_ports.contains(&cand.port) {
            out.push_str(raw);
            continue;
        }
        if cand.transport.eq_ignore_ascii_case("tcp") {
            continue;
        }
        if !cand.transport.eq_ignore_ascii_case("udp") {
            out.push_str(raw);
            continue;
        }
        for (i, field) in body.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match (i, public_ip) {
                (ADDRESS, Some(ip)) => {
                    // `fmt::Write` for `String` never returns an error.
                    let _ = write!(out, "{ip}");
                }
                (PORT, _) => {
                    let _ = write!(out, "{proxy_port}");
                }
                _ => out.push_str(field),
            }
        }
        out.push_str(ending);
    }
    Ok(out)
}

/// Checks that an (already rewritten) answer is SDP the client can use, **before** the glue
/// sends any status (spec §10 #14: a broken origin answer becomes a 502, never a 2xx with an
/// error body). It must be at most [`MAX_SDP_LEN`], start with `v=0`, have only
/// `<letter>=<value>` lines (blank lines tolerated), end with a line ending (a body cut short
/// mid-line fails here), carry ICE credentials, at least one `m=` line, an `a=mid:` for every
/// mid its `a=group:BUNDLE` lines name (RFC 8843 §7; a body cut before a later m-section
/// fails here), and at least one well-formed `a=candidate:` line.
///
/// A body cut exactly at a line boundary inside the last m-section can still pass: SDP has no
/// end marker. The HTTP layer catches that (a body shorter than its `Content-Length` or an
/// unterminated chunked body is already an origin failure).
pub fn validate_answer(sdp: &str) -> Result<(), SdpError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len: sdp.len(),
            limit: MAX_SDP_LEN,
        });
    }
    if strip_eol(sdp.split_inclusive('\n').next().unwrap_or("")) != "v=0" {
        return Err(SdpError::NotSdp);
    }
    if !sdp.ends_with('\n') {
        return Err(SdpError::Truncated);
    }
    let mut media = false;
    let mut candidate = false;
    let mut bundle_mids: Vec<&str> = Vec::new();
    let mut mids: Vec<&str> = Vec::new();
    for (n, line) in lines(sdp).enumerate() {
        let number = n + 1;
        if line.is_empty() {
            continue;
        }
        let b = line.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_lowercase() || b[1] != b'=' {
            return Err(SdpError::MalformedLine { line: number });
        }
        media |= b[0] == b'm';
        if line.starts_with("a=candidate:") {
            if Candidate::parse(line).is_none() {
                return Err(SdpError::MalformedCandidate { line: number });
            }
            candidate = true;
        }
        if let Some(group) = line.strip_prefix("a=group:BUNDLE") {
            bundle_mids.extend(group.split_ascii_whitespace());
        }
        if let Some(mid) = line.strip_prefix("a=mid:") {
            mids.push(mid.trim_end());
        }
    }
    // Sorted so that a hostile answer with thousands of mids stays O(n log n).
    mids.sort_unstable();
    if bundle_mids.iter().any(|m| mids.binary_search(m).is_err()) {
        return Err(SdpError::MissingMedia);
    }
    if ice_credentials(sdp).is_none() {
        return Err(SdpError::MissingIceCredentials);
    }
    if !media {
        return Err(SdpError::NoMedia);
    }
    if !candidate {
        return Err(SdpError::NoCandidate);
    }
    Ok(())
}

/// Field positions in `a=candidate:<foundation> <component> <transport> <priority> <address>
/// <port> typ <type>` when split at spaces (RFC 8839 §5.1).
const ADDRESS: usize = 4;
const PORT: usize = 5;

/// The parts of a candidate line the rewrite needs.
struct Candidate<'a> {
    transport: &'a str,
    port: u16,
    kind: &'a str,
}

impl<'a> Candidate<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let rest = line.strip_prefix("a=candidate:")?;
        let mut f = rest.split(' ');
        let foundation = f.next()?;
        let component = f.next()?;
        let transport = f.next()?;
        let priority = f.next()?;
        let address = f.next()?;
        let port = f.next()?.parse::<u16>().ok()?;
        if f.next()? != "typ" {
            return None;
        }
        let kind = f.next()?;
        let nonempty = [foundation, component, transport, priority, address, kind];
        if nonempty.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(Candidate {
            transport,
            port,
            kind,
        })
    }

    fn is_host(&self) -> bool {
        self.kind == "host"
    }
}

/// Lines without their endings (CRLF or LF).
fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split_inclusive('\n').map(strip_eol)
}

fn strip_eol(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

fn first_token(v: &str) -> &str {
    v.split_ascii_whitespace().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=candidate:0 1 udp 2130706431 10.0.0.5 8000 typ host generation 0\r\n\
        a=candidate:1 1 tcp 1 10.0.0.5 8000 typ host tcptype passive\r\n\
        a=candidate:2 1 udp 1 10.0.0.5 9000 typ host\r\n\
        a=candidate:3 1 udp 1 1.2.3.4 8000 typ srflx raddr 10.0.0.5 rport 8000\r\n";

    #[test]
    fn rewrites_only_udp_host_candidates_on_origin_ports_and_drops_tcp_ones() {
        let out = rewrite_answer(ANSWER, &[8000], 18000, None).unwrap();
        assert!(
            out.contains("a=candidate:0 1 udp 2130706431 10.0.0.5 18000 typ host generation 0\r\n")
        );
        assert!(!out.contains("tcptype"));
        assert!(out.contains("a=candidate:2 1 udp 1 10.0.0.5 9000 typ host\r\n"));
        assert!(out.contains("1.2.3.4 8000 typ srflx raddr 10.0.0.5 rport 8000\r\n"));
        validate_answer(&out).unwrap();
    }

    #[test]
    fn public_ip_replaces_the_candidate_address() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let out = rewrite_answer(ANSWER, &[8000], 18000, Some(ip)).unwrap();
        assert!(out.contains(
            "a=candidate:0 1 udp 2130706431 203.0.113.7 18000 typ host generation 0\r\n"
        ));
        assert!(out.contains("10.0.0.5 9000 typ host"));
    }

    #[test]
    fn validate_rejects_an_answer_left_without_candidates() {
        let only_tcp = ANSWER
            .lines()
            .filter(|l| !l.contains("udp"))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>();
        let out = rewrite_answer(&only_tcp, &[8000], 18000, None).unwrap();
        assert_eq!(validate_answer(&out), Err(SdpError::NoCandidate));
    }

    #[test]
    fn credentials_with_a_colon_in_the_ufrag_are_refused() {
        assert_eq!(ice_credentials("a=ice-ufrag:a:b\na=ice-pwd:x\n"), None);
        assert_eq!(
            ice_credentials("a=ice-pwd:p q\na=ice-ufrag:u\n"),
            Some(IceCredentials {
                ufrag: "u",
                pwd: "p"
            })
        );
    }
}
