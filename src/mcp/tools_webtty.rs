//! `rstream_webtty_list` and `rstream_webtty_exec`: find WebTTY servers, run commands on them.
//!
//! Both call the operator libraries (inventory through the engine API, the WebTTY exec client) and drive them
//! with `smol::block_on` on the calling (blocking) thread. `exec` results are upstream's
//! `{url, command, exit_code, stdout, stderr, duration_ms}` plus `timed_out` / `truncated` when set; a non-zero
//! exit code makes the result an error that still carries the output.

use super::args::{Args, ToolError};
use super::operator_env::OperatorEnv;
use super::result::ToolOutput;
use super::schema::{string, ToolSpec};
use crate::operator::api::EngineApi;
use crate::operator::filter::{self, BareWords};
use crate::operator::inventory;

/// List tool name.
pub const LIST: &str = "rstream_webtty_list";

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: LIST,
        title: "List WebTTY servers",
        description: "Lists the WebTTY servers online behind the selected engine: rstream_url (pass it as `url` \
                          to the other tools), capabilities (exec, fs), fs_mode, host facts (os, arch, hostname) \
                          and user labels. Read `capabilities` before choosing a tool.",
        properties: vec![
            (
                "filter",
                string(
                    "Comma-separated key=value terms, all required (e.g. labels.rstream.webtty.label.role=codex, \
                         labels.rstream.webtty.capabilities=exec,fs needs quoting per term); a bare word matches \
                         server names.",
                ),
            ),
            ("name", string("Only servers whose name, tunnel id or hostname contains this text.")),
        ],
        required: &[],
        open_world: true,
    }]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, env: &OperatorEnv) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        LIST => list(args, env),
        _ => return None,
    })
}

/// The engine API of the selected context.
pub fn engine_api(env: &OperatorEnv) -> Result<EngineApi, ToolError> {
    let ctx = env.resolve(None).map_err(|e| ToolError(format!("{e} (see rstream_runtime_status)")))?;
    EngineApi::from_context(&ctx).map_err(|e| ToolError(e.to_string()))
}

fn list(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let mut filter =
        filter::parse(args.opt_str("filter")?.as_deref().unwrap_or(""), BareWords::MatchNames).map_err(|e| {
            ToolError(format!("{e}; use key=value terms like labels.rstream.webtty.label.role=codex or a bare name"))
        })?;
    if let Some(name) = args.opt_str("name")? {
        filter.names.push(name.to_lowercase());
    }
    let api = engine_api(env)?;
    let servers =
        smol::block_on(inventory::list_webtty_servers(&api, &filter)).map_err(|e| ToolError(e.to_string()))?;
    Ok(ToolOutput::json(servers))
}

/// `rstrm://NAME` for a bare server name; URLs with a scheme as given.
pub fn server_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("rstrm://{url}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_become_rstream_urls() {
        assert_eq!(server_url("pi"), "rstrm://pi");
        assert_eq!(server_url("rstrm://pi"), "rstrm://pi");
        assert_eq!(server_url("ws://127.0.0.1:8080"), "ws://127.0.0.1:8080");
    }
}
