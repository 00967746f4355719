//! The executor threads' CPU scheduling policy.
//!
//! With [`crate::PoolConfig::sched_batch`], every executor thread switches itself to
//! `SCHED_BATCH` when it starts. `SCHED_BATCH` is the kernel's fair class, with the same share of
//! CPU time and the same nice value as the default `SCHED_OTHER`, but a thread that the kernel
//! wakes up never preempts the thread running on that CPU: it waits for that thread to block or
//! to use up its slice. An event loop that shares CPUs with other busy processes (clients,
//! co-located origins, a load generator) then handles, in one pass, everything that arrived while
//! it waited, instead of being switched in once per request and out again. When its CPU is idle
//! it runs at once, exactly as before.
//!
//! Contract: [`set_batch`] changes the calling thread only, and needs no privilege (Linux lets any
//! thread move from `SCHED_OTHER` to `SCHED_BATCH`). A refusal (a seccomp profile, another
//! real-time policy already set) is reported, never fatal: the thread keeps its policy.

use std::io;

/// Switches the calling thread to `SCHED_BATCH` (priority 0, its nice value unchanged).
pub fn set_batch() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for the call's duration.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the calling thread runs under `SCHED_BATCH`.
pub fn is_batch() -> bool {
    // SAFETY: no pointers; pid 0 is the calling thread.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_BATCH }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_switches_itself_to_batch_and_only_itself() {
        // On a fresh thread: the policy must not leak into the test harness's other tests.
        std::thread::spawn(|| {
            assert!(!is_batch(), "threads start under SCHED_OTHER");
            set_batch().expect("SCHED_OTHER -> SCHED_BATCH");
            assert!(is_batch());
            // Threads this one starts inherit the policy.
            assert!(std::thread::spawn(is_batch).join().unwrap());
        })
        .join()
        .unwrap();
        assert!(!is_batch(), "only the calling thread changed");
    }
}
