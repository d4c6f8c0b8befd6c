//! `webtty exec -o text` is live, from the real binary: a line the remote command prints reaches the client's
//! stdout (and a line on its stderr the client's stderr) while the command is still running — so `… | tail -f`
//! or a watching agent sees progress — both from a local `--listen` server and through the engine to a
//! `--rstream` one. `-o json` stays one document, printed when the command ends.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
// Both harnesses include tests/common/proc.rs; its two copies are independent and harmless.
#[allow(clippy::duplicate_mod)]
mod webtty_support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::tunnel::WebttyAgent;
use common::Engine;
use webtty_support::{LocalServer, TempDir};

/// How long a printed line may take to reach the client.
const LINE_DEADLINE: Duration = Duration::from_secs(15);

/// The remote command: a line on each stream, then it keeps running until `stop` exists, then a last line.
fn printing_then_waiting(stop: &Path) -> Vec<String> {
    let script = format!(
        "echo out-line; echo err-line >&2; while [ ! -e '{}' ]; do sleep 0.02; done; echo last-line",
        stop.display()
    );
    ["sh", "-c", &script].map(str::to_owned).to_vec()
}

/// Which of the client's pipes bytes came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pipe {
    Stdout,
    Stderr,
}

/// The client's stdout and stderr, read as they come.
struct Pipes {
    chunks: mpsc::Receiver<(Pipe, Vec<u8>)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Pipes {
    fn new(stdout: ChildStdout, stderr: ChildStderr) -> Pipes {
        let (tx, chunks) = mpsc::channel();
        fn pump(mut from: impl Read + Send + 'static, pipe: Pipe, tx: mpsc::Sender<(Pipe, Vec<u8>)>) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    if tx.send((pipe, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
        }
        pump(stdout, Pipe::Stdout, tx.clone());
        pump(stderr, Pipe::Stderr, tx);
        Pipes { chunks, stdout: Vec::new(), stderr: Vec::new() }
    }

    fn text(&self, pipe: Pipe) -> String {
        String::from_utf8_lossy(if pipe == Pipe::Stdout { &self.stdout } else { &self.stderr }).into_owned()
    }

    /// Reads until `pipe` has shown `line`, or panics after [`LINE_DEADLINE`] saying what did arrive.
    fn wait_for(&mut self, pipe: Pipe, line: &str) {
        let end = Instant::now() + LINE_DEADLINE;
        while !self.text(pipe).contains(line) {
            let left = end.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok((Pipe::Stdout, bytes)) => self.stdout.extend(bytes),
                Ok((Pipe::Stderr, bytes)) => self.stderr.extend(bytes),
                Err(_) => panic!(
                    "{line:?} never reached the client's {pipe:?} while the remote command ran; stdout {:?}, stderr {:?}",
                    self.text(Pipe::Stdout),
                    self.text(Pipe::Stderr)
                ),
            }
        }
    }

    /// Everything left, once the client has exited.
    fn drain(&mut self) {
        while let Ok((pipe, bytes)) = self.chunks.recv_timeout(LINE_DEADLINE) {
            match pipe {
                Pipe::Stdout => self.stdout.extend(bytes),
                Pipe::Stderr => self.stderr.extend(bytes),
            }
        }
    }
}

/// Polls until `child` exits (panics after [`LINE_DEADLINE`]); its exit code.
fn wait_exit(child: &mut Child) -> i32 {
    let status = webtty_support::poll(LINE_DEADLINE, || child.try_wait().unwrap());
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("webtty exec did not end after the remote command did")
    });
    status.code().unwrap_or(-1)
}

/// Runs `exec` (a `webtty exec -o text … -- printing_then_waiting(stop)`) and checks that both lines arrive
/// while the remote command still runs, then that it ends cleanly once `stop` exists.
fn assert_text_is_live(mut exec: Command, stop: &Path) {
    let mut child = exec.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn webtty exec");
    let mut pipes = Pipes::new(child.stdout.take().unwrap(), child.stderr.take().unwrap());
    pipes.wait_for(Pipe::Stdout, "out-line\n");
    pipes.wait_for(Pipe::Stderr, "err-line\n");
    assert!(child.try_wait().unwrap().is_none(), "the client ended before the remote command did");
    assert!(!stop.exists(), "the remote command is still waiting, so the lines came live");
    std::fs::write(stop, b"").unwrap();
    let code = wait_exit(&mut child);
    pipes.drain();
    assert_eq!(code, 0, "stderr: {}", pipes.text(Pipe::Stderr));
    assert_eq!(pipes.text(Pipe::Stdout), "out-line\nlast-line\n");
    assert_eq!(pipes.text(Pipe::Stderr), "err-line\n");
}

#[test]
fn text_output_from_a_local_server_arrives_while_the_command_runs() {
    let server = LocalServer::start(&[]);
    let stop = server.dir.join("stop");
    let mut args = vec!["-o".to_owned(), "text".to_owned(), "--".to_owned()];
    args.extend(printing_then_waiting(&stop));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_text_is_live(server.exec_cmd(&args), &stop);
}

/// `rstream webtty exec --url rstrm://pi args…` against `engine`.
fn exec_through(engine: &Engine, args: &[String]) -> Command {
    let mut cmd = Command::new(common::BIN);
    cmd.args(["webtty", "exec", "--url", "rstrm://pi"])
        .args(args)
        .env("RSTREAM_CONFIG", engine.config_path())
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn text_output_through_the_engine_arrives_while_the_command_runs_and_json_stays_one_document() {
    let engine = Engine::start();
    let _pi = WebttyAgent::start(&engine, &["--name", "pi", "--no-publish"]);
    let dir = TempDir::new("exec-live");

    let stop = dir.join("stop-text");
    let args = [vec!["-o".to_owned(), "text".to_owned(), "--".to_owned()], printing_then_waiting(&stop)].concat();
    assert_text_is_live(exec_through(&engine, &args), &stop);

    let stop = dir.join("stop-json");
    std::fs::write(&stop, b"").unwrap();
    let args = [vec!["-o".to_owned(), "json".to_owned(), "--".to_owned()], printing_then_waiting(&stop)].concat();
    let out = exec_through(&engine, &args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let documents: Vec<serde_json::Value> =
        serde_json::Deserializer::from_str(&text).into_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(documents.len(), 1, "-o json prints one document: {text}");
    assert_eq!(documents[0]["stdout"], "out-line\nlast-line\n", "{text}");
    assert_eq!(documents[0]["stderr"], "err-line\n", "{text}");
    assert!(out.stderr.is_empty(), "nothing streamed to stderr with -o json: {}", String::from_utf8_lossy(&out.stderr));
}
