//! The `srs-proxy` binary: read the configuration, check the machine, run one executor per core.

use std::process::exit;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use srs_proxy::config::{Config, LoadBalancerType};
use srs_proxy::lb::redis::ClientConfig;
use srs_proxy::lb::Origin;
use srs_proxy::metrics::Metrics;
use srs_proxy::runtime::{run_core, CoreMsg};
use tracing::{error, info};
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Startup failures exit like the Go proxy's (`os.Exit(-1)`, spec §6.4).
const EXIT_STARTUP: i32 = 255;

fn fatal(msg: impl std::fmt::Display) -> ! {
    // Logged (for log collectors) and printed plainly (for a person at a terminal).
    error!("{msg}");
    eprintln!("srs-proxy: {msg}");
    exit(EXIT_STARTUP);
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // As the Go proxy: debug/info to stdout, warn/error to stderr (spec §6.5).
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_thread_names(false)
        .init();
}

fn default_backend(config: &Config) -> Option<Origin> {
    let d = config.default_backend.as_ref()?;
    let cid = srs_proxy::cid::new_cid();
    let list = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    let json = serde_json::json!({
        "ip": d.ip, "server": format!("default-{cid}"), "service": cid,
        "pid": std::process::id().to_string(), "rtmp": [d.rtmp],
        "http": list(&d.http), "api": list(&d.api), "rtc": list(&d.rtc), "srt": list(&d.srt),
    });
    let reg = srs_proxy::api::register::parse_registration(json.to_string().as_bytes())
        .unwrap_or_else(|e| fatal(format!("PROXY_DEFAULT_BACKEND_*: {e}")));
    let mut origin = Origin::from_registration(&reg, SystemTime::now(), Instant::now());
    origin.is_default = true;
    Some(origin)
}

fn main() {
    let online = executors::online_cpus();
    let (config, dotenv) = match Config::from_env(online) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("srs-proxy: {e}");
            exit(EXIT_STARTUP);
        }
    };
    init_logging(&config.log_level);
    info!(
        "srs-proxy {} ({}/{}) starting, pid={}",
        srs_proxy::version::BUILD,
        srs_proxy::version::SIGNATURE,
        srs_proxy::version::VERSION,
        std::process::id()
    );
    if dotenv.found {
        info!(
            "load .env file {}, lines={}, applied={:?}, kept from the environment={:?}",
            dotenv.path.display(),
            dotenv.lines,
            dotenv.applied,
            dotenv.kept_from_env
        );
        if !dotenv.ignored_lines.is_empty() {
            tracing::warn!(
                ".env file {}: lines {:?} are not KEY=VALUE and were ignored",
                dotenv.path.display(),
                dotenv.ignored_lines
            );
        }
    } else {
        info!("no .env file found at {}, skipping", dotenv.path.display());
    }
    info!("effective config: {}", config.redacted_summary());
    if let Some(addr) = &config.go_pprof {
        tracing::warn!("GO_PPROF={addr} is ignored: this proxy has no pprof server (use /metrics on the system API, and perf for profiles)");
    }
    if let Err(e) = config.validate_static_dir() {
        fatal(e);
    }
    if config.load_balancer == LoadBalancerType::Redis {
        // As Go: an unreachable Redis at startup is fatal (spec §2.1); at run time it is not.
        let redis = ClientConfig::from_config(&config.redis);
        match srs_proxy::lb::redis::check_blocking(&redis) {
            Ok(()) => info!(
                "redis load balancer: {} db {} reachable",
                redis.addr(),
                redis.db
            ),
            Err(e) => fatal(format!(
                "PROXY_LOAD_BALANCER_TYPE=redis: unable to connect to redis: {e}"
            )),
        }
    }

    if let Err(e) = srs_proxy::runtime::probe_tcp_listeners(&config) {
        fatal(e);
    }
    if let Err(e) = srs_proxy::runtime::probe_udp_listeners(&config) {
        fatal(e);
    }

    let shutdown = match executors::Shutdown::install() {
        Ok(s) => s,
        Err(e) => fatal(format!("cannot install the SIGINT/SIGTERM handler: {e}")),
    };
    if let Err(e) = shutdown.arm_force_quit(config.force_quit_timeout) {
        fatal(format!("cannot start the force-quit timer: {e}"));
    }

    let pool = executors::PoolConfig {
        cores: config.cores,
        pin: config.pin_cores,
        wake_coalesce: config.wake_coalesce,
        sched_batch: config.sched_batch,
        io_memory_bytes: 128 * 1024,
        name: "srs-proxy".to_string(),
        mesh_capacity: 4096,
    };
    if let Err(e) = executors::preflight(&pool) {
        fatal(e);
    }

    let metrics = Metrics::new(config.cores);
    let backend = Arc::new(default_backend(&config));
    let config = Arc::new(config);
    let rtc = Arc::new(srs_proxy::webrtc::table::RtcTable::default());
    let result = executors::run_pool(
        pool,
        shutdown.clone(),
        move |ctx: executors::CoreContext<CoreMsg>| {
            run_core(
                ctx,
                config.clone(),
                metrics.clone(),
                (*backend).as_ref().map(Origin::duplicate),
                rtc.clone(),
            )
        },
    );
    match result {
        Ok(()) => info!("SRSProxy done"),
        Err(e) => fatal(format!("executor failed: {e}")),
    }
}
