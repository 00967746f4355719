//! The load balancer's Redis operations on the Go schema (spec §4.3), with fewer round trips
//! than the Go proxy and atomic stream claims.
//!
//! | operation | round trips | Go G1 |
//! |---|---|---|
//! | [`RedisStore::update_server`] | 1 + (1 if other servers are listed: their `EXISTS`, pipelined) + (1 if the list changes: a compare-and-set `EVAL`); steady state with peers: 2 | 3 + N |
//! | [`RedisStore::load_servers`] | 2 (GET list, MGET records); 1 when the list is empty | 1 + N |
//! | [`RedisStore::load_server`] | 1 | 1 |
//! | [`RedisStore::pinned`] | 1 (`EVAL`: GET url, GET its server key) | 2 |
//! | [`RedisStore::claim_stream`] | 1 (`SET NX` + `GET`, pipelined) | 1 (`SET`, not atomic) |
//! | [`RedisStore::move_stream`], [`RedisStore::repin_stream`] | 1 (`EVAL` compare-and-set) | 1 (`SET`, not atomic) |
//! | [`RedisStore::store_hls`], [`RedisStore::store_rtc`] | 1 (two `SET … EX 120`, pipelined) | 2 |
//! | [`RedisStore::load_or_store_hls`] | 1 (`EVAL`) | 3 |
//! | [`RedisStore::load_hls_by_spbhid`], [`RedisStore::load_rtc_by_ufrag`] | 1 | 1 |
//!
//! Atomicity. `WATCH` cannot be used on the per-core connection that every task shares (its
//! state would leak into other tasks' transactions), so compare-and-set is a small Lua `EVAL`
//! (atomic in Redis, one round trip). Lua never *writes* JSON: cjson's output differs from Go's
//! (`\/`, `{}` for an empty list), so JSON is always produced here with the Go shapes. The
//! scripts touch keys they compute from their arguments only where noted; that is fine on one
//! Redis (the Go proxy does not support Redis Cluster either).
//!
//! Interplay with Go proxies on the same Redis: Go's Pick overwrites `url:` with a plain `SET`
//! when the pinned server key is gone, and its Update rewrites `all-servers` without a check. A
//! Go proxy can therefore still race ours (as two Go proxies race each other); between Rust
//! proxies claims and moves are atomic and server-list updates lose no entry.

use std::sync::Arc;
use std::time::Duration;

use super::client::{ClientConfig, RedisClient, RedisError};
use super::resp::{Cmd, Value};
use super::schema::{
    parse_server_list, server_list_json, HlsRecord, Keys, RtcRecord, SchemaError, ServerRecord,
    SESSION_TTL,
};
use crate::config::RedisConfig;
use crate::lb::Origin;
use crate::metrics::CoreMetrics;

/// Compare-and-set of the server list: write ARGV[3] only if the list is still what we read
/// (ARGV[1] = "1" and the bytes ARGV[2], or ARGV[1] = "0" for a missing key).
const CAS_LIST: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '0') or (cur ~= false and ARGV[1] == '1' and cur == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
return 0
"#;

/// The stream's pin and the record of the server it names (false when that key expired).
const PINNED: &str = r#"
local k = redis.call('GET', KEYS[1])
if not k then return false end
return {k, redis.call('GET', k)}
"#;

/// Move `url:` (KEYS[1]) from the server key KEYS[2] to ARGV[1], only while it still names
/// KEYS[2] and KEYS[2] has expired; a missing pin is claimed. Returns {moved, current}.
const MOVE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == false or (cur == KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('SET', KEYS[1], ARGV[1])
  return {1, ARGV[1]}
end
return {0, cur}
"#;

/// Move `url:` (KEYS[1]) from KEYS[2] to ARGV[1] only while it still names KEYS[2], whether
/// or not KEYS[2] exists (an origin that is registered but refuses connections).
const REPIN: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == KEYS[2] then
  redis.call('SET', KEYS[1], ARGV[1])
  return {1, ARGV[1]}
end
return {0, cur}
"#;

/// One spbhid per stream (spec §10 #6): reuse the stored object and refresh both TTLs, or store
/// the candidate under both keys. KEYS[1] = hls:<stream>, KEYS[2] = spbhid:<candidate id>;
/// ARGV[1] = candidate JSON, ARGV[2] = TTL seconds, ARGV[3] = the spbhid key prefix (the
/// existing object's spbhid key is computed here, from its JSON, read-only via cjson).
const LOAD_OR_STORE_HLS: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and type(v.spbhid) == 'string' and v.spbhid ~= '' then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    redis.call('SET', ARGV[3] .. v.spbhid, cur, 'EX', ARGV[2])
    return cur
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"#;

/// How many times [`RedisStore::update_server`] retries when another proxy changed the list
/// between its read and its write.
const LIST_RETRIES: usize = 10;

/// The answer to a claim or a move: whose pin the stream has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Our server key was written: this proxy decided.
    Claimed(String),
    /// Another decision stands (another proxy, core or an earlier pick): use this server key.
    Existing(String),
}

impl Claim {
    /// The server key the stream is pinned to, whoever decided.
    pub fn server_key(&self) -> &str {
        match self {
            Claim::Claimed(k) | Claim::Existing(k) => k,
        }
    }
}

/// A stream's pin as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub server_key: String,
    /// `None` when the server key expired (its origin stopped heartbeating): move the pin.
    pub server: Option<ServerRecord>,
}

/// The Redis side of the load balancer: a core's client plus the key schema.
pub struct RedisStore {
    client: RedisClient,
    keys: Keys,
}

impl RedisStore {
    pub fn new(client: RedisClient, keys: Keys) -> RedisStore {
        RedisStore { client, keys }
    }

    /// A core's store for `PROXY_REDIS_*`, counting its round trips in that core's `metrics`.
    /// Call it inside the core's executor (the client's driver task starts there).
    pub fn for_core(cfg: &RedisConfig, metrics: Arc<CoreMetrics>) -> RedisStore {
        RedisStore::new(
            RedisClient::with_metrics(ClientConfig::from_config(cfg), Some(metrics)),
            Keys::new(&cfg.key_prefix),
        )
    }

    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn protocol(&self, reason: String) -> RedisError {
        RedisError::Protocol {
            addr: self.client.addr().to_string(),
            reason,
        }
    }

    fn schema(&self, e: SchemaError) -> RedisError {
        self.protocol(e.to_string())
    }

    /// A reply that must not be an error.
    fn ok(&self, command: &str, v: Value) -> Result<Value, RedisError> {
        match v {
            Value::Error(reason) => {
                Err(RedisError::from_reply(self.client.addr(), command, &reason))
            }
            v => Ok(v),
        }
    }

    fn bulk(&self, command: &str, v: Value) -> Result<Option<Vec<u8>>, RedisError> {
        match self.ok(command, v)? {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(b)),
            other => Err(self.protocol(format!("{command} answered {other:?}"))),
        }
    }

    fn string(&self, command: &str, v: Value) -> Result<Option<String>, RedisError> {
        self.bulk(command, v)?
            .map(|b| {
                String::from_utf8(b).map_err(|_| self.protocol(format!("{command}: not UTF-8")))
            })
            .transpose()
    }

    async fn pipeline<const N: usize>(&self, cmds: [Cmd; N]) -> Result<[Value; N], RedisError> {
        let v = self.client.pipeline(&cmds).await?;
        v.try_into()
            .map_err(|v: Vec<Value>| self.protocol(format!("{} replies for {N} commands", v.len())))
    }

    /// Registers or refreshes `origin` (Go `Update`, spec §4.3): `SET srs-proxy-server:<id>
    /// <json> EX <ttl>`, then the read-modify-write of `srs-proxy-all-servers` (expired keys
    /// dropped, ours appended). Round trips: SET+GET pipelined, then `EXISTS` of every listed
    /// key pipelined; a third (a compare-and-set `EVAL`) only when the list changes, retried
    /// if another Rust proxy changed it meanwhile. Returns the server key.
    pub async fn update_server(
        &self,
        origin: &Origin,
        ttl: Duration,
    ) -> Result<String, RedisError> {
        self.update_record(&ServerRecord::from_origin(origin), ttl)
            .await
    }

    /// [`RedisStore::update_server`] for a record already built.
    pub async fn update_record(
        &self,
        record: &ServerRecord,
        ttl: Duration,
    ) -> Result<String, RedisError> {
        let key = self.keys.server(&record.id());
        let list_key = self.keys.all_servers();
        let ttl_secs = ttl.as_secs().max(1) as i64;
        let json = record.to_json();
        let mut write_server = true;
        for _ in 0..LIST_RETRIES {
            let old = if write_server {
                let [set, get] = self
                    .pipeline([
                        Cmd::new("SET")
                            .arg(&key)
                            .arg(&json)
                            .arg("EX")
                            .arg_int(ttl_secs),
                        Cmd::new("GET").arg(&list_key),
                    ])
                    .await?;
                self.ok("SET", set)?;
                write_server = false;
                self.bulk("GET", get)?
            } else {
                let get = self.client.query(Cmd::new("GET").arg(&list_key)).await?;
                self.bulk("GET", get)?
            };
            let listed = match &old {
                Some(b) => parse_server_list(&list_key, b).map_err(|e| self.schema(e))?,
                None => Vec::new(),
            };
            // Go drops every listed key that no longer exists (its GET fails), keeping order.
            let others: Vec<&String> = listed.iter().filter(|k| **k != key).collect();
            let cmds: Vec<Cmd> = others.iter().map(|k| Cmd::new("EXISTS").arg(k)).collect();
            let exists = self.client.pipeline(&cmds).await?;
            let mut keep = Vec::with_capacity(listed.len() + 1);
            let mut alive = exists.into_iter();
            for k in &listed {
                if *k == key {
                    keep.push(k.clone());
                    continue;
                }
                match alive.next().map(|v| self.ok("EXISTS", v)) {
                    Some(Ok(Value::Int(0))) => {}
                    Some(Ok(Value::Int(_))) => keep.push(k.clone()),
                    Some(Err(e)) => return Err(e),
                    other => return Err(self.protocol(format!("EXISTS answered {other:?}"))),
                }
            }
            if !keep.contains(&key) {
                keep.push(key.clone());
            }
            if old.is_some() && keep == listed {
                return Ok(key);
            }
            let (flag, old_bytes) = match &old {
                Some(b) => ("1", b.clone()),
                None => ("0", Vec::new()),
            };
            let r = self
                .client
                .query(
                    Cmd::new("EVAL")
                        .arg(CAS_LIST)
                        .arg("1")
                        .arg(&list_key)
                        .arg(flag)
                        .arg(old_bytes)
                        .arg(server_list_json(&keep)),
                )
                .await?;
            match self.ok("EVAL", r)? {
                Value::Int(1) => return Ok(key),
                Value::Int(0) => continue,
                other => return Err(self.protocol(format!("EVAL answered {other:?}"))),
            }
        }
        // The server key is written; the list heals on the next heartbeat (as in Go).
        tracing::warn!(
            key,
            "srs-proxy-all-servers kept changing; will retry next heartbeat"
        );
        Ok(key)
    }

    /// Every listed server whose key still exists, as `(server key, record)`. Records that do
    /// not parse are skipped with a warning (a foreign writer must not break picks).
    pub async fn load_servers(&self) -> Result<Vec<(String, ServerRecord)>, RedisError> {
        let list_key = self.keys.all_servers();
        let Some(raw) = self.bulk(
            "GET",
            self.client.query(Cmd::new("GET").arg(&list_key)).await?,
        )?
        else {
            return Ok(Vec::new());
        };
        let listed = parse_server_list(&list_key, &raw).map_err(|e| self.schema(e))?;
        if listed.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = Cmd::new("MGET");
        for k in &listed {
            mget = mget.arg(k);
        }
        let values = match self.ok("MGET", self.client.query(mget).await?)? {
            Value::Array(v) if v.len() == listed.len() => v,
            other => return Err(self.protocol(format!("MGET answered {other:?}"))),
        };
        let mut out = Vec::with_capacity(listed.len());
        for (k, v) in listed.into_iter().zip(values) {
            let Some(b) = self.bulk("MGET", v)? else {
                continue;
            };
            match ServerRecord::from_json(&k, &b) {
                Ok(r) => out.push((k, r)),
                Err(e) => tracing::warn!("skipping server: {e}"),
            }
        }
        Ok(out)
    }

    /// One server record by its full key; `None` when it expired.
    pub async fn load_server(&self, server_key: &str) -> Result<Option<ServerRecord>, RedisError> {
        let v = self.client.query(Cmd::new("GET").arg(server_key)).await?;
        self.bulk("GET", v)?
            .map(|b| ServerRecord::from_json(server_key, &b).map_err(|e| self.schema(e)))
            .transpose()
    }

    /// The stream's pin and its server's record, in one round trip (`EVAL`; the server key is
    /// read from the pin inside the script).
    pub async fn pinned(&self, stream_key: &str) -> Result<Option<Pinned>, RedisError> {
        let v = self
            .client
            .query(
                Cmd::new("EVAL")
                    .arg(PINNED)
                    .arg("1")
                    .arg(self.keys.url(stream_key)),
            )
            .await?;
        let (k, rec) = match self.ok("EVAL", v)? {
            Value::Nil => return Ok(None),
            Value::Array(v) if v.len() == 2 => {
                let mut it = v.into_iter();
                // INVARIANT: length checked just above.
                (it.next().expect("2 items"), it.next().expect("2 items"))
            }
            other => return Err(self.protocol(format!("EVAL answered {other:?}"))),
        };
        let server_key = self
            .string("EVAL", k)?
            .ok_or_else(|| self.protocol("pin without a server key".into()))?;
        let server = match self.bulk("EVAL", rec)? {
            // Go treats an empty value as missing too.
            Some(b) if !b.is_empty() => {
                Some(ServerRecord::from_json(&server_key, &b).map_err(|e| self.schema(e))?)
            }
            _ => None,
        };
        Ok(Some(Pinned { server_key, server }))
    }

    /// Pins a new stream to `server_key` unless some proxy already pinned it: `SET
    /// srs-proxy-url:<key> <server key> NX` and a `GET` of the winner, pipelined (one round
    /// trip). Two proxies (or cores) claiming at once: exactly one `Claimed`, and every caller
    /// sees the same server key. The pin has no TTL, as in Go.
    pub async fn claim_stream(
        &self,
        stream_key: &str,
        server_key: &str,
    ) -> Result<Claim, RedisError> {
        let url = self.keys.url(stream_key);
        let [set, get] = self
            .pipeline([
                Cmd::new("SET").arg(&url).arg(server_key).arg("NX"),
                Cmd::new("GET").arg(&url),
            ])
            .await?;
        match self.ok("SET", set)? {
            Value::Simple(_) => Ok(Claim::Claimed(server_key.to_string())),
            Value::Nil => match self.string("GET", get)? {
                Some(k) => Ok(Claim::Existing(k)),
                // Deleted between our SET and GET (another writer): try once more on the caller's
                // next pick; report the race as a protocol-level surprise.
                None => Err(self.protocol(format!("{url} vanished during the claim"))),
            },
            other => Err(self.protocol(format!("SET NX answered {other:?}"))),
        }
    }

    /// Moves a stream pinned to `from` (a full server key whose origin key expired) to `to`,
    /// atomically (`EVAL`, one round trip): only if the pin still names `from` and `from` no
    /// longer exists; a missing pin is claimed. Otherwise another decision stands and is
    /// returned as `Existing`: another proxy moved it first, or `from` is alive again.
    pub async fn move_stream(
        &self,
        stream_key: &str,
        from: &str,
        to: &str,
    ) -> Result<Claim, RedisError> {
        self.cas_pin(MOVE, stream_key, from, to).await
    }

    /// Like [`RedisStore::move_stream`] but moves even while `from`'s key exists: for an origin
    /// that is registered yet refuses connections (the §10 #3 repick). Still a compare-and-set,
    /// so of several proxies repinning at once one wins and the others learn its choice.
    pub async fn repin_stream(
        &self,
        stream_key: &str,
        from: &str,
        to: &str,
    ) -> Result<Claim, RedisError> {
        self.cas_pin(REPIN, stream_key, from, to).await
    }

    async fn cas_pin(
        &self,
        script: &str,
        stream_key: &str,
        from: &str,
        to: &str,
    ) -> Result<Claim, RedisError> {
        let v = self
            .client
            .query(
                Cmd::new("EVAL")
                    .arg(script)
                    .arg("2")
                    .arg(self.keys.url(stream_key))
                    .arg(from)
                    .arg(to),
            )
            .await?;
        match self.ok("EVAL", v)? {
            Value::Array(v) if v.len() == 2 => {
                let mut it = v.into_iter();
                // INVARIANT: length checked just above.
                let (moved, cur) = (it.next().expect("2 items"), it.next().expect("2 items"));
                let cur = self
                    .string("EVAL", cur)?
                    .ok_or_else(|| self.protocol("move returned no key".into()))?;
                Ok(match moved {
                    Value::Int(1) => Claim::Claimed(cur),
                    _ => Claim::Existing(cur),
                })
            }
            other => Err(self.protocol(format!("EVAL answered {other:?}"))),
        }
    }

    /// Go G1 `LoadOrStoreHLS` writes: `SET hls:<stream>` and `SET spbhid:<id>`, both `EX 120`,
    /// pipelined (one round trip).
    pub async fn store_hls(&self, stream_key: &str, rec: &HlsRecord) -> Result<(), RedisError> {
        let json = rec.to_json();
        let ttl = SESSION_TTL.as_secs() as i64;
        let [a, b] = self
            .pipeline([
                Cmd::new("SET")
                    .arg(self.keys.hls(stream_key))
                    .arg(&json)
                    .arg("EX")
                    .arg_int(ttl),
                Cmd::new("SET")
                    .arg(self.keys.spbhid(&rec.spbhid))
                    .arg(&json)
                    .arg("EX")
                    .arg_int(ttl),
            ])
            .await?;
        self.ok("SET", a)?;
        self.ok("SET", b)?;
        Ok(())
    }

    /// The §10 #6 fix: one spbhid per stream. Returns the stored object (both TTLs refreshed) or,
    /// when there is none, stores `candidate` under both keys and returns it. Atomic (`EVAL`,
    /// one round trip), so two proxies minting at once agree on one id.
    pub async fn load_or_store_hls(
        &self,
        stream_key: &str,
        candidate: &HlsRecord,
    ) -> Result<HlsRecord, RedisError> {
        let hls = self.keys.hls(stream_key);
        let v = self
            .client
            .query(
                Cmd::new("EVAL")
                    .arg(LOAD_OR_STORE_HLS)
                    .arg("2")
                    .arg(&hls)
                    .arg(self.keys.spbhid(&candidate.spbhid))
                    .arg(candidate.to_json())
                    .arg_int(SESSION_TTL.as_secs() as i64)
                    .arg(self.keys.spbhid("")),
            )
            .await?;
        let b = self
            .bulk("EVAL", v)?
            .ok_or_else(|| self.protocol("load-or-store returned nil".into()))?;
        HlsRecord::from_json(&hls, &b).map_err(|e| self.schema(e))
    }

    /// Go G1 `LoadHLSBySPBHID`: the object a segment's `spbhid` names (`None`: unknown or expired).
    pub async fn load_hls_by_spbhid(&self, spbhid: &str) -> Result<Option<HlsRecord>, RedisError> {
        let key = self.keys.spbhid(spbhid);
        let v = self.client.query(Cmd::new("GET").arg(&key)).await?;
        self.bulk("GET", v)?
            .map(|b| HlsRecord::from_json(&key, &b).map_err(|e| self.schema(e)))
            .transpose()
    }

    /// Go `StoreWebRTC`: `SET rtc:<stream>` and `SET ufrag:<ufrag>`, both `EX 120`, pipelined.
    pub async fn store_rtc(&self, stream_key: &str, rec: &RtcRecord) -> Result<(), RedisError> {
        let json = rec.to_json();
        let ttl = SESSION_TTL.as_secs() as i64;
        let [a, b] = self
            .pipeline([
                Cmd::new("SET")
                    .arg(self.keys.rtc(stream_key))
                    .arg(&json)
                    .arg("EX")
                    .arg_int(ttl),
                Cmd::new("SET")
                    .arg(self.keys.ufrag(&rec.ufrag))
                    .arg(&json)
                    .arg("EX")
                    .arg_int(ttl),
            ])
            .await?;
        self.ok("SET", a)?;
        self.ok("SET", b)?;
        Ok(())
    }

    /// Go G1 `LoadWebRTCByUfrag`: `ufrag` is the ICE username `<answer>:<offer>`.
    pub async fn load_rtc_by_ufrag(&self, ufrag: &str) -> Result<Option<RtcRecord>, RedisError> {
        let key = self.keys.ufrag(ufrag);
        let v = self.client.query(Cmd::new("GET").arg(&key)).await?;
        self.bulk("GET", v)?
            .map(|b| RtcRecord::from_json(&key, &b).map_err(|e| self.schema(e)))
            .transpose()
    }
}
