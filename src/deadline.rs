//! Deadlines for waits on peers: every await on the network is bounded by a named limit (`crate::limits`).
//!
//! [`timeout`] bounds any future; [`with_deadline`] is the I/O flavour that turns the expiry into a
//! `TimedOut` error naming what was being waited for.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_lite::FutureExt;

/// The deadline passed before the operation finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no progress within {:?}", self.0)
    }
}

impl std::error::Error for Elapsed {}

/// Runs `fut` for at most `limit`.
pub async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Result<T, Elapsed> {
    async { Ok(fut.await) }
        .or(async {
            async_io::Timer::after(limit).await;
            Err(Elapsed(limit))
        })
        .await
}

/// Runs `fut`, failing with `TimedOut` ("`what` timed out after …") if it has not finished within `limit`.
///
/// A plain function racing `fut` against the expiry, not an `async fn` wrapping it: the returned future holds
/// `fut` once (an `async` wrapper would keep a second copy of its state), which matters for the engine's
/// per-connection tasks that wait for silent peers.
pub fn with_deadline<T, F>(limit: Duration, what: impl std::fmt::Display, fut: F) -> impl Future<Output = io::Result<T>>
where
    F: Future<Output = io::Result<T>>,
{
    let expiry = async move {
        async_io::Timer::after(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out after {limit:?}")))
    };
    fut.or(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_work_times_out_with_a_named_error_and_fast_work_passes() {
        smol::block_on(async {
            let slow = with_deadline(Duration::from_millis(20), "waiting for the engine", async {
                futures_lite::future::pending::<io::Result<()>>().await
            });
            let err = slow.await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(err.to_string().starts_with("waiting for the engine timed out after"), "{err}");
            assert_eq!(with_deadline(Duration::from_secs(5), "x", async { Ok(7) }).await.unwrap(), 7);
            let pending = timeout(Duration::from_millis(10), futures_lite::future::pending::<()>()).await;
            assert_eq!(pending, Err(Elapsed(Duration::from_millis(10))));
            assert_eq!(timeout(Duration::from_secs(5), async { 3 }).await, Ok(3));
        });
    }
}
