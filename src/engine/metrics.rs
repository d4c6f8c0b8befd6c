//! Engine counters and their Prometheus text exposition (`GET /metrics`).
//!
//! Counters are lock-free atomics bumped on the hot path; gauges for clients and tunnels are read from the
//! registry when scraped. [`StreamPermit`] both counts active streams and enforces
//! [`crate::limits::MAX_ENGINE_STREAMS`].

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::limits::MAX_ENGINE_STREAMS;

/// The engine's counters.
#[derive(Default)]
pub struct Metrics {
    /// Streams open now (pending or spliced).
    active_streams: AtomicUsize,
    /// Connections open now (any protocol).
    active_connections: AtomicUsize,
    /// Streams that reached an agent since start.
    pub streams_total: AtomicU64,
    /// Streams that failed before reaching an agent (no tunnel, no leg, refused).
    pub streams_failed_total: AtomicU64,
    /// Bytes relayed from clients to agents.
    pub bytes_in: AtomicU64,
    /// Bytes relayed from agents to clients.
    pub bytes_out: AtomicU64,
    /// Connections refused by authentication.
    pub auth_failures_total: AtomicU64,
}

/// One slot under a cap; released on drop.
pub struct Permit {
    slot: Arc<Metrics>,
    which: fn(&Metrics) -> &AtomicUsize,
}

/// A slot under [`MAX_ENGINE_STREAMS`].
pub type StreamPermit = Permit;

impl Drop for Permit {
    fn drop(&mut self) {
        (self.which)(&self.slot).fetch_sub(1, Ordering::AcqRel);
    }
}

fn try_acquire(metrics: &Arc<Metrics>, which: fn(&Metrics) -> &AtomicUsize, max: usize) -> Option<Permit> {
    which(metrics)
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
        .ok()
        .map(|_| Permit { slot: Arc::clone(metrics), which })
}

/// Gauges taken from the registry at scrape time.
pub struct Gauges {
    /// Connected control channels.
    pub clients: usize,
    /// Live tunnels.
    pub tunnels: usize,
    /// Streams waiting for an agent leg.
    pub pending_streams: usize,
    /// Subscribers of `/api/sse` and `/api/websocket`.
    pub event_subscribers: usize,
}

impl Metrics {
    /// A stream slot, or None when [`MAX_ENGINE_STREAMS`] are open.
    pub fn try_stream(self: &Arc<Self>) -> Option<StreamPermit> {
        try_acquire(self, |m| &m.active_streams, MAX_ENGINE_STREAMS)
    }

    /// A connection slot, or None when `max` connections are open (the engine's cap: at most
    /// [`crate::limits::MAX_ENGINE_CONNECTIONS`], see `engine::admission`).
    pub fn try_connection(self: &Arc<Self>, max: usize) -> Option<Permit> {
        try_acquire(self, |m| &m.active_connections, max)
    }

    /// Streams open now.
    pub fn active_streams(&self) -> usize {
        self.active_streams.load(Ordering::Acquire)
    }

    /// Prometheus text format (version 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        metric("rstream_engine_clients", "gauge", "Connected control channels.", g.clients as u64);
        metric("rstream_engine_tunnels", "gauge", "Live tunnels.", g.tunnels as u64);
        metric("rstream_engine_event_subscribers", "gauge", "Event stream subscribers.", g.event_subscribers as u64);
        metric(
            "rstream_engine_streams_active",
            "gauge",
            "Streams open now (pending or spliced).",
            self.active_streams() as u64,
        );
        metric(
            "rstream_engine_streams_pending",
            "gauge",
            "Streams waiting for the agent's leg.",
            g.pending_streams as u64,
        );
        metric(
            "rstream_engine_connections_active",
            "gauge",
            "Open connections.",
            self.active_connections.load(Ordering::Acquire) as u64,
        );
        metric("rstream_engine_streams_total", "counter", "Streams spliced to an agent.", load(&self.streams_total));
        metric(
            "rstream_engine_streams_failed_total",
            "counter",
            "Streams that never reached an agent.",
            load(&self.streams_failed_total),
        );
        metric(
            "rstream_engine_bytes_in_total",
            "counter",
            "Bytes relayed from clients to agents.",
            load(&self.bytes_in),
        );
        metric(
            "rstream_engine_bytes_out_total",
            "counter",
            "Bytes relayed from agents to clients.",
            load(&self.bytes_out),
        );
        metric(
            "rstream_engine_auth_failures_total",
            "counter",
            "Refused credentials.",
            load(&self.auth_failures_total),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_permits_count_and_release() {
        let m = Arc::new(Metrics::default());
        let p1 = m.try_stream().unwrap();
        let _p2 = m.try_stream().unwrap();
        assert_eq!(m.active_streams(), 2);
        drop(p1);
        assert_eq!(m.active_streams(), 1);
    }

    #[test]
    fn render_is_prometheus_text() {
        let m = Metrics::default();
        m.bytes_in.fetch_add(42, Ordering::Relaxed);
        let text = m.render(&Gauges { clients: 1, tunnels: 2, pending_streams: 0, event_subscribers: 1 });
        assert!(text.contains("# TYPE rstream_engine_tunnels gauge\nrstream_engine_tunnels 2\n"));
        assert!(text.contains("rstream_engine_bytes_in_total 42\n"));
        assert!(text.lines().all(|l| l.starts_with('#') || l.split(' ').count() == 2));
    }
}
