//! Every input the fuzzers ever crashed on (`fuzz/regressions/<target>/`) runs again here, so a
//! fixed bug stays fixed in `cargo test` and not only in `make fuzz`.

use std::path::Path;

fn run_dir(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("readable regressions folder").path();
        let data = std::fs::read(&path).expect("readable regression input");
        f(&data);
        n += 1;
    }
    n
}

#[test]
fn past_fuzzer_crashes_no_longer_panic() {
    use protocols::rtmp::fuzzing as rtmp;
    let mut total = 0;
    total += run_dir("rtmp_chunk_decoder", rtmp::fuzz_chunk_decoder);
    total += run_dir("rtmp_relay", rtmp::fuzz_relay);
    total += run_dir("rtmp_amf0", rtmp::fuzz_amf0);
    total += run_dir("rtmp_server_session", rtmp::fuzz_server_session);
    total += run_dir(
        "http_request_head",
        protocols::http::fuzzing::fuzz_request_head,
    );
    total += run_dir(
        "http_playlist_rewrite",
        protocols::http::fuzzing::fuzz_playlist_rewrite,
    );
    total += run_dir(
        "http_mpd_rewrite",
        protocols::http::fuzzing::fuzz_mpd_rewrite,
    );
    total += run_dir("srt_packet", protocols::srt::fuzzing::fuzz_packet);
    total += run_dir("webrtc_stun_sdp", protocols::webrtc::fuzzing::fuzz_stun_sdp);
    total += run_dir("redis_resp", protocols::resp::fuzz_parse);
    assert!(total >= 2, "the regression corpus is in fuzz/regressions");
}
