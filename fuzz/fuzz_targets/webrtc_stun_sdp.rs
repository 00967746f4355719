//! Arbitrary bytes through WebRTC datagram classification, STUN parsing (`USERNAME`, session
//! key), SDP credentials, the answer rewrite and check, and the legacy JSON envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::webrtc::fuzzing::fuzz_stun_sdp(data);
});
