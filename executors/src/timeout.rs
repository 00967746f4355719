//! Deadlines on async phases, on glommio's timers.

use std::future::Future;
use std::time::Duration;

/// The deadline passed before the future finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {after:?}")]
pub struct Elapsed {
    /// The deadline that passed.
    pub after: Duration,
}

/// Runs `fut` for at most `after`; on timeout the future is dropped (cancelled) and `Err(Elapsed)` is
/// returned. Must be awaited inside a glommio executor (it arms that executor's timer).
pub async fn with_timeout<T, Fut>(after: Duration, fut: Fut) -> Result<T, Elapsed>
where
    Fut: Future<Output = T>,
{
    // glommio's `timeout` wants a fallible future; ours never fails, so any error is the timeout.
    glommio::timer::timeout(after, async { Ok(fut.await) })
        .await
        .map_err(|_| Elapsed { after })
}
