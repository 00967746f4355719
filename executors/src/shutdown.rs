//! Process shutdown: SIGINT/SIGTERM (or a test) flips one flag that every executor can await.
//!
//! Contract:
//! - [`Shutdown::install`] is called once, in `main`, **before any other thread is spawned**: it blocks
//!   SIGINT and SIGTERM in the calling thread (threads spawned afterwards, the executors included, inherit
//!   the mask) and waits for them with `sigwait` on a dedicated std thread. Signals therefore never
//!   interrupt an executor, and no async-signal-safety rules apply to what happens next.
//! - The first signal logs `Got signal <NAME>` (spec §6.4), records the name ([`Shutdown::signal_name`])
//!   and triggers shutdown; later signals are logged and otherwise ignored, like the Go proxy.
//! - Triggering is one-way and idempotent. [`ShutdownWatch::wait`] is event driven: it registers the
//!   task's waker and [`Shutdown::trigger`] wakes it (glommio wakers may be woken from any thread).
//! - The pool ([`crate::run_pool`]) also triggers shutdown when an executor panics or fails, so every other
//!   core winds down instead of hanging.
//! - Grace is the caller's business: this module only offers the last-resort
//!   [`Shutdown::arm_force_quit`], which exits the process with code 1 a fixed time after the trigger.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The process-wide shutdown switch. Cheap to clone; every clone is the same switch.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

/// A read-only view of a [`Shutdown`]: `Clone + Send + Sync`, handed to every executor.
#[derive(Clone, Debug)]
pub struct ShutdownWatch {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    signal: OnceLock<&'static str>,
    /// Async waiters by registration id, so that a re-polled [`Wait`] replaces its waker instead of
    /// piling up copies.
    wakers: Mutex<Wakers>,
    /// Blocking waiters (the force-quit thread, [`ShutdownWatch::wait_blocking`]).
    condvar: Condvar,
}

#[derive(Debug, Default)]
struct Wakers {
    next_id: u64,
    by_id: HashMap<u64, Waker>,
}

/// Only one `sigwait` thread may own SIGINT/SIGTERM: two would race for each signal.
static SIGNALS_INSTALLED: AtomicBool = AtomicBool::new(false);

impl Shutdown {
    /// Blocks SIGINT and SIGTERM in the calling thread and starts the thread that waits for them.
    ///
    /// Call it first thing in `main`: a thread spawned earlier keeps the signals unblocked and may take
    /// the default action (terminate) instead. Fails with `AlreadyExists` if called twice.
    pub fn install() -> io::Result<Self> {
        if SIGNALS_INSTALLED.swap(true, Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "Shutdown::install was already called in this process",
            ));
        }
        let set = signal_set();
        // SAFETY: `set` is a fully initialised sigset_t; a null old-mask pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            SIGNALS_INSTALLED.store(false, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(rc));
        }
        let shutdown = Self::new_for_tests();
        let inner = Arc::clone(&shutdown.inner);
        std::thread::Builder::new()
            .name("shutdown-signals".into())
            .spawn(move || wait_for_signals(&inner, &set))?;
        Ok(shutdown)
    }

    /// A switch with no signal handling: only [`Shutdown::trigger`] flips it.
    pub fn new_for_tests() -> Self {
        Self {
            inner: Arc::new(Inner::default()),
        }
    }

    /// Starts shutdown. Idempotent; callable from any thread.
    pub fn trigger(&self) {
        self.inner.trigger();
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.is_triggered()
    }

    /// A watch to hand to executors and tasks.
    pub fn watch(&self) -> ShutdownWatch {
        ShutdownWatch {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The signal that started shutdown (`"SIGINT"` or `"SIGTERM"`), if one did.
    pub fn signal_name(&self) -> Option<&'static str> {
        self.inner.signal.get().copied()
    }

    /// Starts a thread that, once shutdown is triggered, waits `after`, logs `Force to exit by timeout`
    /// and exits the process with code 1 (the Go proxy's `PROXY_FORCE_QUIT_TIMEOUT`, spec §6.4).
    ///
    /// It runs whatever state the executors are in, so it bounds a shutdown that hangs; a clean
    /// shutdown that finishes first simply returns from `main` before the timer fires.
    pub fn arm_force_quit(&self, after: Duration) -> io::Result<()> {
        let watch = self.watch();
        std::thread::Builder::new()
            .name("shutdown-force-quit".into())
            .spawn(move || {
                watch.wait_blocking();
                std::thread::sleep(after);
                tracing::error!("Force to exit by timeout");
                std::process::exit(1);
            })
            .map(drop)
    }
}

impl ShutdownWatch {
    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.is_triggered()
    }

    /// Resolves once shutdown is triggered (at once if it already is). Usable from any executor; cheap
    /// to re-poll from the same task (the waker is re-registered only when it changes).
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            inner: &self.inner,
            registration: None,
        }
    }

    /// Blocks the calling std thread until shutdown is triggered. Never call it inside an executor.
    pub fn wait_blocking(&self) {
        let mut wakers = self.inner.lock();
        while !self.inner.is_triggered() {
            wakers = self
                .inner
                .condvar
                .wait(wakers)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The future returned by [`ShutdownWatch::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    inner: &'a Inner,
    registration: Option<(u64, Waker)>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.is_triggered() {
            return Poll::Ready(());
        }
        if let Some((_, waker)) = &self.registration {
            if waker.will_wake(cx.waker()) {
                // Same task as last time: its waker is already registered, skip the lock.
                return Poll::Pending;
            }
        }
        let inner = self.inner;
        let mut wakers = inner.lock();
        let id = match &self.registration {
            Some((id, _)) => *id,
            None => {
                wakers.next_id += 1;
                wakers.next_id
            }
        };
        wakers.by_id.insert(id, cx.waker().clone());
        drop(wakers);
        self.registration = Some((id, cx.waker().clone()));
        // `trigger` sets the flag before draining under the lock, so either it saw our waker or we see
        // its flag here: no lost wake-up.
        if inner.is_triggered() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some((id, _)) = self.registration.take() {
            self.inner.lock().by_id.remove(&id);
        }
    }
}

impl Inner {
    fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = self.lock().by_id.drain().map(|(_, w)| w).collect();
        self.condvar.notify_all();
        // Wake outside the lock: a glommio waker woken from a foreign thread queues itself on its
        // executor's notifier, which is cheap but need not run under our mutex.
        for waker in wakers {
            waker.wake();
        }
    }

    /// A panic while holding this lock leaves the map consistent (every operation is a single map
    /// call), so poisoning is ignored rather than spread to every executor.
    fn lock(&self) -> MutexGuard<'_, Wakers> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the whole set before sigaddset reads it; both only fail for
    // invalid signal numbers, and SIGINT/SIGTERM are valid.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
        libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
        set.assume_init()
    }
}

fn wait_for_signals(inner: &Inner, set: &libc::sigset_t) {
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is initialised and `signal` is a valid out-pointer.
        let rc = unsafe { libc::sigwait(set, &mut signal) };
        if rc != 0 {
            // sigwait only fails for an invalid set, which `signal_set` rules out; stop rather than spin.
            tracing::error!(
                "sigwait failed: {}; SIGINT/SIGTERM stay blocked",
                io::Error::from_raw_os_error(rc)
            );
            return;
        }
        let name = match signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "unexpected signal",
        };
        if inner.signal.set(name).is_ok() {
            tracing::info!("Got signal {name}");
        } else {
            tracing::warn!("Got signal {name} again, already shutting down");
        }
        inner.trigger();
    }
}
