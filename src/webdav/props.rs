//! Dead properties (RFC 4918 §4) and PROPPATCH: values kept in memory, bounded in count
//! (`limits::MAX_WEBDAV_DEAD_PROPS`) and size (`limits::MAX_WEBDAV_DEAD_PROP_LEN`); a full store answers 507,
//! never a silent success. Properties in the `DAV:` namespace are live (computed from the filesystem) and
//! protected: setting or removing one is 403, and PROPPATCH being atomic, the other properties of that request
//! then get 424. Values are stored as self-contained XML (each element redeclares its namespace), so they can
//! be replayed inside any PROPFIND answer. Like locks, dead properties do not survive a restart.

use std::collections::BTreeMap;

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::{DavError, Failure};
use super::handler::{read_small_body, DavRequest, WebDav};
use super::xml::{escape, parse_all, XmlEvent, XmlName, DAV_NS};
use crate::http::{ResponseHead, ServerConn};
use crate::limits::{MAX_WEBDAV_DEAD_PROPS, MAX_WEBDAV_DEAD_PROP_LEN};

/// One stored property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadProp {
    /// Its name.
    pub name: XmlName,
    /// Its value as self-contained XML (text escaped, child elements with their own `xmlns`).
    pub value: String,
}

/// One instruction of a PROPPATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropOp {
    /// `set` (else `remove`).
    pub set: bool,
    /// The property.
    pub name: XmlName,
    /// The new value (empty for `remove`).
    pub value: String,
}

/// All dead properties, by resource key (`/a/b`).
#[derive(Debug, Default)]
pub struct DeadProps {
    by_resource: BTreeMap<String, Vec<DeadProp>>,
    count: usize,
}

fn in_subtree(key: &str, base: &str) -> bool {
    base == "/" || key == base || key.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

impl DeadProps {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The properties of `key`.
    pub fn get(&self, key: &str) -> &[DeadProp] {
        self.by_resource.get(key).map_or(&[], Vec::as_slice)
    }

    /// Applies `ops` to `key` all at once, or nothing (507) when the store would overflow.
    pub fn apply(&mut self, key: &str, ops: &[PropOp]) -> Result<(), DavError> {
        let mut props = self.get(key).to_vec();
        for op in ops {
            props.retain(|p| p.name != op.name);
            if op.set {
                props.push(DeadProp { name: op.name.clone(), value: op.value.clone() });
            }
        }
        let count = self.count - self.get(key).len() + props.len();
        if count > MAX_WEBDAV_DEAD_PROPS {
            return Err(DavError::new(507, format!("dead property store full ({MAX_WEBDAV_DEAD_PROPS} properties)")));
        }
        self.count = count;
        if props.is_empty() {
            self.by_resource.remove(key);
        } else {
            self.by_resource.insert(key.to_string(), props);
        }
        Ok(())
    }

    fn take_subtree(&mut self, base: &str) -> Vec<(String, Vec<DeadProp>)> {
        let keys: Vec<String> = self.by_resource.keys().filter(|k| in_subtree(k, base)).cloned().collect();
        let taken: Vec<_> = keys.into_iter().filter_map(|k| self.by_resource.remove_entry(&k)).collect();
        self.count -= taken.iter().map(|(_, v)| v.len()).sum::<usize>();
        taken
    }

    /// Forgets the properties of `base` and everything below it.
    pub fn remove_subtree(&mut self, base: &str) {
        self.take_subtree(base);
    }

    fn rebased(key: &str, from: &str, to: &str) -> String {
        format!("{}{}", to.trim_end_matches('/'), &key[from.trim_end_matches('/').len()..])
    }

    /// Moves the properties of `from` and its members to `to`.
    pub fn move_subtree(&mut self, from: &str, to: &str) {
        for (key, props) in self.take_subtree(from) {
            self.count += props.len();
            self.by_resource.insert(Self::rebased(&key, from, to), props);
        }
    }

    /// Copies the properties of `from` and its members to `to`, as far as the store has room.
    pub fn copy_subtree(&mut self, from: &str, to: &str) {
        let copies: Vec<(String, Vec<DeadProp>)> = self
            .by_resource
            .iter()
            .filter(|(k, _)| in_subtree(k, from))
            .map(|(k, v)| (Self::rebased(k, from, to), v.clone()))
            .collect();
        for (key, props) in copies {
            if self.count + props.len() > MAX_WEBDAV_DEAD_PROPS {
                break;
            }
            self.count += props.len();
            self.by_resource.insert(key, props);
        }
    }
}

/// `<name/>` with its namespace declared (`D:` for `DAV:`).
pub(crate) fn empty_element(name: &XmlName) -> String {
    match name.ns.as_str() {
        DAV_NS => format!("<D:{}/>", name.local),
        "" => format!("<{} xmlns=\"\"/>", name.local),
        ns => format!("<z:{} xmlns:z=\"{}\"/>", name.local, escape(ns)),
    }
}

/// `<name>value</name>` with its namespace declared; `value` is already XML.
pub(crate) fn element(name: &XmlName, value: &str) -> String {
    match name.ns.as_str() {
        DAV_NS => format!("<D:{0}>{value}</D:{0}>", name.local),
        "" => format!("<{0} xmlns=\"\">{value}</{0}>", name.local),
        ns => format!("<z:{0} xmlns:z=\"{1}\">{value}</z:{0}>", name.local, escape(ns)),
    }
}

/// Re-serialises events as self-contained XML (each element declares its own namespace).
pub(crate) fn serialize(events: &[XmlEvent]) -> String {
    let mut out = String::new();
    for event in events {
        match event {
            XmlEvent::Start { name, .. } if name.ns.is_empty() => out.push_str(&format!("<{} xmlns=\"\">", name.local)),
            XmlEvent::Start { name, .. } => {
                out.push_str(&format!("<z:{} xmlns:z=\"{}\">", name.local, escape(&name.ns)))
            }
            XmlEvent::End { name, .. } if name.ns.is_empty() => out.push_str(&format!("</{}>", name.local)),
            XmlEvent::End { name, .. } => out.push_str(&format!("</z:{}>", name.local)),
            XmlEvent::Text(t) => out.push_str(&escape(t)),
        }
    }
    out
}

/// Parses a `propertyupdate` body into its operations, in document order.
pub fn parse_propertyupdate(body: &[u8]) -> Result<Vec<PropOp>, DavError> {
    let events = parse_all(body).map_err(|e| DavError::bad_request(e.to_string()))?;
    let roots = children(&events);
    let [(root, inside)] = roots.as_slice() else {
        return Err(DavError::bad_request("PROPPATCH body is not one DAV:propertyupdate"));
    };
    if !root.is_dav("propertyupdate") {
        return Err(DavError::bad_request("PROPPATCH body is not a DAV:propertyupdate"));
    }
    let mut ops = Vec::new();
    for (action, action_inside) in children(inside) {
        let set = match (action.ns.as_str(), action.local.as_str()) {
            (DAV_NS, "set") => true,
            (DAV_NS, "remove") => false,
            _ => continue,
        };
        for (_, props) in children(action_inside).into_iter().filter(|(n, _)| n.is_dav("prop")) {
            for (name, value) in children(props) {
                let value = if set { serialize(value) } else { String::new() };
                ops.push(PropOp { set, name, value });
            }
        }
    }
    Ok(ops)
}

/// Splits a run of sibling events into `(element name, events inside it)` for each top-level element; text
/// between elements is ignored. Used to walk small, already-parsed request bodies.
pub(crate) fn children(events: &[XmlEvent]) -> Vec<(XmlName, &[XmlEvent])> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut current = None;
    for (i, event) in events.iter().enumerate() {
        match event {
            XmlEvent::Start { name, .. } => {
                if depth == 0 {
                    current = Some(name.clone());
                    start = i + 1;
                }
                depth += 1;
            }
            XmlEvent::End { .. } => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if let Some(name) = current.take() {
                        out.push((name, &events[start..i]));
                    }
                }
            }
            XmlEvent::Text(_) => {}
        }
    }
    out
}

impl WebDav {
    pub(crate) async fn proppatch<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        self.root.resolve_existing(&req.path)?;
        self.check_locks(req, &req.path, false, false)?;
        let body = read_small_body(conn).await?;
        let ops = parse_propertyupdate(&body)?;
        let mut statuses: Vec<u16> = ops
            .iter()
            .map(|op| match () {
                _ if op.name.ns == DAV_NS => 403,
                _ if op.value.len() > MAX_WEBDAV_DEAD_PROP_LEN => 507,
                _ => 200,
            })
            .collect();
        if statuses.iter().any(|s| *s != 200) {
            statuses.iter_mut().filter(|s| **s == 200).for_each(|s| *s = 424);
        } else if let Err(e) = self.props().apply(&req.path.key(), &ops) {
            statuses.iter_mut().for_each(|s| *s = e.status);
        }
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">");
        xml.push_str(&format!("<D:response><D:href>{}</D:href>", escape(&req.path.href(&self.mount, false))));
        let mut seen: Vec<u16> = statuses.clone();
        seen.sort_unstable();
        seen.dedup();
        for status in seen {
            xml.push_str("<D:propstat><D:prop>");
            for (op, _) in ops.iter().zip(&statuses).filter(|(_, s)| **s == status) {
                xml.push_str(&empty_element(&op.name));
            }
            let reason = crate::http::reason_phrase(status);
            xml.push_str(&format!("</D:prop><D:status>HTTP/1.1 {status} {reason}</D:status></D:propstat>"));
        }
        xml.push_str("</D:response></D:multistatus>\n");
        let head = ResponseHead::new(207).header("Content-Type", "application/xml; charset=utf-8");
        Ok(conn.respond(head, xml.as_bytes()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(ns: &str, local: &str) -> XmlName {
        XmlName { ns: ns.into(), local: local.into() }
    }

    #[test]
    fn parses_set_and_remove_with_structured_values() {
        let body = br#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
            <D:set><D:prop><Z:author>Jim &amp; co</Z:author><Z:tags><Z:t>a</Z:t></Z:tags></D:prop></D:set>
            <D:remove><D:prop><Z:old/></D:prop></D:remove></D:propertyupdate>"#;
        let ops = parse_propertyupdate(body).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0], PropOp { set: true, name: name("urn:z", "author"), value: "Jim &amp; co".into() });
        assert!(ops[1].value.contains("<z:t xmlns:z=\"urn:z\">a</z:t>"), "{}", ops[1].value);
        assert_eq!((ops[2].set, ops[2].name.local.as_str()), (false, "old"));
        assert!(parse_propertyupdate(b"<x/>").is_err());
    }

    #[test]
    fn store_is_bounded_and_follows_moves() {
        let mut store = DeadProps::new();
        let op = |i: usize| PropOp { set: true, name: name("urn:z", &format!("p{i}")), value: "v".into() };
        store.apply("/a", &[op(0)]).unwrap();
        store.apply("/a/b", &[op(1)]).unwrap();
        store.apply("/ab", &[op(2)]).unwrap();
        store.move_subtree("/a", "/c");
        assert!(store.get("/a").is_empty());
        assert_eq!(store.get("/c/b").len(), 1);
        assert_eq!(store.get("/ab").len(), 1);
        store.copy_subtree("/c", "/d");
        assert_eq!(store.get("/d").len(), 1);
        store.remove_subtree("/c");
        assert!(store.get("/c/b").is_empty());
        let many: Vec<PropOp> = (0..MAX_WEBDAV_DEAD_PROPS).map(op).collect();
        assert_eq!(store.apply("/full", &many).unwrap_err().status, 507);
        assert!(store.get("/full").is_empty());
    }
}
