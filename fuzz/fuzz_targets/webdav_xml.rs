//! Fuzz target: WebDAV XML bodies: the pull reader (`rstream::webdav::xml`) and the PROPFIND, PROPPATCH and
//! LOCK body parsers built on it.
//!
//! Properties, for any document:
//! - fed in arbitrary chunks with the buffer trimmed between refills (as the client streams a multistatus),
//!   the reader yields exactly the events of one whole-buffer `parse_all`, offsets included, or fails too;
//! - accepted documents are well nested: one root, every `End` closes the latest open `Start`, and each
//!   element's content offsets delimit its raw inner XML (ending at its end tag or `/>`);
//! - a PROPPATCH value or LOCK owner, stored as "self-contained XML", is replayed verbatim when sent back
//!   inside a new body (what a client does with the XML it got in a PROPFIND);
//! - `decode_text` inverts `escape`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rstream::webdav::xml::{decode_text, escape, parse_all, XmlError, XmlEvent, XmlName, XmlReader};
use rstream::webdav::{parse_lockinfo, parse_propertyupdate, parse_propfind};
use rstream_fuzz::split_chunking;

fuzz_target!(|input: &[u8]| {
    let (chunk, doc) = split_chunking(input);
    let whole = parse_all(doc);
    let streamed = parse_in_chunks(doc, chunk);
    match (&whole, &streamed) {
        (Ok(whole), Ok(streamed)) => assert_eq!(whole, streamed, "chunked reading changed the events"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} vs chunked {streamed:?}"),
    }
    if let Ok(events) = &whole {
        assert_well_nested(doc, events);
    }

    let _ = parse_propfind(doc);
    for op in parse_propertyupdate(doc).into_iter().flatten().filter(|op| op.set) {
        assert_value_replays(&op.name, &op.value);
    }
    if let Ok(Some(owner)) = parse_lockinfo(doc).map(|info| info.owner) {
        assert_owner_replays(&owner);
    }

    let text = String::from_utf8_lossy(doc);
    assert_eq!(decode_text(escape(&text).as_bytes()).as_deref(), Ok(&*text), "decode_text(escape(s)) != s");
});

/// Reads `doc` through a reader fed `chunk` bytes at a time, dropping consumed bytes before each refill; event
/// offsets are made absolute again.
fn parse_in_chunks(doc: &[u8], chunk: usize) -> Result<Vec<XmlEvent>, XmlError> {
    let mut reader = XmlReader::new();
    let (mut buf, mut fed, mut dropped) = (Vec::new(), 0, 0);
    let mut events = Vec::new();
    loop {
        let eof = fed == doc.len();
        match reader.next_event(&buf, eof)? {
            Some(XmlEvent::Start { name, content_start }) => {
                events.push(XmlEvent::Start { name, content_start: content_start + dropped })
            }
            Some(XmlEvent::End { name, content_end }) => {
                events.push(XmlEvent::End { name, content_end: content_end + dropped })
            }
            Some(text) => events.push(text),
            None if eof => return Ok(events),
            None => {
                let used = reader.consumed();
                buf.drain(..used);
                reader.rebase(used);
                dropped += used;
                let next = (fed + chunk.min(doc.len())).min(doc.len());
                buf.extend_from_slice(&doc[fed..next]);
                fed = next;
            }
        }
    }
}

/// One root; `End`s match their `Start`s; content offsets are ordered and end at an end tag or `/>`.
fn assert_well_nested(doc: &[u8], events: &[XmlEvent]) {
    let mut open: Vec<(&XmlName, usize)> = Vec::new();
    let mut roots = 0;
    for event in events {
        match event {
            XmlEvent::Start { name, content_start } => {
                roots += usize::from(open.is_empty());
                assert!(*content_start <= doc.len() && doc[..*content_start].ends_with(b">"), "bad start offset");
                open.push((name, *content_start));
            }
            XmlEvent::End { name, content_end } => {
                let (opened, content_start) = open.pop().expect("End without an open element");
                assert_eq!(opened, name, "End closes another element");
                assert!(content_start <= *content_end || doc[*content_end..].starts_with(b"/>"), "offsets cross");
                let tail = &doc[*content_end..];
                assert!(tail.starts_with(b"</") || tail.starts_with(b"/>"), "content does not end at an end tag");
            }
            XmlEvent::Text(_) => assert!(!open.is_empty(), "text outside the root"),
        }
    }
    assert!(open.is_empty() && roots == 1, "{roots} roots, {} left open", open.len());
}

/// A stored PROPPATCH value, set again inside a new PROPPATCH, is stored unchanged.
fn assert_value_replays(name: &XmlName, value: &str) {
    let body = format!(
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><z:p xmlns:z="urn:fuzz">{value}</z:p></D:prop></D:set></D:propertyupdate>"#
    );
    let replayed = parse_propertyupdate(body.as_bytes())
        .unwrap_or_else(|e| panic!("value of {name:?} is not self-contained XML: {value:?}: {e}"));
    assert_eq!(replayed.len(), 1, "value of {name:?} holds more than one property: {value:?}");
    assert_eq!(replayed[0].value, value, "value of {name:?} changes when replayed");
}

/// A stored LOCK owner, sent again inside a new `lockinfo`, is stored unchanged.
fn assert_owner_replays(owner: &str) {
    let body = format!(
        r#"<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"#
    );
    let replayed = parse_lockinfo(body.as_bytes()).unwrap_or_else(|e| panic!("owner {owner:?} does not replay: {e}"));
    assert_eq!(replayed.owner.as_deref(), Some(owner), "lock owner changes when replayed");
}
