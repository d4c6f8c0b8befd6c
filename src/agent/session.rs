//! One control-channel session: open it, register every tunnel, then serve the engine until the channel dies.
//!
//! The channel asks for negotiated liveness (protocol 1.4) with the agent's heartbeat interval
//! (`HEARTBEAT_INTERVAL` by default). An engine that answers `Ok.liveness` gets numbered heartbeats and must
//! acknowledge each; its policy and acks are checked by [`client_accepts`] and [`HeartbeatCounter`], and a
//! malformed one ends the session. An engine that answers nothing (1.3) gets legacy empty heartbeats.
//!
//! Three loops share the session and end it together (the first to finish wins):
//! - the reader takes the engine's frames: `OpenTunnelRsp` (matched to its `OpenTunnelReq` by request id),
//!   `ProxyConnReq` (a [`StreamTask`] readies the local side, dials the leg, answers `ProxyConnRsp` and serves
//!   the stream), heartbeats and their
//!   acks, engine-initiated closes. Any frame counts as liveness: an engine silent for the negotiated timeout
//!   (`HEARTBEAT_DEAD_AFTER` in legacy mode) is dead;
//! - the writer drains a bounded queue of outgoing frames (`CONTROL_QUEUE_DEPTH`): a full queue means the
//!   engine stopped reading, which ends the session rather than buffering;
//! - the heartbeat loop queues a `Heartbeat` every interval.
//!
//! When the session ends, it stops admitting streams at once: a stream whose leg was still being dialed is
//! dropped instead of handed over, while streams already handed to the handler keep their own legs and drain.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_lock::Semaphore;
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::FutureExt;

use super::events::{AgentEvent, EventSink};
use super::handler::{StreamHandler, StreamInfo};
use super::leg_pool::LegPool;
use super::stream_task::{redirect_of, StreamTask};
use super::AgentError;
use crate::limits::{CONTROL_QUEUE_DEPTH, FIRST_MESSAGE_TIMEOUT, HEARTBEAT_DEAD_AFTER, MAX_AGENT_STREAMS};
use crate::proto::frame::{read_frame, write_frame};
use crate::proto::rstream::{
    client_accepts, message::Payload, open_control_channel_rsp, open_tunnel_rsp, opt_str, ClientDetails,
    CloseControlChannelRsp, ControlChannelLiveness, Error as WireError, ErrorCode, Heartbeat, HeartbeatCounter,
    Message, OpenControlChannelReq, OpenTunnelReq, ProxyConnReq, ProxyConnRsp, ServerDetails, TunnelProperties,
    ALPN_RSTRM,
};
use crate::secret::Secret;
use crate::transport::{payload_name, with_deadline, EngineEndpoint, TlsStream};

/// Everything one session needs; owned by the supervisor and shared with stream tasks.
pub(crate) struct Session<H> {
    pub endpoint: Arc<EngineEndpoint>,
    pub legs: Arc<LegPool>,
    pub tunnels: Arc<Vec<TunnelProperties>>,
    pub handler: Arc<H>,
    pub events: EventSink,
    pub streams: Arc<Semaphore>,
    pub stream_count: Arc<AtomicU64>,
    /// How often heartbeats are sent (the interval asked for in the liveness policy).
    pub heartbeat_interval: Duration,
}

type Outbox = async_channel::Sender<Message>;

/// How one session proves the engine alive.
#[derive(Clone)]
enum Liveness {
    /// A 1.3 engine: empty heartbeats; silent past [`HEARTBEAT_DEAD_AFTER`] is dead.
    Legacy,
    /// Negotiated: numbered heartbeats, each acknowledged; silent past `timeout` is dead.
    Negotiated {
        /// The engine's heartbeat timeout.
        timeout: Duration,
        /// Heartbeats sent and acknowledged.
        counter: Arc<HeartbeatCounter>,
    },
}

impl Liveness {
    fn silence_limit(&self) -> Duration {
        match self {
            Liveness::Legacy => HEARTBEAT_DEAD_AFTER,
            Liveness::Negotiated { timeout, .. } => *timeout,
        }
    }

    /// Checks a heartbeat from the engine: in a negotiated session it must be a valid acknowledgement.
    fn received(&self, heartbeat: Heartbeat) -> Result<(), AgentError> {
        match self {
            Liveness::Legacy => Ok(()),
            Liveness::Negotiated { counter, .. } => counter
                .acknowledge(heartbeat.acknowledgement)
                .map_err(|e| AgentError::Lost(format!("control channel protocol error: {e}"))),
        }
    }

    /// The next heartbeat to send.
    fn next_heartbeat(&self) -> Heartbeat {
        match self {
            Liveness::Legacy => Heartbeat::LEGACY,
            Liveness::Negotiated { counter, .. } => counter.next_heartbeat(),
        }
    }
}

impl<H: StreamHandler> Session<H> {
    /// Runs one session to its end. Returns whether every tunnel got registered, and why it ended.
    pub async fn run(&self) -> (bool, AgentError) {
        (self.events)(&AgentEvent::Connecting { engine: self.endpoint.addr.clone() });
        let (tls, client_id, server, liveness) = match self.open().await {
            Ok(opened) => opened,
            Err(error) => {
                (self.events)(&AgentEvent::ConnectionFailed { error: error.to_string() });
                return (false, error);
            }
        };
        (self.events)(&AgentEvent::Connected { client_id, server });
        let (reader, writer) = futures_lite::io::split(tls);
        let (outbox, queue) = async_channel::bounded(CONTROL_QUEUE_DEPTH);
        let registered = AtomicBool::new(false);
        let admitting = Arc::new(AtomicBool::new(true));
        let error = self
            .serve(reader, outbox.clone(), &registered, &liveness, &admitting)
            .or(write_messages(writer, queue))
            .or(send_heartbeats(outbox, self.heartbeat_interval, liveness.clone()))
            .await;
        admitting.store(false, Ordering::Release);
        if let AgentError::Lost(e) = &error {
            (self.events)(&AgentEvent::Disconnected { error: e.clone() });
        }
        (registered.load(Ordering::Relaxed), error)
    }

    /// Connects and opens the control channel with the context token, asking for negotiated liveness.
    async fn open(&self) -> Result<(TlsStream, String, ServerDetails, Liveness), AgentError> {
        let mut tls = self.endpoint.connect(ALPN_RSTRM).await.map_err(|e| AgentError::Connect(e.to_string()))?;
        let details = ClientDetails::this_binary(self.endpoint.token.expose());
        let interval_ms = u32::try_from(self.heartbeat_interval.as_millis()).unwrap_or(u32::MAX);
        let liveness = ControlChannelLiveness { heartbeat_interval_ms: interval_ms, heartbeat_timeout_ms: 0 };
        let req = OpenControlChannelReq { client_details: Some(details), liveness: Some(liveness) };
        let req = Message::new(Payload::OpenControlChannelReq(req));
        let rsp: Message =
            with_deadline(FIRST_MESSAGE_TIMEOUT, "waiting for the engine's OpenControlChannelRsp", async {
                write_frame(&mut tls, &req).await?;
                Ok(read_frame(&mut tls).await?)
            })
            .await
            .map_err(|e| AgentError::Connect(format!("opening the control channel: {e}")))?;
        match rsp.payload {
            Some(Payload::OpenControlChannelRsp(rsp)) => match rsp.result {
                Some(open_control_channel_rsp::Result::Ok(ok)) => {
                    let liveness = match client_accepts(interval_ms, ok.liveness).map_err(AgentError::Connect)? {
                        None => Liveness::Legacy,
                        Some(timeout) => Liveness::Negotiated { timeout, counter: Arc::default() },
                    };
                    Ok((tls, ok.client_id, ok.server_details.unwrap_or_default(), liveness))
                }
                Some(open_control_channel_rsp::Result::Error(e)) => Err(AgentError::Refused(e)),
                None => Err(AgentError::Connect("empty OpenControlChannelRsp from the engine".into())),
            },
            other => Err(AgentError::Connect(format!(
                "expected OpenControlChannelRsp from the engine, got {}",
                payload_name(&other)
            ))),
        }
    }

    /// Registers the tunnels, then handles the engine's frames until the session fails.
    async fn serve(
        &self,
        mut reader: ReadHalf<TlsStream>,
        outbox: Outbox,
        registered: &AtomicBool,
        liveness: &Liveness,
        admitting: &Arc<AtomicBool>,
    ) -> AgentError {
        let mut pending = HashMap::new();
        for (i, tunnel) in self.tunnels.iter().enumerate() {
            let request_id = match request_id() {
                Ok(id) => id,
                Err(e) => return AgentError::Lost(format!("no randomness for a request id: {e}")),
            };
            pending.insert(request_id.clone(), i);
            let req = OpenTunnelReq { request_id, tunnel_properties: Some(tunnel.clone()) };
            if let Err(e) = queue(&outbox, Payload::OpenTunnelReq(req)) {
                return e;
            }
        }
        let registration_deadline = Instant::now() + FIRST_MESSAGE_TIMEOUT;
        let mut names_by_id: HashMap<String, String> = HashMap::new();
        let silence = liveness.silence_limit();
        loop {
            let registering = !pending.is_empty();
            let wait = match registering {
                true => silence.min(registration_deadline.saturating_duration_since(Instant::now())),
                false => silence,
            };
            let what = match registering {
                true => "waiting for the engine's OpenTunnelRsp",
                false => "waiting for the engine (heartbeat)",
            };
            let msg: Message = match with_deadline(wait, what, async { Ok(read_frame(&mut reader).await?) }).await {
                Ok(msg) => msg,
                Err(e) => return AgentError::Lost(format!("control channel: {e}")),
            };
            let outcome = match msg.payload {
                Some(Payload::OpenTunnelRsp(rsp)) => {
                    let Some(i) = pending.remove(&rsp.request_id) else {
                        log_debug!("ignoring OpenTunnelRsp for unknown request {:?}", rsp.request_id);
                        continue;
                    };
                    let name = opt_str(&self.tunnels[i].name).unwrap_or("").to_owned();
                    let outcome = self.registered(name, rsp.result, &mut names_by_id);
                    if outcome.is_ok() && pending.is_empty() {
                        registered.store(true, Ordering::Relaxed);
                    }
                    outcome
                }
                Some(Payload::ProxyConnReq(req)) => self.accept_stream(req, &names_by_id, &outbox, admitting),
                Some(Payload::Heartbeat(heartbeat)) => liveness.received(heartbeat),
                Some(Payload::CloseTunnelRsp(closed)) => match names_by_id.get(&closed.tunnel_id) {
                    Some(name) => Err(AgentError::Lost(format!("the engine closed tunnel {name:?}"))),
                    None => Ok(()),
                },
                Some(Payload::ServerMessage(m)) => {
                    log_info!("engine says: {}", m.message);
                    Ok(())
                }
                Some(Payload::CloseControlChannelReq(_)) => {
                    let _ = queue(&outbox, Payload::CloseControlChannelRsp(CloseControlChannelRsp {}));
                    Err(AgentError::Lost("the engine closed the control channel".into()))
                }
                other => {
                    log_debug!("ignoring {} on the control channel", payload_name(&other));
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                return e;
            }
        }
    }

    /// Handles one `OpenTunnelRsp`.
    fn registered(
        &self,
        name: String,
        result: Option<open_tunnel_rsp::Result>,
        names_by_id: &mut HashMap<String, String>,
    ) -> Result<(), AgentError> {
        match result {
            Some(open_tunnel_rsp::Result::TunnelProperties(tunnel)) => {
                names_by_id.insert(opt_str(&tunnel.id).unwrap_or("").to_owned(), name);
                (self.events)(&AgentEvent::Online { tunnel: Box::new(tunnel) });
                Ok(())
            }
            Some(open_tunnel_rsp::Result::Error(error)) => {
                (self.events)(&AgentEvent::TunnelFailed { name: name.clone(), error: error.to_string() });
                Err(AgentError::TunnelRefused { name, error })
            }
            None => Err(AgentError::Lost("OpenTunnelRsp with neither properties nor error".into())),
        }
    }

    /// Starts the stream task of a `ProxyConnReq` ([`StreamTask`], which answers it once the leg is up), or
    /// refuses it at once: an unknown tunnel, a redirect without a secret, the agent at capacity.
    fn accept_stream(
        &self,
        req: ProxyConnReq,
        names_by_id: &HashMap<String, String>,
        outbox: &Outbox,
        admitting: &Arc<AtomicBool>,
    ) -> Result<(), AgentError> {
        let refuse = |code, message: String| {
            log_warn!("refusing stream {}: {message}", req.stream_id);
            let rsp = ProxyConnRsp { stream_id: req.stream_id.clone(), error: Some(WireError::new(code, message)) };
            queue(outbox, Payload::ProxyConnRsp(rsp))
        };
        let Some(name) = names_by_id.get(&req.tunnel_id) else {
            return refuse(
                ErrorCode::TunnelNotFound,
                format!("tunnel {:?} is not served by this agent", req.tunnel_id),
            );
        };
        let Some(permit) = self.streams.try_acquire_arc() else {
            return refuse(
                ErrorCode::CapacityExhausted,
                format!("agent at its limit of {MAX_AGENT_STREAMS} concurrent streams"),
            );
        };
        let redirect = match redirect_of(&req) {
            Ok(redirect) => redirect,
            Err(why) => return refuse(ErrorCode::InvalidRequest, why),
        };
        let idx = self.stream_count.fetch_add(1, Ordering::Relaxed) + 1;
        let source_ip = req.source_ip.as_ref().and_then(|ip| ip.to_ip());
        (self.events)(&AgentEvent::StreamOpened { idx, stream_id: req.stream_id.clone(), source_ip });
        let info = StreamInfo {
            tunnel_id: req.tunnel_id.clone(),
            tunnel_name: name.clone(),
            stream_id: req.stream_id.clone(),
            source_ip,
        };
        let task = StreamTask {
            handler: self.handler.clone(),
            legs: self.legs.clone(),
            endpoint: self.endpoint.clone(),
            info,
            secret: Secret::new(opt_str(&req.secret).unwrap_or("")),
            redirect,
            outbox: outbox.clone(),
            admitting: admitting.clone(),
        };
        let events = self.events.clone();
        smol::spawn(async move {
            let _permit = permit;
            task.run().await;
            events(&AgentEvent::StreamClosed { idx });
        })
        .detach();
        Ok(())
    }
}

/// Queues one outgoing frame without waiting: a full queue means the engine stopped reading.
fn queue(outbox: &Outbox, payload: Payload) -> Result<(), AgentError> {
    outbox.try_send(Message::new(payload)).map_err(|e| match e {
        async_channel::TrySendError::Full(_) => {
            AgentError::Lost(format!("control channel stuck: {CONTROL_QUEUE_DEPTH} frames queued for the engine"))
        }
        async_channel::TrySendError::Closed(_) => AgentError::Lost("control channel writer stopped".into()),
    })
}

/// Writes queued frames to the engine until writing fails.
async fn write_messages(mut writer: WriteHalf<TlsStream>, queue: async_channel::Receiver<Message>) -> AgentError {
    while let Ok(msg) = queue.recv().await {
        if let Err(e) = write_frame(&mut writer, &msg).await {
            return AgentError::Lost(format!("control channel: {e}"));
        }
    }
    AgentError::Lost("control channel writer stopped".into())
}

/// Queues a heartbeat every `interval`: numbered in a negotiated session, empty in legacy mode.
async fn send_heartbeats(outbox: Outbox, interval: Duration, liveness: Liveness) -> AgentError {
    loop {
        async_io::Timer::after(interval).await;
        if let Err(e) = queue(&outbox, Payload::Heartbeat(liveness.next_heartbeat())) {
            return e;
        }
    }
}

/// A random UUID v4 in its canonical text form.
pub(crate) fn request_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_uuid_v4() {
        let a = request_id().unwrap();
        let b = request_id().unwrap();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }
}
