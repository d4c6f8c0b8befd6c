//! `stream.summary`: what became of one stream through the engine, published when it ends (upstream's shape,
//! reference §4): who asked from where, whether the firewall let it through, where it was routed, and either
//! how it ended (bytes each way, durations, who closed) or why it failed.
//!
//! [`StreamStart`] is taken when a stream is requested; [`failed`] or [`ended`] publish its summary. Nothing is
//! built when nobody subscribes ([`super::events::EventBus::publish`]).

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};

use super::events::{Event, Subject, STREAM_SUMMARY};
use super::registry::TunnelView;
use super::splice::FirstEnd;
use super::Engine;
use crate::http::date::format_rfc3339;
use crate::proto::rstream::{opt_str, Error as ProtoError, ErrorCode};

/// When and from where a stream was requested.
#[derive(Clone, Debug)]
pub struct StreamStart {
    at: Instant,
    created_at: SystemTime,
    source_ip: Option<IpAddr>,
}

impl StreamStart {
    /// A stream requested now from `source_ip`.
    pub fn now(source_ip: Option<IpAddr>) -> Self {
        StreamStart { at: Instant::now(), created_at: SystemTime::now(), source_ip }
    }
}

/// How a spliced stream ended.
#[derive(Debug)]
pub enum Termination {
    /// Both sides closed; this one first.
    Closed(FirstEnd),
    /// The splice failed (a reset, a broken pipe).
    Error(std::io::Error),
    /// The engine cut it: the tunnel's agent stopped responding.
    AgentUnresponsive,
}

/// A spliced stream, as measured by the relay.
pub struct Ended<'a> {
    /// Engine-assigned stream id.
    pub stream_id: &'a str,
    /// The tunnel it went to.
    pub tunnel: &'a TunnelView,
    /// When the agent's leg arrived.
    pub established: Instant,
    /// Client → agent bytes.
    pub upstream_bytes: u64,
    /// Agent → client bytes.
    pub downstream_bytes: u64,
    /// How it ended.
    pub termination: Termination,
}

fn millis(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}

fn since(start: &StreamStart, instant: Instant) -> SystemTime {
    start.created_at + instant.saturating_duration_since(start.at)
}

/// The `failure` object of `error` (upstream's kinds: unauthorized, not_found, refused, timeout, io, internal).
fn failure(error: &ProtoError) -> Value {
    let message = opt_str(&error.message).unwrap_or("");
    let code = ErrorCode::try_from(error.code).unwrap_or(ErrorCode::Unspecified);
    let mut failure = match code {
        ErrorCode::Unauthorized => json!({ "kind": "unauthorized", "why": "invalid_token" }),
        ErrorCode::TunnelNotFound => json!({ "kind": "not_found", "resource": "tunnel" }),
        ErrorCode::CapacityExhausted => json!({ "kind": "refused", "reason": "capacity" }),
        ErrorCode::FeatureNotAvailable => json!({ "kind": "refused", "reason": "unsupported" }),
        ErrorCode::InvalidRequest => json!({ "kind": "refused", "reason": "policy" }),
        ErrorCode::ServiceUnavailable if message.contains("did not connect within") => json!({ "kind": "timeout" }),
        ErrorCode::ServiceUnavailable | ErrorCode::InvalidStream => json!({ "kind": "io" }),
        _ => json!({ "kind": "internal" }),
    };
    if !message.is_empty() {
        failure["message"] = Value::from(message);
    }
    failure
}

fn routed(tunnel: &TunnelView) -> Value {
    let p = &tunnel.props;
    let mut t = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            t.insert(key.into(), v);
        }
    };
    put("tunnelId", opt_str(&p.id).map(Value::from));
    put("tunnelName", opt_str(&p.name).filter(|n| !n.is_empty()).map(Value::from));
    put("protocol", opt_str(&p.protocol).filter(|n| !n.is_empty()).map(Value::from));
    put("published", Some(Value::Bool(p.is_published())));
    put("type", opt_str(&p.r#type).map(Value::from));
    put("httpVersion", opt_str(&p.http_version).filter(|n| !n.is_empty()).map(Value::from));
    put("tokenAuth", p.token_auth.map(|b| Value::Bool(b.value)));
    json!({ "decision": "routed", "tunnel": Value::Object(t) })
}

fn base(start: &StreamStart, stream_id: &str, tunnel: Option<&TunnelView>, denied: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("stream_id".into(), Value::from(stream_id));
    if let Some(t) = tunnel {
        m.insert("tunnel_id".into(), Value::from(opt_str(&t.props.id).unwrap_or_default()));
        m.insert("client_id".into(), Value::from(t.client_id.as_str()));
        if !t.user_id.is_empty() {
            m.insert("user_id".into(), Value::from(t.user_id.as_str()));
        }
    }
    m.insert("created_at".into(), Value::from(format_rfc3339(start.created_at)));
    m.insert("terminated_at".into(), Value::from(format_rfc3339(since(start, Instant::now()))));
    let mut downstream = json!({ "geolocation": {} });
    if let Some(ip) = start.source_ip {
        downstream["ip"] = Value::from(ip.to_string());
    }
    m.insert("request".into(), json!({ "downstream": downstream }));
    let decision = if denied { "denied" } else { "allowed" };
    m.insert("firewall".into(), json!({ "decision": decision, "rule": { "kind": "token" } }));
    m
}

/// Publishes the summary of a stream that never reached its agent: refused (`error`), to `tunnel` if it was
/// found.
pub fn failed(engine: &Engine, start: &StreamStart, stream_id: &str, tunnel: Option<TunnelView>, error: &ProtoError) {
    engine.registry.publish(|| {
        let denied = error.is(ErrorCode::Unauthorized);
        let mut m = base(start, stream_id, tunnel.as_ref(), denied);
        if let Some(f) = denied.then(|| failure(error)) {
            m.get_mut("firewall").expect("just set")["failure"] = f;
        }
        let routing = match &tunnel {
            Some(t) => routed(t),
            None => json!({ "decision": "not_routed", "failure": failure(error) }),
        };
        m.insert("routing".into(), routing);
        let metrics = json!({ "time_to_fail_ms": millis(start.at, Instant::now()) });
        m.insert("response".into(), json!({ "outcome": "failed", "failure": failure(error), "metrics": metrics }));
        Event::new(STREAM_SUMMARY, Subject::Stream(tunnel), Value::Object(m))
    });
}

/// Publishes the summary of a spliced stream that ended.
pub fn ended(engine: &Engine, start: &StreamStart, end: Ended<'_>) {
    engine.registry.publish(|| {
        let mut m = base(start, end.stream_id, Some(end.tunnel), false);
        m.insert("routing".into(), routed(end.tunnel));
        let (by, reason, message) = match &end.termination {
            Termination::Closed(FirstEnd::A) => ("downstream", "closed", None),
            Termination::Closed(FirstEnd::B) => ("upstream", "closed", None),
            Termination::Error(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                ("unknown", "reset", Some(e.to_string()))
            }
            Termination::Error(e) => ("unknown", "error", Some(e.to_string())),
            Termination::AgentUnresponsive => ("server", "timeout", Some("the agent stopped responding".to_owned())),
        };
        let mut termination = json!({ "by": by, "reason": reason });
        if let Some(message) = message {
            termination["message"] = Value::from(message);
        }
        let now = Instant::now();
        let response = json!({
            "outcome": "connected",
            "established_at": format_rfc3339(since(start, end.established)),
            "metrics": {
                "establish_ms": millis(start.at, end.established),
                "duration_ms": millis(start.at, now),
                "upstream_bytes": end.upstream_bytes,
                "downstream_bytes": end.downstream_bytes,
            },
            "termination": termination,
        });
        m.insert("response".into(), response);
        Event::new(STREAM_SUMMARY, Subject::Stream(Some(end.tunnel.clone())), Value::Object(m))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::routing::PublicHosts;
    use crate::proto::rstream::{some_str, TunnelProperties};

    fn engine() -> Engine {
        Engine::new(b"0123456789abcdef0123456789abcdef".to_vec(), PublicHosts::new(&[], 8443))
    }

    fn view() -> TunnelView {
        let props = TunnelProperties {
            id: some_str("t1"),
            name: some_str("web"),
            r#type: some_str("bytestream"),
            ..Default::default()
        };
        TunnelView { props, client_id: "c1".into(), user_id: "pi".into() }
    }

    fn next(sub: &crate::engine::events::Subscription) -> Value {
        let event = smol::block_on(sub.next()).expect("an event");
        serde_json::from_str(&event.json).unwrap()
    }

    #[test]
    fn a_refused_stream_is_summarised_as_not_routed_with_its_failure_kind() {
        let e = engine();
        let (_, _, sub) = e.registry.subscribe().unwrap();
        let start = StreamStart::now(Some("127.0.0.1".parse().unwrap()));
        let missing = ProtoError::new(ErrorCode::TunnelNotFound, "tunnel \"x\" not found");
        failed(&e, &start, "s1", None, &missing);
        let v = next(&sub);
        assert_eq!(v["type"], STREAM_SUMMARY);
        let o = &v["object"];
        assert_eq!(o["routing"]["decision"], "not_routed");
        assert_eq!(o["routing"]["failure"]["kind"], "not_found");
        assert_eq!(o["response"]["outcome"], "failed");
        assert_eq!(o["request"]["downstream"]["ip"], "127.0.0.1");
        assert_eq!(o["firewall"]["decision"], "allowed");
        let denied = ProtoError::new(ErrorCode::Unauthorized, "no token");
        failed(&e, &start, "s2", None, &denied);
        let o = next(&sub)["object"].clone();
        assert_eq!(
            (o["firewall"]["decision"].as_str(), o["firewall"]["failure"]["kind"].as_str()),
            (Some("denied"), Some("unauthorized"))
        );
    }

    #[test]
    fn an_ended_stream_carries_bytes_durations_and_who_closed() {
        let e = engine();
        let (_, _, sub) = e.registry.subscribe().unwrap();
        let start = StreamStart::now(None);
        let tunnel = view();
        let end = Ended {
            stream_id: "s1",
            tunnel: &tunnel,
            established: Instant::now(),
            upstream_bytes: 10,
            downstream_bytes: 20,
            termination: Termination::Closed(FirstEnd::B),
        };
        ended(&e, &start, end);
        let o = next(&sub)["object"].clone();
        assert_eq!(o["routing"]["tunnel"]["tunnelName"], "web");
        assert_eq!(o["response"]["outcome"], "connected");
        assert_eq!(o["response"]["metrics"]["upstream_bytes"], 10);
        assert_eq!(o["response"]["metrics"]["downstream_bytes"], 20);
        assert_eq!(o["response"]["termination"]["by"], "upstream");
        assert_eq!((o["tunnel_id"].as_str(), o["client_id"].as_str()), (Some("t1"), Some("c1")));
    }
}
