//! `register-api`: `wrk` with keep-alive POSTing the SRS heartbeat to `/api/v1/srs/register`;
//! requests/s and the proxy's CPU-µs per request (its utime+stime over the run / requests).

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::fanout::verdict;
use crate::peers::{register_body, SrsProxy};
use crate::util::{cpu_seconds, fmt, median, require_program, tail_file, Proc, Result, TempDir};

#[derive(Debug, Clone)]
pub struct RegisterOpts {
    pub secs: u64,
    pub reps: usize,
    /// (wrk threads, connections)
    pub loads: Vec<(usize, usize)>,
    /// Every load runs against a proxy with each of these `PROXY_CORES`: wrk shares the machine,
    /// so on a small one a proxy with as many executors as CPUs time-shares them with wrk.
    pub proxy_cores: Vec<usize>,
}

/// Parses wrk's "N requests in Xs" and "Non-2xx or 3xx responses: M".
pub fn parse_wrk(text: &str) -> Option<(u64, u64, f64)> {
    let line = text.lines().find(|l| l.contains(" requests in "))?;
    let mut it = line.split_whitespace();
    let reqs: u64 = it.next()?.parse().ok()?;
    let secs_txt = line
        .split(" requests in ")
        .nth(1)?
        .split(',')
        .next()?
        .trim();
    let secs = if let Some(ms) = secs_txt.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1e3
    } else if let Some(m) = secs_txt.strip_suffix('m') {
        m.parse::<f64>().ok()? * 60.0
    } else {
        secs_txt.strip_suffix('s')?.parse().ok()?
    };
    let bad = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some((reqs, bad, secs))
}

pub fn run(opts: &RegisterOpts) -> Result<String> {
    require_program("wrk")?;
    let dir = TempDir::new("wrk")?;
    let script = dir.path().join("register.lua");
    let body = register_body(19350).replace('"', "\\\"");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = \"{body}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "wrk keep-alive, {} s per run, {} reps, medians; wrk shares the machine's {} CPUs with the \
         proxy, so a proxy with as many executors as CPUs time-shares them with wrk.\n",
        opts.secs,
        opts.reps,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    md.push_str(
        "| proxy `PROXY_CORES` | wrk threads × conns | requests/s | proxy CPU-µs/request | non-2xx | target ≤ 10 µs |\n\
         |---:|---|---:|---:|---:|---|\n",
    );
    for &cores in &opts.proxy_cores {
        let proxy = SrsProxy::start(cores)?;
        for &(threads, conns) in &opts.loads {
            let (rps, us, bad) = load(opts, &proxy, &script, dir.path(), (cores, threads, conns))?;
            let _ = writeln!(
                md,
                "| {cores} | {threads} × {conns} | {} | {} | {bad} | {} |",
                fmt(rps, 0),
                fmt(us, 2),
                verdict(us <= 10.0 && bad == 0)
            );
        }
    }
    Ok(md)
}

/// One load against `proxy`, `opts.reps` times: median requests/s, median proxy CPU-µs per
/// request, and the non-2xx answers of all reps.
fn load(
    opts: &RegisterOpts,
    proxy: &SrsProxy,
    script: &std::path::Path,
    dir: &std::path::Path,
    (cores, threads, conns): (usize, usize, usize),
) -> Result<(f64, f64, u64)> {
    let mut rps = Vec::new();
    let mut us = Vec::new();
    let mut bad_total = 0;
    for rep in 0..opts.reps {
        let log = dir.join(format!("wrk-{cores}-{threads}-{conns}-{rep}.log"));
        let mut cmd = Command::new("wrk");
        cmd.arg(format!("-t{threads}"))
            .arg(format!("-c{conns}"))
            .arg(format!("-d{}s", opts.secs))
            .arg("-s")
            .arg(script)
            .arg(format!(
                "http://127.0.0.1:{}/api/v1/srs/register",
                proxy.system_api
            ));
        let c0 = cpu_seconds(proxy.proc.pid())?;
        let mut p = Proc::spawn("wrk", cmd, &log)?;
        if !p.wait_exit(Duration::from_secs(opts.secs + 30))? {
            return Err(format!("wrk failed:\n{}", tail_file(&log, 20)));
        }
        let c1 = cpu_seconds(proxy.proc.pid())?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let (reqs, bad, secs) =
            parse_wrk(&text).ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
        bad_total += bad;
        let per_req = (c1 - c0) * 1e6 / reqs.max(1) as f64;
        rps.push(reqs as f64 / secs);
        us.push(per_req);
        eprintln!(
            "[bench] register cores {cores} {threads}x{conns} rep {}: {:.0} req/s, {per_req:.2} CPU-µs/req, {bad} non-2xx",
            rep + 1,
            reqs as f64 / secs,
        );
    }
    Ok((median(&rps), median(&us), bad_total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_wrk() {
        let t = "Running 10s test @ http://x\n  2 threads and 32 connections\n  \
                 412345 requests in 10.01s, 40.00MB read\n  Non-2xx or 3xx responses: 3\n\
                 Requests/sec:  41194.80\n";
        let (r, bad, s) = super::parse_wrk(t).unwrap();
        assert_eq!((r, bad), (412345, 3));
        assert!((s - 10.01).abs() < 1e-9);
    }
}
