//! Fault: 500 streams open at once through one tunnel, far more than one agent serves (`MAX_AGENT_STREAMS`).
//! Every stream either carries its own bytes intact or is refused cleanly and quickly with a reason — none hangs,
//! none is reset mid-way; the agent keeps its tunnel, the engine frees every stream and the memory of both stays
//! within 8 MiB of growth, what a router with 128 MiB can spare. The agent's part at `MAX_AGENT_STREAMS` = 128:
//! about 40 KiB of buffers per stream (a TLS read record of 16 KiB, a write record of 8 KiB, two 8 KiB pipes; the
//! splice to the local service has none of its own), about 7 MiB in all (14 MiB before the splice lost its copy
//! buffers and the write records and pipes were halved).
//!
//! The client dials from one address, so it keeps at most [`DIALS_IN_FLIGHT`] dials (TCP connect to first
//! message) going at a time: the engine closes an address's connections beyond
//! `MAX_PREAUTH_CONNECTIONS_PER_SOURCE` unauthenticated ones (`tests/dos_preauth.rs`), and the agent's legs come
//! from the same address. Every dialed stream is held open until all 500 have an outcome.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proc::{memory_kib, raise_nofile_limit};
use common::tunnel::{dial, echo_origin, Forward};
use common::{wait_until, Engine};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use rstream::limits::{MAX_AGENT_STREAMS, MAX_PREAUTH_CONNECTIONS_PER_SOURCE};
use rstream::transport::{ClientTlsConfig, EngineEndpoint};

const STREAMS: usize = 500;
const PER_STREAM: usize = 32 * 1024;
/// The whole burst, dial to last byte.
const BURST_DEADLINE: Duration = Duration::from_secs(60);
/// A refused stream learns it within this, measured from its dial: the test's 500 TLS handshakes share one
/// client TLS thread, so it is generous; that the refusal is explicit (503, a reason) is checked separately.
const REFUSED_WITHIN: Duration = Duration::from_secs(20);
/// Dials the client keeps in flight, well below the engine's per-source limit on unauthenticated connections
/// (the agent's legs, from the same address, need room too).
const DIALS_IN_FLIGHT: usize = MAX_PREAUTH_CONNECTIONS_PER_SOURCE / 4;
/// Resident memory the engine may gain during the burst: 8 MiB, what a router with 128 MiB can spare.
const MAX_RSS_GROWTH_KIB: u64 = 8 * 1024;
/// Resident memory the agent may gain with its limit of streams open and the rest refused: the same 8 MiB.
const MAX_AGENT_RSS_GROWTH_KIB: u64 = 8 * 1024;

/// What happened to one stream.
enum Outcome {
    /// Its bytes came back intact.
    Echoed,
    /// The engine refused it: how fast, and why.
    Refused(Duration, String),
}

/// Dials stream `i`, echoes its own data, then holds the stream open until every stream has an outcome (so the
/// agent really has its limit of streams open at once), and checks the echo and a clean end.
async fn one_stream(
    i: usize,
    endpoint: EngineEndpoint,
    dials: Arc<async_lock::Semaphore>,
    settled: Arc<async_lock::Barrier>,
) -> Result<Outcome, String> {
    let dialing = dials.acquire().await;
    let started = Instant::now();
    let dialed = endpoint.dial_tunnel("echo").await;
    drop(dialing);
    let stream = match dialed {
        Ok(stream) => stream,
        Err(e) => {
            settled.wait().await;
            return Ok(Outcome::Refused(started.elapsed(), e.to_string()));
        }
    };
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let data: Vec<u8> = (0..PER_STREAM).map(|j| (i * 31 + j / 97) as u8).collect();
    let mut back = vec![0u8; PER_STREAM];
    let (sent, got) = futures_lite::future::zip(wr.write_all(&data), rd.read_exact(&mut back)).await;
    settled.wait().await;
    sent.and(got).map_err(|e| format!("stream {i}: {e}"))?;
    wr.close().await.map_err(|e| format!("stream {i}: close: {e}"))?;
    let mut rest = Vec::new();
    rd.read_to_end(&mut rest).await.map_err(|e| format!("stream {i}: after close: {e}"))?;
    if back != data || !rest.is_empty() {
        return Err(format!("stream {i}: its echo differs ({} extra bytes after it)", rest.len()));
    }
    Ok(Outcome::Echoed)
}

#[test]
fn five_hundred_streams_through_one_tunnel_are_echoed_or_refused_cleanly() {
    raise_nofile_limit(8192);
    let engine = Engine::start();
    let origin = echo_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "echo", "--no-publish", "-o", "json"], &[]);
    forward.wait_online(1, Duration::from_secs(20));
    let (_, engine_before) = memory_kib(engine.pid());
    let (_, agent_before) = memory_kib(forward.pid());
    let tls = ClientTlsConfig {
        server_name: "localhost".into(),
        ca_pem: Some(std::fs::read(engine.ca_path()).unwrap()),
        insecure_skip_verify: false,
    };
    let endpoint = EngineEndpoint::new(engine.addr(), tls, engine.operator_token());

    let started = Instant::now();
    let results = smol::block_on(async {
        let settled = Arc::new(async_lock::Barrier::new(STREAMS));
        let dials = Arc::new(async_lock::Semaphore::new(DIALS_IN_FLIGHT));
        let tasks: Vec<_> = (0..STREAMS)
            .map(|i| smol::spawn(one_stream(i, endpoint.clone(), Arc::clone(&dials), Arc::clone(&settled))))
            .collect();
        let all = async {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        };
        futures_lite::future::or(all, async {
            async_io::Timer::after(BURST_DEADLINE).await;
            panic!("{STREAMS} streams did not all end within {BURST_DEADLINE:?}");
        })
        .await
    });
    let took = started.elapsed();
    let (engine_peak, _) = memory_kib(engine.pid());
    let (agent_peak, _) = memory_kib(forward.pid());

    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{} streams broke: {:?}", failures.len(), &failures[..failures.len().min(10)]);
    let echoed = results.iter().filter(|r| matches!(r, Ok(Outcome::Echoed))).count();
    let refusals: Vec<(Duration, &str)> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Outcome::Refused(t, why)) => Some((*t, why.as_str())),
            _ => None,
        })
        .collect();
    let slowest_refusal = refusals.iter().map(|r| r.0).max().unwrap_or_default();
    eprintln!(
        "{echoed} echoed, {} refused (slowest refusal {slowest_refusal:?}) in {took:?}; RSS engine {engine_before} → \
         peak {engine_peak} KiB (+{} KiB), agent {agent_before} → peak {agent_peak} KiB (+{} KiB)",
        refusals.len(),
        engine_peak.saturating_sub(engine_before),
        agent_peak.saturating_sub(agent_before)
    );
    let mut reasons: Vec<&str> = refusals.iter().map(|r| r.1).collect();
    reasons.sort();
    reasons.dedup();
    eprintln!("refusal reasons: {reasons:#?}");

    assert!(echoed <= MAX_AGENT_STREAMS, "{echoed} streams open at once, more than the agent's limit");
    assert!(echoed >= MAX_AGENT_STREAMS / 2, "only {echoed} of {STREAMS} streams were served");
    assert_eq!(echoed + refusals.len(), STREAMS);
    for (after, why) in &refusals {
        assert!(*after <= REFUSED_WITHIN, "a refusal took {after:?}: {why}");
        assert!(
            why.contains("CAPACITY_EXHAUSTED") && why.contains("limit") || why.contains("too many"),
            "unclear refusal: {why}"
        );
    }
    assert!(engine_peak.saturating_sub(engine_before) <= MAX_RSS_GROWTH_KIB, "engine peak {engine_peak} KiB");
    assert!(
        agent_peak.saturating_sub(agent_before) <= MAX_AGENT_RSS_GROWTH_KIB,
        "agent peak {agent_peak} KiB, {agent_before} KiB before"
    );

    // Afterwards: every stream freed, the agent still online, and a new stream works.
    wait_until(Duration::from_secs(10), "the engine to free every stream", || {
        (engine.metric("rstream_engine_streams_active") == Some(0)).then_some(())
    });
    assert_eq!(engine.tunnel_names(), ["echo"]);
    let (code, out, err) = dial(&engine, "rstrm://echo", b"still here\n", &[]);
    assert_eq!((code, out.as_slice()), (0, &b"still here\n"[..]), "{err}");
}
