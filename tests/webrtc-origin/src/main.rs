//! `webrtc-test-origin`: a WebRTC **test peer** that stands in for an SRS origin in srs-proxy's
//! end-to-end tests. It is built on [str0m] (sans-IO WebRTC) and is *not* SRS: no RTMP, no
//! WebRTC-to-RTMP bridge, no HLS, no config file, no auth, no TURN/TCP candidates, no simulcast,
//! and only as much of SRS's HTTP API as a WHIP/WHEP proxy touches.
//!
//! What it copies from SRS, because that is what the proxy relies on
//! (`shared/spec/srs-proxy-behaviour.md` §3.2, §5.5, §5.6 and `shared/fixtures/webrtc/`):
//!
//! * **ICE-lite, one UDP socket for every session.** Incoming datagrams are demultiplexed with
//!   [`str0m::Rtc::accepts`]: STUN by the ICE ufrag in `USERNAME`, DTLS/SRTP by the remote address
//!   that STUN validated. The answer carries exactly one candidate,
//!   `a=candidate:… udp … <--candidate ip> <udp port> typ host`.
//! * **Address migration like SRS:** when a STUN binding request for a session arrives from a new
//!   address, media for that session goes to the new address from then on (str0m alone only moves
//!   an ICE-lite session on a `USE-CANDIDATE` request, which browsers and aiortc do not send after
//!   the first nomination; their consent checks do not carry it).
//! * **WHIP/WHEP:** `POST /rtc/v1/whip/?app=A&stream=S` (publish) and `POST /rtc/v1/whep/?…`
//!   (play), with the offer as the body, answer `201 Created`, `Content-Type: application/sdp`,
//!   `Location: /rtc/v1/whip/?action=delete&token=<n>&app=A&stream=S&session=<answer-ufrag>:<offer-ufrag>`;
//!   `DELETE` on that location answers `200` with an empty body and closes the session. The paths
//!   without the trailing slash are accepted too.
//! * **Legacy JSON API** (`POST /rtc/v1/publish/`, `POST /rtc/v1/play/`), request body
//!   `{"api":…,"streamurl":"webrtc://host/app/stream","sdp":"<offer>",…}`, answer `200`
//!   `{"code":0,"server":…,"service":…,"pid":…,"sdp":"<answer>","sessionid":"<answer-ufrag>:<offer-ufrag>"}`
//!   (the shape of SRS's `SrsGoApiRtcPublish`/`SrsGoApiRtcPlay`).
//! * **SFU:** frames from the WHIP publisher of (app, stream) go to every WHEP player of the same
//!   stream (str0m's chat-example pattern: same media kind, the player's own payload type). A
//!   player gets video from a keyframe on; until then the publisher is asked for one (PLI, else
//!   FIR) when the player connects and every second after.
//! * **Registration:** with `--register URL` it posts an SRS-shaped heartbeat (keys in SRS's order,
//!   a new TCP connection per beat, the reply ignored) every `--heartbeat-ms`.
//! * Sessions end after 30 s without a datagram (SRS's default `stun_timeout`), or on `DELETE`.
//!
//! Extra, for tests: `GET /stats` returns counters as JSON (sessions, per-session datagrams, RTP
//! packets and frames in and out, every remote address a session was reached from). On start it
//! prints `READY udp=<port> http=<port>` on stdout; logs go to stderr (`RUST_LOG` filters them).
//!
//! [str0m]: https://docs.rs/str0m

mod heartbeat;
mod http;
mod sfu;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

const USAGE: &str = "\
webrtc-test-origin: an ICE-lite WebRTC test origin shaped like SRS (a test peer, not SRS)

USAGE: webrtc-test-origin [OPTIONS]

  --listen IP             bind UDP and HTTP here (default 127.0.0.1)
  --udp-port N            WebRTC UDP port (default 0: ephemeral)
  --http-port N           HTTP API port (default 0: ephemeral)
  --candidate IP          host candidate IP in answers (default 127.0.0.1)
  --register URL          post an SRS heartbeat to URL (http://HOST:PORT/api/v1/srs/register)
  --heartbeat-ms N        heartbeat interval (default 1000)
  --server-id ID          heartbeat `server` and `service`, JSON API `server` (default webrtc-origin)
  --device-id ID          heartbeat `device_id` (default: the server id)
  --rtmp PORT             heartbeat `rtmp` entry (default: the UDP port number, where no TCP
                          listener is, so a misrouted RTMP client is refused, not hung)
  --session-timeout-ms N  close a session after N ms without a datagram (default 30000)
  -h, --help              this text

Prints `READY udp=<port> http=<port>` on stdout once serving.";

/// Command-line options (see [`USAGE`]).
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: IpAddr,
    pub udp_port: u16,
    pub http_port: u16,
    pub candidate: IpAddr,
    pub register: Option<String>,
    pub heartbeat: Duration,
    pub server_id: String,
    pub device_id: Option<String>,
    pub rtmp: Option<String>,
    pub session_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            udp_port: 0,
            http_port: 0,
            candidate: IpAddr::V4(Ipv4Addr::LOCALHOST),
            register: None,
            heartbeat: Duration::from_millis(1000),
            server_id: "webrtc-origin".to_string(),
            device_id: None,
            rtmp: None,
            session_timeout: Duration::from_secs(30),
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let bad = |what: &str, v: &str| format!("{flag}: {v:?} is not {what}");
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                o.listen = v.parse().map_err(|_| bad("an IP address", &v))?;
            }
            "--candidate" => {
                let v = value()?;
                o.candidate = v.parse().map_err(|_| bad("an IP address", &v))?;
            }
            "--udp-port" => {
                let v = value()?;
                o.udp_port = v.parse().map_err(|_| bad("a port", &v))?;
            }
            "--http-port" => {
                let v = value()?;
                o.http_port = v.parse().map_err(|_| bad("a port", &v))?;
            }
            "--register" => {
                let v = value()?;
                heartbeat::parse_url(&v).map_err(|e| format!("--register: {e}"))?;
                o.register = Some(v);
            }
            "--heartbeat-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| bad("a number of ms", &v))?;
                if ms == 0 {
                    return Err(bad("a positive number of ms", &v));
                }
                o.heartbeat = Duration::from_millis(ms);
            }
            "--session-timeout-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| bad("a number of ms", &v))?;
                if ms == 0 {
                    return Err(bad("a positive number of ms", &v));
                }
                o.session_timeout = Duration::from_millis(ms);
            }
            "--server-id" => o.server_id = value()?,
            "--device-id" => o.device_id = Some(value()?),
            "--rtmp" => o.rtmp = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.server_id.is_empty() {
        return Err("--server-id must not be empty".into());
    }
    Ok(Some(o))
}

fn init_log() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("webrtc_test_origin=info,str0m=warn,warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("webrtc-test-origin: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_log();
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> Result<(), String> {
    let udp = UdpSocket::bind(SocketAddr::new(options.listen, options.udp_port))
        .map_err(|e| format!("bind UDP {}:{}: {e}", options.listen, options.udp_port))?;
    let http = TcpListener::bind(SocketAddr::new(options.listen, options.http_port))
        .map_err(|e| format!("bind HTTP {}:{}: {e}", options.listen, options.http_port))?;
    let udp_port = udp.local_addr().map_err(|e| e.to_string())?.port();
    let http_port = http.local_addr().map_err(|e| e.to_string())?.port();
    let candidate = SocketAddr::new(options.candidate, udp_port);

    let identity = sfu::Identity {
        server: options.server_id.clone(),
        service: options.server_id.clone(),
        pid: std::process::id().to_string(),
    };
    let (commands, inbox) = mpsc::channel();
    let sfu = sfu::Sfu::new(
        udp,
        candidate,
        options.session_timeout,
        identity.clone(),
        inbox,
    )?;
    std::thread::Builder::new()
        .name("sfu".into())
        .spawn(move || sfu.run())
        .map_err(|e| format!("spawn the SFU thread: {e}"))?;

    if let Some(url) = &options.register {
        let beat = heartbeat::Heartbeat {
            url: url.clone(),
            interval: options.heartbeat,
            device_id: options
                .device_id
                .clone()
                .unwrap_or_else(|| options.server_id.clone()),
            // Where the proxy dials the API and the UDP port: the listen address, or the
            // candidate when listening on every interface.
            ip: if options.listen.is_unspecified() {
                options.candidate.to_string()
            } else {
                options.listen.to_string()
            },
            identity: identity.clone(),
            rtmp: options.rtmp.clone().unwrap_or_else(|| udp_port.to_string()),
            api_port: http_port,
            udp_port,
        };
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || beat.run())
            .map_err(|e| format!("spawn the heartbeat thread: {e}"))?;
    }

    tracing::info!(
        "serving: WebRTC UDP {}:{udp_port} (candidate {candidate}), HTTP {}:{http_port}, server {}",
        options.listen,
        options.listen,
        options.server_id
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY udp={udp_port} http={http_port}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);

    http::serve(http, commands, identity);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_documented_flags() {
        let o = parse_args(args(&[
            "--listen",
            "127.0.0.1",
            "--candidate",
            "127.0.0.2",
            "--register",
            "http://127.0.0.1:12025/api/v1/srs/register",
            "--heartbeat-ms",
            "250",
            "--server-id",
            "o2",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.candidate.to_string(), "127.0.0.2");
        assert_eq!(o.heartbeat, Duration::from_millis(250));
        assert_eq!(o.server_id, "o2");
        assert!(o.register.is_some());
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(parse_args(args(&["--listen"])).is_err());
        assert!(parse_args(args(&["--listen", "nope"])).is_err());
        assert!(parse_args(args(&["--heartbeat-ms", "0"])).is_err());
        assert!(parse_args(args(&["--register", "https://x/"])).is_err());
        assert!(parse_args(args(&["--bogus"])).is_err());
        assert!(parse_args(args(&["--help"])).unwrap().is_none());
    }
}
