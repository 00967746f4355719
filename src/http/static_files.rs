//! Static files from `PROXY_STATIC_FILES` (spec §5.8, like Go's `http.FileServer`): `index.html`
//! for a directory or an HTML listing, `301` to add a directory's slash, single `Range`
//! requests (206/416), `Last-Modified` with an exact-match `If-Modified-Since` (304), content types
//! by extension, and no way out of the root (`..` components are refused, symlinks are followed
//! only as the operator placed them). `PROXY_STATIC_FILES=off` answers 404.
//!
//! Files are read with `std::fs` in 64 KiB steps into a pooled buffer: a blocking read of a local
//! page cache hit takes microseconds, and this server only carries the small players pages; a
//! deployment serving large files from slow disks should put a web server in front.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use protocols::http::{percent_decode, write_response_head, RequestHead};

use super::relay::PooledBuf;
use super::{write_full, write_text, Next};
use crate::runtime::CoreState;

/// Entries listed at most in a directory listing.
const MAX_LISTING: usize = 10_000;

pub async fn serve(client: &mut TcpStream, st: &CoreState, head: &RequestHead, next: Next) -> Next {
    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    let Some(root) = &st.config.static_files else {
        return write_text(client, 404, "404 page not found", next, head_only).await;
    };
    let Some(path) = percent_decode(&head.path) else {
        return write_text(client, 400, "bad path escape", next, head_only).await;
    };
    let Some(fs_path) = resolve(root, &path) else {
        return write_text(client, 404, "404 page not found", next, head_only).await;
    };
    let query = head
        .query
        .as_deref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if let Some(dir) = head.path.strip_suffix("/index.html") {
        return redirect(client, &format!("{dir}/{query}"), next).await;
    }
    let Ok(meta) = std::fs::metadata(&fs_path) else {
        return write_text(client, 404, "404 page not found", next, head_only).await;
    };
    if meta.is_dir() {
        if !head.path.ends_with('/') {
            return redirect(client, &format!("{}/{query}", head.path), next).await;
        }
        let index = fs_path.join("index.html");
        match std::fs::metadata(&index) {
            Ok(m) if m.is_file() => return send_file(client, head, &index, &m, next).await,
            _ => return listing(client, &fs_path, &path, next, head_only).await,
        }
    }
    send_file(client, head, &fs_path, &meta, next).await
}

/// Maps a decoded URL path under `root`, refusing `..`, NUL and backslashes.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let mut out = root.to_path_buf();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => out.push(p),
        }
    }
    Some(out)
}

async fn redirect(client: &mut TcpStream, location: &str, next: Next) -> Next {
    let headers = [("Location", location), ("Server", crate::version::SERVER)];
    write_full(client, 301, &headers, b"", next, false).await
}

async fn listing(
    client: &mut TcpStream,
    dir: &Path,
    url_path: &str,
    next: Next,
    head_only: bool,
) -> Next {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return write_text(client, 404, "404 page not found", next, head_only).await;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .take(MAX_LISTING)
        .map(|e| {
            let mut n = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n.push('/');
            }
            n
        })
        .collect();
    names.sort();
    let mut body = format!(
        "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>{}</title>\n<pre>\n",
        html_escape(url_path)
    );
    for n in names {
        let e = html_escape(&n);
        body.push_str(&format!("<a href=\"{}\">{e}</a>\n", url_escape(&n)));
    }
    body.push_str("</pre>\n");
    let headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Server", crate::version::SERVER),
    ];
    write_full(client, 200, &headers, body.as_bytes(), next, head_only).await
}

async fn send_file(
    client: &mut TcpStream,
    head: &RequestHead,
    path: &Path,
    meta: &std::fs::Metadata,
    next: Next,
) -> Next {
    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    let size = meta.len();
    let modified = meta.modified().ok().map(http_date);
    if let (Some(m), Some(since)) = (&modified, head.header_str("if-modified-since")) {
        if since.trim() == m {
            let headers = [("Last-Modified", m.as_str())];
            return write_full(client, 304, &headers, b"", next, true).await;
        }
    }
    let range = match head.header_str("range").map(|r| parse_range(r, size)) {
        None | Some(RangeReq::Ignore) => None,
        Some(RangeReq::Range(a, b)) => Some((a, b)),
        Some(RangeReq::Unsatisfiable) => {
            let cr = format!("bytes */{size}");
            let headers = [("Content-Range", cr.as_str())];
            return write_full(client, 416, &headers, b"", next, head_only).await;
        }
    };
    let Ok(mut file) = File::open(path) else {
        return write_text(client, 404, "404 page not found", next, head_only).await;
    };
    let content_type = content_type(path);
    let mut headers: Vec<(&str, &str)> = vec![
        ("Content-Type", content_type),
        ("Accept-Ranges", "bytes"),
        ("Server", crate::version::SERVER),
    ];
    if let Some(m) = &modified {
        headers.push(("Last-Modified", m));
    }
    if next == Next::Close {
        headers.push(("Connection", "close"));
    }
    let (status, start, len, content_range) = match range {
        Some((a, b)) => (206, a, b - a + 1, Some(format!("bytes {a}-{b}/{size}"))),
        None => (200, 0, size, None),
    };
    if let Some(cr) = &content_range {
        headers.push(("Content-Range", cr));
    }
    let mut out = Vec::with_capacity(256);
    let reason = crate::api::reason(status);
    write_response_head(&mut out, status, reason, &headers, Some(len));
    if client.write_all(&out).await.is_err() {
        return Next::Close;
    }
    if head_only {
        return next;
    }
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Next::Close;
    }
    let mut buf = PooledBuf::take();
    let buf = buf.as_mut();
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return Next::Close, // the file shrank: the length is now a lie
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).await.is_err() {
            return Next::Close;
        }
        left -= n as u64;
    }
    next
}

enum RangeReq {
    Ignore,
    Range(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 §14.1.2); several ranges are served as the whole file.
fn parse_range(value: &str, size: u64) -> RangeReq {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeReq::Ignore;
    };
    if spec.contains(',') {
        return RangeReq::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => Some((a, b.min(size.saturating_sub(1)))),
        (Some(a), None) if b.is_empty() => Some((a, size.saturating_sub(1))),
        (None, Some(n)) if a.is_empty() && n > 0 => {
            Some((size.saturating_sub(n), size.saturating_sub(1)))
        }
        _ => return RangeReq::Ignore,
    };
    match parsed {
        Some((a, b)) if size > 0 && a < size && a <= b => RangeReq::Range(a, b),
        _ => RangeReq::Unsatisfiable,
    }
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/MP2T",
        "flv" => "video/x-flv",
        "mp4" | "m4s" => "video/mp4",
        "mpd" => "application/dash+xml",
        "xml" => "text/xml; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        WD[(days % 7) as usize],
        MON[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape_the_root() {
        let root = Path::new("/srv/static");
        assert_eq!(
            resolve(root, "/a/b.html"),
            Some(PathBuf::from("/srv/static/a/b.html"))
        );
        assert_eq!(
            resolve(root, "/a/./b"),
            Some(PathBuf::from("/srv/static/a/b"))
        );
        for bad in ["/../etc/passwd", "/a/../../x", "a", "/a\\..\\b", "/a\0"] {
            assert_eq!(resolve(root, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |v| match parse_range(v, 100) {
            RangeReq::Ignore => "ignore".to_string(),
            RangeReq::Unsatisfiable => "416".to_string(),
            RangeReq::Range(a, b) => format!("{a}-{b}"),
        };
        assert_eq!(r("bytes=0-9"), "0-9");
        assert_eq!(r("bytes=90-"), "90-99");
        assert_eq!(r("bytes=-10"), "90-99");
        assert_eq!(r("bytes=50-500"), "50-99");
        assert_eq!(r("bytes=100-"), "416");
        assert_eq!(r("bytes=0-1,5-6"), "ignore");
        assert_eq!(r("items=0-1"), "ignore");
        assert_eq!(r("bytes=9-1"), "ignore");
    }

    #[test]
    fn dates_are_imf_fixdate() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
