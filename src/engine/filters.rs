//! List parameters of `GET /api/tunnels` and `/api/clients`: `?params=<url-encoded JSON>` with
//! `{"limit": N, "filters": {...}}`; the events endpoints take the same filters as
//! `{"clients": {...}, "tunnels": {...}}` ([`WatchParams`]). Filtering happens here, in the engine.
//!
//! Every filter present must match (AND, equality). `labels` maps a key to a value, or to `null` meaning "the
//! label exists with any value". Empty strings are treated as absent (Go clients omit them). Unknown keys are
//! ignored so newer clients keep working.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::inventory::{hostname, ONLINE};
use super::registry::{ClientView, TunnelView};
use crate::http::percent::query_pairs;
use crate::proto::rstream::{opt_str, StringValue};

/// `{"limit": N, "filters": F}`; `limit` 0 or absent = everything.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams<F> {
    /// Most items returned.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Filters.
    #[serde(default = "Option::default")]
    pub filters: Option<F>,
}

/// `WatchParams` of `/api/sse` and `/api/websocket`: which clients and tunnels a subscriber hears about.
#[derive(Debug, Default, Deserialize)]
pub struct WatchParams {
    /// Client filters (absent = every client).
    #[serde(default)]
    pub clients: Option<ClientFilters>,
    /// Tunnel filters (absent = every tunnel).
    #[serde(default)]
    pub tunnels: Option<TunnelFilters>,
}

/// Label filter: key → `Some(value)` (equal) or `None` (key present).
pub type LabelFilter = BTreeMap<String, Option<String>>;

/// `ListTunnelsFilters`.
#[derive(Debug, Default, Deserialize)]
pub struct TunnelFilters {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    client_id: Option<String>,
    user_id: Option<String>,
    protocol: Option<String>,
    hostname: Option<String>,
    publish: Option<bool>,
    http_version: Option<String>,
    labels: Option<LabelFilter>,
}

/// `ListClientsFilters`.
#[derive(Debug, Default, Deserialize)]
pub struct ClientFilters {
    id: Option<String>,
    status: Option<String>,
    user_id: Option<String>,
    agent: Option<String>,
    channel: Option<String>,
    version: Option<String>,
    os: Option<String>,
    arch: Option<String>,
    protocol_version: Option<String>,
    labels: Option<LabelFilter>,
}

/// Parses the `params` query parameter of a list (absent = defaults). Errors name what was wrong.
pub fn parse_params<F: DeserializeOwned + Default>(query: Option<&str>) -> Result<ListParams<F>, String> {
    parse_params_as(query)
}

/// Parses the `params` query parameter as `T` (absent or empty = `T::default()`).
pub fn parse_params_as<T: DeserializeOwned + Default>(query: Option<&str>) -> Result<T, String> {
    let mut raw = None;
    for pair in query_pairs(query.unwrap_or("")) {
        let (key, value) = pair.map_err(|e| format!("invalid query: {e}"))?;
        if key == "params" {
            raw = Some(value);
        }
    }
    match raw.filter(|r| !r.trim().is_empty()) {
        None => Ok(T::default()),
        Some(json) => serde_json::from_str(&json).map_err(|e| format!("invalid params JSON {json:?}: {e}")),
    }
}

/// `want` absent/empty, or equal to `have`.
fn field(want: &Option<String>, have: Option<&str>) -> bool {
    match want.as_deref().filter(|w| !w.is_empty()) {
        None => true,
        Some(w) => have == Some(w),
    }
}

fn wrapped(v: &Option<StringValue>) -> Option<&str> {
    opt_str(v)
}

/// Every label filter holds for `labels`.
pub fn labels_match(filter: &Option<LabelFilter>, labels: &BTreeMap<String, String>) -> bool {
    filter.iter().flatten().all(|(key, want)| match (labels.get(key), want) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(have), Some(want)) => have == want,
    })
}

impl TunnelFilters {
    /// Whether the live tunnel `t` passes every filter.
    pub fn matches(&self, t: &TunnelView) -> bool {
        self.matches_in(t, ONLINE)
    }

    /// Whether `t`, whose status is `status` (`offline` once deleted), passes every filter.
    pub fn matches_in(&self, t: &TunnelView, status: &str) -> bool {
        let p = &t.props;
        field(&self.id, wrapped(&p.id))
            && field(&self.name, wrapped(&p.name))
            && field(&self.kind, wrapped(&p.r#type))
            && field(&self.status, Some(status))
            && field(&self.client_id, Some(&t.client_id))
            && field(&self.user_id, Some(&t.user_id))
            && field(&self.protocol, wrapped(&p.protocol))
            && field(&self.hostname, hostname(t))
            && self.publish.is_none_or(|want| p.is_published() == want)
            && field(&self.http_version, wrapped(&p.http_version))
            && labels_match(&self.labels, &p.labels)
    }
}

impl ClientFilters {
    /// Whether the connected client `c` passes every filter (clients carry no labels, so any label filter
    /// excludes them).
    pub fn matches(&self, c: &ClientView) -> bool {
        self.matches_in(c, ONLINE)
    }

    /// Whether `c`, whose status is `status` (`offline` once gone), passes every filter.
    pub fn matches_in(&self, c: &ClientView, status: &str) -> bool {
        let d = &c.details;
        field(&self.id, Some(&c.id))
            && field(&self.status, Some(status))
            && field(&self.user_id, Some(&c.user_id))
            && field(&self.agent, wrapped(&d.agent))
            && field(&self.channel, wrapped(&d.channel))
            && field(&self.version, wrapped(&d.version))
            && field(&self.os, wrapped(&d.os))
            && field(&self.arch, wrapped(&d.arch))
            && field(&self.protocol_version, wrapped(&d.protocol_version))
            && labels_match(&self.labels, &BTreeMap::new())
    }
}

/// Applies `limit` (0 or absent = no limit).
pub fn take_limit<T>(items: impl Iterator<Item = T>, limit: Option<u64>) -> Vec<T> {
    match limit.filter(|&n| n > 0) {
        Some(n) => items.take(usize::try_from(n).unwrap_or(usize::MAX)).collect(),
        None => items.collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::percent::encode_component;
    use crate::proto::rstream::{some_str, ClientDetails, TunnelProperties};

    fn view(name: &str, publish: bool, labels: &[(&str, &str)]) -> TunnelView {
        let mut props = TunnelProperties {
            id: some_str(format!("id-{name}")),
            name: some_str(name),
            r#type: some_str("bytestream"),
            publish: Some(publish.into()),
            protocol: some_str("http"),
            host: publish.then(|| some_str(format!("{name}.t.localhost:8443"))).flatten(),
            ..Default::default()
        };
        props.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        TunnelView { props, client_id: "c1".into(), user_id: "pi".into() }
    }

    fn tunnel_filters(json: &str) -> TunnelFilters {
        let query = format!("params={}", encode_component(&format!(r#"{{"limit":0,"filters":{json}}}"#)));
        parse_params::<TunnelFilters>(Some(&query)).unwrap().filters.unwrap()
    }

    #[test]
    fn label_filters_match_values_and_null_means_key_exists() {
        let pi =
            view("pi", true, &[("application-protocol", "rstream.webtty"), ("rstream.webtty.label.role", "codex")]);
        let db = view("db", false, &[("application-protocol", "tcp")]);
        let role_codex = tunnel_filters(r#"{"labels":{"rstream.webtty.label.role":"codex"}}"#);
        assert!(role_codex.matches(&pi) && !role_codex.matches(&db));
        let has_role = tunnel_filters(r#"{"labels":{"rstream.webtty.label.role":null}}"#);
        assert!(has_role.matches(&pi) && !has_role.matches(&db));
        let any_app = tunnel_filters(r#"{"labels":{"application-protocol":null}}"#);
        assert!(any_app.matches(&pi) && any_app.matches(&db));
        let wrong = tunnel_filters(r#"{"labels":{"rstream.webtty.label.role":"other"}}"#);
        assert!(!wrong.matches(&pi));
    }

    #[test]
    fn field_filters_are_anded_equalities() {
        let pi = view("pi", true, &[]);
        let db = view("db", false, &[]);
        assert!(tunnel_filters(r#"{"name":"pi","status":"online","type":"bytestream"}"#).matches(&pi));
        assert!(!tunnel_filters(r#"{"name":"pi","status":"offline"}"#).matches(&pi));
        assert!(tunnel_filters(r#"{"publish":false}"#).matches(&db));
        assert!(!tunnel_filters(r#"{"publish":false}"#).matches(&pi));
        assert!(tunnel_filters(r#"{"hostname":"pi.t.localhost","client_id":"c1","user_id":"pi"}"#).matches(&pi));
        assert!(!tunnel_filters(r#"{"hostname":"pi.t.localhost"}"#).matches(&db));
        assert!(tunnel_filters(r#"{"name":"","protocol":"http","unknown_key":1}"#).matches(&db));
        assert!(!tunnel_filters(r#"{"http_version":"h2c"}"#).matches(&pi));
    }

    #[test]
    fn client_filters_match_details() {
        let c = ClientView { id: "c1".into(), details: ClientDetails::this_binary(""), user_id: "pi".into() };
        let f: ClientFilters = serde_json::from_str(r#"{"agent":"rstream-rs","status":"online"}"#).unwrap();
        assert!(f.matches(&c));
        let f: ClientFilters = serde_json::from_str(r#"{"os":"plan9"}"#).unwrap();
        assert!(!f.matches(&c));
        let f: ClientFilters = serde_json::from_str(r#"{"labels":{"x":null}}"#).unwrap();
        assert!(!f.matches(&c));
    }

    #[test]
    fn params_parse_limit_defaults_and_report_bad_json() {
        let p = parse_params::<TunnelFilters>(None).unwrap();
        assert!(p.limit.is_none() && p.filters.is_none());
        let p = parse_params::<TunnelFilters>(Some("params=%7B%22limit%22%3A2%7D")).unwrap();
        assert_eq!(p.limit, Some(2));
        assert_eq!(take_limit(0..10, p.limit), vec![0, 1]);
        assert_eq!(take_limit(0..3, Some(0)).len(), 3);
        let err = parse_params::<TunnelFilters>(Some("params=%7Bnope")).unwrap_err();
        assert!(err.contains("invalid params JSON"), "{err}");
        assert!(parse_params::<TunnelFilters>(Some("params=%zz")).is_err());
    }

    #[test]
    fn watch_params_carry_both_filter_sets_and_status_follows_the_event() {
        let query = format!("params={}", encode_component(r#"{"tunnels":{"name":"pi","status":"offline"}}"#));
        let w: WatchParams = parse_params_as(Some(&query)).unwrap();
        assert!(w.clients.is_none());
        let tunnels = w.tunnels.unwrap();
        let pi = view("pi", true, &[]);
        assert!(!tunnels.matches(&pi) && tunnels.matches_in(&pi, "offline"));
        let empty: WatchParams = parse_params_as(None).unwrap();
        assert!(empty.clients.is_none() && empty.tunnels.is_none());
        assert!(parse_params_as::<WatchParams>(Some("params=%5B1%5D")).is_err(), "an array is not WatchParams");
    }
}
