//! The engine's live state: control channels (clients), their tunnels, and streams waiting for an agent leg.
//!
//! One mutex guards everything; no lock is held across an `.await`. Invariants:
//! - a tunnel name is unique per engine (case-insensitive, it is also a DNS label);
//! - a published tunnel carries HTTP (protocol unset, `http` or `webtty`): the public side only serves
//!   TLS-terminated HTTP, so a published `tls`/`tcp` tunnel is refused (400) rather than accepted and unreachable;
//! - every tunnel belongs to one live client; when the client leaves, all its tunnels leave at once and their
//!   pending streams fail immediately (their delivery channels close);
//! - when a client is declared unresponsive ([`AgentLiveness`]) its spliced streams end too;
//! - a pending stream is claimed at most once, by the holder of its one-time secret (constant-time compare).
//!
//! Messages for an agent go through its bounded outbox ([`crate::limits::CONTROL_QUEUE_DEPTH`]); a full outbox
//! means the agent stopped reading, so the registry closes it and the control channel ends.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::clock::unix_now_precise;
use super::ids;
use super::splice::BoxedStream;
use crate::limits::{MAX_PENDING_LEGS_PER_TUNNEL, MAX_TUNNELS_PER_CLIENT, MAX_TUNNEL_NAME_LEN};
use crate::proto::rstream::message::Payload;
use crate::proto::rstream::{
    opt_str, published_protocol_refusal, some_str, BoolValue, ClientDetails, CloseTunnelRsp, Error as ProtoError,
    Message, ProxyConnReq, Timestamp, TunnelProperties,
};

/// Sender side of a control channel's outgoing queue. Messages are boxed: a bounded channel allocates all its
/// slots up front, and a slot of pointers keeps an idle control channel's queue at 2 KiB.
pub type Outbox = async_channel::Sender<Box<Message>>;
/// What a waiting stream receives: the agent's leg, or why there will be none.
pub type LegOutcome = Result<BoxedStream, ProtoError>;

/// A connected control channel, as listed by the REST API.
#[derive(Clone, Debug)]
pub struct ClientView {
    /// Engine-assigned id.
    pub id: String,
    /// What the agent said about itself.
    pub details: ClientDetails,
    /// The token's subject.
    pub user_id: String,
}

/// A live tunnel, as listed by the REST API.
#[derive(Clone, Debug)]
pub struct TunnelView {
    /// Stored properties (id, creation date, normalised `type`/`publish`, `host` when published).
    pub props: TunnelProperties,
    /// Owning client.
    pub client_id: String,
    /// The owner's token subject.
    pub user_id: String,
}

/// Fires when the agent behind a control channel is declared unresponsive (silent past the heartbeat deadline,
/// or not taking writes): the streams of its tunnels then end with it instead of waiting forever on legs whose
/// far end vanished without a FIN (power loss, a cut link, a frozen process). A clean close does not fire it: an
/// agent may let its streams finish.
#[derive(Clone, Debug)]
pub struct AgentLiveness {
    // Nothing is ever sent: every clone holds a sender, so the channel closes only when declared.
    keep: async_channel::Sender<()>,
    gone: async_channel::Receiver<()>,
}

impl AgentLiveness {
    fn new() -> Self {
        let (keep, gone) = async_channel::bounded(1);
        AgentLiveness { keep, gone }
    }

    /// Declares the agent unresponsive: every [`AgentLiveness::unresponsive`] wait completes.
    pub fn declare_unresponsive(&self) {
        self.keep.close();
    }

    /// Completes once the agent is declared unresponsive (never, otherwise).
    pub async fn unresponsive(&self) {
        let _ = self.gone.recv().await;
    }
}

struct Client {
    view: ClientView,
    outbox: Outbox,
    tunnels: BTreeSet<String>,
    liveness: AgentLiveness,
}

struct Tunnel {
    props: TunnelProperties,
    client_id: String,
    pending: usize,
}

struct PendingLeg {
    tunnel_id: String,
    secret: String,
    deliver: async_channel::Sender<LegOutcome>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    tunnels: HashMap<String, Tunnel>,
    names: HashMap<String, String>,
    pending: HashMap<String, PendingLeg>,
}

/// Clients, tunnels and pending streams of one engine.
#[derive(Default)]
pub struct TunnelRegistry {
    inner: Mutex<Inner>,
}

/// A stream waiting for its agent leg; dropping it withdraws the request.
pub struct PendingStream {
    /// Engine-assigned stream id.
    pub stream_id: String,
    /// The tunnel being dialed.
    pub tunnel: TunnelProperties,
    /// Receives the agent's leg or the reason it will not come.
    pub leg: async_channel::Receiver<LegOutcome>,
    /// Whether the tunnel's agent is still responding.
    pub agent: AgentLiveness,
    registry: Arc<TunnelRegistry>,
}

impl Drop for PendingStream {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(p) = inner.pending.remove(&self.stream_id) {
            if let Some(t) = inner.tunnels.get_mut(&p.tunnel_id) {
                t.pending = t.pending.saturating_sub(1);
            }
        }
    }
}

fn err(code: i32, message: impl Into<String>) -> ProtoError {
    ProtoError::new(code, message)
}

/// Checks a requested tunnel name: a DNS label of letters, digits, `-` and `_`.
pub fn validate_name(name: &str) -> Result<(), ProtoError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TUNNEL_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(err(400, format!("invalid tunnel name {name:?}: use 1-{MAX_TUNNEL_NAME_LEN} letters, digits, '-' or '_'")))
    }
}

impl TunnelRegistry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a control channel; returns its client id.
    pub fn add_client(&self, details: ClientDetails, user_id: String, outbox: Outbox) -> String {
        let id = ids::new_id();
        let view = ClientView { id: id.clone(), details, user_id };
        let client = Client { view, outbox, tunnels: BTreeSet::new(), liveness: AgentLiveness::new() };
        self.lock().clients.insert(id.clone(), client);
        id
    }

    /// Declares the agent of `client_id` unresponsive: the streams of its tunnels end (see [`AgentLiveness`]).
    pub fn declare_unresponsive(&self, client_id: &str) {
        if let Some(client) = self.lock().clients.get(client_id) {
            client.liveness.declare_unresponsive();
        }
    }

    /// Removes a control channel with all its tunnels; their pending streams fail at once. Returns the
    /// removed tunnel ids.
    pub fn remove_client(&self, client_id: &str) -> Vec<String> {
        let mut inner = self.lock();
        let Some(client) = inner.clients.remove(client_id) else { return Vec::new() };
        for tunnel_id in &client.tunnels {
            inner.drop_tunnel(tunnel_id);
        }
        client.outbox.close();
        client.tunnels.into_iter().collect()
    }

    /// Registers a tunnel for `client_id`. `public_host(name_or_id)` gives the routed host of a published
    /// tunnel. Returns the stored properties.
    pub fn open_tunnel(
        &self,
        client_id: &str,
        requested: TunnelProperties,
        public_host: impl FnOnce(&str) -> String,
    ) -> Result<TunnelProperties, ProtoError> {
        let mut props = requested;
        let name = props.name.as_ref().map(|n| n.value.clone()).filter(|n| !n.is_empty());
        if let Some(name) = &name {
            validate_name(name)?;
        }
        match props.r#type.as_ref().map(|t| t.value.as_str()) {
            None | Some("") | Some("bytestream") => props.r#type = some_str("bytestream"),
            Some(other) => return Err(err(400, format!("tunnel type {other:?} is not supported by this engine"))),
        }
        if props.is_published() {
            if let Some(refusal) = published_protocol_refusal(opt_str(&props.protocol), "--no-publish") {
                return Err(err(400, refusal));
            }
        }
        let mut inner = self.lock();
        let client = inner.clients.get(client_id).ok_or_else(|| err(410, "control channel is closed"))?;
        if client.tunnels.len() >= MAX_TUNNELS_PER_CLIENT {
            return Err(err(429, format!("too many tunnels on one control channel (max {MAX_TUNNELS_PER_CLIENT})")));
        }
        if let Some(name) = &name {
            if inner.names.contains_key(&name.to_ascii_lowercase()) {
                return Err(err(409, format!("tunnel name {name:?} is already used by another tunnel")));
            }
        }
        let id = ids::new_id();
        let (seconds, nanos) = unix_now_precise();
        props.id = some_str(id.clone());
        props.creation_date = Some(Timestamp { seconds, nanos });
        let published = props.is_published();
        props.publish = Some(BoolValue::from(published));
        props.host = published.then(|| some_str(public_host(name.as_deref().unwrap_or(&id)))).flatten();
        if let Some(name) = &name {
            inner.names.insert(name.to_ascii_lowercase(), id.clone());
        }
        let client = inner.clients.get_mut(client_id).expect("checked above");
        client.tunnels.insert(id.clone());
        inner.tunnels.insert(id, Tunnel { props: props.clone(), client_id: client_id.to_owned(), pending: 0 });
        Ok(props)
    }

    /// Closes one of `client_id`'s tunnels at its request.
    pub fn close_tunnel(&self, client_id: &str, tunnel_id: &str) -> Result<(), ProtoError> {
        let mut inner = self.lock();
        match inner.tunnels.get(tunnel_id) {
            Some(t) if t.client_id == client_id => {
                inner.drop_tunnel(tunnel_id);
                if let Some(c) = inner.clients.get_mut(client_id) {
                    c.tunnels.remove(tunnel_id);
                }
                Ok(())
            }
            _ => Err(err(404, format!("no tunnel {tunnel_id:?} on this control channel"))),
        }
    }

    /// Drops a tunnel on the engine's initiative and tells its agent (`CloseTunnelRsp`). False if unknown.
    pub fn evict_tunnel(&self, tunnel_id: &str) -> bool {
        let mut inner = self.lock();
        let Some(client_id) = inner.tunnels.get(tunnel_id).map(|t| t.client_id.clone()) else { return false };
        inner.drop_tunnel(tunnel_id);
        if let Some(c) = inner.clients.get_mut(&client_id) {
            c.tunnels.remove(tunnel_id);
            let notice =
                Box::new(Message::new(Payload::CloseTunnelRsp(CloseTunnelRsp { tunnel_id: tunnel_id.to_owned() })));
            if c.outbox.try_send(notice).is_err() {
                c.outbox.close();
            }
        }
        true
    }

    /// Creates a pending stream on tunnel `id_or_name` and asks its agent to dial back (`ProxyConnReq`).
    /// `admit` may refuse based on the tunnel's properties (e.g. private tunnels on the public HTTP side).
    pub fn begin_stream(
        self: &Arc<Self>,
        id_or_name: &str,
        source_ip: Option<IpAddr>,
        admit: impl FnOnce(&TunnelProperties) -> Result<(), ProtoError>,
    ) -> Result<PendingStream, ProtoError> {
        let mut inner = self.lock();
        let tunnel_id =
            inner.resolve(id_or_name).ok_or_else(|| err(404, format!("tunnel {id_or_name:?} not found")))?;
        let tunnel = inner.tunnels.get_mut(&tunnel_id).expect("resolved ids exist");
        admit(&tunnel.props)?;
        if tunnel.pending >= MAX_PENDING_LEGS_PER_TUNNEL {
            return Err(err(503, format!("tunnel {id_or_name:?} has too many pending streams")));
        }
        let stream_id = ids::new_id();
        let secret = ids::new_secret();
        let req = ProxyConnReq {
            tunnel_id: tunnel_id.clone(),
            stream_id: stream_id.clone(),
            secret: some_str(secret.clone()),
            source_ip: source_ip.map(Into::into),
        };
        let props = tunnel.props.clone();
        let client_id = tunnel.client_id.clone();
        let client = inner.clients.get(&client_id).expect("tunnels belong to live clients");
        let (outbox, agent) = (&client.outbox, client.liveness.clone());
        if outbox.try_send(Box::new(Message::new(Payload::ProxyConnReq(req)))).is_err() {
            outbox.close();
            return Err(err(503, format!("agent of tunnel {id_or_name:?} is not keeping up")));
        }
        inner.tunnels.get_mut(&tunnel_id).expect("still there").pending += 1;
        let (deliver, leg) = async_channel::bounded(1);
        inner.pending.insert(stream_id.clone(), PendingLeg { tunnel_id, secret, deliver });
        Ok(PendingStream { stream_id, tunnel: props, leg, agent, registry: Arc::clone(self) })
    }

    /// Claims pending stream `stream_id` with its one-time `secret`; returns where to deliver the leg.
    pub fn claim_leg(&self, stream_id: &str, secret: &str) -> Result<async_channel::Sender<LegOutcome>, ProtoError> {
        let mut inner = self.lock();
        let refused = || err(403, format!("stream {stream_id:?} is unknown, already claimed, or the secret is wrong"));
        let matches =
            inner.pending.get(stream_id).is_some_and(|p| ids::constant_time_eq(p.secret.as_bytes(), secret.as_bytes()));
        if !matches {
            return Err(refused());
        }
        let p = inner.pending.remove(stream_id).ok_or_else(refused)?;
        if let Some(t) = inner.tunnels.get_mut(&p.tunnel_id) {
            t.pending = t.pending.saturating_sub(1);
        }
        Ok(p.deliver)
    }

    /// The agent of `client_id` refused stream `stream_id` (`ProxyConnRsp` with an error): fail it now.
    pub fn refuse_leg(&self, client_id: &str, stream_id: &str, error: ProtoError) {
        let mut inner = self.lock();
        let owned = inner
            .pending
            .get(stream_id)
            .and_then(|p| inner.tunnels.get(&p.tunnel_id))
            .is_some_and(|t| t.client_id == client_id);
        if owned {
            let p = inner.pending.remove(stream_id).expect("checked above");
            if let Some(t) = inner.tunnels.get_mut(&p.tunnel_id) {
                t.pending = t.pending.saturating_sub(1);
            }
            let _ = p.deliver.try_send(Err(error));
        }
    }

    /// Properties of tunnel `id_or_name`, if live.
    pub fn find(&self, id_or_name: &str) -> Option<TunnelView> {
        let inner = self.lock();
        let id = inner.resolve(id_or_name)?;
        inner.view(&id)
    }

    /// Every live tunnel.
    pub fn tunnels(&self) -> Vec<TunnelView> {
        let inner = self.lock();
        let mut out: Vec<TunnelView> = inner.tunnels.keys().filter_map(|id| inner.view(id)).collect();
        out.sort_by_key(|t| t.props.creation_date.map(|d| (d.seconds, d.nanos)));
        out
    }

    /// Every connected client.
    pub fn clients(&self) -> Vec<ClientView> {
        let mut out: Vec<ClientView> = self.lock().clients.values().map(|c| c.view.clone()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// (clients, tunnels, pending streams) counts, for metrics.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        (inner.clients.len(), inner.tunnels.len(), inner.pending.len())
    }
}

impl Inner {
    fn resolve(&self, id_or_name: &str) -> Option<String> {
        if self.tunnels.contains_key(id_or_name) {
            return Some(id_or_name.to_owned());
        }
        self.names.get(&id_or_name.to_ascii_lowercase()).cloned()
    }

    fn view(&self, tunnel_id: &str) -> Option<TunnelView> {
        let t = self.tunnels.get(tunnel_id)?;
        let user_id = self.clients.get(&t.client_id).map(|c| c.view.user_id.clone()).unwrap_or_default();
        Some(TunnelView { props: t.props.clone(), client_id: t.client_id.clone(), user_id })
    }

    /// Removes a tunnel, its name, and its pending streams (whose waiters see the channel close).
    fn drop_tunnel(&mut self, tunnel_id: &str) {
        if let Some(t) = self.tunnels.remove(tunnel_id) {
            if let Some(name) = t.props.name.as_ref() {
                self.names.remove(&name.value.to_ascii_lowercase());
            }
        }
        self.pending.retain(|_, p| p.tunnel_id != tunnel_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rstream::StringValue;

    fn props(name: &str) -> TunnelProperties {
        TunnelProperties { name: some_str(name), ..Default::default() }
    }

    fn client(reg: &TunnelRegistry) -> (String, async_channel::Receiver<Box<Message>>) {
        let (tx, rx) = async_channel::bounded(8);
        (reg.add_client(ClientDetails::default(), "sub".into(), tx), rx)
    }

    fn host(name: &str) -> String {
        format!("{name}.t.localhost:8443")
    }

    #[test]
    fn names_are_unique_per_engine_case_insensitively() {
        let reg = TunnelRegistry::default();
        let (a, _ra) = client(&reg);
        let (b, _rb) = client(&reg);
        let t = reg.open_tunnel(&a, props("shell"), host).unwrap();
        assert_eq!(t.host, some_str("shell.t.localhost:8443"));
        assert_eq!(t.r#type, some_str("bytestream"));
        assert_eq!(t.publish, Some(true.into()));
        assert_eq!(reg.open_tunnel(&b, props("Shell"), host).unwrap_err().code, 409);
        assert_eq!(reg.open_tunnel(&a, props("shell"), host).unwrap_err().code, 409);
        reg.close_tunnel(&a, opt_id(&t)).unwrap();
        assert!(reg.open_tunnel(&b, props("shell"), host).is_ok(), "name free again after close");
    }

    fn opt_id(p: &TunnelProperties) -> &str {
        p.id.as_ref().map(|s| s.value.as_str()).unwrap()
    }

    #[test]
    fn private_tunnels_get_no_host_and_bad_requests_are_refused() {
        let reg = TunnelRegistry::default();
        let (a, _ra) = client(&reg);
        let private = TunnelProperties { publish: Some(false.into()), ..props("db") };
        assert_eq!(reg.open_tunnel(&a, private, host).unwrap().host, None);
        assert_eq!(reg.open_tunnel(&a, props("a.b"), host).unwrap_err().code, 400);
        let datagram = TunnelProperties { r#type: some_str("datagram"), ..props("udp") };
        assert_eq!(reg.open_tunnel(&a, datagram, host).unwrap_err().code, 400);
        assert_eq!(reg.open_tunnel("nobody", props("x"), host).unwrap_err().code, 410);
        let unnamed = reg.open_tunnel(&a, TunnelProperties::default(), host).unwrap();
        assert_eq!(unnamed.host, some_str(host(opt_id(&unnamed))));
    }

    #[test]
    fn published_tunnels_must_speak_http_and_private_ones_may_carry_anything() {
        let reg = TunnelRegistry::default();
        let (a, _ra) = client(&reg);
        let with = |name: &str, protocol: &str, publish: Option<bool>| TunnelProperties {
            protocol: some_str(protocol),
            publish: publish.map(Into::into),
            ..props(name)
        };
        for (i, protocol) in ["tls", "tcp", "h2"].into_iter().enumerate() {
            for publish in [None, Some(true)] {
                let refused = reg.open_tunnel(&a, with(&format!("p{i}"), protocol, publish), host).unwrap_err();
                assert_eq!(refused.code, 400);
                let expected =
                    format!("published tunnels on this engine are HTTP only; protocol {protocol:?} needs --no-publish");
                assert_eq!(opt_str(&refused.message), Some(expected.as_str()));
            }
            assert!(reg.open_tunnel(&a, with(&format!("q{i}"), protocol, Some(false)), host).is_ok());
        }
        for (i, protocol) in ["http", "webtty", ""].into_iter().enumerate() {
            assert!(reg.open_tunnel(&a, with(&format!("h{i}"), protocol, None), host).is_ok(), "{protocol:?}");
        }
        assert!(reg.find("p0").is_none(), "a refused tunnel is not registered");
    }

    #[test]
    fn tunnels_per_client_are_capped() {
        let reg = TunnelRegistry::default();
        let (a, _ra) = client(&reg);
        for i in 0..MAX_TUNNELS_PER_CLIENT {
            reg.open_tunnel(&a, props(&format!("t{i}")), host).unwrap();
        }
        assert_eq!(reg.open_tunnel(&a, props("one-more"), host).unwrap_err().code, 429);
    }

    #[test]
    fn channel_death_removes_all_its_tunnels_and_fails_pending_streams() {
        let reg = Arc::new(TunnelRegistry::default());
        let (a, rx) = client(&reg);
        let (b, _rb) = client(&reg);
        reg.open_tunnel(&a, props("one"), host).unwrap();
        reg.open_tunnel(&a, props("two"), host).unwrap();
        reg.open_tunnel(&b, props("other"), host).unwrap();
        let pending = reg.begin_stream("one", None, |_| Ok(())).unwrap();
        assert!(matches!(rx.try_recv().unwrap().payload, Some(Payload::ProxyConnReq(_))));
        assert_eq!(reg.remove_client(&a).len(), 2);
        assert!(reg.find("one").is_none() && reg.find("two").is_none());
        assert!(reg.find("other").is_some());
        assert!(pending.leg.try_recv().is_err() && pending.leg.is_closed(), "waiter sees the agent leave");
        assert_eq!(reg.counts(), (1, 1, 0));
        assert!(rx.is_closed(), "outbox closed with the client");
    }

    #[test]
    fn only_an_unresponsive_agent_ends_its_streams() {
        let reg = Arc::new(TunnelRegistry::default());
        let (a, _ra) = client(&reg);
        let (b, _rb) = client(&reg);
        reg.open_tunnel(&a, props("frozen"), host).unwrap();
        reg.open_tunnel(&b, props("closed"), host).unwrap();
        let frozen = reg.begin_stream("frozen", None, |_| Ok(())).unwrap();
        let closed = reg.begin_stream("closed", None, |_| Ok(())).unwrap();
        let fired =
            |p: &PendingStream| smol::block_on(futures_lite::future::poll_once(p.agent.unresponsive())).is_some();
        assert!(!fired(&frozen) && !fired(&closed));
        reg.remove_client(&b); // a clean close: its streams may finish
        reg.declare_unresponsive(&a);
        assert!(fired(&frozen), "streams of an unresponsive agent end");
        assert!(!fired(&closed), "streams of a cleanly closed channel go on");
    }

    #[test]
    fn a_leg_is_claimed_once_and_only_with_its_secret() {
        let reg = Arc::new(TunnelRegistry::default());
        let (a, rx) = client(&reg);
        let t = reg.open_tunnel(&a, props("web"), host).unwrap();
        let pending = reg.begin_stream(opt_id(&t), Some([127, 0, 0, 1].into()), |_| Ok(())).unwrap();
        let Some(Payload::ProxyConnReq(req)) = rx.try_recv().unwrap().payload else { panic!("no ProxyConnReq") };
        assert_eq!(req.stream_id, pending.stream_id);
        assert_eq!(req.source_ip.unwrap().to_ip(), Some([127, 0, 0, 1].into()));
        let secret = req.secret.map(|StringValue { value }| value).unwrap();
        assert_eq!(reg.claim_leg(&req.stream_id, "wrong").unwrap_err().code, 403);
        assert!(reg.claim_leg(&req.stream_id, &secret).is_ok());
        assert_eq!(reg.claim_leg(&req.stream_id, &secret).unwrap_err().code, 403, "single use");
    }

    #[test]
    fn dropping_a_pending_stream_withdraws_it_and_refusals_reach_the_waiter() {
        let reg = Arc::new(TunnelRegistry::default());
        let (a, _rx) = client(&reg);
        reg.open_tunnel(&a, props("web"), host).unwrap();
        let p1 = reg.begin_stream("web", None, |_| Ok(())).unwrap();
        assert_eq!(reg.counts().2, 1);
        drop(p1);
        assert_eq!(reg.counts().2, 0);
        let p2 = reg.begin_stream("WEB", None, |_| Ok(())).unwrap();
        reg.refuse_leg("someone-else", &p2.stream_id, ProtoError::new(500, "not yours"));
        assert!(p2.leg.try_recv().is_err(), "only the owner may refuse");
        reg.refuse_leg(&a, &p2.stream_id, ProtoError::new(503, "busy"));
        assert_eq!(p2.leg.try_recv().unwrap().err().unwrap().code, 503);
        assert_eq!(reg.begin_stream("nope", None, |_| Ok(())).err().unwrap().code, 404);
        let refused = reg.begin_stream("web", None, |_| Err(ProtoError::new(404, "private")));
        assert_eq!(refused.err().unwrap().code, 404);
    }

    #[test]
    fn a_stuck_agent_outbox_refuses_streams_and_is_closed() {
        let reg = Arc::new(TunnelRegistry::default());
        let (tx, rx) = async_channel::bounded(1);
        let a = reg.add_client(ClientDetails::default(), "sub".into(), tx);
        reg.open_tunnel(&a, props("web"), host).unwrap();
        let _first = reg.begin_stream("web", None, |_| Ok(())).unwrap();
        assert_eq!(reg.begin_stream("web", None, |_| Ok(())).err().unwrap().code, 503);
        assert!(rx.is_closed());
    }

    #[test]
    fn pending_streams_per_tunnel_are_capped() {
        let reg = Arc::new(TunnelRegistry::default());
        let (tx, _rx) = async_channel::bounded(MAX_PENDING_LEGS_PER_TUNNEL + 8);
        let a = reg.add_client(ClientDetails::default(), "sub".into(), tx);
        reg.open_tunnel(&a, props("busy"), host).unwrap();
        let held: Vec<_> =
            (0..MAX_PENDING_LEGS_PER_TUNNEL).map(|_| reg.begin_stream("busy", None, |_| Ok(())).unwrap()).collect();
        assert_eq!(reg.begin_stream("busy", None, |_| Ok(())).err().unwrap().code, 503);
        drop(held);
        assert!(reg.begin_stream("busy", None, |_| Ok(())).is_ok(), "slots come back");
    }

    #[test]
    fn eviction_notifies_the_owner() {
        let reg = TunnelRegistry::default();
        let (a, rx) = client(&reg);
        let t = reg.open_tunnel(&a, props("web"), host).unwrap();
        assert!(reg.evict_tunnel(opt_id(&t)));
        let Some(Payload::CloseTunnelRsp(rsp)) = rx.try_recv().unwrap().payload else { panic!("no CloseTunnelRsp") };
        assert_eq!(rsp.tunnel_id, opt_id(&t));
        assert!(reg.find("web").is_none());
        assert!(!reg.evict_tunnel(opt_id(&t)));
    }
}
