//! JSON shapes of the REST API: `TunnelInventory` and `ClientProperties`, as rstream's clients decode them.
//!
//! Keys are snake_case and omitted when unset (Go `omitempty`); booleans that were set are always present so
//! `publish: false` is visible. A tunnel adds `status: "online"` (everything in the registry is live),
//! `client_id` and `user_id`; published tunnels add `hostname` and `port` derived from `host`.

use serde_json::{json, Map, Value};

use super::clock::to_system_time;
use super::registry::{ClientView, TunnelView};
use super::routing::strip_port;
use crate::http::date::format_rfc3339;
use crate::proto::rstream::{opt_str, BoolValue, StringValue};

/// Status of every object the registry holds.
pub const ONLINE: &str = "online";
/// Status of a tunnel or client in its `*.deleted` event.
pub const OFFLINE: &str = "offline";

fn put_str(map: &mut Map<String, Value>, key: &str, v: &Option<StringValue>) {
    if let Some(s) = opt_str(v).filter(|s| !s.is_empty()) {
        map.insert(key.into(), Value::String(s.to_owned()));
    }
}

fn put_bool(map: &mut Map<String, Value>, key: &str, v: &Option<BoolValue>) {
    if let Some(b) = v {
        map.insert(key.into(), Value::Bool(b.value));
    }
}

fn put_list(map: &mut Map<String, Value>, key: &str, v: &[String]) {
    if !v.is_empty() {
        map.insert(key.into(), json!(v));
    }
}

/// The public host name (no port) of a published tunnel, as used by the `hostname` filter.
pub fn hostname(view: &TunnelView) -> Option<&str> {
    opt_str(&view.props.host).map(strip_port)
}

/// One `TunnelInventory` object.
pub fn tunnel_json(view: &TunnelView) -> Value {
    let p = &view.props;
    let mut m = Map::new();
    put_str(&mut m, "id", &p.id);
    if let Some(ts) = p.creation_date {
        m.insert("creation_date".into(), Value::String(format_rfc3339(to_system_time(ts.seconds, ts.nanos))));
    }
    put_str(&mut m, "name", &p.name);
    put_str(&mut m, "type", &p.r#type);
    put_bool(&mut m, "publish", &p.publish);
    put_str(&mut m, "protocol", &p.protocol);
    if !p.labels.is_empty() {
        m.insert("labels".into(), json!(p.labels));
    }
    put_list(&mut m, "geo_ip", &p.geoip);
    put_list(&mut m, "trusted_ips", &p.trusted_ips);
    put_str(&mut m, "host", &p.host);
    if let Some(authority) = opt_str(&p.host) {
        m.insert("hostname".into(), Value::String(strip_port(authority).to_owned()));
        let port = authority.rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok()).unwrap_or(443);
        m.insert("port".into(), json!(port));
    }
    put_str(&mut m, "tls_mode", &p.tls_mode);
    put_list(&mut m, "tls_alpns", &p.tls_alpns);
    put_str(&mut m, "tls_min_version", &p.tls_min_version);
    put_list(&mut m, "tls_ciphers", &p.tls_ciphers);
    put_bool(&mut m, "mtls_auth", &p.mtls_auth);
    put_str(&mut m, "http_version", &p.http_version);
    put_bool(&mut m, "http_use_tls", &p.http_use_tls);
    put_bool(&mut m, "token_auth", &p.token_auth);
    put_bool(&mut m, "rstream_auth", &p.rstream_auth);
    put_bool(&mut m, "challenge_mode", &p.challenge_mode);
    m.insert("status".into(), Value::String(ONLINE.into()));
    m.insert("client_id".into(), Value::String(view.client_id.clone()));
    if !view.user_id.is_empty() {
        m.insert("user_id".into(), Value::String(view.user_id.clone()));
    }
    Value::Object(m)
}

/// One `ClientProperties` object.
pub fn client_json(view: &ClientView) -> Value {
    let d = &view.details;
    let mut m = Map::new();
    m.insert("id".into(), Value::String(view.id.clone()));
    m.insert("status".into(), Value::String(ONLINE.into()));
    if !view.user_id.is_empty() {
        m.insert("user_id".into(), Value::String(view.user_id.clone()));
    }
    put_str(&mut m, "agent", &d.agent);
    put_str(&mut m, "channel", &d.channel);
    put_str(&mut m, "version", &d.version);
    put_str(&mut m, "os", &d.os);
    put_str(&mut m, "arch", &d.arch);
    put_str(&mut m, "protocol_version", &d.protocol_version);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rstream::{some_str, ClientDetails, Timestamp, TunnelProperties};

    #[test]
    fn tunnel_inventory_is_snake_case_omits_unset_and_keeps_false() {
        let mut props = TunnelProperties {
            id: some_str("abc"),
            creation_date: Some(Timestamp { seconds: 1_714_564_800, nanos: 0 }),
            name: some_str("shell"),
            r#type: some_str("bytestream"),
            publish: Some(true.into()),
            host: some_str("shell.t.localhost:8443"),
            token_auth: Some(false.into()),
            geoip: vec!["FR".into()],
            ..Default::default()
        };
        props.labels.insert("rstream.webtty.capabilities".into(), "exec,fs".into());
        let view = TunnelView { props, client_id: "c1".into(), user_id: "operator".into() };
        let got = tunnel_json(&view);
        assert_eq!(
            got,
            json!({
                "id": "abc", "creation_date": "2024-05-01T12:00:00Z", "name": "shell", "type": "bytestream",
                "publish": true, "labels": {"rstream.webtty.capabilities": "exec,fs"}, "geo_ip": ["FR"],
                "host": "shell.t.localhost:8443", "hostname": "shell.t.localhost", "port": 8443,
                "token_auth": false, "status": "online", "client_id": "c1", "user_id": "operator"
            })
        );
        assert_eq!(hostname(&view), Some("shell.t.localhost"));
    }

    #[test]
    fn client_properties_carry_status_and_details() {
        let view =
            ClientView { id: "c1".into(), details: ClientDetails::this_binary("secret"), user_id: String::new() };
        let got = client_json(&view);
        assert_eq!(got["status"], "online");
        assert_eq!(got["protocol_version"], crate::proto::rstream::PROTOCOL_VERSION);
        assert!(got.get("user_id").is_none());
        assert!(!got.to_string().contains("secret"), "never a token in the inventory");
    }
}
