//! The engine's rstream protocol, end to end against the real binary: control channels and their tokens,
//! tunnel registration, StreamReq, agent legs (ProxyConnReq → ProxyReq) and the deadlines that keep a
//! missing or silent agent from hanging anyone.

mod common;

use std::time::{Duration, Instant};

use common::fake_agent::{dial_leg, tunnel, FakeAgent};
use common::tls::{details, recv, rstrm, send, within, Conn};
use common::{Engine, ALL, DEVICE, OPERATOR};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{
    opt_str, stream_rsp, CloseTunnelReq, Error, ErrorCode, ProxyConnRsp, StreamReq, TunnelProperties,
};

/// Dials `tunnel` with `token` (zero_rtt false) and returns the connection or the engine's error.
async fn dial(engine: &Engine, token: &str, tunnel: &str) -> Result<(Conn, String), Error> {
    let mut conn = rstrm(engine).await;
    let req = StreamReq {
        client_details: details(token),
        tunnel_id_name: tunnel.into(),
        zero_rtt: Some(false.into()),
        datagram_channel: None,
    };
    send(&mut conn, Payload::StreamReq(req)).await;
    match recv(&mut conn).await {
        Payload::StreamRsp(rsp) => match rsp.result.expect("result") {
            stream_rsp::Result::StreamId(id) => Ok((conn, id)),
            stream_rsp::Result::Error(e) => Err(e),
        },
        other => panic!("expected StreamRsp, got {other:?}"),
    }
}

fn id(p: &TunnelProperties) -> String {
    opt_str(&p.id).expect("tunnel id").to_owned()
}

#[test]
fn control_channel_opens_with_a_valid_token_and_refuses_bad_or_expired_ones() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, Some("1h"))).await.expect("device token opens");
        assert_eq!(agent.client_id.len(), 16);

        let err = FakeAgent::open(&engine, "not-a-jwt").await.err().expect("garbage token refused");
        assert_eq!(err.code(), ErrorCode::Unauthorized);
        assert!(opt_str(&err.message).unwrap().contains("malformed token"), "{err}");

        let other_engine = Engine::start();
        let foreign = other_engine.token(&ALL, None);
        let err = FakeAgent::open(&engine, &foreign).await.err().expect("foreign token refused");
        assert_eq!(
            (err.code(), opt_str(&err.message).unwrap()),
            (ErrorCode::Unauthorized, "invalid token: signature mismatch")
        );

        let err = FakeAgent::open(&engine, "").await.err().expect("missing token refused");
        assert_eq!(err.code(), ErrorCode::Unauthorized);
    });
}

#[test]
fn expired_token_is_refused_with_401() {
    let engine = Engine::start();
    let short = engine.token(&DEVICE, Some("1s"));
    common::wait_until(Duration::from_secs(5), "token to expire", || {
        smol::block_on(FakeAgent::open(&engine, &short)).err().filter(|e| e.is(ErrorCode::Unauthorized))
    });
}

#[test]
fn tunnel_names_are_unique_and_only_tunnel_tokens_may_register() {
    let engine = Engine::start();
    smol::block_on(async {
        let a = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        let b = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        let mut props = tunnel("shell", true);
        props.labels.insert("role".into(), "codex".into());
        let got = a.open_tunnel(props).await.expect("first registration");
        assert_eq!(opt_str(&got.host), Some(format!("shell.t.localhost:{}", engine.port()).as_str()));
        assert_eq!(got.labels.get("role").map(String::as_str), Some("codex"));
        assert!(got.creation_date.is_some());

        let conflict = b.open_tunnel(tunnel("shell", false)).await.unwrap_err();
        assert_eq!(conflict.code(), ErrorCode::InvalidRequest, "{conflict}");

        let operator = FakeAgent::open(&engine, &engine.token(&OPERATOR, None)).await.unwrap();
        let refused = operator.open_tunnel(tunnel("sneaky", false)).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Unauthorized);
        assert!(opt_str(&refused.message).unwrap().contains("tunnels.tunnels.create-delete"));

        a.send(Payload::CloseTunnelReq(CloseTunnelReq { tunnel_id: id(&got) })).await;
        match a.next().await {
            Payload::CloseTunnelRsp(rsp) => assert_eq!(rsp.tunnel_id, id(&got)),
            other => panic!("expected CloseTunnelRsp, got {other:?}"),
        }
        b.open_tunnel(tunnel("shell", false)).await.expect("name free after close");
    });
}

#[test]
fn dialing_needs_a_stream_token_and_a_live_tunnel() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(tunnel("db", false)).await.unwrap();
        let operator = engine.token(&OPERATOR, None);

        let missing = dial(&engine, &operator, "nope").await.err().unwrap();
        assert_eq!(missing.code(), ErrorCode::TunnelNotFound);
        assert!(opt_str(&missing.message).unwrap().contains("\"nope\""), "{missing}");

        let device = dial(&engine, &engine.token(&DEVICE, None), "db").await.err().unwrap();
        assert_eq!(device.code(), ErrorCode::Unauthorized, "a device token cannot dial: {device}");
        let bad = dial(&engine, "x.y.z", "db").await.err().unwrap();
        assert_eq!(bad.code(), ErrorCode::Unauthorized);
    });
}

#[test]
fn stream_is_spliced_between_client_and_agent_leg_in_both_directions() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        let t = agent.open_tunnel(tunnel("echo", false)).await.unwrap();
        let operator = engine.token(&OPERATOR, None);
        let client = async { dial(&engine, &operator, "echo").await.expect("dial echo") };
        let agent_side = async {
            let req = agent.next_proxy_conn().await;
            assert_eq!(req.tunnel_id, id(&t));
            assert_eq!(req.source_ip.as_ref().and_then(|ip| ip.to_ip()), Some([127, 0, 0, 1].into()));
            (dial_leg(&engine, &req).await, req.stream_id)
        };
        let ((mut client, stream_id), (mut leg, leg_stream_id)) = futures_lite::future::zip(client, agent_side).await;
        assert_eq!(stream_id, leg_stream_id);

        let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let upload = async {
            client.write_all(&payload).await.unwrap();
            client.close().await.unwrap(); // half-close; the answer must still arrive
            let mut answer = String::new();
            client.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let serve = async {
            let mut got = Vec::new();
            leg.read_to_end(&mut got).await.unwrap();
            leg.write_all(format!("got {} bytes", got.len()).as_bytes()).await.unwrap();
            leg.close().await.unwrap();
            got
        };
        let (answer, got) = within(Duration::from_secs(20), "splice", futures_lite::future::zip(upload, serve)).await;
        assert_eq!(got, payload);
        assert_eq!(answer, "got 200000 bytes");
    });
}

#[test]
fn a_missing_agent_leg_fails_the_client_within_the_deadline() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(tunnel("lazy", false)).await.unwrap();
        let started = Instant::now();
        let operator = engine.operator_token();
        let dialing = dial(&engine, &operator, "lazy");
        let Err(err) = within(Duration::from_secs(14), "engine gives up on the leg", dialing).await else {
            panic!("no leg, no stream")
        };
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable, "{err}");
        assert!(started.elapsed() >= Duration::from_secs(9), "deadline is PROXY_LEG_DEADLINE (10 s)");
        let _ = agent.next_proxy_conn().await; // it was asked
    });
}

#[test]
fn an_agent_refusal_or_disconnect_fails_the_client_at_once() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(tunnel("picky", false)).await.unwrap();
        let operator = engine.operator_token();
        let started = Instant::now();
        let refusing = async {
            let req = agent.next_proxy_conn().await;
            let error = Some(Error::new(ErrorCode::ServiceUnavailable, "upstream port closed"));
            agent.send(Payload::ProxyConnRsp(ProxyConnRsp { stream_id: req.stream_id, error })).await;
        };
        let (result, ()) = futures_lite::future::zip(dial(&engine, &operator, "picky"), refusing).await;
        let Err(err) = result else { panic!("refused stream was accepted") };
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
        assert!(opt_str(&err.message).unwrap().contains("upstream port closed"), "{err}");

        let leaving = async {
            let _ = agent.next_proxy_conn().await;
            drop(agent);
        };
        let (result, ()) = futures_lite::future::zip(dial(&engine, &operator, "picky"), leaving).await;
        let Err(err) = result else { panic!("stream to a departed agent was accepted") };
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
        assert!(started.elapsed() < Duration::from_secs(5), "both failures are immediate");
        let gone = dial(&engine, &operator, "picky").await.err().unwrap();
        assert_eq!(gone.code(), ErrorCode::TunnelNotFound, "the tunnel left with its control channel");
    });
}

#[test]
fn a_leg_with_a_wrong_secret_is_refused_and_the_stream_still_completes() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(tunnel("guarded", false)).await.unwrap();
        let operator = engine.operator_token();
        let agent_side = async {
            let mut req = agent.next_proxy_conn().await;
            let real = req.secret.clone();
            req.secret = rstream::proto::rstream::some_str("0".repeat(64));
            let mut forged = dial_leg(&engine, &req).await;
            let mut buf = [0u8; 1];
            assert_eq!(forged.read(&mut buf).await.unwrap_or(0), 0, "forged leg is closed");
            req.secret = real;
            dial_leg(&engine, &req).await
        };
        let ((client, _), mut leg) =
            futures_lite::future::zip(async { dial(&engine, &operator, "guarded").await.unwrap() }, agent_side).await;
        let mut client = client;
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        leg.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    });
}

#[test]
fn malformed_first_frames_close_only_that_connection() {
    let engine = Engine::start();
    smol::block_on(async {
        for garbage in [&[0xff, 0xff, 0xff, 0xff][..], &[0, 0, 0, 3, 0xff, 0xff, 0xff], &[0, 0, 0, 0]] {
            let mut conn = rstrm(&engine).await;
            conn.write_all(garbage).await.unwrap();
            conn.flush().await.unwrap();
            let mut buf = [0u8; 16];
            let n = within(Duration::from_secs(12), "engine closes the connection", conn.read(&mut buf)).await;
            assert_eq!(n.unwrap_or(0), 0, "{garbage:?}");
        }
        FakeAgent::open(&engine, &engine.operator_token()).await.expect("engine still serves");
    });
}

#[test]
fn tokens_and_ca_survive_a_restart() {
    let mut engine = Engine::start();
    let token = engine.token(&DEVICE, None);
    let ca = std::fs::read(engine.ca_path()).unwrap();
    engine.restart();
    assert_eq!(std::fs::read(engine.ca_path()).unwrap(), ca);
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &token).await.expect("old token still valid");
        agent.open_tunnel(tunnel("again", true)).await.unwrap();
    });
}

#[test]
fn a_datagram_channel_is_refused_as_a_feature_this_engine_lacks() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(tunnel("db", false)).await.unwrap();
        let mut conn = rstrm(&engine).await;
        let req = StreamReq {
            client_details: details(&engine.operator_token()),
            tunnel_id_name: "db".into(),
            zero_rtt: Some(false.into()),
            datagram_channel: Some(true.into()),
        };
        send(&mut conn, Payload::StreamReq(req)).await;
        let Payload::StreamRsp(rsp) = recv(&mut conn).await else { panic!("expected StreamRsp") };
        let Some(stream_rsp::Result::Error(error)) = rsp.result else { panic!("accepted: {rsp:?}") };
        assert_eq!(error.code(), ErrorCode::FeatureNotAvailable, "{error}");
        assert!(agent.incoming_is_empty(), "the agent was never asked for a leg");
    });
}
