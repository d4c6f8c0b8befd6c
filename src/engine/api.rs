//! The REST API on the engine's TLS port (ALPN `http/1.1`), bearer-JWT protected:
//!
//! | request | permission | answer |
//! |---|---|---|
//! | `GET /api/auth` | any valid token | `{"sub", "permissions", "exp"?}` |
//! | `GET /api/tunnels?params=…` | `tunnels.resources.read-only` | array of `TunnelInventory` |
//! | `GET /api/tunnels/{id}` | `tunnels.resources.read-only` | one `TunnelInventory` (by id or name) |
//! | `DELETE /api/tunnels/{id}` | read + the owner's create-delete, or `tunnels.tunnels.admin` | the evicted tunnel |
//! | `GET /api/clients?params=…` | `tunnels.resources.read-only` | array of `ClientProperties` |
//! | `GET /metrics` | `tunnels.resources.read-only` | Prometheus text |
//! | `GET /api/sse`, `/api/websocket` | `tunnels.resources.read-only` | event stream (`watch`, `events`) |
//!
//! The owner of a tunnel is the token subject (`sub`) that registered it; ids and names match case-insensitively.
//! Errors are `{"error": "…"}` with the matching status (400, 401 + `WWW-Authenticate`, 403, 404, 405).

use serde_json::{json, Value};

use super::auth::{RESOURCES_READ_ONLY, TUNNELS_ADMIN, TUNNELS_CREATE_DELETE};
use super::filters::{parse_params, take_limit, ClientFilters, TunnelFilters};
use super::inventory::{client_json, tunnel_json};
use super::jwt::Claims;
use super::Engine;
use crate::http::percent::percent_decode_utf8;
use crate::http::{RequestHead, ResponseHead};
use crate::proto::rstream::opt_str;

/// A computed answer: status, content type, body.
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl ApiResponse {
    fn json(status: u16, value: &Value) -> Self {
        let mut body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        ApiResponse { status, content_type: "application/json", body }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: impl std::fmt::Display) -> Self {
        ApiResponse::json(status, &json!({ "error": message.to_string() }))
    }

    /// The response head (with `WWW-Authenticate` on 401, `Allow` on 405, no caching).
    pub fn head(&self) -> ResponseHead {
        let mut head = ResponseHead::new(self.status)
            .header("Content-Type", self.content_type)
            .header("Cache-Control", "no-store");
        if self.status == 401 {
            head = head.header("WWW-Authenticate", "Bearer realm=\"rstream\"");
        }
        if self.status == 405 {
            head = head.header("Allow", "GET, HEAD, DELETE");
        }
        head
    }
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(req: &RequestHead) -> Option<&str> {
    let value = req.headers.get("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Answers one API request.
pub fn handle(engine: &Engine, req: &RequestHead) -> ApiResponse {
    let path = req.path();
    let known = path == "/" || path == "/metrics" || path == "/api/auth" || path.starts_with("/api/");
    if !known {
        return ApiResponse::error(404, format!("no such endpoint: {path}"));
    }
    let is_delete = req.method == "DELETE" && path.starts_with("/api/tunnels/");
    if req.method != "GET" && req.method != "HEAD" && !is_delete {
        return ApiResponse::error(405, format!("method {} not allowed on {path}", req.method));
    }
    if path == "/" {
        let text = format!("rstream engine {}\n", env!("CARGO_PKG_VERSION"));
        return ApiResponse { status: 200, content_type: "text/plain; charset=utf-8", body: text.into_bytes() };
    }
    let permission = (path != "/api/auth").then_some(RESOURCES_READ_ONLY);
    let claims = match engine.auth.authorize(bearer(req), permission) {
        Ok(claims) => claims,
        Err(e) => {
            engine.note_auth_failure();
            return ApiResponse::error(e.code(), e);
        }
    };
    if is_delete {
        return delete_tunnel(engine, &claims, &path["/api/tunnels/".len()..]);
    }
    match path {
        "/api/auth" => {
            ApiResponse::json(200, &json!({ "sub": claims.sub, "permissions": claims.permissions, "exp": claims.exp }))
        }
        "/metrics" => ApiResponse {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: engine.render_metrics().into_bytes(),
        },
        "/api/tunnels" => list_tunnels(engine, req.query()),
        "/api/clients" => list_clients(engine, req.query()),
        _ => match path.strip_prefix("/api/tunnels/") {
            Some(id) => one_tunnel(engine, id),
            None => ApiResponse::error(404, format!("no such endpoint: {path}")),
        },
    }
}

fn list_tunnels(engine: &Engine, query: Option<&str>) -> ApiResponse {
    let params = match parse_params::<TunnelFilters>(query) {
        Ok(p) => p,
        Err(e) => return ApiResponse::error(400, e),
    };
    let filters = params.filters.unwrap_or_default();
    let tunnels = engine.registry.tunnels();
    let items = take_limit(tunnels.iter().filter(|t| filters.matches(t)).map(tunnel_json), params.limit);
    ApiResponse::json(200, &Value::Array(items))
}

fn list_clients(engine: &Engine, query: Option<&str>) -> ApiResponse {
    let params = match parse_params::<ClientFilters>(query) {
        Ok(p) => p,
        Err(e) => return ApiResponse::error(400, e),
    };
    let filters = params.filters.unwrap_or_default();
    let clients = engine.registry.clients();
    let items = take_limit(clients.iter().filter(|c| filters.matches(c)).map(client_json), params.limit);
    ApiResponse::json(200, &Value::Array(items))
}

fn tunnel_id(raw_id: &str) -> Result<String, ApiResponse> {
    match percent_decode_utf8(raw_id) {
        Ok(id) if !id.is_empty() && !id.contains('/') => Ok(id),
        _ => Err(ApiResponse::error(400, format!("invalid tunnel id {raw_id:?}"))),
    }
}

/// `DELETE /api/tunnels/{id or name}`: the engine drops the tunnel, frees its name and tells its agent
/// (`CloseTunnelRsp`). On top of the read permission it takes `tunnels.tunnels.create-delete` held by the
/// tunnel's owner (the token subject that registered it), or `tunnels.tunnels.admin`: nobody else can evict a
/// device and register its name to receive its sessions.
fn delete_tunnel(engine: &Engine, claims: &Claims, raw_id: &str) -> ApiResponse {
    let id = match tunnel_id(raw_id) {
        Ok(id) => id,
        Err(answer) => return answer,
    };
    let Some(view) = engine.registry.find(&id) else {
        return ApiResponse::error(404, format!("tunnel {id:?} not found"));
    };
    let owner = claims.allows(TUNNELS_CREATE_DELETE) && view.user_id == claims.sub;
    if !owner && !claims.allows(TUNNELS_ADMIN) {
        return ApiResponse::error(
            403,
            format!(
                "tunnel {id:?} belongs to another subject: deleting it takes its owner's token with \
                 {TUNNELS_CREATE_DELETE}, or {TUNNELS_ADMIN}"
            ),
        );
    }
    let tunnel_id = opt_str(&view.props.id).unwrap_or_default();
    engine.registry.evict_tunnel(tunnel_id);
    log_info!("tunnel {tunnel_id} evicted through the API by {:?}", claims.sub);
    ApiResponse::json(200, &tunnel_json(&view))
}

fn one_tunnel(engine: &Engine, raw_id: &str) -> ApiResponse {
    let id = match tunnel_id(raw_id) {
        Ok(id) => id,
        Err(answer) => return answer,
    };
    match engine.registry.find(&id) {
        Some(view) => ApiResponse::json(200, &tunnel_json(&view)),
        None => ApiResponse::error(404, format!("tunnel {id:?} not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::auth::ALL_PERMISSIONS;
    use crate::engine::routing::PublicHosts;
    use crate::proto::rstream::{some_str, ClientDetails, TunnelProperties};

    fn engine() -> Engine {
        Engine::new(b"0123456789abcdef0123456789abcdef".to_vec(), PublicHosts::new(&[], 8443))
    }

    fn get(engine: &Engine, target: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = RequestHead::new("GET", target);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let rsp = handle(engine, &req);
        let body = serde_json::from_slice(&rsp.body).unwrap_or(Value::Null);
        (rsp.status, body)
    }

    #[test]
    fn api_requires_a_token_with_the_read_permission() {
        let e = engine();
        assert_eq!(get(&e, "/api/tunnels", None).0, 401);
        assert_eq!(get(&e, "/api/tunnels", Some("garbage")).0, 401);
        let device = e.auth.mint("pi", &[TUNNELS_CREATE_DELETE], None);
        let (status, body) = get(&e, "/api/tunnels", Some(&device));
        assert_eq!(status, 403);
        assert!(body["error"].as_str().unwrap().contains("tunnels.resources.read-only"));
        assert_eq!(get(&e, "/api/auth", Some(&device)).0, 200, "any valid token passes /api/auth");
        assert_eq!(get(&e, "/api/nope", Some(&device)).0, 403);
        assert_eq!(handle(&e, &RequestHead::new("DELETE", "/api/tunnels")).status, 405);
        assert_eq!(handle(&e, &RequestHead::new("POST", "/api/tunnels/x")).status, 405);
        assert_eq!(get(&e, "/elsewhere", None).0, 404);
    }

    #[test]
    fn tunnels_and_clients_are_listed_with_filters_and_limit() {
        let e = engine();
        let token = e.auth.mint("op", &ALL_PERMISSIONS, None);
        let (tx, _rx) = async_channel::bounded(4);
        let client = e.registry.add_client(ClientDetails::this_binary(""), "pi".into(), tx);
        for (name, role) in [("a", "codex"), ("b", "web"), ("c", "codex")] {
            let mut props = TunnelProperties { name: some_str(name), ..Default::default() };
            props.labels.insert("role".into(), role.into());
            e.registry.open_tunnel(&client, props, |n| e.hosts.tunnel_authority(n)).unwrap();
        }
        let (status, all) = get(&e, "/api/tunnels", Some(&token));
        assert_eq!((status, all.as_array().unwrap().len()), (200, 3));
        let q = "/api/tunnels?params=%7B%22limit%22%3A1%2C%22filters%22%3A%7B%22labels%22%3A%7B%22role%22%3A%22codex%22%7D%7D%7D";
        let (_, one) = get(&e, q, Some(&token));
        assert_eq!(one.as_array().unwrap().len(), 1);
        assert_eq!(one[0]["labels"]["role"], "codex");
        let (status, b) = get(&e, "/api/tunnels/b", Some(&token));
        assert_eq!((status, b["name"].as_str()), (200, Some("b")));
        assert_eq!(get(&e, "/api/tunnels/zzz", Some(&token)).0, 404);
        assert_eq!(get(&e, "/api/tunnels?params=%7B", Some(&token)).0, 400);
        let (_, clients) = get(&e, "/api/clients", Some(&token));
        assert_eq!(clients[0]["id"], client.as_str());
        let reader = e.auth.mint("op", &[RESOURCES_READ_ONLY], None);
        let delete = |token: &str, target: &str| {
            let req = RequestHead::new("DELETE", target).header("Authorization", format!("Bearer {token}"));
            handle(&e, &req).status
        };
        assert_eq!(delete(&reader, "/api/tunnels/b"), 403, "reading is not evicting");
        let stranger = e.auth.mint("op", &[RESOURCES_READ_ONLY, TUNNELS_CREATE_DELETE], None);
        assert_eq!(delete(&stranger, "/api/tunnels/b"), 403, "another subject's tunnel");
        let owner = e.auth.mint("pi", &[RESOURCES_READ_ONLY, TUNNELS_CREATE_DELETE], None);
        assert_eq!(delete(&owner, "/api/tunnels/b"), 200);
        assert_eq!(delete(&owner, "/api/tunnels/b"), 404);
        let admin = e.auth.mint("root", &[RESOURCES_READ_ONLY, TUNNELS_ADMIN], None);
        assert_eq!(delete(&admin, "/api/tunnels/c"), 200, "an admin evicts anyone's tunnel");
        let metrics =
            handle(&e, &RequestHead::new("GET", "/metrics").header("Authorization", format!("Bearer {token}")));
        assert!(String::from_utf8(metrics.body).unwrap().contains("rstream_engine_tunnels 1"));
    }
}
