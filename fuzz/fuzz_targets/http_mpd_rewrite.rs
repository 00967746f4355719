//! Arbitrary bytes as a DASH manifest through the proxy's rewriter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::http::fuzzing::fuzz_mpd_rewrite(data);
});
