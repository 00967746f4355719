//! The Go proxy's Redis schema, byte for byte (spec §4.3, §10 #4): key names, JSON value shapes
//! and TTLs, so Rust and Go proxies can share one Redis during a rolling upgrade.
//!
//! Keys (each behind `<PROXY_REDIS_KEY_PREFIX>:` when the prefix is set, G4):
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `srs-proxy-server:<server>-<service>-<pid>` | [`ServerRecord`] JSON | `EX <origin ttl>` (300) |
//! | `srs-proxy-all-servers` | JSON array of full server keys | none |
//! | `srs-proxy-url:<stream key>` | the full server key, plain text | none |
//! | `srs-proxy-hls:<stream key>`, `srs-proxy-spbhid:<spbhid>` | [`HlsRecord`] JSON | `EX 120` |
//! | `srs-proxy-rtc:<stream key>`, `srs-proxy-ufrag:<answer>:<offer>` | [`RtcRecord`] JSON | `EX 120` |
//!
//! The server keys stored *inside* values (`all-servers`, `url:`) are the full keys, prefix
//! included, because the Go proxy `GET`s them verbatim.
//!
//! JSON is written the way Go's `encoding/json` writes it: struct field order, `omitempty` on
//! every `SRSServer` string and slice, HTML-safe escaping of `<`, `>`, `&` (and U+2028/U+2029),
//! and `update_at` as Go's `time.Time` marshals it (RFC 3339, nanoseconds with trailing zeros
//! trimmed, the writer's local offset or `Z`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::register::Registration;
use crate::lb::Origin;

/// TTL of the HLS and WebRTC keys (Go `HLSAliveDuration`, `RTCAliveDuration`), fixed in every
/// Go line; `PROXY_ORIGIN_SERVER_TTL` only changes the server key's TTL.
pub const SESSION_TTL: Duration = Duration::from_secs(120);

/// Builds every key of the schema with the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `""` or `"<prefix>:"`.
    prefix: String,
}

impl Keys {
    /// `key_prefix` is `PROXY_REDIS_KEY_PREFIX` as configured (empty: no prefix).
    pub fn new(key_prefix: &str) -> Keys {
        let prefix = if key_prefix.is_empty() {
            String::new()
        } else {
            format!("{key_prefix}:")
        };
        Keys { prefix }
    }

    fn key(&self, kind: &str, rest: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + kind.len() + rest.len());
        k.push_str(&self.prefix);
        k.push_str(kind);
        k.push_str(rest);
        k
    }

    /// `srs-proxy-server:<id>`; `id` is `<server>-<service>-<pid>` ([`Origin::id`]).
    pub fn server(&self, origin_id: &str) -> String {
        self.key("srs-proxy-server:", origin_id)
    }

    /// The origin id inside a full server key (the inverse of [`Keys::server`]).
    pub fn origin_id<'a>(&self, server_key: &'a str) -> Option<&'a str> {
        server_key
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("srs-proxy-server:")
    }

    pub fn all_servers(&self) -> String {
        self.key("srs-proxy-all-servers", "")
    }

    pub fn url(&self, stream_key: &str) -> String {
        self.key("srs-proxy-url:", stream_key)
    }

    pub fn hls(&self, stream_key: &str) -> String {
        self.key("srs-proxy-hls:", stream_key)
    }

    pub fn spbhid(&self, spbhid: &str) -> String {
        self.key("srs-proxy-spbhid:", spbhid)
    }

    pub fn rtc(&self, stream_key: &str) -> String {
        self.key("srs-proxy-rtc:", stream_key)
    }

    /// `ufrag` is the ICE username `<answerUfrag>:<offerUfrag>`.
    pub fn ufrag(&self, ufrag: &str) -> String {
        self.key("srs-proxy-ufrag:", ufrag)
    }
}

/// Why a stored value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("value of {key} is not the expected JSON: {reason}")]
    Json { key: String, reason: String },
    #[error("bad RFC 3339 time {0:?}")]
    Time(String),
}

/// A Go `time.Time` as JSON carries it: an instant plus the writer's UTC offset, so a value
/// written by a Go proxy in another time zone re-serializes to the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTime {
    pub unix_secs: i64,
    pub nanos: u32,
    /// Seconds east of UTC.
    pub offset_secs: i32,
}

impl Default for GoTime {
    /// Go's zero time, `0001-01-01T00:00:00Z` (what an unset `update_at` marshals to).
    fn default() -> Self {
        GoTime {
            unix_secs: days_from_civil(1, 1, 1) * 86_400,
            nanos: 0,
            offset_secs: 0,
        }
    }
}

impl GoTime {
    /// `t` in this host's local zone, as Go's `time.Now()` would carry it.
    pub fn local(t: SystemTime) -> GoTime {
        let (secs, nanos) = split(t);
        GoTime {
            unix_secs: secs,
            nanos,
            offset_secs: local_offset(secs),
        }
    }

    pub fn with_offset(t: SystemTime, offset_secs: i32) -> GoTime {
        let (unix_secs, nanos) = split(t);
        GoTime {
            unix_secs,
            nanos,
            offset_secs,
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.unix_secs >= 0 {
            UNIX_EPOCH + Duration::new(self.unix_secs as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.unix_secs.unsigned_abs())
                + Duration::from_nanos(self.nanos.into())
        }
    }

    /// Go's `time.RFC3339Nano`: `2006-01-02T15:04:05.999999999Z07:00` — the fraction loses its
    /// trailing zeros (and its dot when zero), the offset is `Z` when zero and whole minutes
    /// otherwise.
    pub fn format(&self) -> String {
        let local = self.unix_secs + i64::from(self.offset_secs);
        let (days, sod) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let mut s = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        if self.offset_secs == 0 {
            s.push('Z');
        } else {
            let zone = self.offset_secs / 60;
            let sign = if zone < 0 { '-' } else { '+' };
            let zone = zone.abs();
            s.push_str(&format!("{sign}{:02}:{:02}", zone / 60, zone % 60));
        }
        s
    }

    /// Parses any RFC 3339 time (`Z` or `±hh:mm`, 0–9+ fraction digits; digits past the ninth
    /// are dropped, as Go does).
    pub fn parse(text: &str) -> Result<GoTime, SchemaError> {
        let bad = || SchemaError::Time(text.to_string());
        let b = text.as_bytes();
        if b.len() < 20 {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, SchemaError> {
            let part = b.get(r).ok_or_else(bad)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        };
        let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
        if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
            return Err(bad());
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
            return Err(bad());
        }
        if s > 59 {
            return Err(bad());
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - start;
            if digits == 0 {
                return Err(bad());
            }
            for _ in digits..9 {
                nanos *= 10;
            }
        }
        let offset_secs = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                let off = (oh * 3600 + om * 60) as i32;
                if sign == b'-' {
                    -off
                } else {
                    off
                }
            }
            _ => return Err(bad()),
        };
        let local = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s;
        Ok(GoTime {
            unix_secs: local - i64::from(offset_secs),
            nanos,
            offset_secs,
        })
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.format())
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoTime, D::Error> {
        let text = String::deserialize(d)?;
        GoTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn split(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            // Before 1970: floor to the second below, keep a positive fraction.
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

/// This host's UTC offset at `unix_secs` (what Go's `time.Local` gives), from the C library's
/// zone database, so no date crate is needed.
fn local_offset(unix_secs: i64) -> i32 {
    let t = unix_secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fully writes on success; both pointers are to
    // live locals; localtime_r is the thread-safe variant.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; serde_json does
/// not. Those characters can only occur inside JSON strings, so a byte-level rewrite is exact.
fn go_escape(json: String) -> String {
    if !json.bytes().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xe2)) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn to_go_json<T: Serialize>(v: &T) -> String {
    // INVARIANT: our records are plain structs of strings, string vectors and a time that
    // serializes as a string; serde_json cannot fail on them.
    go_escape(serde_json::to_string(v).expect("records serialize"))
}

fn from_json<'a, T: Deserialize<'a>>(key: &str, bytes: &'a [u8]) -> Result<T, SchemaError> {
    serde_json::from_slice(bytes).map_err(|e| SchemaError::Json {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Go's `SRSServer` / `OriginServer` in Redis (spec §4.3), fields in Go's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerRecord {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtmp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtc: Vec<String>,
    /// Always written: `omitempty` does nothing on a Go struct such as `time.Time`.
    #[serde(default)]
    pub update_at: GoTime,
}

impl ServerRecord {
    /// The record of `origin`, stamped with its last heartbeat in this host's zone.
    pub fn from_origin(origin: &Origin) -> ServerRecord {
        ServerRecord {
            ip: origin.ip.clone(),
            device_id: origin.device_id.clone(),
            server_id: origin.server.clone(),
            service_id: origin.service.clone(),
            pid: origin.pid.clone(),
            rtmp: origin.rtmp.clone(),
            http: origin.http.clone(),
            api: origin.api.clone(),
            srt: origin.srt.clone(),
            rtc: origin.rtc.clone(),
            update_at: GoTime::local(origin.updated_at()),
        }
    }

    /// `<server>-<service>-<pid>`, Go's `ID()`.
    pub fn id(&self) -> String {
        format!("{}-{}-{}", self.server_id, self.service_id, self.pid)
    }

    /// The registration this record describes, to build an [`Origin`] with
    /// [`Origin::from_registration`] (ports parsed as for a heartbeat).
    pub fn to_registration(&self) -> Registration {
        Registration {
            device_id: self.device_id.clone(),
            ip: self.ip.clone(),
            server: self.server_id.clone(),
            service: self.service_id.clone(),
            pid: self.pid.clone(),
            rtmp: self.rtmp.clone(),
            http: self.http.clone(),
            api: self.api.clone(),
            srt: self.srt.clone(),
            rtc: self.rtc.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        to_go_json(self)
    }

    /// Parses a value read from `key` (written by a Go or a Rust proxy).
    pub fn from_json(key: &str, bytes: &[u8]) -> Result<ServerRecord, SchemaError> {
        from_json(key, bytes)
    }
}

/// Go's `HLSPlayStream` in Redis: `{"spbhid","stream_url","full_url"}` (spec §4.3, §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HlsRecord {
    #[serde(default)]
    pub spbhid: String,
    #[serde(default)]
    pub stream_url: String,
    #[serde(default)]
    pub full_url: String,
}

impl HlsRecord {
    pub fn to_json(&self) -> String {
        to_go_json(self)
    }

    pub fn from_json(key: &str, bytes: &[u8]) -> Result<HlsRecord, SchemaError> {
        from_json(key, bytes)
    }
}

/// Go's `RTCConnection` in Redis: `{"stream_url","ufrag"}` (spec §4.3, §5.5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RtcRecord {
    #[serde(default)]
    pub stream_url: String,
    /// `<answerUfrag>:<offerUfrag>`, the ICE username the origin's STUN carries.
    #[serde(default)]
    pub ufrag: String,
}

impl RtcRecord {
    pub fn to_json(&self) -> String {
        to_go_json(self)
    }

    pub fn from_json(key: &str, bytes: &[u8]) -> Result<RtcRecord, SchemaError> {
        from_json(key, bytes)
    }
}

/// `srs-proxy-all-servers`: a JSON array of full server keys (Go `json.Marshal([]string)`).
pub fn server_list_json(keys: &[String]) -> String {
    to_go_json(&keys)
}

/// Parses `srs-proxy-all-servers`. Go writes `null` for an empty list after all servers expired.
pub fn parse_server_list(key: &str, bytes: &[u8]) -> Result<Vec<String>, SchemaError> {
    let list: Option<Vec<String>> = from_json(key, bytes)?;
    Ok(list.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec §4.3 example, one line.
    const SERVER_JSON: &str = concat!(
        r#"{"ip":"10.78.122.184","device_id":"origin2","server_id":"vid-46p14mm","#,
        r#""service_id":"z2s3w865","pid":"42583","rtmp":["19352"],"http":["8082"],"#,
        r#""api":["19853"],"srt":["10082"],"rtc":["udp://0.0.0.0:8001"],"#,
        r#""update_at":"2024-09-10T16:41:34.123456789+08:00"}"#
    );

    #[test]
    fn keys_follow_the_go_names_with_and_without_prefix() {
        let k = Keys::new("");
        assert_eq!(
            k.server("vid-46p14mm-z2s3w865-42583"),
            "srs-proxy-server:vid-46p14mm-z2s3w865-42583"
        );
        assert_eq!(k.all_servers(), "srs-proxy-all-servers");
        assert_eq!(
            k.url("__defaultVhost__/live/livestream"),
            "srs-proxy-url:__defaultVhost__/live/livestream"
        );
        assert_eq!(k.hls("a/b"), "srs-proxy-hls:a/b");
        assert_eq!(k.spbhid("a1b2c3d"), "srs-proxy-spbhid:a1b2c3d");
        assert_eq!(k.rtc("a/b"), "srs-proxy-rtc:a/b");
        assert_eq!(k.ufrag("8f3k2a91:Xy7q"), "srs-proxy-ufrag:8f3k2a91:Xy7q");
        let p = Keys::new("xxx");
        assert_eq!(p.server("s-v-1"), "xxx:srs-proxy-server:s-v-1");
        assert_eq!(p.all_servers(), "xxx:srs-proxy-all-servers");
        assert_eq!(p.url("k"), "xxx:srs-proxy-url:k");
        assert_eq!(p.origin_id("xxx:srs-proxy-server:s-v-1"), Some("s-v-1"));
        assert_eq!(p.origin_id("srs-proxy-server:s-v-1"), None);
        assert_eq!(k.origin_id("srs-proxy-server:s-v-1"), Some("s-v-1"));
    }

    #[test]
    fn server_record_round_trips_the_spec_example_byte_for_byte() {
        let r = ServerRecord::from_json("k", SERVER_JSON.as_bytes()).unwrap();
        assert_eq!(r.id(), "vid-46p14mm-z2s3w865-42583");
        assert_eq!(r.update_at.offset_secs, 8 * 3600);
        assert_eq!(r.update_at.nanos, 123_456_789);
        assert_eq!(r.to_json(), SERVER_JSON);
    }

    #[test]
    fn server_record_omits_empty_fields_like_go_omitempty() {
        let r = ServerRecord {
            ip: "127.0.0.1".into(),
            server_id: "s".into(),
            service_id: "v".into(),
            pid: "1".into(),
            rtmp: vec!["1935".into()],
            update_at: GoTime::parse("2024-01-02T03:04:05Z").unwrap(),
            ..Default::default()
        };
        assert_eq!(
            r.to_json(),
            r#"{"ip":"127.0.0.1","server_id":"s","service_id":"v","pid":"1","rtmp":["1935"],"update_at":"2024-01-02T03:04:05Z"}"#
        );
        // A record without update_at gets Go's zero time, which Go writes too.
        let z = ServerRecord::from_json("k", br#"{"pid":"1"}"#).unwrap();
        assert_eq!(
            z.to_json(),
            r#"{"pid":"1","update_at":"0001-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn formats_time_like_go_rfc3339nano() {
        let t = |s: u64, n: u32, off: i32| {
            GoTime::with_offset(UNIX_EPOCH + Duration::new(s, n), off).format()
        };
        // 2024-09-10T08:41:34Z
        assert_eq!(t(1_725_957_694, 0, 0), "2024-09-10T08:41:34Z");
        assert_eq!(
            t(1_725_957_694, 123_456_789, 8 * 3600),
            "2024-09-10T16:41:34.123456789+08:00"
        );
        assert_eq!(t(1_725_957_694, 120_000_000, 0), "2024-09-10T08:41:34.12Z");
        assert_eq!(
            t(1_725_957_694, 1, -(5 * 3600 + 30 * 60)),
            "2024-09-10T03:11:34.000000001-05:30"
        );
        // Leap day and year boundaries.
        assert_eq!(t(951_782_400, 0, 0), "2000-02-29T00:00:00Z");
        assert_eq!(t(1_704_067_199, 0, 0), "2023-12-31T23:59:59Z");
    }

    #[test]
    fn parses_any_rfc3339_offset_to_the_same_instant() {
        let a = GoTime::parse("2024-09-10T16:41:34.5+08:00").unwrap();
        let b = GoTime::parse("2024-09-10T08:41:34.500Z").unwrap();
        let c = GoTime::parse("2024-09-10T03:11:34.5-05:30").unwrap();
        assert_eq!(a.to_system_time(), b.to_system_time());
        assert_eq!(a.to_system_time(), c.to_system_time());
        assert_eq!(a.format(), "2024-09-10T16:41:34.5+08:00");
        // More than nine fraction digits: truncated, as Go does.
        let d = GoTime::parse("2024-09-10T08:41:34.1234567891Z").unwrap();
        assert_eq!(d.nanos, 123_456_789);
    }

    #[test]
    fn rejects_malformed_times() {
        for bad in [
            "",
            "2024-09-10",
            "2024-09-10 08:41:34Z",
            "2024-13-10T08:41:34Z",
            "2023-02-29T08:41:34Z",
            "2024-09-10T24:00:00Z",
            "2024-09-10T08:41:60Z",
            "2024-09-10T08:41:34.Z",
            "2024-09-10T08:41:34+0800",
            "2024-09-10T08:41:34+08:00x",
            "2024-09-10T08:41:34",
            "２024-09-10T08:41:34Z",
        ] {
            assert!(GoTime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_time_round_trips_through_json() {
        let now = SystemTime::now();
        let t = GoTime::local(now);
        let back = GoTime::parse(&t.format()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.to_system_time(), now);
    }

    #[test]
    fn hls_and_rtc_records_match_the_go_shapes() {
        let hls = r#"{"spbhid":"a1b2c3d","stream_url":"__defaultVhost__/live/livestream","full_url":"http://__defaultVhost__/live/livestream.m3u8"}"#;
        let r = HlsRecord::from_json("k", hls.as_bytes()).unwrap();
        assert_eq!(r.spbhid, "a1b2c3d");
        assert_eq!(r.to_json(), hls);
        let rtc = r#"{"stream_url":"__defaultVhost__/live/livestream","ufrag":"8f3k2a91:Xy7q"}"#;
        let r = RtcRecord::from_json("k", rtc.as_bytes()).unwrap();
        assert_eq!(r.ufrag, "8f3k2a91:Xy7q");
        assert_eq!(r.to_json(), rtc);
    }

    #[test]
    fn escapes_html_characters_like_go() {
        let r = HlsRecord {
            spbhid: "x".into(),
            stream_url: "a<b>&c\u{2028}".into(),
            full_url: "é\"\\".into(),
        };
        assert_eq!(
            r.to_json(),
            r#"{"spbhid":"x","stream_url":"a\u003cb\u003e\u0026c\u2028","full_url":"é\"\\"}"#
        );
        assert_eq!(
            HlsRecord::from_json("k", r.to_json().as_bytes()).unwrap(),
            r
        );
    }

    #[test]
    fn server_list_is_a_json_array_of_full_keys() {
        let keys = vec![
            "srs-proxy-server:a-b-1".to_string(),
            "x:srs-proxy-server:c".into(),
        ];
        let json = server_list_json(&keys);
        assert_eq!(json, r#"["srs-proxy-server:a-b-1","x:srs-proxy-server:c"]"#);
        assert_eq!(parse_server_list("k", json.as_bytes()).unwrap(), keys);
        assert_eq!(
            parse_server_list("k", b"null").unwrap(),
            Vec::<String>::new()
        );
        assert!(parse_server_list("k", b"{").is_err());
    }
}
