//! `--filter` syntax, as upstream: comma-separated `key=value` pairs, equality only, all ANDed.
//!
//! Keys: `id`, `name`, `type`, `status`, `client_id`, `user_id`, `protocol`, `hostname`, `publish` (bool),
//! `http_version`, and `labels.<k>` / `label.<k>` where a value of `*` or nothing means "label present, any
//! value" (sent as JSON `null`). Filtering happens in the engine: the result is the `filters` object of
//! `GET /api/tunnels?params={"filters":…}`. For WebTTY listings a bare word without `=` is a case-insensitive
//! name match instead (comma = OR), like upstream's MCP tool. [`parse_clients`] reads the same syntax with the
//! client keys (`ListClientsFilters`), for `rstream events --client-filter`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Filters sent to the engine (`ListTunnelsFilters`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TunnelFilters {
    /// Tunnel id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tunnel name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `bytestream` | `datagram`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `online`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Owning client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Owning user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Tunnel protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Published host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Published or private.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<bool>,
    /// HTTP version of HTTP tunnels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    /// Label constraints; `None` = key present with any value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
}

/// Client filters sent to the engine (`ListClientsFilters`), from [`parse_clients`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientFilters {
    /// Client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `online`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Owning user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Agent name (`rstream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Release channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Agent version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Operating system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// CPU architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Protocol version the client announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// Label constraints; `None` = key present with any value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
}

/// A parsed `--filter`: engine-side filters plus (WebTTY listings only) name words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Sent to the engine.
    pub tunnels: TunnelFilters,
    /// Bare words: case-insensitive substring matches on names (any one matches).
    pub names: Vec<String>,
}

/// A `--filter` that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid filter: {}", self.0)
    }
}

impl std::error::Error for FilterError {}

/// Whether bare words (no `=`) are accepted as name matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BareWords {
    /// `tunnels list`: every part must be `key=value`.
    Refuse,
    /// `webtty list` / MCP: a bare word matches names.
    MatchNames,
}

/// Parses a `--filter` string.
pub fn parse(filter: &str, bare: BareWords) -> Result<Filter, FilterError> {
    let mut out = Filter::default();
    for part in filter.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            match bare {
                BareWords::MatchNames => {
                    out.names.push(part.to_lowercase());
                    continue;
                }
                BareWords::Refuse => return Err(FilterError(format!("expected key=value, got {part:?}"))),
            }
        };
        let (key, value) = (key.trim(), value.trim());
        let t = &mut out.tunnels;
        let slot = match key {
            "id" => &mut t.id,
            "name" => &mut t.name,
            "type" => &mut t.kind,
            "status" => &mut t.status,
            "client_id" => &mut t.client_id,
            "user_id" => &mut t.user_id,
            "protocol" => &mut t.protocol,
            "hostname" => &mut t.hostname,
            "http_version" => &mut t.http_version,
            "publish" => {
                t.publish = Some(parse_bool(value)?);
                continue;
            }
            _ => {
                label(&mut t.labels, key, value)?;
                continue;
            }
        };
        *slot = Some(value.to_owned());
    }
    Ok(out)
}

/// Parses a `--client-filter` string: the `--filter` syntax with the client keys `id`, `status`, `user_id`,
/// `agent`, `channel`, `version`, `os`, `arch`, `protocol_version` and `labels.<k>` / `label.<k>`.
pub fn parse_clients(filter: &str) -> Result<ClientFilters, FilterError> {
    let mut c = ClientFilters::default();
    for part in filter.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) =
            part.split_once('=').ok_or_else(|| FilterError(format!("expected key=value, got {part:?}")))?;
        let (key, value) = (key.trim(), value.trim());
        let slot = match key {
            "id" => &mut c.id,
            "status" => &mut c.status,
            "user_id" => &mut c.user_id,
            "agent" => &mut c.agent,
            "channel" => &mut c.channel,
            "version" => &mut c.version,
            "os" => &mut c.os,
            "arch" => &mut c.arch,
            "protocol_version" => &mut c.protocol_version,
            _ => {
                label(&mut c.labels, key, value)?;
                continue;
            }
        };
        *slot = Some(value.to_owned());
    }
    Ok(c)
}

/// Records a `labels.<k>=v` / `label.<k>=v` pair (`*` or nothing: any value); any other key is unknown.
fn label(labels: &mut BTreeMap<String, Option<String>>, key: &str, value: &str) -> Result<(), FilterError> {
    match key.strip_prefix("labels.").or_else(|| key.strip_prefix("label.")) {
        Some(k) if !k.is_empty() => {
            let v = (!value.is_empty() && value != "*").then(|| value.to_owned());
            labels.insert(k.to_owned(), v);
            Ok(())
        }
        _ => Err(FilterError(format!("unknown filter key {key:?}"))),
    }
}

fn parse_bool(v: &str) -> Result<bool, FilterError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" => Ok(true),
        "0" | "f" | "false" | "no" | "n" => Ok(false),
        _ => Err(FilterError(format!("publish expects a boolean, got {v:?}"))),
    }
}

impl Filter {
    /// Whether any of the name words matches one of `names` (true when there are no words).
    pub fn matches_names<'a>(&self, names: impl IntoIterator<Item = &'a str> + Clone) -> bool {
        self.names.is_empty()
            || self.names.iter().any(|w| names.clone().into_iter().any(|n| n.to_lowercase().contains(w.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_filter_becomes_a_label_constraint() {
        let f = parse("labels.rstream.webtty.label.role=codex", BareWords::Refuse).unwrap();
        assert_eq!(f.tunnels.labels.get("rstream.webtty.label.role"), Some(&Some("codex".to_owned())));
        let json = serde_json::to_string(&f.tunnels).unwrap();
        assert_eq!(json, r#"{"labels":{"rstream.webtty.label.role":"codex"}}"#);
    }

    #[test]
    fn pairs_are_anded_and_last_wins() {
        let f = parse(" name=a , status=online,publish=no,name=b, label.env=*, labels.x= ", BareWords::Refuse).unwrap();
        let json = serde_json::to_string(&f.tunnels).unwrap();
        assert_eq!(json, r#"{"name":"b","status":"online","publish":false,"labels":{"env":null,"x":null}}"#);
    }

    #[test]
    fn bad_filters_are_explained() {
        assert_eq!(
            parse("colour=red", BareWords::Refuse).unwrap_err().to_string(),
            r#"invalid filter: unknown filter key "colour""#
        );
        assert!(parse("shell", BareWords::Refuse)
            .unwrap_err()
            .to_string()
            .contains(r#"expected key=value, got "shell""#));
        assert!(parse("publish=maybe", BareWords::Refuse).is_err());
        assert!(parse("labels.=x", BareWords::Refuse).is_err());
        assert_eq!(parse("", BareWords::Refuse).unwrap(), Filter::default());
    }

    #[test]
    fn client_filters_take_the_client_keys() {
        let c = parse_clients("os=linux, arch=arm64,label.site=*,version=1.4.5").unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"version":"1.4.5","os":"linux","arch":"arm64","labels":{"site":null}}"#);
        assert_eq!(parse_clients("name=x").unwrap_err().to_string(), r#"invalid filter: unknown filter key "name""#);
        assert!(parse_clients("linux").is_err());
        assert_eq!(parse_clients("").unwrap(), ClientFilters::default());
    }

    #[test]
    fn bare_words_match_names_case_insensitively() {
        let f = parse("Mini,pi", BareWords::MatchNames).unwrap();
        assert!(f.matches_names(["homelab-macmini"]));
        assert!(f.matches_names(["x", "raspberry-PI"]));
        assert!(!f.matches_names(["router"]));
        assert!(Filter::default().matches_names(["anything"]));
    }
}
