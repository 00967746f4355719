//! A deliberately small raw RTMP client for asserting the proxy's own bytes (spec §5.1 A–D):
//! simple handshake, an AMF0 `connect`, and a de-chunker for whatever comes back.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RtmpMessage {
    pub csid: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

impl RtmpMessage {
    /// True for an AMF0 command whose first value is the string `name`.
    pub fn is_command(&self, name: &str) -> bool {
        let mut prefix = vec![0x02];
        prefix.extend_from_slice(&(name.len() as u16).to_be_bytes());
        prefix.extend_from_slice(name.as_bytes());
        self.type_id == 20 && self.payload.starts_with(&prefix)
    }

    pub fn contains(&self, needle: &[u8]) -> bool {
        self.payload.windows(needle.len()).any(|w| w == needle)
    }
}

/// Simple (version 3, no digest) handshake as a client.
pub fn handshake(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 8]);
    c0c1.extend((0..1528u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8));
    stream.write_all(&c0c1)?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    stream.read_exact(&mut s0s1s2)?;
    // C2 echoes S1.
    stream.write_all(&s0s1s2[1..1537])?;
    Ok(())
}

fn amf_string(out: &mut Vec<u8>, s: &str) {
    out.push(0x02);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn amf_number(out: &mut Vec<u8>, n: f64) {
    out.push(0x00);
    out.extend_from_slice(&n.to_be_bytes());
}

fn amf_key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(&(k.len() as u16).to_be_bytes());
    out.extend_from_slice(k.as_bytes());
}

/// The AMF0 body of `connect(1, {app, tcUrl, flashVer, …})`.
pub fn connect_payload(app: &str, tc_url: &str) -> Vec<u8> {
    let mut p = Vec::new();
    amf_string(&mut p, "connect");
    amf_number(&mut p, 1.0);
    p.push(0x03);
    amf_key(&mut p, "app");
    amf_string(&mut p, app);
    amf_key(&mut p, "flashVer");
    amf_string(&mut p, "LNX 9,0,124,2");
    amf_key(&mut p, "tcUrl");
    amf_string(&mut p, tc_url);
    amf_key(&mut p, "fpad");
    p.extend_from_slice(&[0x01, 0x00]);
    amf_key(&mut p, "capabilities");
    amf_number(&mut p, 15.0);
    amf_key(&mut p, "audioCodecs");
    amf_number(&mut p, 4071.0);
    amf_key(&mut p, "videoCodecs");
    amf_number(&mut p, 252.0);
    amf_key(&mut p, "objectEncoding");
    amf_number(&mut p, 0.0);
    p.extend_from_slice(&[0x00, 0x00, 0x09]);
    p
}

/// Chunks one message (fmt 0 then fmt 3, 128-byte chunks) for csid < 64.
pub fn chunk_message(csid: u8, type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![csid & 0x3f];
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, chunk) in payload.chunks(128).enumerate() {
        if i > 0 {
            out.push(0xc0 | (csid & 0x3f));
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[derive(Default, Clone)]
struct ChunkStream {
    timestamp: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    partial: Vec<u8>,
}

/// De-chunks an inbound byte stream (RTMP spec 5.3), applying Set Chunk Size.
pub struct ChunkReader {
    chunk_size: usize,
    streams: HashMap<u32, ChunkStream>,
    buf: Vec<u8>,
}

impl Default for ChunkReader {
    fn default() -> Self {
        ChunkReader {
            chunk_size: 128,
            streams: HashMap::new(),
            buf: Vec::new(),
        }
    }
}

impl ChunkReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, or `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Option<RtmpMessage> {
        loop {
            let (consumed, message) = self.parse_chunk()?;
            self.buf.drain(..consumed);
            if let Some(m) = message {
                if m.type_id == 1 && m.payload.len() >= 4 {
                    let size = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
                    self.chunk_size = (size & 0x7fff_ffff).max(1) as usize;
                }
                return Some(m);
            }
        }
    }

    fn parse_chunk(&mut self) -> Option<(usize, Option<RtmpMessage>)> {
        let b = &self.buf;
        let first = *b.first()?;
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => (64 + u32::from(*b.get(1)?), 2),
            1 => (64 + u32::from(*b.get(1)?) + 256 * u32::from(*b.get(2)?), 3),
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        let header = b.get(pos..pos + header_len)?;
        pos += header_len;
        let mut state = self.streams.get(&csid).cloned().unwrap_or_default();
        let be24 = |s: &[u8]| u32::from_be_bytes([0, s[0], s[1], s[2]]);
        let mut ts_field = None;
        if fmt <= 2 {
            ts_field = Some(be24(&header[0..3]));
        }
        if fmt <= 1 {
            state.length = be24(&header[3..6]) as usize;
            state.type_id = header[6];
        }
        if fmt == 0 {
            state.stream_id = u32::from_le_bytes(header[7..11].try_into().expect("4 bytes"));
        }
        let mut ts = ts_field.unwrap_or(0);
        let extended = match ts_field {
            Some(f) => f == 0xff_ffff,
            None => state.extended,
        };
        if extended {
            let ext = b.get(pos..pos + 4)?;
            ts = u32::from_be_bytes(ext.try_into().expect("4 bytes"));
            pos += 4;
        }
        let remaining = state.length.saturating_sub(state.partial.len());
        let take = remaining.min(self.chunk_size);
        let data = b.get(pos..pos + take)?;
        if state.partial.is_empty() {
            match fmt {
                0 => state.timestamp = ts,
                1 | 2 => state.timestamp = state.timestamp.wrapping_add(ts),
                _ => {}
            }
        }
        state.extended = extended;
        state.partial.extend_from_slice(data);
        pos += take;
        let message = if state.partial.len() >= state.length {
            let payload = std::mem::take(&mut state.partial);
            Some(RtmpMessage {
                csid,
                type_id: state.type_id,
                stream_id: state.stream_id,
                timestamp: state.timestamp,
                payload,
            })
        } else {
            None
        };
        self.streams.insert(csid, state);
        Some((pos, message))
    }
}

/// Connects, handshakes, sends `connect` for `rtmp://…/<app>` and collects messages until the
/// `_result` (or `timeout`). Returns the open socket and every message received.
pub fn connect(
    addr: SocketAddr,
    app: &str,
    timeout: Duration,
) -> std::io::Result<(TcpStream, Vec<RtmpMessage>)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.set_write_timeout(Some(timeout))?;
    handshake(&mut stream)?;
    let tc_url = format!("rtmp://{addr}/{app}");
    stream.write_all(&chunk_message(3, 20, 0, &connect_payload(app, &tc_url)))?;
    let mut reader = ChunkReader::default();
    let mut messages = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reader.push(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
        while let Some(m) = reader.next_message() {
            let done = m.is_command("_result");
            messages.push(m);
            if done {
                return Ok((stream, messages));
            }
        }
    }
    Ok((stream, messages))
}

/// The `srs_id` string in a connect `_result` (`data.srs_id`, spec §5.1 D).
pub fn srs_id(message: &RtmpMessage) -> Option<String> {
    let key = b"\x00\x06srs_id\x02";
    let at = message.payload.windows(key.len()).position(|w| w == key)? + key.len();
    let len = u16::from_be_bytes(message.payload.get(at..at + 2)?.try_into().ok()?) as usize;
    let value = message.payload.get(at + 2..at + 2 + len)?;
    Some(String::from_utf8_lossy(value).into_owned())
}
