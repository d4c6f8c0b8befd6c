//! Checks that talk to the engine: address, DNS, TLS handshake, REST inventory, clock skew.

use std::time::{Duration, Instant, SystemTime};

use super::{cert, Check};
use crate::config::ResolvedContext;
use crate::limits::{API_TIMEOUT, DIAL_TIMEOUT, DNS_TIMEOUT};
use crate::operator::api::{ApiError, EngineApi};
use crate::operator::filter::TunnelFilters;
use crate::proto::rstream::ALPN_HTTP1;
use crate::transport::{with_deadline, EngineEndpoint};

/// Clock skew beyond this is a warning (token expiry and certificate dates get fuzzy).
const CLOCK_WARN_SKEW: Duration = Duration::from_secs(5);
/// Clock skew beyond this is a failure.
const CLOCK_FAIL_SKEW: Duration = Duration::from_secs(120);

/// Runs `engine_address`, `dns`, `tls`, `engine_clients`, `engine_tunnels` and `clock`.
pub async fn check_engine(ctx: &ResolvedContext, checks: &mut Vec<Check>) {
    let (host, port) = (ctx.engine_host().to_owned(), ctx.engine_port());
    checks.push(
        Check::pass("engine_address", "engine address configured")
            .detail("address", &ctx.engine)
            .detail("host", &host)
            .detail("port", port),
    );
    if !check_dns(&host, port, checks).await || !check_tls(ctx, checks).await {
        return unreachable(ctx, checks);
    }
    let api = match EngineApi::from_context(ctx) {
        Ok(api) => api,
        Err(e) => {
            for name in ["engine_clients", "engine_tunnels", "clock"] {
                checks.push(Check::skip(name, format!("cannot call the API: {e}")));
            }
            return;
        }
    };
    check_inventory(&api, checks).await;
    check_clock(&api, checks).await;
}

/// The engine could not be reached (DNS or TLS failed): its inventory is unknown, which is a failure in itself;
/// only `clock`, a comparison with the engine, is skipped.
fn unreachable(ctx: &ResolvedContext, checks: &mut Vec<Check>) {
    let hint = format!(
        "engine unreachable: start it (`rstream engine serve`) or check the engine address {:?} \
         (`rstream context show`)",
        ctx.engine
    );
    for name in ["engine_clients", "engine_tunnels"] {
        checks.push(Check::fail(name, "engine not reachable: cannot list its inventory", &hint));
    }
    checks.push(Check::skip("clock", "engine not reachable"));
}

async fn check_dns(host: &str, port: u16, checks: &mut Vec<Check>) -> bool {
    let lookup = async_net::resolve((host, port));
    match with_deadline(DNS_TIMEOUT, format_args!("resolving {host}"), lookup).await {
        Ok(addrs) if !addrs.is_empty() => {
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            checks.push(
                Check::pass("dns", "engine host resolves").detail("host", host).detail("addresses", list.join(",")),
            );
            true
        }
        Ok(_) | Err(_) => {
            let hint = "check the engine host name in the context (`rstream context show`) and this machine's DNS";
            checks.push(Check::fail("dns", format!("engine host {host} does not resolve"), hint).detail("host", host));
            false
        }
    }
}

async fn check_tls(ctx: &ResolvedContext, checks: &mut Vec<Check>) -> bool {
    // The handshake needs no token; give the endpoint a placeholder so a missing token (reported by `token`)
    // does not hide TLS problems.
    let mut probe_ctx = ctx.clone();
    probe_ctx.token = Some("doctor-probe".into());
    let endpoint = match EngineEndpoint::from_context(&probe_ctx) {
        Ok(e) => e,
        Err(e) => {
            let hint = "fix transport.tls.caFile in the context (`rstream context create … --engine-tls-ca-file`)";
            checks.push(Check::fail("tls", e.to_string(), hint));
            return false;
        }
    };
    let started = Instant::now();
    let result = endpoint.connect(ALPN_HTTP1).await;
    let mut c = match result {
        Ok(tls) => {
            let c = Check::pass("tls", "TLS handshake succeeded")
                .detail("version", "TLS 1.3")
                .detail("handshakeMs", started.elapsed().as_millis());
            match tls.peer_certificate().and_then(cert::not_after) {
                Some(expiry) => c.detail("certNotAfter", crate::http::date::format_rfc3339(expiry)),
                None => c,
            }
        }
        Err(e) => Check::fail("tls", e.to_string(), tls_hint(&e.to_string(), ctx)),
    };
    c = c.detail("serverName", &endpoint.tls.server_name);
    match &ctx.ca_file {
        Some(ca) => {
            c = c.detail("caFile", ca.display());
            if let Some(expiry) = std::fs::read(ca).ok().and_then(|pem| cert::ca_not_after(&pem)) {
                c = c.detail("caNotAfter", crate::http::date::format_rfc3339(expiry));
            }
        }
        None if ctx.insecure_skip_verify => c = c.detail("verification", "DISABLED (insecureSkipVerify)"),
        None => {}
    }
    let ok = c.status == super::Status::Pass;
    checks.push(c);
    ok
}

fn tls_hint(error: &str, ctx: &ResolvedContext) -> String {
    let e = error.to_lowercase();
    if e.contains("refused") {
        format!("nothing listens on {}: start the engine (`rstream engine serve`) or fix the address", ctx.engine)
    } else if e.contains("timed out") {
        format!("no answer from {} within {DIAL_TIMEOUT:?}: check firewalls and the port", ctx.engine)
    } else if e.contains("certificate") || e.contains("verif") || e.contains("ca ") {
        "the engine's certificate does not verify: point transport.tls.caFile at the CA that signed it \
         (the engine's state dir has ca.pem), and check the server name"
            .to_owned()
    } else {
        "check the engine address, port and CA in `rstream context show`".to_owned()
    }
}

fn api_hint(e: &ApiError) -> String {
    match e {
        ApiError::Status { status: 401, .. } => {
            "the engine rejects the token: mint a new one with `rstream engine token`".into()
        }
        ApiError::Status { status: 403, .. } => {
            "the token lacks tunnels.resources.read-only: mint an operator token with that permission".into()
        }
        _ => format!("the engine's REST API did not answer within {API_TIMEOUT:?}"),
    }
}

async fn check_inventory(api: &EngineApi, checks: &mut Vec<Check>) {
    match api.list_clients().await {
        Ok(clients) => {
            checks.push(Check::pass("engine_clients", "engine clients listed").detail("count", clients.len()))
        }
        Err(e) => checks.push(Check::fail("engine_clients", e.to_string(), api_hint(&e))),
    }
    match api.list_tunnels(&TunnelFilters::default()).await {
        Ok(tunnels) => {
            let online = tunnels.iter().filter(|t| t.status == "online").count();
            let c = Check::pass("engine_tunnels", "engine tunnels listed")
                .detail("total", tunnels.len())
                .detail("online", online);
            checks.push(c);
        }
        Err(e) => checks.push(Check::fail("engine_tunnels", e.to_string(), api_hint(&e))),
    }
}

async fn check_clock(api: &EngineApi, checks: &mut Vec<Check>) {
    let sent = SystemTime::now();
    let date = match api.auth().await {
        Ok(Some(d)) => d,
        Ok(None) => return checks.push(Check::skip("clock", "the engine sent no Date header")),
        Err(e) => return checks.push(Check::skip("clock", format!("cannot read the engine's clock: {e}"))),
    };
    // The Date header has second precision: compare against the middle of the exchange, allow one second.
    let local = sent + SystemTime::now().duration_since(sent).unwrap_or_default() / 2;
    let skew = local.duration_since(date).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    let skew = skew.saturating_sub(Duration::from_secs(1));
    let secs = format!("{:.1}", skew.as_secs_f64());
    let hint =
        "synchronise this machine's clock (NTP: `timedatectl set-ntp true`) — tokens and certificates depend on it";
    let c = if skew > CLOCK_FAIL_SKEW {
        Check::fail("clock", format!("clock differs from the engine's by {secs}s"), hint)
    } else if skew > CLOCK_WARN_SKEW {
        Check::warn("clock", format!("clock differs from the engine's by {secs}s"), hint)
    } else {
        Check::pass("clock", "clock agrees with the engine")
    };
    checks.push(c.detail("skewSeconds", secs));
}
