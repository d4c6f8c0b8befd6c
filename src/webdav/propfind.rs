//! PROPFIND (RFC 4918 §9.1): Depth 0 or 1 (`infinity` is refused with 403 `propfind-finite-depth`), `allprop`,
//! `propname` or named properties, answered as a 207 multistatus streamed in chunks of about `COPY_BUF_LEN`
//! bytes, so a directory of any size costs one buffer. Listings skip upload and atomic-write temp files, names
//! that are not valid UTF-8 or not acceptable as request paths, symlinks that dangle or leave the root, and the
//! agent's own secrets (under any name: a hard link or symlink to one is skipped too).

use std::fs::Metadata;
use std::time::UNIX_EPOCH;

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::error::{DavError, Failure};
use super::get::content_type;
use super::handler::{etag_of, parse_depth, read_small_body, DavRequest, Depth, WebDav};
use super::lock::Lock;
use super::path::{is_reserved_name, DavPath, Located};
use super::props::{children, element, empty_element, DeadProp};
use super::xml::{escape, parse_all, XmlName, DAV_NS};
use crate::http::date::{format_http_date, format_rfc3339};
use crate::http::{ResponseHead, ServerConn};
use crate::limits::COPY_BUF_LEN;

/// What a PROPFIND asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropRequest {
    /// Every property with its value.
    All,
    /// Every property name, without values.
    Names,
    /// These properties.
    Some(Vec<XmlName>),
}

/// The live properties this server computes, in answer order.
const LIVE: [&str; 9] = [
    "resourcetype",
    "displayname",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "creationdate",
    "supportedlock",
    "lockdiscovery",
];

/// Parses a PROPFIND body; an empty body means `allprop`.
pub fn parse_propfind(body: &[u8]) -> Result<PropRequest, DavError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PropRequest::All);
    }
    let events = parse_all(body).map_err(|e| DavError::bad_request(e.to_string()))?;
    let roots = children(&events);
    let [(root, inside)] = roots.as_slice() else { return Err(DavError::bad_request("PROPFIND body has no root")) };
    if !root.is_dav("propfind") {
        return Err(DavError::bad_request("PROPFIND body is not a DAV:propfind"));
    }
    for (name, props) in children(inside) {
        match (name.ns.as_str(), name.local.as_str()) {
            (DAV_NS, "allprop") => return Ok(PropRequest::All),
            (DAV_NS, "propname") => return Ok(PropRequest::Names),
            (DAV_NS, "prop") => return Ok(PropRequest::Some(children(props).into_iter().map(|(n, _)| n).collect())),
            _ => {}
        }
    }
    Err(DavError::bad_request("PROPFIND body names neither allprop, propname nor prop"))
}

/// `<D:supportedlock>` content: exclusive and shared write locks.
const SUPPORTED_LOCK: &str = "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry><D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>";

/// `<D:activelock>` for `lock` (also the body of a LOCK answer).
pub(crate) fn active_lock(lock: &Lock, mount: &str) -> String {
    let remaining = lock.expires.saturating_duration_since(std::time::Instant::now()).as_secs();
    format!(
        "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope>{}</D:lockscope><D:depth>{}</D:depth>{}<D:timeout>Second-{remaining}</D:timeout><D:locktoken><D:href>{}</D:href></D:locktoken><D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock>",
        if lock.exclusive { "<D:exclusive/>" } else { "<D:shared/>" },
        if lock.infinite { "infinity" } else { "0" },
        lock.owner.as_ref().map(|o| format!("<D:owner>{o}</D:owner>")).unwrap_or_default(),
        escape(&lock.token),
        escape(&lock.root.href(mount, false)),
    )
}

/// The value (inner XML) of live property `local` for a resource, if it has one.
fn live_value(local: &str, dav: &DavPath, meta: &Metadata, locks: &[Lock], mount: &str) -> Option<String> {
    let file = !meta.is_dir();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    match local {
        "resourcetype" => Some(if file { String::new() } else { "<D:collection/>".into() }),
        "displayname" => Some(escape(dav.name().unwrap_or_default())),
        "getcontentlength" if file => Some(meta.len().to_string()),
        "getcontenttype" if file => Some(content_type(dav.name().unwrap_or_default()).0.to_string()),
        "getetag" => Some(escape(&etag_of(meta))),
        "getlastmodified" => Some(format_http_date(modified)),
        "creationdate" => meta.created().ok().map(format_rfc3339),
        "supportedlock" => Some(SUPPORTED_LOCK.into()),
        "lockdiscovery" => Some(locks.iter().map(|l| active_lock(l, mount)).collect()),
        _ => None,
    }
}

impl WebDav {
    /// Appends the `<D:response>` of one resource to `out`.
    fn render_response(&self, out: &mut String, dav: &DavPath, meta: &Metadata, request: &PropRequest) {
        let locks = self.locks().covering(dav);
        let dead: Vec<DeadProp> = self.props().get(&dav.key()).to_vec();
        out.push_str(&format!("<D:response><D:href>{}</D:href>", escape(&dav.href(&self.mount, meta.is_dir()))));
        let mut found = String::new();
        let mut missing = String::new();
        match request {
            PropRequest::All | PropRequest::Names => {
                for local in LIVE {
                    if let Some(value) = live_value(local, dav, meta, &locks, &self.mount) {
                        let name = XmlName { ns: DAV_NS.into(), local: local.into() };
                        if *request == PropRequest::Names {
                            found.push_str(&empty_element(&name));
                        } else {
                            found.push_str(&element(&name, &value));
                        }
                    }
                }
                for prop in &dead {
                    match request {
                        PropRequest::Names => found.push_str(&empty_element(&prop.name)),
                        _ => found.push_str(&element(&prop.name, &prop.value)),
                    }
                }
            }
            PropRequest::Some(names) => {
                for name in names {
                    let value = match name.ns.as_str() {
                        DAV_NS => live_value(&name.local, dav, meta, &locks, &self.mount),
                        _ => dead.iter().find(|p| p.name == *name).map(|p| p.value.clone()),
                    };
                    match value {
                        Some(value) => found.push_str(&element(name, &value)),
                        None => missing.push_str(&empty_element(name)),
                    }
                }
            }
        }
        if !found.is_empty() || missing.is_empty() {
            out.push_str(&format!(
                "<D:propstat><D:prop>{found}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
            ));
        }
        if !missing.is_empty() {
            out.push_str(&format!(
                "<D:propstat><D:prop>{missing}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
            ));
        }
        out.push_str("</D:response>");
    }

    pub(crate) async fn propfind<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        let depth = parse_depth(req.head, "infinity")?;
        if depth == Depth::Infinity {
            let e = DavError::forbidden("PROPFIND with Depth: infinity is not supported");
            return Err(e.with_condition("<D:propfind-finite-depth/>").into());
        }
        let body = read_small_body(conn).await?;
        let request = parse_propfind(&body)?;
        let (target, meta) = self.root.resolve_existing(&req.path)?;
        let listing = match (meta.is_dir(), depth) {
            (true, Depth::One) => Some(std::fs::read_dir(&target).map_err(|e| DavError::io(e, &req.path.key()))?),
            _ => None,
        };
        let head = ResponseHead::new(207).header("Content-Type", "application/xml; charset=utf-8");
        let mut w = conn.respond_stream(head, None).await?;
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">");
        self.render_response(&mut out, &req.path, &meta, &request);
        for entry in listing.into_iter().flatten().flatten() {
            let Some((child, child_meta)) = self.listed_child(&req.path, &target, &entry) else { continue };
            self.render_response(&mut out, &child, &child_meta, &request);
            if out.len() >= COPY_BUF_LEN {
                w.write_all(out.as_bytes()).await?;
                out.clear();
            }
        }
        out.push_str("</D:multistatus>\n");
        w.write_all(out.as_bytes()).await?;
        Ok(w.finish().await?)
    }

    /// A directory entry as it appears in a listing, or `None` if it is hidden.
    fn listed_child(
        &self,
        parent: &DavPath,
        dir: &std::path::Path,
        entry: &std::fs::DirEntry,
    ) -> Option<(DavPath, Metadata)> {
        let name = entry.file_name().into_string().ok()?;
        if is_reserved_name(&name) {
            return None;
        }
        let dav = parent.child(&name).ok()?;
        let path = dir.join(&name);
        let located =
            Located { dav, path: path.clone(), parent: dir.to_path_buf(), meta: std::fs::symlink_metadata(&path).ok() };
        let (_, meta) = located.follow(&self.root).ok()??;
        Some((located.dav, meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propfind_bodies() {
        assert_eq!(parse_propfind(b"").unwrap(), PropRequest::All);
        assert_eq!(
            parse_propfind(b"<D:propfind xmlns:D=\"DAV:\"><D:propname/></D:propfind>").unwrap(),
            PropRequest::Names
        );
        let some = parse_propfind(
            br#"<propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/><x:y xmlns:x="urn:x"/></prop></propfind>"#,
        )
        .unwrap();
        let PropRequest::Some(names) = some else { panic!("{some:?}") };
        assert_eq!(names.len(), 3);
        assert!(names[0].is_dav("resourcetype"));
        assert_eq!(names[2].ns, "urn:x");
        assert!(parse_propfind(b"<propfind xmlns=\"DAV:\"/>").is_err());
        assert!(parse_propfind(b"<nope/>").is_err());
    }
}
