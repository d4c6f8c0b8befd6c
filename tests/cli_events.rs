//! `rstream events` against the real binary and engine: `-o ndjson` prints `state.initial`, then `tunnel.created`
//! when a `forward` starts and `tunnel.deleted` when it is killed; `--events` filters types; `--forward-to` with
//! `--webhook` POSTs signed events to a receiver written here, which checks the signature with its own HMAC code
//! and refuses a replay older than 300 s; an engine restart brings a fresh `state.initial`; a refused token ends
//! the command at once with an error.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::tunnel::{http_origin, Forward};
use common::{wait_until, ChildGuard, Engine, TempDir, BIN, DEVICE};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const DEADLINE: Duration = Duration::from_secs(20);
/// The engine declares a killed agent dead within one heartbeat timeout.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);
/// What the receiver accepts between the signature's timestamp and its own clock.
const TOLERANCE_SECS: u64 = 300;
const SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLXJzdHJlYW0tZXZlbnRz";

/// A running `rstream events`: its stdout lines and stderr text.
struct Events {
    child: ChildGuard,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Events {
    fn start(engine: &Engine, args: &[&str]) -> Events {
        let mut child = Command::new(BIN)
            .arg("events")
            .args(args)
            .env("RSTREAM_CONFIG", engine.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rstream events");
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let (lines, stderr) = (Arc::<Mutex<Vec<String>>>::default(), Arc::<Mutex<String>>::default());
        let (l, e) = (Arc::clone(&lines), Arc::clone(&stderr));
        std::thread::spawn(move || {
            BufReader::new(out).lines().map_while(Result::ok).for_each(|x| l.lock().unwrap().push(x))
        });
        std::thread::spawn(move || {
            BufReader::new(err)
                .lines()
                .map_while(Result::ok)
                .for_each(|x| e.lock().unwrap().push_str(&format!("{x}\n")))
        });
        Events { child: ChildGuard(child), lines, stderr }
    }

    /// Every printed event (ndjson).
    fn events(&self) -> Vec<Value> {
        let lines = self.lines.lock().unwrap().clone();
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not ndjson: {l:?}: {e}"))).collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.events().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    }

    /// Waits for the `n`th (1-based) event of `kind` whose object satisfies `pick`.
    fn wait_for(&self, kind: &str, n: usize, deadline: Duration, pick: impl Fn(&Value) -> bool) -> Value {
        common::wait_until_or(
            deadline,
            || format!("event #{n} of type {kind}; stdout {:?}; stderr {}", self.kinds(), self.stderr.lock().unwrap()),
            || self.events().into_iter().filter(|e| e["type"] == kind && pick(&e["object"])).nth(n - 1),
        )
    }

    /// Waits until it logged its `n`th subscription.
    fn wait_subscribed(&self, n: usize) {
        wait_until(DEADLINE, "the subscription", || {
            (self.stderr.lock().unwrap().matches("events: subscribed to").count() >= n).then_some(())
        });
    }
}

fn named(name: &'static str) -> impl Fn(&Value) -> bool {
    move |o| o["name"] == name
}

#[test]
fn ndjson_prints_the_initial_state_then_a_forward_start_and_stop_and_types_filter() {
    let engine = Engine::start();
    let all = Events::start(&engine, &["-o", "ndjson"]);
    let only =
        Events::start(&engine, &["-o", "ndjson", "--transport", "sse", "--events", "tunnel.created,tunnel.deleted"]);
    let initial = all.wait_for("state.initial", 1, DEADLINE, |_| true);
    assert!(initial["object"]["tunnels"].is_array() && initial["object"]["snapshot_at"].is_string(), "{initial}");
    only.wait_subscribed(1);

    let origin = http_origin();
    let mut forward = Forward::start(&engine, &origin.target(), &["--name", "web", "-o", "json"], &[]);
    let created = all.wait_for("tunnel.created", 1, DEADLINE, named("web"));
    assert_eq!(created["object"]["status"], "online");
    only.wait_for("tunnel.created", 1, DEADLINE, named("web"));
    forward.wait_online(1, DEADLINE);
    forward.kill();
    let deleted = all.wait_for("tunnel.deleted", 1, HEARTBEAT_TIMEOUT + DEADLINE, named("web"));
    assert_eq!(deleted["object"]["id"], created["object"]["id"]);
    only.wait_for("tunnel.deleted", 1, DEADLINE, named("web"));
    all.wait_for("client.deleted", 1, DEADLINE, |_| true);

    let kinds = all.kinds();
    assert_eq!(kinds.first().map(String::as_str), Some("state.initial"), "{kinds:?}");
    assert_eq!(kinds, ["state.initial", "client.created", "tunnel.created", "tunnel.deleted", "client.deleted"]);
    assert_eq!(only.kinds(), ["tunnel.created", "tunnel.deleted"], "--events keeps only the listed types");
}

#[test]
fn an_engine_restart_brings_a_fresh_initial_state() {
    let mut engine = Engine::start();
    let events = Events::start(&engine, &["-o", "ndjson"]);
    events.wait_for("state.initial", 1, DEADLINE, |_| true);
    engine.restart();
    let again = events.wait_for("state.initial", 2, Duration::from_secs(40), |_| true);
    assert!(again["object"]["snapshot_at"].is_string(), "{again}");
    assert!(events.stderr.lock().unwrap().contains("reconnecting in"), "{}", events.stderr.lock().unwrap());
    events.wait_subscribed(2);
}

#[test]
fn refused_tokens_end_the_command_with_a_clear_error_and_no_retry() {
    let engine = Engine::start();
    for (token, status) in [("not-a-jwt".to_owned(), "401"), (engine.token(&DEVICE, None), "403")] {
        let mut events = Events::start_with_token(&engine, &token);
        let code = events.child.wait_exit(DEADLINE).expect("rstream events exits on a refusal");
        assert_eq!(code.code(), Some(1));
        let err = events.stderr.lock().unwrap().clone();
        assert!(err.contains("refused the event subscription") && err.contains(status), "{err}");
        assert!(!err.contains("reconnecting"), "no retry loop: {err}");
        assert!(!err.contains(&token), "the token is not echoed: {err}");
    }
}

impl Events {
    fn start_with_token(engine: &Engine, token: &str) -> Events {
        let mut child = Command::new(BIN)
            .args(["events", "-o", "ndjson"])
            .env("RSTREAM_CONFIG", engine.config_path())
            .env("RSTREAM_AUTHENTICATION_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rstream events");
        let err = child.stderr.take().unwrap();
        let stderr = Arc::<Mutex<String>>::default();
        let e = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(err).read_to_string(&mut text);
            e.lock().unwrap().push_str(&text);
        });
        Events { child: ChildGuard(child), lines: Arc::default(), stderr }
    }
}

/// One POST the receiver accepted: its headers (lowercase names) and JSON body.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// POSTs a receiver got, shared with its thread.
type Deliveries = Arc<Mutex<Vec<Delivery>>>;

/// The receiver's own check, as a webhook consumer would write it: parse `t=…,v1=…`, refuse a timestamp more than
/// [`TOLERANCE_SECS`] from now, recompute HMAC-SHA256(secret, "<t>." + body) and compare in constant time.
fn verify(secret: &str, header: Option<&String>, body: &[u8], now: u64) -> Result<(), (u16, &'static str)> {
    let header = header.ok_or((401, "missing rstream-signature"))?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_owned()),
            _ => {}
        }
    }
    let (t, v1) = (t.ok_or((401, "no timestamp"))?, v1.ok_or((401, "no v1 signature"))?);
    if now.abs_diff(t) > TOLERANCE_SECS {
        return Err((400, "timestamp outside the tolerance (replay?)"));
    }
    let expected: Vec<u8> =
        (0..v1.len() / 2).filter_map(|i| u8::from_str_radix(v1.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| (401, "bad signature"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A webhook receiver on 127.0.0.1: answers the first `busy` POSTs 503 (their deliveries are kept in `.1`), then
/// verifies each POST and keeps the accepted ones (`.0`).
fn receiver(busy: usize) -> (u16, Deliveries, Deliveries) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, turned_away) = (Deliveries::default(), Deliveries::default());
    let (keep, away) = (Arc::clone(&accepted), Arc::clone(&turned_away));
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let Some(delivery) = read_request(&conn) else { continue };
            if away.lock().unwrap().len() < busy {
                away.lock().unwrap().push(delivery);
                let _ = (&conn).write_all(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy");
                continue;
            }
            let answer = match verify(SECRET, delivery.headers.get("rstream-signature"), &delivery.body, unix_now()) {
                Ok(()) => {
                    keep.lock().unwrap().push(delivery);
                    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_owned()
                }
                Err((status, why)) => format!(
                    "HTTP/1.1 {status} Refused\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}",
                    why.len()
                ),
            };
            let _ = (&conn).write_all(answer.as_bytes());
        }
    });
    (port, accepted, turned_away)
}

/// Reads one HTTP/1.1 request with a Content-Length body.
fn read_request(conn: &TcpStream) -> Option<Delivery> {
    conn.set_read_timeout(Some(DEADLINE)).ok()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let Some((k, v)) = line.trim_end().split_once(':') else { break };
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Delivery { headers, body })
}

/// Sends `body` to the receiver with `signature`; returns the status it answered.
fn post(port: u16, signature: &str, body: &[u8]) -> u16 {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nrstream-signature: {signature}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The signature the receiver would accept for `body` at `t`, computed independently of rstream.
fn sign(t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[test]
fn forward_to_posts_signed_events_the_receiver_verifies_and_old_replays_are_refused() {
    let engine = Engine::start();
    let (port, accepted, turned_away) = receiver(1);
    let dir = TempDir::new("events-webhook");
    let secret_file = dir.path().join("whsec");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let events = Events::start(
        &engine,
        &[
            "-o",
            "ndjson",
            "--forward-to",
            &url,
            "--webhook",
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
            "--webhook-id",
            "we_test",
        ],
    );
    let delivered = |kind: &'static str| {
        let accepted = Arc::clone(&accepted);
        move || {
            accepted
                .lock()
                .unwrap()
                .iter()
                .find(|d| d.headers.get("rstream-event-type").map(String::as_str) == Some(kind))
                .cloned()
        }
    };
    let initial = wait_until(DEADLINE, "state.initial at the receiver", delivered("state.initial"));
    let first = turned_away.lock().unwrap()[0].clone();
    assert_eq!(first.headers["rstream-event-type"], "state.initial", "the 503 was retried");
    assert_eq!(first.headers["rstream-delivery-id"], initial.headers["rstream-delivery-id"], "same delivery, retried");
    assert_eq!(first.body, initial.body);
    let origin = http_origin();
    let _forward = Forward::start(&engine, &origin.target(), &["--name", "hooked", "-o", "json"], &[]);
    let created = wait_until(DEADLINE, "tunnel.created at the receiver", delivered("tunnel.created"));
    let event: Value = serde_json::from_slice(&created.body).unwrap();
    assert_eq!(event["object"]["name"], "hooked");
    assert_eq!(created.headers["rstream-event-id"], event["id"].as_str().unwrap(), "the engine's event id");
    assert_eq!(created.headers["rstream-webhook-id"], "we_test");
    let delivery = &created.headers["rstream-delivery-id"];
    assert!(delivery.starts_with("cli_del_") && delivery.len() == 32, "{delivery}");
    assert_ne!(delivery, &initial.headers["rstream-delivery-id"], "one delivery id per event");
    assert_eq!(events.wait_for("tunnel.created", 1, DEADLINE, named("hooked"))["id"], event["id"], "printed as well");

    // The receiver's own replay check: a correctly signed copy stamped 301 s ago is refused, as is a tampered one.
    let old = unix_now() - TOLERANCE_SECS - 1;
    assert_eq!(post(port, &sign(old, &created.body), &created.body), 400, "an old timestamp is a replay");
    assert_eq!(post(port, &sign(unix_now(), &created.body), &created.body), 204, "a fresh signature is accepted");
    let signature = &created.headers["rstream-signature"];
    let mut tampered = created.body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(post(port, signature, &tampered), 401, "the signature covers the body");
}
