//! The engine's events API against the real binary: `/api/sse` and `/api/websocket` open with `state.initial`,
//! then report `tunnel.created` when `forward` starts, a `stream.summary` for a request through it, and
//! `tunnel.deleted` within one heartbeat timeout of killing it; WatchParams filters apply in the engine; a
//! subscriber that never reads is dropped while the engine's memory stays bounded.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_agent::{tunnel, FakeAgent};
use common::proc::memory_kib;
use common::tunnel::{http_origin, https_get, Forward};
use common::{wait_until, Engine, DEVICE};
use futures_lite::StreamExt;
use rstream::http::percent::encode_component;
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{opt_str, CloseTunnelReq};
use serde_json::Value;

/// The engine's heartbeat timeout: a silent agent is declared dead after it (`limits::HEARTBEAT_DEAD_AFTER`).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);
const DEADLINE: Duration = Duration::from_secs(20);

/// Events received by a subscriber, in order, shared with its reader thread.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn push(&self, v: Value) {
        self.0.lock().unwrap().push(v);
    }

    fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    /// Waits for an event of `kind` whose object satisfies `pick`; returns its position and the event.
    fn wait_for(&self, kind: &str, deadline: Duration, pick: impl Fn(&Value) -> bool) -> (usize, Value) {
        wait_until(deadline, &format!("a {kind} event"), || {
            self.all().into_iter().enumerate().find(|(_, e)| e["type"] == kind && pick(&e["object"]))
        })
    }
}

fn named(name: &'static str) -> impl Fn(&Value) -> bool {
    move |o| o["name"] == name
}

/// `curl -N` on `/api/sse`: every `data:` line parsed as JSON, comments and all, in order.
struct Sse {
    _child: common::ChildGuard,
    seen: Seen,
    comments: Arc<Mutex<Vec<String>>>,
}

fn sse(engine: &Engine, query: &str, token: &str) -> Sse {
    use std::io::BufRead;
    let url = format!("https://localhost:{}/api/sse{query}", engine.port());
    let mut child = std::process::Command::new("curl")
        .args(["-sS", "-N", "--cacert"])
        .arg(engine.ca_path())
        .args(["-H", &format!("Authorization: Bearer {token}"), &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run curl");
    let out = child.stdout.take().unwrap();
    let (seen, comments) = (Seen::default(), Arc::<Mutex<Vec<String>>>::default());
    let (s, c) = (seen.clone(), Arc::clone(&comments));
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix("data: ") {
                s.push(serde_json::from_str(json).unwrap_or_else(|e| panic!("bad event {json:?}: {e}")));
            } else if line.starts_with(':') {
                c.lock().unwrap().push(line);
            } else {
                assert!(line.is_empty(), "only data lines, comments and blank lines: {line:?}");
            }
        }
    });
    Sse { _child: common::ChildGuard(child), seen, comments }
}

fn params(json: &str) -> String {
    format!("params={}", encode_component(json))
}

#[test]
fn sse_reports_a_forward_start_a_stream_and_its_stop_after_the_initial_state() {
    let engine = Engine::start();
    let token = engine.token(&["tunnels.resources.read-only"], None);
    let sub = sse(&engine, "", &token);
    let (first, initial) = sub.seen.wait_for("state.initial", DEADLINE, |_| true);
    assert_eq!(first, 0, "state.initial comes first");
    let object = &initial["object"];
    assert!(object["snapshot_at"].is_string() && object["tunnels"] == Value::Array(vec![]), "{initial}");
    assert!(object["clients"].is_array(), "{initial}");

    let origin = http_origin();
    let mut forward = Forward::start(&engine, &origin.target(), &["--name", "web", "-o", "json"], &[]);
    let (_, created) = sub.seen.wait_for("tunnel.created", DEADLINE, named("web"));
    let listed = engine.tunnels();
    let mut expected = listed[0].clone();
    expected["status"] = "online".into();
    assert_eq!(created["object"], expected, "the event object is the list endpoint's item");
    assert!(created["id"].as_str().unwrap().starts_with("evt_") && created["created_at"].is_string());
    let client = sub.seen.wait_for("client.created", DEADLINE, |_| true).1;
    assert_eq!(client["object"]["id"], created["object"]["client_id"]);

    forward.wait_online(1, DEADLINE);
    let (status, _) = https_get(&engine, "web.t.localhost", "/");
    assert_eq!(status, 200);
    let (_, summary) = sub.seen.wait_for("stream.summary", DEADLINE, |o| o["routing"]["decision"] == "routed");
    let o = &summary["object"];
    assert_eq!(o["routing"]["tunnel"]["tunnelName"], "web", "{summary}");
    assert_eq!(o["response"]["outcome"], "connected", "{summary}");
    assert!(o["response"]["metrics"]["upstream_bytes"].as_u64().unwrap() > 0, "{summary}");
    assert!(o["response"]["metrics"]["downstream_bytes"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(o["request"]["downstream"]["ip"], "127.0.0.1");
    assert_eq!(o["tunnel_id"], created["object"]["id"]);

    let (status, _) = https_get(&engine, "nothing.t.localhost", "/");
    assert_eq!(status, 404);

    let killed = Instant::now();
    forward.kill();
    let (deleted_at, deleted) = sub.seen.wait_for("tunnel.deleted", HEARTBEAT_TIMEOUT, named("web"));
    assert!(killed.elapsed() < HEARTBEAT_TIMEOUT, "tunnel.deleted after {:?}", killed.elapsed());
    assert_eq!(deleted["object"]["status"], "offline");
    assert_eq!(deleted["object"]["id"], created["object"]["id"]);
    let (gone_at, _) = sub.seen.wait_for("client.deleted", DEADLINE, |o| o["id"] == client["object"]["id"]);
    assert!(gone_at > deleted_at, "a client leaves after its tunnels");
    let kinds: Vec<String> = sub.seen.all().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    eprintln!("event sequence of a forward start, one request and a kill: {kinds:?}");
    assert_eq!(
        kinds,
        ["state.initial", "client.created", "tunnel.created", "stream.summary", "tunnel.deleted", "client.deleted"]
    );
    let comments = sub.comments.lock().unwrap().clone();
    assert!(comments.iter().all(|c| c == ": heartbeat"), "{comments:?}");
}

#[test]
fn sse_refuses_missing_tokens_bad_params_and_device_tokens_and_accepts_the_query_token() {
    let engine = Engine::start();
    let reader = engine.token(&["tunnels.resources.read-only"], None);
    assert_eq!(engine.api("/api/sse", None).status, 401);
    let device = engine.token(&DEVICE, None);
    assert_eq!(engine.api("/api/sse", Some(&device)).status, 403);
    let bad = engine.api("/api/sse?params=%7Bnope", Some(&reader));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("invalid params JSON"), "{bad:?}");
    let plain = engine.api("/api/websocket", Some(&reader));
    assert_eq!(plain.status, 426, "{plain:?}");
    // A browser's EventSource cannot set headers: the token may come as ?rstream.token=.
    let url = format!("/api/sse?rstream.token={reader}");
    let head = engine.curl_host("localhost", &url, None, &["--max-time", "2"]);
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert!(head.body.starts_with("data: {\"created_at\""), "{:?}", head.body);
}

/// A WebSocket subscriber in a thread: events pushed to `seen`; a ping sent first, its pong recorded.
fn websocket(engine: &Engine, query: &str) -> (Seen, Arc<Mutex<Vec<Vec<u8>>>>) {
    use async_tungstenite::tungstenite::Message;
    let (seen, pongs) = (Seen::default(), Arc::<Mutex<Vec<Vec<u8>>>>::default());
    let (s, p) = (seen.clone(), Arc::clone(&pongs));
    let (addr, ca) = (engine.addr(), engine.ca_path());
    let url = format!("wss://localhost:{}/api/websocket{query}", engine.port());
    std::thread::spawn(move || {
        smol::block_on(async move {
            let tls = common::tls::connect_to(&addr, &ca, "localhost", Some("http/1.1")).await.expect("connect");
            let (mut ws, _) = async_tungstenite::client_async(url.as_str(), tls).await.expect("websocket handshake");
            ws.send(Message::Ping(b"are you there".to_vec().into())).await.expect("ping");
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Text(text) => s.push(serde_json::from_str(text.as_str()).expect("JSON event")),
                    Message::Pong(data) => p.lock().unwrap().push(data.to_vec()),
                    Message::Binary(_) => panic!("events are text frames"),
                    _ => {}
                }
            }
        })
    });
    (seen, pongs)
}

#[test]
fn websocket_subscribers_get_only_what_their_filters_select_and_pings_are_answered() {
    let engine = Engine::start();
    let token = engine.token(&["tunnels.resources.read-only"], None);
    let only_b = format!("?{}&rstream.token={token}", params(r#"{"tunnels":{"name":"b"},"clients":{"id":"none"}}"#));
    let (filtered, pongs) = websocket(&engine, &only_b);
    let (all, _) = websocket(&engine, &format!("?rstream.token={token}"));
    let (first, _) = filtered.wait_for("state.initial", DEADLINE, |_| true);
    assert_eq!(first, 0);
    all.wait_for("state.initial", DEADLINE, |_| true);
    wait_until(DEADLINE, "the pong", || {
        (pongs.lock().unwrap().first() == Some(&b"are you there".to_vec())).then_some(())
    });

    let device = engine.token(&DEVICE, None);
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &device).await.unwrap();
        agent.open_tunnel(tunnel("a", false)).await.unwrap();
        agent.open_tunnel(tunnel("b", false)).await.unwrap();
        filtered.wait_for("tunnel.created", DEADLINE, named("b"));
        all.wait_for("tunnel.created", DEADLINE, named("b"));
        drop(agent);
        all.wait_for("client.deleted", DEADLINE, |_| true);
        filtered.wait_for("tunnel.deleted", DEADLINE, named("b"));
    });
    // Events are ordered: everything published before b's deletion has reached the filtered subscriber.
    let names: Vec<(String, String)> = filtered
        .all()
        .iter()
        .skip(1)
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["object"]["name"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        names,
        [("tunnel.created".to_owned(), "b".to_owned()), ("tunnel.deleted".to_owned(), "b".to_owned())],
        "tunnel a and the client were filtered out in the engine"
    );
    let kinds: Vec<String> = all.all().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        kinds,
        [
            "state.initial",
            "client.created",
            "tunnel.created",
            "tunnel.created",
            "tunnel.deleted",
            "tunnel.deleted",
            "client.deleted"
        ]
    );

    // A second filter form: with a snapshot, state.initial lists only what the filters select.
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &device).await.unwrap();
        agent.open_tunnel(tunnel("a", false)).await.unwrap();
        agent.open_tunnel(tunnel("b", false)).await.unwrap();
        let (late, _) = websocket(&engine, &only_b);
        let (_, initial) = late.wait_for("state.initial", DEADLINE, |_| true);
        let tunnels = initial["object"]["tunnels"].as_array().unwrap();
        assert_eq!(tunnels.len(), 1, "{initial}");
        assert_eq!(tunnels[0]["name"], "b");
        assert_eq!(initial["object"]["clients"], Value::Array(vec![]));
        drop(agent);
    });
}

/// Bytes of labels on each tunnel of the flood: one event is about this big.
const LABEL_BYTES: usize = 48 * 1024;
/// Most tunnels opened and closed (two events each) before the silent subscriber must have been dropped.
const FLOOD_ROUNDS: usize = 300;
/// Tunnels opened and closed after the drop, to show memory does not follow the event volume.
const AFTER_ROUNDS: usize = 200;
/// What the engine's resident memory may grow by while a subscriber that never reads is flooded. The engine
/// keeps at most `EVENT_QUEUE_DEPTH` (64) shared events per subscriber (64 × ~49 KiB = 3.1 MiB here) plus one
/// TLS connection's buffers; the rest of the margin is the flood's own allocations (each tunnel's labels, its
/// frames, its JSON) and allocator slack. Unbounded buffering would hold the whole flood (~28 MiB).
const RSS_GROWTH_BOUND_KIB: u64 = 12 * 1024;

#[test]
fn a_subscriber_that_never_reads_is_dropped_and_the_engine_memory_stays_bounded() {
    let engine = Engine::start();
    let token = engine.token(&["tunnels.resources.read-only"], None);
    let reader = sse(&engine, "", &token);
    reader.seen.wait_for("state.initial", DEADLINE, |_| true);
    let subscribers = || engine.metric("rstream_engine_event_subscribers");
    let agent = smol::block_on(FakeAgent::open(&engine, &engine.token(&DEVICE, None))).unwrap();
    let big = |name: &str| {
        let mut t = tunnel(name, false);
        for i in 0..LABEL_BYTES / 1024 {
            t.labels.insert(format!("k{i:03}"), "v".repeat(1020));
        }
        t
    };
    let round = |name: &str| {
        smol::block_on(async {
            let got = agent.open_tunnel(big(name)).await.expect("open");
            let id = opt_str(&got.id).unwrap().to_owned();
            agent.send(Payload::CloseTunnelReq(CloseTunnelReq { tunnel_id: id })).await;
            assert!(matches!(agent.next().await, Payload::CloseTunnelRsp(_)));
        })
    };
    for i in 0..20 {
        round(&format!("warm{i}"));
    }
    let (_, before) = memory_kib(engine.pid());

    // Subscribes, then never reads: a tiny receive window so the kernel holds little for it.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&engine.addr().parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    let tcp: TcpStream = sock.into();
    let mut tls = common::raw::tls_over(tcp, &engine.ca_path(), "http/1.1").expect("tls");
    let request = format!("GET /api/sse HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    wait_until(DEADLINE, "two subscribers", || (subscribers() == Some(2)).then_some(()));

    let start = Instant::now();
    let mut peak = before;
    let mut rounds = 0;
    while rounds < FLOOD_ROUNDS && subscribers() != Some(1) {
        round(&format!("flood{rounds}"));
        rounds += 1;
        peak = peak.max(memory_kib(engine.pid()).1);
    }
    wait_until(DEADLINE, "the silent subscriber dropped", || (subscribers() == Some(1)).then_some(()));
    let dropped_after = start.elapsed();
    for i in 0..AFTER_ROUNDS {
        round(&format!("after{i}"));
        peak = peak.max(memory_kib(engine.pid()).1);
    }
    let growth = peak.saturating_sub(before);
    eprintln!(
        "silent subscriber dropped after {rounds} rounds ({} events of ~{} KiB) in {dropped_after:?}, then \
         {AFTER_ROUNDS} more rounds; RSS {before} KiB before, peak {peak} KiB (+{growth} KiB)",
        2 * rounds,
        LABEL_BYTES / 1024,
    );
    assert!(growth < RSS_GROWTH_BOUND_KIB, "RSS grew by {growth} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)");
    // The reading subscriber saw every event of the flood, in order.
    let last = format!("after{}", AFTER_ROUNDS - 1);
    reader.seen.wait_for("tunnel.deleted", DEADLINE, |o| o["name"] == last.as_str());
    let created = reader.seen.all().iter().filter(|e| e["type"] == "tunnel.created").count();
    assert_eq!(created, 20 + rounds + AFTER_ROUNDS);
    assert!(common::raw::tls_closed_within(&mut tls, DEADLINE), "the silent subscriber's connection is closed");
}

#[test]
fn an_idle_sse_stream_gets_heartbeat_comments() {
    let engine = Engine::start();
    let token = engine.token(&["tunnels.resources.read-only"], None);
    let sub = sse(&engine, "", &token);
    sub.seen.wait_for("state.initial", DEADLINE, |_| true);
    // limits::EVENT_HEARTBEAT_INTERVAL is 15 s.
    wait_until(DEADLINE, "a heartbeat comment", || {
        sub.comments.lock().unwrap().iter().any(|c| c == ": heartbeat").then_some(())
    });
    assert_eq!(sub.seen.all().len(), 1, "a heartbeat is a comment, not an event");
}
