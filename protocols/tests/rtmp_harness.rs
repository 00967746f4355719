//! Deterministic in-memory harness (habit #4): a fake ffmpeg-like client, the proxy built from
//! ServerSession + ClientSession + two RelayDirections, and a fake SRS-like origin, wired with
//! byte pipes delivering random-sized pieces, stepped until quiescent, with virtual time.

use std::time::{Duration, Instant};

use protocols::rtmp::handshake::{ClientHandshake, ServerHandshake};
use protocols::rtmp::message::*;
use protocols::rtmp::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

const TC_URL: &str = "rtmp://127.0.0.1:19350/live";
const NAME: &str = "livestream?secret=abc123";

fn s(v: &str) -> Amf0Value {
    Amf0Value::string(v)
}

fn obj(props: &[(&str, Amf0Value)]) -> Amf0Value {
    Amf0Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn status(level: &str, code: &str) -> Amf0Value {
    obj(&[
        ("level", s(level)),
        ("code", s(code)),
        ("description", s(code)),
    ])
}

/// Chunk-level state shared by the fake peers.
#[derive(Default)]
struct Wire {
    dec: ChunkDecoder,
    enc: ChunkEncoder,
    inbox: Vec<u8>,
    out: Vec<u8>,
}

impl Wire {
    fn recv(&mut self) -> Vec<RtmpMessage> {
        let mut msgs = Vec::new();
        let mut pos = 0;
        while pos < self.inbox.len() {
            let (n, m) = self.dec.decode(&self.inbox[pos..]).expect("peer decodes");
            pos += n;
            msgs.extend(m);
        }
        self.inbox.clear();
        msgs
    }

    fn command(&mut self, stream_id: u32, cmd: Command) {
        cmd.write(&self.enc, stream_id, &mut self.out);
    }

    fn send(&mut self, m: &RtmpMessage) {
        self.enc.write_message(
            m.csid,
            m.timestamp,
            m.type_id,
            m.stream_id,
            &m.payload,
            &mut self.out,
        );
    }

    fn set_chunk_size(&mut self, size: u32) {
        write_u32_control(&self.enc, TYPE_SET_CHUNK_SIZE, size, &mut self.out);
        self.enc.set_chunk_size(size);
    }
}

fn media(seed: u8) -> Vec<RtmpMessage> {
    let mut rng = StdRng::seed_from_u64(u64::from(seed));
    let mut msgs = Vec::new();
    for i in 0..40u32 {
        let video = i % 3 != 0;
        let len = if video {
            rng.gen_range(1..70_000)
        } else {
            rng.gen_range(1..400)
        };
        msgs.push(RtmpMessage {
            csid: if video { 6 } else { 4 },
            // Cross the extended-timestamp boundary half-way.
            timestamp: 0x00ff_ff00 + i * 23,
            type_id: if video { TYPE_VIDEO } else { TYPE_AUDIO },
            stream_id: 1,
            payload: (0..len).map(|_| rng.gen()).collect(),
        });
    }
    msgs
}

fn cmd_of(m: &RtmpMessage) -> Option<Command> {
    Command::decode(m.type_id, &m.payload).unwrap()
}

/// Publishes or plays like ffmpeg (chunk size 4096, pipelined commands).
struct FakeClient {
    kind: StreamKind,
    hs: ClientHandshake,
    wire: Wire,
    started: bool,
    status_codes: Vec<String>,
    received: Vec<RtmpMessage>,
    sent_media: Vec<RtmpMessage>,
}

impl FakeClient {
    fn new(kind: StreamKind) -> Self {
        let mut wire = Wire::default();
        let hs = ClientHandshake::new(&[0x11; 1528], &mut wire.out);
        FakeClient {
            kind,
            hs,
            wire,
            started: false,
            status_codes: vec![],
            received: vec![],
            sent_media: vec![],
        }
    }

    fn step(&mut self) {
        if !self.hs.is_done() {
            let n = self.hs.handle_input(&self.wire.inbox, &mut self.wire.out);
            self.wire.inbox.drain(..n);
            if !self.hs.is_done() {
                return;
            }
            self.wire.command(
                0,
                Command::new(
                    "connect",
                    1.0,
                    obj(&[("app", s("live")), ("tcUrl", s(TC_URL))]),
                ),
            );
            self.wire.set_chunk_size(4096);
        }
        for m in self.wire.recv() {
            if self.started {
                self.received.push(m);
                continue;
            }
            let Some(cmd) = cmd_of(&m) else { continue };
            match (cmd.name.as_str(), cmd.transaction_id as u32) {
                ("_result", 1) => {
                    if self.kind == StreamKind::Publish {
                        self.wire.command(
                            0,
                            Command::new("releaseStream", 2.0, Amf0Value::Null).arg(s(NAME)),
                        );
                        self.wire.command(
                            0,
                            Command::new("FCPublish", 3.0, Amf0Value::Null).arg(s(NAME)),
                        );
                    }
                    self.wire
                        .command(0, Command::new("createStream", 4.0, Amf0Value::Null));
                }
                ("_result", 4) if self.kind == StreamKind::Publish => {
                    self.wire.command(
                        1,
                        Command::new("publish", 5.0, Amf0Value::Null)
                            .arg(s(NAME))
                            .arg(s("live")),
                    );
                    // Sent before Publish.Start: the proxy must keep it for the relay.
                    let mut meta = Vec::new();
                    s("@setDataFrame").encode(&mut meta);
                    s("onMetaData").encode(&mut meta);
                    let m = RtmpMessage {
                        csid: 4,
                        timestamp: 0,
                        type_id: TYPE_DATA_AMF0,
                        stream_id: 1,
                        payload: meta,
                    };
                    self.wire.send(&m);
                    self.sent_media.push(m);
                }
                ("_result", 4) => {
                    self.wire
                        .command(1, Command::new("play", 5.0, Amf0Value::Null).arg(s(NAME)));
                }
                ("onStatus", _) => {
                    let code = cmd.status_code().unwrap_or_default().to_owned();
                    self.status_codes.push(code.clone());
                    if code == "NetStream.Publish.Start" {
                        self.started = true;
                        let all = media(1);
                        for (i, m) in all.iter().enumerate() {
                            if i == 20 {
                                // Mid-stream chunk size change (spec §10 #22).
                                self.wire.set_chunk_size(1000);
                            }
                            self.wire.send(m);
                        }
                        self.sent_media.extend(all);
                    } else if code == "NetStream.Play.Start" {
                        self.started = true;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Answers like SRS 7: SetChunkSize 60000 before the connect `_result`, onBWDone, etc.
struct FakeOrigin {
    hs: ServerHandshake,
    wire: Wire,
    busy: bool,
    silent: bool,
    publishing: bool,
    received: Vec<RtmpMessage>,
    played: Vec<RtmpMessage>,
    names: Vec<String>,
}

impl FakeOrigin {
    fn new() -> Self {
        FakeOrigin {
            hs: ServerHandshake::new([0x22; 1528]),
            wire: Wire::default(),
            busy: false,
            silent: false,
            publishing: false,
            received: vec![],
            played: vec![],
            names: vec![],
        }
    }

    fn step(&mut self) {
        if !self.hs.is_done() {
            let n = self.hs.handle_input(&self.wire.inbox, &mut self.wire.out);
            self.wire.inbox.drain(..n);
            if !self.hs.is_done() {
                return;
            }
        }
        for m in self.wire.recv() {
            if self.publishing {
                self.received.push(m);
                continue;
            }
            let Some(cmd) = cmd_of(&m) else { continue };
            if self.silent {
                continue;
            }
            let t = cmd.transaction_id;
            let w = &mut self.wire;
            match cmd.name.as_str() {
                "connect" => {
                    write_u32_control(&w.enc, TYPE_WINDOW_ACK_SIZE, 2_500_000, &mut w.out);
                    w.enc.write_message(
                        2,
                        0,
                        TYPE_SET_PEER_BANDWIDTH,
                        0,
                        &[0, 0x26, 0x25, 0xa0, 2],
                        &mut w.out,
                    );
                    w.set_chunk_size(60000);
                    w.command(
                        0,
                        Command::new("_result", t, obj(&[("fmsVer", s("FMS/3,5,3,888"))]))
                            .arg(status("status", "NetConnection.Connect.Success")),
                    );
                    w.command(0, Command::new("onBWDone", 0.0, Amf0Value::Null));
                }
                "createStream" => w.command(
                    0,
                    Command::new("_result", t, Amf0Value::Null).arg(Amf0Value::Number(1.0)),
                ),
                "publish" => {
                    self.names.push(cmd.args[0].as_str().unwrap().to_owned());
                    w.command(
                        1,
                        Command::new("onFCPublish", 0.0, Amf0Value::Null)
                            .arg(status("status", "NetStream.Publish.Start")),
                    );
                    if self.busy {
                        w.command(
                            1,
                            Command::new("onStatus", 0.0, Amf0Value::Null)
                                .arg(status("error", "NetStream.Publish.BadName")),
                        );
                    } else {
                        w.command(
                            1,
                            Command::new("onStatus", 0.0, Amf0Value::Null)
                                .arg(status("status", "NetStream.Publish.Start")),
                        );
                        self.publishing = true;
                    }
                }
                "play" => {
                    self.names.push(cmd.args[0].as_str().unwrap().to_owned());
                    w.enc.write_message(
                        2,
                        0,
                        TYPE_USER_CONTROL,
                        0,
                        &[0, 0, 0, 0, 0, 1],
                        &mut w.out,
                    );
                    w.command(
                        1,
                        Command::new("onStatus", 0.0, Amf0Value::Null)
                            .arg(status("status", "NetStream.Play.Reset")),
                    );
                    w.command(
                        1,
                        Command::new("onStatus", 0.0, Amf0Value::Null)
                            .arg(status("status", "NetStream.Play.Start")),
                    );
                    let mut access = Vec::new();
                    s("|RtmpSampleAccess").encode(&mut access);
                    self.played.push(RtmpMessage {
                        csid: 5,
                        timestamp: 0,
                        type_id: TYPE_DATA_AMF0,
                        stream_id: 1,
                        payload: access,
                    });
                    self.played.extend(media(2));
                    for m in &self.played {
                        w.send(m);
                    }
                }
                _ => w.command(
                    0,
                    Command::new("_result", t, Amf0Value::Null).arg(Amf0Value::Undefined),
                ),
            }
        }
    }
}

// One proxy per test: the size difference between states does not matter here.
#[allow(clippy::large_enum_variant)]
enum ProxyState {
    Command {
        server: ServerSession,
        client: Option<ClientSession>,
    },
    Relay {
        up: RelayDirection,
        down: RelayDirection,
    },
    Closed(Option<RtmpError>),
}

/// The proxy exactly as the glue would drive it.
struct Proxy {
    state: ProxyState,
    from_client: Vec<u8>,
    from_origin: Vec<u8>,
    to_client: Vec<u8>,
    to_origin: Vec<u8>,
    plan: RelayPlan,
}

impl Proxy {
    fn new(now: Instant) -> Self {
        let server = ServerSession::new(
            ServerConfig {
                srs_id: "a1b2c3d".into(),
                srs_version: "1.5.0".into(),
                s1_random: [0x33; 1528],
                phase_timeout: Duration::from_secs(30),
            },
            now,
        );
        Proxy {
            state: ProxyState::Command {
                server,
                client: None,
            },
            from_client: vec![],
            from_origin: vec![],
            to_client: vec![],
            to_origin: vec![],
            plan: RelayPlan::new(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            ProxyState::Command { server, client } => {
                let c = client.as_ref().and_then(ClientSession::poll_timeout);
                [server.poll_timeout(), c].into_iter().flatten().min()
            }
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let ProxyState::Command { server, client } = &mut self.state {
            let r = server.handle_timeout(now).and_then(|()| match client {
                Some(c) => c.handle_timeout(now),
                None => Ok(()),
            });
            if let Err(e) = r {
                self.state = ProxyState::Closed(Some(e));
            }
        }
    }

    fn step(&mut self, now: Instant) {
        if let Err(e) = self.step_inner(now) {
            self.state = ProxyState::Closed(Some(e));
        }
    }

    fn step_inner(&mut self, now: Instant) -> Result<(), RtmpError> {
        let state = std::mem::replace(&mut self.state, ProxyState::Closed(None));
        self.state = match state {
            ProxyState::Command {
                mut server,
                mut client,
            } => {
                let n = server.handle_input(&self.from_client)?;
                self.from_client.drain(..n);
                server.poll_transmit(&mut self.to_client);
                while let Some(ServerEvent::Identified {
                    kind,
                    tc_url,
                    stream_name,
                }) = server.poll_event()
                {
                    // "Dial" the origin.
                    let cfg = ClientConfig {
                        tc_url,
                        stream_name,
                        kind,
                        c1_random: [0x44; 1528],
                        phase_timeout: Duration::from_secs(10),
                    };
                    client = Some(ClientSession::new(cfg, now));
                }
                let mut next = None;
                if let Some(c) = client.as_mut() {
                    let n = c.handle_input(&self.from_origin)?;
                    self.from_origin.drain(..n);
                    c.poll_transmit(&mut self.to_origin);
                    match c.poll_event() {
                        Some(ClientEvent::Ready) => {
                            server.accept();
                            server.poll_transmit(&mut self.to_client);
                            next = Some(true);
                        }
                        Some(ClientEvent::Rejected { description, .. }) => {
                            server.reject(&description);
                            server.poll_transmit(&mut self.to_client);
                            next = Some(false);
                        }
                        None => {}
                    }
                }
                match (next, client) {
                    (Some(true), Some(c)) => {
                        let (up, down) = RelayDirection::pair(server.into_relay(), c.into_relay());
                        ProxyState::Relay { up, down }
                    }
                    (Some(false), _) => ProxyState::Closed(None),
                    (_, client) => ProxyState::Command { server, client },
                }
            }
            ProxyState::Relay { mut up, mut down } => {
                for (relay, input, out) in [
                    (&mut up, &mut self.from_client, &mut self.to_origin),
                    (&mut down, &mut self.from_origin, &mut self.to_client),
                ] {
                    self.plan.clear();
                    let n = relay.process(input, &mut self.plan)?;
                    self.plan.flatten_into(input, out);
                    input.drain(..n);
                }
                ProxyState::Relay { up, down }
            }
            closed => {
                // A closed connection drops whatever the peers still send.
                self.from_client.clear();
                self.from_origin.clear();
                closed
            }
        };
        Ok(())
    }
}

struct World {
    rng: StdRng,
    now: Instant,
    client: FakeClient,
    proxy: Proxy,
    origin: FakeOrigin,
}

/// Moves a random-sized piece from `from` to `to`; returns whether anything moved.
fn deliver(rng: &mut StdRng, from: &mut Vec<u8>, to: &mut Vec<u8>) -> bool {
    if from.is_empty() {
        return false;
    }
    let n = rng.gen_range(1..=20_000).min(from.len());
    to.extend(from.drain(..n));
    true
}

impl World {
    fn new(kind: StreamKind, seed: u64) -> Self {
        let now = Instant::now();
        World {
            rng: StdRng::seed_from_u64(seed),
            now,
            client: FakeClient::new(kind),
            proxy: Proxy::new(now),
            origin: FakeOrigin::new(),
        }
    }

    /// Steps every party until no bytes move.
    fn run(&mut self) {
        for _ in 0..100_000 {
            self.client.step();
            self.proxy.step(self.now);
            self.origin.step();
            let r = &mut self.rng;
            let moved = deliver(r, &mut self.client.wire.out, &mut self.proxy.from_client)
                | deliver(r, &mut self.proxy.to_origin, &mut self.origin.wire.inbox)
                | deliver(r, &mut self.origin.wire.out, &mut self.proxy.from_origin)
                | deliver(r, &mut self.proxy.to_client, &mut self.client.wire.inbox);
            if !moved && self.proxy.from_client.is_empty() && self.proxy.from_origin.is_empty() {
                return;
            }
        }
        panic!("harness did not settle");
    }
}

fn summary(msgs: &[RtmpMessage]) -> Vec<(u32, u8, u32, Vec<u8>)> {
    msgs.iter()
        .map(|m| (m.timestamp, m.type_id, m.stream_id, m.payload.clone()))
        .collect()
}

#[test]
fn publish_flows_from_client_through_proxy_to_origin() {
    for seed in 0..4 {
        let mut w = World::new(StreamKind::Publish, seed);
        w.run();
        assert!(
            matches!(w.proxy.state, ProxyState::Relay { .. }),
            "seed {seed}"
        );
        assert_eq!(w.client.status_codes, ["NetStream.Publish.Start"]);
        assert_eq!(w.origin.names, [NAME], "the query reaches the origin");
        let got: Vec<RtmpMessage> = w
            .origin
            .received
            .iter()
            .filter(|m| m.type_id != TYPE_SET_CHUNK_SIZE)
            .cloned()
            .collect();
        assert_eq!(summary(&got), summary(&w.client.sent_media));
        assert_eq!(w.proxy.poll_timeout(), None, "no deadline during the relay");
    }
}

#[test]
fn play_flows_from_origin_through_proxy_to_client() {
    for seed in 0..4 {
        let mut w = World::new(StreamKind::Play, seed);
        w.run();
        assert!(matches!(w.proxy.state, ProxyState::Relay { .. }));
        // The proxy's own Reset (identify) and Start (accept), not the origin's.
        assert_eq!(
            w.client.status_codes,
            ["NetStream.Play.Reset", "NetStream.Play.Start"]
        );
        let got: Vec<RtmpMessage> = w
            .client
            .received
            .iter()
            .filter(|m| m.type_id != TYPE_SET_CHUNK_SIZE)
            .cloned()
            .collect();
        assert_eq!(summary(&got), summary(&w.origin.played));
    }
}

#[test]
fn origin_rejection_reaches_the_client_as_an_error_status() {
    let mut w = World::new(StreamKind::Publish, 7);
    w.origin.busy = true;
    w.run();
    assert!(matches!(w.proxy.state, ProxyState::Closed(None)));
    assert_eq!(w.client.status_codes, ["NetStream.Publish.BadName"]);
}

#[test]
fn silent_origin_trips_the_phase_timeout_in_virtual_time() {
    let mut w = World::new(StreamKind::Play, 8);
    w.origin.silent = true;
    w.run();
    assert!(matches!(w.proxy.state, ProxyState::Command { .. }));
    let deadline = w.proxy.poll_timeout().expect("a deadline while waiting");
    w.now += Duration::from_secs(9);
    w.proxy.handle_timeout(w.now);
    assert!(
        matches!(w.proxy.state, ProxyState::Command { .. }),
        "not yet"
    );
    w.now = deadline;
    w.proxy.handle_timeout(w.now);
    assert!(matches!(
        w.proxy.state,
        ProxyState::Closed(Some(RtmpError::Timeout(_)))
    ));
}

#[test]
fn client_that_never_connects_times_out_after_thirty_seconds() {
    let t0 = Instant::now();
    let mut proxy = Proxy::new(t0);
    proxy.from_client.extend_from_slice(&[3; 1537 + 1536]);
    proxy.step(t0);
    assert_eq!(proxy.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    proxy.handle_timeout(t0 + Duration::from_secs(30));
    assert!(matches!(
        proxy.state,
        ProxyState::Closed(Some(RtmpError::Timeout("command")))
    ));
}
