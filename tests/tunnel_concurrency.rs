//! Many streams through one tunnel at once: 64 concurrent dials (the library client, as `rstream dial` uses it)
//! through one `rstream forward` to an echo origin, each with its own data, all intact.

mod common;

use std::time::Duration;

use common::tunnel::{echo_origin, Forward};
use common::Engine;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use rstream::transport::{ClientTlsConfig, EngineEndpoint};

const STREAMS: usize = 64;
const PER_STREAM: usize = 256 * 1024;

#[test]
fn sixty_four_concurrent_streams_through_one_tunnel_carry_their_own_bytes() {
    let engine = Engine::start();
    let origin = echo_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "echo", "--no-publish", "-o", "json"], &[]);
    forward.wait_online(1, Duration::from_secs(20));
    let tls = ClientTlsConfig {
        server_name: "localhost".into(),
        ca_pem: Some(std::fs::read(engine.ca_path()).unwrap()),
        insecure_skip_verify: false,
    };
    let endpoint = EngineEndpoint::new(engine.addr(), tls, engine.operator_token());
    let results = smol::block_on(async {
        let tasks: Vec<_> = (0..STREAMS)
            .map(|i| {
                let endpoint = endpoint.clone();
                smol::spawn(async move {
                    let data: Vec<u8> = (0..PER_STREAM).map(|j| (i * 7 + j / 251) as u8).collect();
                    let stream = endpoint.dial_tunnel("echo").await.map_err(|e| format!("stream {i}: {e}"))?;
                    let (mut rd, mut wr) = futures_lite::io::split(stream);
                    let mut back = vec![0u8; PER_STREAM];
                    let (sent, got) = futures_lite::future::zip(wr.write_all(&data), rd.read_exact(&mut back)).await;
                    sent.and(got).map_err(|e| format!("stream {i}: {e}"))?;
                    // Then half-close: the origin sees EOF, closes, and nothing more comes back.
                    wr.close().await.map_err(|e| format!("stream {i}: close: {e}"))?;
                    let mut rest = Vec::new();
                    rd.read_to_end(&mut rest).await.map_err(|e| format!("stream {i}: after close: {e}"))?;
                    if !rest.is_empty() {
                        return Err(format!("stream {i}: {} unexpected bytes after the echo", rest.len()));
                    }
                    if back != data {
                        return Err(format!("stream {i}: {} bytes came back, not its own {}", back.len(), data.len()));
                    }
                    Ok(())
                })
            })
            .collect();
        let deadline = async_io::Timer::after(Duration::from_secs(120));
        futures_lite::future::or(
            async {
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await);
                }
                out
            },
            async {
                deadline.await;
                panic!("64 streams did not finish within 120 s");
            },
        )
        .await
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{} of {STREAMS} streams failed: {failures:?}", failures.len());
}
