//! [`ClientSession`]: the origin-facing side; the proxy acts as an RTMP client until the origin
//! says `NetStream.Publish.Start` / `NetStream.Play.Start` (spec §5.1 F).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::amf0::Amf0Value;
use super::chunk::{ChunkDecoder, ChunkEncoder, RtmpMessage, MAX_MESSAGE_LEN};
use super::command::{object, Command};
use super::error::RtmpError;
use super::handshake::{ClientHandshake, RANDOM_SIZE};
use super::relay::RelayEnd;
use super::StreamKind;

/// Command-phase message bound; the SRS connect `_result` is ~850 bytes.
const COMMAND_PHASE_MAX_MESSAGE_LEN: u32 = 64 * 1024;

// Transaction ids of spec §5.1 F.
const TID_CONNECT: f64 = 1.0;
const TID_RELEASE_STREAM: f64 = 2.0;
const TID_FC_PUBLISH: f64 = 3.0;
const TID_CREATE_STREAM: f64 = 4.0;
const TID_PUBLISH: f64 = 5.0;

/// What to ask the origin for.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The client's `tcUrl`, verbatim (spec §5.1 F: SRS derives vhost/app from it).
    pub tc_url: String,
    /// The stream name verbatim, query included.
    pub stream_name: String,
    /// Publish or play.
    pub kind: StreamKind,
    /// Random part of C1.
    pub c1_random: [u8; RANDOM_SIZE],
    /// Deadline for handshake + command phase (spec §10 #19).
    pub phase_timeout: Duration,
}

/// Events for the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The origin started the stream; switch to the relay.
    Ready,
    /// The origin refused (an `_error`, or a non-start `onStatus`).
    Rejected {
        /// The info object's `code` (or the command name when there is none).
        code: String,
        /// The info object's `description`, or `""`.
        description: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    WaitConnectResult,
    WaitCreateStream,
    WaitPublishStart,
    WaitPlayStart,
    Ready,
    Rejected,
    Failed,
}

/// Sans-IO RTMP client session for the command phase towards the origin.
#[derive(Debug)]
pub struct ClientSession {
    tc_url: String,
    stream_name: String,
    kind: StreamKind,
    deadline: Instant,
    phase: Phase,
    handshake: ClientHandshake,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// Queues C0+C1 immediately; the deadline is `now + cfg.phase_timeout`.
    pub fn new(cfg: ClientConfig, now: Instant) -> Self {
        let mut out = Vec::with_capacity(4096);
        let handshake = ClientHandshake::new(&cfg.c1_random, &mut out);
        ClientSession {
            deadline: now + cfg.phase_timeout,
            tc_url: cfg.tc_url,
            stream_name: cfg.stream_name,
            kind: cfg.kind,
            phase: Phase::Handshake,
            handshake,
            decoder: ChunkDecoder::new().with_max_message_len(COMMAND_PHASE_MAX_MESSAGE_LEN),
            encoder: ChunkEncoder::new(),
            out,
            events: VecDeque::new(),
        }
    }

    /// Consumes origin bytes; stops right after the message that made it Ready or Rejected
    /// (later bytes, e.g. `|RtmpSampleAccess` and `onMetaData`, belong to the relay).
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
            Phase::Ready | Phase::Rejected => return Ok(0),
            Phase::Handshake => {
                pos = self.handshake.handle_input(input, &mut self.out);
                if !self.handshake.is_done() {
                    return Ok(pos);
                }
                // Spec §5.1 F sends only tcUrl (on csid 3, msid 1), which is enough for SRS (it
                // derives vhost/app from tcUrl). Other RTMP servers (nginx-rtmp, Wowza) route by
                // the `app` field, so it is sent too, derived from tcUrl the way librtmp does.
                let app = Amf0Value::string(app_from_tc_url(&self.tc_url));
                let tc_url = Amf0Value::string(&self.tc_url);
                Command::new(
                    "connect",
                    TID_CONNECT,
                    object(&[("app", app), ("tcUrl", tc_url)]),
                )
                .write(&self.encoder, 1, &mut self.out);
                self.phase = Phase::WaitConnectResult;
            }
            _ => {}
        }
        while pos < input.len() && !matches!(self.phase, Phase::Ready | Phase::Rejected) {
            let (n, msg) = self.decoder.decode(&input[pos..])?;
            pos += n;
            if let Some(msg) = msg {
                self.on_message(msg)?;
            }
        }
        Ok(pos)
    }

    fn on_message(&mut self, msg: RtmpMessage) -> Result<(), RtmpError> {
        // Control messages were applied by the decoder (SetChunkSize); the rest is skipped.
        let Some(cmd) = Command::decode(msg.type_id, &msg.payload)? else {
            return Ok(());
        };
        // releaseStream/FCPublish are fire-and-forget, as ffmpeg sends them: SRS answers them
        // with `_result`, nginx-rtmp does not answer releaseStream at all and some servers send
        // `_error`. Only errors to connect/createStream/publish/play reject the stream.
        let tid = cmd.transaction_id;
        let side_request = self.kind == StreamKind::Publish
            && (tid == TID_RELEASE_STREAM || tid == TID_FC_PUBLISH);
        if cmd.name == "_error" && !side_request {
            return self.rejected(&cmd);
        }
        let is_result = cmd.name == "_result";
        let name = Amf0Value::string(&self.stream_name);
        match self.phase {
            Phase::WaitConnectResult if is_result => {
                if self.kind == StreamKind::Publish {
                    self.send(
                        0,
                        Command::new("releaseStream", TID_RELEASE_STREAM, Amf0Value::Null)
                            .arg(name.clone()),
                    );
                    self.send(
                        0,
                        Command::new("FCPublish", TID_FC_PUBLISH, Amf0Value::Null).arg(name),
                    );
                }
                self.create_stream();
            }
            // The answers to releaseStream/FCPublish (if any) come first: skip them.
            Phase::WaitCreateStream if is_result && side_request => {}
            Phase::WaitCreateStream if is_result => {
                let sid = cmd
                    .args
                    .first()
                    .and_then(Amf0Value::as_number)
                    .unwrap_or(0.0);
                if !(sid >= 1.0 && sid <= f64::from(u32::MAX)) {
                    return Err(RtmpError::Protocol(
                        "createStream _result without a stream id",
                    ));
                }
                let sid = sid as u32;
                match self.kind {
                    StreamKind::Publish => {
                        let live = Amf0Value::string("live");
                        let publish = Command::new("publish", TID_PUBLISH, Amf0Value::Null);
                        self.send(sid, publish.arg(name).arg(live));
                        self.phase = Phase::WaitPublishStart;
                    }
                    StreamKind::Play => {
                        // No start/duration/reset arguments (spec §5.1 F).
                        self.send(sid, Command::new("play", 0.0, Amf0Value::Null).arg(name));
                        self.phase = Phase::WaitPlayStart;
                    }
                }
            }
            Phase::WaitPublishStart if cmd.name == "onStatus" => {
                if cmd.status_code() == Some("NetStream.Publish.Start") {
                    self.ready();
                } else {
                    return self.rejected(&cmd);
                }
            }
            Phase::WaitPlayStart if cmd.name == "onStatus" => {
                if cmd.status_code() == Some("NetStream.Play.Start") {
                    self.ready();
                } else if cmd.status_level() == Some("error") {
                    return self.rejected(&cmd);
                }
                // Play.Reset and other status notes are skipped.
            }
            _ => {}
        }
        Ok(())
    }

    fn send(&mut self, stream_id: u32, cmd: Command) {
        cmd.write(&self.encoder, stream_id, &mut self.out);
    }

    fn create_stream(&mut self) {
        self.send(
            0,
            Command::new("createStream", TID_CREATE_STREAM, Amf0Value::Null),
        );
        self.phase = Phase::WaitCreateStream;
    }

    fn ready(&mut self) {
        self.phase = Phase::Ready;
        self.events.push_back(ClientEvent::Ready);
    }

    fn rejected(&mut self, cmd: &Command) -> Result<(), RtmpError> {
        self.phase = Phase::Rejected;
        self.events.push_back(ClientEvent::Rejected {
            code: cmd.status_code().unwrap_or(&cmd.name).to_owned(),
            description: cmd.status_description().unwrap_or_default().to_owned(),
        });
        Ok(())
    }

    /// Appends the bytes to send to the origin; the session keeps no output buffer afterwards.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        crate::rtmp::message::hand_over_output(&mut self.out, out);
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The phase deadline; `None` once ready, rejected or failed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ready | Phase::Rejected | Phase::Failed => None,
            _ => Some(self.deadline),
        }
    }

    /// `Err(Timeout)` once `now` has reached the deadline; the session is then dead.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RtmpError> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let phase = if self.phase == Phase::Handshake {
                    "origin handshake"
                } else {
                    "origin command"
                };
                self.phase = Phase::Failed;
                Err(RtmpError::Timeout(phase))
            }
            _ => Ok(()),
        }
    }

    /// Hands the reader state to the relay. Flush [`ClientSession::poll_transmit`] first.
    pub fn into_relay(self) -> RelayEnd {
        RelayEnd {
            decoder: self.decoder.with_max_message_len(MAX_MESSAGE_LEN),
            peer_chunk_size: self.encoder.chunk_size(),
        }
    }
}

/// The `app` of a tcUrl: everything after the authority's first `/` (query included, as
/// librtmp/ffmpeg send it), or "" when the tcUrl has no path.
fn app_from_tc_url(tc_url: &str) -> &str {
    let rest = tc_url.split_once("://").map_or(tc_url, |(_, r)| r);
    rest.split_once('/').map_or("", |(_, app)| app)
}

#[cfg(test)]
mod app_tests {
    use super::app_from_tc_url;

    #[test]
    fn app_is_the_tc_url_path_with_its_query() {
        assert_eq!(app_from_tc_url("rtmp://127.0.0.1:1935/live"), "live");
        assert_eq!(app_from_tc_url("rtmp://h/live?vhost=v1"), "live?vhost=v1");
        assert_eq!(app_from_tc_url("rtmp://h/a/b"), "a/b");
        assert_eq!(app_from_tc_url("rtmp://h"), "");
        assert_eq!(app_from_tc_url(""), "");
    }
}
