//! Arbitrary bytes as an HTTP/1.1 request head.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::http::fuzzing::fuzz_request_head(data);
});
