//! Reaching a stream's origin: pick it, try it, and move the stream when the origin refuses.

use std::future::Future;
use std::sync::Arc;

use tracing::warn;

use crate::error::{Error, Side};
use crate::lb::Origin;
use crate::metrics::ErrorKind;
use crate::runtime::CoreState;

/// How many origins a session tries when they refuse connections.
pub const MAX_ORIGIN_ATTEMPTS: usize = 3;

/// Picks the origin of `key` and runs `attempt` against it. A retryable failure (refused or
/// unreachable, see [`Error::retryable`]) moves the pin on every core (the LB avoids that origin
/// for a while) and the next origin is tried, up to [`MAX_ORIGIN_ATTEMPTS`]; the last failure is
/// returned after the pin was still moved, so the next client does not hit the same origin.
pub async fn with_origin<T, F, Fut>(
    st: &CoreState,
    key: &str,
    mut attempt: F,
) -> Result<(T, Arc<Origin>), Error>
where
    F: FnMut(Arc<Origin>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut origin = st
        .lb
        .pick(key)
        .await
        .map_err(|e| Error::new(ErrorKind::NoOrigin, Side::Internal, e.to_string()))?;
    let mut tries = 1;
    loop {
        match attempt(origin.clone()).await {
            Ok(v) => return Ok((v, origin)),
            Err(e) if e.retryable() && tries < MAX_ORIGIN_ATTEMPTS => {
                warn!(
                    "origin {} for {key} failed ({e}); moving the stream",
                    origin.id
                );
                tries += 1;
                origin = st.lb.repick(key, &origin).await.map_err(|pe| {
                    Error::origin(ErrorKind::OriginUnreachable, format!("{e}; {pe}"))
                })?;
            }
            Err(e) => {
                if e.retryable() {
                    let _ = st.lb.repick(key, &origin).await;
                }
                return Err(e);
            }
        }
    }
}
