//! Startup checks: fail in one line, before any executor exists, when glommio cannot run here.
//!
//! glommio panics deep inside an executor thread when io_uring is unavailable or locked memory is short;
//! [`preflight`] turns both into one line that says what is missing and how to fix it.
//!
//! Locked memory: glommio refuses to start below 512 KiB of `RLIMIT_MEMLOCK`, and every executor
//! registers its `io_memory` with each of its three rings (main, latency, poll), which the kernel charges
//! to the user's locked memory (kernels before 5.12 charge the rings too). We require
//! `cores × max(512 KiB, 3 × (io_memory rounded up to ≥ 64 KiB) + 3 × 16 KiB)`. The limit is per process
//! but the charge is per user, so other processes of the same user can still exhaust it; the check
//! catches the common misconfiguration, not every one.

use std::io;

use crate::config::{ConfigError, PoolConfig};

/// glommio's own floor (`Reactor::new`), which it checks against the process limit.
const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;
/// glommio rounds `io_memory` up to a page multiple of at least this.
const GLOMMIO_MIN_IO_MEMORY_BYTES: u64 = 64 * 1024;
/// Rings per executor that register the io_memory buffer.
const RINGS_PER_EXECUTOR: u64 = 3;
/// One 128-entry ring: 8 KiB of SQEs, 4 KiB of CQEs, the ring headers, rounded up to pages.
const RING_BYTES: u64 = 16 * 1024;

/// Why the pool cannot start here. `Display` is one line: what is missing, then how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The configuration itself is wrong.
    #[error("invalid pool configuration: {0}")]
    Config(#[from] ConfigError),
    /// `RLIMIT_MEMLOCK` is below what `cores` executors need.
    #[error(
        "locked-memory limit (RLIMIT_MEMLOCK) is {limit_kib} KiB but {cores} executors need {need_kib} KiB: \
         raise it with `ulimit -l {need_kib}` (or `unlimited`), `LimitMEMLOCK=infinity` in the systemd unit, \
         or `docker run --ulimit memlock=-1`, or run fewer cores"
    )]
    MemlockTooLow {
        limit_kib: u64,
        need_kib: u64,
        cores: usize,
    },
    /// `getrlimit(RLIMIT_MEMLOCK)` failed.
    #[error("cannot read the locked-memory limit (getrlimit RLIMIT_MEMLOCK): {0}")]
    MemlockUnreadable(io::Error),
    /// `kernel.io_uring_disabled` forbids io_uring for this process (EPERM).
    #[error(
        "io_uring is disabled by sysctl kernel.io_uring_disabled={value} (io_uring_setup: EPERM): \
         run `sysctl -w kernel.io_uring_disabled=0` (1 only admits members of kernel.io_uring_group)"
    )]
    IoUringDisabledBySysctl { value: u32 },
    /// Something other than the sysctl denies io_uring (EPERM): in practice a seccomp profile.
    #[error(
        "io_uring_setup is not permitted (EPERM): a seccomp profile blocks io_uring (Docker >= 25 and \
         containerd/Kubernetes RuntimeDefault do): run with a profile that allows io_uring_setup, \
         io_uring_enter and io_uring_register (docker `--security-opt seccomp=<profile>`, Kubernetes a \
         Localhost seccompProfile)"
    )]
    IoUringNotPermitted,
    /// The kernel, or a sandbox, does not provide io_uring (ENOSYS).
    #[error(
        "io_uring_setup is not implemented (ENOSYS): the kernel lacks io_uring (Linux >= 5.8 with \
         CONFIG_IO_URING=y is needed) or a sandbox such as gVisor or a seccomp filter hides it: run on a \
         kernel with io_uring and allow the io_uring_* syscalls"
    )]
    IoUringNotImplemented,
    /// The kernel could not charge the ring to locked memory (ENOMEM).
    #[error(
        "io_uring_setup failed with ENOMEM: locked memory is exhausted (kernels before 5.12 charge rings \
         to RLIMIT_MEMLOCK): raise it with `ulimit -l unlimited`, `LimitMEMLOCK=infinity` (systemd) or \
         `docker run --ulimit memlock=-1`"
    )]
    IoUringNoMemory,
    /// Any other io_uring_setup failure.
    #[error("io_uring_setup failed: {0}")]
    IoUring(io::Error),
}

/// Checks the configuration, io_uring and the locked-memory limit for `cfg`, in that order.
pub fn preflight(cfg: &PoolConfig) -> Result<(), PreflightError> {
    cfg.validate()?;
    probe_io_uring()?;
    check_memlock(memlock_limit()?, cfg.cores, cfg.io_memory_bytes)
}

/// Locked memory `cores` executors with `io_memory_bytes` each need (see the module docs).
pub fn memlock_needed_bytes(cores: usize, io_memory_bytes: usize) -> u64 {
    let io_memory = (io_memory_bytes as u64)
        .max(GLOMMIO_MIN_IO_MEMORY_BYTES)
        .next_multiple_of(4096);
    let per_executor =
        (RINGS_PER_EXECUTOR * (io_memory + RING_BYTES)).max(GLOMMIO_MIN_MEMLOCK_BYTES);
    per_executor.saturating_mul(cores as u64)
}

/// The memlock check on plain numbers; `limit_bytes == None` means unlimited.
pub(crate) fn check_memlock(
    limit_bytes: Option<u64>,
    cores: usize,
    io_memory_bytes: usize,
) -> Result<(), PreflightError> {
    let need = memlock_needed_bytes(cores, io_memory_bytes);
    match limit_bytes {
        Some(limit) if limit < need => Err(PreflightError::MemlockTooLow {
            limit_kib: limit / 1024,
            need_kib: need.div_ceil(1024),
            cores,
        }),
        _ => Ok(()),
    }
}

/// The soft `RLIMIT_MEMLOCK` (the one the kernel enforces), `None` when unlimited.
fn memlock_limit() -> Result<Option<u64>, PreflightError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(PreflightError::MemlockUnreadable(io::Error::last_os_error()));
    }
    Ok((limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur))
}

/// Sets up (and closes) a one-entry ring, which is what every executor does three times.
fn probe_io_uring() -> Result<(), PreflightError> {
    // `struct io_uring_params` is 120 bytes; the kernel requires everything but the output fields zero.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(entries, params) writes at most sizeof(io_uring_params) = 120 bytes into
    // `params` and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(classify_io_uring_error(err, io_uring_disabled_sysctl()));
    }
    // SAFETY: `fd` is the ring fd we just created and own.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn io_uring_disabled_sysctl() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Maps an io_uring_setup failure to its cause; `sysctl` is `kernel.io_uring_disabled` if readable.
pub(crate) fn classify_io_uring_error(err: io::Error, sysctl: Option<u32>) -> PreflightError {
    match err.raw_os_error() {
        // Both the sysctl and seccomp answer EPERM; only the sysctl can be read to tell them apart.
        Some(libc::EPERM) => match sysctl {
            Some(value) if value != 0 => PreflightError::IoUringDisabledBySysctl { value },
            _ => PreflightError::IoUringNotPermitted,
        },
        Some(libc::ENOSYS) => PreflightError::IoUringNotImplemented,
        Some(libc::ENOMEM) => PreflightError::IoUringNoMemory,
        _ => PreflightError::IoUring(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_passes_on_this_machine() {
        let cfg = PoolConfig::new("preflight-test");
        preflight(&cfg).expect("io_uring enabled and memlock 8 MiB on the build machine");
    }

    #[test]
    fn memlock_need_is_512_kib_per_executor_for_small_io_memory() {
        assert_eq!(memlock_needed_bytes(1, 0), 512 * 1024);
        assert_eq!(memlock_needed_bytes(2, 64 * 1024), 1024 * 1024);
        assert_eq!(memlock_needed_bytes(16, 64 * 1024), 8 * 1024 * 1024);
        // 3 × (1 MiB + 16 KiB) per executor once io_memory dominates.
        assert_eq!(
            memlock_needed_bytes(2, 1024 * 1024),
            2 * 3 * (1024 + 16) * 1024
        );
    }

    #[test]
    fn memlock_check_passes_at_the_limit_and_when_unlimited() {
        assert!(check_memlock(Some(1024 * 1024), 2, 64 * 1024).is_ok());
        assert!(check_memlock(None, 4096, 1 << 30).is_ok());
    }

    #[test]
    fn memlock_check_fails_with_one_line_naming_limit_need_and_fixes() {
        let err = check_memlock(Some(64 * 1024), 4, 64 * 1024).unwrap_err();
        assert!(matches!(
            err,
            PreflightError::MemlockTooLow {
                limit_kib: 64,
                need_kib: 2048,
                cores: 4
            }
        ));
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(
                "locked-memory limit (RLIMIT_MEMLOCK) is 64 KiB but 4 executors need 2048 KiB"
            ),
            "{line}"
        );
        for fix in ["ulimit -l 2048", "LimitMEMLOCK=", "--ulimit memlock=-1"] {
            assert!(line.contains(fix), "{fix} missing from: {line}");
        }
    }

    #[test]
    fn io_uring_errors_name_the_cause_in_one_line() {
        let cases = [
            (libc::EPERM, Some(2), "kernel.io_uring_disabled=2"),
            (libc::EPERM, Some(0), "seccomp"),
            (libc::EPERM, None, "seccomp"),
            (libc::ENOSYS, Some(0), "ENOSYS"),
            (libc::ENOMEM, None, "ENOMEM"),
            (libc::EINVAL, None, "io_uring_setup failed"),
        ];
        for (errno, sysctl, needle) in cases {
            let line =
                classify_io_uring_error(io::Error::from_raw_os_error(errno), sysctl).to_string();
            assert!(line.contains(needle), "errno {errno}: {line}");
            assert!(!line.contains('\n'), "{line}");
        }
        let seccomp =
            classify_io_uring_error(io::Error::from_raw_os_error(libc::EPERM), None).to_string();
        assert!(
            seccomp.contains("Docker >= 25") && seccomp.contains("RuntimeDefault"),
            "{seccomp}"
        );
        let sysctl =
            classify_io_uring_error(io::Error::from_raw_os_error(libc::EPERM), Some(1)).to_string();
        assert!(
            sysctl.contains("sysctl -w kernel.io_uring_disabled=0"),
            "{sysctl}"
        );
    }
}
