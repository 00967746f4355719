//! The origin registration request, `POST /api/v1/srs/register` on the System API (spec §3.1, §3.2).
//!
//! Parsing is a compatible superset of Go's: what a real SRS heartbeat sends is accepted as is
//! (unknown fields such as `summaries` and `rtsp` are ignored), and where Go's strict types refused
//! harmless variations, this accepts them (§10 #8: `pid` and endpoint entries may be JSON numbers;
//! §10 #9: endpoints may be `port`, `host:port`, `[v6]:port`, `proto://host:port`, `proto://port`).
//!
//! One deliberate difference: Go validated no endpoint string at registration and failed later,
//! when a client was routed to the origin. Here the first entry of every list is parsed at once, so
//! an origin that cannot be routed to is told so with a 400 on its heartbeat, and its operator
//! sees the reason in the proxy log, instead of clients failing at random.

use protocols::endpoint::{parse_endpoint, EndpointError};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// One origin's registration (the Go `SRSServer` fields that come from the request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    /// Label only (`heartbeat.device_id`); may be empty.
    pub device_id: String,
    /// The address every protocol dials (the endpoint hosts are never used, §3.3).
    pub ip: String,
    /// SRS server id, persistent across restarts (`vid-XXXXXXX`).
    pub server: String,
    /// SRS service id, new on every SRS start.
    pub service: String,
    pub pid: String,
    /// Listen strings as SRS sent them; only element 0 is dialed. Never empty.
    pub rtmp: Vec<String>,
    pub http: Vec<String>,
    pub api: Vec<String>,
    pub srt: Vec<String>,
    /// Element 0 is dialed; every element's port is used in the SDP rewrite (§3.1).
    pub rtc: Vec<String>,
}

impl Registration {
    /// `"<server>-<service>-<pid>"`: an SRS restart makes a new record (§3.4).
    pub fn id(&self) -> String {
        format!("{}-{}-{}", self.server, self.service, self.pid)
    }

    /// Port of `rtmp[0]`; `Some` for every registration [`parse_registration`] returned.
    pub fn rtmp_port(&self) -> Option<u16> {
        first_port(&self.rtmp)
    }

    /// Port of `http[0]`; `None` when the origin has no HTTP stream server.
    pub fn http_port(&self) -> Option<u16> {
        first_port(&self.http)
    }

    /// Port of `api[0]`; `None` when the origin has no HTTP API.
    pub fn api_port(&self) -> Option<u16> {
        first_port(&self.api)
    }

    /// Port of `srt[0]`; `None` when the origin has no SRT server.
    pub fn srt_port(&self) -> Option<u16> {
        first_port(&self.srt)
    }

    /// Port of `rtc[0]`; `None` when the origin has no WebRTC server.
    pub fn rtc_port(&self) -> Option<u16> {
        first_port(&self.rtc)
    }
}

fn first_port(list: &[String]) -> Option<u16> {
    list.first()
        .and_then(|s| parse_endpoint(s).ok())
        .map(|e| e.port)
}

/// Why a registration was refused. Every variant is the origin's fault: 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The body is not the JSON object we expect; the message is serde's, with line and column.
    #[error("invalid register request body: {0}")]
    Json(String),
    /// A required field is missing or empty. Display is Go's exact text (`empty ip`, …).
    #[error("empty {0}")]
    Empty(&'static str),
    /// The first entry of an endpoint list cannot be parsed, so the origin cannot be dialed.
    #[error("invalid {field}[0] {value:?}: {reason}")]
    BadEndpoint {
        field: &'static str,
        value: String,
        reason: EndpointError,
    },
}

impl RegisterError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// Parses and validates a register request body (§3.1). Validation order and messages are Go's:
/// `empty ip`, `empty server`, `empty service`, `empty pid`, `empty rtmp`; then the endpoints.
pub fn parse_registration(body: &[u8]) -> Result<Registration, RegisterError> {
    // Go accepts an empty body and then fails validation (§3.1), so it reports `empty ip` too.
    let wire: Wire = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Wire::default(),
        // serde's derive would also read a struct from a JSON array (`[]` → all fields missing);
        // Go refuses anything but an object, and so do we.
        Some(b'{') => {
            serde_json::from_slice(body).map_err(|e| RegisterError::Json(e.to_string()))?
        }
        Some(_) => {
            let msg = match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => "expected a JSON object".to_owned(),
                Err(e) => e.to_string(),
            };
            return Err(RegisterError::Json(msg));
        }
    };
    let reg = Registration {
        device_id: wire.device_id.unwrap_or_default(),
        ip: wire.ip.unwrap_or_default(),
        server: wire.server.unwrap_or_default(),
        service: wire.service.unwrap_or_default(),
        pid: wire.pid.unwrap_or_default(),
        rtmp: wire.rtmp.unwrap_or_default(),
        http: wire.http.unwrap_or_default(),
        api: wire.api.unwrap_or_default(),
        srt: wire.srt.unwrap_or_default(),
        rtc: wire.rtc.unwrap_or_default(),
    };
    validate(&reg)?;
    Ok(reg)
}

/// The checks of [`parse_registration`] on a registration from elsewhere (a server record
/// another proxy stored in Redis): required fields, then the first entry of every endpoint.
pub fn validate(reg: &Registration) -> Result<(), RegisterError> {
    for (field, value) in [
        ("ip", &reg.ip),
        ("server", &reg.server),
        ("service", &reg.service),
        ("pid", &reg.pid),
    ] {
        if value.is_empty() {
            return Err(RegisterError::Empty(field));
        }
    }
    if reg.rtmp.is_empty() {
        return Err(RegisterError::Empty("rtmp"));
    }
    for (field, list) in [
        ("rtmp", &reg.rtmp),
        ("http", &reg.http),
        ("api", &reg.api),
        ("srt", &reg.srt),
        ("rtc", &reg.rtc),
    ] {
        if let Some(first) = list.first() {
            parse_endpoint(first).map_err(|reason| RegisterError::BadEndpoint {
                field,
                value: first.clone(),
                reason,
            })?;
        }
    }
    Ok(())
}

/// The JSON shape. Every field is optional so that a missing one reaches validation and gets Go's
/// message; `null` is treated as missing, as Go does.
#[derive(Debug, Default, Deserialize)]
struct Wire {
    #[serde(default, deserialize_with = "lenient_string")]
    device_id: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pid: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    rtmp: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_list")]
    http: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_list")]
    api: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_list")]
    srt: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_list")]
    rtc: Option<Vec<String>>,
}

/// A JSON string, or an integer written as its decimal text (§10 #8), or null → "".
struct LenientString;

impl<'de> Visitor<'de> for LenientString {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(LenientString).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// An array of [`LenientString`]s, or null.
fn lenient_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Item(String);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(LenientString).map(Item)
        }
    }
    struct List;
    impl<'de> Visitor<'de> for List {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of strings or integers")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // Bounded by the body, which the caller bounds; no capacity hint from the peer.
            let mut out = Vec::new();
            while let Some(Item(s)) = seq.next_element()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of strings or integers")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(List).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/srs-heartbeat"
    );

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{DIR}/{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
    }

    /// The body of a captured `.http` request: everything after the blank line.
    fn http_body(name: &str) -> Vec<u8> {
        let raw = fixture(name);
        let at = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{name}: no end of head"));
        raw[at + 4..].to_vec()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn expected(service: &str, pid: &str) -> Registration {
        Registration {
            device_id: "fixture-origin".into(),
            ip: "127.0.0.1".into(),
            server: "vid-dq33213".into(),
            service: service.into(),
            pid: pid.into(),
            rtmp: strings(&["51935"]),
            http: strings(&["51080"]),
            api: strings(&["51985"]),
            srt: strings(&["udp://0.0.0.0:51880"]),
            rtc: strings(&["udp://0.0.0.0:51800"]),
        }
    }

    fn fixtures_and_expectations() -> Vec<(&'static str, Result<Registration, RegisterError>)> {
        let mut ip_port = expected("h85b3577", "24928");
        ip_port.rtmp = strings(&["127.0.0.1:51935"]);
        ip_port.http = strings(&["127.0.0.1:51080"]);
        ip_port.api = strings(&["127.0.0.1:51985"]);
        let mut multi = expected("35wgz64d", "24932");
        multi.rtmp = strings(&["51935", "51937"]);
        let mut rtc_tcp = expected("0dr850v4", "24937");
        rtc_tcp.rtc = strings(&["udp://0.0.0.0:51800", "tcp://0.0.0.0:51802"]);
        let rtmp_only = Registration {
            http: vec![],
            api: vec![],
            srt: vec![],
            rtc: vec![],
            ..expected("45005092", "24936")
        };
        vec![
            ("ports-all", Ok(expected("aust1f25", "24924"))),
            ("ports-ip-port", Ok(ip_port)),
            ("ports-multi-listen", Ok(multi)),
            ("ports-off", Err(RegisterError::Empty("rtmp"))),
            ("rtc-tcp", Ok(rtc_tcp)),
            ("rtmp-only", Ok(rtmp_only)),
            ("summaries", Ok(expected("gz43328d", "24941"))),
        ]
    }

    #[test]
    fn accepts_every_real_srs_heartbeat_json() {
        for (name, want) in fixtures_and_expectations() {
            let got = parse_registration(&fixture(&format!("{name}.json")));
            assert_eq!(got, want, "{name}.json");
        }
    }

    #[test]
    fn accepts_every_real_srs_heartbeat_http_body() {
        for (name, want) in fixtures_and_expectations() {
            let got = parse_registration(&http_body(&format!("{name}.http")));
            assert_eq!(got, want, "{name}.http");
        }
    }

    #[test]
    fn fixture_ports_and_id() {
        let reg = parse_registration(&fixture("rtc-tcp.json")).unwrap();
        assert_eq!(reg.id(), "vid-dq33213-0dr850v4-24937");
        assert_eq!(reg.rtmp_port(), Some(51935));
        assert_eq!(reg.http_port(), Some(51080));
        assert_eq!(reg.api_port(), Some(51985));
        assert_eq!(reg.srt_port(), Some(51880));
        assert_eq!(reg.rtc_port(), Some(51800));
        let reg = parse_registration(&fixture("rtmp-only.json")).unwrap();
        assert_eq!((reg.http_port(), reg.rtc_port()), (None, None));
        let reg = parse_registration(&fixture("ports-ip-port.json")).unwrap();
        assert_eq!(reg.rtmp_port(), Some(51935));
    }

    #[test]
    fn accepts_the_seed_curl_example() {
        let body = br#"{"ip":"127.0.0.1","server":"s","service":"v","pid":"1","rtmp":["19351"]}"#;
        let reg = parse_registration(body).unwrap();
        assert_eq!(reg.id(), "s-v-1");
        assert_eq!(reg.rtmp, ["19351"]);
        assert_eq!(reg.device_id, "");
        assert!(reg.http.is_empty());
    }

    #[test]
    fn accepts_numbers_for_pid_and_endpoints() {
        let body = br#"{"ip":"10.0.0.2","server":"s","service":"v","pid":42583,"rtmp":[19351],"rtc":["udp://8001",8002],"device_id":7}"#;
        let reg = parse_registration(body).unwrap();
        assert_eq!(reg.pid, "42583");
        assert_eq!(reg.rtmp, ["19351"]);
        assert_eq!(reg.rtc, ["udp://8001", "8002"]);
        assert_eq!(reg.device_id, "7");
        assert_eq!(reg.rtc_port(), Some(8001));
    }

    #[test]
    fn validation_order_and_messages_are_gos() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "empty ip"),
            (b"{}", "empty ip"),
            (br#"{"ip":null}"#, "empty ip"),
            (br#"{"ip":"1.2.3.4"}"#, "empty server"),
            (br#"{"ip":"1.2.3.4","server":"s"}"#, "empty service"),
            (
                br#"{"ip":"1.2.3.4","server":"s","service":"v"}"#,
                "empty pid",
            ),
            (
                br#"{"ip":"1.2.3.4","server":"s","service":"v","pid":""}"#,
                "empty pid",
            ),
            (
                br#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1"}"#,
                "empty rtmp",
            ),
            (
                br#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":[]}"#,
                "empty rtmp",
            ),
        ];
        for (body, msg) in cases {
            let err = parse_registration(body).unwrap_err();
            assert_eq!(err.to_string(), msg, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn rejects_endpoints_it_cannot_route_to_naming_the_field() {
        let base = r#""ip":"1.2.3.4","server":"s","service":"v","pid":"1""#;
        let cases = [
            (
                format!(r#"{{{base},"rtmp":["abc"]}}"#),
                "invalid rtmp[0] \"abc\"",
            ),
            (
                format!(r#"{{{base},"rtmp":["1935"],"http":["0"]}}"#),
                "invalid http[0] \"0\"",
            ),
            (
                format!(r#"{{{base},"rtmp":["1935"],"api":[""]}}"#),
                "invalid api[0] \"\"",
            ),
            (
                format!(r#"{{{base},"rtmp":["1935"],"srt":["udp://x"]}}"#),
                "invalid srt[0]",
            ),
            (
                format!(r#"{{{base},"rtmp":["1935"],"rtc":["sctp://1"]}}"#),
                "invalid rtc[0]",
            ),
            (
                format!(r#"{{{base},"rtmp":[null]}}"#),
                "invalid rtmp[0] \"\"",
            ),
        ];
        for (body, prefix) in cases {
            let err = parse_registration(body.as_bytes()).unwrap_err();
            assert!(err.to_string().starts_with(prefix), "{body}: {err}");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn bad_json_names_the_problem() {
        let cases: [(&[u8], &str); 7] = [
            (b"{", "EOF"),
            (b"[]", "expected a JSON object"),
            (b"not json", "expected"),
            (br#"{"ip":1}"#, "expected a string"),
            (br#"{"ip":"a","pid":1.5}"#, "a string or an integer"),
            (br#"{"rtmp":"1935"}"#, "an array of strings or integers"),
            (br#"{"rtmp":[{}]}"#, "a string or an integer"),
        ];
        for (body, needle) in cases {
            let err = parse_registration(body).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, RegisterError::Json(_)), "{msg}");
            assert!(
                msg.contains(needle),
                "{}: {msg}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn ignores_unknown_fields() {
        let body = br#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":["1935"],"rtsp":["554"],"summaries":{"a":[1,{"b":null}]},"x":true}"#;
        assert!(parse_registration(body).is_ok());
    }

    #[test]
    fn hostile_bodies_never_panic() {
        let nasty: [&[u8]; 6] = [
            b"\xff\xfe",
            b"{\"ip\":\"\\ud800\"}",
            b"{\"pid\":18446744073709551616}",
            b"{\"pid\":-1,\"ip\":\"a\",\"server\":\"s\",\"service\":\"v\",\"rtmp\":[1]}",
            &[b'['; 10_000],
            b"{\"rtmp\":[[[[[]]]]]}",
        ];
        for body in nasty {
            let _ = parse_registration(body);
        }
    }
}
