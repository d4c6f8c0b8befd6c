//! A scripted agent speaking the rstream protocol to a real engine: opens a control channel, registers
//! tunnels, receives `ProxyConnReq`s and dials legs — so engine tests need no device binary. It speaks protocol
//! 1.3 (legacy heartbeats, no `ProxyConnRsp` needed), which also keeps the engine's 1.3 compatibility tested.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_lite::io::split;
use futures_lite::StreamExt;
use rstream::proto::frame::{read_frame, write_frame};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{
    open_control_channel_rsp, open_tunnel_rsp, opt_str, some_str, Error, ErrorCode, Message, OpenControlChannelReq,
    OpenTunnelReq, ProxyConnReq, ProxyReq, TunnelProperties,
};

use super::tls::{connect_to, details, details_1_3, recv, rstrm, send, within, Conn, IO_DEADLINE};
use super::Engine;

/// A connected fake agent; dropping it closes its control channel.
pub struct FakeAgent {
    /// The engine-assigned client id.
    pub client_id: String,
    outgoing: async_channel::Sender<Payload>,
    incoming: async_channel::Receiver<Payload>,
    _tasks: (smol::Task<()>, smol::Task<()>),
}

impl FakeAgent {
    /// Opens a control channel with `token`, sending heartbeats every 5 s.
    pub async fn open(engine: &Engine, token: &str) -> Result<FakeAgent, Error> {
        FakeAgent::open_with(engine, token, true).await
    }

    /// Opens a control channel; with `heartbeats: false` it never sends anything unprompted (a silent peer).
    pub async fn open_with(engine: &Engine, token: &str, heartbeats: bool) -> Result<FakeAgent, Error> {
        let mut conn = rstrm(engine).await;
        send(
            &mut conn,
            Payload::OpenControlChannelReq(OpenControlChannelReq {
                client_details: details_1_3(token),
                liveness: None,
            }),
        )
        .await;
        let client_id = match recv(&mut conn).await {
            Payload::OpenControlChannelRsp(rsp) => match rsp.result.expect("result") {
                open_control_channel_rsp::Result::Ok(ok) => ok.client_id,
                open_control_channel_rsp::Result::Error(e) => return Err(e),
            },
            other => panic!("expected OpenControlChannelRsp, got {other:?}"),
        };
        let (mut reader, mut writer) = split(conn);
        let (in_tx, incoming) = async_channel::bounded(64);
        let (outgoing, out_rx) = async_channel::bounded::<Payload>(64);
        let read_task = smol::spawn(async move {
            while let Ok(msg) = read_frame::<_, Message>(&mut reader).await {
                match msg.payload {
                    Some(Payload::Heartbeat(_)) | None => {}
                    Some(p) => {
                        if in_tx.send(p).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let write_task = smol::spawn(async move {
            let mut ticker = async_io::Timer::interval(Duration::from_secs(5));
            loop {
                let next = futures_lite::future::or(async { out_rx.recv().await.ok() }, async {
                    if !heartbeats {
                        futures_lite::future::pending::<()>().await;
                    }
                    ticker.next().await;
                    Some(Payload::Heartbeat(Default::default()))
                })
                .await;
                let Some(payload) = next else { return };
                if write_frame(&mut writer, &Message::new(payload)).await.is_err() {
                    return;
                }
            }
        });
        Ok(FakeAgent { client_id, outgoing, incoming, _tasks: (read_task, write_task) })
    }

    /// Sends a message on the control channel.
    pub async fn send(&self, payload: Payload) {
        self.outgoing.send(payload).await.expect("control channel writer alive");
    }

    /// The next non-heartbeat message from the engine.
    pub async fn next(&self) -> Payload {
        within(IO_DEADLINE, "message on the control channel", self.incoming.recv()).await.expect("channel open")
    }

    /// Whether the engine closed the control channel (the reader saw end of stream).
    pub fn is_closed(&self) -> bool {
        self.incoming.is_closed()
    }

    /// Whether no message from the engine is waiting (heartbeats aside).
    pub fn incoming_is_empty(&self) -> bool {
        self.incoming.is_empty()
    }

    /// Registers a tunnel and returns the engine's answer.
    pub async fn open_tunnel(&self, props: TunnelProperties) -> Result<TunnelProperties, Error> {
        let request_id = format!("req-{}", props.name.as_ref().map_or("", |n| n.value.as_str()));
        self.send(Payload::OpenTunnelReq(OpenTunnelReq {
            request_id: request_id.clone(),
            tunnel_properties: Some(props),
        }))
        .await;
        match self.next().await {
            Payload::OpenTunnelRsp(rsp) => {
                assert_eq!(rsp.request_id, request_id);
                match rsp.result.expect("result") {
                    open_tunnel_rsp::Result::TunnelProperties(p) => Ok(p),
                    open_tunnel_rsp::Result::Error(e) => Err(e),
                }
            }
            other => panic!("expected OpenTunnelRsp, got {other:?}"),
        }
    }

    /// Claims `name`, which another subject reserved at `since` for `grace`: refused with INVALID_REQUEST "reserved" (and
    /// the name routes nowhere) until the grace has passed, then granted. Returns how long after `since` it was.
    pub async fn claim_after_reservation(
        &self,
        engine: &Engine,
        name: &str,
        since: Instant,
        grace: Duration,
        deadline_slack: Duration,
    ) -> Duration {
        let refused = self.open_tunnel(tunnel(name, true)).await.expect_err("reserved for its owner");
        assert_eq!(refused.code(), ErrorCode::InvalidRequest, "{refused}");
        assert!(opt_str(&refused.message).unwrap_or("").contains("reserved"), "{refused}");
        let host = format!("{name}.t.localhost");
        assert_eq!(engine.curl_host(&host, "/", None, &[]).status, 404, "a reserved name routes nowhere");
        let deadline = since + grace + deadline_slack;
        loop {
            match self.open_tunnel(tunnel(name, true)).await {
                Ok(_) => break,
                Err(e) if e.is(ErrorCode::InvalidRequest) && Instant::now() < deadline => {
                    async_io::Timer::after(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{name} never became free: {e}"),
            }
        }
        let waited = since.elapsed();
        assert!(
            waited >= grace - Duration::from_millis(500),
            "{name} freed {waited:?} after {since:?}, before the grace"
        );
        waited
    }
    /// Waits for the engine's next `ProxyConnReq`.
    pub async fn next_proxy_conn(&self) -> ProxyConnReq {
        match self.next().await {
            Payload::ProxyConnReq(req) => req,
            other => panic!("expected ProxyConnReq, got {other:?}"),
        }
    }
}

/// Tunnel properties with a name and `publish`.
pub fn tunnel(name: &str, publish: bool) -> TunnelProperties {
    TunnelProperties { name: some_str(name), publish: Some(publish.into()), ..Default::default() }
}

/// Where agent legs are dialed: the engine's address and CA, cheap to move into tasks.
#[derive(Clone)]
pub struct LegDialer {
    addr: String,
    ca: PathBuf,
}

impl LegDialer {
    /// A dialer for `engine`.
    pub fn new(engine: &Engine) -> Self {
        LegDialer { addr: engine.addr(), ca: engine.ca_path() }
    }

    /// Dials the agent's leg for `req` (token = the stream's secret, zero-RTT as upstream).
    pub async fn dial(&self, req: &ProxyConnReq) -> Conn {
        let secret = req.secret.as_ref().expect("ProxyConnReq carries a secret").value.clone();
        let mut conn = connect_to(&self.addr, &self.ca, "localhost", Some("rstrm/1")).await.expect("dial leg");
        let proxy = ProxyReq { client_details: details(&secret), stream_id: req.stream_id.clone(), zero_rtt: None };
        send(&mut conn, Payload::ProxyReq(proxy)).await;
        conn
    }
}

/// Dials the agent's leg for `req` on `engine`.
pub async fn dial_leg(engine: &Engine, req: &ProxyConnReq) -> Conn {
    LegDialer::new(engine).dial(req).await
}
