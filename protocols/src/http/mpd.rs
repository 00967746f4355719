//! MPEG-DASH manifest rewriting (ISO/IEC 23009-1 §5.3.9, §5.6): tag every segment URL with the
//! proxy's affinity id `spbhid`, so segment requests reach the origin that serves the manifest
//! (the DASH twin of [`super::playlist`]).
//!
//! No XML tree is built: one pass over the bytes finds start tags (skipping comments, CDATA,
//! processing instructions and the DOCTYPE) and tags
//! - the values of the attributes that name segments: `media` (`SegmentTemplate`, `SegmentURL`),
//!   `initialization` (`SegmentTemplate`) and `sourceURL` (`Initialization`,
//!   `RepresentationIndex`), whatever their suffix (templates like `$Number$` have none);
//! - the text of a `<BaseURL>` that names a segment file ([`super::route::is_segment_path`]). A
//!   directory `BaseURL` is left alone: a base's query does not survive URL resolution (RFC 3986
//!   §5.2), so the segment templates carry the id instead.
//!
//! The id goes first in the query; an existing query follows after `&amp;` (the manifest is XML).
//! Everything else is copied byte for byte; malformed input is copied, never rejected.

use super::playlist::insert_id;
use super::route::is_segment_path;

/// Attributes whose value is a segment URL (template).
const URL_ATTRIBUTES: [&[u8]; 3] = [b"media", b"initialization", b"sourceURL"];

/// Rewrites `mpd` into `out` (cleared first). Returns how many URLs were tagged.
///
/// `spbhid` must be URL- and XML-safe (the proxy mints lowercase hex); it is inserted verbatim.
pub fn rewrite_mpd(mpd: &[u8], spbhid: &str, out: &mut Vec<u8>) -> usize {
    out.clear();
    out.reserve(mpd.len() + 256);
    let mut tagged = 0;
    let mut i = 0;
    while i < mpd.len() {
        let Some(lt) = mpd[i..].iter().position(|b| *b == b'<') else {
            out.extend_from_slice(&mpd[i..]);
            break;
        };
        out.extend_from_slice(&mpd[i..i + lt]);
        i += lt;
        let rest = &mpd[i..];
        // Markup whose content is not tags.
        let skip = [
            (&b"<!--"[..], &b"-->"[..]),
            (b"<![CDATA[", b"]]>"),
            (b"<?", b"?>"),
            (b"<!", b">"),
        ]
        .into_iter()
        .find(|(open, _)| rest.starts_with(open));
        if let Some((open, close)) = skip {
            let end = find(&rest[open.len()..], close)
                .map_or(rest.len(), |e| open.len() + e + close.len());
            out.extend_from_slice(&rest[..end]);
            i += end;
            continue;
        }
        let tag_len = start_tag_len(rest);
        tagged += rewrite_tag(&rest[..tag_len], spbhid, out);
        i += tag_len;
        let tag = &rest[..tag_len];
        if is_base_url_open(tag) && !tag.ends_with(b"/>") {
            // The text up to the next '<' (BaseURL holds no markup).
            let text_end = mpd[i..]
                .iter()
                .position(|b| *b == b'<')
                .unwrap_or(mpd.len() - i);
            let text = &mpd[i..i + text_end];
            let trimmed = text.trim_ascii();
            let start = text.len() - text.trim_ascii_start().len();
            let path_end = trimmed
                .iter()
                .position(|b| *b == b'?' || *b == b'#')
                .unwrap_or(trimmed.len());
            if std::str::from_utf8(&trimmed[..path_end]).is_ok_and(is_segment_path) {
                out.extend_from_slice(&text[..start]);
                insert_id(trimmed, spbhid, b"&amp;", out);
                out.extend_from_slice(&text[start + trimmed.len()..]);
                tagged += 1;
            } else {
                out.extend_from_slice(text);
            }
            i += text_end;
        }
    }
    tagged
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the tag starting at `s[0] == b'<'`: through its `>` (quotes respected), or all of `s`.
fn start_tag_len(s: &[u8]) -> usize {
    let mut quote = None;
    for (i, &b) in s.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

/// `<BaseURL>` or `<BaseURL …>` (any namespace prefix).
fn is_base_url_open(tag: &[u8]) -> bool {
    let name_end = tag
        .iter()
        .skip(1)
        .position(|b| !is_name_byte(*b))
        .map_or(tag.len(), |p| p + 1);
    let name = &tag[1..name_end];
    let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
    local == b"BaseURL"
}

/// Copies one tag, tagging the values of [`URL_ATTRIBUTES`]; returns how many it tagged.
fn rewrite_tag(tag: &[u8], spbhid: &str, out: &mut Vec<u8>) -> usize {
    if tag.starts_with(b"</") {
        out.extend_from_slice(tag);
        return 0;
    }
    let mut tagged = 0;
    // Skip the element name.
    let mut i = 1 + tag
        .iter()
        .skip(1)
        .position(|b| !is_name_byte(*b))
        .unwrap_or(tag.len() - 1);
    out.extend_from_slice(&tag[..i]);
    while i < tag.len() {
        let b = tag[i];
        if !is_name_byte(b) {
            out.push(b);
            i += 1;
            continue;
        }
        // An attribute: name, optional spaces, '=', optional spaces, quoted value.
        let name_end = i + tag[i..]
            .iter()
            .position(|b| !is_name_byte(*b))
            .unwrap_or(tag.len() - i);
        let name = &tag[i..name_end];
        let mut j = name_end;
        while j < tag.len() && tag[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= tag.len() || tag[j] != b'=' {
            out.extend_from_slice(&tag[i..j]);
            i = j;
            continue;
        }
        j += 1;
        while j < tag.len() && tag[j].is_ascii_whitespace() {
            j += 1;
        }
        let Some(&q) = tag.get(j).filter(|q| matches!(**q, b'"' | b'\'')) else {
            out.extend_from_slice(&tag[i..j]);
            i = j;
            continue;
        };
        let value_start = j + 1;
        let Some(len) = tag[value_start..].iter().position(|b| *b == q) else {
            // Unterminated: copy the rest as it is.
            out.extend_from_slice(&tag[i..]);
            return tagged;
        };
        let value = &tag[value_start..value_start + len];
        out.extend_from_slice(&tag[i..value_start]);
        if URL_ATTRIBUTES.contains(&name) && !value.trim_ascii().is_empty() {
            insert_id(value, spbhid, b"&amp;", out);
            tagged += 1;
        } else {
            out.extend_from_slice(value);
        }
        out.push(q);
        i = value_start + len + 1;
    }
    tagged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> (String, usize) {
        let mut out = Vec::new();
        let n = rewrite_mpd(s.as_bytes(), "abc1234", &mut out);
        (String::from_utf8(out).expect("utf-8 in, utf-8 out"), n)
    }

    /// The shape nginx-rtmp (`dash on`) writes.
    const NGINX_RTMP: &str = r#"<?xml version="1.0"?>
<MPD type="dynamic" xmlns="urn:mpeg:dash:schema:mpd:2011" availabilityStartTime="2026-11-26T12:00:00Z" minimumUpdatePeriod="PT5S" profiles="urn:hbbtv:dash:profile:isoff-live:2012,urn:mpeg:dash:profile:isoff-live:2011">
  <Period start="PT0S" id="dash">
    <AdaptationSet id="1" segmentAlignment="true" maxWidth="640" maxHeight="360" maxFrameRate="30">
      <Representation id="bench_H264" mimeType="video/mp4" codecs="avc1.64001e" width="640" height="360" frameRate="30" startWithSAP="1" bandwidth="1000000">
        <SegmentTemplate timescale="1000" media="bench-$Time$.m4v" initialization="bench-init.m4v">
          <SegmentTimeline>
             <S t="0" d="2000"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="2" segmentAlignment="true">
      <Representation id="bench_AAC" mimeType="audio/mp4" codecs="mp4a.40.2" audioSamplingRate="44100" startWithSAP="1" bandwidth="128000">
        <SegmentTemplate timescale="1000" media="bench-$Time$.m4a" initialization="bench-init.m4a">
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#;

    #[test]
    fn nginx_rtmp_templates_get_the_id() {
        let (out, n) = rewrite(NGINX_RTMP);
        assert_eq!(n, 4);
        for v in [
            r#"media="bench-$Time$.m4v?spbhid=abc1234""#,
            r#"initialization="bench-init.m4v?spbhid=abc1234""#,
            r#"media="bench-$Time$.m4a?spbhid=abc1234""#,
            r#"initialization="bench-init.m4a?spbhid=abc1234""#,
        ] {
            assert!(out.contains(v), "{v} missing in\n{out}");
        }
        // Nothing else changed.
        assert_eq!(out.replace("?spbhid=abc1234", ""), NGINX_RTMP);
    }

    #[test]
    fn srs_style_queries_base_urls_and_segment_lists() {
        let (out, n) = rewrite(
            "<MPD><Period><BaseURL>http://o:8080/live/</BaseURL>\
             <AdaptationSet><SegmentTemplate media='$RepresentationID$-$Number$.m4s?token=1&amp;x=2' \
             initialization = \"$RepresentationID$-init.mp4\"/>\
             <Representation><BaseURL> one.mp4 </BaseURL><SegmentList>\
             <Initialization sourceURL=\"i.mp4\"/><SegmentURL media=\"s1.m4s\" mediaRange=\"0-9\"/>\
             </SegmentList></Representation></AdaptationSet></Period></MPD>",
        );
        assert_eq!(n, 5);
        assert_eq!(
            out,
            "<MPD><Period><BaseURL>http://o:8080/live/</BaseURL>\
             <AdaptationSet><SegmentTemplate media='$RepresentationID$-$Number$.m4s?spbhid=abc1234&amp;token=1&amp;x=2' \
             initialization = \"$RepresentationID$-init.mp4?spbhid=abc1234\"/>\
             <Representation><BaseURL> one.mp4?spbhid=abc1234 </BaseURL><SegmentList>\
             <Initialization sourceURL=\"i.mp4?spbhid=abc1234\"/><SegmentURL media=\"s1.m4s?spbhid=abc1234\" mediaRange=\"0-9\"/>\
             </SegmentList></Representation></AdaptationSet></Period></MPD>"
        );
    }

    #[test]
    fn comments_cdata_lookalikes_and_other_attributes_are_untouched() {
        let input = "<!-- media=\"x.m4s\" --><![CDATA[<S media=\"y.m4s\"/>]]>\
                     <?pi media=\"z\"?><!DOCTYPE MPD>\
                     <X mediaType=\"a.m4s\" data-media=\"b\" xmedia=\"c\" media=\"\">media=\"d.m4s\"</X>";
        assert_eq!(rewrite(input), (input.to_string(), 0));
    }

    #[test]
    fn hostile_manifests_do_not_panic() {
        let inputs: [&[u8]; 12] = [
            b"",
            b"<",
            b"<<<>>>",
            b"<S media=\"unterminated",
            b"<S media=",
            b"<S media = ",
            b"<S media=x.m4s>",
            b"<BaseURL>a.mp4",
            b"<BaseURL/>a.mp4<",
            b"<!--",
            b"<![CDATA[",
            b"\xff<S media=\"\xfe.m4s\"/>",
        ];
        for input in inputs {
            let mut out = Vec::new();
            let n = rewrite_mpd(input, "id", &mut out);
            assert!(out.len() >= input.len());
            assert_eq!(out.len() == input.len(), n == 0, "{input:?}");
        }
        let (out, n) = rewrite("<BaseURL>a.mp4");
        assert_eq!((out.as_str(), n), ("<BaseURL>a.mp4?spbhid=abc1234", 1));
    }
}
