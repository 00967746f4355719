//! Datagram demultiplexing on the shared WebRTC port (RFC 7983 §7, which updates RFC 5764
//! §5.1.2).
//!
//! WebRTC puts STUN, DTLS and SRTP/SRTCP on one 5-tuple; the first byte tells them apart:
//!
//! | first byte | protocol |
//! |---|---|
//! | 0–3 | STUN |
//! | 16–19 | ZRTP (not used by WebRTC) |
//! | 20–63 | DTLS |
//! | 64–79 | TURN channel data |
//! | 128–191 | RTP / RTCP |
//!
//! The Go proxy (spec §5.6 step 1) calls a datagram STUN only for `b0 ∈ {0, 1}` and RTP for
//! `(b0 & 0xC0) == 0x80` with at least 12 bytes; everything else is "other". We follow
//! RFC 7983 instead: its ranges are what browsers and SRS demultiplex with, so a STUN message
//! whose type starts with 2 or 3 (e.g. a future method) still reaches the STUN router, and a
//! short RTCP packet (a 4–8 byte BYE or an empty RR) is still counted as media. The routing
//! decision only differs for STUN (the proxy looks at `USERNAME`); every other kind is routed
//! by client address, so the wider ranges never drop anything Go would have forwarded.

/// What a datagram on the WebRTC port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    /// STUN (ICE connectivity checks): route by `USERNAME`, then by address.
    Stun,
    /// DTLS (handshake, alerts): end-to-end between client and origin, route by address.
    Dtls,
    /// SRTP or SRTCP (RFC 5761 multiplexing): route by address.
    Rtp,
    /// ZRTP, TURN channel data, an empty datagram or anything unassigned: route by address
    /// or drop, as the glue prefers; the proxy never parses it.
    Other,
}

/// Classifies one UDP payload by its first byte (RFC 7983 §7). Never fails.
pub fn classify(datagram: &[u8]) -> DatagramKind {
    match datagram.first() {
        Some(0..=3) => DatagramKind::Stun,
        Some(20..=63) => DatagramKind::Dtls,
        Some(128..=191) => DatagramKind::Rtp,
        _ => DatagramKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_ranges_follow_rfc_7983() {
        assert_eq!(classify(&[]), DatagramKind::Other);
        for b in 0..=255u8 {
            let want = match b {
                0..=3 => DatagramKind::Stun,
                20..=63 => DatagramKind::Dtls,
                128..=191 => DatagramKind::Rtp,
                _ => DatagramKind::Other,
            };
            assert_eq!(classify(&[b]), want, "first byte {b}");
        }
    }

    #[test]
    fn short_rtcp_is_media_unlike_go() {
        // An 8-byte RTCP receiver report with no blocks; Go needs 12 bytes.
        assert_eq!(classify(&[0x80, 201, 0, 1, 0, 0, 0, 1]), DatagramKind::Rtp);
    }
}
