//! Entry points for fuzz targets (design habit #6). Public so a `cargo fuzz` crate can call them;
//! they panic only when an invariant of the parser is broken, which is what a fuzzer looks for.

use super::{
    parse_request_head, percent_decode, query_param, BodyKind, ChunkedDecoder, ChunkedLimits,
    Limits,
};

/// Parses `data` as a request head (plus chunked body), and checks that parsing is consistent:
/// the head length lies within the input, feeding the same bytes in two pieces gives the same
/// head, and the helpers that consume the head's fields never panic.
pub fn fuzz_request_head(data: &[u8]) {
    let limits = Limits::default();
    let Ok(Some((head, n))) = parse_request_head(data, &limits) else {
        return;
    };
    assert!(n <= data.len(), "head length beyond the input");
    // The same head from exactly its own bytes, and "need more" for any strict prefix that ends
    // before the blank line.
    let again = parse_request_head(&data[..n], &limits);
    assert_eq!(
        again,
        Ok(Some((head.clone(), n))),
        "head not stable when cut at its end"
    );
    if n > 0 {
        assert!(
            !matches!(parse_request_head(&data[..n - 1], &limits), Ok(Some(_))),
            "a strict prefix parsed as complete"
        );
    }
    let _ = percent_decode(&head.path);
    if let Some(q) = &head.query {
        let _ = query_param(q, "app");
        let _ = query_param(q, "stream");
    }
    let _ = crate::stream_key::stream_key_from_http(
        head.header_str("host"),
        &head.path,
        head.query.as_deref(),
    );
    if head.body == BodyKind::Chunked {
        let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
        let mut out = Vec::new();
        if let Ok(status) = decoder.decode(&data[n..], &mut out) {
            assert!(status.consumed <= data.len() - n);
            assert!(out.len() as u64 <= ChunkedLimits::default().max_body_bytes);
        }
    }
}

/// Rewrites `data` as a playlist and checks the rewriter's promises: one output line per input
/// line, lines starting with `#` without a `URI="` attribute unchanged, every tagged URI carrying
/// the id, and nothing lost (removing the inserted text gives back the input, modulo the `&`
/// separator and an emptied `?`).
pub fn fuzz_playlist_rewrite(data: &[u8]) {
    const ID: &str = "f00d123";
    let mut out = Vec::new();
    let tagged = super::rewrite_playlist(data, ID, &mut out);
    let lines_in: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let lines_out: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
    assert_eq!(lines_in.len(), lines_out.len(), "line count changed");
    let mut seen = 0;
    for (a, b) in lines_in.iter().zip(&lines_out) {
        let is_tag = a.trim_ascii_start().starts_with(b"#");
        if is_tag && !a.windows(5).any(|w| w == b"URI=\"") {
            assert_eq!(a, b, "a comment or tag without URI changed");
        }
        let added = b.len() - a.len().min(b.len());
        if a != b {
            assert!(
                added >= "spbhid=".len() + ID.len(),
                "a changed line did not grow"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, tagged, "tag count differs from changed lines");
    let mut again = Vec::new();
    let id_count = |v: &[u8]| v.windows(ID.len()).filter(|w| *w == ID.as_bytes()).count();
    super::rewrite_playlist(&out, ID, &mut again);
    assert_eq!(
        id_count(&again),
        id_count(&out) + tagged,
        "second pass tags the same URIs"
    );
}

/// Rewrites `data` as a DASH manifest and checks the rewriter's promises: it only inserts (the
/// input comes back once every inserted `?spbhid=ID` and the `&amp;` after it are removed), it
/// inserts once per tagged URL, and a second pass tags the same URLs again.
pub fn fuzz_mpd_rewrite(data: &[u8]) {
    const ID: &str = "f00d123";
    let mut out = Vec::new();
    let tagged = super::rewrite_mpd(data, ID, &mut out);
    let id_count = |v: &[u8]| v.windows(ID.len()).filter(|w| *w == ID.as_bytes()).count();
    assert_eq!(
        id_count(&out),
        id_count(data) + tagged,
        "one id per tagged URL"
    );
    assert!(out.len() >= data.len() + tagged * ("?spbhid=".len() + ID.len()));
    if tagged == 0 {
        assert_eq!(out, data, "nothing tagged, nothing changed");
    }
    let mut again = Vec::new();
    let again_tagged = super::rewrite_mpd(&out, ID, &mut again);
    assert_eq!(again_tagged, tagged, "second pass tags the same URLs");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_accepts_seed_inputs() {
        let seeds: [&[u8]; 6] = [
            b"",
            b"GET / HTTP/1.1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"GET http://[::1]:80/live/s.flv?app=%zz HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET /%ff%00 HTTP/1.0\r\nHost: :\r\n\r\n",
        ];
        for s in seeds {
            fuzz_request_head(s);
        }
    }

    #[test]
    fn playlist_fuzz_entry_accepts_seed_inputs() {
        let seeds: [&[u8]; 6] = [
            b"",
            b"#EXTM3U\n#EXTINF:2,\na-1.ts?hls_ctx=x\n",
            b"#EXT-X-MAP:URI=\"init.mp4\"\r\nseg.m4s?\r\n",
            b"a.ts#frag\n?.ts\n#EXT-X-MAP:URI=\"",
            b"\xff.ts\n\r\n\r",
            b"x.ts?spbhid=1",
        ];
        for s in seeds {
            fuzz_playlist_rewrite(s);
        }
    }

    #[test]
    fn mpd_fuzz_entry_accepts_seed_inputs() {
        let seeds: [&[u8]; 6] = [
            b"",
            b"<SegmentTemplate media=\"a-$Number$.m4s?x=1\" initialization='i.mp4'/>",
            b"<BaseURL>a.mp4?q</BaseURL><BaseURL>dir/</BaseURL>",
            b"<!-- <S media=\"x\"/>",
            b"<S media=\"\xff\" sourceURL=\"",
            b"<S media=\"f00d123\"/>",
        ];
        for s in seeds {
            fuzz_mpd_rewrite(s);
        }
    }
}
