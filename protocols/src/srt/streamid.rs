//! SRT stream ids → route (spec §4.1 and §5.7; SRT access control, libsrt
//! `docs/features/access-control.md`; SRS `srs_srt_streamid_info`).
//!
//! Two forms:
//!
//! * **`#!::` key/value**: `#!::k=v,k=v,…`. Keys `r` (resource), `h` (host/vhost), `m` (mode),
//!   `u` (user), `s` (session); any order; first occurrence wins (like Go's regex); values run to
//!   the next `,` and may contain `/` and `=`. As SRS does, `?` also separates items, so
//!   `#!::r=live/s?secret=x,m=publish` has resource `live/s` (Go keeps `?secret=x` in `r` but its
//!   URL parse drops it from the key: same key).
//! * **plain** (SRS accepts it, Go does not: "no resource in sid"): `app/stream[?query]`, or
//!   `stream` alone, which SRS puts in its default app `live`. SRS treats a plain id as a
//!   **request** (play) whatever its query says.
//!
//! # Differences from the Go proxy (spec §10 #20, fixed compatibly)
//!
//! * `r=`/`h=` are matched only as keys. Go's `r=([^,]+)` also matches inside `user=bob`, so
//!   `#!::user=bob,r=live/s` routes to `bob` there and to `live/s` here.
//! * Plain ids and SRS's old `#!::h=app/stream` / `#!::h=vhost/app/stream` form route here;
//!   Go refuses them. Every id Go routes correctly gets the same key here.

use super::error::SrtError;
use crate::stream_key::stream_key_from_srt;

/// The longest stream id SRT carries (draft-sharabayko-srt §3.2.1.3: 512 bytes).
pub const MAX_STREAM_ID_LEN: usize = 512;

/// The `m=` key (access control: `request`, `publish`, `bidirectional`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SrtMode {
    /// `m=request` (and the default): the caller plays.
    Request,
    /// `m=publish`: the caller publishes.
    Publish,
    /// `m=bidirectional`.
    Bidirectional,
    /// Anything else (e.g. `play`), kept for logs; SRS rejects these, so the proxy routes them and
    /// lets the origin answer.
    Other(String),
}

impl SrtMode {
    fn parse(v: &str) -> Self {
        // SRS lower-cases the mode before comparing.
        match v.to_ascii_lowercase().as_str() {
            "request" => Self::Request,
            "publish" => Self::Publish,
            "bidirectional" => Self::Bidirectional,
            _ => Self::Other(v.to_owned()),
        }
    }
}

/// A parsed stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    /// `h=` (or the vhost of SRS's old `h=vhost/app/stream`).
    pub host: Option<String>,
    /// `r=`, `app/stream`; any `?query` removed.
    pub resource: String,
    /// `m=`; `None` when absent (SRS then assumes request).
    pub mode: Option<SrtMode>,
    /// `u=`.
    pub user: Option<String>,
    /// `s=`.
    pub session: Option<String>,
}

impl StreamId {
    /// Parses either form. Fails when no resource can be found or the id is over 512 bytes.
    pub fn parse(sid: &str) -> Result<Self, SrtError> {
        if sid.len() > MAX_STREAM_ID_LEN {
            return Err(SrtError::StreamIdTooLong(sid.len()));
        }
        match sid.strip_prefix("#!::") {
            Some(body) => Self::parse_keyed(sid, body),
            None => Self::parse_plain(sid),
        }
    }

    fn parse_keyed(sid: &str, body: &str) -> Result<Self, SrtError> {
        let (mut host, mut resource, mut mode, mut user, mut session) =
            (None, None, None, None, None);
        for item in body.split([',', '?']) {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let slot = match key {
                "h" => &mut host,
                "r" => &mut resource,
                "m" => &mut mode,
                "u" => &mut user,
                "s" => &mut session,
                _ => continue,
            };
            // Go's regex takes the first match and needs a non-empty value (`[^,]+`).
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        if resource.is_none() {
            // SRS's older form carries the path in h: `h=app/stream` or `h=vhost/app/stream`.
            if let Some(h) = host.take() {
                match (h.find('/'), h.rfind('/')) {
                    (Some(first), Some(last)) if first != last => {
                        resource = Some(h[first + 1..].to_owned());
                        host = Some(h[..first].to_owned());
                    }
                    (Some(_), Some(_)) => resource = Some(h),
                    _ => host = Some(h),
                }
            }
        }
        let resource = resource
            .filter(|r| !r.is_empty())
            .ok_or_else(|| SrtError::NoResource(sid.to_owned()))?;
        Ok(Self {
            host,
            resource,
            mode: mode.map(|m| SrtMode::parse(&m)),
            user,
            session,
        })
    }

    fn parse_plain(sid: &str) -> Result<Self, SrtError> {
        let path = sid.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(SrtError::NoResource(sid.to_owned()));
        }
        let resource = if path.contains('/') {
            path.to_owned()
        } else {
            // SRS's default app (`srs_srt_streamid_info`: `get_default_app_name() + "/" + id`).
            format!("live/{path}")
        };
        Ok(Self {
            host: None,
            resource,
            mode: Some(SrtMode::Request),
            user: None,
            session: None,
        })
    }

    /// The load-balancer key: `buildStreamURL("srt://" + (h or "localhost") + "/" + r)` (§4.1).
    pub fn stream_key(&self) -> Result<String, SrtError> {
        Ok(stream_key_from_srt(self.host.as_deref(), &self.resource)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srs_old_h_form_splits_vhost_from_path() {
        let id = StreamId::parse("#!::h=example.com/live/s,m=publish").unwrap();
        assert_eq!(id.host.as_deref(), Some("example.com"));
        assert_eq!(id.resource, "live/s");
        let id = StreamId::parse("#!::h=live/s").unwrap();
        assert_eq!((id.host, id.resource.as_str()), (None, "live/s"));
    }
}
