//! Deadlines on network waits: every await on a peer in the engine goes through [`timeout`].

use std::future::Future;
use std::time::Duration;

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
    futures_lite::future::or(async { Ok(fut.await) }, async {
        async_io::Timer::after(limit).await;
        Err(Elapsed(limit))
    })
    .await
}
