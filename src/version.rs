//! What the proxy calls itself on the wire. The Go proxy G1 line says `SRSProxy` / `1.5.0` (spec
//! §5.5, §5.8, §10 #25); we keep those so anything matching on them keeps working.

pub const SIGNATURE: &str = "SRSProxy";
pub const MAJOR: u32 = 1;
pub const MINOR: u32 = 5;
pub const REVISION: u32 = 0;
pub const VERSION: &str = "1.5.0";
/// The `Server` header value.
pub const SERVER: &str = "SRSProxy/1.5.0";
/// Our own build, for logs and `/api/v1/versions` extras.
pub const BUILD: &str = env!("CARGO_PKG_VERSION");
