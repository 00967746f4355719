//! RTMP message types (RTMP spec §5.4, §6, §7) and protocol control messages.

use super::chunk::ChunkEncoder;
use super::error::RtmpError;

/// Set Chunk Size (RTMP spec §5.4.1).
pub const TYPE_SET_CHUNK_SIZE: u8 = 1;
/// Abort Message (§5.4.2).
pub const TYPE_ABORT: u8 = 2;
/// Acknowledgement (§5.4.3).
pub const TYPE_ACKNOWLEDGEMENT: u8 = 3;
/// User Control Message (§6.2).
pub const TYPE_USER_CONTROL: u8 = 4;
/// Window Acknowledgement Size (§5.4.4).
pub const TYPE_WINDOW_ACK_SIZE: u8 = 5;
/// Set Peer Bandwidth (§5.4.5).
pub const TYPE_SET_PEER_BANDWIDTH: u8 = 6;
/// Audio data.
pub const TYPE_AUDIO: u8 = 8;
/// Video data.
pub const TYPE_VIDEO: u8 = 9;
/// AMF3 data message.
pub const TYPE_DATA_AMF3: u8 = 15;
/// AMF3 command: one format byte, then AMF0 (what SRS and the Go proxy decode).
pub const TYPE_COMMAND_AMF3: u8 = 17;
/// AMF0 data message (`@setDataFrame`, `onMetaData`, `|RtmpSampleAccess`).
pub const TYPE_DATA_AMF0: u8 = 18;
/// AMF0 command.
pub const TYPE_COMMAND_AMF0: u8 = 20;

/// Chunk stream for protocol control messages (spec §5.1 D).
pub const CSID_CONTROL: u32 = 2;
/// Chunk stream for commands the proxy writes (spec §5.1 D).
pub const CSID_COMMAND: u32 = 3;

/// Appends a protocol control message with a 4-byte big-endian value (SetChunkSize, Abort,
/// Acknowledgement, WindowAckSize) on csid 2, msid 0, timestamp 0.
pub fn write_u32_control(enc: &ChunkEncoder, type_id: u8, value: u32, out: &mut Vec<u8>) {
    enc.write_message(CSID_CONTROL, 0, type_id, 0, &value.to_be_bytes(), out);
}

/// Reads the 4-byte big-endian value of a control message.
pub fn read_u32_control(payload: &[u8]) -> Result<u32, RtmpError> {
    match payload.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(RtmpError::Malformed("control message shorter than 4 bytes")),
    }
}

/// A User Control event (RTMP spec §7.1.7): 2-byte type and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserControlEvent<'a> {
    /// Event type (0 StreamBegin, 3 SetBufferLength, 6 PingRequest, …).
    pub event_type: u16,
    /// Event data.
    pub data: &'a [u8],
}

impl<'a> UserControlEvent<'a> {
    /// Parses a User Control payload; fewer than 3 bytes is an error, as in the Go proxy
    /// (spec §5.1 E).
    pub fn parse(payload: &'a [u8]) -> Result<Self, RtmpError> {
        if payload.len() < 3 {
            return Err(RtmpError::Malformed("UserControl shorter than 3 bytes"));
        }
        Ok(UserControlEvent {
            event_type: u16::from_be_bytes([payload[0], payload[1]]),
            data: &payload[2..],
        })
    }
}

/// Hands a session's pending output to the caller's `out` and keeps no buffer behind, so
/// command-phase buffers are not kept alive on idle connections: when `out` is empty it takes
/// the session's buffer as is (no copy).
pub(crate) fn hand_over_output(own: &mut Vec<u8>, out: &mut Vec<u8>) {
    if out.is_empty() {
        std::mem::swap(out, own);
    } else {
        out.extend_from_slice(own);
    }
    *own = Vec::new();
}
