//! Per-core startup and the glue between the executors and the proxy's services.
//!
//! Each core: joins the mesh, builds its load-balancer replica, binds every listener itself
//! (SO_REUSEPORT, no central accept), runs the accept loops, and on shutdown stops accepting,
//! closes its sessions and returns within the grace timeout.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use executors::{CoreContext, Mesh, ShutdownWatch};
use futures_lite::future;
use glommio::net::{TcpListener, TcpStream, UdpSocket};
use tracing::{debug, error, info, warn};

use crate::config::{Config, LoadBalancerType};
use crate::lb::{LbCore, LbMsg, Outbox};
use crate::metrics::{CoreMetrics, Metrics, Protocol};

/// Everything that crosses cores.
#[derive(Debug, Clone)]
pub enum CoreMsg {
    Lb(LbMsg),
}

/// The load balancer's way to other cores: the executors' mesh. A send never blocks the caller:
/// if the peer's queue is full, a task finishes the send.
pub struct MeshOutbox {
    mesh: Mesh<CoreMsg>,
    core: usize,
    cores: usize,
}

impl Outbox for MeshOutbox {
    fn send(&self, core: usize, msg: LbMsg) {
        if let Err(e) = self.mesh.try_send_to(core, CoreMsg::Lb(msg.clone())) {
            debug!("mesh queue to core {core} busy ({e}), sending from a task");
            let mesh = self.mesh.clone();
            glommio::spawn_local(async move {
                if let Err(e) = mesh.send_to(core, CoreMsg::Lb(msg)).await {
                    warn!("mesh send to core {core} failed: {e}");
                }
            })
            .detach();
        }
    }
    fn broadcast(&self, msg: LbMsg) {
        for core in 0..self.cores {
            if core != self.core {
                self.send(core, msg.clone());
            }
        }
    }
}

pub type Lb = LbCore<MeshOutbox>;

/// One core's view of the proxy.
pub struct CoreState {
    pub core: usize,
    pub cores: usize,
    pub config: Arc<Config>,
    pub lb: Rc<Lb>,
    pub metrics: Arc<CoreMetrics>,
    pub all_metrics: Arc<Metrics>,
    pub shutdown: ShutdownWatch,
    pub started: Instant,
    /// Open client sessions on this core, to wait for at shutdown.
    pub sessions: Cell<usize>,
    /// The process-wide WebRTC session table (ICE ufrag → origin and media session).
    pub rtc: Arc<crate::webrtc::table::RtcTable>,
}

/// Counts an open session for graceful shutdown.
pub struct SessionCount(Rc<CoreState>);

impl SessionCount {
    pub fn new(st: &Rc<CoreState>) -> Self {
        st.sessions.set(st.sessions.get() + 1);
        SessionCount(st.clone())
    }
}

impl Drop for SessionCount {
    fn drop(&mut self) {
        self.0.sessions.set(self.0.sessions.get() - 1);
    }
}

/// Binds `addr` or exits the process with one line naming the variable (spec §2.2: bind failures
/// are fatal here, for every server, §10 #17).
fn bind_tcp(var: &str, addr: SocketAddr) -> TcpListener {
    match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            // A host without IPv6: fall back to IPv4 any.
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            TcpListener::bind(v4).unwrap_or_else(|e2| fatal_bind(var, addr, &format!("{e}; {e2}")))
        }
        Err(e) => fatal_bind(var, addr, &e.to_string()),
    }
}

/// [`bind_tcp`] for UDP servers (glommio sets SO_REUSEPORT: every core binds the same port).
fn bind_udp(var: &str, addr: SocketAddr) -> UdpSocket {
    let sock = match UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            UdpSocket::bind(v4).unwrap_or_else(|e2| fatal_bind(var, addr, &format!("{e}; {e2}")))
        }
        Err(e) => fatal_bind(var, addr, &e.to_string()),
    };
    grow_receive_buffer(var, &sock);
    sock
}

/// Receive queue of each UDP listener. Media arrives in bursts (a video frame is tens of
/// datagrams); the kernel's default (~208 KB, ~170 datagrams of 1,200 bytes for all clients of
/// a core) overflows while the core is busy for a moment.
const UDP_RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// Raises the listener's receive buffer: `SO_RCVBUFFORCE` (root or CAP_NET_ADMIN) past
/// `net.core.rmem_max`, else `SO_RCVBUF` up to it. Best effort: a failure only logs.
fn grow_receive_buffer(var: &str, sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let set = |opt: libc::c_int| {
        // SAFETY: `fd` is a valid socket; the option value is a c_int of the size passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&UDP_RECEIVE_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    if !set(libc::SO_RCVBUFFORCE) && !set(libc::SO_RCVBUF) {
        debug!(
            "{var}: cannot raise the UDP receive buffer: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn fatal_bind(var: &str, addr: SocketAddr, err: &str) -> ! {
    error!("{var}={addr}: cannot listen: {err}. Free the port or set {var} to another port");
    eprintln!("srs-proxy: {var}={addr}: cannot listen: {err}. Free the port or set {var} to another port.");
    std::process::exit(255);
}

/// The body of one core.
pub async fn run_core(
    ctx: CoreContext<CoreMsg>,
    config: Arc<Config>,
    all_metrics: Arc<Metrics>,
    default_backend: Option<crate::lb::Origin>,
    rtc: Arc<crate::webrtc::table::RtcTable>,
) {
    let core = ctx.core;
    let mut lb = LbCore::new(
        core,
        ctx.cores,
        config.origin_server_ttl,
        MeshOutbox {
            mesh: ctx.mesh.clone(),
            core,
            cores: ctx.cores,
        },
        all_metrics.core(core).clone(),
    );
    if config.load_balancer == LoadBalancerType::Redis {
        lb = lb.with_redis(Rc::new(crate::lb::redis::RedisStore::for_core(
            &config.redis,
            all_metrics.core(core).clone(),
        )));
    }
    let lb = Rc::new(lb);
    if let Some(origin) = default_backend {
        // Every core builds the same default backend itself: no broadcast needed.
        lb.install(origin);
    }
    // Redis mode: one core reads the other proxies' origins and stores the default backend.
    let redis_upkeep = if core == 0 {
        crate::lb::redis::spawn_upkeep(&lb)
    } else {
        Vec::new()
    };
    let st = Rc::new(CoreState {
        core,
        cores: ctx.cores,
        config: config.clone(),
        lb: lb.clone(),
        metrics: all_metrics.core(core).clone(),
        all_metrics: all_metrics.clone(),
        shutdown: ctx.shutdown.clone(),
        started: Instant::now(),
        sessions: Cell::new(0),
        rtc,
    });

    // Mesh receiver: every cross-core message lands here.
    let mesh = ctx.mesh.clone();
    let lb_rx = lb.clone();
    let receiver = glommio::spawn_local(async move {
        while let Some((from, msg)) = mesh.recv().await {
            match msg {
                CoreMsg::Lb(m) => lb_rx.handle(from, m),
            }
        }
    })
    .detach();

    // Upkeep: pin expiry and touches.
    let lb_sweep = lb.clone();
    let sweeper = glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(Duration::from_secs(30)).await;
            let dropped = lb_sweep.sweep(Instant::now());
            if dropped > 0 {
                debug!("expired {dropped} idle stream pins");
            }
        }
    })
    .detach();

    let rtmp = bind_tcp("PROXY_RTMP_SERVER", config.rtmp_server.addr);
    let system = bind_tcp("PROXY_SYSTEM_API", config.system_api.addr);
    let http_api = bind_tcp("PROXY_HTTP_API", config.http_api.addr);
    let http_server = bind_tcp("PROXY_HTTP_SERVER", config.http_server.addr);
    let srt = bind_udp("PROXY_SRT_SERVER", config.srt_server.addr);
    let webrtc = bind_udp("PROXY_WEBRTC_SERVER", config.webrtc_server.addr);
    if core == 0 {
        info!(
            "listening: rtmp={} system_api={} http_api={} http_server={} srt(udp)={} webrtc(udp)={} on {} cores",
            config.rtmp_server.addr,
            config.system_api.addr,
            config.http_api.addr,
            config.http_server.addr,
            config.srt_server.addr,
            config.webrtc_server.addr,
            ctx.cores
        );
    }

    let loops = vec![
        accept_loop(st.clone(), rtmp, Protocol::Rtmp, |s, st, peer| {
            Box::pin(crate::session::rtmp::serve(s, peer, st))
        }),
        accept_loop(st.clone(), system, Protocol::SystemApi, |s, st, peer| {
            Box::pin(crate::api::serve(s, peer, st, crate::api::Port::System))
        }),
        accept_loop(st.clone(), http_api, Protocol::HttpApi, |s, st, peer| {
            Box::pin(crate::api::serve(s, peer, st, crate::api::Port::HttpApi))
        }),
        accept_loop(
            st.clone(),
            http_server,
            Protocol::HttpStream,
            |s, st, peer| Box::pin(crate::http::serve(s, peer, st)),
        ),
    ];
    let mut tasks: Vec<_> = loops
        .into_iter()
        .map(|f| glommio::spawn_local(f).detach())
        .collect();
    // SRT: one UDP receive loop per core; it stops by itself on shutdown.
    tasks.push(glommio::spawn_local(crate::session::srt::serve(st.clone(), srt)).detach());
    // WebRTC media: the same, on the WebRTC port.
    tasks.push(glommio::spawn_local(crate::webrtc::media::serve(st.clone(), webrtc)).detach());

    ctx.shutdown.wait().await;
    info!(
        "core {core}: shutting down, {} sessions open",
        st.sessions.get()
    );
    for t in &tasks {
        t.cancel();
    }
    // Sessions watch the shutdown signal themselves and close; wait for them, bounded by the
    // grace timeout.
    let deadline = Instant::now() + config.grace_quit_timeout;
    while st.sessions.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    if st.sessions.get() > 0 {
        warn!(
            "core {core}: {} sessions still open after the grace timeout {:?}",
            st.sessions.get(),
            config.grace_quit_timeout
        );
    }
    receiver.cancel();
    sweeper.cancel();
    for t in redis_upkeep {
        t.cancel();
    }
}

type SessionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

async fn accept_loop(
    st: Rc<CoreState>,
    listener: TcpListener,
    protocol: Protocol,
    serve: fn(TcpStream, Rc<CoreState>, SocketAddr) -> SessionFuture,
) {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            st.shutdown.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                // EMFILE and friends: log, back off a little, keep serving.
                warn!("{} accept failed: {e}", protocol.label());
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = match stream.peer_addr() {
            Ok(p) => p,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let count = SessionCount::new(&st);
        let fut = serve(stream, st.clone(), peer);
        glommio::spawn_local(async move {
            fut.await;
            drop(count);
        })
        .detach();
    }
}

/// Checks, before the executors start, that no other process holds one of our TCP ports. The
/// executors bind with SO_REUSEPORT, which would otherwise let a second proxy (or anything else
/// with SO_REUSEPORT) share a port silently and split the traffic. Err: one line naming the
/// variable and the fix.
pub fn probe_tcp_listeners(config: &Config) -> Result<(), String> {
    let listeners = [
        ("PROXY_RTMP_SERVER", &config.rtmp_server),
        ("PROXY_SYSTEM_API", &config.system_api),
        ("PROXY_HTTP_API", &config.http_api),
        ("PROXY_HTTP_SERVER", &config.http_server),
    ];
    for (var, listen) in listeners {
        let addr = listen.addr;
        let res = std::net::TcpListener::bind(addr).or_else(|e| {
            if addr.ip().is_unspecified()
                && addr.is_ipv6()
                && e.kind() != std::io::ErrorKind::AddrInUse
            {
                std::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
            } else {
                Err(e)
            }
        });
        if let Err(e) = res {
            return Err(format!(
                "{var}={} ({addr}): cannot listen: {e}. Stop what holds the port (ss -ltnp 'sport = :{}') or set {var} to another port",
                listen.raw,
                addr.port()
            ));
        }
    }
    Ok(())
}

/// [`probe_tcp_listeners`] for the UDP servers the proxy serves (`PROXY_SRT_SERVER`,
/// `PROXY_WEBRTC_SERVER`): a plain bind (no SO_REUSEPORT) fails while anything else holds the
/// port.
pub fn probe_udp_listeners(config: &Config) -> Result<(), String> {
    let listeners = [
        ("PROXY_SRT_SERVER", &config.srt_server),
        ("PROXY_WEBRTC_SERVER", &config.webrtc_server),
    ];
    for (var, listen) in listeners {
        let addr = listen.addr;
        let res = std::net::UdpSocket::bind(addr).or_else(|e| {
            if addr.ip().is_unspecified()
                && addr.is_ipv6()
                && e.kind() != std::io::ErrorKind::AddrInUse
            {
                std::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
            } else {
                Err(e)
            }
        });
        if let Err(e) = res {
            return Err(format!(
                "{var}={} ({addr}): cannot listen (udp): {e}. Stop what holds the port (ss -lunp 'sport = :{}') or set {var} to another port",
                listen.raw,
                addr.port()
            ));
        }
    }
    Ok(())
}
