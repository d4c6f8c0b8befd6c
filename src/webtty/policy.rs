//! Server-wide session rules: how many sessions may run at once ([`SessionSlots`]), how long one may last,
//! the shutdown signal every session and accept loop observes ([`Shutdown`]), whether the server adopts
//! what a killed session supervisor leaves behind ([`Orphanage`]), and which OS user sessions run as
//! ([`Execution`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;

pub use super::execution::Execution;
pub use super::orphans::Orphanage;
use crate::limits;

/// Counts running sessions against a maximum; a slot is released when its [`SessionSlot`] drops.
#[derive(Clone, Debug)]
pub struct SessionSlots {
    active: Arc<AtomicUsize>,
    max: usize,
}

/// One taken session slot.
#[derive(Debug)]
pub struct SessionSlot(Arc<AtomicUsize>);

impl SessionSlots {
    /// Room for `max` concurrent sessions.
    pub fn new(max: usize) -> Self {
        SessionSlots { active: Arc::new(AtomicUsize::new(0)), max }
    }

    /// Takes a slot, or `None` when all are busy.
    pub fn try_acquire(&self) -> Option<SessionSlot> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| SessionSlot(self.active.clone()))
    }

    /// Sessions running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// The maximum.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Server-wide rules every session follows.
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    /// Concurrent sessions.
    pub slots: SessionSlots,
    /// A session still running after this long is ended (its group killed).
    pub max_duration: Duration,
    /// When triggered, every running session ends (its group killed) and reports the shutdown.
    pub shutdown: Shutdown,
    /// Orphan adoption: the server as child subreaper sweeping strays, or none.
    pub orphans: Orphanage,
    /// Which OS user a session runs as (`--execution-mode`, `--login-user`, `--allow-client-user`).
    pub execution: Execution,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            slots: SessionSlots::new(limits::MAX_WEBTTY_SESSIONS),
            max_duration: limits::EXEC_MAX_DURATION,
            shutdown: Shutdown::never(),
            orphans: Orphanage::none(),
            execution: Execution::default(),
        }
    }
}

/// A broadcast "the server is stopping" signal, observed by every session and accept loop.
#[derive(Clone, Debug)]
pub struct Shutdown(Option<async_channel::Receiver<()>>);

/// The side that fires a [`Shutdown`] (dropping it fires it too).
#[derive(Debug)]
pub struct ShutdownTrigger(async_channel::Sender<()>);

impl Shutdown {
    /// A linked trigger and signal.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = async_channel::bounded(1);
        (ShutdownTrigger(tx), Shutdown(Some(rx)))
    }

    /// A signal that never fires.
    pub fn never() -> Shutdown {
        Shutdown(None)
    }

    /// Resolves once the shutdown is triggered.
    pub async fn wait(&self) {
        match &self.0 {
            Some(rx) => {
                let _ = rx.recv().await;
            }
            None => future::pending().await,
        }
    }

    /// Whether the shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| rx.is_closed())
    }
}

impl ShutdownTrigger {
    /// Fires the shutdown.
    pub fn trigger(&self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_beyond_the_maximum_and_free_on_drop() {
        let slots = SessionSlots::new(2);
        let a = slots.try_acquire().unwrap();
        let _b = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        drop(a);
        assert_eq!(slots.active(), 1);
        assert!(slots.try_acquire().is_some());
    }

    #[test]
    fn shutdown_fires_for_every_clone() {
        let (trigger, shutdown) = Shutdown::new();
        let other = shutdown.clone();
        assert!(!other.is_triggered());
        trigger.trigger();
        future::block_on(other.wait());
        assert!(shutdown.is_triggered() && !Shutdown::never().is_triggered());
    }
}
