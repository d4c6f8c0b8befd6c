//! `rstream_webtty_fs_list|stat|read|write|mkdir|move|delete`: files on a WebTTY server's WebDAV sidecar
//! (`_download` and `_upload`, which also touch this machine's disk, are in [`super::tools_fs_transfer`]).
//!
//! Paths are relative to the server's `--fs-root` (`/` is that root) and normalised by the WebDAV client
//! (never above `/`). Every tool first goes through [`super::fs_session::open`], which applies the
//! `--allow-servers` policy and refuses exec-only and (for changes) read-only servers before contacting the
//! sidecar. Reads are capped (`max_bytes`, flagged `truncated`). Network work ends when the call is cancelled.

use serde_json::{json, Value};

use super::args::{Args, ToolError};
use super::catalog::CallContext;
use super::fs_session::{open, Access, Capped, FsSession};
use super::result::ToolOutput;
use super::schema::{boolean, field, number, one_of, output_list, output_object, string, ToolSpec};
use super::tools_fs_transfer;
use crate::encoding::Base64;
use crate::limits::{MCP_FS_LIST_MAX, MCP_FS_READ_DEFAULT_MAX, MCP_FS_READ_MAX};
use crate::webdav::{normalize_path, DavClientError, DavEntry, EntryKind};

const URL: &str = "The server's rstream_url (rstrm://NAME), a bare server name, or ws://HOST:PORT of a local server.";
const FS_PATH: &str = "WebDAV mount path on the server; default: the server's advertised fs_path (/fs).";

/// A tool of this family: `url` first, then `extra`, then `fs_path`.
pub fn spec(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    extra: Vec<(&'static str, Value)>,
    required: &'static [&'static str],
    output: Value,
) -> ToolSpec {
    let mut properties = vec![("url", string(URL))];
    properties.extend(extra);
    properties.push(("fs_path", string(FS_PATH)));
    ToolSpec { name, title, description, properties, required, output }
}

/// The properties of one entry in a result.
pub fn entry_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("path", string("Path relative to the fs root, with a leading /.")),
        ("kind", field(json!("string"), "file or directory.")),
        ("size", field(json!("integer"), "Size in bytes (files).")),
        ("modified", string("Last modification, RFC 3339 UTC.")),
    ]
}

/// `{ok, path, …}`: what a change returns.
pub fn done_output(extra: &[(&str, Value)]) -> Value {
    let mut properties = vec![("ok", boolean("The change was made.")), ("path", string("The path changed."))];
    properties.extend(extra.iter().cloned());
    output_object(&properties, &["ok", "path"])
}

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    let path = |what: &'static str| ("path", string(what));
    let mut specs = vec![
        spec(
            "rstream_webtty_fs_list",
            "List remote files",
            "Lists a directory on a WebTTY server with the `fs` capability: {path, kind: file|directory, size, \
             modified} per entry under `entries`. Paths are relative to the server's fs root.",
            vec![path("Directory to list; default /.")],
            &["url"],
            output_list(
                "entries",
                "The directory's entries (at most 10000; `truncated` and `total` say when there are more).",
                &entry_fields(),
                &[
                    ("path", string("The directory listed.")),
                    ("truncated", boolean("More entries than returned.")),
                    ("total", field(json!("integer"), "Entries in the directory, when truncated.")),
                ],
            ),
        ),
        spec(
            "rstream_webtty_fs_stat",
            "Inspect remote file",
            "Describes one file or directory on a WebTTY server with the `fs` capability: {path, kind, size, \
             modified}. A missing path is an error saying so.",
            vec![path("File or directory, relative to the server's fs root.")],
            &["url", "path"],
            output_object(&entry_fields(), &["path", "kind"]),
        ),
        spec(
            "rstream_webtty_fs_read",
            "Read remote file",
            "Reads a file from a WebTTY server with the `fs` capability. encoding text (default) returns the text \
             itself; base64 returns {encoding, content}. At most max_bytes are returned (default 1 MiB, up to 4 MiB); \
             `truncated` tells whether the file is longer.",
            vec![
                path("File to read, relative to the server's fs root."),
                ("encoding", one_of(&["text", "base64"], "text (default; UTF-8 files) or base64 (any bytes).")),
                ("max_bytes", number(1, "Most bytes to return (default 1048576, at most 4194304).")),
            ],
            &["url", "path"],
            output_object(
                &[
                    ("encoding", string("text or base64.")),
                    ("content", string("The bytes read, as text or base64.")),
                    ("path", string("The file read.")),
                    ("size", field(json!("integer"), "The file's size.")),
                    ("bytes", field(json!("integer"), "Bytes returned.")),
                    ("truncated", boolean("The file is longer than what was returned.")),
                ],
                &["encoding", "content"],
            ),
        ),
        spec(
            "rstream_webtty_fs_write",
            "Write remote file",
            "Creates or replaces a file on a WebTTY server with the `fs` capability and fs_mode read-write. The \
             parent directory must exist (see rstream_webtty_fs_mkdir).",
            vec![
                path("File to write, relative to the server's fs root."),
                ("content", string("The new file contents (text, or base64 with encoding=base64).")),
                ("encoding", one_of(&["text", "base64"], "How `content` is encoded; default text.")),
            ],
            &["url", "path", "content"],
            done_output(&[("bytes", field(json!("integer"), "Bytes written."))]),
        ),
        spec(
            "rstream_webtty_fs_mkdir",
            "Create remote directory",
            "Creates a directory on a WebTTY server with the `fs` capability (an existing one is fine). The parent \
             must exist.",
            vec![path("Directory to create, relative to the server's fs root.")],
            &["url", "path"],
            done_output(&[]),
        ),
        spec(
            "rstream_webtty_fs_move",
            "Move remote file",
            "Moves or renames a file or directory on a WebTTY server with the `fs` capability and fs_mode \
             read-write. An existing destination is only replaced with overwrite=true.",
            vec![
                path("File or directory to move, relative to the server's fs root (not / itself)."),
                ("destination", string("The new path, relative to the server's fs root.")),
                ("overwrite", boolean("Replace an existing destination; default false.")),
            ],
            &["url", "path", "destination"],
            done_output(&[("destination", string("Where it is now."))]),
        ),
        spec(
            "rstream_webtty_fs_delete",
            "Delete remote file",
            "Deletes a file, or a directory with everything in it, on a WebTTY server with the `fs` capability.",
            vec![path("File or directory to delete, relative to the server's fs root (not / itself).")],
            &["url", "path"],
            done_output(&[]),
        ),
    ];
    specs.extend(tools_fs_transfer::specs());
    specs
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, ctx: &CallContext<'_>) -> Option<Result<ToolOutput, ToolError>> {
    let run = match name {
        "rstream_webtty_fs_list" => list,
        "rstream_webtty_fs_stat" => stat,
        "rstream_webtty_fs_read" => read,
        "rstream_webtty_fs_write" => write,
        "rstream_webtty_fs_mkdir" => mkdir,
        "rstream_webtty_fs_move" => relocate,
        "rstream_webtty_fs_delete" => delete,
        _ => return tools_fs_transfer::call(name, args, ctx),
    };
    Some(run(args, ctx))
}

/// Connects for `access`, from the `url` and `fs_path` arguments.
pub async fn session(args: &Args, ctx: &CallContext<'_>, access: Access) -> Result<FsSession, ToolError> {
    let url = args.required_str("url")?;
    let fs_path = args.opt_str("fs_path")?;
    open(ctx, &url, fs_path.as_deref(), access).await
}

/// A failed operation, with the path and server and a hint for the common statuses.
pub fn op_error(op: &str, path: &str, s: &FsSession, e: DavClientError) -> ToolError {
    let hint = match e.status() {
        Some(404) => " (no such file or directory)",
        Some(403) | Some(405) => " (the server refused: read-only filesystem, or not allowed on this path)",
        Some(409) => " (the parent directory does not exist: create it with rstream_webtty_fs_mkdir)",
        Some(412) => " (the destination exists: pass overwrite=true to replace it)",
        Some(413) => " (larger than the server's --fs-max-upload-size)",
        _ => "",
    };
    ToolError(format!("{op} {path} on {}: {e}{hint}", s.server))
}

/// The `path` argument, normalised; `/` itself refused for changes that would replace or remove the root.
fn path_arg(args: &Args, key: &str, what: &str) -> Result<String, ToolError> {
    let path = normalize_path(&args.required_str(key)?);
    if path == "/" {
        return Err(ToolError(format!("argument {key:?} must name {what}, not the filesystem root \"/\"")));
    }
    Ok(path)
}

fn list(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.opt_str("path")?.unwrap_or_else(|| "/".into()));
    let mut entries = ctx.block_on(async {
        let mut s = session(args, ctx, Access::Read).await?;
        s.client.list(&path).await.map_err(|e| op_error("list", &path, &s, e))
    })?;
    if entries.len() <= MCP_FS_LIST_MAX {
        return Ok(ToolOutput::json(json!({"path": path, "entries": entries, "truncated": false})));
    }
    let total = entries.len();
    entries.truncate(MCP_FS_LIST_MAX);
    Ok(ToolOutput::json(json!({"path": path, "entries": entries, "truncated": true, "total": total})))
}

fn stat(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    let entry: DavEntry = ctx.block_on(async {
        let mut s = session(args, ctx, Access::Read).await?;
        s.client.stat(&path).await.map_err(|e| op_error("stat", &path, &s, e))
    })?;
    Ok(ToolOutput::json(entry))
}

fn read(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    let base64 = encoding(args)?;
    let max = match args.opt_u64("max_bytes")? {
        None => MCP_FS_READ_DEFAULT_MAX,
        Some(n) if (1..=MCP_FS_READ_MAX).contains(&n) => n,
        Some(n) => {
            return Err(ToolError(format!("argument \"max_bytes\" must be between 1 and {MCP_FS_READ_MAX}, got {n}")))
        }
    };
    // Read past the cap by the longest secret form, so a secret crossing the cap is scrubbed whole before the cut.
    let secrets = ctx.env.secrets();
    let (size, mut bytes, cut_short) = ctx.block_on(async {
        let mut s = session(args, ctx, Access::Read).await?;
        let entry = s.client.stat(&path).await.map_err(|e| op_error("read", &path, &s, e))?;
        if entry.kind == EntryKind::Directory {
            return Err(ToolError(format!("{path} on {} is a directory: use rstream_webtty_fs_list", s.server)));
        }
        let mut out = Capped::new(Vec::new(), max + secrets.lookahead() as u64);
        match s.client.read(&path, &mut out).await {
            Ok(_) => {}
            Err(_) if out.overflowed() => {}
            Err(e) => return Err(op_error("read", &path, &s, e)),
        }
        let cut_short = out.overflowed();
        Ok((entry.size, out.into_inner(), cut_short))
    })?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if base64 {
        // Binary content is not rewritten: it is cut before any secret crossing the cap, and its base64 is
        // scrubbed (offset forms) with the rest of the result.
        let truncated = secrets.cut_bytes(&mut bytes, max, cut_short);
        let mut facts = json!({"path": path, "size": size, "bytes": bytes.len(), "truncated": truncated});
        facts["encoding"] = json!("base64");
        facts["content"] = json!(Base64::Standard.encode(&bytes));
        return Ok(ToolOutput::json(facts));
    }
    let (text, cut_short) = utf8_text(bytes, max, cut_short)
        .map_err(|n| ToolError(format!("{path} is not UTF-8 text ({n} bytes read): read it with encoding=base64")))?;
    let (text, truncated) = secrets.scrub_and_cut(&text, max, cut_short);
    let mut facts = json!({"path": path, "size": size, "bytes": text.len(), "truncated": truncated});
    facts["encoding"] = json!("text");
    facts["content"] = json!(text);
    let shown = if truncated {
        format!(
            "{text}\n[truncated after {} bytes; pass a larger max_bytes (up to {MCP_FS_READ_MAX}) to read more]",
            facts["bytes"]
        )
    } else {
        text
    };
    Ok(ToolOutput::Document { text: shown, value: facts })
}

/// The bytes as text, and whether they end before the file does. A cut by the reader (`cut_short`) may split
/// the last character, which is dropped; bytes that are not UTF-8 past `max` (the look-ahead) are dropped too.
/// Err(len) if the first `max` bytes are not UTF-8.
fn utf8_text(mut bytes: Vec<u8>, max: usize, mut cut_short: bool) -> Result<(String, bool), usize> {
    if let Err(e) = std::str::from_utf8(&bytes) {
        if (cut_short && e.error_len().is_none()) || e.valid_up_to() >= max {
            bytes.truncate(e.valid_up_to());
            cut_short = true;
        }
    }
    let len = bytes.len();
    String::from_utf8(bytes).map(|text| (text, cut_short)).map_err(|_| len)
}

fn encoding(args: &Args) -> Result<bool, ToolError> {
    match args.opt_str("encoding")?.as_deref() {
        None | Some("text") => Ok(false),
        Some("base64") => Ok(true),
        Some(other) => Err(ToolError(format!("argument \"encoding\" must be text or base64, got {other:?}"))),
    }
}

fn write(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = path_arg(args, "path", "a file")?;
    let content = args.raw_str("content")?.ok_or_else(|| ToolError::new("missing required argument \"content\""))?;
    let bytes = if encoding(args)? {
        Base64::Standard.decode(content.trim()).map_err(|e| ToolError(format!("argument \"content\": {e}")))?
    } else {
        content.into_bytes()
    };
    let len = bytes.len() as u64;
    ctx.block_on(async {
        let mut s = session(args, ctx, Access::Change).await?;
        let body = futures_lite::io::Cursor::new(bytes);
        s.client.write(&path, body, Some(len)).await.map_err(|e| op_error("write", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path, "bytes": len})))
}

fn mkdir(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    ctx.block_on(async {
        let mut s = session(args, ctx, Access::Change).await?;
        s.client.mkdir(&path).await.map_err(|e| op_error("mkdir", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path})))
}

fn relocate(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = path_arg(args, "path", "a file or directory")?;
    let destination = path_arg(args, "destination", "a file or directory")?;
    let overwrite = args.opt_bool("overwrite")?.unwrap_or(false);
    if destination == path || destination.starts_with(&format!("{path}/")) {
        return Err(ToolError(format!("cannot move {path} onto itself or into itself ({destination})")));
    }
    ctx.block_on(async {
        let mut s = session(args, ctx, Access::Change).await?;
        s.client.rename(&path, &destination, overwrite).await.map_err(|e| op_error("move", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path, "destination": destination})))
}

fn delete(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = path_arg(args, "path", "a file or directory")?;
    ctx.block_on(async {
        let mut s = session(args, ctx, Access::Change).await?;
        s.client.delete(&path).await.map_err(|e| op_error("delete", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_drop_a_character_split_by_the_cap_but_refuse_binary() {
        assert_eq!(utf8_text("héllo".as_bytes()[..2].to_vec(), 10, true).unwrap(), ("h".into(), true));
        assert_eq!(utf8_text(b"plain".to_vec(), 10, false).unwrap(), ("plain".into(), false));
        assert_eq!(utf8_text(vec![0xff, 0x00, 0x41], 10, false), Err(3));
        assert_eq!(utf8_text(vec![0xff, 0x41], 10, true), Err(2));
        // Binary bytes only in the look-ahead past the cap: the text before them is the read.
        assert_eq!(utf8_text(b"text\xff\xfe".to_vec(), 4, false).unwrap(), ("text".into(), true));
    }

    #[test]
    fn changes_refuse_the_root_and_moves_into_themselves() {
        let (env, cancel, servers) = (Default::default(), super::super::cancel::Cancel::never(), Default::default());
        let ctx = CallContext { env: &env, cancel: &cancel, servers: &servers };
        let args = |v: Value| Args::from_value(v);
        let err = delete(&args(json!({"url": "ws://127.0.0.1:1", "path": "/.."})), &ctx).unwrap_err().0;
        assert!(err.contains("not the filesystem root"), "{err}");
        let err = relocate(&args(json!({"url": "ws://127.0.0.1:1", "path": "/a", "destination": "/a/b"})), &ctx);
        assert!(err.unwrap_err().0.contains("into itself"));
    }
}
