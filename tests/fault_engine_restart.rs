//! Fault: the engine dies (SIGKILL) and comes back on the same port and state dir while streams flow through
//! its tunnels. Every client — long echo streams through `rstream dial`, endless downloads through a published
//! tunnel, short dials started around the restart — ends by itself within a deadline with intact bytes, and
//! both agents are registered again within 3 s of the new engine being ready.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tunnel::{
    big_body, curl_command, dial, dial_command, dial_with_config, echo_origin, http_origin, https_get, Feed, Forward,
    PatternClient,
};
use common::{wait_until_or, Engine};

const ONLINE: Duration = Duration::from_secs(20);
/// How soon after the engine is ready its agents must be registered again.
const REREGISTER: Duration = Duration::from_secs(3);
/// How long any client may take to notice the engine is gone.
const CLIENT_DEADLINE: Duration = Duration::from_secs(20);
/// Echo streams through `rstream dial` and endless downloads through the published tunnel.
const DIALS: usize = 4;
const DOWNLOADS: usize = 2;
/// Each echo stream sends this many bytes per second (load, not a flood: the machine may have two cores).
const ECHO_RATE: u64 = 128 * 1024;

#[test]
fn agents_reregister_within_3s_of_an_engine_restart_under_load_and_no_client_hangs() {
    let mut engine = Engine::start();
    let (echo, web) = (echo_origin(), http_origin());
    // The backoff cap bounds the reconnect delay whatever the engine's downtime (default: 5 s).
    let retry = ["-o", "json", "--retry-interval", "2000"];
    let private =
        Forward::start(&engine, &echo.target(), &[&["--name", "echo", "--no-publish"], &retry[..]].concat(), &[]);
    let published = Forward::start(&engine, &web.target(), &[&["--name", "web"], &retry[..]].concat(), &[]);
    private.wait_online(1, ONLINE);
    published.wait_online(1, ONLINE);

    let mut clients: Vec<(String, PatternClient)> = (0..DIALS)
        .map(|i| {
            (format!("dial #{i}"), PatternClient::spawn(dial_command(&engine, "rstrm://echo"), Feed::Paced(ECHO_RATE)))
        })
        .chain((0..DOWNLOADS).map(|i| {
            let curl = curl_command(&engine, "web.t.localhost", "/endless");
            (format!("download #{i}"), PatternClient::spawn(curl, Feed::Silent))
        }))
        .collect();
    let progress = || {
        let each: Vec<String> =
            clients.iter().map(|(n, c)| format!("{n}: {} bytes {}", c.received(), c.stderr())).collect();
        format!("every client to receive data: {each:?}\nagent logs:\n{}\n{}", private.stderr(), published.stderr())
    };
    wait_until_or(Duration::from_secs(20), progress, || {
        clients.iter().all(|(_, c)| c.received() >= 64 * 1024).then_some(())
    });

    // Short dials keep starting while the engine goes down and comes back; each must end on its own.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (stop, config) = (Arc::clone(&stop), engine.config_path());
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (code, out, _) = dial_with_config(&config, "rstrm://echo", b"ping\n", &[]);
                outcomes.push((code, out == b"ping\n", started.elapsed()));
            }
            outcomes
        })
    };

    engine.kill();
    let killed = Instant::now();
    // Every client notices on its own while the engine is still down; a new one fails at once.
    for (name, client) in &mut clients {
        let left = CLIENT_DEADLINE.saturating_sub(killed.elapsed());
        let status = client.wait_exit(left);
        assert!(
            status.is_some(),
            "{name} still running {CLIENT_DEADLINE:?} after the engine died: {}",
            client.stderr()
        );
        assert!(client.intact(), "{name} received corrupted bytes before the engine died");
    }
    let clients_gone = killed.elapsed();
    let refused = Instant::now();
    let (code, _, err) = dial(&engine, "rstrm://echo", b"nobody home\n", &[]);
    assert!(code != 0 && refused.elapsed() < Duration::from_secs(5), "dial with the engine down: {code}, {err}");

    engine.restart();
    let ready = Instant::now();
    eprintln!("clients ended {clients_gone:?} after the kill; engine down for {:?}", ready - killed);

    private.wait_online(2, ONLINE);
    let echo_back = ready.elapsed();
    published.wait_online(2, ONLINE);
    let web_back = ready.elapsed();
    eprintln!("re-registered after the engine was ready: echo {echo_back:?}, web {web_back:?}");
    assert!(echo_back <= REREGISTER && web_back <= REREGISTER, "echo {echo_back:?}, web {web_back:?}");
    let mut names = engine.tunnel_names();
    names.sort();
    assert_eq!(names, ["echo", "web"]);

    // The restarted engine carries new streams through both tunnels.
    let (code, out, err) = dial(&engine, "rstrm://echo", b"after the restart\n", &[]);
    assert_eq!((code, out.as_slice()), (0, &b"after the restart\n"[..]), "{err}");
    let (status, body) = https_get(&engine, "web.t.localhost", "/big");
    assert!(status == 200 && body == big_body(), "GET /big after the restart: {status}, {} bytes", body.len());

    stop.store(true, Ordering::Relaxed);
    let outcomes = prober.join().expect("a short dial hung (see the panic above)");
    let slowest = outcomes.iter().map(|o| o.2).max().unwrap_or_default();
    let ok = outcomes.iter().filter(|o| o.0 == 0 && o.1).count();
    eprintln!("{} short dials during the restart: {ok} echoed, slowest took {slowest:?}", outcomes.len());
    assert!(outcomes.iter().all(|o| o.0 != 0 || o.1), "a dial exited 0 without its echo: {outcomes:?}");
}
