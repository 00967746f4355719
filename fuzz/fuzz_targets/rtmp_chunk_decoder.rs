//! Arbitrary bytes as an RTMP chunk stream (and each message as a command).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::rtmp::fuzzing::fuzz_chunk_decoder(data);
});
