//! `rstream_tunnels_list`: the engine's tunnel inventory, as `rstream tunnels list -o json` prints it.
//!
//! Filtering happens in the engine (the `--filter` syntax: `key=value` terms, all required; a bare word matches
//! tunnel names here, as in `rstream_webtty_list`). Under `--allow-servers`, WebTTY servers outside the filter are
//! left out; other tunnels are listed as usual.

use serde_json::json;

use super::args::{Args, ToolError};
use super::catalog::CallContext;
use super::result::ToolOutput;
use super::schema::{field, output_list, string, ToolSpec};
use crate::operator::filter::{self, BareWords};

/// Tool name (no upstream equivalent: upstream lists tunnels only through its hosted control plane).
pub const LIST: &str = "rstream_tunnels_list";

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: LIST,
        title: "List engine tunnels",
        description: "Lists every tunnel online behind the selected engine (WebTTY servers, forwarded services, \
                      published HTTP tunnels): id, name, status, protocol, whether published, host and labels. Use \
                      rstream_webtty_list for WebTTY servers with their capabilities.",
        properties: vec![(
            "filter",
            string(
                "Comma-separated key=value terms, all required: id, name, status, protocol, publish, hostname, \
                 labels.<key> (e.g. labels.application-protocol=rstream.webtty); a bare word matches names.",
            ),
        )],
        required: &[],
        output: output_list(
            "tunnels",
            "Tunnels as the engine lists them.",
            &[
                ("id", string("Tunnel id.")),
                ("name", string("Tunnel name.")),
                ("status", string("online, …")),
                ("protocol", string("Tunnel protocol.")),
                ("publish", field(json!("boolean"), "Published on the engine's public host.")),
                ("labels", field(json!("object"), "Tunnel labels.")),
            ],
            &[],
        ),
    }]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, ctx: &CallContext<'_>) -> Option<Result<ToolOutput, ToolError>> {
    (name == LIST).then(|| list(args, ctx))
}

fn list(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let text = args.opt_str("filter")?.unwrap_or_default();
    let filter = filter::parse(&text, BareWords::MatchNames)
        .map_err(|e| ToolError(format!("{e}; use key=value terms like status=online or labels.role=codex")))?;
    let api = ctx.env.engine_api()?;
    let tunnels = ctx.block_on(async {
        let all = api.list_tunnels(&filter.tunnels).await.map_err(|e| ToolError(e.to_string()))?;
        let allowed = ctx.servers.allowed_ids(ctx.env).await?;
        Ok(all
            .into_iter()
            .filter(|t| filter.matches_names([t.name.as_str(), t.id.as_str()]))
            .filter(|t| !t.is_webtty() || allowed.as_ref().is_none_or(|ids| ids.contains(&t.id)))
            .collect::<Vec<_>>())
    })?;
    Ok(ToolOutput::json(json!({ "tunnels": tunnels })))
}
