//! Arbitrary bytes as AMF0 values, re-encoded and decoded again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::rtmp::fuzzing::fuzz_amf0(data);
});
