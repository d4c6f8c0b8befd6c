//! One agent's control channel: open (token check), tunnel registration, heartbeats, liveness, teardown.
//!
//! Liveness is negotiated when the client asks (protocol 1.4, `OpenControlChannelReq.liveness`): `Ok.liveness`
//! echoes its interval with a timeout of three intervals (at most 15 minutes, [`engine_answer`]), every numbered
//! heartbeat is acknowledged with `Heartbeat{sequence: 0, acknowledgement: N}`, and a peer silent for the
//! timeout is dead. A client that asks nothing (1.3) gets legacy liveness: empty heartbeats both ways, the engine
//! sending one every [`HEARTBEAT_INTERVAL`], and a peer silent for [`HEARTBEAT_DEAD_AFTER`] is dead.
//!
//! Two halves run concurrently on the one connection. The reader handles the agent's requests and replies
//! through the bounded outbox. The writer sends the outbox (replies, acks, `ProxyConnReq`, engine-initiated
//! `CloseTunnelRsp`) and, in legacy mode, the engine's own heartbeats, each write under [`HEARTBEAT_DEAD_AFTER`]. A channel whose token is revoked (`engine token revoke`) is closed at
//! the next message it receives (heartbeats come every few seconds). When either half ends the client leaves the
//! registry, and all its tunnels with it (their names stay reserved for the token's subject through the grace
//! period); when it ended because the agent stopped responding, the streams of those tunnels end too.

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::io::{split, AsyncWriteExt, ReadHalf, WriteHalf};
use futures_lite::StreamExt;

use super::connection::send;
use super::splice::Duplex;
use super::Engine;
use crate::deadline::timeout;
use crate::engine::auth::TUNNELS_CREATE_DELETE;
use crate::engine::jwt::Claims;
use crate::engine::registry::Outbox;
use crate::limits::{CONTROL_QUEUE_DEPTH, HEARTBEAT_DEAD_AFTER, HEARTBEAT_INTERVAL};
use crate::proto::frame::{read_frame, write_frame, FrameError};
use crate::proto::rstream::message::Payload;
use crate::proto::rstream::{
    engine_answer, open_control_channel_rsp, open_tunnel_rsp, opt_str, CloseControlChannelRsp, CloseTunnelRsp,
    ControlChannelLiveness, Error as ProtoError, ErrorCode, Heartbeat, Message, OpenControlChannelReq,
    OpenControlChannelRsp, OpenTunnelReq, OpenTunnelRsp,
};

/// Serves a connection whose first message was `OpenControlChannelReq`, until the channel ends.
pub async fn serve<S: Duplex>(engine: &Engine, mut stream: S, req: OpenControlChannelReq, peer: SocketAddr) {
    let mut details = req.client_details.unwrap_or_default();
    let claims = match engine.auth.authorize(opt_str(&details.token), None) {
        Ok(claims) => claims,
        Err(e) => {
            engine.note_auth_failure();
            return refuse(stream, peer, e.to_proto()).await;
        }
    };
    let liveness = match req.liveness.map(engine_answer).transpose() {
        Ok(liveness) => liveness,
        Err(e) => return refuse(stream, peer, ProtoError::new(ErrorCode::InvalidRequest, e)).await,
    };
    let mode = Liveness::of(liveness);
    details.token = None; // never keep credentials in the registry
    let agent = format!("{} {}", opt_str(&details.agent).unwrap_or("?"), opt_str(&details.version).unwrap_or("?"));
    let (outbox, queue) = async_channel::bounded(CONTROL_QUEUE_DEPTH);
    let client_id = engine.registry.add_client(details, claims.sub.clone(), outbox.clone());
    let ok = open_control_channel_rsp::Ok {
        client_id: client_id.clone(),
        server_details: Some(engine.server_details()),
        liveness,
    };
    let rsp = OpenControlChannelRsp { result: Some(open_control_channel_rsp::Result::Ok(ok)) };
    if send(&mut stream, Payload::OpenControlChannelRsp(rsp), HEARTBEAT_DEAD_AFTER).await {
        log_info!("control channel {client_id} open from {peer} ({agent}, sub {:?}, {mode})", claims.sub);
        let (reader, writer) = split(stream);
        let session = Session { engine, client_id: &client_id, claims: &claims, outbox, mode };
        let end = futures_lite::future::or(session.read_loop(reader), write_loop(writer, queue, mode)).await;
        if let ChannelEnd::Unresponsive(_) = end {
            engine.registry.declare_unresponsive(&client_id);
        }
        let removed = engine.registry.remove_client(&client_id);
        log_info!("control channel {client_id} closed ({end}); {} tunnel(s) removed", removed.len());
    } else {
        engine.registry.remove_client(&client_id);
    }
}

/// Answers an `OpenControlChannelReq` with `error` and closes the connection.
async fn refuse<S: Duplex>(mut stream: S, peer: SocketAddr, error: ProtoError) {
    log_info!("control channel from {peer} refused: {error}");
    let rsp = OpenControlChannelRsp { result: Some(open_control_channel_rsp::Result::Error(error)) };
    if send(&mut stream, Payload::OpenControlChannelRsp(rsp), HEARTBEAT_DEAD_AFTER).await {
        let _ = timeout(HEARTBEAT_DEAD_AFTER, stream.close()).await;
    }
}

/// How one control channel proves it is alive.
#[derive(Clone, Copy, Debug)]
enum Liveness {
    /// 1.3: empty heartbeats both ways; silent past [`HEARTBEAT_DEAD_AFTER`] is dead.
    Legacy,
    /// 1.4: the client's numbered heartbeats are acknowledged; silent past `timeout` is dead.
    Negotiated {
        /// The negotiated heartbeat timeout.
        timeout: Duration,
    },
}

impl Liveness {
    /// The mode of the policy in `Ok.liveness` (none: legacy).
    fn of(answer: Option<ControlChannelLiveness>) -> Liveness {
        match answer {
            None => Liveness::Legacy,
            Some(a) => Liveness::Negotiated { timeout: Duration::from_millis(u64::from(a.heartbeat_timeout_ms)) },
        }
    }

    /// How long the peer may stay silent.
    fn silence_limit(self) -> Duration {
        match self {
            Liveness::Legacy => HEARTBEAT_DEAD_AFTER,
            Liveness::Negotiated { timeout } => timeout,
        }
    }

    /// The reply to a heartbeat: an ack of a numbered one in a negotiated session, nothing otherwise.
    fn reply(self, heartbeat: Heartbeat) -> Option<Payload> {
        match self {
            Liveness::Negotiated { .. } if heartbeat.sequence > 0 => {
                Some(Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: heartbeat.sequence }))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Liveness::Legacy => f.write_str("legacy heartbeats"),
            Liveness::Negotiated { timeout } => write!(f, "negotiated liveness, timeout {timeout:?}"),
        }
    }
}

/// Why a control channel ended.
enum ChannelEnd {
    /// The agent stopped responding: silent past its liveness timeout, or not taking writes for
    /// [`HEARTBEAT_DEAD_AFTER`]. Its streams are severed with it.
    Unresponsive(String),
    /// Closed, asked to close, broken or misbehaving: its streams end on their own.
    Ended(String),
}

impl std::fmt::Display for ChannelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelEnd::Unresponsive(why) => write!(f, "{why}; its streams are severed"),
            ChannelEnd::Ended(why) => f.write_str(why),
        }
    }
}

/// The reader half's view of one control channel.
struct Session<'a> {
    engine: &'a Engine,
    client_id: &'a str,
    claims: &'a Claims,
    outbox: Outbox,
    mode: Liveness,
}

impl Session<'_> {
    /// Handles requests until the peer closes, goes silent, misbehaves, or asks to close.
    async fn read_loop<S: Duplex>(self, mut reader: ReadHalf<S>) -> ChannelEnd {
        let silence = self.mode.silence_limit();
        loop {
            let msg: Message = match timeout(silence, read_frame(&mut reader)).await {
                Err(_) => return ChannelEnd::Unresponsive(format!("peer silent for {silence:?}")),
                Ok(Err(FrameError::Closed)) => return ChannelEnd::Ended("peer closed".into()),
                Ok(Err(e)) => return ChannelEnd::Ended(e.to_string()),
                Ok(Ok(msg)) => msg,
            };
            if self.engine.auth.is_revoked(self.claims) {
                return ChannelEnd::Ended(format!("token of subject {:?} was revoked", self.claims.sub));
            }
            let reply = match msg.payload {
                Some(Payload::Heartbeat(heartbeat)) => self.mode.reply(heartbeat),
                Some(Payload::OpenTunnelReq(req)) => Some(Payload::OpenTunnelRsp(self.open_tunnel(req))),
                Some(Payload::CloseTunnelReq(req)) => {
                    if let Err(e) = self.engine.registry.close_tunnel(self.client_id, &req.tunnel_id) {
                        log_debug!("close tunnel on {}: {e}", self.client_id);
                    }
                    Some(Payload::CloseTunnelRsp(CloseTunnelRsp { tunnel_id: req.tunnel_id }))
                }
                Some(Payload::ProxyConnRsp(rsp)) => {
                    let answer = rsp.error.map_or(Ok(()), Err);
                    self.engine.registry.answer_stream(self.client_id, &rsp.stream_id, answer);
                    None
                }
                Some(Payload::CloseControlChannelReq(_)) => {
                    let bye = Box::new(Message::new(Payload::CloseControlChannelRsp(CloseControlChannelRsp {})));
                    let _ = self.outbox.try_send(bye);
                    self.outbox.close(); // the writer drains the queue, then ends the channel
                    return futures_lite::future::pending().await;
                }
                other => {
                    log_debug!("control channel {}: ignoring unexpected message {other:?}", self.client_id);
                    None
                }
            };
            if let Some(payload) = reply {
                if self.outbox.try_send(Box::new(Message::new(payload))).is_err() {
                    return ChannelEnd::Ended("agent stopped reading its control channel".into());
                }
            }
        }
    }

    fn open_tunnel(&self, req: OpenTunnelReq) -> OpenTunnelRsp {
        let result = if self.claims.allows(TUNNELS_CREATE_DELETE) {
            let requested = req.tunnel_properties.unwrap_or_default();
            let hosts = &self.engine.hosts;
            self.engine.registry.open_tunnel(self.client_id, requested, |name| hosts.tunnel_authority(name))
        } else {
            Err(ProtoError::new(ErrorCode::Unauthorized, format!("token lacks permission {TUNNELS_CREATE_DELETE}")))
        };
        match &result {
            Ok(props) => log_info!(
                "tunnel {} ({:?}) open on {}",
                opt_str(&props.id).unwrap_or(""),
                opt_str(&props.name).unwrap_or(""),
                self.client_id
            ),
            Err(e) => log_info!("tunnel refused on {}: {e}", self.client_id),
        }
        let result = match result {
            Ok(props) => open_tunnel_rsp::Result::TunnelProperties(props),
            Err(e) => open_tunnel_rsp::Result::Error(e),
        };
        OpenTunnelRsp { request_id: req.request_id, result: Some(result) }
    }
}

/// Sends queued messages (and, in legacy mode, a heartbeat every [`HEARTBEAT_INTERVAL`]) until the queue is
/// closed and drained, or a write fails. In a negotiated session the engine only acknowledges: an unnumbered
/// heartbeat would read as an acknowledgement of 0, which a 1.4 client refuses.
async fn write_loop<S: Duplex>(
    mut writer: WriteHalf<S>,
    queue: async_channel::Receiver<Box<Message>>,
    mode: Liveness,
) -> ChannelEnd {
    let mut ticker = async_io::Timer::interval(HEARTBEAT_INTERVAL);
    loop {
        let next = futures_lite::future::or(async { queue.recv().await.ok() }, async {
            match mode {
                Liveness::Legacy => ticker.next().await,
                Liveness::Negotiated { .. } => futures_lite::future::pending().await,
            };
            Some(Box::new(Message::new(Payload::Heartbeat(Heartbeat::LEGACY))))
        })
        .await;
        let Some(msg) = next else {
            let _ = timeout(HEARTBEAT_DEAD_AFTER, writer.close()).await;
            return ChannelEnd::Ended("closed".into());
        };
        match timeout(HEARTBEAT_DEAD_AFTER, write_frame(&mut writer, &*msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return ChannelEnd::Ended(format!("write failed: {e}")),
            Err(e) => return ChannelEnd::Unresponsive(format!("write stalled: {e}")),
        }
    }
}
