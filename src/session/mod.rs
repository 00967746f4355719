//! Sessions: the only glue between the sans-IO protocol machines and sockets.

pub mod io;
pub mod origin;
pub mod rtmp;
pub mod srt;
pub mod udp;
