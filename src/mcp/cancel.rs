//! Cancellation of one tool call, from the server's async side to the blocking thread running the tool.
//!
//! The server holds the [`Canceller`]; the tool gets the [`Cancel`] and races its network work against
//! [`Cancel::cancelled`] (or hands [`Cancel::signal`] to the WebTTY exec client, which then ends the session so
//! the device kills the remote process group). Both sides are runtime-agnostic (a closed `async-channel`), so
//! the smol-driven tool code needs no tokio.

use std::future::Future;

use async_channel::{Receiver, Sender};

use super::args::ToolError;
use crate::webtty::client::CancelSignal;

/// Fires the cancellation (dropping it fires it too: a call whose server side went away is over).
pub struct Canceller(Sender<()>);

impl Canceller {
    /// Cancels the call.
    pub fn cancel(&self) {
        self.0.close();
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What a tool sees of its call's cancellation.
#[derive(Clone)]
pub struct Cancel {
    rx: Receiver<()>,
    /// Keeps the channel open for [`Cancel::never`].
    _open: Option<std::sync::Arc<Sender<()>>>,
}

impl Cancel {
    /// A linked pair: `Canceller::cancel` makes `Cancel::cancelled` complete.
    pub fn pair() -> (Canceller, Cancel) {
        let (tx, rx) = async_channel::bounded(1);
        (Canceller(tx), Cancel { rx, _open: None })
    }

    /// A cancel that never fires (tests, direct calls).
    pub fn never() -> Cancel {
        let (tx, rx) = async_channel::bounded(1);
        Cancel { rx, _open: Some(std::sync::Arc::new(tx)) }
    }

    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.rx.is_closed()
    }

    /// Completes when the call is cancelled.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let rx = self.rx.clone();
        async move { while rx.recv().await.is_ok() {} }
    }

    /// The same, boxed for [`crate::webtty::client::ExecRequest::cancel`].
    pub fn signal(&self) -> CancelSignal {
        Box::pin(self.cancelled())
    }

    /// Runs `work` unless the call is cancelled first (then the work is dropped and an error returned).
    pub async fn guard<T>(&self, work: impl Future<Output = Result<T, ToolError>>) -> Result<T, ToolError> {
        let cancelled = async {
            self.cancelled().await;
            Err(ToolError::new("cancelled by the client (notifications/cancelled)"))
        };
        futures_lite::future::or(work, cancelled).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_ends_the_guarded_work_and_dropping_the_canceller_counts() {
        let (canceller, cancel) = Cancel::pair();
        assert!(!cancel.is_cancelled());
        let slow = cancel.guard(async {
            futures_lite::future::pending::<()>().await;
            Ok(())
        });
        canceller.cancel();
        assert!(smol::block_on(slow).unwrap_err().0.contains("cancelled"));
        let (canceller, cancel) = Cancel::pair();
        drop(canceller);
        assert!(cancel.is_cancelled());
        let never = Cancel::never();
        assert_eq!(smol::block_on(never.guard(async { Ok(7) })).unwrap(), 7);
    }
}
