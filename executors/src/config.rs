//! Pool configuration and CPU discovery.

use std::fmt;
use std::time::Duration;

/// How to build the executor pool. Validated once by [`crate::preflight`] (and again by
/// [`crate::run_pool`], which calls it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Executors to run, one per CPU: `1..=online_cpus()`.
    pub cores: usize,
    /// Pin each executor to its own CPU (spread over the allowed CPUs). Unpinned executors are
    /// placed by the kernel scheduler, which can move one off a CPU that other busy processes
    /// share (see `bench/RESULTS.md`, "Pinned or not").
    pub pin: bool,
    /// While an executor holds a [`crate::wake::Coalescing`] guard: how long, after it has slept,
    /// it waits before it handles what woke it, so that one wake-up handles a burst instead of
    /// its first segment (interrupt coalescing for the event loop; the thread sleeps meanwhile).
    /// Adds at most this much latency, and only to an executor that was idle. Zero: guards do
    /// nothing.
    pub wake_coalesce: Duration,
    /// Run each executor thread under `SCHED_BATCH` (see [`crate::sched`]): a woken executor
    /// does not preempt the thread running on its CPU, so where busy processes share the CPUs it
    /// handles what arrived meanwhile in one pass. Off: the default policy (`SCHED_OTHER`).
    pub sched_batch: bool,
    /// Memory each executor preallocates and registers with io_uring for file DMA. The proxy does no
    /// file DMA, so keep it small: glommio rounds it up to at least 64 KiB, and it costs locked memory
    /// (see [`crate::preflight`]). [`PoolConfig::DEFAULT_IO_MEMORY_BYTES`] is the right value unless a
    /// bench says otherwise.
    pub io_memory_bytes: usize,
    /// Thread name prefix; glommio appends `-<executor id>`.
    pub name: String,
    /// Messages each directed mesh channel holds before `send_to` waits (and `try_send_to` fails).
    /// Must be at least 1.
    pub mesh_capacity: usize,
}

impl PoolConfig {
    /// glommio's floor for `io_memory`; anything smaller is rounded up to it.
    pub const DEFAULT_IO_MEMORY_BYTES: usize = 64 * 1024;
    /// Enough for a burst of control-plane commands (registrations, pin claims) without letting one
    /// stuck core buffer unbounded memory on its peers.
    pub const DEFAULT_MESH_CAPACITY: usize = 1024;

    /// One executor per usable CPU, with the defaults above.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            cores: online_cpus(),
            pin: true,
            wake_coalesce: Duration::ZERO,
            sched_batch: false,
            io_memory_bytes: Self::DEFAULT_IO_MEMORY_BYTES,
            name: name.into(),
            mesh_capacity: Self::DEFAULT_MESH_CAPACITY,
        }
    }

    /// Checks the fields against each other and against this machine.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let online = online_cpus();
        if self.cores == 0 || self.cores > online {
            return Err(ConfigError::Cores {
                cores: self.cores,
                online,
            });
        }
        if self.mesh_capacity == 0 {
            return Err(ConfigError::MeshCapacity);
        }
        Ok(())
    }
}

/// A [`PoolConfig`] that cannot work on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `cores` is 0 or more than the CPUs this process may run on.
    #[error("cannot run {cores} executors: this process may use {online} CPUs (set the core count to 1..={online})")]
    Cores { cores: usize, online: usize },
    /// `mesh_capacity` is 0.
    #[error("mesh capacity must be at least 1")]
    MeshCapacity,
}

/// CPUs this process can pin an executor to: online CPUs that are also in its affinity mask.
///
/// The affinity mask matters in containers (`--cpuset-cpus`) and under `taskset`, where pinning to an
/// online CPU outside the mask fails. Never returns 0.
pub fn online_cpus() -> usize {
    allowed_cpus().len().max(1)
}

/// The CPU ids of [`online_cpus`], ascending.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    let affinity = affinity_mask();
    let online: Vec<usize> = match glommio::CpuSet::online() {
        Ok(set) => set.iter().map(|location| location.cpu).collect(),
        // No sysfs topology (unusual sandboxes): the affinity mask alone is the best answer left.
        Err(_) => affinity.clone().unwrap_or_default(),
    };
    let mut cpus: Vec<usize> = match &affinity {
        Some(mask) => online
            .into_iter()
            .filter(|cpu| mask.contains(cpu))
            .collect(),
        None => online,
    };
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

fn affinity_mask() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, and sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let max = libc::CPU_SETSIZE as usize;
    // SAFETY: `set` was filled by the kernel and `cpu < CPU_SETSIZE`.
    Some(
        (0..max)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect(),
    )
}

impl fmt::Display for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} executors named {:?}, scheduling policy {}, wake-up coalescing {:?}, io_memory {} KiB each, mesh capacity {}",
            self.cores,
            if self.pin { "pinned" } else { "unpinned" },
            self.name,
            if self.sched_batch { "SCHED_BATCH" } else { "default" },
            self.wake_coalesce,
            self.io_memory_bytes / 1024,
            self.mesh_capacity
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_cpus_counts_at_least_one_usable_cpu() {
        assert!(online_cpus() >= 1);
        assert_eq!(allowed_cpus().len(), online_cpus());
    }

    #[test]
    fn validate_rejects_zero_cores_too_many_cores_and_zero_capacity() {
        let good = PoolConfig::new("t");
        assert_eq!(good.validate(), Ok(()));
        let online = online_cpus();
        let zero = PoolConfig {
            cores: 0,
            ..good.clone()
        };
        assert_eq!(
            zero.validate(),
            Err(ConfigError::Cores { cores: 0, online })
        );
        let many = PoolConfig {
            cores: online + 1,
            ..good.clone()
        };
        assert!(matches!(many.validate(), Err(ConfigError::Cores { .. })));
        let no_room = PoolConfig {
            mesh_capacity: 0,
            ..good
        };
        assert_eq!(no_room.validate(), Err(ConfigError::MeshCapacity));
    }
}
