//! Proves the end-to-end harness itself against real peers, with no proxy in the path:
//! nginx-rtmp starts, ffmpeg publishes to it, ffprobe and ffmpeg play it back, `/stat` parsing,
//! the `on_publish` hook recorder, extended timestamps and the raw RTMP client all work.
//! If these fail, the `rtmp_cluster` failures are about the harness, not the proxy.

mod support;

use std::time::Duration;

use support::nginx::{parse_stat, HookRecorder};
use support::rtmp_raw;
use support::*;

#[test]
fn nginx_origin_serves_a_direct_publish_back_to_ffprobe_and_ffmpeg() {
    let origin = NginxRtmpOrigin::start();
    let mut publisher = ffmpeg_publish(&origin.rtmp_url("harness"), 30);
    wait_until(Duration::from_secs(10), "the stream on nginx /stat", || {
        origin.stream("harness").is_some_and(|s| s.publishers == 1)
    });
    assert_eq!(
        ffprobe(&origin.rtmp_url("harness")).expect("ffprobe direct"),
        ["aac", "h264"]
    );
    ffmpeg_play(&origin.rtmp_url("harness"), 1).expect("ffmpeg play direct");

    let mut player = spawn_ffmpeg_play(&origin.rtmp_url("harness"));
    wait_until(Duration::from_secs(10), "one player on nginx /stat", || {
        origin.stream("harness").is_some_and(|s| s.players == 1)
    });
    assert!(player.is_running(), "player died: {}", player.stderr());

    publisher.stop();
    wait_until(Duration::from_secs(5), "the stream gone from /stat", || {
        origin.stream("harness").is_none_or(|s| s.publishers == 0)
    });
}

#[test]
fn nginx_on_publish_hook_sees_the_stream_name_and_query() {
    let hook = HookRecorder::start();
    let origin = NginxRtmpOrigin::start_with(NginxOptions {
        on_publish: Some(hook.url("/on_publish")),
        ..NginxOptions::default()
    });
    let _publisher = ffmpeg_publish(&origin.rtmp_url("livestream?secret=x"), 20);
    let body = hook.wait_for_body("call=publish", Duration::from_secs(10));
    assert!(body.contains("name=livestream"), "hook body: {body}");
    assert!(body.contains("secret=x"), "hook body: {body}");
    assert!(body.contains("app=live"), "hook body: {body}");
    wait_until(Duration::from_secs(10), "the stream on /stat", || {
        origin.stream("livestream").is_some()
    });
}

#[test]
fn extended_timestamps_publish_and_probe_directly() {
    let origin = NginxRtmpOrigin::start();
    let _publisher = FfmpegPublisher::start_with(
        &origin.rtmp_url("late"),
        PublishOptions {
            seconds: 30,
            ts_offset_seconds: Some(17_000),
        },
    );
    wait_until(Duration::from_secs(10), "the stream on /stat", || {
        origin.stream("late").is_some()
    });
    assert_eq!(
        ffprobe(&origin.rtmp_url("late")).expect("ffprobe"),
        ["aac", "h264"]
    );
    ffmpeg_play(&origin.rtmp_url("late"), 2).expect("play past 0xFFFFFF ms");
}

#[test]
fn raw_rtmp_client_reads_nginx_connect_result() {
    let origin = NginxRtmpOrigin::start();
    let (_socket, messages) =
        rtmp_raw::connect(origin.rtmp_addr(), "live", Duration::from_secs(5)).expect("connect");
    let result = messages
        .iter()
        .find(|m| m.is_command("_result"))
        .unwrap_or_else(|| panic!("no _result among {messages:?}"));
    assert!(result.contains(b"NetConnection.Connect.Success"));
    assert!(
        messages.iter().any(|m| m.type_id == 5),
        "nginx sends a Window Acknowledgement Size"
    );
}

#[test]
fn stat_parser_counts_publishers_and_players() {
    let xml = "<rtmp><server><application><name>live</name><live>\
        <stream><name>a</name><client><id>1</id><publishing/><active/></client>\
        <client><id>2</id><active/></client><client><id>3</id></client><nclients>3</nclients></stream>\
        <stream><name>b</name><nclients>0</nclients></stream>\
        </live></application></server></rtmp>";
    assert_eq!(
        parse_stat(xml),
        vec![
            StreamStat {
                name: "a".into(),
                publishers: 1,
                players: 2
            },
            StreamStat {
                name: "b".into(),
                publishers: 0,
                players: 0
            },
        ]
    );
}

#[test]
fn metric_parser_filters_by_labels() {
    let text = "# HELP x\n# TYPE srs_proxy_connections_total counter\n\
        srs_proxy_connections_total{protocol=\"rtmp\",core=\"0\"} 3\n\
        srs_proxy_connections_total{protocol=\"rtmp\",core=\"1\"} 4\n\
        srs_proxy_connections_total{protocol=\"http\",core=\"1\"} 9\n\
        srs_proxy_connections_total_extra 100\n";
    assert_eq!(
        metric_sum(text, "srs_proxy_connections_total", &[("protocol", "rtmp")]),
        7.0
    );
    assert_eq!(
        metric_sum(
            text,
            "srs_proxy_connections_total",
            &[("protocol", "rtmp"), ("core", "1")]
        ),
        4.0
    );
}
