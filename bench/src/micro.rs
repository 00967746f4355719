//! `relay-micro`: in-process cost of `RelayDirection::process` on a synthesized FLV-like chunk
//! stream (6 Mbit/s video at 30 fps with a keyframe every 2 s, AAC-sized audio at ~43 fps), fed
//! in 64 KiB reads like the proxy. Separates parse cost from the copy and syscall cost.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use protocols::rtmp::{ChunkDecoder, ChunkEncoder, RelayDirection, RelayPlan};

use crate::util::Result;

const READ: usize = 64 * 1024;

/// `secs` seconds of interleaved audio/video messages chunked at `chunk_size`.
pub fn synth_stream(chunk_size: u32, secs: u32) -> Vec<u8> {
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(chunk_size);
    let mut out = Vec::new();
    let video_frames = secs * 30;
    let mut audio_ts = 0u32;
    let mut fill = 0u8;
    for f in 0..video_frames {
        let ts = f * 1000 / 30;
        while audio_ts <= ts {
            let payload = vec![0xafu8; 372];
            enc.write_message(4, audio_ts, 8, 1, &payload, &mut out);
            audio_ts += 23;
        }
        let len = if f % 60 == 0 { 150_000 } else { 22_000 };
        fill = fill.wrapping_add(1);
        let payload = vec![fill; len];
        enc.write_message(6, ts, 9, 1, &payload, &mut out);
    }
    out
}

/// ns per MB of input for `f` run over `stream` until `min` has elapsed.
fn time_per_mb(stream: &[u8], min: Duration, mut f: impl FnMut(&[u8])) -> f64 {
    let t0 = Instant::now();
    let mut bytes = 0u64;
    while t0.elapsed() < min || bytes == 0 {
        f(stream);
        bytes += stream.len() as u64;
    }
    t0.elapsed().as_nanos() as f64 / (bytes as f64 / 1e6)
}

pub struct MicroResult {
    pub chunk_size: u32,
    pub process_ns_per_mb: f64,
    pub flatten_ns_per_mb: f64,
    pub memcpy_ns_per_mb: f64,
    pub segments_per_mb: f64,
}

pub fn measure(chunk_size: u32, min: Duration) -> Result<MicroResult> {
    let stream = synth_stream(chunk_size, 4);
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(chunk_size)
        .map_err(|e| format!("chunk size: {e}"))?;
    let mut dir = RelayDirection::new(dec.clone(), chunk_size);
    let mut plan = RelayPlan::new();
    // Sanity: output length equals input length (same chunk size, fmt 0/3 headers as input).
    let mut out_len = 0usize;
    let mut segs = 0usize;
    for c in stream.chunks(READ) {
        dir.process(c, &mut plan)
            .map_err(|e| format!("relay: {e}"))?;
        out_len += plan.out_len();
        segs += plan.segments.len();
        plan.clear();
    }
    if out_len != stream.len() {
        return Err(format!(
            "relay output {out_len} B != input {} B at chunk size {chunk_size}",
            stream.len()
        ));
    }
    let process = time_per_mb(&stream, min, |s| {
        for c in s.chunks(READ) {
            black_box(dir.process(c, &mut plan).ok());
            plan.clear();
        }
    });
    let mut dir2 = RelayDirection::new(dec, chunk_size);
    let mut out = Vec::with_capacity(READ + 4096);
    let flatten = time_per_mb(&stream, min, |s| {
        for c in s.chunks(READ) {
            black_box(dir2.process(c, &mut plan).ok());
            out.clear();
            plan.flatten_into(c, &mut out);
            black_box(&out);
            plan.clear();
        }
    });
    let memcpy = time_per_mb(&stream, min, |s| {
        for c in s.chunks(READ) {
            out.clear();
            out.extend_from_slice(c);
            black_box(&out);
        }
    });
    Ok(MicroResult {
        chunk_size,
        process_ns_per_mb: process,
        flatten_ns_per_mb: flatten,
        memcpy_ns_per_mb: memcpy,
        segments_per_mb: segs as f64 / (stream.len() as f64 / 1e6),
    })
}

pub fn run(chunk_sizes: &[u32], min: Duration) -> Result<String> {
    let mut md = String::from(
        "Synthesized stream (6 Mbit/s video + audio), 64 KiB reads, one core, in process.\n\n\
         | chunk size | `process` ns/MB | `process` + `flatten_into` ns/MB | memcpy ns/MB | \
         segments/MB | `process` CPU-s/GB |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    for &cs in chunk_sizes {
        let r = measure(cs, min)?;
        eprintln!(
            "[bench] relay-micro chunk {cs}: process {:.0} ns/MB, +flatten {:.0} ns/MB, memcpy {:.0} ns/MB",
            r.process_ns_per_mb, r.flatten_ns_per_mb, r.memcpy_ns_per_mb
        );
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.4} |",
            r.chunk_size,
            r.process_ns_per_mb,
            r.flatten_ns_per_mb,
            r.memcpy_ns_per_mb,
            r.segments_per_mb,
            r.process_ns_per_mb / 1e6, // ns/MB → s/GB: ×1000 MB/GB ÷ 1e9 ns/s
        );
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    #[test]
    fn relay_round_trips_both_chunk_sizes() {
        for cs in [4096, 60000] {
            let r = super::measure(cs, std::time::Duration::from_millis(1)).unwrap();
            assert!(r.process_ns_per_mb > 0.0);
        }
    }
}
