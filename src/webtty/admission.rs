//! Which connection a full `--listen` server closes to let a new client in.
//!
//! The server holds at most [`crate::limits::MAX_WEBTTY_CONNECTIONS`] connections. Left at that, as many clients
//! that connect and never finish a request (slowloris, half-open sockets, a stalled TLS handshake) would lock
//! everyone out until their timeouts fire (`HTTP_IDLE_TIMEOUT`, a minute). So a connection is *unproven* until a
//! request on it has passed the access check (token, origin, host: `webtty::gate`), and when the server is full
//! and a client is waiting, the oldest unproven connection is closed to admit it — as Apache's event MPM closes
//! idle keep-alive connections when it runs out of workers. A connection that has been admitted (a session, a
//! transfer) is never closed for a newcomer; one whose request is refused is answered and closed at once, so
//! clients without the token can neither prove themselves nor hold a place.
//!
//! ```
//! # smol::block_on(async {
//! use rstream::webtty::admission::Admission;
//! let admission = Admission::default();
//! let (silent, busy) = (admission.enter(), admission.enter());
//! busy.proven(); // a request passed the access check
//! assert!(admission.evict_oldest()); // closes `silent`
//! silent.evicted().await;
//! assert!(!admission.evict_oldest(), "a proven connection is never evicted");
//! # });
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The unproven connections of one listener, oldest first.
#[derive(Clone, Default)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    unproven: Mutex<VecDeque<(u64, async_channel::Sender<()>)>>,
    next_id: AtomicU64,
}

/// One connection's place in [`Admission`]; it leaves the queue when proven or dropped.
pub struct Ticket {
    id: u64,
    inner: Arc<Inner>,
    // Nothing is ever sent: the ticket holds a sender, so the channel closes only when evicted.
    _keep: async_channel::Sender<()>,
    evicted: async_channel::Receiver<()>,
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, VecDeque<(u64, async_channel::Sender<()>)>> {
        self.unproven.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn leave(&self, id: u64) {
        self.queue().retain(|(queued, _)| *queued != id);
    }
}

impl Admission {
    /// Registers a new, unproven connection.
    pub fn enter(&self) -> Ticket {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (keep, evicted) = async_channel::bounded(1);
        self.inner.queue().push_back((id, keep.clone()));
        Ticket { id, inner: Arc::clone(&self.inner), _keep: keep, evicted }
    }

    /// Evicts the oldest unproven connection (its [`Ticket::evicted`] completes); false if there is none.
    pub fn evict_oldest(&self) -> bool {
        let oldest = self.inner.queue().pop_front();
        oldest.map(|(_, evict)| evict.close()).is_some()
    }
}

impl Ticket {
    /// A request on the connection passed the access check: it is no longer evicted for newcomers.
    pub fn proven(&self) {
        self.inner.leave(self.id);
    }

    /// Completes once the connection is evicted (never, otherwise).
    pub async fn evicted(&self) {
        let _ = self.evicted.recv().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.inner.leave(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    fn is_evicted(ticket: &Ticket) -> bool {
        block_on(poll_once(ticket.evicted())).is_some()
    }

    #[test]
    fn the_oldest_unproven_connection_goes_first_and_proven_or_closed_ones_never() {
        let admission = Admission::default();
        let (first, second, third, fourth) =
            (admission.enter(), admission.enter(), admission.enter(), admission.enter());
        first.proven();
        drop(third);
        assert!(admission.evict_oldest());
        assert!(is_evicted(&second) && !is_evicted(&first) && !is_evicted(&fourth));
        assert!(admission.evict_oldest());
        assert!(is_evicted(&fourth) && !is_evicted(&first));
        assert!(!admission.evict_oldest(), "nothing left to evict");
        assert!(!is_evicted(&first));
    }
}
