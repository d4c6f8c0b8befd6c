//! Published HTTP tunnels through the real engine: routed by SNI and by `Host` (`<name>.t.localhost`), TLS
//! terminated at the engine, the request replayed to the agent's leg; 404 for unknown or private names, 502
//! when the agent refuses, 401 on `token_auth` tunnels without a stream token; the plain-HTTP listener.

mod common;

use common::fake_agent::{tunnel, FakeAgent, LegDialer};
use common::{curl, Engine, DEVICE, OPERATOR};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{Error, ProxyConnRsp, TunnelProperties};

/// Answers every stream of `agent` like a tiny HTTP server echoing the request line and `Host`.
fn serve_echo(engine: &Engine, agent: FakeAgent) -> smol::Task<()> {
    let dialer = LegDialer::new(engine);
    smol::spawn(async move {
        loop {
            let req = agent.next_proxy_conn().await;
            let dialer = dialer.clone();
            smol::spawn(async move {
                let mut leg = dialer.dial(&req).await;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && leg.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or("").to_owned();
                let host = head.lines().find_map(|l| l.strip_prefix("Host: ")).unwrap_or("").to_owned();
                let body = format!("{line} | host={host}");
                let answer =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = leg.write_all(answer.as_bytes()).await;
                let _ = leg.close().await;
            })
            .detach();
        }
    })
}

/// Registers `props` on a fresh agent that serves the echo page.
fn publish(engine: &Engine, props: TunnelProperties) -> smol::Task<()> {
    let agent = smol::block_on(async {
        let agent = FakeAgent::open(engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(props).await.unwrap();
        agent
    });
    serve_echo(engine, agent)
}

#[test]
fn published_tunnel_is_reached_by_sni_with_the_request_replayed() {
    let engine = Engine::start();
    let _web = publish(&engine, tunnel("web", true));
    let reply = engine.curl_host("web.t.localhost", "/hello?x=1", None, &[]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, format!("GET /hello?x=1 HTTP/1.1 | host=web.t.localhost:{}", engine.port()));
    let again = engine.curl_host("WEB.t.localhost", "/", None, &["-X", "POST", "-d", "payload"]);
    assert_eq!(again.status, 200, "names are case-insensitive");
    assert!(again.body.starts_with("POST / HTTP/1.1"));
}

#[test]
fn without_sni_the_host_header_routes_to_the_tunnel() {
    let engine = Engine::start();
    let _web = publish(&engine, tunnel("web", true));
    let url = format!("https://127.0.0.1:{}/via-ip", engine.port());
    let ca = engine.ca_path();
    let reply = curl(&["--cacert", ca.to_str().unwrap(), "-H", "Host: web.t.localhost", &url]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.starts_with("GET /via-ip HTTP/1.1 | host=web.t.localhost"), "{}", reply.body);
    let api = curl(&["--cacert", ca.to_str().unwrap(), &url]);
    assert_eq!(api.status, 404, "other hosts reach the API, which has no /via-ip");
    assert_eq!(api.json()["error"], "no such endpoint: /via-ip");
}

#[test]
fn unknown_and_private_names_get_the_same_404_page() {
    let engine = Engine::start();
    let _db = publish(&engine, tunnel("db", false));
    for name in ["nothing", "db"] {
        let reply = engine.curl_host(&format!("{name}.t.localhost"), "/", None, &[]);
        assert_eq!(reply.status, 404, "{name}: {reply:?}");
        assert!(reply.header("content-type").unwrap().starts_with("text/html"));
        assert!(reply.body.contains(&format!("No tunnel is published at {name}.")), "{}", reply.body);
    }
}

#[test]
fn an_agent_that_refuses_the_stream_yields_502() {
    let engine = Engine::start();
    let agent = smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        agent.open_tunnel(tunnel("down", true)).await.unwrap();
        agent
    });
    let refuser = smol::spawn(async move {
        loop {
            let req = agent.next_proxy_conn().await;
            let error =
                Some(Error::new(rstream::proto::rstream::ErrorCode::ServiceUnavailable, "local service is down"));
            agent.send(Payload::ProxyConnRsp(ProxyConnRsp { stream_id: req.stream_id, error })).await;
        }
    });
    let started = std::time::Instant::now();
    let reply = engine.curl_host("down.t.localhost", "/", None, &[]);
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(reply.body.contains("not reachable"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refusal is reported at once");
    drop(refuser);
}

#[test]
fn token_auth_tunnels_require_a_stream_token() {
    let engine = Engine::start();
    let mut props = tunnel("secured", true);
    props.token_auth = Some(true.into());
    let _secured = publish(&engine, props);
    let host = "secured.t.localhost";
    let none = engine.curl_host(host, "/", None, &[]);
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").is_some());
    let device = engine.token(&DEVICE, None);
    assert_eq!(engine.curl_host(host, "/", Some(&device), &[]).status, 401, "a device token cannot open streams");
    let operator = engine.token(&OPERATOR, None);
    assert_eq!(engine.curl_host(host, "/", Some(&operator), &[]).status, 200);
    let by_query = engine.curl_host(host, &format!("/page?rstream.token={operator}"), None, &[]);
    assert_eq!(by_query.status, 200, "{by_query:?}");
}

#[test]
fn plain_http_listener_serves_published_tunnels_only() {
    let engine = Engine::start_with(&["--http-listen", "127.0.0.1:0"]);
    let _web = publish(&engine, tunnel("web", true));
    let port = engine.http_port().expect("plain listener reported");
    let url = format!("http://127.0.0.1:{port}/plain");
    let reply = curl(&["-H", "Host: web.t.localhost", &url]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.starts_with("GET /plain HTTP/1.1 | host=web.t.localhost"));
    let api = curl(&[&format!("http://127.0.0.1:{port}/api/tunnels")]);
    assert_eq!(api.status, 404, "no API in clear text");
}
