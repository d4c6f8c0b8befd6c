//! The agent against a scripted in-process engine (rustls server speaking rstream frames).

use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::server::TlsStream as ServerTls;

use super::*;
use crate::agent::{AgentEvent, StreamHandler, StreamInfo};
use crate::proto::frame::{read_frame, write_frame};
use crate::proto::rstream::{
    message::Payload, open_control_channel_rsp, open_tunnel_rsp, some_str, ControlChannelLiveness, ErrorCode,
    Heartbeat, Message, OpenControlChannelRsp, OpenTunnelReq, OpenTunnelRsp, ProxyConnReq, ProxyReq, ServerDetails,
    ALPN_RSTRM,
};
use crate::transport::{ClientTlsConfig, TlsStream};

type Conn = ServerTls<async_net::TcpStream>;

/// Accepts TLS connections forever and hands them to the test in order.
struct FakeEngine {
    endpoint: EngineEndpoint,
    conns: async_channel::Receiver<Conn>,
    _acceptor: smol::Task<()>,
}

impl FakeEngine {
    fn start() -> FakeEngine {
        let pki = crate::transport::tls_client::tests::pki(&["localhost"], false, &[ALPN_RSTRM]);
        let listener = smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = futures_rustls::TlsAcceptor::from(std::sync::Arc::new(pki.server));
        let (tx, conns) = async_channel::bounded(16);
        let task = smol::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(tls).await;
                }
            }
        });
        let tls = ClientTlsConfig {
            server_name: "localhost".into(),
            ca_pem: Some(pki.ca_pem.into_bytes()),
            ..Default::default()
        };
        let endpoint = EngineEndpoint::new(addr.to_string(), tls, "device-jwt");
        FakeEngine { endpoint, conns, _acceptor: task }
    }

    async fn next_conn(&self) -> Conn {
        let conn = self.conns.recv();
        futures_lite::future::or(async { conn.await.unwrap() }, async {
            async_io::Timer::after(Duration::from_secs(10)).await;
            panic!("no connection from the agent within 10 s")
        })
        .await
    }
}

/// Next frame that is not a heartbeat.
async fn next(conn: &mut Conn) -> Payload {
    loop {
        let msg: Message = read_frame(conn).await.unwrap();
        match msg.payload.unwrap() {
            Payload::Heartbeat(_) => continue,
            other => return other,
        }
    }
}

async fn send(conn: &mut Conn, payload: Payload) {
    write_frame(conn, &Message::new(payload)).await.unwrap();
}

/// Accepts a control channel and registers the tunnel as `t-<n>`; returns the channel and the OpenTunnelReq.
async fn accept_agent(engine: &FakeEngine, n: u32) -> (Conn, OpenTunnelReq) {
    accept_agent_answering(engine, n, |_| None).await
}

/// [`accept_agent`], answering the agent's liveness policy with `answer(asked)`.
async fn accept_agent_answering(
    engine: &FakeEngine,
    n: u32,
    answer: impl FnOnce(ControlChannelLiveness) -> Option<ControlChannelLiveness>,
) -> (Conn, OpenTunnelReq) {
    let (mut control, req) = open_channel_answering(engine, n, answer).await;
    let mut props = req.tunnel_properties.clone().unwrap();
    props.id = some_str(format!("t-{n}"));
    props.host = some_str("web.t.localhost");
    let rsp = OpenTunnelRsp {
        request_id: req.request_id.clone(),
        result: Some(open_tunnel_rsp::Result::TunnelProperties(props)),
    };
    send(&mut control, Payload::OpenTunnelRsp(rsp)).await;
    (control, req)
}

/// Accepts a control channel as client `c-<n>` (a 1.3 engine: no liveness) and reads the agent's OpenTunnelReq
/// (not answered yet).
async fn open_channel(engine: &FakeEngine, n: u32) -> (Conn, OpenTunnelReq) {
    open_channel_answering(engine, n, |_| None).await
}

/// [`open_channel`], answering the agent's liveness policy with `answer(asked)`.
async fn open_channel_answering(
    engine: &FakeEngine,
    n: u32,
    answer: impl FnOnce(ControlChannelLiveness) -> Option<ControlChannelLiveness>,
) -> (Conn, OpenTunnelReq) {
    let mut control = engine.next_conn().await;
    let Payload::OpenControlChannelReq(open) = next(&mut control).await else { panic!("expected open") };
    assert_eq!(opt_str(&open.client_details.unwrap().token), Some("device-jwt"));
    let ok = open_control_channel_rsp::Ok {
        client_id: format!("c-{n}"),
        server_details: Some(ServerDetails { version: some_str("9.9"), ..Default::default() }),
        liveness: answer(open.liveness.expect("the agent asks for negotiated liveness")),
    };
    let rsp = OpenControlChannelRsp { result: Some(open_control_channel_rsp::Result::Ok(ok)) };
    send(&mut control, Payload::OpenControlChannelRsp(rsp)).await;
    let Payload::OpenTunnelReq(req) = next(&mut control).await else { panic!("expected OpenTunnelReq") };
    (control, req)
}

/// Greets every stream with its tunnel name and stream id.
struct Greeter;

impl StreamHandler for Greeter {
    type Local = ();

    async fn prepare(&self, _info: &StreamInfo) -> Result<(), String> {
        Ok(())
    }

    async fn handle(&self, mut stream: TlsStream, info: StreamInfo, (): ()) {
        let mut request = Vec::new();
        let _ = stream.read_to_end(&mut request).await;
        let reply = format!("{} {} {}", info.tunnel_name, info.stream_id, String::from_utf8_lossy(&request));
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.close().await;
    }
}

fn web_tunnel() -> TunnelProperties {
    TunnelProperties { name: some_str("web"), ..Default::default() }
}

fn recording_agent(engine: &FakeEngine) -> (Agent<Greeter>, async_channel::Receiver<AgentEvent>) {
    let (tx, rx) = async_channel::unbounded();
    let sink: crate::agent::EventSink = std::sync::Arc::new(move |e: &AgentEvent| {
        let _ = tx.try_send(e.clone());
    });
    (Agent::new(engine.endpoint.clone(), vec![web_tunnel()], Greeter).with_events(sink), rx)
}

async fn wait_for(events: &async_channel::Receiver<AgentEvent>, want: impl Fn(&AgentEvent) -> bool) -> AgentEvent {
    loop {
        let event = events.recv().await.unwrap();
        if want(&event) {
            return event;
        }
    }
}

#[test]
fn agent_registers_and_serves_a_stream_on_a_proxy_leg() {
    let engine = FakeEngine::start();
    let (agent, events) = recording_agent(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let (mut control, req) = accept_agent(&engine, 1).await;
        assert_eq!(req.request_id.len(), 36);
        let online = wait_for(&events, |e| matches!(e, AgentEvent::Online { .. })).await;
        let AgentEvent::Online { tunnel } = online else { unreachable!() };
        assert_eq!(opt_str(&tunnel.id), Some("t-1"));

        let conn_req = ProxyConnReq {
            tunnel_id: "t-1".into(),
            stream_id: "s-1".into(),
            secret: some_str("one-time"),
            source_ip: Some(std::net::IpAddr::from([10, 0, 0, 7]).into()),
            proxy_endpoint: None,
        };
        send(&mut control, Payload::ProxyConnReq(conn_req)).await;
        let Payload::ProxyConnRsp(ack) = next(&mut control).await else { panic!("expected ProxyConnRsp") };
        assert_eq!((ack.stream_id.as_str(), ack.error), ("s-1", None));

        let mut leg = engine.next_conn().await;
        let Payload::ProxyReq(ProxyReq { client_details, stream_id, zero_rtt }) = next(&mut leg).await else {
            panic!("expected ProxyReq on the leg")
        };
        assert_eq!(opt_str(&client_details.unwrap().token), Some("one-time"));
        assert_eq!((stream_id.as_str(), zero_rtt), ("s-1", Some(true.into())));
        leg.write_all(b"ping").await.unwrap();
        leg.get_ref().0.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        leg.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"web s-1 ping");

        let opened = wait_for(&events, |e| matches!(e, AgentEvent::StreamOpened { .. })).await;
        let AgentEvent::StreamOpened { idx, source_ip, .. } = opened else { unreachable!() };
        assert_eq!((idx, source_ip), (1, Some([10, 0, 0, 7].into())));
        wait_for(&events, |e| matches!(e, AgentEvent::StreamClosed { idx: 1 })).await;
    });
}

#[test]
fn proxy_conn_for_an_unknown_tunnel_is_refused_with_404() {
    let engine = FakeEngine::start();
    let (agent, _events) = recording_agent(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let (mut control, _) = accept_agent(&engine, 1).await;
        let conn_req = ProxyConnReq { tunnel_id: "t-other".into(), stream_id: "s-9".into(), ..Default::default() };
        send(&mut control, Payload::ProxyConnReq(conn_req)).await;
        let Payload::ProxyConnRsp(ack) = next(&mut control).await else { panic!("expected ProxyConnRsp") };
        assert_eq!(ack.stream_id, "s-9");
        assert_eq!(ack.error.map(|e| e.code()), Some(ErrorCode::TunnelNotFound));
    });
}

#[test]
fn agent_reconnects_and_registers_again_after_the_engine_drops_it() {
    let engine = FakeEngine::start();
    let (agent, events) = recording_agent(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let (control, first) = accept_agent(&engine, 1).await;
        wait_for(&events, |e| matches!(e, AgentEvent::Online { .. })).await;
        drop(control);
        wait_for(&events, |e| matches!(e, AgentEvent::Disconnected { .. })).await;
        let (_control, second) = accept_agent(&engine, 2).await;
        assert_ne!(first.request_id, second.request_id);
        assert_eq!(second.tunnel_properties.unwrap().name, some_str("web"));
        let AgentEvent::Online { tunnel } = wait_for(&events, |e| matches!(e, AgentEvent::Online { .. })).await else {
            unreachable!()
        };
        assert_eq!(opt_str(&tunnel.id), Some("t-2"));
    });
}

#[test]
fn a_refused_token_stops_the_agent_for_good() {
    let engine = FakeEngine::start();
    let (agent, _events) = recording_agent(&engine);
    let agent = smol::spawn(agent.run());
    smol::block_on(async {
        let mut control = engine.next_conn().await;
        let Payload::OpenControlChannelReq(_) = next(&mut control).await else { panic!("expected open") };
        let refusal = crate::proto::rstream::Error::new(ErrorCode::Unauthorized, "invalid token");
        let rsp = OpenControlChannelRsp { result: Some(open_control_channel_rsp::Result::Error(refusal)) };
        send(&mut control, Payload::OpenControlChannelRsp(rsp)).await;
        let error = agent.await;
        assert!(error.is_permanent());
        assert_eq!(
            error.to_string(),
            "the engine refused the control channel: engine error 1000 UNAUTHORIZED: invalid token"
        );
    });
}

#[test]
fn without_retry_the_first_failure_ends_the_agent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut endpoint = FakeEngine::start().endpoint;
    endpoint.addr = addr.to_string();
    let agent =
        Agent::new(endpoint, vec![web_tunnel()], Greeter).with_retry(Retry { enabled: false, ..Retry::default() });
    let error = smol::block_on(agent.run());
    assert!(matches!(error, AgentError::Connect(_)), "{error}");
    assert!(error.to_string().contains("cannot reach the engine"), "{error}");
}

#[test]
fn agents_without_named_tunnels_are_refused() {
    let endpoint = FakeEngine::start().endpoint;
    let error = smol::block_on(Agent::new(endpoint.clone(), vec![], Greeter).run());
    assert!(matches!(error, AgentError::Config(_)));
    let error = smol::block_on(Agent::new(endpoint, vec![TunnelProperties::default()], Greeter).run());
    assert!(error.to_string().contains("needs a name"), "{error}");
}

/// Polls `probe` every 10 ms until it holds, or panics after 10 s naming `what`.
async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !probe().await {
        assert!(std::time::Instant::now() < end, "timed out waiting for: {what}");
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_lone_stream_dials_once_and_a_burst_is_served_from_pre_dialed_legs() {
    smol::block_on(async {
        let engine = FakeEngine::start();
        let pool = LegPool::new(std::sync::Arc::new(engine.endpoint.clone()));
        let _first = pool.take().await.unwrap();
        let _c1 = engine.next_conn().await;
        assert_eq!(pool.idle_len(), 0, "a lone stream must not pre-dial");
        // The second stream of a burst dials for itself and starts one pre-dial.
        let _second = pool.take().await.unwrap();
        let (mut c2, mut c3) = (engine.next_conn().await, engine.next_conn().await);
        eventually("a pre-dialed leg in the pool", async || pool.idle_len() == 1).await;
        // The third takes it, with no handshake on its path: its byte arrives on an already accepted connection.
        let mut third = pool.take().await.unwrap();
        third.write_all(b"x").await.unwrap();
        let (mut got2, mut got3) = ([0u8; 1], [0u8; 1]);
        let arrived = futures_lite::future::or(c2.read_exact(&mut got2), c3.read_exact(&mut got3)).await;
        arrived.unwrap();
        assert!(got2 == *b"x" || got3 == *b"x");
    })
}

#[test]
fn a_pooled_leg_the_engine_closed_is_skipped() {
    smol::block_on(async {
        let engine = FakeEngine::start();
        let pool = LegPool::new(std::sync::Arc::new(engine.endpoint.clone()));
        let mut doomed = engine.endpoint.connect(ALPN_RSTRM).await.unwrap();
        let server_side = engine.next_conn().await;
        assert!(crate::agent::leg_pool::is_open(&mut doomed).await, "a fresh leg reads as open");
        drop(server_side);
        eventually("the closed leg to read as closed", async || !crate::agent::leg_pool::is_open(&mut doomed).await)
            .await;
        pool.put(doomed);
        let mut fresh = pool.take().await.unwrap();
        let mut server_side = engine.next_conn().await;
        fresh.write_all(b"y").await.unwrap();
        let mut got = [0u8; 1];
        server_side.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"y");
        assert_eq!(pool.idle_len(), 0);
    })
}

/// Refuses the agent's tunnel the way an engine refuses a name held by another tunnel.
async fn refuse_name(engine: &FakeEngine, n: u32) -> Conn {
    let (mut control, req) = open_channel(engine, n).await;
    let error = crate::proto::rstream::Error::new(
        ErrorCode::InvalidRequest,
        "tunnel name \"web\" is already used by another tunnel",
    );
    let rsp = OpenTunnelRsp { request_id: req.request_id, result: Some(open_tunnel_rsp::Result::Error(error)) };
    send(&mut control, Payload::OpenTunnelRsp(rsp)).await;
    control
}

fn fast_retry(name_in_use: bool) -> Retry {
    Retry { max_interval: Some(Duration::from_millis(20)), name_in_use, ..Retry::default() }
}

#[test]
fn a_name_in_use_at_the_first_registration_stops_an_agent_that_does_not_retry_it() {
    let engine = FakeEngine::start();
    let (agent, _events) = recording_agent(&engine);
    let agent = smol::spawn(agent.with_retry(fast_retry(false)).run());
    smol::block_on(async {
        let _control = refuse_name(&engine, 1).await;
        let error = agent.await;
        assert!(error.is_name_in_use(), "{error}");
    });
}

#[test]
fn a_name_in_use_after_being_online_is_retried_as_a_lingering_predecessor() {
    let engine = FakeEngine::start();
    let (agent, events) = recording_agent(&engine);
    let _agent = smol::spawn(agent.with_retry(fast_retry(false)).run());
    smol::block_on(async {
        let (control, _) = accept_agent(&engine, 1).await;
        wait_for(&events, |e| matches!(e, AgentEvent::Online { .. })).await;
        drop(control);
        let _refused = refuse_name(&engine, 2).await;
        wait_for(&events, |e| matches!(e, AgentEvent::TunnelFailed { .. })).await;
        let (_control, _) = accept_agent(&engine, 3).await;
        wait_for(&events, |e| matches!(e, AgentEvent::Online { .. })).await;
    });
}

/// What a 1.4 engine answers: the interval asked, three intervals of timeout.
fn negotiate(asked: ControlChannelLiveness) -> Option<ControlChannelLiveness> {
    Some(ControlChannelLiveness { heartbeat_timeout_ms: 3 * asked.heartbeat_interval_ms, ..asked })
}

/// The next heartbeat from the agent (other frames are skipped).
async fn next_heartbeat(conn: &mut Conn) -> Heartbeat {
    loop {
        let msg: Message = read_frame(conn).await.unwrap();
        if let Some(Payload::Heartbeat(h)) = msg.payload {
            return h;
        }
    }
}

fn fast_heartbeats(engine: &FakeEngine) -> (Agent<Greeter>, async_channel::Receiver<AgentEvent>) {
    let (agent, events) = recording_agent(engine);
    (agent.with_heartbeat_interval(Duration::from_millis(100)), events)
}

#[test]
fn against_a_1_4_engine_heartbeats_are_numbered_and_acks_keep_the_channel() {
    let engine = FakeEngine::start();
    let (agent, events) = fast_heartbeats(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let (mut control, _) = open_channel_answering(&engine, 1, |asked| {
            assert_eq!(asked.heartbeat_interval_ms, 100);
            negotiate(asked)
        })
        .await;
        for n in 1..=5 {
            assert_eq!(next_heartbeat(&mut control).await, Heartbeat { sequence: n, acknowledgement: 0 });
            send(&mut control, Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: n })).await;
        }
        assert!(std::iter::from_fn(|| events.try_recv().ok()).all(|e| !matches!(e, AgentEvent::Disconnected { .. })));
    });
}

#[test]
fn against_a_1_3_engine_heartbeats_stay_empty() {
    let engine = FakeEngine::start();
    let (agent, _events) = fast_heartbeats(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let (mut control, _) = open_channel(&engine, 1).await;
        for _ in 0..3 {
            assert_eq!(next_heartbeat(&mut control).await, Heartbeat::LEGACY);
        }
    });
}

#[test]
fn a_bad_ack_makes_the_agent_reconnect() {
    // 0, backwards, and ahead of the last heartbeat sent.
    for (sent_before, bad_ack) in [(1, 0), (2, 1), (1, 5)] {
        let engine = FakeEngine::start();
        let (agent, events) = fast_heartbeats(&engine);
        let _agent = smol::spawn(agent.run());
        smol::block_on(async {
            let (mut control, _) = open_channel_answering(&engine, 1, negotiate).await;
            for n in 1..=sent_before {
                assert_eq!(next_heartbeat(&mut control).await.sequence, n);
                if bad_ack < n {
                    send(&mut control, Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: n })).await;
                }
            }
            send(&mut control, Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: bad_ack })).await;
            let AgentEvent::Disconnected { error } =
                wait_for(&events, |e| matches!(e, AgentEvent::Disconnected { .. })).await
            else {
                unreachable!()
            };
            assert!(error.contains(&format!("heartbeat acknowledgement {bad_ack}")), "{error}");
            let _again = open_channel_answering(&engine, 2, negotiate).await;
        });
    }
}

#[test]
fn a_liveness_policy_the_agent_did_not_ask_for_is_refused_and_retried() {
    let engine = FakeEngine::start();
    let (agent, events) = fast_heartbeats(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let mut control = engine.next_conn().await;
        let Payload::OpenControlChannelReq(_) = next(&mut control).await else { panic!("expected open") };
        let odd = ControlChannelLiveness { heartbeat_interval_ms: 250, heartbeat_timeout_ms: 750 };
        let ok = open_control_channel_rsp::Ok { client_id: "c-1".into(), server_details: None, liveness: Some(odd) };
        send(&mut control, Payload::OpenControlChannelRsp(OpenControlChannelRsp { result: Some(ok_result(ok)) })).await;
        let AgentEvent::ConnectionFailed { error } =
            wait_for(&events, |e| matches!(e, AgentEvent::ConnectionFailed { .. })).await
        else {
            unreachable!()
        };
        assert!(error.contains("invalid liveness policy"), "{error}");
        let _again = open_channel_answering(&engine, 2, negotiate).await;
    });
}

#[test]
fn an_engine_silent_past_the_negotiated_timeout_is_left() {
    let engine = FakeEngine::start();
    let (agent, events) = fast_heartbeats(&engine);
    let _agent = smol::spawn(agent.run());
    smol::block_on(async {
        let (_silent, _) = accept_agent_answering(&engine, 1, negotiate).await;
        let started = std::time::Instant::now();
        wait_for(&events, |e| matches!(e, AgentEvent::Disconnected { .. })).await;
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(3), "left after {waited:?} with a 300 ms timeout");
        let _again = open_channel_answering(&engine, 2, negotiate).await;
    });
}

fn ok_result(ok: open_control_channel_rsp::Ok) -> open_control_channel_rsp::Result {
    open_control_channel_rsp::Result::Ok(ok)
}
