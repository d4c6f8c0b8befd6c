//! The engine's live state: control channels (clients), their tunnels, and streams waiting for an agent leg.
//!
//! One mutex guards everything; no lock is held across an `.await`. Invariants:
//! - a tunnel name is unique per engine (case-insensitive, it is also a DNS label) and belongs to the token
//!   subject that registered it, which keeps it through a grace period after its control channel drops
//!   ([`super::names`]); a name never has the shape of an id, and ids resolve case-insensitively too;
//! - a published tunnel carries HTTP (protocol unset, `http` or `webtty`): the public side only serves
//!   TLS-terminated HTTP, so a published `tls`/`tcp` tunnel is refused (400) rather than accepted and unreachable;
//! - every tunnel belongs to one live client; when the client leaves, all its tunnels leave at once and their
//!   pending streams fail immediately (their delivery channels close);
//! - when a client is declared unresponsive ([`AgentLiveness`]) its spliced streams end too;
//! - a pending stream is claimed at most once, by the holder of its one-time secret (constant-time compare).
//!
//! Every change to clients and tunnels is published on the event bus ([`super::events`]) under the same lock
//! that [`TunnelRegistry::subscribe`] takes its snapshot with.
//!
//! Messages for an agent go through its bounded outbox ([`crate::limits::CONTROL_QUEUE_DEPTH`]); a full outbox
//! means the agent stopped reading, so the registry closes it and the control channel ends.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::clock::unix_now_precise;
use super::events::{Event, EventBus, Subscription, TooManySubscribers};
use super::ids;
use super::name_store::NameStore;
use super::names::NameBook;
use super::splice::BoxedStream;
use crate::limits::{MAX_PENDING_LEGS_PER_TUNNEL, MAX_TUNNELS_PER_CLIENT};
use crate::proto::rstream::message::Payload;
use crate::proto::rstream::{
    opt_str, published_protocol_refusal, some_str, tunnel_name_refusal, BoolValue, ClientDetails, CloseTunnelRsp,
    Error as ProtoError, ErrorCode, Message, ProxyConnReq, Timestamp, TunnelProperties,
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

impl TunnelView {
    /// A view of `props` whose client already left (a stream outliving its tunnel).
    pub fn detached(props: TunnelProperties) -> Self {
        TunnelView { props, client_id: String::new(), user_id: String::new() }
    }
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

/// What a stream of a protocol 1.4 agent waits for besides its leg: the agent's `ProxyConnRsp`, sent once the
/// leg is up (ready) or when the local side failed (its error).
pub type StreamAnswer = Result<(), ProtoError>;

/// Where the `ProxyConnRsp` of a pending stream goes, and which control channel may send it.
struct AnswerWaiter {
    client_id: String,
    answer: async_channel::Sender<StreamAnswer>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    tunnels: HashMap<String, Tunnel>,
    names: NameBook,
    pending: HashMap<String, PendingLeg>,
    /// Streams whose 1.4 agent has not answered yet; one per live [`PendingStream`].
    answers: HashMap<String, AnswerWaiter>,
    events: EventBus,
}

/// What becomes of a dropped tunnel's name.
#[derive(Clone, Copy)]
enum NameFate {
    /// Its owner closed it, or it was evicted: anyone may take the name.
    Release,
    /// Its control channel dropped: the name stays reserved for its owner (from this instant).
    Reserve(Instant),
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
    /// The agent's `ProxyConnRsp` (agents of protocol 1.4 and newer; `None`: a 1.3 agent, no answer awaited).
    pub answer: Option<async_channel::Receiver<StreamAnswer>>,
    registry: Arc<TunnelRegistry>,
}

impl Drop for PendingStream {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.answers.remove(&self.stream_id);
        if let Some(p) = inner.pending.remove(&self.stream_id) {
            if let Some(t) = inner.tunnels.get_mut(&p.tunnel_id) {
                t.pending = t.pending.saturating_sub(1);
            }
        }
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> ProtoError {
    ProtoError::new(code, message)
}

/// Checks a requested tunnel name ([`tunnel_name_refusal`]).
pub fn validate_name(name: &str) -> Result<(), ProtoError> {
    tunnel_name_refusal(name).map_or(Ok(()), |refusal| Err(err(ErrorCode::InvalidRequest, refusal)))
}

impl TunnelRegistry {
    /// A registry keeping a dropped tunnel's name reserved for its owner for `name_grace`.
    pub fn with_name_grace(name_grace: Duration) -> Self {
        let inner = Inner { names: NameBook::new(name_grace), ..Inner::default() };
        TunnelRegistry { inner: Mutex::new(inner) }
    }

    /// Restores the name owners saved in `store` — each a reservation for its owner through the grace period,
    /// counted from now — and keeps `store` in step with every change from now on ([`super::name_store`]).
    pub fn persist_names(self: &Arc<Self>, store: NameStore) {
        let (changes, changed) = std::sync::mpsc::sync_channel(1);
        let saved = store.load();
        let on_disk = {
            let mut inner = self.lock();
            let now = Instant::now();
            let restored = inner.names.restore(saved, now);
            if restored > 0 {
                log_info!("{restored} tunnel name(s) reserved for their owners after the restart");
            }
            inner.names.report_changes(changes);
            inner.names.held(now)
        };
        let registry = Arc::downgrade(self);
        store.spawn_writer(on_disk, changed, move |now| Some(registry.upgrade()?.lock().names.held(now)));
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a control channel; returns its client id.
    pub fn add_client(&self, details: ClientDetails, user_id: String, outbox: Outbox) -> String {
        let id = ids::new_id();
        let view = ClientView { id: id.clone(), details, user_id };
        let mut inner = self.lock();
        inner.events.publish(|| Event::client("client.created", &view));
        let client = Client { view, outbox, tunnels: BTreeSet::new(), liveness: AgentLiveness::new() };
        inner.clients.insert(id.clone(), client);
        id
    }

    /// Declares the agent of `client_id` unresponsive: the streams of its tunnels end (see [`AgentLiveness`]).
    pub fn declare_unresponsive(&self, client_id: &str) {
        if let Some(client) = self.lock().clients.get(client_id) {
            client.liveness.declare_unresponsive();
        }
    }

    /// Removes a control channel with all its tunnels; their pending streams fail at once and their names stay
    /// reserved for their owner through the grace period. Returns the removed tunnel ids.
    pub fn remove_client(&self, client_id: &str) -> Vec<String> {
        let mut inner = self.lock();
        let Some(tunnels) = inner.clients.get(client_id).map(|c| c.tunnels.clone()) else { return Vec::new() };
        let fate = NameFate::Reserve(Instant::now());
        for tunnel_id in &tunnels {
            inner.drop_tunnel(tunnel_id, fate);
        }
        let client = inner.clients.remove(client_id).expect("checked above");
        inner.events.publish(|| Event::client("client.deleted", &client.view));
        client.outbox.close();
        client.tunnels.into_iter().collect()
    }

    /// Registers a tunnel for `client_id`, its name owned by the client's token subject. `public_host(name_or_id)`
    /// gives the routed host of a published tunnel. Returns the stored properties.
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
            Some(other) => {
                return Err(err(
                    ErrorCode::FeatureNotAvailable,
                    format!("tunnel type {other:?} is not supported by this engine"),
                ))
            }
        }
        if props.is_published() {
            if let Some(refusal) = published_protocol_refusal(opt_str(&props.protocol), "--no-publish") {
                return Err(err(ErrorCode::FeatureNotAvailable, refusal));
            }
        }
        let mut inner = self.lock();
        let client =
            inner.clients.get(client_id).ok_or_else(|| err(ErrorCode::InvalidStream, "control channel is closed"))?;
        if client.tunnels.len() >= MAX_TUNNELS_PER_CLIENT {
            return Err(err(
                ErrorCode::CapacityExhausted,
                format!("too many tunnels on one control channel (max {MAX_TUNNELS_PER_CLIENT})"),
            ));
        }
        let owner = client.view.user_id.clone();
        if let Some(name) = &name {
            inner.names.check(name, &owner, Instant::now())?;
        }
        let id = ids::new_id();
        let (seconds, nanos) = unix_now_precise();
        props.id = some_str(id.clone());
        props.creation_date = Some(Timestamp { seconds, nanos });
        let published = props.is_published();
        props.publish = Some(BoolValue::from(published));
        props.host = published.then(|| some_str(public_host(name.as_deref().unwrap_or(&id)))).flatten();
        if let Some(name) = &name {
            inner.names.bind(name, &owner, &id);
        }
        let client = inner.clients.get_mut(client_id).expect("checked above");
        client.tunnels.insert(id.clone());
        inner.tunnels.insert(id.clone(), Tunnel { props: props.clone(), client_id: client_id.to_owned(), pending: 0 });
        if let Some(view) = inner.view(&id) {
            inner.events.publish(|| Event::tunnel("tunnel.created", &view));
        }
        Ok(props)
    }

    /// Closes one of `client_id`'s tunnels at its request; its name is free at once.
    pub fn close_tunnel(&self, client_id: &str, tunnel_id: &str) -> Result<(), ProtoError> {
        let mut inner = self.lock();
        match inner.tunnels.get(tunnel_id) {
            Some(t) if t.client_id == client_id => {
                inner.drop_tunnel(tunnel_id, NameFate::Release);
                if let Some(c) = inner.clients.get_mut(client_id) {
                    c.tunnels.remove(tunnel_id);
                }
                Ok(())
            }
            _ => Err(err(ErrorCode::TunnelNotFound, format!("no tunnel {tunnel_id:?} on this control channel"))),
        }
    }

    /// Drops a tunnel on the engine's initiative and tells its agent (`CloseTunnelRsp`); its name is free at
    /// once. False if unknown. Who may ask is the REST API's business.
    pub fn evict_tunnel(&self, tunnel_id: &str) -> bool {
        let mut inner = self.lock();
        let Some(client_id) = inner.tunnels.get(tunnel_id).map(|t| t.client_id.clone()) else { return false };
        inner.drop_tunnel(tunnel_id, NameFate::Release);
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
        let tunnel_id = inner
            .resolve(id_or_name)
            .ok_or_else(|| err(ErrorCode::TunnelNotFound, format!("tunnel {id_or_name:?} not found")))?;
        let tunnel = inner.tunnels.get_mut(&tunnel_id).expect("resolved ids exist");
        admit(&tunnel.props)?;
        if tunnel.pending >= MAX_PENDING_LEGS_PER_TUNNEL {
            return Err(err(
                ErrorCode::CapacityExhausted,
                format!("tunnel {id_or_name:?} has too many pending streams"),
            ));
        }
        let stream_id = ids::new_id();
        let secret = ids::new_secret();
        let req = ProxyConnReq {
            tunnel_id: tunnel_id.clone(),
            stream_id: stream_id.clone(),
            secret: some_str(secret.clone()),
            source_ip: source_ip.map(Into::into),
            proxy_endpoint: None,
        };
        let props = tunnel.props.clone();
        let client_id = tunnel.client_id.clone();
        let client = inner.clients.get(&client_id).expect("tunnels belong to live clients");
        let (outbox, agent) = (&client.outbox, client.liveness.clone());
        let confirms = client.view.details.confirms_streams();
        if outbox.try_send(Box::new(Message::new(Payload::ProxyConnReq(req)))).is_err() {
            outbox.close();
            return Err(err(ErrorCode::CapacityExhausted, format!("agent of tunnel {id_or_name:?} is not keeping up")));
        }
        inner.tunnels.get_mut(&tunnel_id).expect("still there").pending += 1;
        let (deliver, leg) = async_channel::bounded(1);
        inner.pending.insert(stream_id.clone(), PendingLeg { tunnel_id, secret, deliver });
        let answer = confirms.then(|| {
            let (answer, answered) = async_channel::bounded(1);
            inner.answers.insert(stream_id.clone(), AnswerWaiter { client_id, answer });
            answered
        });
        Ok(PendingStream { stream_id, tunnel: props, leg, agent, answer, registry: Arc::clone(self) })
    }

    /// Claims pending stream `stream_id` with its one-time `secret`; returns where to deliver the leg.
    pub fn claim_leg(&self, stream_id: &str, secret: &str) -> Result<async_channel::Sender<LegOutcome>, ProtoError> {
        let mut inner = self.lock();
        let refused = || {
            err(
                ErrorCode::InvalidStream,
                format!("stream {stream_id:?} is unknown, already claimed, or the secret is wrong"),
            )
        };
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

    /// The agent of `client_id` answered stream `stream_id` (`ProxyConnRsp`): a waiting 1.4 stream learns
    /// it is ready or why not; a refusal also fails a leg still pending.
    pub fn answer_stream(&self, client_id: &str, stream_id: &str, answer: StreamAnswer) {
        let mut inner = self.lock();
        if let Some(waiter) = inner.answers.get(stream_id).filter(|w| w.client_id == client_id) {
            let _ = waiter.answer.try_send(answer.clone());
        }
        let Err(error) = answer else { return };
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
        self.lock().tunnel_list()
    }

    /// Every connected client.
    pub fn clients(&self) -> Vec<ClientView> {
        self.lock().client_list()
    }

    /// A new event subscriber with the clients and tunnels live at that instant: every later change reaches its
    /// queue, none before.
    pub fn subscribe(&self) -> Result<(Vec<ClientView>, Vec<TunnelView>, Subscription), TooManySubscribers> {
        let inner = self.lock();
        let subscription = inner.events.subscribe()?;
        Ok((inner.client_list(), inner.tunnel_list(), subscription))
    }

    /// Event subscribers listening now.
    pub fn event_subscribers(&self) -> usize {
        self.lock().events.subscribers()
    }

    /// Publishes an event that is not a registry change (`stream.summary`).
    pub fn publish(&self, make: impl FnOnce() -> Event) {
        self.lock().events.publish(make);
    }

    /// (clients, tunnels, pending streams) counts, for metrics.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        (inner.clients.len(), inner.tunnels.len(), inner.pending.len())
    }
}

impl Inner {
    /// The live tunnel id for an id or a name, both case-insensitive (names never look like ids).
    fn resolve(&self, id_or_name: &str) -> Option<String> {
        let key = id_or_name.to_ascii_lowercase();
        if self.tunnels.contains_key(&key) {
            return Some(key);
        }
        self.names.tunnel(&key).map(str::to_owned)
    }

    /// Every live tunnel, oldest first.
    fn tunnel_list(&self) -> Vec<TunnelView> {
        let mut out: Vec<TunnelView> = self.tunnels.keys().filter_map(|id| self.view(id)).collect();
        out.sort_by_key(|t| t.props.creation_date.map(|d| (d.seconds, d.nanos)));
        out
    }

    /// Every connected client, by id.
    fn client_list(&self) -> Vec<ClientView> {
        let mut out: Vec<ClientView> = self.clients.values().map(|c| c.view.clone()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn view(&self, tunnel_id: &str) -> Option<TunnelView> {
        let t = self.tunnels.get(tunnel_id)?;
        let user_id = self.clients.get(&t.client_id).map(|c| c.view.user_id.clone()).unwrap_or_default();
        Some(TunnelView { props: t.props.clone(), client_id: t.client_id.clone(), user_id })
    }

    /// Removes a tunnel and its pending streams (whose waiters see the channel close); its name is released or
    /// reserved as `fate` says.
    fn drop_tunnel(&mut self, tunnel_id: &str, fate: NameFate) {
        if let Some(view) = self.view(tunnel_id) {
            self.events.publish(|| Event::tunnel("tunnel.deleted", &view));
        }
        if let Some(t) = self.tunnels.remove(tunnel_id) {
            if let Some(name) = opt_str(&t.props.name).filter(|n| !n.is_empty()) {
                match fate {
                    NameFate::Release => self.names.release(name, tunnel_id),
                    NameFate::Reserve(now) => self.names.reserve(name, tunnel_id, now),
                }
            }
        }
        self.pending.retain(|_, p| p.tunnel_id != tunnel_id);
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
