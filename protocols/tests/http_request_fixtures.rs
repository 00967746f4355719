//! The request-head parser against real captured requests (curl → SRS, SRS heartbeats), pipelining,
//! every split point and hostile bytes.

use protocols::http::{parse_request_head, BodyKind, HttpError, Limits, RequestHead};
use protocols::stream_key::stream_key_from_http;

const HTTP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/http");
const HEARTBEAT_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/srs-heartbeat"
);

fn read(dir: &str, name: &str) -> Vec<u8> {
    let path = format!("{dir}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn fixtures(dir: &str, suffix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixture dir {dir}: {e}"))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .map(|n| {
            let bytes = read(dir, &n);
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}

fn parse_complete(buf: &[u8]) -> (RequestHead, usize) {
    parse_request_head(buf, &Limits::default())
        .expect("valid request")
        .expect("complete head")
}

#[test]
fn parses_every_captured_stream_request() {
    let all = fixtures(HTTP_DIR, ".request.http");
    assert_eq!(all.len(), 6, "expected the six curl captures");
    for (name, bytes) in all {
        let (head, n) = parse_complete(&bytes);
        assert_eq!(
            n,
            bytes.len(),
            "{name}: GET without body, head is the whole file"
        );
        assert_eq!(head.method, "GET", "{name}");
        assert_eq!(head.version_minor, 1);
        assert!(head.keep_alive, "{name}");
        assert_eq!(head.body, BodyKind::None);
        assert_eq!(
            head.header("user-agent"),
            Some(&b"curl/7.88.1"[..]),
            "{name}"
        );
        assert!(head.path.starts_with("/live/"), "{name}");
    }
}

#[test]
fn captured_requests_give_the_documented_paths_queries_and_keys() {
    let cases = [
        (
            "flv.request.http",
            "/live/livestream.flv",
            None,
            "__defaultVhost__/live/livestream",
        ),
        (
            "ts.request.http",
            "/live/livestream.ts",
            None,
            "__defaultVhost__/live/livestream",
        ),
        (
            "hls-master.request.http",
            "/live/livestream.m3u8",
            None,
            "__defaultVhost__/live/livestream",
        ),
        (
            "hls-404.request.http",
            "/live/nostream.m3u8",
            None,
            "__defaultVhost__/live/nostream",
        ),
        (
            "hls-variant.request.http",
            "/live/livestream.m3u8",
            Some("hls_ctx=46kh9n5v"),
            "__defaultVhost__/live/livestream",
        ),
        (
            "hls-segment.request.http",
            "/live/livestream-2.ts",
            Some("hls_ctx=46kh9n5v"),
            "__defaultVhost__/live/livestream-2",
        ),
    ];
    for (name, path, query, key) in cases {
        let (head, _) = parse_complete(&read(HTTP_DIR, name));
        assert_eq!(head.path, path, "{name}");
        assert_eq!(head.query.as_deref(), query, "{name}");
        assert_eq!(head.header_str("Host"), Some("127.0.0.1:51081"), "{name}");
        let got = stream_key_from_http(head.header_str("host"), &head.path, head.query.as_deref());
        assert_eq!(got.as_deref(), Ok(key), "{name}");
    }
}

#[test]
fn parses_every_srs_heartbeat_and_finds_its_json_body() {
    let all = fixtures(HEARTBEAT_DIR, ".http");
    assert_eq!(all.len(), 7);
    for (name, bytes) in all {
        let (head, n) = parse_complete(&bytes);
        assert_eq!(head.method, "POST", "{name}");
        assert_eq!(head.path, "/api/v1/srs/register", "{name}");
        assert_eq!(head.query, None);
        assert!(head.keep_alive, "{name}: SRS sends Connection: Keep-Alive");
        assert_eq!(head.header_str("content-type"), Some("application/json"));
        assert!(head
            .header_str("user-agent")
            .unwrap()
            .starts_with("SRS/7.0.18"));
        let BodyKind::ContentLength(len) = head.body else {
            panic!("{name}: SRS sends Content-Length");
        };
        assert_eq!(
            n as u64 + len,
            bytes.len() as u64,
            "{name}: body fills the rest of the capture"
        );
        let json_name = name.replace(".http", ".json");
        assert_eq!(
            &bytes[n..],
            read(HEARTBEAT_DIR, &json_name).as_slice(),
            "{name}"
        );
    }
}

#[test]
fn every_split_point_is_partial_then_complete() {
    let mut inputs = fixtures(HTTP_DIR, ".request.http");
    inputs.extend(fixtures(HEARTBEAT_DIR, ".http"));
    for (name, bytes) in inputs {
        let (whole, n) = parse_complete(&bytes);
        for split in 0..n {
            assert_eq!(
                parse_request_head(&bytes[..split], &Limits::default()),
                Ok(None),
                "{name}: prefix of {split} bytes"
            );
        }
        for split in n..=bytes.len() {
            let (head, len) = parse_complete(&bytes[..split]);
            assert_eq!((head, len), (whole.clone(), n), "{name}: {split} bytes");
        }
    }
}

#[test]
fn pipelined_requests_are_parsed_one_after_another() {
    let mut buf = Vec::new();
    let names = [
        "flv.request.http",
        "hls-master.request.http",
        "ts.request.http",
    ];
    for name in names {
        buf.extend(read(HTTP_DIR, name));
    }
    let heartbeat = read(HEARTBEAT_DIR, "ports-all.http");
    buf.extend(&heartbeat);
    buf.extend(read(HTTP_DIR, "hls-404.request.http"));

    let mut at = 0;
    let mut paths = Vec::new();
    while at < buf.len() {
        let (head, n) = parse_complete(&buf[at..]);
        at += n;
        if let BodyKind::ContentLength(len) = head.body {
            at += len as usize;
        }
        paths.push(head.path);
    }
    assert_eq!(
        paths,
        [
            "/live/livestream.flv",
            "/live/livestream.m3u8",
            "/live/livestream.ts",
            "/api/v1/srs/register",
            "/live/nostream.m3u8"
        ]
    );
}

#[test]
fn head_limit_applies_to_slow_and_endless_heads() {
    let limits = Limits {
        max_head_bytes: 64,
        max_headers: 8,
    };
    let mut endless = b"GET / HTTP/1.1\r\n".to_vec();
    while endless.len() < 64 {
        endless.extend_from_slice(b"X: y\r\n");
    }
    assert_eq!(
        parse_request_head(&endless, &limits),
        Err(HttpError::HeadTooLarge { limit: 64 })
    );
    assert_eq!(HttpError::HeadTooLarge { limit: 64 }.status(), 431);
}

#[test]
fn hostile_input_never_panics() {
    let mut seeds: Vec<Vec<u8>> = fixtures(HTTP_DIR, ".request.http")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    seeds.extend(fixtures(HEARTBEAT_DIR, ".http").into_iter().map(|(_, b)| b));
    seeds.push(
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
    );
    // Deterministic xorshift mutations: flips, truncations and junk bytes at every position.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for seed in &seeds {
        for _ in 0..300 {
            let mut m = seed.clone();
            for _ in 0..(next() % 4 + 1) {
                let pos = (next() as usize) % m.len().max(1);
                match next() % 4 {
                    0 if !m.is_empty() => m[pos] = next() as u8,
                    1 => m.truncate(pos),
                    2 => m.insert(pos.min(m.len()), b"\r\n:;%\0\x7f[]"[next() as usize % 9]),
                    _ => m.insert(pos.min(m.len()), next() as u8),
                }
            }
            protocols::http::fuzzing::fuzz_request_head(&m);
        }
    }
    for junk in [
        &b"\0\0\0\0"[..],
        b"\r\n\r\n",
        b"GET",
        b"GET  / HTTP/1.1\r\n\r\n",
        &[0xff; 100],
    ] {
        protocols::http::fuzzing::fuzz_request_head(junk);
        let _ = parse_request_head(junk, &Limits::default());
    }
}
