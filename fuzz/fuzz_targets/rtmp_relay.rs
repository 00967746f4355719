//! Arbitrary bytes through one RTMP relay direction.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::rtmp::fuzzing::fuzz_relay(data);
});
