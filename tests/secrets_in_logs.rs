//! `-v` logs never show a token: the real binary in every role runs with debug logging (engine, device agent,
//! `forward`, `webtty exec`, `tunnels list`, `webtty list`) while clients connect, and a raw rstrm/1 client plays a
//! careless or hostile peer that puts a JWT where the engine does not expect one (a `StreamReq` on its control
//! channel, a `ProxyConnReq` as its first message). No stderr line may contain the token or anything shaped like a
//! JWT.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_agent::FakeAgent;
use common::tls::{details, rstrm, send};
use common::tunnel::{http_origin, wait_for_context, WebttyAgent};
use common::{run, wait_until, wait_until_or, ChildGuard, Engine, BIN};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{some_str, ProxyConnReq, StreamReq};

/// A child whose stderr is collected as it runs.
struct LoggedChild {
    _child: ChildGuard,
    stderr: Arc<Mutex<String>>,
}

impl LoggedChild {
    fn spawn(args: &[&str], config: &Path) -> LoggedChild {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RSTREAM_CONFIG", config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rstream");
        let pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        LoggedChild { _child: ChildGuard(child), stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// Whether `text` holds something shaped like a JWT: `eyJ`, then base64url, a dot and more base64url.
fn jwt_shaped(text: &str) -> Option<&str> {
    let b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices("eyJ").find_map(|(at, _)| {
        let rest = &text[at..];
        let header = rest.find(|c: char| !b64url(c)).unwrap_or(rest.len());
        let after = rest[header..].strip_prefix('.')?;
        let payload = after.find(|c: char| !b64url(c)).unwrap_or(after.len());
        (header >= 10 && payload >= 10).then_some(&rest[..header + 1 + payload])
    })
}

/// Panics naming the source and line when a log line carries `token` or a JWT.
fn assert_no_token(source: &str, log: &str, token: &str) {
    for line in log.lines() {
        assert!(!line.contains(token), "{source} logged the token:\n{line}");
        if let Some(jwt) = jwt_shaped(line) {
            panic!("{source} logged a JWT ({jwt}):\n{line}");
        }
    }
}

#[test]
fn jwt_shapes_are_recognised() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJlLWJ5dGVz";
    assert!(jwt_shaped(&format!("token: {jwt} end")).is_some());
    assert!(jwt_shaped("eyJ alone, or eyJabc.def").is_none());
}

#[test]
fn verbose_logs_of_every_role_never_show_a_token() {
    let engine = Engine::start_verbose(&[]);
    wait_for_context(&engine);
    let config = engine.config_path();
    let token = engine.operator_token();
    let context_token = {
        let text = std::fs::read_to_string(&config).unwrap();
        let line = text.lines().find(|l| l.trim_start().starts_with("value:")).expect("inline token").to_owned();
        line.trim_start().trim_start_matches("value:").trim().trim_matches('"').to_owned()
    };

    let mut agent_cmd = Command::new(BIN);
    agent_cmd.args(["-v", "webtty", "server", "--rstream", "--name", "dev1", "--retry-interval", "200"]);
    agent_cmd.env("RSTREAM_CONFIG", &config);
    let agent = WebttyAgent::spawn(agent_cmd);
    let origin = http_origin();
    let forward = LoggedChild::spawn(&["-v", "forward", &origin.target(), "--name", "web"], &config);
    wait_until_or(
        Duration::from_secs(30),
        || format!("forward online; stderr:\n{}", forward.stderr()),
        || engine.tunnel_names().contains(&"web".to_owned()).then_some(()),
    );

    // Operators with -v: exec through the engine, inventory, and published requests carrying the token.
    let env = [("RSTREAM_CONFIG", config.as_path())];
    let (code, _, exec_log) = run(&["-v", "webtty", "exec", "--url", "rstrm://dev1", "--", "echo", "hi"], &env);
    assert_eq!(code, 0, "{exec_log}");
    let (code, _, tunnels_log) = run(&["-v", "tunnels", "list"], &env);
    assert_eq!(code, 0, "{tunnels_log}");
    let (code, _, webtty_list_log) = run(&["-v", "webtty", "list"], &env);
    assert_eq!(code, 0, "{webtty_list_log}");
    let query = format!("/?rstream.token={token}");
    assert_ne!(engine.curl_host("dev1.t.localhost", &query, None, &[]).status, 0);
    assert_ne!(engine.curl_host("web.t.localhost", "/", Some(&token), &[]).status, 0);

    // A raw rstrm/1 peer puts the JWT where the engine does not expect it.
    smol::block_on(async {
        let channel = FakeAgent::open(&engine, &token).await.expect("control channel opens");
        let misplaced =
            StreamReq { client_details: details(&token), tunnel_id_name: "dev1".into(), ..Default::default() };
        channel.send(Payload::StreamReq(misplaced)).await;
        let mut conn = rstrm(&engine).await;
        let odd = ProxyConnReq {
            tunnel_id: "t".into(),
            stream_id: "s".into(),
            secret: some_str(&token),
            ..Default::default()
        };
        send(&mut conn, Payload::ProxyConnReq(odd)).await;
        wait_until(Duration::from_secs(20), "the engine to log both misplaced messages", || {
            let logs = engine.logs();
            (logs.contains("ignoring unexpected message") && logs.contains("opened with an unexpected message"))
                .then_some(())
        });
    });

    for secret in [&token, &context_token] {
        assert_no_token("engine serve -v", &engine.logs(), secret);
        assert_no_token("webtty server --rstream -v", &agent.log(), secret);
        assert_no_token("forward -v", &forward.stderr(), secret);
        assert_no_token("webtty exec -v", &exec_log, secret);
        assert_no_token("tunnels list -v", &tunnels_log, secret);
        assert_no_token("webtty list -v", &webtty_list_log, secret);
    }
    assert!(agent.log().contains("rstream debug:"), "the agent ran with -v:\n{}", agent.log());
    assert!(engine.logs().contains("rstream debug:"), "the engine ran with -v:\n{}", engine.logs());
}
