//! ffmpeg / ffprobe as real RTMP publishers and players (commands from
//! `shared/design/test-peers.md`).
//!
//! The H.264/AAC source is encoded once per `target/` (cached under `CARGO_TARGET_TMPDIR`) and
//! then published with `-re -stream_loop -1 -c copy`, which costs almost no CPU.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::proc::{die_with_parent, run_with_timeout, terminate, wait_timeout, Captured};
use super::{require_program, scratch_root};

/// Seconds of media in the cached source file (a whole number of 1 s GOPs).
const SOURCE_SECONDS: u32 = 4;

/// The shared lavfi H.264 (baseline, 1 s GOP) + AAC FLV file, encoded on first use.
pub fn encoded_source_flv() -> PathBuf {
    static SOURCE: OnceLock<PathBuf> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            require_program("ffmpeg");
            let root = scratch_root();
            std::fs::create_dir_all(&root).expect("create scratch root");
            let path = root.join(format!("source-{SOURCE_SECONDS}s-v1.flv"));
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000) {
                return path;
            }
            // Encode to a private name, then rename: parallel test binaries never see half a file.
            let partial = root.join(format!("source-{}.partial.flv", std::process::id()));
            let out = run_with_timeout(
                Command::new("ffmpeg")
                    .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
                    .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"])
                    .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
                    .args(["-t", &SOURCE_SECONDS.to_string()])
                    .args([
                        "-c:v",
                        "libx264",
                        "-preset",
                        "veryfast",
                        "-tune",
                        "zerolatency",
                    ])
                    .args(["-profile:v", "baseline", "-bf", "0", "-g", "25"])
                    .args(["-pix_fmt", "yuv420p", "-b:v", "800k"])
                    .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
                    .arg(&partial),
                Duration::from_secs(120),
            );
            assert!(
                out.success(),
                "encoding the source FLV failed: {}",
                out.describe()
            );
            std::fs::rename(&partial, &path).expect("rename source FLV");
            path
        })
        .clone()
}

#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Stop after this many seconds of media (`-t`).
    pub seconds: u32,
    /// Shift every timestamp by this many seconds (`-output_ts_offset`); past 16777.215 s the
    /// RTMP timestamps need the extended-timestamp field.
    pub ts_offset_seconds: Option<u32>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            seconds: 30,
            ts_offset_seconds: None,
        }
    }
}

/// A running `ffmpeg … -f flv rtmp://…` publisher. Dropping it sends SIGTERM (ffmpeg then
/// unpublishes cleanly) and kills it if it lingers.
pub struct FfmpegPublisher {
    pub url: String,
    child: Option<Child>,
    stderr: Option<Captured>,
}

impl FfmpegPublisher {
    pub fn start(url: &str, seconds: u32) -> FfmpegPublisher {
        FfmpegPublisher::start_with(
            url,
            PublishOptions {
                seconds,
                ..PublishOptions::default()
            },
        )
    }

    pub fn start_with(url: &str, options: PublishOptions) -> FfmpegPublisher {
        let source = encoded_source_flv();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-re", "-stream_loop", "-1", "-i"])
            .arg(&source)
            .args(["-c", "copy", "-t", &options.seconds.to_string()]);
        if let Some(offset) = options.ts_offset_seconds {
            cmd.args(["-output_ts_offset", &offset.to_string()]);
        }
        cmd.args(["-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ffmpeg publisher: {e}"));
        let stderr = Captured::new(child.stderr.take().expect("piped stderr"));
        FfmpegPublisher {
            url: url.to_string(),
            child: Some(child),
            stderr: Some(stderr),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `timeout` for ffmpeg to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(self.child.as_mut()?, timeout)
    }

    /// SIGTERM (clean unpublish), bounded wait, SIGKILL.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .map(|c| terminate(c, Duration::from_secs(3)))
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default()
    }
}

impl Drop for FfmpegPublisher {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[harness] publisher {} stderr:\n{}",
                self.url,
                super::tail_lines(&self.stderr(), 20)
            );
        }
        self.stop();
    }
}

/// Publishes the shared source to `url` for `seconds` (returns at once; see [`FfmpegPublisher`]).
pub fn ffmpeg_publish(url: &str, seconds: u32) -> FfmpegPublisher {
    FfmpegPublisher::start(url, seconds)
}

/// The codec names ffprobe sees at `url` (e.g. `["h264", "aac"]`), or ffprobe's complaint.
pub fn ffprobe(url: &str) -> Result<Vec<String>, String> {
    require_program("ffprobe");
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-hide_banner", "-v", "error", "-rw_timeout", "10000000"])
            .args(["-show_entries", "stream=codec_name", "-of", "csv=p=0", url]),
        Duration::from_secs(20),
    );
    if !out.success() {
        return Err(format!("ffprobe {url}: {}", out.describe()));
    }
    let mut codecs: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    codecs.sort();
    Ok(codecs)
}

/// Plays `url` for `seconds` of media into `-f null` (decoding nothing: `-c copy`).
pub fn ffmpeg_play(url: &str, seconds: u32) -> Result<(), String> {
    let out = run_with_timeout(
        &mut play_command(url, Some(seconds)),
        Duration::from_secs(u64::from(seconds) + 20),
    );
    if out.success() {
        Ok(())
    } else {
        Err(format!("ffmpeg play {url}: {}", out.describe()))
    }
}

fn play_command(url: &str, seconds: Option<u32>) -> Command {
    require_program("ffmpeg");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-rw_timeout", "10000000", "-i", url, "-c", "copy"]);
    if let Some(s) = seconds {
        cmd.args(["-t", &s.to_string()]);
    }
    cmd.args(["-f", "null", "-"]);
    cmd
}

/// A long-running player (`ffmpeg -i url -c copy -f null -`), stopped on drop.
pub struct FfmpegPlayer {
    child: Child,
    stderr: Option<Captured>,
}

pub fn spawn_ffmpeg_play(url: &str) -> FfmpegPlayer {
    let mut cmd = play_command(url, None);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = die_with_parent(&mut cmd)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn ffmpeg player: {e}"));
    let stderr = Captured::new(child.stderr.take().expect("piped stderr"));
    FfmpegPlayer {
        child,
        stderr: Some(stderr),
    }
}

impl FfmpegPlayer {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default()
    }
}

impl Drop for FfmpegPlayer {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(2));
    }
}
