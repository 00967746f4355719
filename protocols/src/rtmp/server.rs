//! [`ServerSession`]: the client-facing side of the proxy, from the handshake until the client
//! has said `publish` or `play` (spec §5.1 A, C, D, E, G and §10 #24).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::amf0::Amf0Value;
use super::chunk::{ChunkDecoder, ChunkEncoder, RtmpMessage, DEFAULT_CHUNK_SIZE};
use super::command::{object, Command};
use super::error::RtmpError;
use super::handshake::{ServerHandshake, RANDOM_SIZE};
use super::message::*;
use super::relay::RelayEnd;
use super::StreamKind;

/// Largest message accepted during the command phase: commands are a few hundred bytes, and a
/// client has no business sending media before `publish` (spec §5.1 E makes it an error).
const COMMAND_PHASE_MAX_MESSAGE_LEN: u32 = 64 * 1024;

/// The Window Acknowledgement Size the proxy announces (spec §5.1 D 1).
pub const WINDOW_ACK_SIZE: u32 = 2_500_000;

/// What the server side says about itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// 7 hex digits; goes in the connect `_result` `data.srs_id`.
    pub srs_id: String,
    /// `data.srs_version`, `"1.5.0"` for the Go proxy (spec §10 #25).
    pub srs_version: String,
    /// Random part of S1.
    pub s1_random: [u8; RANDOM_SIZE],
    /// Deadline for handshake + command phase + backend connect (spec §10 #19, ~30 s).
    pub phase_timeout: Duration,
}

/// Events for the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The client asked to publish or play; pick a backend, then call
    /// [`ServerSession::accept`] or [`ServerSession::reject`].
    Identified {
        /// Publish or play.
        kind: StreamKind,
        /// The `connect` command object's `tcUrl`, or `""`.
        tc_url: String,
        /// The `publish`/`play` name verbatim, query included (`livestream?secret=…`).
        stream_name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    WaitConnect,
    Identify,
    Identified,
    Accepted,
    Rejected,
    Failed,
}

/// Sans-IO RTMP server session for the command phase. See the module docs of
/// [`crate::rtmp`] for the calling contract.
#[derive(Debug)]
pub struct ServerSession {
    srs_id: String,
    srs_version: String,
    deadline: Instant,
    phase: Phase,
    handshake: ServerHandshake,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    out: Vec<u8>,
    events: VecDeque<ServerEvent>,
    tc_url: String,
    kind: StreamKind,
    /// Message stream id replies go out on (spec §5.1 E `curSid`).
    cur_sid: u32,
    /// Becomes 1 once `createStream` was answered.
    next_sid: u32,
}

impl ServerSession {
    /// A session that expects C0+C1 first; the deadline is `now + cfg.phase_timeout`.
    pub fn new(cfg: ServerConfig, now: Instant) -> Self {
        ServerSession {
            deadline: now + cfg.phase_timeout,
            phase: Phase::Handshake,
            handshake: ServerHandshake::new(cfg.s1_random),
            srs_id: cfg.srs_id,
            srs_version: cfg.srs_version,
            decoder: ChunkDecoder::new().with_max_message_len(COMMAND_PHASE_MAX_MESSAGE_LEN),
            encoder: ChunkEncoder::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            tc_url: String::new(),
            kind: StreamKind::Play,
            cur_sid: 0,
            next_sid: 0,
        }
    }

    /// Consumes what it can from `input` and returns the bytes consumed. Stops right after the
    /// `publish`/`play` message: later bytes belong to the relay. Partial input is fine (it is
    /// kept internally), so the return value is `input.len()` until identification.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, RtmpError> {
        let r = self.input_inner(input);
        if r.is_err() {
            self.phase = Phase::Failed;
        }
        r
    }

    fn input_inner(&mut self, input: &[u8]) -> Result<usize, RtmpError> {
        let mut pos = 0;
        match self.phase {
            Phase::Failed => return Err(RtmpError::Closed),
            Phase::Identified | Phase::Accepted | Phase::Rejected => return Ok(0),
            Phase::Handshake => {
                pos = self.handshake.handle_input(input, &mut self.out);
                if !self.handshake.is_done() {
                    return Ok(pos);
                }
                self.phase = Phase::WaitConnect;
            }
            Phase::WaitConnect | Phase::Identify => {}
        }
        while pos < input.len() && matches!(self.phase, Phase::WaitConnect | Phase::Identify) {
            let (n, msg) = self.decoder.decode(&input[pos..])?;
            pos += n;
            if let Some(msg) = msg {
                self.on_message(msg)?;
            }
        }
        Ok(pos)
    }

    fn on_message(&mut self, msg: RtmpMessage) -> Result<(), RtmpError> {
        if msg.type_id == TYPE_USER_CONTROL {
            UserControlEvent::parse(&msg.payload)?;
        }
        let command = Command::decode(msg.type_id, &msg.payload)?;
        if self.phase == Phase::WaitConnect {
            // Spec §5.1 C: read until a `connect`; everything else is consumed silently.
            if let Some(cmd) = command.filter(|c| c.name == "connect") {
                self.on_connect(cmd)?;
            }
            return Ok(());
        }
        match (msg.type_id, command) {
            (_, Some(cmd)) => self.on_identify_command(cmd)?,
            (TYPE_SET_CHUNK_SIZE | TYPE_WINDOW_ACK_SIZE | TYPE_SET_PEER_BANDWIDTH, _)
            | (TYPE_USER_CONTROL, _) => {}
            // Spec §5.1 E: media, Acknowledgement, Abort or unknown before identify.
            _ => {
                return Err(RtmpError::Protocol(
                    "unexpected message before publish/play",
                ))
            }
        }
        self.cur_sid = self.next_sid;
        Ok(())
    }

    fn on_connect(&mut self, cmd: Command) -> Result<(), RtmpError> {
        if cmd.transaction_id != 1.0 {
            return Err(RtmpError::Protocol("connect transaction id is not 1"));
        }
        if !matches!(cmd.command_object, Amf0Value::Object(_)) {
            return Err(RtmpError::Protocol(
                "connect command object is not an object",
            ));
        }
        if cmd
            .args
            .first()
            .is_some_and(|a| !matches!(a, Amf0Value::Object(_)))
        {
            return Err(RtmpError::Protocol(
                "connect optional args are not an object",
            ));
        }
        self.tc_url = cmd
            .command_object
            .get("tcUrl")
            .and_then(Amf0Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // Spec §5.1 D: exactly these three messages, msid 0, nothing else.
        write_u32_control(
            &self.encoder,
            TYPE_WINDOW_ACK_SIZE,
            WINDOW_ACK_SIZE,
            &mut self.out,
        );
        write_u32_control(
            &self.encoder,
            TYPE_SET_CHUNK_SIZE,
            DEFAULT_CHUNK_SIZE,
            &mut self.out,
        );
        let s = Amf0Value::string;
        Command::new(
            "_result",
            cmd.transaction_id,
            object(&[
                ("fmsVer", s("FMS/3,5,3,888")),
                ("capabilities", Amf0Value::Number(127.0)),
                ("mode", Amf0Value::Number(1.0)),
            ]),
        )
        .arg(object(&[
            ("level", s("status")),
            ("code", s("NetConnection.Connect.Success")),
            ("description", s("Connection succeeded")),
            ("objectEncoding", Amf0Value::Number(0.0)),
            (
                "data",
                Amf0Value::EcmaArray(vec![
                    ("version".into(), s("3,5,3,888")),
                    ("srs_version".into(), s(&self.srs_version)),
                    ("srs_id".into(), s(&self.srs_id)),
                ]),
            ),
        ]))
        .write(&self.encoder, 0, &mut self.out);
        self.phase = Phase::Identify;
        Ok(())
    }

    fn on_identify_command(&mut self, cmd: Command) -> Result<(), RtmpError> {
        let s = Amf0Value::string;
        let tid = cmd.transaction_id;
        match cmd.name.as_str() {
            "createStream" => {
                Command::new("_result", tid, Amf0Value::Null)
                    .arg(Amf0Value::Number(1.0))
                    .write(&self.encoder, self.cur_sid, &mut self.out);
                self.next_sid = 1;
            }
            "getStreamLength" => {}
            "publish" | "play" => {
                let name = cmd
                    .args
                    .first()
                    .and_then(Amf0Value::as_str)
                    .ok_or(RtmpError::Malformed("publish/play without a stream name"))?
                    .to_owned();
                let (kind, reply) = if cmd.name == "publish" {
                    let info = object(&[
                        ("code", s("NetStream.Publish.Start")),
                        ("description", s("Started publishing stream.")),
                    ]);
                    let reply = Command::new("onFCPublish", 0.0, Amf0Value::Null).arg(info);
                    (StreamKind::Publish, reply)
                } else {
                    let info = object(&[
                        ("level", s("status")),
                        ("code", s("NetStream.Play.Reset")),
                        ("description", s("Playing and resetting stream.")),
                        ("details", s("stream")),
                        ("clientid", s("ASAICiss")),
                    ]);
                    let reply = Command::new("onStatus", 0.0, Amf0Value::Null).arg(info);
                    (StreamKind::Play, reply)
                };
                reply.write(&self.encoder, self.cur_sid, &mut self.out);
                self.kind = kind;
                self.phase = Phase::Identified;
                self.events.push_back(ServerEvent::Identified {
                    kind,
                    tc_url: self.tc_url.clone(),
                    stream_name: name,
                });
            }
            _ => {
                Command::new("_result", tid, Amf0Value::Null)
                    .arg(Amf0Value::Undefined)
                    .write(&self.encoder, self.cur_sid, &mut self.out);
            }
        }
        Ok(())
    }

    /// Appends the bytes to send to the client; the session keeps no output buffer afterwards.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        crate::rtmp::message::hand_over_output(&mut self.out, out);
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The phase deadline; `None` once accepted, rejected or failed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Accepted | Phase::Rejected | Phase::Failed => None,
            _ => Some(self.deadline),
        }
    }

    /// `Err(Timeout)` once `now` has reached the deadline; the session is then dead.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RtmpError> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let phase = match self.phase {
                    Phase::Handshake => "handshake",
                    Phase::Identified => "backend connect",
                    _ => "command",
                };
                self.phase = Phase::Failed;
                Err(RtmpError::Timeout(phase))
            }
            _ => Ok(()),
        }
    }

    /// Queues the start status (spec §5.1 G, byte-identical to the Go proxy). No-op unless the
    /// session is identified and not yet accepted/rejected.
    pub fn accept(&mut self) {
        if self.phase != Phase::Identified {
            return;
        }
        let s = Amf0Value::string;
        let info = match self.kind {
            StreamKind::Publish => object(&[
                ("level", s("status")),
                ("code", s("NetStream.Publish.Start")),
                ("description", s("Started publishing stream.")),
                ("clientid", s("ASAICiss")),
            ]),
            StreamKind::Play => object(&[
                ("level", s("status")),
                ("code", s("NetStream.Play.Start")),
                ("description", s("Started playing stream.")),
                ("details", s("stream")),
                ("clientid", s("ASAICiss")),
            ]),
        };
        Command::new("onStatus", 0.0, Amf0Value::Null)
            .arg(info)
            .write(&self.encoder, self.cur_sid, &mut self.out);
        self.phase = Phase::Accepted;
    }

    /// Queues an error status before the glue closes the connection (spec §10 #24, option O):
    /// `NetStream.Publish.BadName` for publishers, `NetStream.Play.StreamNotFound` for players.
    pub fn reject(&mut self, description: &str) {
        if self.phase != Phase::Identified {
            return;
        }
        let code = match self.kind {
            StreamKind::Publish => "NetStream.Publish.BadName",
            StreamKind::Play => "NetStream.Play.StreamNotFound",
        };
        let s = Amf0Value::string;
        Command::new("onStatus", 0.0, Amf0Value::Null)
            .arg(object(&[
                ("level", s("error")),
                ("code", s(code)),
                ("description", s(description)),
            ]))
            .write(&self.encoder, self.cur_sid, &mut self.out);
        self.phase = Phase::Rejected;
    }

    /// The message stream id replies use (1 after `createStream`).
    pub fn stream_id(&self) -> u32 {
        self.cur_sid
    }

    /// Hands the reader state to the relay. Flush [`ServerSession::poll_transmit`] first.
    pub fn into_relay(self) -> RelayEnd {
        RelayEnd {
            decoder: self
                .decoder
                .with_max_message_len(super::chunk::MAX_MESSAGE_LEN),
            peer_chunk_size: self.encoder.chunk_size(),
        }
    }
}
