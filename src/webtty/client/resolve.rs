//! `rstrm://NAME` → the tunnel to dial and its exec path, from the engine's WebTTY inventory.
//!
//! NAME may be a tunnel id, tunnel name, server id/name or published host (upstream's matching, see
//! [`crate::operator::inventory::resolve_server`]); several matches are an error naming the candidates, an
//! offline server is an error. When the inventory cannot be read (no engine API permission), NAME is dialed
//! as a tunnel name directly and the exec path stays `/`.

use super::super::error::WebttyError;
use super::connect::ConnectOptions;
use super::target::{normalize_exec_path, Target};
use crate::config;
use crate::operator::api::EngineApi;
use crate::operator::filter::Filter;
use crate::operator::inventory::{list_webtty_servers, resolve_server};

/// Resolves tunnel targets through the inventory; direct targets come back unchanged.
pub async fn resolve(target: Target, opts: &ConnectOptions) -> Result<Target, WebttyError> {
    let Target::Tunnel { name, path } = &target else { return Ok(target) };
    let fail = |e: &dyn std::fmt::Display| WebttyError::Connect(format!("rstrm://{name}: {e}"));
    let api = EngineApi::from_context(&config::resolve().map_err(|e| fail(&e))?).map_err(|e| fail(&e))?;
    let servers = match list_webtty_servers(&api, &Filter::default()).await {
        Ok(servers) => servers,
        Err(e) => {
            log_debug!("webtty inventory unavailable ({e}); dialing tunnel {name:?} directly");
            return Ok(target);
        }
    };
    let server = resolve_server(&servers, name).map_err(WebttyError::BadTarget)?;
    if server.status != "online" {
        return Err(WebttyError::Connect(format!("WebTTY server {:?} is not online", server.target)));
    }
    if !server.has("exec") {
        return Err(WebttyError::Connect(format!("WebTTY server {:?} does not advertise exec", server.target)));
    }
    let dial = if server.tunnel_name.is_empty() { server.tunnel_id.clone() } else { server.tunnel_name.clone() };
    let path = match &opts.exec_path {
        None if path == "/" => normalize_exec_path(&server.exec_path).map_err(WebttyError::BadTarget)?,
        _ => path.clone(),
    };
    Ok(Target::Tunnel { name: dial, path })
}
