//! WebRTC through the proxy (spec §5.5, §5.6; issue 4): the glue around the sans-IO
//! [`protocols::webrtc`].
//!
//! * [`signal`]: WHIP/WHEP and the legacy RTC API on `PROXY_HTTP_API`: forward the offer to the
//!   stream's origin, rewrite and validate the answer, store the ICE session key.
//! * [`table`]: the process-wide session table (ICE session key → origin, media session).
//! * [`media`]: the UDP relay on `PROXY_WEBRTC_SERVER`, one receive loop per core.
//!
//! The proxy never terminates WebRTC: ICE checks are answered by the origin, DTLS and SRTP are
//! end to end. What the proxy adds over Go: answers validated before any status (502 instead of
//! a 2xx with an error body), origin headers (`Location`) passed through, idle and DTLS-close
//! expiry, bounded tables, no panic on any datagram, and address migration across cores.

pub mod media;
pub mod signal;
pub mod table;
