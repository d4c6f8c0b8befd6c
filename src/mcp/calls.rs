//! The requests in flight, shared by the stdio gate (which admits them as they arrive) and the tool handler
//! (which runs them): upstream's limits and refusals.
//!
//! - At most [`MCP_MAX_IN_FLIGHT`] requests are open at once; the next one is refused with -32000 "server is
//!   busy" before anything runs.
//! - A request whose id is still in flight is refused with -32600 "request id is already in progress".
//! - At most [`MCP_MAX_RUNNING_CALLS`] `tools/call` requests run at once; the others wait for a slot (FIFO).
//!
//! An entry leaves the book when its answer is written, or, for a cancelled call (whose answer is never
//! written), when the tool returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_lock::{Semaphore, SemaphoreGuardArc};
use rmcp::model::RequestId;

use crate::limits::{MCP_MAX_IN_FLIGHT, MCP_MAX_RUNNING_CALLS};

/// How a request is identified in the book: its id as compact JSON (`7` and `"7"` differ).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdKey(String);

impl IdKey {
    /// The key of `id`.
    pub fn of(id: &RequestId) -> IdKey {
        IdKey(serde_json::to_string(id).unwrap_or_default())
    }
}

/// The verdict on an arriving request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Recorded; pass it on.
    Admitted,
    /// Its id is already in flight.
    Duplicate,
    /// The book is full.
    Busy,
}

/// What kind of request an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `tools/call`: runs on a blocking thread, holds a run slot.
    ToolCall,
    /// Anything else (answered at once).
    Other,
}

/// The book of requests in flight.
pub struct CallBook {
    in_flight: Mutex<HashMap<IdKey, Kind>>,
    run_slots: Arc<Semaphore>,
}

impl CallBook {
    /// An empty book.
    pub fn new() -> Arc<CallBook> {
        Arc::new(CallBook {
            in_flight: Mutex::new(HashMap::new()),
            run_slots: Arc::new(Semaphore::new(MCP_MAX_RUNNING_CALLS)),
        })
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<IdKey, Kind>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an arriving request unless its id is taken or the book is full.
    pub fn admit(&self, key: IdKey, kind: Kind) -> Admission {
        let mut entries = self.entries();
        if entries.contains_key(&key) {
            return Admission::Duplicate;
        }
        if entries.len() >= MCP_MAX_IN_FLIGHT {
            return Admission::Busy;
        }
        entries.insert(key, kind);
        Admission::Admitted
    }

    /// The request `key` is over (answered, or cancelled and done).
    pub fn finish(&self, key: &IdKey) {
        self.entries().remove(key);
    }

    /// A `notifications/cancelled` arrived for `key`: requests that are not tool calls are answered at once, so
    /// their (dropped) answer will never end them; they end here. Tool calls end when the tool returns.
    pub fn cancelled(&self, key: &IdKey) {
        let mut entries = self.entries();
        if entries.get(key) == Some(&Kind::Other) {
            entries.remove(key);
        }
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for one of the [`MCP_MAX_RUNNING_CALLS`] run slots (released when the guard drops).
    pub async fn run_slot(&self) -> SemaphoreGuardArc {
        self.run_slots.acquire_arc().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    fn key(n: i64) -> IdKey {
        IdKey::of(&NumberOrString::Number(n))
    }

    #[test]
    fn duplicates_and_overflow_are_refused_until_an_entry_ends() {
        let book = CallBook::new();
        for n in 0..MCP_MAX_IN_FLIGHT as i64 {
            assert_eq!(book.admit(key(n), Kind::ToolCall), Admission::Admitted);
        }
        assert_eq!(book.admit(key(0), Kind::Other), Admission::Duplicate);
        assert_eq!(book.admit(key(999), Kind::Other), Admission::Busy);
        book.finish(&key(3));
        assert_eq!(book.admit(key(999), Kind::Other), Admission::Admitted);
        assert_eq!(IdKey::of(&NumberOrString::String("7".into())), IdKey("\"7\"".into()));
        assert_ne!(IdKey::of(&NumberOrString::String("7".into())), key(7));
    }

    #[test]
    fn a_cancel_ends_quick_requests_but_not_running_tool_calls() {
        let book = CallBook::new();
        book.admit(key(1), Kind::ToolCall);
        book.admit(key(2), Kind::Other);
        book.cancelled(&key(1));
        book.cancelled(&key(2));
        assert_eq!(book.admit(key(1), Kind::Other), Admission::Duplicate);
        assert_eq!(book.admit(key(2), Kind::Other), Admission::Admitted);
    }

    #[test]
    fn only_eight_run_slots_are_handed_out() {
        let book = CallBook::new();
        let held: Vec<_> = (0..MCP_MAX_RUNNING_CALLS).map(|_| smol::block_on(book.run_slot())).collect();
        assert!(book.run_slots.try_acquire().is_none());
        drop(held);
        assert!(book.run_slots.try_acquire().is_some());
    }
}
