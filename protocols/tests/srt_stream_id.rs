//! SRT stream ids → stream keys (spec §4.1, §5.7; issue 5).

use protocols::srt::{SrtError, SrtMode, StreamId};

fn key(sid: &str) -> String {
    StreamId::parse(sid).unwrap().stream_key().unwrap()
}

#[test]
fn spec_examples_give_the_spec_keys() {
    assert_eq!(
        key("#!::r=live/livestream,m=publish"),
        "__defaultVhost__/live/livestream"
    );
    assert_eq!(
        key("#!::h=example.com,r=live/livestream"),
        "example.com/live/livestream"
    );
    assert_eq!(
        key("#!::r=live/srtstream,m=request"),
        "__defaultVhost__/live/srtstream"
    );
    assert_eq!(
        key("#!::r=live/srtenc,m=publish"),
        "__defaultVhost__/live/srtenc"
    );
}

#[test]
fn keys_may_come_in_any_order() {
    let a = StreamId::parse("#!::m=publish,u=alice,s=abc,h=example.com,r=live/x").unwrap();
    let b = StreamId::parse("#!::r=live/x,h=example.com,s=abc,u=alice,m=publish").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.mode, Some(SrtMode::Publish));
    assert_eq!(a.user.as_deref(), Some("alice"));
    assert_eq!(a.session.as_deref(), Some("abc"));
    assert_eq!(a.stream_key().unwrap(), "example.com/live/x");
}

#[test]
fn r_inside_user_is_not_the_resource() {
    let id = StreamId::parse("#!::user=bob,r=live/s").unwrap();
    assert_eq!(id.resource, "live/s");
    assert_eq!(id.user, None, "`user` is not the `u` key");
    assert!(matches!(
        StreamId::parse("#!::user=bob,m=publish"),
        Err(SrtError::NoResource(_))
    ));
}

#[test]
fn a_missing_resource_is_an_error() {
    for sid in [
        "#!::m=publish",
        "#!::",
        "#!::r=,m=publish",
        "",
        "?m=publish",
    ] {
        assert!(
            matches!(StreamId::parse(sid), Err(SrtError::NoResource(_))),
            "{sid:?}"
        );
    }
}

#[test]
fn values_keep_slashes_and_equals_signs() {
    let id = StreamId::parse("#!::r=live/a/b,s=tok=en==,u=x").unwrap();
    assert_eq!(id.resource, "live/a/b");
    assert_eq!(id.session.as_deref(), Some("tok=en=="));
}

#[test]
fn the_first_occurrence_of_a_key_wins_like_go() {
    let id = StreamId::parse("#!::r=live/first,r=live/second").unwrap();
    assert_eq!(id.resource, "live/first");
}

#[test]
fn a_query_in_the_resource_is_dropped_from_the_key_like_srs_and_go() {
    let id = StreamId::parse("#!::r=live/livestream?secret=xxx,m=publish").unwrap();
    assert_eq!(id.resource, "live/livestream");
    assert_eq!(id.mode, Some(SrtMode::Publish));
    assert_eq!(id.stream_key().unwrap(), "__defaultVhost__/live/livestream");
}

#[test]
fn plain_stream_ids_route_like_srs_reads_them() {
    assert_eq!(key("live/livestream"), "__defaultVhost__/live/livestream");
    assert_eq!(key("livestream"), "__defaultVhost__/live/livestream");
    let id = StreamId::parse("live/livestream?m=publish").unwrap();
    assert_eq!(id.resource, "live/livestream");
    // SRS reads every plain id as a request (play), whatever the query says.
    assert_eq!(id.mode, Some(SrtMode::Request));
}

#[test]
fn modes_are_case_insensitive_and_unknown_ones_are_kept() {
    assert_eq!(
        StreamId::parse("#!::r=a/b,m=PUBLISH").unwrap().mode,
        Some(SrtMode::Publish)
    );
    assert_eq!(
        StreamId::parse("#!::r=a/b,m=play").unwrap().mode,
        Some(SrtMode::Other("play".into()))
    );
    assert_eq!(StreamId::parse("#!::r=a/b").unwrap().mode, None);
}

#[test]
fn hosts_follow_the_vhost_rules_of_4_1() {
    assert_eq!(key("#!::h=127.0.0.1,r=live/s"), "__defaultVhost__/live/s");
    assert_eq!(key("#!::h=localhost,r=live/s"), "__defaultVhost__/live/s");
    assert_eq!(key("#!::h=example.com/live/s"), "example.com/live/s");
}

#[test]
fn over_long_stream_ids_are_refused() {
    let sid = format!("#!::r=live/{}", "x".repeat(600));
    assert!(matches!(
        StreamId::parse(&sid),
        Err(SrtError::StreamIdTooLong(_))
    ));
}
