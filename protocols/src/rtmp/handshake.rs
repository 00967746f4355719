//! The simple RTMP handshake (RTMP spec §5.2; spec §5.1 A and F).
//!
//! No digest is checked or produced. The C0 version byte is not checked, and a complex-handshake
//! C1 (ffmpeg sends version bytes `09 00 7c 02`) is simply echoed back in S2: ffmpeg accepts
//! that, as SRS proves in the fixtures. Both sides buffer at most one handshake packet set
//! (≤ 3073 bytes) and free it when done.

/// Size of C1/C2/S1/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// Size of the caller-provided random part of C1/S1.
pub const RANDOM_SIZE: usize = HANDSHAKE_SIZE - 8;
/// The only RTMP version byte we send.
pub const RTMP_VERSION: u8 = 3;

fn packet_with_random(random: &[u8; RANDOM_SIZE], out: &mut Vec<u8>) {
    // 4 bytes time 0 + 4 bytes zero (version 0: simple handshake), then random.
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(random);
}

/// Appends as many bytes of `input` to `buf` as it takes to reach `want`; returns them.
fn fill(buf: &mut Vec<u8>, want: usize, input: &[u8]) -> usize {
    let n = want.saturating_sub(buf.len()).min(input.len());
    buf.extend_from_slice(&input[..n]);
    n
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    WaitC0C1,
    WaitC2,
    Done,
}

/// Server side: read C0+C1 → write S0 S1 S2 (S2 echoes C1) → read C2 (ignored).
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    state: ServerState,
    buf: Vec<u8>,
    /// Boxed so sessions stay small while they wait, and dropped once S1 is written.
    s1_random: Option<Box<[u8; RANDOM_SIZE]>>,
}

impl ServerHandshake {
    /// A server handshake whose S1 carries `s1_random`.
    pub fn new(s1_random: [u8; RANDOM_SIZE]) -> Self {
        ServerHandshake {
            state: ServerState::WaitC0C1,
            buf: Vec::new(),
            s1_random: Some(Box::new(s1_random)),
        }
    }

    /// True once C2 has been read.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Consumes handshake bytes (never more than the handshake needs); appends S0 S1 S2 to
    /// `out` once C0+C1 are complete. Returns the bytes consumed.
    pub fn handle_input(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut used = 0;
        if self.state == ServerState::WaitC0C1 {
            used += fill(&mut self.buf, 1 + HANDSHAKE_SIZE, input);
            if self.buf.len() < 1 + HANDSHAKE_SIZE {
                return used;
            }
            out.reserve(1 + 2 * HANDSHAKE_SIZE);
            out.push(RTMP_VERSION);
            let random = self
                .s1_random
                .take()
                .unwrap_or_else(|| Box::new([0; RANDOM_SIZE]));
            packet_with_random(&random, out);
            out.extend_from_slice(&self.buf[1..]);
            self.buf.clear();
            self.state = ServerState::WaitC2;
        }
        if self.state == ServerState::WaitC2 {
            used += fill(&mut self.buf, HANDSHAKE_SIZE, &input[used..]);
            if self.buf.len() == HANDSHAKE_SIZE {
                self.buf = Vec::new();
                self.state = ServerState::Done;
            }
        }
        used
    }
}

/// Client side: write C0 C1 → read S0 S1 S2 → write C2 (echo of S1).
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    done: bool,
    buf: Vec<u8>,
}

impl ClientHandshake {
    /// Starts the handshake, appending C0+C1 to `out`.
    pub fn new(c1_random: &[u8; RANDOM_SIZE], out: &mut Vec<u8>) -> Self {
        out.push(RTMP_VERSION);
        packet_with_random(c1_random, out);
        ClientHandshake {
            done: false,
            buf: Vec::new(),
        }
    }

    /// True once S0 S1 S2 were read and C2 written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes S0 S1 S2 (never more); appends C2 to `out` when complete.
    pub fn handle_input(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        if self.done {
            return 0;
        }
        let used = fill(&mut self.buf, 1 + 2 * HANDSHAKE_SIZE, input);
        if self.buf.len() == 1 + 2 * HANDSHAKE_SIZE {
            out.extend_from_slice(&self.buf[1..1 + HANDSHAKE_SIZE]);
            self.buf = Vec::new();
            self.done = true;
        }
        used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_echoes_c1_in_s2_and_waits_for_c2() {
        let mut hs = ServerHandshake::new([7; RANDOM_SIZE]);
        let mut c0c1 = vec![3];
        c0c1.extend((0..HANDSHAKE_SIZE).map(|i| i as u8));
        let mut out = Vec::new();
        // Piecewise input, and trailing bytes beyond C2 left alone.
        assert_eq!(hs.handle_input(&c0c1[..100], &mut out), 100);
        assert!(out.is_empty());
        assert_eq!(hs.handle_input(&c0c1[100..], &mut out), c0c1.len() - 100);
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..9], &[0; 8]);
        assert_eq!(&out[9..1 + HANDSHAKE_SIZE], &[7; RANDOM_SIZE]);
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c0c1[1..]);
        let c2_and_more = vec![0u8; HANDSHAKE_SIZE + 5];
        assert_eq!(hs.handle_input(&c2_and_more, &mut out), HANDSHAKE_SIZE);
        assert!(hs.is_done());
    }

    #[test]
    fn client_sends_c0_c1_and_echoes_s1_as_c2() {
        let mut out = Vec::new();
        let mut hs = ClientHandshake::new(&[9; RANDOM_SIZE], &mut out);
        assert_eq!(out.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(&out[..9], &[3, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.clear();
        let mut s = vec![3u8];
        s.extend(vec![1u8; HANDSHAKE_SIZE]);
        s.extend(vec![2u8; HANDSHAKE_SIZE]);
        s.push(0xff);
        assert_eq!(hs.handle_input(&s, &mut out), s.len() - 1);
        assert_eq!(out, vec![1u8; HANDSHAKE_SIZE]);
        assert!(hs.is_done());
    }
}
