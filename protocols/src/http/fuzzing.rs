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
}
