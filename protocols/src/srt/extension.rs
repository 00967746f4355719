//! HSv5 handshake extension blocks (draft-sharabayko-srt §3.2.1.1–§3.2.1.4).
//!
//! After the 64-byte handshake, a conclusion carries blocks of `type: u16, length: u16` (length
//! in 4-byte words) followed by the body. The walk is bounded by the datagram and stops with
//! [`SrtError::TruncatedExtension`] when a header or a body would run past it, including the
//! 1–3 trailing bytes that make the Go proxy panic (spec §5.7). Bodies are borrowed, never
//! copied, so KMREQ/KMRSP and unknown blocks pass through byte-for-byte.

use super::error::SrtError;

/// Extension block types (draft-sharabayko-srt §3.2.1, Table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionType {
    /// 1: SRT_CMD_HSREQ.
    HsReq,
    /// 2: SRT_CMD_HSRSP.
    HsRsp,
    /// 3: SRT_CMD_KMREQ.
    KmReq,
    /// 4: SRT_CMD_KMRSP.
    KmRsp,
    /// 5: SRT_CMD_SID, the stream id.
    Sid,
    /// 6: SRT_CMD_CONGESTION.
    Congestion,
    /// 7: SRT_CMD_FILTER.
    Filter,
    /// 8: SRT_CMD_GROUP.
    Group,
    /// Anything else, kept opaque.
    Other(u16),
}

impl ExtensionType {
    /// From the 16-bit block type.
    pub fn from_code(code: u16) -> Self {
        match code {
            1 => Self::HsReq,
            2 => Self::HsRsp,
            3 => Self::KmReq,
            4 => Self::KmRsp,
            5 => Self::Sid,
            6 => Self::Congestion,
            7 => Self::Filter,
            8 => Self::Group,
            other => Self::Other(other),
        }
    }

    /// The 16-bit wire value.
    pub fn code(self) -> u16 {
        match self {
            Self::HsReq => 1,
            Self::HsRsp => 2,
            Self::KmReq => 3,
            Self::KmRsp => 4,
            Self::Sid => 5,
            Self::Congestion => 6,
            Self::Filter => 7,
            Self::Group => 8,
            Self::Other(c) => c,
        }
    }
}

/// One extension block, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The block type.
    pub kind: ExtensionType,
    /// The body (`length * 4` bytes).
    pub body: &'a [u8],
}

/// Iterator over the extension blocks of a handshake. Yields one `Err` and then stops when the
/// blocks are truncated; everything before the damage is still yielded.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    rest: &'a [u8],
    /// Offset of `rest` inside the datagram, for error messages.
    offset: usize,
    done: bool,
}

impl<'a> Extensions<'a> {
    /// `blocks` are the bytes after the 64-byte handshake, which start at `offset` in the
    /// datagram.
    pub fn new(blocks: &'a [u8], offset: usize) -> Self {
        Self {
            rest: blocks,
            offset,
            done: false,
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, SrtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let truncated = SrtError::TruncatedExtension {
            offset: self.offset,
        };
        let (Some(header), Some(body_and_rest)) = (self.rest.get(..4), self.rest.get(4..)) else {
            self.done = true;
            return Some(Err(truncated));
        };
        let kind = ExtensionType::from_code(u16::from_be_bytes([header[0], header[1]]));
        let body_len = usize::from(u16::from_be_bytes([header[2], header[3]])) * 4;
        let Some(body) = body_and_rest.get(..body_len) else {
            self.done = true;
            return Some(Err(truncated));
        };
        self.rest = &body_and_rest[body_len..];
        self.offset += 4 + body_len;
        Some(Ok(Extension { kind, body }))
    }
}

/// The SID body as text: SRT writes the stream id as 32-bit words in host (little-endian) order
/// (libsrt `HtoNLA`), so every 4-byte group is reversed on the wire; the last word is padded with
/// NULs, trimmed here (spec §5.7). A trailing partial word is reversed as far as it goes. Invalid
/// UTF-8 is replaced, as the bytes only feed routing and logs.
pub fn decode_stream_id(body: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(body.len());
    for word in body.chunks(4) {
        bytes.extend(word.iter().rev());
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Appends a SID block (header + swapped, NUL-padded body): the inverse of [`decode_stream_id`].
/// Used by tests and tools; the relay itself never re-encodes a stream id.
pub fn encode_stream_id(stream_id: &str, out: &mut Vec<u8>) {
    let bytes = stream_id.as_bytes();
    let words = bytes.len().div_ceil(4);
    out.extend_from_slice(&ExtensionType::Sid.code().to_be_bytes());
    // A SID is at most 512 bytes (§3.2.1.3); saturate rather than wrap for longer input.
    out.extend_from_slice(&u16::try_from(words).unwrap_or(u16::MAX).to_be_bytes());
    for chunk in bytes.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        word.reverse();
        out.extend_from_slice(&word);
    }
}

/// HSREQ/HSRSP body (§3.2.1.1): SRT version, flags and the two TSBPD delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsExtension {
    /// `0x00MMmmpp`, e.g. `0x010501` for 1.5.1.
    pub srt_version: u32,
    /// SRT_OPT_* flags.
    pub flags: u32,
    /// Receiver TSBPD delay, ms (high 16 bits of word 2).
    pub recv_tsbpd_delay_ms: u16,
    /// Sender TSBPD delay, ms (low 16 bits of word 2).
    pub send_tsbpd_delay_ms: u16,
}

impl HsExtension {
    /// Parses a 12-byte (or longer) HSREQ/HSRSP body.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let w = |i: usize| -> Option<u32> {
            let b = body.get(i * 4..i * 4 + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let delays = w(2)?;
        Some(Self {
            srt_version: w(0)?,
            flags: w(1)?,
            recv_tsbpd_delay_ms: (delays >> 16) as u16,
            send_tsbpd_delay_ms: (delays & 0xFFFF) as u16,
        })
    }
}

/// The clear header of a KMREQ/KMRSP body (§3.2.2, Key Material). Only for logs and tests: the
/// relay passes key material through untouched and never needs the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMaterialHeader {
    /// V (3 bits), 1.
    pub version: u8,
    /// PT (4 bits), 2 = keying material.
    pub packet_type: u8,
    /// Sign, 0x2029 ("HAI" PnP vendor id).
    pub sign: u16,
    /// KK: 1 even key, 2 odd key, 3 both.
    pub key_flags: u8,
    /// Cipher: 2 = AES-CTR, 3 = AES-GCM.
    pub cipher: u8,
    /// Salt length, bytes.
    pub salt_len: usize,
    /// Key length, bytes (16/24/32 = `pbkeylen`).
    pub key_len: usize,
}

impl KeyMaterialHeader {
    /// Parses the first 16 bytes of a key-material body.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let b = body.get(..16)?;
        Some(Self {
            version: (b[0] >> 4) & 0b111,
            packet_type: b[0] & 0x0F,
            sign: u16::from_be_bytes([b[1], b[2]]),
            key_flags: b[3] & 0b11,
            cipher: b[8],
            salt_len: usize::from(b[14]) * 4,
            key_len: usize::from(b[15]) * 4,
        })
    }
}
