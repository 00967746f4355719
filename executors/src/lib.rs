//! Thread-per-core plumbing for srs-proxy, with no protocol knowledge.
//!
//! - [`preflight`]: one-line startup errors when io_uring or locked memory is missing.
//! - [`run_pool`]: one pinned glommio executor per core, each running the caller's closure with a
//!   [`CoreContext`] (its core id, the [`Mesh`], the [`ShutdownWatch`]).
//! - [`Mesh`]: typed, bounded channels between every pair of cores (and a core and itself).
//! - [`shard_for`]: the stable key → core function every core agrees on.
//! - [`Shutdown`]: SIGINT/SIGTERM handling, a trigger for tests, and the force-quit timer.
//! - [`with_timeout`]: deadlines on async phases; [`with_coarse_timeout`] for long ones that
//!   rarely fire (to about a second, without a timer per call).
//! - [`sched`]: the executor threads' scheduling policy (`SCHED_BATCH`).
//! - [`udp`]: non-blocking and batched UDP system calls for relay hot paths.
//!
//! Typical `main`:
//!
//! ```no_run
//! # use executors::*;
//! # #[derive(Clone)] enum Command { Ping }
//! let shutdown = Shutdown::install().expect("signals"); // first, before any thread exists
//! shutdown.arm_force_quit(std::time::Duration::from_secs(30)).expect("thread");
//! let cfg = PoolConfig::new("srs-proxy");
//! if let Err(e) = preflight(&cfg) {
//!     eprintln!("{e}");
//!     std::process::exit(255);
//! }
//! run_pool::<Command, _, _>(cfg, shutdown.clone(), |ctx| async move {
//!     while let Some((_from, _command)) = ctx.mesh.recv().await {
//!         // apply the command to this core's replica
//!     }
//! })
//! .expect("pool");
//! ```
//!
//! Panics: a panic is a bug. One in an executor shuts the whole pool down and surfaces as
//! [`PoolError::ExecutorPanicked`]. This crate's own code has no `unwrap` on runtime data.

pub mod coarse;
mod config;
mod mesh;
mod pool;
mod preflight;
pub mod sched;
mod shard;
mod shutdown;
mod timeout;
pub mod udp;
pub mod wake;

pub use coarse::with_coarse_timeout;
pub use config::{online_cpus, ConfigError, PoolConfig};
pub use mesh::{Mesh, MeshError};
#[doc(hidden)]
pub use pool::run_pool_with_grace;
pub use pool::{run_pool, CoreContext, PoolError, PANIC_GRACE};
pub use preflight::{memlock_needed_bytes, preflight, PreflightError};
pub use shard::{shard_for, stable_hash};
pub use shutdown::{Shutdown, ShutdownWatch, Wait};
pub use timeout::{with_timeout, Elapsed};
