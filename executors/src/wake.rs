//! Wake-up coalescing while an executor relays streams.
//!
//! An executor that has gone idle sleeps in the kernel until I/O arrives. While it holds at least
//! one [`Coalescing`] guard, a woken executor first waits [`crate::PoolConfig::wake_coalesce`]
//! (the thread sleeps) before it handles what woke it, so that one wake-up handles a whole burst
//! instead of its first segment. When the last guard is dropped it goes back to handling every
//! wake-up at once.
//!
//! Contract: the wait applies to everything the executor does, not only to the guard holder's
//! work, and only after a sleep (a busy executor never waits). Guards are per executor: create
//! and drop them on the executor whose wake-ups they should coalesce. A zero window makes guards
//! no-ops.

use std::cell::Cell;
use std::marker::PhantomData;
use std::time::Duration;

thread_local! {
    /// The window this executor coalesces over while guarded (set once, at executor start).
    static WINDOW: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// Guards alive on this executor.
    static HOLDERS: Cell<usize> = const { Cell::new(0) };
}

/// Sets this executor's window; called by the pool when the executor starts.
pub(crate) fn init(window: Duration) {
    WINDOW.with(|w| w.set(window));
}

/// While alive, this executor coalesces its wake-ups (see the module doc). Not `Send`.
#[must_use = "coalescing stops when the guard is dropped"]
#[derive(Debug)]
pub struct Coalescing {
    _not_send: PhantomData<*const ()>,
}

/// Starts (or keeps) coalescing this executor's wake-ups until the guard is dropped. Call on a
/// glommio executor.
pub fn coalescing() -> Coalescing {
    if HOLDERS.with(|h| {
        let n = h.get() + 1;
        h.set(n);
        n == 1
    }) {
        let window = WINDOW.with(Cell::get);
        if !window.is_zero() {
            glommio::executor().set_wake_coalesce(Some(window));
        }
    }
    Coalescing {
        _not_send: PhantomData,
    }
}

impl Drop for Coalescing {
    fn drop(&mut self) {
        if HOLDERS.with(|h| {
            let n = h.get().saturating_sub(1);
            h.set(n);
            n == 0
        }) && !WINDOW.with(Cell::get).is_zero()
        {
            glommio::executor().set_wake_coalesce(None);
        }
    }
}
