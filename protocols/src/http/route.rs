//! Which handler a request on the HTTP stream port goes to (spec §5.2), decided by the path's
//! suffix and the `spbhid` query parameter, in the Go proxy's order, plus fMP4 HLS segments and
//! MPEG-DASH manifests (which the Go proxy leaves to its static file server).

use super::request::query_param;

/// The handler for one request on `PROXY_HTTP_SERVER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRoute {
    /// `/api/v1/versions`, exact path, any method.
    Versions,
    /// `*.m3u8`: fetch from the stream's origin and rewrite the URI lines.
    HlsPlaylist,
    /// `*.mpd`: fetch from the stream's origin and tag its segment URLs (like a playlist).
    DashManifest,
    /// `*.ts`/`*.flv`/`*.m4s`/`*.mp4`/`*.m4a`/`*.m4v`/`*.aac`/`*.vtt` with a non-empty `spbhid`: a segment
    /// of the stream that minted the id.
    HlsSegment { spbhid: String },
    /// `*.flv`/`*.ts` without `spbhid`: an HTTP-FLV or HTTP-TS live stream.
    LiveStream,
    /// Anything else.
    Static,
}

/// Path suffixes that name a media segment the playlist rewriter tags with `spbhid`.
/// (`.m4v`/`.m4a` are nginx-rtmp's DASH fragments.)
pub const SEGMENT_SUFFIXES: [&str; 8] = [
    ".ts", ".flv", ".m4s", ".mp4", ".m4a", ".m4v", ".aac", ".vtt",
];

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Whether `path` (no query) names a segment the rewriter tags.
pub fn is_segment_path(path: &str) -> bool {
    SEGMENT_SUFFIXES
        .iter()
        .any(|s| ends_with_ignore_case(path, s))
}

/// Classifies a request by its raw path and query (spec §5.2). The Go proxy matches suffixes
/// case-sensitively (`strings.HasSuffix`); so does this, so `/a.FLV` stays a static file.
pub fn classify(path: &str, query: Option<&str>) -> StreamRoute {
    if path == "/api/v1/versions" {
        return StreamRoute::Versions;
    }
    if path.ends_with(".m3u8") {
        return StreamRoute::HlsPlaylist;
    }
    if path.ends_with(".mpd") {
        return StreamRoute::DashManifest;
    }
    let spbhid = query
        .and_then(|q| query_param(q, "spbhid"))
        .filter(|id| !id.is_empty());
    let live = path.ends_with(".flv") || path.ends_with(".ts");
    let segment = live || SEGMENT_SUFFIXES.iter().any(|s| path.ends_with(s));
    match spbhid {
        Some(spbhid) if segment => StreamRoute::HlsSegment { spbhid },
        _ if live => StreamRoute::LiveStream,
        _ => StreamRoute::Static,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_the_go_proxy_in_its_order() {
        let cases: [(&str, Option<&str>, StreamRoute); 13] = [
            ("/api/v1/versions", None, StreamRoute::Versions),
            ("/live/s.m3u8", Some("hls_ctx=x"), StreamRoute::HlsPlaylist),
            ("/live/s.mpd", None, StreamRoute::DashManifest),
            ("/live/s.flv", None, StreamRoute::LiveStream),
            ("/live/s.ts", Some("token=1"), StreamRoute::LiveStream),
            ("/live/s.ts", Some("spbhid="), StreamRoute::LiveStream),
            (
                "/live/s-3.ts",
                Some("hls_ctx=a&spbhid=abc"),
                StreamRoute::HlsSegment {
                    spbhid: "abc".into(),
                },
            ),
            (
                "/live/s-3.m4s",
                Some("spbhid=abc"),
                StreamRoute::HlsSegment {
                    spbhid: "abc".into(),
                },
            ),
            (
                "/live/init.mp4",
                Some("spbhid=abc"),
                StreamRoute::HlsSegment {
                    spbhid: "abc".into(),
                },
            ),
            (
                "/dash/s-1234.m4v",
                Some("spbhid=abc"),
                StreamRoute::HlsSegment {
                    spbhid: "abc".into(),
                },
            ),
            ("/live/s-3.m4s", None, StreamRoute::Static),
            ("/players/index.html", None, StreamRoute::Static),
            ("/live/s.FLV", None, StreamRoute::Static),
        ];
        for (path, query, want) in cases {
            assert_eq!(classify(path, query), want, "{path}?{query:?}");
        }
    }
}
