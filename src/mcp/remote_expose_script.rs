//! Upstream's remote-expose script contract: the `/bin/sh -lc` scripts `rstream_remote_expose` and
//! `rstream_remote_expose_stop` run through one WebTTY exec, and the marker lines read back from their stdout.
//!
//! The start script makes `${RSTREAM_REMOTE_EXPOSE_DIR:-$HOME/.rstream/remote-exposes}` (mode 700), starts
//! `rstream forward … --output json` under `nohup` — and `setsid` when the host has it, so a WebTTY server
//! started with `--allow-detach` spares it when the exec session ends — with its log and pid in `<dir>/<id>.log`
//! and `<dir>/<id>.pid`, waits for `"status":"online"` in the log, and prints `RSTREAM_REMOTE_EXPOSE_STATUS=`,
//! `_ID=`, `_PID=`, `_LOG=`, `_JSON_LINE=<forward status>` and `_JSON_END`. On a server that says it ends
//! everything a session starts (`RSTREAM_WEBTTY_DETACH=denied`) it starts nothing and fails with `_ERROR=`.
//! Every value is single-quoted into the script; ids are `[A-Za-z0-9_-]` only.

/// Marker prefix of every start-script line the tool reads.
pub const MARKER: &str = "RSTREAM_REMOTE_EXPOSE_";

/// The flag the host must set for remote expose on one of our WebTTY servers.
pub const DETACH_HINT: &str = "this WebTTY server ends every process a session starts, so a forward started \
                               through it would die with the exec session: the host must restart it with \
                               `rstream webtty server --allow-detach …` (label rstream.webtty.detach=allowed)";

/// `text` as one single-quoted shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `id` with every character outside `[A-Za-z0-9_-]` replaced by `-` (`None` if nothing is left).
pub fn sanitize_id(id: &str) -> Option<String> {
    let clean: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
    (!clean.trim_matches('-').is_empty()).then_some(clean)
}

const DIR: &str = "dir=\"${RSTREAM_REMOTE_EXPOSE_DIR:-$HOME/.rstream/remote-exposes}\"\n";

/// `alive PID`: the process exists and is not a zombie (a killed process whose parent does not reap it — an
/// init that never waits, say — still answers `kill -0`).
const ALIVE: &str = "alive() {\n  kill -0 \"$1\" 2>/dev/null || return 1\n  \
                     state=$(sed 's/^.*) //' \"/proc/$1/stat\" 2>/dev/null)\n  \
                     case \"$state\" in Z*) return 1;; esac\n}\n";

/// Sleeps a fifth of a second where `sleep` takes fractions, else a second.
const NAP: &str = "sleep 0.2 2>/dev/null || sleep 1";

/// The start script: run `forward` (argv, quoted here) as `id`, wait up to `timeout_seconds` for it to be
/// online.
pub fn start_script(id: &str, forward: &[String], timeout_seconds: u64) -> String {
    let argv: Vec<String> = forward.iter().map(|a| quote(a)).collect();
    let argv = argv.join(" ");
    let hint = quote(DETACH_HINT);
    format!(
        "id={id}\n{DIR}{ALIVE}echo \"{MARKER}ID=$id\"\n\
         if [ \"${{RSTREAM_WEBTTY_DETACH:-}}\" = denied ]; then\n  echo \"{MARKER}STATUS=failed\"\n  \
         echo \"{MARKER}ERROR=\"{hint}\n  echo \"{MARKER}JSON_END\"\n  exit 3\nfi\n\
         umask 077\nmkdir -p \"$dir\" && chmod 700 \"$dir\" || {{ echo \"{MARKER}STATUS=failed\"; exit 1; }}\n\
         log=\"$dir/$id.log\"\npidfile=\"$dir/$id.pid\"\necho \"{MARKER}LOG=$log\"\n\
         if command -v setsid >/dev/null 2>&1; then\n  setsid nohup {argv} >\"$log\" 2>&1 </dev/null &\n\
         else\n  nohup {argv} >\"$log\" 2>&1 </dev/null &\nfi\n\
         pid=$!\necho \"$pid\" >\"$pidfile\"\necho \"{MARKER}PID=$pid\"\n\
         status=starting\nend=$(( $(date +%s) + {timeout_seconds} ))\n\
         while [ \"$(date +%s)\" -lt \"$end\" ]; do\n  \
         if grep -q '\"status\":\"online\"' \"$log\" 2>/dev/null; then status=online; break; fi\n  \
         if ! alive \"$pid\"; then status=failed; break; fi\n  {NAP}\ndone\n\
         echo \"{MARKER}STATUS=$status\"\n\
         line=$(grep '\"status\":\"online\"' \"$log\" 2>/dev/null | tail -n 1)\n\
         [ -n \"$line\" ] || line=$(grep '\"status\"' \"$log\" 2>/dev/null | tail -n 1)\n\
         [ -z \"$line\" ] || echo \"{MARKER}JSON_LINE=$line\"\necho \"{MARKER}JSON_END\"\n\
         [ \"$status\" = online ] || tail -n 20 \"$log\" >&2\n",
        id = quote(id),
    )
}

/// The stop script: SIGTERM the pid recorded for `id`, SIGKILL after a second, report `stopped=` and `pid=`.
pub fn stop_script(id: &str) -> String {
    format!(
        "id={id}\n{DIR}{ALIVE}pidfile=\"$dir/$id.pid\"\n\
         pid=$(cat \"$pidfile\" 2>/dev/null)\n\
         case \"$pid\" in ''|*[!0-9]*) echo stopped=false; echo \"no remote expose $id (no pid in $pidfile)\" >&2; \
         exit 1;; esac\n\
         kill \"$pid\" 2>/dev/null\ni=0\n\
         while alive \"$pid\" && [ \"$i\" -lt 5 ]; do {NAP}; i=$((i+1)); done\n\
         if alive \"$pid\"; then kill -KILL \"$pid\" 2>/dev/null; {NAP}; fi\n\
         if alive \"$pid\"; then echo stopped=false; else echo stopped=true; rm -f \"$pidfile\"; fi\n\
         echo \"pid=$pid\"\n",
        id = quote(id),
    )
}

/// The marker values a start script printed (each marker's last value; `JSON_LINE` as printed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Markers {
    /// `STATUS`: online, starting or failed.
    pub status: Option<String>,
    /// `ID`.
    pub id: Option<String>,
    /// `PID`.
    pub pid: Option<String>,
    /// `LOG`.
    pub log: Option<String>,
    /// `JSON_LINE`: the forward's last status line.
    pub json_line: Option<String>,
    /// `ERROR`: why nothing was started.
    pub error: Option<String>,
}

/// Reads the marker lines of `stdout`.
pub fn parse_markers(stdout: &str) -> Markers {
    let mut m = Markers::default();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix(MARKER) else { continue };
        let Some((key, value)) = rest.split_once('=') else { continue };
        let slot = match key {
            "STATUS" => &mut m.status,
            "ID" => &mut m.id,
            "PID" => &mut m.pid,
            "LOG" => &mut m.log,
            "JSON_LINE" => &mut m.json_line,
            "ERROR" => &mut m.error,
            _ => continue,
        };
        *slot = Some(value.trim_end().to_owned());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, env: &[(&str, &str)]) -> (String, String) {
        let out =
            std::process::Command::new("/bin/sh").arg("-c").arg(script).envs(env.iter().copied()).output().unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    #[test]
    fn ids_and_words_are_safe_in_the_script() {
        assert_eq!(sanitize_id("a b/c;$(x)").as_deref(), Some("a-b-c---x-"));
        assert_eq!(sanitize_id("///"), None);
        assert_eq!(quote("it's"), "'it'\\''s'");
        let (out, _) = sh(&format!("printf %s {}", quote("a'b $(no) `no`")), &[]);
        assert_eq!(out, "a'b $(no) `no`");
    }

    #[test]
    fn the_start_script_runs_the_command_records_it_and_reports_markers() {
        let dir = std::env::temp_dir().join(format!("rstream-expose-script-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let forward = ["sh".to_owned(), "-c".to_owned(), "echo '{\"status\":\"online\",\"x\":1}'; sleep 30".to_owned()];
        let d = dir.to_str().unwrap();
        let (out, err) = sh(&start_script("t1", &forward, 10), &[("RSTREAM_REMOTE_EXPOSE_DIR", d)]);
        let m = parse_markers(&out);
        assert_eq!((m.status.as_deref(), m.id.as_deref()), (Some("online"), Some("t1")), "{out} {err}");
        assert_eq!(m.json_line.as_deref(), Some("{\"status\":\"online\",\"x\":1}"));
        assert_eq!(m.log.as_deref(), Some(format!("{d}/t1.log").as_str()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let pid = std::fs::read_to_string(dir.join("t1.pid")).unwrap();
        assert_eq!(pid.trim(), m.pid.unwrap());
        let (out, _) = sh(&stop_script("t1"), &[("RSTREAM_REMOTE_EXPOSE_DIR", d)]);
        assert!(out.contains("stopped=true") && out.contains(&format!("pid={}", pid.trim())), "{out}");
        let (out, err) = sh(&stop_script("t1"), &[("RSTREAM_REMOTE_EXPOSE_DIR", d)]);
        assert!(out.contains("stopped=false") && err.contains("no remote expose t1"), "{out} {err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_server_that_forbids_detaching_gets_nothing_started() {
        let (out, _) = sh(&start_script("t2", &["true".to_owned()], 1), &[("RSTREAM_WEBTTY_DETACH", "denied")]);
        let m = parse_markers(&out);
        assert_eq!(m.status.as_deref(), Some("failed"));
        assert!(m.error.unwrap().contains("--allow-detach") && m.pid.is_none());
    }
}
