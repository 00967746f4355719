//! Arbitrary bytes as a stream of RESP2 replies (what a broken or hostile Redis could send).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::resp::fuzz_parse(data);
});
