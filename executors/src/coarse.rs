//! Coarse timeouts: deadlines kept to about a second, for waits that usually end long before
//! them (a keep-alive connection's idle timeout, a request body's deadline).
//!
//! [`with_timeout`] arms a glommio timer per call: an allocation, two clock
//! readings, and an insert and a remove in the reactor's timer tree, which a request loop pays on
//! every request although its timeout almost never fires. [`with_coarse_timeout`] instead puts a
//! pending wait in its executor's table of deadlines (a slab slot, reused) and leaves it when the
//! wait ends. One task per executor, running only while the table is not empty, sweeps it every
//! [`TICK`], wakes the waits whose deadline passed, and refreshes the executor's coarse clock, which
//! is what new deadlines count from.
//!
//! Contract:
//! - A future that is ready on its first poll never enters the table.
//! - A pending one ends with `Err(Elapsed)` between `after - TICK` and `after + TICK` (plus
//!   scheduling delay) after the call, unless it finished first. Below [`MIN_COARSE`] the call is a
//!   plain [`with_timeout`] (precise).
//! - Dropping the returned future leaves the table at once.
//! - Must be awaited inside a glommio executor; the table is per executor thread.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::timeout::{with_timeout, Elapsed};

/// How often the table is swept, and so the precision of a coarse deadline.
pub const TICK: Duration = Duration::from_secs(1);

/// Shorter timeouts are not worth a ±[`TICK`] error: they use a precise timer.
pub const MIN_COARSE: Duration = Duration::from_secs(2);

struct Entry {
    deadline: Instant,
    waker: Waker,
    fired: bool,
}

#[derive(Default)]
struct Table {
    entries: Slab<Entry>,
    /// The clock as of the last sweep (valid while `sweeping`).
    now: Option<Instant>,
    /// Whether this executor's sweeper task runs.
    sweeping: bool,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// Runs `fut` for about `after` at most (see the module doc for the precision); on timeout the
/// future is dropped (cancelled) and `Err(Elapsed)` is returned.
pub async fn with_coarse_timeout<T, Fut>(after: Duration, fut: Fut) -> Result<T, Elapsed>
where
    Fut: Future<Output = T>,
{
    if after < MIN_COARSE {
        return with_timeout(after, fut).await;
    }
    let mut fut = pin!(fut);
    let mut slot = Slot {
        key: None,
        _not_send: PhantomData,
    };
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if slot.expired(after, cx) {
            Poll::Ready(Err(Elapsed { after }))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Pending deadlines on this executor (for tests and diagnostics).
pub fn pending_coarse_deadlines() -> usize {
    TABLE.with(|t| t.borrow().entries.len())
}

/// A wait's place in the table; leaves it on drop.
struct Slot {
    key: Option<usize>,
    _not_send: PhantomData<*const ()>,
}

impl Slot {
    /// Enters the table on the first call; afterwards whether the deadline passed (and keeps the
    /// waker current).
    fn expired(&mut self, after: Duration, cx: &Context<'_>) -> bool {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            match self.key {
                None => {
                    let now = match (t.sweeping, t.now) {
                        (true, Some(now)) => now,
                        _ => {
                            let now = Instant::now();
                            t.now = Some(now);
                            now
                        }
                    };
                    self.key = Some(t.entries.insert(Entry {
                        deadline: now + after,
                        waker: cx.waker().clone(),
                        fired: false,
                    }));
                    if !t.sweeping {
                        t.sweeping = true;
                        glommio::spawn_local(sweep()).detach();
                    }
                    false
                }
                Some(key) => match t.entries.get_mut(key) {
                    Some(e) if e.fired => true,
                    Some(e) => {
                        if !e.waker.will_wake(cx.waker()) {
                            e.waker = cx.waker().clone();
                        }
                        false
                    }
                    // Cannot happen (only `Drop` removes the entry); treat it as expired rather
                    // than wait forever.
                    None => true,
                },
            }
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // `try_with`: a slot dropped while the thread's locals are torn down has no table.
            let _ = TABLE.try_with(|t| {
                t.borrow_mut().entries.try_remove(key);
            });
        }
    }
}

/// Clears the `sweeping` flag when the sweeper ends, however it ends (its executor dropping it
/// included), so that the next wait on this thread starts a new one.
struct SweepingFlag;

impl Drop for SweepingFlag {
    fn drop(&mut self) {
        let _ = TABLE.try_with(|t| t.borrow_mut().sweeping = false);
    }
}

/// Every [`TICK`]: refresh the coarse clock and wake the waits whose deadline passed; end when
/// the table is empty.
async fn sweep() {
    let _flag = SweepingFlag;
    let mut due = Vec::new();
    loop {
        glommio::timer::sleep(TICK).await;
        let empty = TABLE.with(|t| {
            let mut t = t.borrow_mut();
            let now = Instant::now();
            t.now = Some(now);
            for (_, e) in t.entries.iter_mut() {
                if !e.fired && e.deadline <= now {
                    e.fired = true;
                    due.push(e.waker.clone());
                }
            }
            t.entries.is_empty()
        });
        // Woken outside the borrow: a waker may run code that waits again.
        due.drain(..).for_each(Waker::wake);
        if empty {
            return;
        }
    }
}
