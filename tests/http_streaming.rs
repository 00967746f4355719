//! HTTP streaming through the proxy's `PROXY_HTTP_SERVER` with real peers (issue 3): HTTP-FLV from
//! node-media-server, HLS from nginx-rtmp, routing by stream on two origins from both cores,
//! HTTP/1.1 framing, static files, and hostile clients next to a playing one.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

const H264_AAC: [&str; 2] = ["aac", "h264"];

/// Sends `bytes` on a fresh connection and reads until the peer closes or `quiet` passes without
/// a byte (bounded by 15 s).
fn raw_exchange(addr: SocketAddr, bytes: &[u8], quiet: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(quiet)).unwrap();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[], b"").unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn register_nms(proxy: &Proxy, nms: &NodeMediaServer, n: u32) {
    let resp = post_register(
        proxy.system_api(),
        &nms.register_body(&OriginIds::numbered(n)),
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// Reads the head of a streaming response and then counts body bytes in the background.
fn start_flv_reader(addr: SocketAddr, path: &str) -> (Arc<AtomicU64>, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16384, "head too long");
        s.read_exact(&mut byte).expect("read response head");
        head.push(byte[0]);
    }
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    });
    (count, String::from_utf8_lossy(&head).into_owned())
}

// HTTP-FLV from a real origin that is not ours: status and end-to-end headers come through, both
// tracks probe, and a playing client is not disturbed by a slowloris client and 64 KiB of garbage.
#[test]
fn http_flv_from_node_media_server_plays_through_the_proxy_and_survives_hostile_clients() {
    let nms = NodeMediaServer::start();
    let proxy = Proxy::start(&[]);
    register_nms(&proxy, &nms, 1);
    let _publisher = FfmpegPublisher::start(&proxy.rtmp_url("flvs"), 60);
    let http = proxy.http_server();
    wait_until(
        Duration::from_secs(15),
        "FLV stream readable via proxy",
        || ffprobe(&format!("http://{http}/live/flvs.flv")).is_ok_and(|c| c == H264_AAC),
    );
    let codecs = ffprobe(&format!("http://{http}/live/flvs.flv?token=abc")).expect("ffprobe");
    assert_eq!(codecs, H264_AAC);

    let (count, head) = start_flv_reader(http, "/live/flvs.flv");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    // node-media-server sends no Content-Type (SRS's `video/x-flv` is covered by the fixture
    // unit tests); its own end-to-end headers must come through.
    assert!(lower.contains("x-powered-by: "), "{head}");
    assert!(lower.contains("transfer-encoding: chunked"), "{head}");
    assert!(lower.contains("access-control-allow-origin: *"), "{head}");
    wait_until(Duration::from_secs(10), "FLV bytes flowing", || {
        count.load(Ordering::Relaxed) > 50_000
    });

    // Slowloris: a head that never completes gets a 408 after the head deadline.
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut reply = Vec::new();
        for b in b"GET /live/flvs.flv HTTP/1.1\r\nX-Slow: "
            .iter()
            .cycle()
            .take(40)
        {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            if let Ok(n) = s.read(&mut buf) {
                reply.extend_from_slice(&buf[..n]);
                break;
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    });
    // 64 KiB of garbage gets a 4xx and a close.
    let mut garbage = vec![0u8; 64 * 1024];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let reply = raw_exchange(http, &garbage, Duration::from_secs(3));
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 400") || reply.starts_with("HTTP/1.1 431"),
        "garbage reply: {reply:?}"
    );
    let before = count.load(Ordering::Relaxed);
    let slow_reply = slow.join().expect("slowloris thread");
    assert!(
        slow_reply.starts_with("HTTP/1.1 408"),
        "slowloris got {slow_reply:?}"
    );
    wait_until(Duration::from_secs(10), "the player still receives", || {
        count.load(Ordering::Relaxed) > before + 50_000
    });
}

fn wait_playlist(http: SocketAddr, path: &str) -> HttpResponse {
    wait_for(
        Duration::from_secs(20),
        &format!("{path} via proxy"),
        || {
            let r = http_request(http, "GET", path, &[], b"").ok()?;
            (r.status == 200 && playlist_uris(&r.text()).len() >= 2).then_some(r)
        },
    )
}

// HLS from nginx-rtmp: the playlist is rewritten (URI lines only, one id per stream), every segment
// URI carries the id and fetches TS bytes, ffprobe sees both tracks, unknown ids are a 400.
#[test]
fn hls_from_nginx_rtmp_plays_through_the_proxy_with_one_affinity_id() {
    let origin = NginxRtmpOrigin::start();
    let proxy = Proxy::start(&[]);
    register(&proxy, &origin, &OriginIds::numbered(1));
    let _publisher = FfmpegPublisher::start(&proxy.rtmp_url("hlss"), 60);
    let http = proxy.http_server();
    let first = wait_playlist(http, "/live/hlss.m3u8");
    assert_eq!(
        first.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        first
            .header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(first.body.len())
    );
    assert_eq!(first.header("access-control-allow-origin"), Some("*"));
    let uris = playlist_uris(&first.text());
    let id = spbhid_of(&uris[0]);
    for uri in &uris {
        assert_eq!(spbhid_of(uri), id, "one id per stream: {uri}");
        assert!(!uri.contains("&&"), "{uri}");
        let seg = get(http, &format!("/live/{uri}"));
        assert_eq!(seg.status, 200, "{uri}: {}", seg.text());
        assert!(
            seg.body.len() >= 188 && seg.body[0] == 0x47,
            "{uri}: not TS"
        );
        assert!(
            seg.body.chunks(188).all(|p| p[0] == 0x47),
            "{uri}: TS sync lost"
        );
    }
    // The same id on later playlist requests (new connections land on either core).
    for _ in 0..10 {
        let again = get(http, "/live/hlss.m3u8");
        for uri in playlist_uris(&again.text()) {
            assert_eq!(spbhid_of(&uri), id);
        }
    }
    // A range of a segment passes through.
    let ranged = http_request(
        http,
        "GET",
        &format!("/live/{}", uris[0]),
        &[("Range", "bytes=0-187")],
        b"",
    )
    .unwrap();
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body.len(), 188);
    // A ranged playlist request (ffmpeg reloads with `Range: bytes=0-`) still gets the whole
    // playlist, rewritten: a 206 from the origin would carry segment URIs without the id.
    let ranged = http_request(
        http,
        "GET",
        "/live/hlss.m3u8",
        &[("Range", "bytes=0-")],
        b"",
    )
    .unwrap();
    assert_eq!(ranged.status, 200, "{}", ranged.text());
    let ranged_uris = playlist_uris(&ranged.text());
    assert!(!ranged_uris.is_empty());
    for uri in ranged_uris {
        assert_eq!(spbhid_of(&uri), id, "ranged playlist: {uri}");
    }
    assert_eq!(
        get(http, "/live/hlss-0.ts?spbhid=nope123").status,
        400,
        "unknown spbhid"
    );
    // The query reaches the origin (auth hooks), and segments carry their full query.
    assert_eq!(get(http, "/live/hlss.m3u8?token=abc123").status, 200);
    wait_until(
        Duration::from_secs(5),
        "the query in nginx's access log",
        || {
            let log = origin.access_log();
            log.contains("/live/hlss.m3u8?token=abc123") && log.contains(&format!("spbhid={id}"))
        },
    );
    // A missing stream gets the origin's 404.
    assert_eq!(get(http, "/live/nostream.m3u8").status, 404);
    // ffprobe lists an HLS stream's tracks once per program and once at the top.
    let mut codecs = ffprobe(&format!("http://{http}/live/hlss.m3u8")).expect("ffprobe HLS");
    codecs.dedup();
    assert_eq!(codecs, H264_AAC);
}

// Two streams on two origins: every playlist and segment request for a stream, on fresh
// connections spread over both cores, reaches the origin holding it (the other one 404s).
#[test]
fn two_streams_on_two_origins_each_play_from_the_right_one_from_both_cores() {
    let a = NginxRtmpOrigin::start();
    let b = NginxRtmpOrigin::start();
    let proxy = Proxy::start(&[]);
    register(&proxy, &a, &OriginIds::numbered(1));
    register(&proxy, &b, &OriginIds::numbered(2));
    let origins = [&a, &b];
    let mut placed: [Option<String>; 2] = [None, None];
    let mut publishers = Vec::new();
    for i in 0..16 {
        if placed.iter().all(Option::is_some) {
            break;
        }
        let name = format!("two{i}");
        publishers.push(FfmpegPublisher::start(&proxy.rtmp_url(&name), 60));
        let holder = wait_for(Duration::from_secs(15), "a holder", || {
            origins
                .iter()
                .position(|o| o.stream(&name).is_some_and(|s| s.publishers >= 1))
        });
        placed[holder].get_or_insert(name);
    }
    let [Some(on_a), Some(on_b)] = placed else {
        panic!("16 streams all landed on one origin");
    };
    let http = proxy.http_server();
    for (name, holder) in [(&on_a, &a), (&on_b, &b)] {
        let pl = wait_playlist(http, &format!("/live/{name}.m3u8"));
        let direct = get(holder.http_addr(), &format!("/live/{name}.m3u8"));
        assert_eq!(direct.status, 200);
        for _ in 0..20 {
            let pl2 = get(http, &format!("/live/{name}.m3u8"));
            assert_eq!(pl2.status, 200);
            let uri = playlist_uris(&pl2.text()).pop().expect("a segment");
            let seg = get(http, &format!("/live/{uri}"));
            assert_eq!(seg.status, 200, "{name}: {uri}");
            assert_eq!(seg.body[0], 0x47);
        }
        drop(pl);
    }
    let metrics = proxy.metrics();
    for core in ["0", "1"] {
        assert!(
            metric_sum(
                &metrics,
                "srs_proxy_connections_total",
                &[("protocol", "http_stream"), ("core", core)]
            ) > 0.0,
            "core {core} served no HTTP stream connection:\n{metrics}"
        );
    }
}

// HTTP/1.1: pipelining, keep-alive, HEAD, OPTIONS, 431, 400, static files, no path escape.
#[test]
fn http11_framing_and_static_files() {
    let proxy = Proxy::start(&[]);
    let http = proxy.http_server();
    let three = b"GET /api/v1/versions HTTP/1.1\r\nHost: a\r\n\r\n\
                  HEAD /api/v1/versions HTTP/1.1\r\nHost: a\r\n\r\n\
                  GET /api/v1/versions HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let reply =
        String::from_utf8_lossy(&raw_exchange(http, three, Duration::from_secs(3))).into_owned();
    assert_eq!(reply.matches("HTTP/1.1 200 OK").count(), 3, "{reply}");
    assert_eq!(
        reply.matches("\"code\":0").count(),
        2,
        "HEAD has no body: {reply}"
    );

    let opts = raw_exchange(
        http,
        b"OPTIONS /live/s.flv HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    );
    let opts = String::from_utf8_lossy(&opts);
    assert!(opts.starts_with("HTTP/1.1 200"), "{opts}");
    assert!(opts.contains("Access-Control-Allow-Methods: *"), "{opts}");

    let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat(b'a').take(20_000));
    big.extend_from_slice(b"\r\n\r\n");
    let r = raw_exchange(http, &big, Duration::from_secs(3));
    assert!(
        r.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = raw_exchange(http, b"\x16\x03\x01garbage\r\n\r\n", Duration::from_secs(3));
    assert!(
        r.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&r)
    );

    // No stream and no origin: a proxy-side 503 with a short text.
    let r = get(http, "/live/none.flv");
    assert_eq!(r.status, 503, "{}", r.text());

    let index = get(http, "/");
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(index.header("last-modified").is_some());
    let ranged = http_request(http, "GET", "/index.html", &[], b"").unwrap();
    assert_eq!(ranged.status, 301);
    let part = http_request(http, "GET", "/", &[("Range", "bytes=0-9")], b"").unwrap();
    assert_eq!((part.status, part.body.len()), (206, 10));
    assert_eq!(&part.body[..], &index.body[..10]);
    assert_eq!(get(http, "/no/such/file.html").status, 404);
    let escape = raw_exchange(
        http,
        b"GET /../Cargo.toml HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(
        escape.starts_with(b"HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&escape)
    );
    let escape = get(http, "/%2e%2e/Cargo.toml");
    assert_eq!(escape.status, 404);

    let off = Proxy::start(&[("PROXY_STATIC_FILES", "off")]);
    assert_eq!(get(off.http_server(), "/").status, 404);
}

/// The values of every `name="…"` attribute in `xml`.
fn xml_attr_values(xml: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    xml.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &xml[i + needle.len()..];
            rest.find('"').map(|e| rest[..e].to_string())
        })
        .collect()
}

// DASH from nginx-rtmp (`dash on`): the manifest's SegmentTemplate URLs carry the stream's
// affinity id, and the init segment and a media fragment fetched with it come from the origin.
#[test]
fn dash_from_nginx_rtmp_plays_through_the_proxy_with_the_affinity_id() {
    let origin = NginxRtmpOrigin::start_with_dash();
    let proxy = Proxy::start(&[]);
    register(&proxy, &origin, &OriginIds::numbered(1));
    let _publisher = FfmpegPublisher::start(&proxy.rtmp_url("dashs"), 60);
    let http = proxy.http_server();
    let mpd = wait_for(Duration::from_secs(30), "a DASH manifest via proxy", || {
        let r = http_request(http, "GET", "/live/dashs.mpd", &[], b"").ok()?;
        (r.status == 200 && r.text().contains("<S ")).then_some(r)
    });
    assert_eq!(mpd.header("content-type"), Some("application/dash+xml"));
    assert_eq!(
        mpd.header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(mpd.body.len())
    );
    let text = mpd.text();
    let media = xml_attr_values(&text, "media");
    let init = xml_attr_values(&text, "initialization");
    assert!(!media.is_empty() && !init.is_empty(), "{text}");
    let id = spbhid_of(&media[0]);
    for uri in media.iter().chain(&init) {
        assert_eq!(spbhid_of(uri), id, "one id per stream: {uri}");
    }
    // The same id as the HLS playlist of the same stream.
    let m3u8 = wait_playlist(http, "/live/dashs.m3u8");
    assert_eq!(spbhid_of(&playlist_uris(&m3u8.text())[0]), id);
    let init_seg = get(http, &format!("/live/{}", init[0]));
    assert_eq!(init_seg.status, 200, "{}: {}", init[0], init_seg.text());
    assert_eq!(&init_seg.body[4..8], b"ftyp", "{}: not fMP4", init[0]);
    // The first fragment on the timeline of the first representation.
    let t = xml_attr_values(&text, "t")[0].clone();
    let frag_uri = media[0].replace("$Time$", &t);
    let frag = get(http, &format!("/live/{frag_uri}"));
    assert_eq!(frag.status, 200, "{frag_uri}: {}", frag.text());
    assert!(frag.body.len() > 8, "{frag_uri}: empty");
    // Without the id the fragment is a static file (none here): the proxy does not guess.
    let bare = frag_uri.split_once('?').unwrap().0;
    assert_ne!(get(http, &format!("/live/{bare}")).status, 200);
}
