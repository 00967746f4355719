//! HLS playlist rewriting (RFC 8216 §4): tag every media segment URI with the proxy's affinity id
//! `spbhid`, so the segment requests reach the origin that serves the playlist (spec §5.4 with the
//! §10 #13 fix).
//!
//! Unlike the Go proxy's blind `.ts?` substring replacement, only URIs are touched: URI lines
//! (lines that are neither blank nor start with `#`) and the `URI="…"` attribute of tags
//! (`#EXT-X-MAP` for fMP4 init segments, `#EXT-X-KEY`, `#EXT-X-MEDIA`, `#EXT-X-PART`, …). A URI is
//! tagged when its path names a segment ([`super::route::is_segment_path`]); nested playlists
//! (`.m3u8`, as in SRS's `hls_ctx` master playlist) are left as they are, since playlists are
//! routed by their path. The id goes first in the query with a single `&` before what was there
//! (`a.ts?hls_ctx=x` → `a.ts?spbhid=ID&hls_ctx=x`). Line endings (LF or CRLF) are kept.

use super::route::is_segment_path;

/// Rewrites `playlist` into `out` (cleared first). Returns how many URIs were tagged.
///
/// `spbhid` must be URL-safe (the proxy mints lowercase hex); it is inserted verbatim.
pub fn rewrite_playlist(playlist: &[u8], spbhid: &str, out: &mut Vec<u8>) -> usize {
    out.clear();
    out.reserve(playlist.len() + 64);
    let mut tagged = 0;
    let mut rest = playlist;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let had_newline = line.len() < rest.len();
        let (content, cr) = match line.strip_suffix(b"\r") {
            Some(c) => (c, true),
            None => (line, false),
        };
        tagged += rewrite_line(content, spbhid, out);
        if cr {
            out.push(b'\r');
        }
        if had_newline {
            out.push(b'\n');
        }
        rest = next;
    }
    tagged
}

fn rewrite_line(line: &[u8], spbhid: &str, out: &mut Vec<u8>) -> usize {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        out.extend_from_slice(line);
        return 0;
    }
    if trimmed.starts_with(b"#") {
        return rewrite_uri_attribute(line, spbhid, out);
    }
    // A URI line: keep surrounding whitespace as it was.
    let start = line.len() - line.trim_ascii_start().len();
    let end = start + trimmed.len();
    out.extend_from_slice(&line[..start]);
    let n = tag_uri(trimmed, spbhid, out);
    out.extend_from_slice(&line[end..]);
    n
}

/// `#EXT-X-…:…,URI="x",…`: tags the quoted value of the `URI` attribute (RFC 8216 §4.2: an
/// attribute name is `[A-Z0-9-]+`, so `URI=` must start the list or follow a comma).
fn rewrite_uri_attribute(line: &[u8], spbhid: &str, out: &mut Vec<u8>) -> usize {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        out.extend_from_slice(line);
        return 0;
    };
    let mut i = colon + 1;
    let mut in_quotes = false;
    let mut attr_start = i;
    while i < line.len() {
        match line[i] {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => attr_start = i + 1,
            _ => {}
        }
        if !in_quotes && i == attr_start && line[i..].starts_with(b"URI=\"") {
            let value_start = i + 5;
            let Some(len) = line[value_start..].iter().position(|b| *b == b'"') else {
                break;
            };
            let value_end = value_start + len;
            out.extend_from_slice(&line[..value_start]);
            let n = tag_uri(&line[value_start..value_end], spbhid, out);
            out.extend_from_slice(&line[value_end..]);
            return n;
        }
        i += 1;
    }
    out.extend_from_slice(line);
    0
}

/// Appends `uri` with `spbhid=<id>` first in its query when its path names a segment.
fn tag_uri(uri: &[u8], spbhid: &str, out: &mut Vec<u8>) -> usize {
    let path_end = uri
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(uri.len());
    let is_segment = std::str::from_utf8(&uri[..path_end]).is_ok_and(is_segment_path);
    if !is_segment {
        out.extend_from_slice(uri);
        return 0;
    }
    insert_id(uri, spbhid, b"&", out);
    1
}

/// Appends `uri` with `spbhid=<id>` first in its query, `sep` before the query that was there.
pub(super) fn insert_id(uri: &[u8], spbhid: &str, sep: &[u8], out: &mut Vec<u8>) {
    let path_end = uri
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(uri.len());
    out.extend_from_slice(&uri[..path_end]);
    out.extend_from_slice(b"?spbhid=");
    out.extend_from_slice(spbhid.as_bytes());
    let tail = &uri[path_end..];
    match tail.first() {
        Some(b'?') => {
            let query_end = tail.iter().position(|b| *b == b'#').unwrap_or(tail.len());
            let query = &tail[1..query_end];
            if !query.is_empty() {
                out.extend_from_slice(sep);
                out.extend_from_slice(query);
            }
            out.extend_from_slice(&tail[query_end..]);
        }
        _ => out.extend_from_slice(tail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> (String, usize) {
        let mut out = Vec::new();
        let n = rewrite_playlist(s.as_bytes(), "abc1234", &mut out);
        (String::from_utf8(out).expect("utf-8 in, utf-8 out"), n)
    }

    fn fixture_body(name: &str) -> String {
        let path = format!(
            "{}/../../shared/fixtures/http/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (_, body) = raw.split_once("\r\n\r\n").expect("head and body");
        body.to_owned()
    }

    #[test]
    fn srs_variant_segments_get_the_id_and_keep_hls_ctx_with_one_ampersand() {
        let body = fixture_body("hls-variant.response.http");
        let (out, n) = rewrite(&body);
        assert_eq!(n, 6);
        for seq in 2..=7 {
            assert!(
                out.contains(&format!(
                    "\nlivestream-{seq}.ts?spbhid=abc1234&hls_ctx=46kh9n5v\n"
                )),
                "{out}"
            );
        }
        assert!(!out.contains("&&"));
        // Tags and comments are untouched, line by line.
        let tags_in: Vec<&str> = body.lines().filter(|l| l.starts_with('#')).collect();
        let tags_out: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(tags_in, tags_out);
        assert_eq!(body.lines().count(), out.lines().count());
    }

    #[test]
    fn srs_hls_ctx_master_playlist_passes_through_unchanged() {
        let body = fixture_body("hls-master.response.http");
        assert_eq!(rewrite(&body), (body.clone(), 0));
    }

    #[test]
    fn nginx_style_plain_uris_and_absolute_uris() {
        let (out, n) = rewrite(
            "#EXTM3U\r\n#EXTINF:1.0,\r\ns-0.ts\r\n#EXTINF:1.0,\r\nhttp://o:8080/live/s-1.ts?t=1#x\r\n",
        );
        assert_eq!(n, 2);
        assert_eq!(
            out,
            "#EXTM3U\r\n#EXTINF:1.0,\r\ns-0.ts?spbhid=abc1234\r\n#EXTINF:1.0,\r\nhttp://o:8080/live/s-1.ts?spbhid=abc1234&t=1#x\r\n"
        );
    }

    #[test]
    fn fmp4_map_and_attribute_uris_are_tagged_but_comments_are_not() {
        let (out, n) = rewrite(
            "#EXTM3U\n# a comment about x.ts\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n\
             #EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"5@0\"\n#EXTINF:2,\nseg-1.m4s?\n\
             #EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x.ts\",URI=\"a.m3u8\"\n#EXT-X-PART:DURATION=1,URI=\"p.m4s\"\n",
        );
        assert_eq!(n, 3);
        assert_eq!(
            out,
            "#EXTM3U\n# a comment about x.ts\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n\
             #EXT-X-MAP:URI=\"init.mp4?spbhid=abc1234\",BYTERANGE=\"5@0\"\n#EXTINF:2,\nseg-1.m4s?spbhid=abc1234\n\
             #EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x.ts\",URI=\"a.m3u8\"\n#EXT-X-PART:DURATION=1,URI=\"p.m4s?spbhid=abc1234\"\n"
        );
    }

    #[test]
    fn hostile_playlists_do_not_panic_and_keep_their_lines() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\n\n\r\n",
            b"#EXT-X-MAP:URI=\"unterminated.mp4",
            b"#EXT-X-MAP:URI=",
            b"#:",
            b"\xff\xfe.ts\n",
            b"  a.ts  \r",
            b"?\n#\n.ts",
        ];
        for input in inputs {
            let mut out = Vec::new();
            rewrite_playlist(input, "id", &mut out);
            assert_eq!(
                input.iter().filter(|b| **b == b'\n').count(),
                out.iter().filter(|b| **b == b'\n').count()
            );
        }
        let (out, _) = rewrite("  a.ts  \r");
        assert_eq!(out, "  a.ts?spbhid=abc1234  \r");
    }
}
