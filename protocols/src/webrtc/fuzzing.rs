//! Entry point for the fuzz crate (`fuzz/fuzz_targets/webrtc_stun_sdp.rs`): arbitrary bytes
//! through everything in this module that sees network bytes. Must never panic.

use std::net::{IpAddr, Ipv4Addr};

use super::classify::classify;
use super::sdp::{ice_credentials, rewrite_answer, sdp_text, validate_answer};
use super::signal::{
    exchange_session_key, replace_string_field, route, sdp_field, string_field, MAX_ENVELOPE_LEN,
};
use super::stun::{session_key, StunMessage};

/// The whole input is tried as a datagram (classify, STUN parse, `USERNAME`, session key,
/// every attribute), as an SDP answer (credentials, rewrite with and without a public IP,
/// validate before and after), as a legacy JSON envelope (field lookup, unescape, splice the
/// rewritten SDP back and re-read it) and as a request path. The first byte picks the origin
/// ports so that the rewrite branches are reachable with short inputs.
pub fn fuzz_stun_sdp(data: &[u8]) {
    let _ = classify(data);
    if let Ok(msg) = StunMessage::parse(data) {
        let _ = (msg.class(), msg.method(), msg.is_binding_request());
        let _ = msg.transaction_id();
        for attr in msg.attributes() {
            let _ = attr.value.len();
        }
        if let Ok(Some(name)) = msg.username() {
            let _ = session_key(name);
        }
    }

    let port = data.first().map_or(0, |&b| u16::from(b) % 10);
    let ports = [port, 8000, 51800];
    if let Ok(text) = sdp_text(data) {
        exercise_sdp(text, &ports);
        let _ = route(text);
    }

    if let Ok(Some(field)) = string_field(data, "sdp") {
        exercise_sdp(&field.value, &ports);
        if let Ok(out) = rewrite_answer(&field.value, &ports, 18000, None) {
            let spliced = replace_string_field(data, &field, &out);
            let again = sdp_field(&spliced);
            // The splice may legitimately push a body near the bound over it.
            if spliced.len() <= MAX_ENVELOPE_LEN {
                assert_eq!(
                    again.map(|f| f.value.into_owned()).ok(),
                    Some(out),
                    "a spliced value reads back unchanged"
                );
            }
        }
    }
}

fn exercise_sdp(text: &str, ports: &[u16]) {
    let _ = ice_credentials(text);
    let _ = validate_answer(text);
    let public = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
    for ip in [None, public] {
        if let Ok(out) = rewrite_answer(text, ports, 18000, ip) {
            let _ = validate_answer(&out);
            let _ = exchange_session_key(text, &out);
        }
    }
}
