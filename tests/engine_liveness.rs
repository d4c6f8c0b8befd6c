//! Control-channel liveness against the real engine (protocol 1.4.5): a client written here with raw frames
//! negotiates a policy, gets its numbered heartbeats acknowledged, and is dropped when it goes silent; a 1.3
//! client that asks nothing keeps legacy heartbeats; a malformed policy is refused.

mod common;

use std::time::{Duration, Instant};

use common::tls::{details, details_1_3, recv, rstrm, send, within, Conn, IO_DEADLINE};
use common::{wait_until_or, Engine, DEVICE};
use futures_lite::AsyncReadExt;
use rstream::proto::frame::read_frame;
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{
    open_control_channel_rsp, ControlChannelLiveness, ErrorCode, Heartbeat, Message, OpenControlChannelReq,
    OpenControlChannelRsp,
};

/// Opens a control channel with `details`, asking for heartbeats every `interval_ms` (none: a 1.3 client).
async fn open(engine: &Engine, interval_ms: Option<u32>, v1_3: bool) -> (Conn, OpenControlChannelRsp) {
    let token = engine.token(&DEVICE, None);
    let mut conn = rstrm(engine).await;
    let liveness = interval_ms.map(|ms| ControlChannelLiveness { heartbeat_interval_ms: ms, heartbeat_timeout_ms: 0 });
    let client_details = if v1_3 { details_1_3(&token) } else { details(&token) };
    send(&mut conn, Payload::OpenControlChannelReq(OpenControlChannelReq { client_details, liveness })).await;
    match recv(&mut conn).await {
        Payload::OpenControlChannelRsp(rsp) => (conn, rsp),
        other => panic!("expected OpenControlChannelRsp, got {other:?}"),
    }
}

/// The `Ok` of an open response.
fn ok(rsp: OpenControlChannelRsp) -> open_control_channel_rsp::Ok {
    match rsp.result {
        Some(open_control_channel_rsp::Result::Ok(ok)) => ok,
        other => panic!("control channel refused: {other:?}"),
    }
}

/// The next heartbeat the engine sends (any other message is a test failure).
async fn next_heartbeat(conn: &mut Conn, limit: Duration) -> Heartbeat {
    let msg: Message = within(limit, "a heartbeat from the engine", read_frame(conn)).await.expect("read frame");
    match msg.payload {
        Some(Payload::Heartbeat(h)) => h,
        other => panic!("expected a heartbeat, got {other:?}"),
    }
}

#[test]
fn a_1_4_5_client_sees_ok_liveness_and_every_numbered_heartbeat_acked() {
    let engine = Engine::start();
    smol::block_on(async {
        let (mut conn, rsp) = open(&engine, Some(5000), false).await;
        let liveness = ok(rsp).liveness.expect("Ok.liveness");
        assert_eq!(liveness, ControlChannelLiveness { heartbeat_interval_ms: 5000, heartbeat_timeout_ms: 15_000 });
        for sequence in 1..=3 {
            send(&mut conn, Payload::Heartbeat(Heartbeat { sequence, acknowledgement: 0 })).await;
            // Faster than the engine's legacy interval: what comes back is the ack, never an empty heartbeat.
            let ack = next_heartbeat(&mut conn, Duration::from_secs(2)).await;
            assert_eq!(ack, Heartbeat { sequence: 0, acknowledgement: sequence });
        }
        // Legacy empty heartbeats from a negotiated client are liveness, not acked.
        send(&mut conn, Payload::Heartbeat(Heartbeat::LEGACY)).await;
        send(&mut conn, Payload::Heartbeat(Heartbeat { sequence: 4, acknowledgement: 0 })).await;
        assert_eq!(next_heartbeat(&mut conn, Duration::from_secs(2)).await.acknowledgement, 4);
    });
}

#[test]
fn the_engine_caps_the_timeout_at_fifteen_minutes() {
    let engine = Engine::start();
    smol::block_on(async {
        let (_conn, rsp) = open(&engine, Some(600_000), false).await;
        let liveness = ok(rsp).liveness.expect("Ok.liveness");
        assert_eq!((liveness.heartbeat_interval_ms, liveness.heartbeat_timeout_ms), (600_000, 900_000));
    });
}

#[test]
fn a_silent_negotiated_channel_is_dropped_within_its_timeout() {
    let engine = Engine::start();
    smol::block_on(async {
        let (mut conn, rsp) = open(&engine, Some(200), false).await;
        assert_eq!(ok(rsp).liveness.map(|l| l.heartbeat_timeout_ms), Some(600));
        let started = Instant::now();
        let mut rest = Vec::new();
        // The engine sends nothing unprompted in a negotiated session, then closes once 600 ms pass in silence.
        let read = within(IO_DEADLINE, "the engine dropping the silent channel", conn.read_to_end(&mut rest)).await;
        let elapsed = started.elapsed();
        assert!(read.is_err() || rest.is_empty(), "no heartbeat of its own: {rest:?}");
        assert!(elapsed >= Duration::from_millis(550), "dropped after {elapsed:?}, before its timeout");
        assert!(elapsed < Duration::from_secs(3), "dropped after {elapsed:?}, long past its 600 ms timeout");
    });
    wait_until_or(
        Duration::from_secs(5),
        || format!("the engine to log why:\n{}", engine.logs()),
        || engine.logs().contains("peer silent for 600ms").then_some(()),
    );
}

#[test]
fn a_channel_kept_alive_by_fast_heartbeats_outlives_its_timeout() {
    let engine = Engine::start();
    smol::block_on(async {
        let (mut conn, rsp) = open(&engine, Some(200), false).await;
        assert!(ok(rsp).liveness.is_some());
        for sequence in 1..=8 {
            async_io::Timer::after(Duration::from_millis(200)).await;
            send(&mut conn, Payload::Heartbeat(Heartbeat { sequence, acknowledgement: 0 })).await;
            assert_eq!(next_heartbeat(&mut conn, Duration::from_secs(2)).await.acknowledgement, sequence);
        }
    });
}

#[test]
fn a_1_3_client_without_liveness_keeps_legacy_heartbeats() {
    let engine = Engine::start();
    smol::block_on(async {
        let (mut conn, rsp) = open(&engine, None, true).await;
        assert_eq!(ok(rsp).liveness, None, "no policy asked, none answered");
        send(&mut conn, Payload::Heartbeat(Heartbeat::LEGACY)).await;
        // The engine's own heartbeat every 5 s, empty as 1.3 peers expect.
        let beat = next_heartbeat(&mut conn, Duration::from_secs(8)).await;
        assert_eq!(beat, Heartbeat::LEGACY);
    });
}

#[test]
fn a_malformed_liveness_policy_is_refused_with_invalid_request() {
    let engine = Engine::start();
    smol::block_on(async {
        for interval in [0, 50, 900_001] {
            let (_conn, rsp) = open(&engine, Some(interval), false).await;
            match rsp.result {
                Some(open_control_channel_rsp::Result::Error(e)) => {
                    assert_eq!(e.code(), ErrorCode::InvalidRequest, "{e}");
                    assert!(e.to_string().contains("invalid liveness policy"), "{e}");
                }
                other => panic!("interval {interval} accepted: {other:?}"),
            }
        }
    });
    assert!(engine.tunnels().is_empty());
}
