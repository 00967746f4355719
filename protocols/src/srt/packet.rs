//! Zero-copy classification of one SRT datagram (draft-sharabayko-srt §3: packet structure).
//!
//! Every SRT packet starts with the same 16-byte header: word 0 says data (`F = 0`, sequence
//! number) or control (`F = 1`, 15-bit control type, 16-bit subtype), word 2 is the timestamp
//! (µs) and word 3 the **destination socket id**, the only thing a relay needs to route a packet
//! once the handshake is done (spec §5.7 "Non-handshake packets"). Nothing here copies or
//! allocates; every accessor is bounds-checked once in [`Packet::parse`].

use super::error::SrtError;

/// Bytes in the common header of every SRT packet (§3).
pub const HEADER_LEN: usize = 16;

/// Control packet types (draft-sharabayko-srt §3.2, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// 0x0000: HANDSHAKE (§3.2.1).
    Handshake,
    /// 0x0001: KEEPALIVE (§3.2.3).
    Keepalive,
    /// 0x0002: ACK (§3.2.4).
    Ack,
    /// 0x0003: NAK (§3.2.5).
    Nak,
    /// 0x0004: congestion warning (§3.2.6).
    CongestionWarning,
    /// 0x0005: SHUTDOWN (§3.2.7): the session is over.
    Shutdown,
    /// 0x0006: ACKACK (§3.2.8).
    AckAck,
    /// 0x0007: message drop request (§3.2.9).
    DropRequest,
    /// 0x0008: peer error (§3.2.10).
    PeerError,
    /// 0x7FFF: user-defined; subtype 3/4 are the in-stream KMREQ/KMRSP key refresh (§3.2.2).
    UserDefined,
    /// Anything else, kept so a relay can still pass it through.
    Unknown(u16),
}

impl ControlType {
    /// From the 15-bit control type field.
    pub fn from_code(code: u16) -> Self {
        match code {
            0x0000 => Self::Handshake,
            0x0001 => Self::Keepalive,
            0x0002 => Self::Ack,
            0x0003 => Self::Nak,
            0x0004 => Self::CongestionWarning,
            0x0005 => Self::Shutdown,
            0x0006 => Self::AckAck,
            0x0007 => Self::DropRequest,
            0x0008 => Self::PeerError,
            0x7FFF => Self::UserDefined,
            other => Self::Unknown(other),
        }
    }

    /// The 15-bit wire value.
    pub fn code(self) -> u16 {
        match self {
            Self::Handshake => 0x0000,
            Self::Keepalive => 0x0001,
            Self::Ack => 0x0002,
            Self::Nak => 0x0003,
            Self::CongestionWarning => 0x0004,
            Self::Shutdown => 0x0005,
            Self::AckAck => 0x0006,
            Self::DropRequest => 0x0007,
            Self::PeerError => 0x0008,
            Self::UserDefined => 0x7FFF,
            Self::Unknown(c) => c,
        }
    }
}

/// User-defined control subtypes carrying key material (SRT_CMD_KMREQ / SRT_CMD_KMRSP).
pub const SUBTYPE_KMREQ: u16 = 3;
/// See [`SUBTYPE_KMREQ`].
pub const SUBTYPE_KMRSP: u16 = 4;

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// A data packet (§3.1).
    Data,
    /// A control packet (§3.2) with its type and subtype.
    Control {
        /// The control type.
        control_type: ControlType,
        /// The 16-bit subtype (meaningful for [`ControlType::UserDefined`]).
        subtype: u16,
    },
}

/// A bounds-checked view of one SRT datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the 16-byte header is there. Any longer datagram is a packet: SRT's own bound is
    /// the MSS, which the glue's receive buffer enforces.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SrtError> {
        if bytes.len() < HEADER_LEN {
            return Err(SrtError::TooShort {
                len: bytes.len(),
                need: HEADER_LEN,
            });
        }
        Ok(Self { bytes })
    }

    /// The whole datagram.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn word(&self, index: usize) -> u32 {
        let at = index * 4;
        u32::from_be_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    /// `F = 1`.
    pub fn is_control(&self) -> bool {
        self.bytes[0] & 0x80 != 0
    }

    /// Data, or control with its type.
    pub fn kind(&self) -> PacketKind {
        if self.is_control() {
            let w0 = self.word(0);
            PacketKind::Control {
                control_type: ControlType::from_code(((w0 >> 16) & 0x7FFF) as u16),
                subtype: (w0 & 0xFFFF) as u16,
            }
        } else {
            PacketKind::Data
        }
    }

    /// The control type, `None` for data.
    pub fn control_type(&self) -> Option<ControlType> {
        match self.kind() {
            PacketKind::Control { control_type, .. } => Some(control_type),
            PacketKind::Data => None,
        }
    }

    /// A HANDSHAKE control packet (control type 0; the Go proxy also requires subtype 0, §5.7).
    pub fn is_handshake(&self) -> bool {
        self.control_type() == Some(ControlType::Handshake)
    }

    /// A SHUTDOWN control packet: the relay session can end (spec §10 #20).
    pub fn is_shutdown(&self) -> bool {
        self.control_type() == Some(ControlType::Shutdown)
    }

    /// An in-stream key-material refresh (user-defined control, subtype KMREQ/KMRSP). Relayed
    /// untouched like everything else; exposed for logging.
    pub fn is_key_material(&self) -> bool {
        matches!(
            self.kind(),
            PacketKind::Control {
                control_type: ControlType::UserDefined,
                subtype: SUBTYPE_KMREQ | SUBTYPE_KMRSP,
            }
        )
    }

    /// Data packets: the 31-bit packet sequence number.
    pub fn sequence_number(&self) -> Option<u32> {
        (!self.is_control()).then(|| self.word(0) & 0x7FFF_FFFF)
    }

    /// Data packets: the 26-bit message number.
    pub fn message_number(&self) -> Option<u32> {
        (!self.is_control()).then(|| self.word(1) & 0x03FF_FFFF)
    }

    /// Data packets: the KK encryption flags (0 clear, 1 even key, 2 odd key; §3.1).
    pub fn key_flags(&self) -> Option<u8> {
        (!self.is_control()).then(|| ((self.word(1) >> 27) & 0b11) as u8)
    }

    /// Control packets: the type-specific information word.
    pub fn type_specific(&self) -> Option<u32> {
        self.is_control().then(|| self.word(1))
    }

    /// Timestamp, µs since the sender's connection start.
    pub fn timestamp_us(&self) -> u32 {
        self.word(2)
    }

    /// Destination socket id: 0 in a caller's induction and conclusion, the receiver's socket
    /// id afterwards.
    pub fn dest_socket_id(&self) -> u32 {
        self.word(3)
    }

    /// Everything after the 16-byte header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Destination socket id of a datagram, `None` if it is shorter than a header. The one field the
/// glue needs on the hot path.
pub fn dest_socket_id(datagram: &[u8]) -> Option<u32> {
    Packet::parse(datagram).ok().map(|p| p.dest_socket_id())
}

/// Rewrites the destination socket id in place.
pub fn set_dest_socket_id(datagram: &mut [u8], id: u32) -> Result<(), SrtError> {
    Packet::parse(datagram)?;
    datagram[12..16].copy_from_slice(&id.to_be_bytes());
    Ok(())
}
