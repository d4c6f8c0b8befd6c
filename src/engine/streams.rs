//! Streams: a client's connection spliced to an agent's leg.
//!
//! ```text
//! client ──StreamReq──▶ engine ──ProxyConnReq{stream_id, secret}──▶ agent (control channel)
//!                       engine ◀──ProxyReq{token = secret}───────── agent (new connection = the leg)
//! client ◀──StreamRsp── engine, then bytes both ways
//! ```
//! [`connect_to_agent`] is the engine side of that dance, shared by `StreamReq` and published HTTP: it waits
//! for the leg at most [`PROXY_LEG_DEADLINE`], so a missing leg fails the client fast, an agent that refuses or
//! disappears fails it at once (`SERVICE_UNAVAILABLE`). A client that asked for a `StreamRsp` (zero_rtt false)
//! of a tunnel whose agent speaks protocol 1.4 also waits, within the same deadline, for the agent's
//! `ProxyConnRsp` — its completion ack, sent once the leg is up and handed to the local side — so "stream ready"
//! means ready, and a local service that is down reaches the client as `SERVICE_UNAVAILABLE` with its reason.
//! [`relay`] then splices and counts bytes, until both sides end or the agent is declared unresponsive (its leg
//! would otherwise hold the client forever). Every stream, refused or spliced, ends with its `stream.summary`
//! event ([`super::summary`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_lite::{future, AsyncWriteExt};

use super::auth::STREAMS_CREATE_DELETE;
use super::connection::send;
use super::metrics::StreamPermit;
use super::registry::{AgentLiveness, TunnelView};
use super::splice::{splice, BoxedStream, Duplex};
use super::summary::{self, StreamStart, Termination};
use super::{ids, Engine};
use crate::deadline::timeout;
use crate::limits::{FIRST_MESSAGE_TIMEOUT, PROXY_LEG_DEADLINE};
use crate::proto::rstream::message::Payload;
use crate::proto::rstream::{
    opt_str, stream_rsp, Error as ProtoError, ErrorCode, ProxyReq, ProxyRsp, StreamReq, StreamRsp, TunnelProperties,
};

/// An agent leg ready to splice, holding its engine stream slot.
pub struct AgentLeg {
    /// The agent's connection (after its `ProxyReq`).
    pub stream: BoxedStream,
    /// Engine-assigned stream id.
    pub stream_id: String,
    /// The tunnel it belongs to.
    pub tunnel: TunnelProperties,
    /// Whether the tunnel's agent is still responding.
    pub agent: AgentLiveness,
    start: StreamStart,
    established: Instant,
    view: TunnelView,
    _permit: StreamPermit,
}

/// Whether [`connect_to_agent`] waits for the agent's confirmation of the stream besides its leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The leg is enough (zero-RTT clients, published HTTP).
    Leg,
    /// A 1.4 agent's `ProxyConnRsp` too (a client that asked for a `StreamRsp`).
    Confirmed,
}

/// Asks the agent owning `id_or_name` for a leg and waits for it — and, with [`Readiness::Confirmed`], for a
/// 1.4 agent's `ProxyConnRsp` — at most [`PROXY_LEG_DEADLINE`] in all.
pub async fn connect_to_agent(
    engine: &Engine,
    id_or_name: &str,
    source_ip: Option<IpAddr>,
    readiness: Readiness,
    admit: impl FnOnce(&TunnelProperties) -> Result<(), ProtoError>,
) -> Result<AgentLeg, ProtoError> {
    let started = Instant::now();
    let start = StreamStart::now(source_ip);
    let mut stream_id = None;
    let result = async {
        let permit = engine
            .metrics
            .try_stream()
            .ok_or_else(|| ProtoError::new(ErrorCode::CapacityExhausted, "engine is at its stream limit"))?;
        let pending = engine.registry.begin_stream(id_or_name, source_ip, admit)?;
        stream_id = Some(pending.stream_id.clone());
        let leg = match timeout(PROXY_LEG_DEADLINE, pending.leg.recv()).await {
            Err(_) => Err(ProtoError::new(
                ErrorCode::ServiceUnavailable,
                format!("agent of tunnel {id_or_name:?} did not connect within {PROXY_LEG_DEADLINE:?}"),
            )),
            Ok(Err(_)) => {
                Err(ProtoError::new(ErrorCode::ServiceUnavailable, format!("agent of tunnel {id_or_name:?} went away")))
            }
            Ok(Ok(Err(refused))) => {
                Err(ProtoError::new(ErrorCode::ServiceUnavailable, format!("agent refused the stream: {refused}")))
            }
            Ok(Ok(Ok(stream))) => Ok(stream),
        }?;
        if let (Readiness::Confirmed, Some(answer)) = (readiness, &pending.answer) {
            let left = PROXY_LEG_DEADLINE.saturating_sub(started.elapsed());
            match timeout(left, answer.recv()).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(refused))) => {
                    let why = format!("agent refused the stream: {refused}");
                    return Err(ProtoError::new(ErrorCode::ServiceUnavailable, why));
                }
                Ok(Err(_)) => {
                    let why = format!("agent of tunnel {id_or_name:?} went away");
                    return Err(ProtoError::new(ErrorCode::ServiceUnavailable, why));
                }
                Err(_) => {
                    let why = format!(
                        "agent of tunnel {id_or_name:?} did not confirm the stream within {PROXY_LEG_DEADLINE:?}"
                    );
                    return Err(ProtoError::new(ErrorCode::ServiceUnavailable, why));
                }
            }
        }
        let view = engine.registry.find(opt_str(&pending.tunnel.id).unwrap_or(id_or_name));
        Ok(AgentLeg {
            stream: leg,
            stream_id: pending.stream_id.clone(),
            tunnel: pending.tunnel.clone(),
            agent: pending.agent.clone(),
            start: start.clone(),
            established: Instant::now(),
            view: view.unwrap_or_else(|| TunnelView::detached(pending.tunnel.clone())),
            _permit: permit,
        })
    }
    .await;
    if let Err(e) = &result {
        engine.metrics.streams_failed_total.fetch_add(1, Ordering::Relaxed);
        let stream_id = stream_id.unwrap_or_else(ids::new_id);
        summary::failed(engine, &start, &stream_id, engine.registry.find(id_or_name), e);
    }
    result
}

/// Splices `client` with the agent's leg until both sides end or the agent is declared unresponsive; counts the
/// stream and its bytes.
pub async fn relay<S: Duplex + ?Sized>(engine: &Engine, client: &mut S, mut leg: AgentLeg) {
    engine.metrics.streams_total.fetch_add(1, Ordering::Relaxed);
    let m = &engine.metrics;
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    let agent = leg.agent.clone();
    let spliced = async {
        match splice(client, &mut leg.stream, &[&m.bytes_in, &up], &[&m.bytes_out, &down]).await {
            Ok(first) => Termination::Closed(first),
            Err(e) => Termination::Error(e),
        }
    };
    let severed = async {
        agent.unresponsive().await;
        Termination::AgentUnresponsive
    };
    let termination = future::or(spliced, severed).await;
    log_debug!("stream {} ended: {termination:?}", leg.stream_id);
    let end = summary::Ended {
        stream_id: &leg.stream_id,
        tunnel: &leg.view,
        established: leg.established,
        upstream_bytes: up.load(Ordering::Relaxed),
        downstream_bytes: down.load(Ordering::Relaxed),
        termination,
    };
    summary::ended(engine, &leg.start, end);
}

/// Serves a connection whose first message was `StreamReq`: a client dialing a tunnel by id or name. A request
/// for a datagram channel (protocol 1.4) is refused with `FEATURE_NOT_AVAILABLE`.
pub async fn serve_stream_req<S: Duplex>(engine: &Engine, mut client: S, req: StreamReq, peer: SocketAddr) {
    let zero_rtt = req.zero_rtt.is_some_and(|b| b.value);
    let token = req.client_details.as_ref().and_then(|d| opt_str(&d.token));
    let leg = match engine.auth.authorize(token, Some(STREAMS_CREATE_DELETE)) {
        Ok(_) if req.datagram_channel.is_some_and(|b| b.value) => Err(ProtoError::new(
            ErrorCode::FeatureNotAvailable,
            "datagram channels are not supported by this engine (byte-stream tunnels only)",
        )),
        Ok(_) => {
            let readiness = if zero_rtt { Readiness::Leg } else { Readiness::Confirmed };
            connect_to_agent(engine, &req.tunnel_id_name, Some(peer.ip()), readiness, |_| Ok(())).await
        }
        Err(e) => {
            engine.note_auth_failure();
            let refused = e.to_proto();
            summary::failed(engine, &StreamStart::now(Some(peer.ip())), &ids::new_id(), None, &refused);
            Err(refused)
        }
    };
    let leg = match leg {
        Ok(leg) => leg,
        Err(e) => {
            log_info!("stream to {:?} from {peer} refused: {e}", req.tunnel_id_name);
            if !zero_rtt {
                let rsp = StreamRsp { result: Some(stream_rsp::Result::Error(e)) };
                send(&mut client, Payload::StreamRsp(rsp), FIRST_MESSAGE_TIMEOUT).await;
            }
            let _ = timeout(FIRST_MESSAGE_TIMEOUT, client.close()).await;
            return;
        }
    };
    if !zero_rtt {
        let rsp = StreamRsp { result: Some(stream_rsp::Result::StreamId(leg.stream_id.clone())) };
        if !send(&mut client, Payload::StreamRsp(rsp), FIRST_MESSAGE_TIMEOUT).await {
            return;
        }
    }
    log_debug!("stream {} to tunnel {:?} from {peer}", leg.stream_id, req.tunnel_id_name);
    relay(engine, &mut client, leg).await;
}

/// Serves a connection whose first message was `ProxyReq`: an agent's leg for a pending stream. The leg is
/// handed to the waiting client's task, which splices it.
pub async fn serve_proxy_req<S: Duplex + 'static>(engine: &Engine, mut leg: S, req: ProxyReq, peer: SocketAddr) {
    // Upstream default: zero_rtt unless explicitly false.
    let wants_rsp = req.zero_rtt.is_some_and(|b| !b.value);
    let secret = req.client_details.as_ref().and_then(|d| opt_str(&d.token)).unwrap_or("");
    let claimed = engine.registry.claim_leg(&req.stream_id, secret);
    if wants_rsp {
        let rsp = ProxyRsp { error: claimed.as_ref().err().cloned() };
        if !send(&mut leg, Payload::ProxyRsp(rsp), FIRST_MESSAGE_TIMEOUT).await {
            return;
        }
    }
    match claimed {
        Ok(deliver) => {
            if deliver.try_send(Ok(Box::new(leg))).is_err() {
                log_debug!("leg for stream {} from {peer} arrived after the client gave up", req.stream_id);
            }
        }
        Err(e) => {
            engine.note_auth_failure();
            log_info!("proxy leg from {peer} refused: {e}");
            let _ = timeout(FIRST_MESSAGE_TIMEOUT, leg.close()).await;
        }
    }
}
