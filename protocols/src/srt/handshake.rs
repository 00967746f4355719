//! The HSv5 handshake control packet (draft-sharabayko-srt §3.2.1, §4.3 caller–listener).
//!
//! Layout (spec §5.7): 16-byte header (`0x8000_0000`, type-specific info, timestamp, dest socket
//! id), then the 48-byte CIF: version, encryption field (u16), extension field (u16), ISN, MTU,
//! flow window, handshake type, SRT socket id, SYN cookie, peer IP (16 bytes), and from byte 64
//! the extension blocks ([`super::extension`]).
//!
//! The proxy never re-encodes a peer's handshake except where §5.7 says so: the replay to the
//! origin and the answer to the caller are the original datagrams with the cookie rewritten in
//! place ([`set_syn_cookie`]), so HSREQ/HSRSP, KMREQ/KMRSP and unknown blocks stay byte-for-byte.

use std::net::IpAddr;

use super::error::SrtError;
use super::extension::{decode_stream_id, ExtensionType, Extensions};
use super::packet::Packet;

/// Bytes in a handshake without extensions (header + CIF).
pub const HANDSHAKE_LEN: usize = 64;
/// The largest handshake accepted: SRT's largest MSS (1500 B). libsrt's biggest conclusion
/// (HSREQ + KMREQ with a 256-bit key + a 512-byte SID + filter + group) fits easily.
pub const MAX_HANDSHAKE_LEN: usize = 1500;
/// The HSv5 magic a listener puts in the extension field of its induction response (§4.3.1.1).
pub const SRT_MAGIC: u16 = 0x4A17;
/// The version a listener answers in its induction response (HSv5).
pub const HS_VERSION_5: u32 = 5;
/// The constant SYN cookie of the Go srs-proxy (spec §5.7, §10 #21).
pub const GO_SYN_COOKIE: u32 = 0x418d_5e4e;
/// The peer IP the Go proxy writes: 127.0.0.1 as libsrt lays it out (`01 00 00 7f`).
pub const GO_PEER_IP: [u8; 16] = [1, 0, 0, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

const OFF_VERSION: usize = 16;
const OFF_ENCRYPTION: usize = 20;
const OFF_EXTENSION: usize = 22;
const OFF_TYPE: usize = 36;
const OFF_SOCKET_ID: usize = 40;
const OFF_COOKIE: usize = 44;
const OFF_PEER_IP: usize = 48;

/// The handshake type field (§3.2.1, Table 4), including rejections (≥ 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandshakeType(pub u32);

impl HandshakeType {
    /// 0: rendezvous wave-a-hand.
    pub const WAVEAHAND: Self = Self(0);
    /// 1: induction.
    pub const INDUCTION: Self = Self(1);
    /// 0xFFFFFFFD (-3): rendezvous done.
    pub const DONE: Self = Self(0xFFFF_FFFD);
    /// 0xFFFFFFFE (-2): rendezvous agreement.
    pub const AGREEMENT: Self = Self(0xFFFF_FFFE);
    /// 0xFFFFFFFF (-1): conclusion.
    pub const CONCLUSION: Self = Self(0xFFFF_FFFF);

    /// `Some` when this is a rejection: libsrt sends `URQ_FAILURE_TYPES (1000) + reason` in the
    /// type field of the response (srtcore/handshake.h `URQFailure`).
    pub fn rejection(self) -> Option<RejectCode> {
        (1000..Self::DONE.0)
            .contains(&self.0)
            .then_some(RejectCode(self.0))
    }
}

/// A rejection as it appears in the handshake type field: `1000 + reason`, where the reason is an
/// `SRT_REJ_*` code (< 1000) or an application code `SRT_REJX_*`/`SRT_REJC_*` (≥ 1000), see
/// libsrt `docs/API/rejection-codes.md` and `srtcore/access_control.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectCode(pub u32);

impl RejectCode {
    /// SRT_REJ_PEER (2): the peer rejected the connection.
    pub const PEER: Self = Self(1002);
    /// SRT_REJ_RESOURCE (3): a resource allocation problem.
    pub const RESOURCE: Self = Self(1003);
    /// SRT_REJ_UNSECURE (11): password required or unexpected (the fixture's 1011).
    pub const UNSECURE: Self = Self(1011);
    /// SRT_REJ_TIMEOUT (16, libsrt ≥ 1.4.2): "connection not rejected, but timed out". What the
    /// relay sends when the origin does not finish its handshake in time (spec §10 #19, #21):
    /// the caller reports the same reason it would for an unreachable listener, but at once
    /// instead of after its own connect timeout. Older callers map it to SRT_REJ_UNKNOWN.
    pub const TIMEOUT: Self = Self(1016);
    /// SRT_REJX_BAD_REQUEST (1400): a stream id the proxy cannot route.
    pub const BAD_REQUEST: Self = Self(1000 + 1400);
    /// SRT_REJX_NOTFOUND (1404).
    pub const NOT_FOUND: Self = Self(1000 + 1404);
    /// SRT_REJX_CONFLICT (1409): e.g. the stream is already published.
    pub const CONFLICT: Self = Self(1000 + 1409);
    /// SRT_REJX_GW (1502): the proxy could not reach an origin (no origin, dial failed).
    pub const BAD_GATEWAY: Self = Self(1000 + 1502);
    /// SRT_REJX_DOWN (1503): the service is unavailable.
    pub const UNAVAILABLE: Self = Self(1000 + 1503);

    /// The libsrt reason (`srt_getrejectreason()` on the caller): the wire value minus 1000.
    pub fn reason(self) -> u32 {
        self.0.saturating_sub(1000)
    }
}

/// A parsed handshake. Fixed fields are copied out (they are 13 words); the extension blocks
/// stay borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// Header timestamp, µs.
    pub timestamp_us: u32,
    /// Header destination socket id (0 from a caller before the connection exists).
    pub dest_socket_id: u32,
    /// 4 in a caller's induction (HSv4 compatible), 5 afterwards.
    pub version: u32,
    /// Encryption field: 0 none, 2/3/4 = AES-128/192/256 (pbkeylen / 8).
    pub encryption: u16,
    /// Extension field: 2 (UDT_DGRAM) in a caller induction, [`SRT_MAGIC`] in the listener's
    /// induction response, HSREQ/KMREQ/CONFIG flags (1/2/4) in a conclusion.
    pub extension: u16,
    /// Initial sequence number.
    pub isn: u32,
    /// Maximum transmission unit, bytes.
    pub mtu: u32,
    /// Maximum flow window, packets.
    pub flow_window: u32,
    /// Induction, conclusion, rendezvous types or a rejection.
    pub handshake_type: HandshakeType,
    /// The sender's own socket id.
    pub socket_id: u32,
    /// SYN cookie (0 in a caller induction).
    pub syn_cookie: u32,
    /// Peer IP in libsrt's layout (each 32-bit word byte-reversed, see [`peer_ip_field`]).
    pub peer_ip: [u8; 16],
    /// Extension blocks (bytes 64..), borrowed.
    pub extensions: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl<'a> Handshake<'a> {
    /// Parses a HANDSHAKE control packet of at least 64 bytes (spec §5.7).
    pub fn parse(datagram: &'a [u8]) -> Result<Self, SrtError> {
        let packet = Packet::parse(datagram)?;
        if !packet.is_handshake() {
            return Err(SrtError::NotHandshake);
        }
        if datagram.len() < HANDSHAKE_LEN {
            return Err(SrtError::TooShort {
                len: datagram.len(),
                need: HANDSHAKE_LEN,
            });
        }
        if datagram.len() > MAX_HANDSHAKE_LEN {
            return Err(SrtError::TooLong {
                len: datagram.len(),
                limit: MAX_HANDSHAKE_LEN,
            });
        }
        let mut peer_ip = [0u8; 16];
        peer_ip.copy_from_slice(&datagram[OFF_PEER_IP..HANDSHAKE_LEN]);
        Ok(Self {
            timestamp_us: packet.timestamp_us(),
            dest_socket_id: packet.dest_socket_id(),
            version: be32(datagram, OFF_VERSION),
            encryption: be16(datagram, OFF_ENCRYPTION),
            extension: be16(datagram, OFF_EXTENSION),
            isn: be32(datagram, 24),
            mtu: be32(datagram, 28),
            flow_window: be32(datagram, 32),
            handshake_type: HandshakeType(be32(datagram, OFF_TYPE)),
            socket_id: be32(datagram, OFF_SOCKET_ID),
            syn_cookie: be32(datagram, OFF_COOKIE),
            peer_ip,
            extensions: &datagram[HANDSHAKE_LEN..],
        })
    }

    /// Appends the handshake (header, CIF, extension bytes as they are) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(HANDSHAKE_LEN + self.extensions.len());
        // Control flag, type 0 (handshake), subtype 0; type-specific info 0.
        out.extend_from_slice(&0x8000_0000u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&self.timestamp_us.to_be_bytes());
        out.extend_from_slice(&self.dest_socket_id.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.encryption.to_be_bytes());
        out.extend_from_slice(&self.extension.to_be_bytes());
        out.extend_from_slice(&self.isn.to_be_bytes());
        out.extend_from_slice(&self.mtu.to_be_bytes());
        out.extend_from_slice(&self.flow_window.to_be_bytes());
        out.extend_from_slice(&self.handshake_type.0.to_be_bytes());
        out.extend_from_slice(&self.socket_id.to_be_bytes());
        out.extend_from_slice(&self.syn_cookie.to_be_bytes());
        out.extend_from_slice(&self.peer_ip);
        out.extend_from_slice(self.extensions);
    }

    /// [`Handshake::write`] into a fresh buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// The extension blocks.
    pub fn extension_blocks(&self) -> Extensions<'a> {
        Extensions::new(self.extensions, HANDSHAKE_LEN)
    }

    /// True when a block of `kind` is present before any truncation.
    pub fn has_extension(&self, kind: ExtensionType) -> bool {
        self.extension_blocks()
            .map_while(Result::ok)
            .any(|e| e.kind == kind)
    }

    /// The stream id (first SID block), `Ok(None)` when there is none, an error when the blocks
    /// are truncated before one is found.
    pub fn stream_id(&self) -> Result<Option<String>, SrtError> {
        for block in self.extension_blocks() {
            let block = block?;
            if block.kind == ExtensionType::Sid {
                return Ok(Some(decode_stream_id(block.body)));
            }
        }
        Ok(None)
    }
}

/// The listener's induction response, exactly as spec §5.7 (and libsrt's listener, §4.3.1.1):
/// header timestamp `timestamp_us`, dest = the caller's socket id, version 5, encryption 0,
/// extension [`SRT_MAGIC`], ISN/MTU/flow window copied, type induction, **the caller's own socket
/// id echoed**, `cookie`, `peer_ip`, no extensions.
///
/// The cookie is the glue's choice (spec §10 #21): callers only echo it. [`GO_SYN_COOKIE`] is
/// byte-compatible with the Go proxy; a per-peer keyed hash of (caller address, port, time
/// bucket), like libsrt's `bake()`, lets the glue verify a conclusion without keeping state per
/// induction, so spoofed inductions create nothing.
pub fn induction_response(
    request: &Handshake<'_>,
    cookie: u32,
    peer_ip: [u8; 16],
    timestamp_us: u32,
) -> Vec<u8> {
    Handshake {
        timestamp_us,
        dest_socket_id: request.socket_id,
        version: HS_VERSION_5,
        encryption: 0,
        extension: SRT_MAGIC,
        isn: request.isn,
        mtu: request.mtu,
        flow_window: request.flow_window,
        handshake_type: HandshakeType::INDUCTION,
        socket_id: request.socket_id,
        syn_cookie: cookie,
        peer_ip,
        extensions: &[],
    }
    .to_vec()
}

/// A rejection the proxy itself sends to a caller (origin timeout, unroutable stream id): the
/// caller's handshake with type = `code`, dest = the caller's socket id, no extensions, as
/// libsrt's listener answers a rejected conclusion (compare the 1011 fixture). The SRT socket id
/// is 0: no socket exists on this side.
pub fn rejection(
    request: &Handshake<'_>,
    code: RejectCode,
    cookie: u32,
    timestamp_us: u32,
) -> Vec<u8> {
    Handshake {
        timestamp_us,
        dest_socket_id: request.socket_id,
        version: request.version.max(HS_VERSION_5),
        encryption: request.encryption,
        extension: 0,
        isn: request.isn,
        mtu: request.mtu,
        flow_window: request.flow_window,
        handshake_type: HandshakeType(code.0),
        socket_id: 0,
        syn_cookie: cookie,
        peer_ip: request.peer_ip,
        extensions: &[],
    }
    .to_vec()
}

/// The origin-bound induction synthesised from a caller's conclusion, for glue that answers
/// inductions statelessly and so never kept the caller's original (spec §5.7 replays
/// "handshake0"): the HSv4-style fields libsrt callers send (version 4, extension 2 =
/// UDT_DGRAM, cookie 0, no extensions) with the conclusion's ISN, MTU, window, socket id and
/// peer IP.
pub fn induction_request_from_conclusion(conclusion: &Handshake<'_>) -> Vec<u8> {
    Handshake {
        timestamp_us: conclusion.timestamp_us,
        dest_socket_id: 0,
        version: 4,
        encryption: 0,
        extension: 2,
        isn: conclusion.isn,
        mtu: conclusion.mtu,
        flow_window: conclusion.flow_window,
        handshake_type: HandshakeType::INDUCTION,
        socket_id: conclusion.socket_id,
        syn_cookie: 0,
        peer_ip: conclusion.peer_ip,
        extensions: &[],
    }
    .to_vec()
}

/// Rewrites the SYN cookie of a handshake in place (the replay swaps cookies, spec §5.7 steps 3
/// and 5). Fails, touching nothing, unless `datagram` is a handshake of at least 64 bytes.
pub fn set_syn_cookie(datagram: &mut [u8], cookie: u32) -> Result<(), SrtError> {
    Handshake::parse(datagram)?;
    datagram[OFF_COOKIE..OFF_COOKIE + 4].copy_from_slice(&cookie.to_be_bytes());
    Ok(())
}

/// libsrt's peer IP layout: the address octets in network order, then each 32-bit group
/// byte-reversed (libsrt stores four host-order words); IPv4 takes the first word, the rest 0.
/// So 127.0.0.1 is `01 00 00 7f` + 12 zeros, as in every fixture.
pub fn peer_ip_field(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
    for word in out.chunks_mut(4) {
        word.reverse();
    }
    out
}
