//! Arbitrary bytes through SRT classification, handshake/extension parsing, stream ids and the
//! handshake relay.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::srt::fuzzing::fuzz_packet(data);
});
