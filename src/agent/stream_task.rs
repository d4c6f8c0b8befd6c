//! One incoming stream, from the engine's `ProxyConnReq` to the handler: ready the local side, dial the leg,
//! confirm the stream, serve it.
//!
//! The order is upstream's since protocol 1.4: `ProxyConnRsp` is a completion ack, sent only once the leg is up
//! and about to be handed over, so an engine that waits for it (a client that asked for a `StreamRsp`) tells its
//! client the stream is ready only when it is. When the handler cannot ready the local side (`forward`'s service
//! is down) or the leg cannot be dialed, the answer is `SERVICE_UNAVAILABLE` with the reason, and no leg (or
//! none handed over) is left behind.
//!
//! A redirect (`ProxyConnReq.proxy_endpoint`, direct ingress routing) sends the leg to that engine instead of
//! the control engine ([`EngineEndpoint::redirected`]: its host as SNI and verified name, the same trust
//! anchors, never without verification); it must carry the stream's secret ([`redirect_of`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::handler::{StreamHandler, StreamInfo};
use super::leg::open_leg;
use super::leg_pool::LegPool;
use crate::limits::PROXY_LEG_DEADLINE;
use crate::proto::rstream::{
    message::Payload, opt_str, Error as WireError, ErrorCode, Message, ProxyConnReq, ProxyConnRsp,
};
use crate::secret::Secret;
use crate::transport::{with_deadline, EngineEndpoint};

/// What one stream's task needs.
pub(crate) struct StreamTask<H> {
    /// Serves the stream.
    pub handler: Arc<H>,
    /// Legs to the control engine.
    pub legs: Arc<LegPool>,
    /// The control engine (the base of a redirect).
    pub endpoint: Arc<EngineEndpoint>,
    /// Which stream.
    pub info: StreamInfo,
    /// The stream's one-time credential.
    pub secret: Secret,
    /// The engine to dial the leg to instead of the control engine.
    pub redirect: Option<String>,
    /// The control channel's outgoing queue, for the `ProxyConnRsp`.
    pub outbox: async_channel::Sender<Message>,
    /// False once the session that accepted the stream has ended: the stream is then not handed over.
    pub admitting: Arc<AtomicBool>,
}

impl<H: StreamHandler> StreamTask<H> {
    /// Readies the local side, dials the leg, answers the engine, and serves the stream.
    pub async fn run(self) {
        let stream_id = self.info.stream_id.clone();
        let prepare = async { Ok(self.handler.prepare(&self.info).await) };
        let local = match with_deadline(PROXY_LEG_DEADLINE, "readying the local side", prepare).await {
            Ok(Ok(local)) => local,
            Ok(Err(why)) => return self.answer(Some(why)),
            Err(timed_out) => return self.answer(Some(timed_out.to_string())),
        };
        let redirect = self.redirect.as_deref();
        let dial = open_leg(&self.legs, &self.endpoint, &self.info, self.secret.clone(), redirect);
        let leg = match with_deadline(PROXY_LEG_DEADLINE, "dialing the proxy leg", dial).await {
            Ok(leg) => leg,
            Err(e) => return self.answer(Some(format!("dialing the proxy leg: {e}"))),
        };
        if !self.admitting.load(Ordering::Acquire) {
            return log_info!("stream {stream_id}: the control channel was lost; not admitted");
        }
        self.answer(None);
        self.handler.handle(leg, self.info, local).await;
    }

    /// Sends the `ProxyConnRsp`: ready, or `SERVICE_UNAVAILABLE` with `failure`. A full or closed queue is
    /// the session's to notice; the stream only logs it.
    fn answer(&self, failure: Option<String>) {
        let stream_id = &self.info.stream_id;
        if let Some(why) = &failure {
            log_warn!("stream {stream_id}: {why}");
        }
        let error = failure.map(|why| WireError::new(ErrorCode::ServiceUnavailable, why));
        let rsp = ProxyConnRsp { stream_id: stream_id.clone(), error };
        if self.outbox.try_send(Message::new(Payload::ProxyConnRsp(rsp))).is_err() {
            log_debug!("stream {stream_id}: the control channel is gone; ProxyConnRsp not sent");
        }
    }
}

/// The engine a leg is redirected to (`proxy_endpoint`), if any; a redirect without an endpoint or without the
/// stream's secret is refused with the reason.
pub(crate) fn redirect_of(req: &ProxyConnReq) -> Result<Option<String>, String> {
    let Some(endpoint) = opt_str(&req.proxy_endpoint) else { return Ok(None) };
    if endpoint.is_empty() || opt_str(&req.secret).is_none_or(str::is_empty) {
        return Err("redirected proxy connection requires a non-empty endpoint and stream credential".into());
    }
    Ok(Some(endpoint.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rstream::some_str;

    #[test]
    fn a_redirect_needs_an_endpoint_and_the_stream_secret() {
        let req = |endpoint: Option<&str>, secret: Option<&str>| ProxyConnReq {
            proxy_endpoint: endpoint.and_then(some_str),
            secret: secret.and_then(some_str),
            ..Default::default()
        };
        assert_eq!(redirect_of(&req(None, Some("s"))), Ok(None));
        assert_eq!(redirect_of(&req(Some("ingress:8443"), Some("s"))), Ok(Some("ingress:8443".into())));
        for refused in [req(Some("ingress:8443"), None), req(Some("ingress:8443"), Some("")), req(Some(""), Some("s"))]
        {
            assert!(redirect_of(&refused).unwrap_err().contains("non-empty endpoint and stream credential"));
        }
    }
}
