//! `rstream webtty exec`: run one command on a WebTTY server. `-o json` (default) captures stdout, stderr and the
//! exit code into one JSON object; `-o text` streams the remote output as it arrives, like ssh. The exit code tells
//! the remote status from rstream's own failures (see the help note); a failure in JSON mode is still one JSON
//! object, with `error`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;
use serde::Serialize;

use super::tls_flags;
use crate::cli::output::Stdout;
use crate::cli::output::BROKEN_PIPE_EXIT;
use crate::cli::{output_or, refuse_given, CliError, CliResult, OutputFormat, RSTREAM_FAILED_EXIT};
use crate::limits;
use crate::webtty::client::{
    command_exit_code, exec, ExecOutput, ExecRequest, ExecResult, COMMAND_NOT_FOUND_EXIT_CODE,
};
use crate::webtty::WebttyError;

/// run one command on a WebTTY server and capture stdout, stderr and the exit code
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "exec",
    example = "rstream webtty exec --url rstrm://pi -- uname -a",
    example = "echo hi | rstream webtty exec --url ws://127.0.0.1:8080 -o text -- cat",
    example = "rstream webtty exec --url rstrm://pi --timeout 10 -e LANG=C -w /tmp -- make test",
    example = "rstream webtty exec --url wss://pi.lan:8443 --tls-ca-file ca.pem --auth-token-file token -- uptime",
    example = "rstream webtty exec --url rstrm://lab --user ci -- id -un",
    note = "Exit codes: the remote command's status (128+N when signal N ended it); 124 when --timeout ended the \
            session; 126 the command is not executable, 127 it was not found on the server; 255 rstream itself \
            failed (arguments, config, connect, authentication, unknown server, refused or lost session) or, with \
            -o json, cut a successful command's output at --max-output (`truncated`). With -o json a failure is still one JSON object, with \
            `error`. -o text streams the output as it arrives (no cap). stdin is forwarded when it is not a \
            terminal (unless --no-stdin). A bare --url NAME is rstrm://NAME. Environment: RSTREAM_WEBTTY_AUTH_TOKEN."
)]
pub struct ExecCommand {
    /// server: rstrm://NAME or NAME (through the engine), ws://HOST:PORT or wss://HOST:PORT (default
    /// ws://127.0.0.1:8080)
    #[argh(option, default = "String::from(\"ws://127.0.0.1:8080\")")]
    pub url: String,
    /// environment for the remote command, KEY=VALUE or KEY (takes the local value) (repeatable)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// remote working directory (default: the server user's home)
    #[argh(option, short = 'w')]
    pub workdir: Option<String>,
    /// OS user (name or uid) to run as; servers refuse it unless started with --allow-client-user
    #[argh(option, short = 'u')]
    pub user: Option<String>,
    /// seconds before the session is closed and the remote process group killed (exit code 124)
    #[argh(option)]
    pub timeout: Option<f64>,
    /// output: json (default) or text (remote stdout/stderr streamed through)
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// most stdout+stderr bytes kept for -o json (default and maximum 64 MiB); the rest is dropped (`truncated`);
    /// not with -o text, which streams everything
    #[argh(option)]
    pub max_output: Option<usize>,
    /// file holding the bearer token of a local server (or RSTREAM_WEBTTY_AUTH_TOKEN)
    #[argh(option)]
    pub auth_token_file: Option<PathBuf>,
    /// path of the exec endpoint on the server (default: advertised, or /)
    #[argh(option)]
    pub exec_path: Option<String>,
    /// wss:// only: PEM file of the CA that signed the server's --tls-cert-file (default: the context's CA)
    #[argh(option)]
    pub tls_ca_file: Option<PathBuf>,
    /// wss:// only: DNS name to verify in the server certificate (default: the URL host; needed for IP URLs)
    #[argh(option)]
    pub tls_server_name: Option<String>,
    /// wss:// only: do not verify the server certificate (insecure)
    #[argh(switch)]
    pub tls_insecure_skip_verify: bool,
    /// do not forward stdin even when it is not a terminal (the remote command reads /dev/null)
    #[argh(switch, short = 'n')]
    pub no_stdin: bool,
    /// command and arguments (after --)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

/// The `-o json` result (upstream's `webTTYClientResult` plus our `timed_out`/`truncated` flags).
#[derive(Serialize)]
struct JsonResult<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    command: &'a [String],
    exit_code: i32,
    stdout: String,
    stderr: String,
    duration_ms: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    timed_out: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// The `-o json` result when the command did not run to completion: what failed, and the exit code.
#[derive(Serialize)]
struct JsonFailure<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    command: &'a [String],
    exit_code: u8,
    error: &'a str,
}

impl ExecCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        let format = self.format().map_err(rstream_failure)?;
        let req = self.request(format).map_err(rstream_failure)?;
        match smol::block_on(exec(&self.url, req)) {
            Ok(result) => {
                if format == OutputFormat::Json {
                    print_json(&result)?;
                }
                Ok(exit_status(&result, format))
            }
            Err(e) => Err(self.failed(&e, format)),
        }
    }

    fn format(&self) -> Result<OutputFormat, CliError> {
        if self.command.is_empty() {
            return Err(CliError::new("webtty exec needs a command: rstream webtty exec --url URL -- CMD [ARGS…]"));
        }
        match output_or(&self.output, OutputFormat::Json)? {
            format @ (OutputFormat::Json | OutputFormat::Text) => Ok(format),
            _ => Err(CliError::new("webtty exec output must be json or text")),
        }
    }

    /// The request the flags describe: output captured for JSON, streamed to stdout/stderr for text.
    fn request(&self, format: OutputFormat) -> Result<ExecRequest, CliError> {
        let mut req = ExecRequest::command(self.command.clone());
        req.env = parse_env(&self.env)?;
        req.workdir = self.workdir.clone();
        req.user = parse_user(&self.user)?;
        req.timeout = match self.timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => return Err(CliError::new(format!("--timeout {t}: must be a positive number of seconds"))),
        };
        let streamed_cap = [("--max-output", format == OutputFormat::Text && self.max_output.is_some())];
        refuse_given(
            &streamed_cap,
            "caps what -o json keeps; -o text streams the whole output (use -o json, or drop --max-output)",
        )?;
        req.output_cap = match self.max_output {
            None => limits::EXEC_OUTPUT_CAP,
            Some(n) if n > 0 && n <= limits::EXEC_OUTPUT_CAP => n,
            Some(n) => {
                let max = limits::EXEC_OUTPUT_CAP;
                return Err(CliError::new(format!("--max-output {n}: must be between 1 and {max} bytes")));
            }
        };
        if format == OutputFormat::Text {
            let stdout = Box::new(smol::Unblock::new(std::io::stdout()));
            let stderr = Box::new(smol::Unblock::new(std::io::stderr()));
            req.output = ExecOutput::Stream { stdout, stderr };
        }
        req.connect = tls_flags::session_connect(
            &self.url,
            self.auth_token_file.as_deref(),
            &self.exec_path,
            &self.tls_ca_file,
            &self.tls_server_name,
            self.tls_insecure_skip_verify,
        )?;
        if !self.no_stdin && !std::io::stdin().is_terminal() {
            req.stdin = Some(Box::new(smol::Unblock::new(std::io::stdin())));
        }
        Ok(req)
    }

    /// The error (and, for JSON, the one result object) for a command that did not run to completion: 127 / 126
    /// for a command the server could not start, 255 for rstream's own failures, quiet for a closed stdout.
    fn failed(&self, error: &WebttyError, format: OutputFormat) -> CliError {
        if let WebttyError::OutputClosed(_) = error {
            return CliError::quiet(BROKEN_PIPE_EXIT);
        }
        let (code, message) = match command_exit_code(error) {
            Some(COMMAND_NOT_FOUND_EXIT_CODE) => (127, format!("command not found on the server: {error}")),
            Some(code) => (code.clamp(1, 255) as u8, format!("command not executable on the server: {error}")),
            None => (RSTREAM_FAILED_EXIT, error.to_string()),
        };
        if format == OutputFormat::Json {
            let failure = JsonFailure { url: &self.url, command: &self.command, exit_code: code, error: &message };
            if let Err(e) = print(&failure) {
                return e;
            }
        }
        CliError::with_code(code, message)
    }
}

/// A failure before the session (arguments, config): rstream's own, so 255.
fn rstream_failure(e: CliError) -> CliError {
    CliError::with_code(RSTREAM_FAILED_EXIT, e.message)
}

fn print<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(|e| CliError::new(format!("json output: {e}")))?;
    writeln!(Stdout, "{text}")
}

/// Prints the captured result as one JSON object.
fn print_json(result: &ExecResult) -> Result<(), CliError> {
    print(&JsonResult {
        url: &result.url,
        command: &result.command,
        exit_code: result.exit_code,
        stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
        duration_ms: result.duration_ms,
        timed_out: result.timed_out,
        truncated: result.truncated,
    })
}

/// The process exit code for a result: 0, the remote code clamped to 1..=255, 124 after a timeout, and 255 for a
/// clean exit whose output was cut at the cap. Text output explains a non-zero code on stderr.
fn exit_status(result: &ExecResult, format: OutputFormat) -> u8 {
    if result.timed_out {
        if format == OutputFormat::Text {
            eprintln!(
                "error: remote command timed out after {} ms; session closed and remote process group killed",
                result.duration_ms
            );
        }
        return 124;
    }
    if result.truncated {
        let kept = result.stdout.len() + result.stderr.len();
        eprintln!(
            "error: output truncated at {kept} bytes (--max-output; -o text streams it whole); the remote command \
             exited with code {}",
            result.exit_code
        );
        if result.exit_code == 0 {
            return RSTREAM_FAILED_EXIT;
        }
    }
    if result.exit_code == 0 {
        return 0;
    }
    let code = result.exit_code.clamp(1, 255) as u8;
    if format == OutputFormat::Text {
        eprintln!("error: remote command exited with code {}", result.exit_code);
    }
    code
}

/// Parses `-e` values: `KEY=VALUE`, or `KEY` to pass the local value (skipped when unset).
pub fn parse_env(values: &[String]) -> Result<Vec<(String, String)>, CliError> {
    let mut env = Vec::new();
    for value in values {
        let (key, val) = match value.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (value.clone(), std::env::var(value).ok()),
        };
        if key.is_empty() || key.contains('\0') {
            return Err(CliError::new(format!("-e {value:?}: expected KEY=VALUE or KEY")));
        }
        if let Some(val) = val {
            env.push((key, val));
        }
    }
    Ok(env)
}

/// Checks `--user NAME|UID` (the server resolves it).
pub fn parse_user(user: &Option<String>) -> Result<Option<String>, CliError> {
    match user.as_deref() {
        Some(u) if u.is_empty() || u.contains('\0') || u.chars().any(char::is_whitespace) => {
            Err(CliError::new(format!("--user {u:?}: expected a user name or uid")))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse_with_and_without_values() {
        std::env::set_var("RSTREAM_EXEC_TEST_LOCAL", "here");
        let env = parse_env(&["A=1".into(), "B=".into(), "RSTREAM_EXEC_TEST_LOCAL".into(), "UNSET_XYZ_123".into()]);
        let env = env.unwrap();
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B".into(), "".into()), ("RSTREAM_EXEC_TEST_LOCAL".into(), "here".into())]
        );
        assert!(parse_env(&["=x".into()]).is_err());
    }

    #[test]
    fn exit_codes_are_clamped_and_timeouts_are_124() {
        let mut r = ExecResult {
            url: String::new(),
            command: vec![],
            exit_code: 3,
            stdout: vec![],
            stderr: vec![],
            duration_ms: 1,
            timed_out: false,
            truncated: false,
            cancelled: false,
        };
        assert_eq!(exit_status(&r, OutputFormat::Json), 3);
        r.exit_code = 300;
        assert_eq!(exit_status(&r, OutputFormat::Json), 255);
        r.exit_code = -1;
        assert_eq!(exit_status(&r, OutputFormat::Json), 1);
        r.exit_code = 0;
        assert_eq!(exit_status(&r, OutputFormat::Json), 0);
        r.truncated = true;
        assert_eq!(exit_status(&r, OutputFormat::Json), RSTREAM_FAILED_EXIT, "a cut output is no clean success");
        r.exit_code = 3;
        assert_eq!(exit_status(&r, OutputFormat::Json), 3);
        r.timed_out = true;
        assert_eq!(exit_status(&r, OutputFormat::Json), 124);
    }
}
