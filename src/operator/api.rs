//! The engine's REST API, as the operator CLI and the MCP server use it.
//!
//! Same host and port as the tunnel protocol, ALPN `http/1.1`, `Authorization: Bearer <token>`; every call opens
//! its own TLS connection and must finish within [`API_TIMEOUT`]. Filtering happens in the engine
//! (`?params={"filters":…}`). Non-2xx answers become `api GET /api/tunnels: <message> (<status>)` as upstream.

use std::fmt;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::filter::TunnelFilters;
use super::inventory::TunnelInventory;
use crate::config::ResolvedContext;
use crate::http::{date::parse_http_date, percent::encode_component, ClientConn, RequestHead};
use crate::limits::{API_TIMEOUT, MAX_HTTP_BUFFERED_BODY};
use crate::proto::rstream::ALPN_HTTP1;
use crate::transport::{with_deadline, DialError, EngineEndpoint};

/// Why an API call failed.
#[derive(Debug)]
pub enum ApiError {
    /// The context cannot be used or the engine cannot be reached.
    Connect(String),
    /// The engine answered with a non-2xx status.
    Status {
        /// `GET /api/tunnels`.
        request: String,
        /// HTTP status.
        status: u16,
        /// The engine's message (JSON `error` field or the body, trimmed).
        message: String,
    },
    /// The answer is not the JSON we expect.
    Decode(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Connect(m) | ApiError::Decode(m) => f.write_str(m),
            ApiError::Status { request, status, message } => write!(f, "api {request}: {message} ({status})"),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<DialError> for ApiError {
    fn from(e: DialError) -> Self {
        ApiError::Connect(e.to_string())
    }
}

/// A successful answer: its body and the engine's `Date` (for clock checks).
#[derive(Debug)]
pub struct ApiResponse {
    /// Raw JSON body.
    pub body: Vec<u8>,
    /// The engine's clock, from the `Date` header.
    pub date: Option<SystemTime>,
}

/// `params` query object of list calls.
#[derive(Serialize)]
struct ListParams<'a, F: Serialize> {
    filters: &'a F,
}

/// A client of one engine's REST API.
#[derive(Clone, Debug)]
pub struct EngineApi {
    endpoint: EngineEndpoint,
}

impl EngineApi {
    /// The API of the engine a context points at.
    pub fn from_context(ctx: &ResolvedContext) -> Result<EngineApi, ApiError> {
        Ok(EngineApi { endpoint: EngineEndpoint::from_context(ctx)? })
    }

    /// The API of `endpoint`.
    pub fn new(endpoint: EngineEndpoint) -> EngineApi {
        EngineApi { endpoint }
    }

    /// The endpoint (for dialing tunnels with the same context).
    pub fn endpoint(&self) -> &EngineEndpoint {
        &self.endpoint
    }

    /// `GET path` with the bearer token; 2xx answers only.
    pub async fn get(&self, path: &str) -> Result<ApiResponse, ApiError> {
        let request = format!("GET {}", path.split_once('?').map_or(path, |(p, _)| p));
        let what = format!("api {request}");
        let exchange = async {
            let tls = self.endpoint.connect(ALPN_HTTP1).await?;
            let mut conn = ClientConn::new(tls, self.endpoint.tls.server_name.clone());
            let head = RequestHead::new("GET", path)
                .header("Authorization", format!("Bearer {}", self.endpoint.token.expose()))
                .header("Accept", "application/json");
            let resp = conn.request(&head, &[]).await.map_err(std::io::Error::other)?;
            let body = conn.read_body_to_vec(MAX_HTTP_BUFFERED_BODY).await.map_err(std::io::Error::other)?;
            Ok((resp, body))
        };
        let (resp, body) =
            with_deadline(API_TIMEOUT, &what, exchange).await.map_err(|e| ApiError::Connect(format!("{what}: {e}")))?;
        if !(200..300).contains(&resp.status) {
            return Err(ApiError::Status { request, status: resp.status, message: error_message(&body, resp.status) });
        }
        let date = resp.headers.get("date").and_then(parse_http_date);
        Ok(ApiResponse { body, date })
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let resp = self.get(path).await?;
        serde_json::from_slice(&resp.body).map_err(|e| ApiError::Decode(format!("api GET {path}: invalid JSON: {e}")))
    }

    /// `GET /api/auth`: is the token accepted? Returns the engine's clock.
    pub async fn auth(&self) -> Result<Option<SystemTime>, ApiError> {
        Ok(self.get("/api/auth").await?.date)
    }

    /// `GET /api/tunnels` filtered by the engine.
    pub async fn list_tunnels(&self, filters: &TunnelFilters) -> Result<Vec<TunnelInventory>, ApiError> {
        self.get_json(&list_path("/api/tunnels", filters)?).await
    }

    /// `GET /api/tunnels/{id}`.
    pub async fn get_tunnel(&self, id: &str) -> Result<TunnelInventory, ApiError> {
        self.get_json(&format!("/api/tunnels/{}", encode_component(id))).await
    }

    /// `GET /api/clients` (ClientProperties objects, kept as JSON).
    pub async fn list_clients(&self) -> Result<Vec<serde_json::Value>, ApiError> {
        self.get_json(&list_path("/api/clients", &serde_json::json!({}))?).await
    }
}

fn list_path<F: Serialize>(base: &str, filters: &F) -> Result<String, ApiError> {
    let params = serde_json::to_string(&ListParams { filters }).map_err(|e| ApiError::Decode(e.to_string()))?;
    Ok(format!("{base}?params={}", encode_component(&params)))
}

/// The engine's error text: `{"error": "…"}`, else the trimmed body (first 4 KiB), else the reason phrase.
fn error_message(body: &[u8], status: u16) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = v.get("error").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).trim().to_owned();
    if text.is_empty() {
        crate::http::reason_phrase(status).to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::filter::{parse, BareWords};

    #[test]
    fn list_path_carries_filters_as_url_encoded_json() {
        let f = parse("labels.role=codex,publish=false", BareWords::Refuse).unwrap();
        let path = list_path("/api/tunnels", &f.tunnels).unwrap();
        let (base, q) = path.split_once("?params=").unwrap();
        assert_eq!(base, "/api/tunnels");
        let decoded = crate::http::percent::decode_query_component(q).unwrap();
        assert_eq!(decoded, r#"{"filters":{"publish":false,"labels":{"role":"codex"}}}"#);
    }

    #[test]
    fn error_messages_prefer_the_engine_json() {
        assert_eq!(error_message(br#"{"error":"token expired"}"#, 401), "token expired");
        assert_eq!(error_message(b"  plain text \n", 500), "plain text");
        assert_eq!(error_message(b"", 404), "Not Found");
        let e = ApiError::Status { request: "GET /api/tunnels".into(), status: 401, message: "token expired".into() };
        assert_eq!(e.to_string(), "api GET /api/tunnels: token expired (401)");
    }
}
