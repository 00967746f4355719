//! The per-connection handshake relay (spec §5.7 "Replay to the backend", fixed per §10 #19–#21).
//!
//! One [`SrtHandshakeRelay`] per caller connection (caller address + caller socket id). It
//! answers the caller's induction locally, parses the conclusion's stream id, asks the glue to
//! pick an origin ([`RelayEvent::Route`]), replays induction and conclusion to that origin with
//! the cookies swapped, and hands the origin's conclusion response (or rejection) back to the
//! caller with the caller-facing cookie restored. Phases:
//!
//! ```text
//! AwaitConclusion --conclusion--> Routing --accept_origin--> AwaitOriginInduction
//!     --origin induction--> AwaitOriginConclusion --origin conclusion/rejection--> Done
//! (deadline: AwaitConclusion -> Expired; Routing/AwaitOrigin* -> Done with SRT_REJ_TIMEOUT)
//! ```
//!
//! Retransmits are answered from what was already built, so every answer to a repeated request
//! is byte-identical: induction → the same induction response; conclusion → nothing while
//! routing, the same origin-bound packet again while the origin has not answered (the caller's
//! ~250 ms retransmit pace doubles as our origin retransmit: a lost datagram on the origin leg
//! does not stall the handshake), the stored final answer once done.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::error::SrtError;
use super::handshake::{
    induction_request_from_conclusion, induction_response, rejection, set_syn_cookie, Handshake,
    HandshakeType, RejectCode, GO_PEER_IP, HS_VERSION_5,
};
use super::streamid::StreamId;

/// Default deadline for each phase (spec §10 #19: "SRT backend handshake reads ~3 s").
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Queued datagrams a relay keeps when the glue does not drain (a flood of retransmits): the
/// oldest are dropped beyond this, since each is a repeat anyway.
pub const MAX_QUEUED_TRANSMITS: usize = 8;

/// Relay settings; `new` gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The caller-facing SYN cookie (see [`super::handshake::induction_response`] for the
    /// choice). A conclusion with another cookie is dropped ([`SrtError::BadCookie`]).
    pub cookie: u32,
    /// Peer IP written in the induction response (libsrt layout, see
    /// [`super::handshake::peer_ip_field`]); default [`GO_PEER_IP`] (127.0.0.1, as Go).
    pub peer_ip: [u8; 16],
    /// The proxy's start: handshakes the proxy builds carry µs since then (as Go does).
    pub epoch: Instant,
    /// From [`SrtHandshakeRelay::new`] until the caller's conclusion arrives.
    pub caller_timeout: Duration,
    /// From the conclusion ([`RelayEvent::Route`]) until the origin's final answer, the glue's
    /// origin pick and dial included. libsrt callers give up after `SRTO_CONNTIMEO` (3 s by
    /// default, counted from their first induction), so a value under 3 s lets the timeout
    /// rejection reach a default caller before it stops listening.
    pub origin_timeout: Duration,
}

impl RelayConfig {
    /// Defaults: Go's peer IP, [`DEFAULT_TIMEOUT`] for both phases.
    pub fn new(cookie: u32, epoch: Instant) -> Self {
        Self {
            cookie,
            peer_ip: GO_PEER_IP,
            epoch,
            caller_timeout: DEFAULT_TIMEOUT,
            origin_timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dest {
    /// The caller's address (from the listening socket).
    Caller,
    /// The origin picked for this connection (from the connection's own upstream socket).
    Origin,
}

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// To whom.
    pub dest: Dest,
    /// The whole UDP payload.
    pub payload: Vec<u8>,
}

/// Why the caller got a rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectCause {
    /// The origin rejected the conclusion (e.g. 1011 SRT_REJ_UNSECURE, a busy stream); its
    /// rejection was passed through.
    Origin,
    /// The origin did not finish in time ([`RejectCode::TIMEOUT`]).
    Timeout,
    /// The stream id gives no route ([`RejectCode::BAD_REQUEST`]).
    StreamId(SrtError),
    /// The glue called [`SrtHandshakeRelay::reject`] (no origin, dial failed …).
    Glue,
}

/// What the glue must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// Pick an origin for `stream_key`, open an upstream socket to it, then call
    /// [`SrtHandshakeRelay::accept_origin`] (or [`SrtHandshakeRelay::reject`]).
    Route {
        /// Load-balancer key (spec §4.1).
        stream_key: String,
        /// The parsed stream id (mode, user, session for logs).
        stream_id: StreamId,
        /// The caller's SRT socket id.
        caller_socket_id: u32,
    },
    /// The origin accepted: relay packets with dest `origin_socket_id` from the caller to the
    /// origin, and packets from the origin (dest `caller_socket_id`) to the caller.
    Established {
        /// The caller's SRT socket id (dest of origin → caller packets).
        caller_socket_id: u32,
        /// The origin's SRT socket id (dest of caller → origin packets).
        origin_socket_id: u32,
    },
    /// The caller was sent a rejection with this code. The connection is over.
    Rejected {
        /// Wire code (1000 + reason).
        code: RejectCode,
        /// Who rejected.
        cause: RejectCause,
    },
    /// The caller never concluded in time: drop the relay, nothing was sent.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitConclusion,
    Routing,
    AwaitOriginInduction,
    AwaitOriginConclusion,
    Done,
    Expired,
}

/// The handshake relay for one caller connection. See the module docs.
#[derive(Debug)]
pub struct SrtHandshakeRelay {
    config: RelayConfig,
    phase: Phase,
    deadline: Option<Instant>,
    caller_socket_id: Option<u32>,
    origin_socket_id: Option<u32>,
    /// The caller's original induction ("handshake0"), replayed to the origin.
    caller_induction: Option<Vec<u8>>,
    /// Our answer to it, resent verbatim on retransmits.
    induction_response: Option<Vec<u8>>,
    /// The caller's conclusion as received.
    caller_conclusion: Option<Vec<u8>>,
    /// The last datagram sent to the origin, resent when the caller retransmits.
    origin_pending: Option<Vec<u8>>,
    /// The final answer to the caller (conclusion response or rejection).
    caller_answer: Option<Vec<u8>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<RelayEvent>,
}

impl SrtHandshakeRelay {
    /// A relay for one caller, created on its first induction (or, with stateless inductions
    /// via [`answer_induction`], on a conclusion whose cookie the glue verified).
    pub fn new(config: RelayConfig, now: Instant) -> Self {
        let deadline = now.checked_add(config.caller_timeout);
        Self {
            config,
            phase: Phase::AwaitConclusion,
            deadline,
            caller_socket_id: None,
            origin_socket_id: None,
            caller_induction: None,
            induction_response: None,
            caller_conclusion: None,
            origin_pending: None,
            caller_answer: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A datagram from the caller (dest socket id 0). `Err` means it was dropped and nothing
    /// changed.
    pub fn handle_caller(&mut self, now: Instant, datagram: &[u8]) -> Result<(), SrtError> {
        let hs = Handshake::parse(datagram)?;
        if hs.dest_socket_id != 0 {
            return Err(SrtError::Unexpected(
                "caller handshake with a dest socket id",
            ));
        }
        if self.caller_socket_id.is_some_and(|id| id != hs.socket_id) {
            return Err(SrtError::WrongSocket);
        }
        if self.phase == Phase::Expired {
            return Err(SrtError::Unexpected("handshake after expiry"));
        }
        match hs.handshake_type {
            HandshakeType::INDUCTION => {
                self.caller_socket_id = Some(hs.socket_id);
                if self.caller_induction.is_none() && self.caller_conclusion.is_none() {
                    self.caller_induction = Some(datagram.to_vec());
                }
                let timestamp = self.timestamp(now);
                let (cookie, peer_ip) = (self.config.cookie, self.config.peer_ip);
                let response = self
                    .induction_response
                    .get_or_insert_with(|| induction_response(&hs, cookie, peer_ip, timestamp))
                    .clone();
                self.push(Dest::Caller, response);
                Ok(())
            }
            HandshakeType::CONCLUSION => {
                if hs.syn_cookie != self.config.cookie {
                    return Err(SrtError::BadCookie);
                }
                if hs.version < HS_VERSION_5 {
                    // HSv4 callers send the stream id later, in-stream; spec §5.7 needs it here.
                    return Err(SrtError::Unsupported("HSv4 conclusion"));
                }
                self.caller_conclusion_arrived(now, &hs, datagram);
                Ok(())
            }
            t if t.rejection().is_some() => Err(SrtError::Unexpected("rejection from a caller")),
            _ => Err(SrtError::Unsupported("rendezvous handshake")),
        }
    }

    fn caller_conclusion_arrived(&mut self, now: Instant, hs: &Handshake<'_>, datagram: &[u8]) {
        match self.phase {
            Phase::AwaitConclusion => {
                self.caller_socket_id = Some(hs.socket_id);
                self.caller_conclusion = Some(datagram.to_vec());
                let route = hs
                    .stream_id()
                    .and_then(|sid| sid.ok_or(SrtError::MissingStreamId))
                    .and_then(|sid| StreamId::parse(&sid))
                    .and_then(|id| Ok((id.stream_key()?, id)));
                match route {
                    Ok((stream_key, stream_id)) => {
                        self.phase = Phase::Routing;
                        self.deadline = now.checked_add(self.config.origin_timeout);
                        self.events.push_back(RelayEvent::Route {
                            stream_key,
                            stream_id,
                            caller_socket_id: hs.socket_id,
                        });
                    }
                    Err(e) => {
                        self.finish_rejected(now, RejectCode::BAD_REQUEST, RejectCause::StreamId(e))
                    }
                }
            }
            // The glue has not picked an origin yet: nothing to say.
            Phase::Routing | Phase::Expired => {}
            Phase::AwaitOriginInduction | Phase::AwaitOriginConclusion => {
                if let Some(p) = self.origin_pending.clone() {
                    self.push(Dest::Origin, p);
                }
            }
            Phase::Done => {
                if let Some(a) = self.caller_answer.clone() {
                    self.push(Dest::Caller, a);
                }
            }
        }
    }

    /// The glue has an upstream socket to the origin: queue the origin-bound induction (spec
    /// §5.7 step 1). A no-op outside the routing phase.
    pub fn accept_origin(&mut self, _now: Instant) {
        if self.phase != Phase::Routing {
            return;
        }
        let induction = match (&self.caller_induction, &self.caller_conclusion) {
            (Some(original), _) => original.clone(),
            (None, Some(conclusion)) => match Handshake::parse(conclusion) {
                Ok(hs) => induction_request_from_conclusion(&hs),
                Err(_) => return,
            },
            (None, None) => return,
        };
        self.origin_pending = Some(induction.clone());
        self.push(Dest::Origin, induction);
        self.phase = Phase::AwaitOriginInduction;
    }

    /// Refuse the caller (no origin for the key, dial failed …): queues a rejection with `code`.
    /// A no-op unless the relay is between the conclusion and the origin's answer.
    pub fn reject(&mut self, now: Instant, code: RejectCode) {
        if matches!(
            self.phase,
            Phase::Routing | Phase::AwaitOriginInduction | Phase::AwaitOriginConclusion
        ) {
            self.finish_rejected(now, code, RejectCause::Glue);
        }
    }

    /// A datagram from the origin's upstream socket. Only handshakes belong here; once
    /// [`RelayEvent::Established`] is out, the glue relays everything else itself. `Err` means
    /// it was dropped and nothing changed.
    pub fn handle_origin(&mut self, _now: Instant, datagram: &[u8]) -> Result<(), SrtError> {
        let hs = Handshake::parse(datagram)?;
        let Some(caller_id) = self.caller_socket_id else {
            return Err(SrtError::Unexpected("origin handshake before the caller's"));
        };
        if hs.dest_socket_id != caller_id {
            return Err(SrtError::WrongSocket);
        }
        let waiting = matches!(
            self.phase,
            Phase::AwaitOriginInduction | Phase::AwaitOriginConclusion
        );
        if let Some(code) = hs.handshake_type.rejection() {
            if !waiting {
                return Err(SrtError::Unexpected("origin rejection out of phase"));
            }
            // Pass the origin's rejection on (issue 5: a rejection, not a timeout), with the
            // caller-facing cookie in place of the origin's.
            let mut answer = datagram.to_vec();
            set_syn_cookie(&mut answer, self.config.cookie)?;
            self.finish(answer);
            self.events.push_back(RelayEvent::Rejected {
                code,
                cause: RejectCause::Origin,
            });
            return Ok(());
        }
        match (self.phase, hs.handshake_type) {
            (Phase::AwaitOriginInduction, HandshakeType::INDUCTION) => {
                // §5.7 step 3: the caller's conclusion with the origin's cookie.
                let Some(mut conclusion) = self.caller_conclusion.clone() else {
                    return Err(SrtError::Unexpected("no conclusion to replay"));
                };
                set_syn_cookie(&mut conclusion, hs.syn_cookie)?;
                self.origin_pending = Some(conclusion.clone());
                self.push(Dest::Origin, conclusion);
                self.phase = Phase::AwaitOriginConclusion;
                Ok(())
            }
            (Phase::AwaitOriginConclusion, HandshakeType::CONCLUSION) => {
                // §5.7 step 5: the origin's answer, HSRSP/KMRSP untouched, our cookie restored.
                let mut answer = datagram.to_vec();
                set_syn_cookie(&mut answer, self.config.cookie)?;
                self.origin_socket_id = Some(hs.socket_id);
                self.finish(answer);
                self.events.push_back(RelayEvent::Established {
                    caller_socket_id: caller_id,
                    origin_socket_id: hs.socket_id,
                });
                Ok(())
            }
            _ => Err(SrtError::Unexpected("origin handshake out of phase")),
        }
    }

    /// The next datagram to send. Drain after every `handle_*`/`accept_origin`/`reject`/
    /// `handle_timeout`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Done | Phase::Expired => None,
            _ => self.deadline,
        }
    }

    /// Applies the deadline: before the conclusion the relay expires silently
    /// ([`RelayEvent::Expired`]); after it the caller gets [`RejectCode::TIMEOUT`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.phase == Phase::AwaitConclusion {
            self.phase = Phase::Expired;
            self.events.push_back(RelayEvent::Expired);
        } else {
            self.finish_rejected(now, RejectCode::TIMEOUT, RejectCause::Timeout);
        }
    }

    /// True once established, rejected or expired: only retransmit answers remain.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Expired)
    }

    /// The caller's SRT socket id, once seen.
    pub fn caller_socket_id(&self) -> Option<u32> {
        self.caller_socket_id
    }

    /// The origin's SRT socket id, once established.
    pub fn origin_socket_id(&self) -> Option<u32> {
        self.origin_socket_id
    }

    /// The final answer sent to the caller, for glue that drops the relay on
    /// [`RelayEvent::Established`] but still wants to answer conclusion retransmits.
    pub fn caller_answer(&self) -> Option<&[u8]> {
        self.caller_answer.as_deref()
    }

    fn finish_rejected(&mut self, now: Instant, code: RejectCode, cause: RejectCause) {
        let timestamp = self.timestamp(now);
        let answer = self
            .caller_conclusion
            .as_deref()
            .and_then(|c| Handshake::parse(c).ok())
            .map(|hs| rejection(&hs, code, self.config.cookie, timestamp));
        match answer {
            Some(answer) => self.finish(answer),
            None => {
                self.phase = Phase::Done;
                self.deadline = None;
            }
        }
        self.events.push_back(RelayEvent::Rejected { code, cause });
    }

    fn finish(&mut self, answer: Vec<u8>) {
        self.caller_answer = Some(answer.clone());
        self.push(Dest::Caller, answer);
        self.origin_pending = None;
        self.phase = Phase::Done;
        self.deadline = None;
    }

    fn push(&mut self, dest: Dest, payload: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.transmits.pop_front();
        }
        self.transmits.push_back(Transmit { dest, payload });
    }

    /// µs since the epoch, wrapping like every SRT timestamp (draft §3: 32-bit µs).
    fn timestamp(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.config.epoch).as_micros() & 0xFFFF_FFFF) as u32
    }
}

/// Stateless induction answer for glue that wants no state per induction (SYN-cookie style):
/// checks `datagram` is a caller induction (handshake, dest 0, type 1) and builds the response
/// with `cookie` (spec §5.7). The glue creates an [`SrtHandshakeRelay`] only for a conclusion
/// whose cookie it recognises.
pub fn answer_induction(
    datagram: &[u8],
    cookie: u32,
    peer_ip: [u8; 16],
    timestamp_us: u32,
) -> Result<Vec<u8>, SrtError> {
    let hs = Handshake::parse(datagram)?;
    if hs.dest_socket_id != 0 || hs.handshake_type != HandshakeType::INDUCTION {
        return Err(SrtError::Unexpected("not a caller induction"));
    }
    Ok(induction_response(&hs, cookie, peer_ip, timestamp_us))
}
