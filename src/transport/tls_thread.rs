//! The one thread that runs every TLS client session of the process (and the splice of each `forward` stream
//! with its session's pipes, `tls_splice`).
//!
//! embedded-tls's read futures hold raw pointers across `.await`, so a session future is not `Send` and cannot go
//! to smol's global executor (nor to tokio, which the MCP server runs on). Instead each session future is built
//! and polled on a dedicated thread with a `LocalExecutor`; callers on any executor get a `Send` task handle and
//! talk to the session through thread-safe pipes. One thread for all sessions keeps the device at one extra
//! stack, whatever the number of streams. Dropping the returned task cancels the session on that thread.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;

use crate::limits::{TLS_THREAD_JOB_QUEUE, TLS_THREAD_STACK};

/// A session future, built on the TLS thread.
type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// One request to the TLS thread: build this future there, spawn it, hand back its task.
struct Job {
    make: Box<dyn FnOnce() -> LocalFuture + Send>,
    reply: async_channel::Sender<smol::Task<()>>,
}

/// Builds the future returned by `make` on the TLS thread and runs it there; returns its task handle.
pub(crate) async fn spawn_session<F, Fut>(make: F) -> io::Result<smol::Task<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let jobs = jobs()?;
    let (reply, task) = async_channel::bounded(1);
    let job = Job { make: Box::new(move || Box::pin(make()) as LocalFuture), reply };
    jobs.send(job).await.map_err(|_| io::Error::other("the TLS thread has stopped"))?;
    task.recv().await.map_err(|_| io::Error::other("the TLS thread has stopped"))
}

fn jobs() -> io::Result<&'static async_channel::Sender<Job>> {
    static JOBS: OnceLock<Result<async_channel::Sender<Job>, String>> = OnceLock::new();
    JOBS.get_or_init(start).as_ref().map_err(|e| io::Error::other(e.clone()))
}

fn start() -> Result<async_channel::Sender<Job>, String> {
    let (tx, rx) = async_channel::bounded::<Job>(TLS_THREAD_JOB_QUEUE);
    std::thread::Builder::new()
        .name("rstream-tls".into())
        .stack_size(TLS_THREAD_STACK)
        .spawn(move || {
            let executor = smol::LocalExecutor::new();
            let accept = async {
                while let Ok(job) = rx.recv().await {
                    let task = executor.spawn((job.make)());
                    // If the caller went away, dropping the task cancels the session at once.
                    let _ = job.reply.try_send(task);
                }
            };
            smol::block_on(executor.run(accept));
        })
        .map(|_| tx)
        .map_err(|e| format!("cannot start the TLS thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_run_on_one_thread_and_dropping_cancels() {
        smol::block_on(async {
            let (tx, rx) = async_channel::bounded(2);
            for _ in 0..2 {
                let tx = tx.clone();
                spawn_session(move || async move {
                    let _ = tx.send(std::thread::current().id()).await;
                })
                .await
                .unwrap()
                .await;
            }
            let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
            assert_eq!(a, b);
            assert_ne!(a, std::thread::current().id());

            // A session that never ends is cancelled when its task is dropped: its state is dropped too.
            let (alive_tx, alive_rx) = async_channel::bounded::<()>(1);
            let task = spawn_session(move || async move {
                let _keep = alive_tx;
                futures_lite::future::pending::<()>().await;
            })
            .await
            .unwrap();
            drop(task);
            assert!(alive_rx.recv().await.is_err(), "the cancelled session dropped its sender");
        });
    }
}
