//! srs-proxy benchmarks (run by `make bench`): RTMP fan-out against direct and L4-relay
//! baselines, idle-connection memory, registration API cost, and an in-process relay microbench.
//! Results are printed and written into `bench/RESULTS.md` (one marked section per bench).

mod fanout;
mod httpbench;
mod idle;
mod micro;
mod peers;
mod player;
mod redis_setup;
mod register;
mod scale;
mod srt;
mod util;
mod webrtc;

use std::path::PathBuf;
use std::time::Duration;

use util::{machine_facts, Result};

const USAGE: &str = "\
usage: bench [SUBCOMMAND] [FLAGS]

subcommands (default: all):
  all                run every bench below
  rtmp-fanout        1 publisher → K players: direct vs HAProxy (vs nginx stream) vs srs-proxy
  rtmp-idle-memory   bytes per idle RTMP connection (silent / after handshake), proxy vs HAProxy
  register-api       wrk on POST /api/v1/srs/register: req/s and proxy CPU-µs per request
  relay-micro        in-process RelayDirection::process ns per MB
  http-flv-fanout    1 stream → K HTTP-FLV readers: direct vs nginx proxy vs HAProxy vs srs-proxy
  hls-rate           wrk playlist+segment mix: srs-proxy (1 core) vs nginx proxy (1 worker)
  srt-relay          one high-bitrate SRT stream: direct vs nginx stream UDP vs srs-proxy
  redis-setup        session-setup time (RTMP play, HTTP-FLV GET) with the Redis LB vs the memory
                     LB vs the origin, and Redis round trips per setup
  webrtc-relay       many WebRTC UDP sessions into a mock origin: direct vs nginx stream UDP
                     vs srs-proxy (WHIP + STUN first): packets per core-second, loss, latency
  rtmp-scale         (not in `all`; for many-core machines, needs no peer) RTMP relay throughput
                     per core at several PROXY_CORES against an in-bench mock origin

flags:
  --players K          fan-out players (50)
  --reps N             repetitions, medians reported (3)
  --window S           fan-out measurement window in seconds (10)
  --warmup S           fan-out warm-up after all players got media (2)
  --chunk-sizes A,B    origin chunk sizes (4096,60000)
  --bitrate KBPS       source video bitrate (6000)
  --proxy-cores N      proxy cores for fan-out/register (2)
  --haproxy-threads N  HAProxy nbthread for fan-out/idle/http (online CPUs)
  --proxy-pin on|off   srs-proxy PROXY_PIN_CORES for every bench (on)
  --proxy-wake-coalesce D  srs-proxy PROXY_WAKE_COALESCE for every bench (its default)
  --perf               perf record each relay during its fan-out / srt-relay / webrtc-relay window
                       (target/bench-cache)
  --no-nginx-stream    skip nginx stream even if libnginx-mod-stream is installed
  --conns M            idle connections (1000)
  --idle-cores A,B     proxy cores for the idle bench (1,2)
  --register-secs S    wrk duration (10)
  --register-cores A,B register-api proxy PROXY_CORES, every load at each (1,2)
  --readers K          HTTP-FLV readers (50)
  --hls-secs S         hls-rate wrk duration (8)
  --hls-conns C        hls-rate wrk connections (16)
  --alt-relay MODE     http-flv-fanout also runs srs-proxy with PROXY_HTTP_RELAY=MODE (copy;
                       `none` skips it)
  --srt-bitrate KBPS   srt-relay source video bitrate (40000)
  --setups N           redis-setup: setups per case, target and rep (60)
  --rtc-sessions N     webrtc-relay media sessions, one client socket each (64)
  --rtc-rate PPS       webrtc-relay aggregate datagrams/s, paced; 0 = as fast as possible (50000)
  --rtc-size BYTES     webrtc-relay datagram size (1200)
  --rtc-tick-us A,B    webrtc-relay generator ticks, one set of runs each: what the rate owes
                       goes out every A µs (1000,200)
  --rtc-proxy-cores A,B  webrtc-relay srs-proxy PROXY_CORES, one path each (1,2)
  --rtc-window S       webrtc-relay measurement window (10; warm-up 2)
  --rtc-nginx-responses N  add `proxy_responses N;` to webrtc-relay's nginx (default: none)
  --scale-cores A,B    rtmp-scale proxy core counts (1,2,4,8,14; those ≥ nproc are skipped)
  --players-per-core K rtmp-scale players per proxy core (8)
  --quick              short smoke run: 10 players, 1 rep, 4 s windows, 300 conns
  --no-results         print only; do not touch bench/RESULTS.md
";

struct Opts {
    cmd: String,
    fanout: fanout::FanoutOpts,
    idle: idle::IdleOpts,
    register: register::RegisterOpts,
    http: httpbench::HttpOpts,
    srt: srt::SrtOpts,
    setup: redis_setup::SetupOpts,
    rtc: webrtc::RtcOpts,
    scale: scale::ScaleOpts,
    write_results: bool,
    args: String,
}

fn parse() -> Result<Opts> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nproc = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut o = Opts {
        cmd: "all".into(),
        fanout: fanout::FanoutOpts {
            players: 50,
            reps: 3,
            window: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            chunk_sizes: vec![4096, 60000],
            source: peers::SourceSpec {
                bitrate_kbps: 6000,
                seconds: 30,
                size: "1280x720".into(),
            },
            proxy_cores: 2.min(nproc),
            haproxy_threads: nproc,
            nginx_stream: true,
            stagger: Duration::from_millis(10),
            perf: false,
        },
        idle: idle::IdleOpts {
            conns: 1000,
            reps: 3,
            proxy_cores: vec![1, 2.min(nproc)],
            haproxy_threads: nproc,
        },
        register: register::RegisterOpts {
            secs: 10,
            reps: 3,
            loads: vec![(1, 16), (2, 64)],
            proxy_cores: vec![1, 2.min(nproc)],
        },
        http: httpbench::HttpOpts {
            readers: 50,
            reps: 3,
            window: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            source: peers::SourceSpec {
                bitrate_kbps: 6000,
                seconds: 30,
                size: "1280x720".into(),
            },
            hls_source: peers::SourceSpec {
                bitrate_kbps: 1000,
                seconds: 30,
                size: "640x360".into(),
            },
            proxy_cores: 2.min(nproc),
            haproxy_threads: nproc,
            nginx_workers: nproc,
            stagger: Duration::from_millis(10),
            hls_secs: 8,
            hls_conns: 16,
            alt_relay: Some("copy".into()),
        },
        srt: srt::SrtOpts {
            reps: 3,
            window: Duration::from_secs(15),
            warmup: Duration::from_secs(3),
            source: peers::SourceSpec {
                bitrate_kbps: 40000,
                seconds: 20,
                size: "1280x720".into(),
            },
            proxy_cores: 1,
            perf: false,
        },
        setup: redis_setup::SetupOpts {
            setups: 60,
            reps: 3,
            proxy_cores: 2.min(nproc),
        },
        rtc: webrtc::RtcOpts {
            reps: 3,
            window: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            sessions: 64,
            rate: 50_000,
            size: 1200,
            ticks: vec![Duration::from_millis(1), Duration::from_micros(200)],
            proxy_cores: vec![1, 2.min(nproc)],
            nginx: true,
            nginx_responses: None,
            perf: false,
        },
        scale: scale::ScaleOpts {
            cores: vec![1, 2, 4, 8, 14],
            ..scale::ScaleOpts::default()
        },
        write_results: true,
        args: args.join(" "),
    };
    let mut it = args.into_iter();
    let num = |v: Option<String>, f: &str| -> Result<u64> {
        v.ok_or(format!("{f} needs a value"))?
            .parse()
            .map_err(|e| format!("{f}: {e}"))
    };
    let list = |v: Option<String>, f: &str| -> Result<Vec<u64>> {
        v.ok_or(format!("{f} needs a value"))?
            .split(',')
            .map(|x| x.trim().parse().map_err(|e| format!("{f}: {e}")))
            .collect()
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "all" | "rtmp-fanout" | "rtmp-idle-memory" | "register-api" | "relay-micro"
            | "http-flv-fanout" | "hls-rate" | "srt-relay" | "redis-setup" | "webrtc-relay"
            | "rtmp-scale" => o.cmd = a,
            "--setups" => o.setup.setups = num(it.next(), &a)?.max(1) as usize,
            "--srt-bitrate" => o.srt.source.bitrate_kbps = num(it.next(), &a)?.max(100) as u32,
            "--players" => o.fanout.players = num(it.next(), &a)?.max(1) as usize,
            "--reps" => {
                let n = num(it.next(), &a)?.max(1) as usize;
                o.fanout.reps = n;
                o.idle.reps = n;
                o.register.reps = n;
                o.http.reps = n;
                o.srt.reps = n;
                o.setup.reps = n;
                o.rtc.reps = n;
                o.scale.reps = n;
            }
            "--scale-cores" => {
                o.scale.cores = list(it.next(), &a)?
                    .into_iter()
                    .map(|x| x.max(1) as usize)
                    .collect()
            }
            "--players-per-core" => o.scale.players_per_core = num(it.next(), &a)?.max(1) as usize,
            "--rtc-sessions" => o.rtc.sessions = num(it.next(), &a)?.clamp(1, 10_000) as usize,
            "--rtc-rate" => o.rtc.rate = num(it.next(), &a)?,
            "--rtc-size" => o.rtc.size = num(it.next(), &a)?.clamp(16, 1472) as usize,
            "--rtc-proxy-cores" => {
                let mut c: Vec<usize> = list(it.next(), &a)?
                    .into_iter()
                    .map(|x| x.max(1) as usize)
                    .collect();
                c.dedup();
                o.rtc.proxy_cores = c;
            }
            "--rtc-tick-us" => {
                o.rtc.ticks = list(it.next(), &a)?
                    .into_iter()
                    .map(|us| Duration::from_micros(us.clamp(50, 100_000)))
                    .collect()
            }
            "--rtc-window" => o.rtc.window = Duration::from_secs(num(it.next(), &a)?.max(1)),
            "--rtc-nginx-responses" => o.rtc.nginx_responses = Some(num(it.next(), &a)?),
            "--readers" => o.http.readers = num(it.next(), &a)?.max(1) as usize,
            "--hls-secs" => o.http.hls_secs = num(it.next(), &a)?.max(1),
            "--alt-relay" => {
                let m = it.next().ok_or("--alt-relay needs a value")?;
                o.http.alt_relay = (m != "none").then_some(m);
            }
            "--hls-conns" => o.http.hls_conns = num(it.next(), &a)?.max(1) as usize,
            "--window" => {
                o.fanout.window = Duration::from_secs(num(it.next(), &a)?.max(1));
                o.http.window = o.fanout.window;
                o.scale.window = o.fanout.window;
            }
            "--warmup" => {
                o.fanout.warmup = Duration::from_secs(num(it.next(), &a)?);
                o.http.warmup = o.fanout.warmup;
                o.scale.warmup = o.fanout.warmup;
            }
            "--chunk-sizes" => {
                o.fanout.chunk_sizes = list(it.next(), &a)?.into_iter().map(|x| x as u32).collect()
            }
            "--bitrate" => o.fanout.source.bitrate_kbps = num(it.next(), &a)? as u32,
            "--proxy-pin" => match it.next().as_deref() {
                Some("on") => peers::set_proxy_pin(true),
                Some("off") => peers::set_proxy_pin(false),
                other => return Err(format!("--proxy-pin: {other:?}: use on or off")),
            },
            "--proxy-wake-coalesce" => match it.next() {
                Some(v) if !v.is_empty() => peers::set_proxy_wake_coalesce(v),
                _ => return Err("--proxy-wake-coalesce: give a Go duration, e.g. 200us".into()),
            },
            "--haproxy-threads" => {
                let n = num(it.next(), &a)?.max(1) as usize;
                o.fanout.haproxy_threads = n;
                o.idle.haproxy_threads = n;
                o.http.haproxy_threads = n;
            }
            "--proxy-cores" => {
                let c = num(it.next(), &a)?.max(1) as usize;
                o.fanout.proxy_cores = c;
                o.register.proxy_cores = vec![c];
                o.http.proxy_cores = c;
                o.setup.proxy_cores = c;
            }
            "--perf" => {
                o.fanout.perf = true;
                o.rtc.perf = true;
                o.srt.perf = true;
            }
            "--no-nginx-stream" => {
                o.fanout.nginx_stream = false;
                o.rtc.nginx = false;
            }
            "--conns" => o.idle.conns = num(it.next(), &a)?.max(1) as usize,
            "--idle-cores" => {
                o.idle.proxy_cores = list(it.next(), &a)?
                    .into_iter()
                    .map(|x| x as usize)
                    .collect()
            }
            "--register-secs" => o.register.secs = num(it.next(), &a)?.max(1),
            "--register-cores" => {
                o.register.proxy_cores = list(it.next(), &a)?
                    .into_iter()
                    .map(|x| (x as usize).max(1))
                    .collect()
            }
            "--quick" => {
                o.fanout.players = 10;
                o.fanout.reps = 1;
                o.fanout.window = Duration::from_secs(4);
                o.fanout.warmup = Duration::from_secs(1);
                o.idle.conns = 300;
                o.idle.reps = 1;
                o.register.reps = 1;
                o.register.secs = 4;
                o.http.readers = 10;
                o.http.reps = 1;
                o.http.window = Duration::from_secs(4);
                o.http.warmup = Duration::from_secs(1);
                o.http.hls_secs = 3;
                o.srt.reps = 1;
                o.srt.window = Duration::from_secs(5);
                o.srt.warmup = Duration::from_secs(1);
                o.setup.setups = 10;
                o.setup.reps = 1;
                o.rtc.reps = 1;
                o.rtc.window = Duration::from_secs(4);
                o.rtc.warmup = Duration::from_secs(1);
            }
            "--no-results" => o.write_results = false,
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(o)
}

fn results_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md"))
}

/// Replaces (or appends) the section between `<!-- BEGIN id -->` and `<!-- END id -->`.
fn update_section(doc: &str, id: &str, body: &str) -> String {
    let begin = format!("<!-- BEGIN {id} -->");
    let end = format!("<!-- END {id} -->");
    let block = format!("{begin}\n{body}\n{end}");
    if let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end)) {
        if b < e {
            return format!("{}{block}{}", &doc[..b], &doc[e + end.len()..]);
        }
    }
    let mut out = doc.trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(&block);
    out.push('\n');
    out
}

fn publish(o: &Opts, id: &str, title: &str, md: &str) {
    let body = format!(
        "### {title}\n\n_{}; `bench {}`_\n\n{md}",
        machine_facts(),
        if o.args.is_empty() { "all" } else { &o.args }
    );
    println!("\n{body}");
    if !o.write_results {
        return;
    }
    let path = results_path();
    let doc =
        std::fs::read_to_string(&path).unwrap_or_else(|_| "# srs-proxy bench results\n".into());
    if let Err(e) = std::fs::write(&path, update_section(&doc, id, &body)) {
        eprintln!("[bench] cannot write {}: {e}", path.display());
    }
}

fn real_main() -> Result<()> {
    let o = parse()?;
    util::install_sigint();
    let nofile = util::raise_nofile();
    if (nofile as usize) < o.idle.conns * 3 + 1000 {
        eprintln!("[bench] warning: RLIMIT_NOFILE is {nofile}; the idle bench may run out of fds");
    }
    let all = o.cmd == "all";
    if all || o.cmd == "relay-micro" {
        let md = micro::run(&o.fanout.chunk_sizes, Duration::from_millis(500))?;
        publish(
            &o,
            "relay-micro",
            "relay-micro: RelayDirection::process",
            &md,
        );
    }
    if all || o.cmd == "rtmp-fanout" {
        for v in fanout::run(&o.fanout)? {
            publish(
                &o,
                &format!("rtmp-fanout-{}", v.chunk_size),
                &format!("rtmp-fanout, origin chunk_size {}", v.chunk_size),
                &v.markdown,
            );
        }
    }
    if all || o.cmd == "rtmp-idle-memory" {
        let md = idle::run(&o.idle)?;
        publish(&o, "rtmp-idle-memory", "rtmp-idle-memory", &md);
    }
    if all || o.cmd == "register-api" {
        let md = register::run(&o.register)?;
        publish(&o, "register-api", "register-api", &md);
    }
    if all || o.cmd == "http-flv-fanout" {
        let md = httpbench::flv_fanout(&o.http)?;
        publish(&o, "http-flv-fanout", "http-flv-fanout", &md);
    }
    if all || o.cmd == "hls-rate" {
        let md = httpbench::hls_rate(&o.http)?;
        publish(&o, "hls-rate", "hls-rate", &md);
    }
    if all || o.cmd == "srt-relay" {
        let md = srt::run(&o.srt)?;
        publish(&o, "srt-relay", "srt-relay", &md);
    }
    if all || o.cmd == "redis-setup" {
        let md = redis_setup::run(&o.setup)?;
        publish(
            &o,
            "redis-setup",
            "redis-setup: session setup with the Redis load balancer",
            &md,
        );
    }
    if all || o.cmd == "webrtc-relay" {
        let md = webrtc::run(&o.rtc)?;
        publish(&o, "webrtc-relay", "webrtc-relay", &md);
    }
    if o.cmd == "rtmp-scale" {
        let md = scale::run(&o.scale)?;
        publish(
            &o,
            "rtmp-scale",
            "rtmp-scale: throughput per core by PROXY_CORES",
            &md,
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sections_replace_and_append() {
        let d = super::update_section("# t\n", "a", "one");
        assert!(d.contains("<!-- BEGIN a -->\none\n<!-- END a -->"));
        let d2 = super::update_section(&d, "a", "two");
        assert!(d2.contains("two") && !d2.contains("one"));
        let d3 = super::update_section(&d2, "b", "x");
        assert!(d3.contains("two") && d3.contains("<!-- BEGIN b -->"));
    }
}
