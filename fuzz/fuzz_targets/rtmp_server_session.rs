//! Arbitrary bytes after a valid handshake into the RTMP server session.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocols::rtmp::fuzzing::fuzz_server_session(data);
});
