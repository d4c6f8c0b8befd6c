//! A small, demand-driven pool of engine connections whose TLS handshake is already done.
//!
//! rstream 1.3 has no multiplexing: every incoming stream costs the agent a new TCP + TLS connection to the
//! engine (its *leg*). With connection-per-request traffic the handshake sits on every request's critical path.
//! The pool keeps up to [`LEG_POOL_SIZE`] connections handshaken ahead of time, with nothing sent on them yet;
//! when a `ProxyConnReq` arrives, a leg is taken from the pool and only the `ProxyReq` frame is left to send.
//!
//! The pool is filled by demand, never by a timer: a stream that arrives within [`LEG_POOL_MAX_IDLE`] of the
//! previous one (a burst) starts the dial of one replacement, so a lone stream costs exactly one handshake, as
//! without a pool, and an idle agent holds nothing for long: pooled legs expire after [`LEG_POOL_MAX_IDLE`],
//! well before an engine drops a connection that has not sent its first message (`FIRST_MESSAGE_TIMEOUT`).
//! A pooled connection the engine closed anyway is noticed before use (it reads as ended) and skipped.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_lite::future::poll_once;
use futures_lite::AsyncReadExt;

use crate::limits::{LEG_POOL_MAX_IDLE, LEG_POOL_SIZE};
use crate::proto::rstream::ALPN_RSTRM;
use crate::transport::{EngineEndpoint, TlsStream};

/// Handshaken connections to one engine, waiting for a `ProxyReq`.
pub(crate) struct LegPool {
    endpoint: Arc<EngineEndpoint>,
    state: Mutex<PoolState>,
}

/// What the pool holds: idle connections (oldest first), how many dials are under way, the last take.
#[derive(Default)]
struct PoolState {
    idle: VecDeque<(Instant, TlsStream)>,
    dialing: usize,
    last_take: Option<Instant>,
}

impl LegPool {
    /// An empty pool for `endpoint`.
    pub fn new(endpoint: Arc<EngineEndpoint>) -> Arc<LegPool> {
        Arc::new(LegPool { endpoint, state: Mutex::default() })
    }

    /// A connection ready for its first frame: a live pooled one, else a new dial. Within a burst one
    /// replacement dial starts, so the next stream finds a leg waiting.
    pub async fn take(self: &Arc<Self>) -> io::Result<TlsStream> {
        self.refill_in_burst();
        while let Some(mut tls) = self.pop_fresh() {
            if is_open(&mut tls).await {
                return Ok(tls);
            }
        }
        self.endpoint.connect(ALPN_RSTRM).await
    }

    /// How many handshaken connections are waiting.
    #[cfg(test)]
    pub fn idle_len(&self) -> usize {
        self.lock().idle.len()
    }

    /// Puts `tls` into the pool as if it had just been pre-dialed.
    #[cfg(test)]
    pub fn put(&self, tls: TlsStream) {
        self.lock().idle.push_back((Instant::now(), tls));
    }

    /// The newest pooled connection; expired ones are dropped on the way.
    fn pop_fresh(&self) -> Option<TlsStream> {
        let mut state = self.lock();
        state.drop_expired();
        state.idle.pop_back().map(|(_, tls)| tls)
    }

    /// Starts one background dial when this take follows the previous one within [`LEG_POOL_MAX_IDLE`] and
    /// the pool (counting dials under way) is below [`LEG_POOL_SIZE`]. The dialed leg waits at most
    /// [`LEG_POOL_MAX_IDLE`] for a stream, then the same task drops it.
    fn refill_in_burst(self: &Arc<Self>) {
        {
            let mut state = self.lock();
            let now = Instant::now();
            let in_burst = state.last_take.is_some_and(|t| now.duration_since(t) < LEG_POOL_MAX_IDLE);
            state.last_take = Some(now);
            if !in_burst || state.idle.len() + state.dialing >= LEG_POOL_SIZE {
                return;
            }
            state.dialing += 1;
        }
        let pool = self.clone();
        smol::spawn(async move {
            let dialed = pool.endpoint.connect(ALPN_RSTRM).await;
            {
                let mut state = pool.lock();
                state.dialing -= 1;
                match dialed {
                    Ok(tls) => state.idle.push_back((Instant::now(), tls)),
                    Err(e) => {
                        log_debug!("pre-dialing a proxy leg: {e}");
                        return;
                    }
                }
            }
            async_io::Timer::after(LEG_POOL_MAX_IDLE).await;
            pool.lock().drop_expired();
        })
        .detach();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PoolState {
    /// Drops the pooled connections older than [`LEG_POOL_MAX_IDLE`] (the oldest sit at the front).
    fn drop_expired(&mut self) {
        let now = Instant::now();
        while self.idle.front().is_some_and(|(since, _)| now.duration_since(*since) >= LEG_POOL_MAX_IDLE) {
            self.idle.pop_front();
        }
    }
}

/// Whether an idle connection can still carry a stream: the engine sends nothing before `ProxyReq`, so any
/// ready read — end of stream, an error, or unexpected bytes — means it is unusable.
pub(super) async fn is_open(tls: &mut TlsStream) -> bool {
    let mut probe = [0u8; 1];
    poll_once(tls.read(&mut probe)).await.is_none()
}
