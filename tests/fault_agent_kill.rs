//! Fault: the device agent is SIGKILLed in the middle of a large transfer — an endless body through
//! `rstream dial` on a private tunnel, or through a published HTTP tunnel. The client ends (EOF or a clean
//! error) within a deadline instead of hanging, the engine's active-stream gauge returns to 0, and the tunnel
//! leaves `GET /api/tunnels` within three heartbeats. An agent that freezes instead (SIGSTOP: no FIN, as after a
//! power loss) loses its tunnel and its streams after three heartbeats.

mod common;

use std::time::{Duration, Instant};

use common::tunnel::{curl_command, dial_command, endless_origin, http_origin, signal, Feed, Forward, PatternClient};
use common::{wait_until, Engine};

const ONLINE: Duration = Duration::from_secs(20);
/// What the client must have received before the agent is killed (the transfer is well under way).
const MID_TRANSFER: u64 = 2 << 20;
/// How long the client may take to see the end of its stream.
const CLIENT_DEADLINE: Duration = Duration::from_secs(10);
/// Three heartbeats: the longest a dead agent's tunnel may stay listed.
const INVENTORY_DEADLINE: Duration = Duration::from_secs(15);
/// How late after three heartbeats a frozen agent's stream may end (a loaded machine).
const FROZEN_SLACK: Duration = Duration::from_secs(3);
const STREAMS_ACTIVE: &str = "rstream_engine_streams_active";

/// Kills `forward` once `client` is [`MID_TRANSFER`] into its stream, then checks the client, the stream gauge
/// and the inventory; returns the client's exit code.
fn kill_agent_mid_transfer(engine: &Engine, forward: &mut Forward, client: &mut PatternClient) -> Option<i32> {
    wait_until(Duration::from_secs(30), "the transfer to get going", || {
        (client.received() >= MID_TRANSFER).then_some(())
    });
    assert_eq!(engine.metric(STREAMS_ACTIVE), Some(1), "one stream open mid-transfer");

    forward.kill(); // SIGKILL
    let killed = Instant::now();
    let status = client.wait_exit(CLIENT_DEADLINE);
    assert!(status.is_some(), "client still running {CLIENT_DEADLINE:?} after the agent died: {}", client.stderr());
    let client_done = killed.elapsed();
    assert!(client.intact(), "client received corrupted bytes");

    wait_until(INVENTORY_DEADLINE, "the engine to free the stream", || {
        (engine.metric(STREAMS_ACTIVE) == Some(0)).then_some(())
    });
    let stream_freed = killed.elapsed();
    let left = INVENTORY_DEADLINE.saturating_sub(killed.elapsed());
    wait_until(left, "the dead agent's tunnel to leave the inventory", || {
        engine.tunnel_names().is_empty().then_some(())
    });
    eprintln!(
        "after {} MiB: client ended in {client_done:?} ({status:?}), stream freed in {stream_freed:?}, \
         tunnel unlisted in {:?}",
        client.received() >> 20,
        killed.elapsed()
    );
    status.and_then(|s| s.code())
}

#[test]
fn sigkill_of_the_agent_mid_dial_ends_the_client_and_frees_the_stream() {
    let engine = Engine::start();
    let origin = endless_origin();
    let mut forward =
        Forward::start(&engine, &origin.target(), &["--name", "firehose", "--no-publish", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    let mut client = PatternClient::spawn(dial_command(&engine, "rstrm://firehose"), Feed::Silent);
    kill_agent_mid_transfer(&engine, &mut forward, &mut client);
}

#[test]
fn sigkill_of_the_agent_mid_download_fails_the_published_request_and_frees_the_stream() {
    let engine = Engine::start();
    let origin = http_origin();
    let mut forward = Forward::start(&engine, &origin.target(), &["--name", "site", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    let mut client = PatternClient::spawn(curl_command(&engine, "site.t.localhost", "/endless"), Feed::Silent);
    let code = kill_agent_mid_transfer(&engine, &mut forward, &mut client);
    // curl 18: "transfer closed with outstanding read data remaining" — the truncation is visible.
    assert_eq!(code, Some(18), "curl: {}", client.stderr());
}

#[test]
fn an_agent_frozen_mid_dial_is_dropped_with_its_stream_within_three_heartbeats() {
    let engine = Engine::start();
    let origin = endless_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "frozen", "--no-publish", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    let mut client = PatternClient::spawn(dial_command(&engine, "rstrm://frozen"), Feed::Silent);
    wait_until(Duration::from_secs(30), "the transfer to get going", || {
        (client.received() >= MID_TRANSFER).then_some(())
    });
    // SIGSTOP: like a device that lost power or its link, the agent sends nothing more and never closes.
    signal(forward.pid(), "STOP");
    let stopped = Instant::now();
    let status = client.wait_exit(INVENTORY_DEADLINE + CLIENT_DEADLINE);
    let client_done = stopped.elapsed();
    let unlisted = wait_until(Duration::from_secs(5), "the frozen agent's tunnel to leave the inventory", || {
        engine.tunnel_names().is_empty().then(|| stopped.elapsed())
    });
    let streams = engine.metric(STREAMS_ACTIVE);
    signal(forward.pid(), "CONT");
    eprintln!("frozen agent: client ended after {client_done:?} ({status:?}), tunnel unlisted by {unlisted:?}");
    assert!(status.is_some(), "client still running {client_done:?} after its agent froze: {}", client.stderr());
    assert!(client.intact(), "client received corrupted bytes");
    assert!(client_done <= INVENTORY_DEADLINE + FROZEN_SLACK, "the stream outlived its agent by {client_done:?}");
    assert_eq!(streams, Some(0), "the engine still holds the frozen agent's stream");
}
