//! The stream keys `fixtures/README.md` ("Stream keys a proxy should derive", spec §4.1) lists for
//! the captured RTMP, HTTP, WebRTC and SRT sessions: every protocol must land on the same key.

use protocols::stream_key::{stream_key_from_http, stream_key_from_rtmp, stream_key_from_srt};

const LIVESTREAM: &str = "__defaultVhost__/live/livestream";

#[test]
fn rtmp_publish_and_play_keys() {
    for stream in ["livestream", "livestream?secret=abc123"] {
        assert_eq!(
            stream_key_from_rtmp("rtmp://127.0.0.1:51936/live", stream).as_deref(),
            Ok(LIVESTREAM)
        );
    }
}

#[test]
fn http_flv_ts_hls_keys() {
    for path in [
        "/live/livestream.flv",
        "/live/livestream.m3u8",
        "/live/livestream.ts",
    ] {
        assert_eq!(
            stream_key_from_http(Some("127.0.0.1:51081"), path, None).as_deref(),
            Ok(LIVESTREAM)
        );
    }
}

#[test]
fn whep_and_whip_keys() {
    let whep = stream_key_from_http(
        Some("127.0.0.1:51986"),
        "/rtc/v1/whep/",
        Some("app=live&stream=livestream"),
    );
    assert_eq!(whep.as_deref(), Ok(LIVESTREAM));
    let whip = stream_key_from_http(
        Some("127.0.0.1:51986"),
        "/rtc/v1/whip/",
        Some("app=live&stream=whipstream"),
    );
    assert_eq!(whip.as_deref(), Ok("__defaultVhost__/live/whipstream"));
}

#[test]
fn srt_keys() {
    assert_eq!(
        stream_key_from_srt(None, "live/srtstream").as_deref(),
        Ok("__defaultVhost__/live/srtstream")
    );
    assert_eq!(
        stream_key_from_srt(None, "live/srtenc").as_deref(),
        Ok("__defaultVhost__/live/srtenc")
    );
}
