//! Deadlines for network waits: every wait on a peer is bounded by a named limit.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_lite::FutureExt;

/// Runs `fut`, failing with `TimedOut` ("`what` timed out after …") if it has not finished within `limit`.
pub async fn with_deadline<T>(
    limit: Duration,
    what: impl std::fmt::Display,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let expire = async {
        async_io::Timer::after(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out after {limit:?}")))
    };
    fut.or(expire).await
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
        });
    }
}
