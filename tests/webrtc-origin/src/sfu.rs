//! The media side: every session's [`Rtc`] on one thread and one UDP socket, SRS-style.
//!
//! The loop follows str0m's single-mutation rule: every `handle_input`, `write`,
//! `request_keyframe` or `close` on an `Rtc` is followed at once by draining its `poll_output`
//! to a timeout. Frames a publisher's drain yields are queued and written to the players after
//! that drain, each write followed by the player's own drain.

use std::collections::{BTreeSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

/// How this origin names itself (heartbeat and JSON API).
#[derive(Debug, Clone)]
pub struct Identity {
    pub server: String,
    pub service: String,
    pub pid: String,
}

/// A WHIP publisher or a WHEP player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publish,
    Play,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Publish => "publish",
            Role::Play => "play",
        }
    }
}

/// The answer to an accepted offer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sdp: String,
    /// `<answer-ufrag>:<offer-ufrag>`, the STUN `USERNAME` the client will send.
    pub session: String,
    /// `/rtc/v1/whip/?action=delete&token=…&app=…&stream=…&session=…` (SRS uses the WHIP path
    /// for WHEP sessions too).
    pub location: String,
}

/// `Err((http status, message))` when an offer is refused.
pub type OfferReply = Result<Answer, (u16, String)>;

/// Requests from the HTTP threads.
pub enum Command {
    Offer {
        role: Role,
        app: String,
        stream: String,
        sdp: String,
        reply: Sender<OfferReply>,
    },
    /// `true` if a session was found (and is now closing).
    Delete {
        session: String,
        token: Option<String>,
        reply: Sender<bool>,
    },
    Stats(Sender<serde_json::Value>),
}

/// Counters that outlive sessions.
#[derive(Debug, Default)]
struct Totals {
    sessions: u64,
    closed: u64,
    timed_out: u64,
    deleted: u64,
    rtp_from_publishers: u64,
    rtp_to_players: u64,
    frames_from_publishers: u64,
    frames_to_players: u64,
    keyframe_requests: u64,
    unmatched_datagrams: u64,
    migrations: u64,
}

struct Session {
    id: u64,
    role: Role,
    app: String,
    stream: String,
    /// `<answer-ufrag>:<offer-ufrag>`.
    key: String,
    token: String,
    rtc: Rtc,
    created: Instant,
    last_rx: Instant,
    next_timeout: Instant,
    /// Where non-STUN output goes: the source of the latest STUN binding request that str0m
    /// answered with a success, i.e. that passed its integrity check (SRS's rule).
    peer: Option<SocketAddr>,
    /// The source of the STUN binding request being handled right now.
    stun_from: Option<SocketAddr>,
    remotes: BTreeSet<SocketAddr>,
    medias: Vec<(Mid, MediaKind, Direction)>,
    connected: bool,
    closing: Option<Instant>,
    /// Player: a video keyframe was written to it, so delta frames may follow.
    has_keyframe: bool,
    last_keyframe_request: Option<Instant>,
    rx_datagrams: u64,
    tx_datagrams: u64,
    rx_rtp: u64,
    tx_rtp: u64,
    rx_bytes: u64,
    tx_bytes: u64,
    frames_in: u64,
    frames_out: u64,
    migrations: u64,
    codec_mismatches: u64,
}

impl Session {
    fn is_open(&self) -> bool {
        self.closing.is_none() && self.rtc.is_alive()
    }

    fn same_stream(&self, app: &str, stream: &str) -> bool {
        self.app == app && self.stream == stream
    }

    fn kind_of(&self, mid: Mid) -> Option<MediaKind> {
        self.medias
            .iter()
            .find(|(m, _, _)| *m == mid)
            .map(|(_, k, _)| *k)
    }

    /// The first media of `kind` this session sends on.
    fn sending_mid(&self, kind: MediaKind) -> Option<Mid> {
        self.medias
            .iter()
            .find(|(_, k, d)| *k == kind && matches!(d, Direction::SendOnly | Direction::SendRecv))
            .map(|(m, _, _)| *m)
    }

    fn receiving_video_mids(&self) -> Vec<Mid> {
        self.medias
            .iter()
            .filter(|(_, k, d)| {
                *k == MediaKind::Video && matches!(d, Direction::RecvOnly | Direction::SendRecv)
            })
            .map(|(m, _, _)| *m)
            .collect()
    }

    fn stats(&self, now: Instant) -> serde_json::Value {
        serde_json::json!({
            "session": self.key,
            "role": self.role.as_str(),
            "app": self.app,
            "stream": self.stream,
            "connected": self.connected,
            "closing": self.closing.is_some(),
            "age_ms": now.saturating_duration_since(self.created).as_millis() as u64,
            "idle_ms": now.saturating_duration_since(self.last_rx).as_millis() as u64,
            "peer": self.peer.map(|a| a.to_string()),
            "remote_addrs": self.remotes.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "migrations": self.migrations,
            "rx_packets": self.rx_datagrams,
            "tx_packets": self.tx_datagrams,
            "rx_rtp": self.rx_rtp,
            "tx_rtp": self.tx_rtp,
            "rx_bytes": self.rx_bytes,
            "tx_bytes": self.tx_bytes,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "has_keyframe": self.has_keyframe,
            "codec_mismatches": self.codec_mismatches,
        })
    }
}

/// Work that one session's drain hands to others.
enum Forward {
    /// A frame from publisher `from`.
    Media { from: u64, data: Box<MediaData> },
    /// A player asked for a keyframe: ask the publisher of its stream.
    Keyframe { app: String, stream: String },
}

/// What a datagram looks like on the wire (RFC 7983 demultiplexing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    StunRequest,
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Other,
}

fn classify(d: &[u8]) -> Wire {
    match d.first() {
        Some(0..=3) if d.len() >= 20 => {
            if d[0] == 0 && d[1] == 1 {
                Wire::StunRequest
            } else {
                Wire::Stun
            }
        }
        Some(20..=63) => Wire::Dtls,
        Some(128..=191) if d.len() >= 12 => {
            if (192..=223).contains(&d[1]) {
                Wire::Rtcp
            } else {
                Wire::Rtp
            }
        }
        _ => Wire::Other,
    }
}

/// Random lowercase letters and digits (like SRS's ufrags and passwords).
fn random_token(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut v = h.finish();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(v % ALPHABET.len() as u64) as usize] as char);
            v /= ALPHABET.len() as u64;
        }
    }
    out
}

fn random_digits(len: usize) -> String {
    random_token(len * 3)
        .bytes()
        .filter(u8::is_ascii_digit)
        .chain(std::iter::repeat(b'7'))
        .take(len)
        .map(char::from)
        .collect()
}

/// `a=ice-ufrag:` of an SDP (the first one).
fn sdp_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(str::trim)
        .filter(|u| !u.is_empty())
}

/// Sends one transmit: STUN to where str0m says (the request's source), the rest to the
/// session's current peer (SRS-style migration; see the crate docs).
fn transmit(
    socket: &UdpSocket,
    s: &mut Session,
    contents: &[u8],
    destination: SocketAddr,
    totals: &mut Totals,
) {
    let wire = classify(contents);
    // A Binding success response (0x0101) to the request being handled: that source is valid.
    if wire == Wire::Stun && contents[..2] == [0x01, 0x01] && s.stun_from == Some(destination) {
        if s.peer != Some(destination) {
            if let Some(old) = s.peer {
                s.migrations += 1;
                totals.migrations += 1;
                tracing::info!(
                    "session {}: peer moved {old} -> {destination} (STUN)",
                    s.key
                );
            }
            s.peer = Some(destination);
        }
        s.stun_from = None;
    }
    let to = match wire {
        Wire::Stun | Wire::StunRequest => destination,
        _ => s.peer.unwrap_or(destination),
    };
    match socket.send_to(contents, to) {
        Ok(_) => {
            s.tx_datagrams += 1;
            s.tx_bytes += contents.len() as u64;
            if wire == Wire::Rtp {
                s.tx_rtp += 1;
                if s.role == Role::Play {
                    totals.rtp_to_players += 1;
                }
            }
        }
        Err(e) => tracing::debug!("session {}: send to {to}: {e}", s.key),
    }
}

/// Drains `s` to its next timeout (str0m's single-mutation rule), queueing work for others.
fn drain(socket: &UdpSocket, s: &mut Session, queue: &mut VecDeque<Forward>, totals: &mut Totals) {
    loop {
        if !s.rtc.is_alive() {
            s.next_timeout = Instant::now();
            return;
        }
        match s.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                s.next_timeout = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                let destination = t.destination;
                transmit(socket, s, &t.contents, destination, totals);
            }
            Ok(Output::Event(e)) => on_event(s, e, queue, totals),
            Err(e) => {
                tracing::warn!(
                    "session {} ({}): {e:?}; dropping it",
                    s.key,
                    s.role.as_str()
                );
                s.rtc.disconnect();
            }
        }
    }
}

fn on_event(s: &mut Session, e: Event, queue: &mut VecDeque<Forward>, totals: &mut Totals) {
    match e {
        Event::Connected => {
            s.connected = true;
            tracing::info!(
                "session {} ({} {}/{}) connected from {:?}",
                s.key,
                s.role.as_str(),
                s.app,
                s.stream,
                s.peer
            );
        }
        Event::IceConnectionStateChange(state) => {
            // Logged only: like SRS, a session ends on silence (or DELETE), not on ICE state.
            tracing::debug!("session {}: ICE {state:?}", s.key);
        }
        Event::MediaAdded(m) if !s.medias.iter().any(|(mid, _, _)| *mid == m.mid) => {
            s.medias.push((m.mid, m.kind, m.direction));
        }
        Event::MediaData(data) if s.role == Role::Publish => {
            s.frames_in += 1;
            totals.frames_from_publishers += 1;
            queue.push_back(Forward::Media {
                from: s.id,
                data: Box::new(data),
            });
        }
        Event::KeyframeRequest(_) if s.role == Role::Play => {
            queue.push_back(Forward::Keyframe {
                app: s.app.clone(),
                stream: s.stream.clone(),
            });
        }
        Event::Closed => tracing::info!("session {}: closed by str0m", s.key),
        _ => {}
    }
}

/// The SFU: owns the socket and every session.
pub struct Sfu {
    socket: UdpSocket,
    /// The advertised host candidate (also what received datagrams are addressed to).
    local: SocketAddr,
    cert: DtlsCert,
    session_timeout: Duration,
    identity: Identity,
    inbox: Receiver<Command>,
    sessions: Vec<Session>,
    queue: VecDeque<Forward>,
    totals: Totals,
    next_id: u64,
}

impl Sfu {
    pub fn new(
        socket: UdpSocket,
        local: SocketAddr,
        session_timeout: Duration,
        identity: Identity,
        inbox: Receiver<Command>,
    ) -> Result<Sfu, String> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or("the crypto provider cannot make a DTLS certificate")?;
        provider.install_process_default();
        Ok(Sfu {
            socket,
            local,
            cert,
            session_timeout,
            identity,
            inbox,
            sessions: Vec::new(),
            queue: VecDeque::new(),
            totals: Totals::default(),
            next_id: 1,
        })
    }

    /// Runs forever.
    pub fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            if !self.commands() {
                tracing::info!("the HTTP side is gone; the SFU stops");
                return;
            }
            let now = Instant::now();
            self.expire(now);
            self.keyframe_upkeep(now);
            self.forward();

            // Wait for a datagram, the earliest session timeout, or 20 ms (for commands).
            let deadline = self
                .sessions
                .iter()
                .map(|s| s.next_timeout)
                .min()
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_millis(20));
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            if let Err(e) = self.socket.set_read_timeout(Some(wait)) {
                tracing::error!("set_read_timeout: {e}");
                std::thread::sleep(wait);
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => self.datagram(&buf[..n], source),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    // ICMP errors and the like; never fatal.
                    tracing::debug!("recv_from: {e}");
                }
            }
            self.forward();

            let now = Instant::now();
            for s in &mut self.sessions {
                if s.next_timeout <= now && s.rtc.is_alive() {
                    if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                        tracing::warn!("session {}: timeout: {e:?}", s.key);
                        s.rtc.disconnect();
                    }
                    drain(&self.socket, s, &mut self.queue, &mut self.totals);
                }
            }
        }
    }

    /// Handles every pending command; `false` once every sender is gone.
    fn commands(&mut self) -> bool {
        loop {
            match self.inbox.try_recv() {
                Ok(Command::Offer {
                    role,
                    app,
                    stream,
                    sdp,
                    reply,
                }) => {
                    let answer = self.offer(role, app, stream, &sdp);
                    if let Err((status, message)) = &answer {
                        tracing::info!("offer refused ({status}): {message}");
                    }
                    let _ = reply.send(answer);
                }
                Ok(Command::Delete {
                    session,
                    token,
                    reply,
                }) => {
                    let _ = reply.send(self.delete(&session, token.as_deref()));
                }
                Ok(Command::Stats(reply)) => {
                    let _ = reply.send(self.stats());
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn offer(&mut self, role: Role, app: String, stream: String, sdp: &str) -> OfferReply {
        let bad = |m: String| (400, m);
        let offer_ufrag = sdp_ufrag(sdp)
            .ok_or_else(|| bad("the offer has no a=ice-ufrag".into()))?
            .to_string();
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| bad(format!("bad offer: {e}")))?;
        if role == Role::Publish
            && self
                .sessions
                .iter()
                .any(|s| s.role == Role::Publish && s.is_open() && s.same_stream(&app, &stream))
        {
            return Err((409, format!("stream {app}/{stream} is busy")));
        }
        let creds = IceCreds {
            ufrag: random_token(8),
            pass: random_token(32),
        };
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_h264(true)
            .enable_vp8(true)
            .enable_opus(true, false)
            .build(now);
        let candidate =
            Candidate::host(self.local, "udp").map_err(|e| (500, format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| bad(format!("offer not accepted: {e}")))?;
        let key = format!("{}:{offer_ufrag}", creds.ufrag);
        let token = random_digits(9);
        let location = format!(
            "/rtc/v1/whip/?action=delete&token={token}&app={}&stream={}&session={key}",
            crate::http::percent_encode(&app),
            crate::http::percent_encode(&stream),
        );
        let id = self.next_id;
        self.next_id += 1;
        let mut session = Session {
            id,
            role,
            app,
            stream,
            key: key.clone(),
            token,
            rtc,
            created: now,
            last_rx: now,
            next_timeout: now,
            peer: None,
            stun_from: None,
            remotes: BTreeSet::new(),
            medias: Vec::new(),
            connected: false,
            closing: None,
            has_keyframe: false,
            last_keyframe_request: None,
            rx_datagrams: 0,
            tx_datagrams: 0,
            rx_rtp: 0,
            tx_rtp: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            frames_in: 0,
            frames_out: 0,
            migrations: 0,
            codec_mismatches: 0,
        };
        // str0m announces medias (Event::MediaAdded) only once connected; take them from the
        // answer's a=mid lines now, since forwarding and the checks below need them.
        let answer_sdp = answer.to_sdp_string();
        for mid in answer_sdp
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
        {
            let mid = Mid::from(mid.trim());
            if let Some(m) = session.rtc.media(mid) {
                session.medias.push((mid, m.kind(), m.direction()));
            }
        }
        drain(
            &self.socket,
            &mut session,
            &mut self.queue,
            &mut self.totals,
        );
        let wanted = match role {
            Role::Publish => [Direction::SendOnly, Direction::SendRecv],
            Role::Play => [Direction::RecvOnly, Direction::SendRecv],
        };
        // Our directions are the offer's mirrored: a publisher's media is RecvOnly here.
        let usable = session.medias.iter().any(|(_, _, d)| match role {
            Role::Publish => matches!(d, Direction::RecvOnly | Direction::SendRecv),
            Role::Play => matches!(d, Direction::SendOnly | Direction::SendRecv),
        });
        if !usable {
            return Err(bad(format!(
                "a {} offer needs an m-line that is {:?} or {:?}",
                role.as_str(),
                wanted[0],
                wanted[1]
            )));
        }
        tracing::info!(
            "session {key} ({} {}/{}): answer with medias {:?}",
            role.as_str(),
            session.app,
            session.stream,
            session.medias
        );
        self.totals.sessions += 1;
        self.sessions.push(session);
        Ok(Answer {
            sdp: answer_sdp,
            session: key,
            location,
        })
    }

    fn delete(&mut self, key: &str, token: Option<&str>) -> bool {
        let Some(s) = self
            .sessions
            .iter_mut()
            .find(|s| s.key == key && s.closing.is_none())
        else {
            return false;
        };
        if token.is_some_and(|t| t != s.token) {
            return false;
        }
        tracing::info!("session {key}: DELETE, closing");
        self.totals.deleted += 1;
        s.closing = Some(Instant::now());
        if let Err(e) = s.rtc.close() {
            tracing::debug!("session {key}: close: {e:?}");
            s.rtc.disconnect();
        }
        drain(&self.socket, s, &mut self.queue, &mut self.totals);
        true
    }

    /// Drops dead, drained-after-close and silent sessions.
    fn expire(&mut self, now: Instant) {
        let timeout = self.session_timeout;
        let totals = &mut self.totals;
        self.sessions.retain_mut(|s| {
            let reason = if !s.rtc.is_alive() {
                Some("closed")
            } else if s
                .closing
                .is_some_and(|t| now.saturating_duration_since(t) > Duration::from_secs(2))
            {
                Some("closed (drain timed out)")
            } else if s.closing.is_none() && now.saturating_duration_since(s.last_rx) > timeout {
                totals.timed_out += 1;
                Some("timed out (no datagram)")
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    tracing::info!(
                        "session {} ({} {}/{}) {reason}: rx {} tx {} datagrams, frames in {} out {}",
                        s.key,
                        s.role.as_str(),
                        s.app,
                        s.stream,
                        s.rx_datagrams,
                        s.tx_datagrams,
                        s.frames_in,
                        s.frames_out
                    );
                    totals.closed += 1;
                    s.rtc.disconnect();
                    false
                }
                None => true,
            }
        });
    }

    /// One datagram from `source`: find its session with [`Rtc::accepts`] and feed it.
    fn datagram(&mut self, data: &[u8], source: SocketAddr) {
        let wire = classify(data);
        let Ok(contents) = data.try_into() else {
            self.totals.unmatched_datagrams += 1;
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let Some(s) = self
            .sessions
            .iter_mut()
            .find(|s| s.rtc.is_alive() && s.rtc.accepts(&input))
        else {
            self.totals.unmatched_datagrams += 1;
            tracing::debug!("no session accepts a {wire:?} datagram from {source}");
            return;
        };
        s.last_rx = now;
        s.rx_datagrams += 1;
        s.rx_bytes += data.len() as u64;
        s.remotes.insert(source);
        if wire == Wire::Rtp {
            s.rx_rtp += 1;
            if s.role == Role::Publish {
                self.totals.rtp_from_publishers += 1;
            }
        }
        s.stun_from = (wire == Wire::StunRequest).then_some(source);
        if let Err(e) = s.rtc.handle_input(input) {
            // str0m disconnects by itself when an error is fatal (DTLS failure and the like).
            tracing::warn!("session {}: input from {source}: {e:?}", s.key);
        }
        drain(&self.socket, s, &mut self.queue, &mut self.totals);
        s.stun_from = None;
    }

    /// Delivers queued frames and keyframe requests (which may queue more).
    fn forward(&mut self) {
        while let Some(work) = self.queue.pop_front() {
            match work {
                Forward::Media { from, data } => self.deliver(from, &data),
                Forward::Keyframe { app, stream } => {
                    self.request_keyframe(&app, &stream, Instant::now(), false);
                }
            }
        }
    }

    fn deliver(&mut self, from: u64, data: &MediaData) {
        let Some(publisher) = self.sessions.iter().find(|s| s.id == from) else {
            return;
        };
        let Some(kind) = publisher.kind_of(data.mid) else {
            return;
        };
        let (app, stream) = (publisher.app.clone(), publisher.stream.clone());
        let keyframe = data.is_keyframe();
        for s in &mut self.sessions {
            if s.role != Role::Play || !s.connected || !s.is_open() || !s.same_stream(&app, &stream)
            {
                continue;
            }
            if kind == MediaKind::Video && !s.has_keyframe {
                if !keyframe {
                    continue;
                }
                tracing::info!("session {}: first keyframe", s.key);
                s.has_keyframe = true;
            }
            let Some(mid) = s.sending_mid(kind) else {
                continue;
            };
            let Some(writer) = s.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                if s.codec_mismatches == 0 {
                    tracing::warn!(
                        "session {}: no payload type matches the publisher's {:?}",
                        s.key,
                        data.params.spec()
                    );
                }
                s.codec_mismatches += 1;
                continue;
            };
            match writer.write(pt, data.network_time, data.time, data.data.clone()) {
                Ok(()) => {
                    s.frames_out += 1;
                    self.totals.frames_to_players += 1;
                }
                Err(e) => {
                    tracing::warn!("session {}: write: {e:?}; dropping it", s.key);
                    s.rtc.disconnect();
                }
            }
            drain(&self.socket, s, &mut self.queue, &mut self.totals);
        }
    }

    /// Asks the publisher of app/stream for a keyframe: PLI where negotiated, else FIR.
    /// Unless `force`, at most once a second per publisher.
    fn request_keyframe(&mut self, app: &str, stream: &str, now: Instant, force: bool) {
        let Some(p) = self.sessions.iter_mut().find(|s| {
            s.role == Role::Publish && s.connected && s.is_open() && s.same_stream(app, stream)
        }) else {
            return;
        };
        if !force
            && p.last_keyframe_request
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        let mut asked = false;
        for mid in p.receiving_video_mids() {
            let Some(mut writer) = p.rtc.writer(mid) else {
                continue;
            };
            let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                KeyframeRequestKind::Pli
            } else {
                KeyframeRequestKind::Fir
            };
            match writer.request_keyframe(None, kind) {
                Ok(()) => asked = true,
                // No RTP from the publisher yet, or no PLI/FIR negotiated: try again later.
                Err(e) => tracing::debug!("session {}: keyframe request: {e:?}", p.key),
            }
            drain(&self.socket, p, &mut self.queue, &mut self.totals);
        }
        if asked {
            p.last_keyframe_request = Some(now);
            self.totals.keyframe_requests += 1;
            tracing::debug!("session {}: asked for a keyframe", p.key);
        }
    }

    /// Players still waiting for their first keyframe ask for one every second.
    fn keyframe_upkeep(&mut self, now: Instant) {
        let waiting: Vec<(String, String)> = self
            .sessions
            .iter_mut()
            .filter(|s| s.role == Role::Play && s.connected && s.is_open() && !s.has_keyframe)
            .filter(|s| {
                s.last_keyframe_request
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
            })
            .map(|s| {
                s.last_keyframe_request = Some(now);
                (s.app.clone(), s.stream.clone())
            })
            .collect();
        for (app, stream) in waiting {
            self.request_keyframe(&app, &stream, now, true);
        }
    }

    fn stats(&self) -> serde_json::Value {
        let now = Instant::now();
        let open = |role: Role| {
            self.sessions
                .iter()
                .filter(|s| s.role == role && s.is_open())
                .count()
        };
        let t = &self.totals;
        serde_json::json!({
            "server": self.identity.server,
            "service": self.identity.service,
            "pid": self.identity.pid,
            "candidate": self.local.to_string(),
            "sessions_open": self.sessions.iter().filter(|s| s.is_open()).count(),
            "publishers_open": open(Role::Publish),
            "players_open": open(Role::Play),
            "sessions_total": t.sessions,
            "sessions_closed": t.closed,
            "sessions_timed_out": t.timed_out,
            "sessions_deleted": t.deleted,
            "rtp_from_publishers": t.rtp_from_publishers,
            "rtp_to_players": t.rtp_to_players,
            "frames_from_publishers": t.frames_from_publishers,
            "frames_to_players": t.frames_to_players,
            "keyframe_requests": t.keyframe_requests,
            "unmatched_datagrams": t.unmatched_datagrams,
            "migrations": t.migrations,
            "sessions": self.sessions.iter().map(|s| s.stats(now)).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_rfc7983() {
        let mut stun = vec![0u8; 20];
        stun[1] = 1;
        assert_eq!(classify(&stun), Wire::StunRequest);
        stun[0] = 1;
        stun[1] = 1;
        assert_eq!(classify(&stun), Wire::Stun);
        assert_eq!(classify(&[22u8; 30]), Wire::Dtls);
        let mut rtp = vec![0x80u8, 96];
        rtp.resize(20, 0);
        assert_eq!(classify(&rtp), Wire::Rtp);
        rtp[1] = 200;
        assert_eq!(classify(&rtp), Wire::Rtcp);
        assert_eq!(classify(&[]), Wire::Other);
        assert_eq!(classify(&[0x80]), Wire::Other);
    }

    #[test]
    fn tokens_look_like_srs_ones() {
        let a = random_token(8);
        assert_eq!(a.len(), 8);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random_token(32), random_token(32));
        let d = random_digits(9);
        assert_eq!(d.len(), 9);
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn finds_the_offer_ufrag() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/webrtc/whip/request.http"
        );
        let offer = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(sdp_ufrag(&offer), Some("qVrH"));
        assert_eq!(sdp_ufrag("v=0\r\n"), None);
    }
}
