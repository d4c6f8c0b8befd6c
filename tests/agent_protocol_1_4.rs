//! The real agent (`rstream forward`) speaking protocol 1.4.5: against a scripted engine ([`fake_engine`]) that
//! sends a bad heartbeat ack or redirects a leg, and against the real engine when the local service is down.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::time::Duration;

use common::fake_engine::{accept_agent, next_message, send_frame, FakeEngine};
use common::tls::{details, recv, rstrm, send, IO_DEADLINE};
use common::tunnel::{echo_origin, Forward};
use common::{wait_until_or, Engine};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{
    opt_str, some_str, stream_rsp, ErrorCode, Heartbeat, ProxyConnReq, ProxyConnRsp, StreamReq,
};

/// `rstream forward TARGET --no-publish --name web` against `fake` (with `engine`'s context and CA; the
/// certificate names `localhost`), logging at debug level (the reason of each reconnect).
fn forward_to_fake(engine: &Engine, fake: &FakeEngine, target: &str) -> Forward {
    let args = ["--no-publish", "--name", "web", "--retry-interval", "200", "-o", "json", "-v"];
    Forward::start(engine, target, &args, &[("RSTREAM_ENGINE", &format!("localhost:{}", fake.port()))])
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The engine's `ProxyConnReq` for stream `stream_id` of tunnel `t-1`, with `secret`, redirected to `redirect`.
fn proxy_conn(stream_id: &str, secret: Option<&str>, redirect: Option<&FakeEngine>) -> Payload {
    Payload::ProxyConnReq(ProxyConnReq {
        tunnel_id: "t-1".into(),
        stream_id: stream_id.into(),
        secret: secret.and_then(some_str),
        proxy_endpoint: redirect.and_then(|r| some_str(format!("localhost:{}", r.port()))),
        ..Default::default()
    })
}

/// An engine (for its CA and context), a scripted control engine and a scripted ingress engine with the same
/// certificate, and `forward` to an echo service connected to the control engine.
fn agent_with_ingress() -> (Engine, FakeEngine, FakeEngine, Forward) {
    let engine = Engine::start();
    let (fake, ingress) = (FakeEngine::start(&engine), FakeEngine::start(&engine));
    let forward = forward_to_fake(&engine, &fake, &echo_origin().target());
    (engine, fake, ingress, forward)
}

/// Reads the agent's control frames until its `ProxyConnRsp`.
async fn proxy_conn_rsp(control: &mut futures_rustls::server::TlsStream<async_net::TcpStream>) -> ProxyConnRsp {
    match next_message(control).await {
        Payload::ProxyConnRsp(rsp) => rsp,
        other => panic!("expected ProxyConnRsp, got {other:?}"),
    }
}

#[test]
fn the_agent_announces_1_4_5_and_reconnects_after_a_bad_ack() {
    let engine = Engine::start();
    let fake = FakeEngine::start(&engine);
    let origin = echo_origin();
    let forward = forward_to_fake(&engine, &fake, &origin.target());
    smol::block_on(async {
        let (mut control, open) = accept_agent(&fake).await;
        let details = open.client_details.expect("client details");
        assert_eq!(opt_str(&details.protocol_version), Some("1.4.5"));
        let asked = open.liveness.expect("the agent asks for negotiated liveness");
        assert_eq!((asked.heartbeat_interval_ms, asked.heartbeat_timeout_ms), (5000, 0));
        // Nothing was sent yet, so any ack runs ahead.
        send_frame(&mut control, Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: 7 })).await;
        let (_again, reopened) = accept_agent(&fake).await;
        assert!(reopened.liveness.is_some());
    });
    let why = "control channel protocol error: heartbeat acknowledgement 7 is ahead of the last heartbeat sent";
    wait_until_or(
        Duration::from_secs(10),
        || format!("forward to log {why:?}:\n{}", forward.stderr()),
        || forward.stderr().contains(why).then_some(()),
    );
}

#[test]
fn a_redirect_without_a_secret_is_refused_and_dials_nothing() {
    let (_engine, fake, ingress, _forward) = agent_with_ingress();
    smol::block_on(async {
        let (mut control, _) = accept_agent(&fake).await;
        send_frame(&mut control, proxy_conn("s-1", None, Some(&ingress))).await;
        let rsp = proxy_conn_rsp(&mut control).await;
        let error = rsp.error.expect("refused");
        assert_eq!((rsp.stream_id.as_str(), error.code()), ("s-1", ErrorCode::InvalidRequest));
        assert!(error.to_string().contains("non-empty endpoint and stream credential"), "{error}");
    });
    assert!(!ingress.has_conn() && !fake.has_conn(), "no leg was dialed anywhere");
}

#[test]
fn a_redirected_leg_goes_to_the_named_engine_with_the_stream_secret_then_is_confirmed() {
    let (_engine, fake, ingress, _forward) = agent_with_ingress();
    smol::block_on(async {
        let (mut control, _) = accept_agent(&fake).await;
        send_frame(&mut control, proxy_conn("s-2", Some("one-time-secret"), Some(&ingress))).await;
        let leg = ingress.next_conn(IO_DEADLINE).await;
        assert_eq!(leg.sni.as_deref(), Some("localhost"), "SNI is the redirect's host");
        let mut leg = leg.conn;
        let Payload::ProxyReq(proxy) = next_message(&mut leg).await else { panic!("expected ProxyReq") };
        assert_eq!(proxy.stream_id, "s-2");
        assert_eq!(opt_str(&proxy.client_details.unwrap().token), Some("one-time-secret"));
        let rsp = proxy_conn_rsp(&mut control).await;
        assert_eq!((rsp.stream_id.as_str(), rsp.error), ("s-2", None), "confirmed once the leg is up");
        leg.write_all(b"through the ingress").await.unwrap();
        leg.flush().await.unwrap();
        let mut echoed = [0u8; 19];
        leg.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"through the ingress");
    });
    assert!(!fake.has_conn(), "the control engine got no leg");
}

#[test]
fn a_local_service_that_is_down_is_refused_with_service_unavailable() {
    let engine = Engine::start();
    let fake = FakeEngine::start(&engine);
    let _forward = forward_to_fake(&engine, &fake, &format!("127.0.0.1:{}", closed_port()));
    smol::block_on(async {
        let (mut control, _) = accept_agent(&fake).await;
        send_frame(&mut control, proxy_conn("s-3", Some("one-time-secret"), None)).await;
        let rsp = proxy_conn_rsp(&mut control).await;
        let error = rsp.error.expect("refused");
        assert_eq!(error.code(), ErrorCode::ServiceUnavailable, "{error}");
        assert!(error.to_string().contains("cannot reach the local service"), "{error}");
    });
    assert!(!fake.has_conn(), "no leg is dialed for a stream whose local side failed");
}

#[test]
fn through_the_real_engine_a_client_sees_service_unavailable_when_the_local_dial_fails() {
    let engine = Engine::start();
    let target = format!("127.0.0.1:{}", closed_port());
    let forward = Forward::start(&engine, &target, &["--no-publish", "--name", "down", "-o", "json"], &[]);
    forward.wait_online(1, Duration::from_secs(20));
    let origin = echo_origin();
    let up = Forward::start(&engine, &origin.target(), &["--no-publish", "--name", "up", "-o", "json"], &[]);
    up.wait_online(1, Duration::from_secs(20));
    let operator = engine.operator_token();
    smol::block_on(async {
        let dial = |name: &'static str| {
            let operator = operator.clone();
            let engine = &engine;
            async move {
                let mut conn = rstrm(engine).await;
                let req = StreamReq {
                    client_details: details(&operator),
                    tunnel_id_name: name.into(),
                    zero_rtt: Some(false.into()),
                    datagram_channel: None,
                };
                send(&mut conn, Payload::StreamReq(req)).await;
                let Payload::StreamRsp(rsp) = recv(&mut conn).await else { panic!("expected StreamRsp") };
                (conn, rsp.result.expect("a result"))
            }
        };
        let (_, down) = dial("down").await;
        let stream_rsp::Result::Error(error) = down else { panic!("a stream to a dead service was accepted") };
        assert_eq!(error.code(), ErrorCode::ServiceUnavailable, "{error}");
        assert!(error.to_string().contains("cannot reach the local service"), "{error}");
        // The agent confirmed the working one before the engine said ready: bytes flow at once.
        let (mut conn, up) = dial("up").await;
        assert!(matches!(up, stream_rsp::Result::StreamId(_)), "{up:?}");
        conn.write_all(b"ready").await.unwrap();
        conn.flush().await.unwrap();
        let mut echoed = [0u8; 5];
        conn.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ready");
    });
}

#[test]
fn after_a_liveness_loss_a_webtty_server_drains_accepted_sessions_and_reconnects() {
    let engine = Engine::start();
    let fake = FakeEngine::start(&engine);
    let root = common::TempDir::new("drain");
    std::fs::write(root.path().join("hello.txt"), "still served").unwrap();
    common::tunnel::wait_for_context(&engine);
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["webtty", "server", "--rstream", "--retry-interval", "200", "--name", "pi", "--no-publish"])
        .arg("--fs-root")
        .arg(root.path())
        .env("RSTREAM_CONFIG", engine.config_path())
        .env("RSTREAM_ENGINE", format!("localhost:{}", fake.port()));
    let server = std::thread::spawn(move || common::tunnel::WebttyAgent::spawn(cmd));
    smol::block_on(async {
        let (mut control, _) = accept_agent(&fake).await;
        // An accepted session: its leg is up and confirmed.
        send_frame(&mut control, proxy_conn("s-1", Some("one-time-secret"), None)).await;
        let mut leg = fake.next_conn(IO_DEADLINE).await.conn;
        let Payload::ProxyReq(_) = next_message(&mut leg).await else { panic!("expected ProxyReq") };
        assert_eq!(proxy_conn_rsp(&mut control).await.error, None);
        // The control channel fails its liveness check (an ack ahead of anything sent).
        send_frame(&mut control, Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: 9 })).await;
        let (mut again, _) = accept_agent(&fake).await;
        // The session accepted before the loss keeps its own data path.
        leg.write_all(b"GET /fs/hello.txt HTTP/1.1\r\nHost: pi\r\nConnection: close\r\n\r\n").await.unwrap();
        leg.flush().await.unwrap();
        let mut reply = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&reply).contains("still served") {
            match leg.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
            }
        }
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("still served"), "{reply}");
        // The new channel admits new sessions again.
        send_frame(&mut again, proxy_conn("s-2", Some("next-secret"), None)).await;
        let mut leg = fake.next_conn(IO_DEADLINE).await.conn;
        let Payload::ProxyReq(proxy) = next_message(&mut leg).await else { panic!("expected ProxyReq") };
        assert_eq!(proxy.stream_id, "s-2");
    });
    let server = server.join().expect("webtty server came online");
    assert!(server.log().contains("heartbeat acknowledgement 9"), "{}", server.log());
}
