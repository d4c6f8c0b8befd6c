//! The engine's event bus: what `/api/sse` and `/api/websocket` subscribers hear ([`super::watch`] serves them).
//!
//! The registry publishes `client.created|deleted` and `tunnel.created|deleted` while it holds its lock, and
//! takes a subscriber's snapshot (`state.initial`) under the same lock, so a subscriber never misses a change
//! between its snapshot and its first event nor sees one twice. `stream.summary` is published when a stream
//! ends ([`super::summary`]).
//!
//! Each event is serialised once (`{"type", "object", "id", "created_at"}`) and shared by every subscriber. A
//! subscriber gets a queue of [`EVENT_QUEUE_DEPTH`] such pointers; publishing never waits: when a queue is
//! full its subscriber has stopped reading, and it is cut off (its queue closes, [`Subscription::overflowed`]
//! says why) instead of being buffered for. At most [`MAX_EVENT_SUBSCRIBERS`] subscribe at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::filters::WatchParams;
use super::ids;
use super::inventory::{client_json, tunnel_json, OFFLINE, ONLINE};
use super::registry::{ClientView, TunnelView};
use crate::http::date::format_rfc3339;
use crate::limits::{EVENT_QUEUE_DEPTH, MAX_EVENT_SUBSCRIBERS};

/// `state.initial`: the first event of every stream.
pub const STATE_INITIAL: &str = "state.initial";
/// `stream.summary`: one stream through the engine ended.
pub const STREAM_SUMMARY: &str = "stream.summary";

/// What an event is about, for the subscriber's filters.
#[derive(Debug)]
pub enum Subject {
    /// A client connected or left (`online` / `offline`).
    Client(ClientView, &'static str),
    /// A tunnel opened or closed (`online` / `offline`).
    Tunnel(TunnelView, &'static str),
    /// A stream ended; the tunnel it was routed to, if any.
    Stream(Option<TunnelView>),
}

/// One event, serialised once for every subscriber.
#[derive(Debug)]
pub struct Event {
    /// `client.created`, `tunnel.deleted`, …
    pub kind: &'static str,
    /// What it is about.
    pub subject: Subject,
    /// The JSON envelope, one line.
    pub json: Box<str>,
}

impl Event {
    /// An event of `kind` about `subject` with `object` as its JSON object.
    pub fn new(kind: &'static str, subject: Subject, object: Value) -> Self {
        let json = envelope(kind, object).to_string().into_boxed_str();
        Event { kind, subject, json }
    }

    /// `client.created` (the client is `online`) or `client.deleted` (`offline`).
    pub fn client(kind: &'static str, view: &ClientView) -> Self {
        let status = status_of(kind);
        let mut object = client_json(view);
        object["status"] = Value::from(status);
        Event::new(kind, Subject::Client(view.clone(), status), object)
    }

    /// `tunnel.created` (the tunnel is `online`) or `tunnel.deleted` (`offline`).
    pub fn tunnel(kind: &'static str, view: &TunnelView) -> Self {
        let status = status_of(kind);
        let mut object = tunnel_json(view);
        object["status"] = Value::from(status);
        Event::new(kind, Subject::Tunnel(view.clone(), status), object)
    }

    /// Whether a subscriber watching with `params` hears about it.
    pub fn passes(&self, params: &WatchParams) -> bool {
        match &self.subject {
            Subject::Client(view, status) => params.clients.as_ref().is_none_or(|f| f.matches_in(view, status)),
            Subject::Tunnel(view, status) => params.tunnels.as_ref().is_none_or(|f| f.matches_in(view, status)),
            Subject::Stream(tunnel) => match (&params.tunnels, tunnel) {
                (None, _) => true,
                (Some(f), Some(view)) => f.matches(view),
                (Some(_), None) => false,
            },
        }
    }
}

fn status_of(kind: &str) -> &'static str {
    if kind.ends_with(".deleted") {
        OFFLINE
    } else {
        ONLINE
    }
}

/// `{"type", "object", "id", "created_at"}`.
pub fn envelope(kind: &str, object: Value) -> Value {
    json!({
        "type": kind,
        "object": object,
        "id": format!("evt_{}", ids::new_id()),
        "created_at": format_rfc3339(SystemTime::now()),
    })
}

/// The `state.initial` event for a subscriber: the clients and tunnels it may see, as the list endpoints list them.
pub fn state_initial(clients: &[ClientView], tunnels: &[TunnelView], params: &WatchParams) -> String {
    let clients: Vec<Value> =
        clients.iter().filter(|c| params.clients.as_ref().is_none_or(|f| f.matches(c))).map(client_json).collect();
    let tunnels: Vec<Value> =
        tunnels.iter().filter(|t| params.tunnels.as_ref().is_none_or(|f| f.matches(t))).map(tunnel_json).collect();
    let object = json!({ "snapshot_at": format_rfc3339(SystemTime::now()), "clients": clients, "tunnels": tunnels });
    envelope(STATE_INITIAL, object).to_string()
}

struct Feed {
    tx: async_channel::Sender<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
}

/// One subscriber's end of the bus; dropping it unsubscribes.
pub struct Subscription {
    rx: async_channel::Receiver<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
}

impl Subscription {
    /// The next event; `None` once the subscriber was cut off ([`Subscription::overflowed`]) or the bus is gone.
    pub async fn next(&self) -> Option<Arc<Event>> {
        self.rx.recv().await.ok()
    }

    /// Whether the bus cut this subscriber off because its queue was full.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// Refusal of a subscriber beyond [`MAX_EVENT_SUBSCRIBERS`].
#[derive(Debug)]
pub struct TooManySubscribers;

impl std::fmt::Display for TooManySubscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the engine already has {MAX_EVENT_SUBSCRIBERS} event subscribers; try again later")
    }
}

/// Subscribers and the fan-out to them.
#[derive(Default)]
pub struct EventBus {
    feeds: Mutex<Vec<Feed>>,
}

impl EventBus {
    fn feeds(&self) -> std::sync::MutexGuard<'_, Vec<Feed>> {
        self.feeds.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new subscriber, unless [`MAX_EVENT_SUBSCRIBERS`] are already listening.
    pub fn subscribe(&self) -> Result<Subscription, TooManySubscribers> {
        let mut feeds = self.feeds();
        feeds.retain(|f| !f.tx.is_closed());
        if feeds.len() >= MAX_EVENT_SUBSCRIBERS {
            return Err(TooManySubscribers);
        }
        let (tx, rx) = async_channel::bounded(EVENT_QUEUE_DEPTH);
        let overflowed = Arc::new(AtomicBool::new(false));
        feeds.push(Feed { tx, overflowed: Arc::clone(&overflowed) });
        Ok(Subscription { rx, overflowed })
    }

    /// Subscribers listening now.
    pub fn subscribers(&self) -> usize {
        self.feeds().iter().filter(|f| !f.tx.is_closed()).count()
    }

    /// Hands the event `make` builds to every subscriber (built only if there is one); never waits. A subscriber
    /// whose queue is full is cut off.
    pub fn publish(&self, make: impl FnOnce() -> Event) {
        let mut feeds = self.feeds();
        feeds.retain(|f| !f.tx.is_closed());
        if feeds.is_empty() {
            return;
        }
        let event = Arc::new(make());
        for feed in feeds.iter() {
            if let Err(async_channel::TrySendError::Full(_)) = feed.tx.try_send(Arc::clone(&event)) {
                feed.overflowed.store(true, Ordering::Relaxed);
                feed.tx.close();
            }
        }
        feeds.retain(|f| !f.tx.is_closed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::filters::parse_params_as;
    use crate::http::percent::encode_component;
    use crate::proto::rstream::{some_str, ClientDetails, TunnelProperties};

    fn tunnel(name: &str) -> TunnelView {
        let props = TunnelProperties { id: some_str(format!("id-{name}")), name: some_str(name), ..Default::default() };
        TunnelView { props, client_id: "c1".into(), user_id: "pi".into() }
    }

    fn watch(json: &str) -> WatchParams {
        parse_params_as(Some(&format!("params={}", encode_component(json)))).unwrap()
    }

    #[test]
    fn events_are_enveloped_once_and_deleted_objects_are_offline() {
        let e = Event::tunnel("tunnel.deleted", &tunnel("pi"));
        let v: Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!((v["type"].as_str(), v["object"]["name"].as_str()), (Some("tunnel.deleted"), Some("pi")));
        assert_eq!(v["object"]["status"], "offline");
        assert!(v["id"].as_str().unwrap().starts_with("evt_") && v["created_at"].is_string());
        let c = ClientView { id: "c1".into(), details: ClientDetails::this_binary(""), user_id: "pi".into() };
        let v: Value = serde_json::from_str(&Event::client("client.created", &c).json).unwrap();
        assert_eq!((v["object"]["id"].as_str(), v["object"]["status"].as_str()), (Some("c1"), Some("online")));
    }

    #[test]
    fn filters_apply_to_every_kind_of_event_and_to_the_snapshot() {
        let by_name = watch(r#"{"tunnels":{"name":"pi"}}"#);
        assert!(Event::tunnel("tunnel.created", &tunnel("pi")).passes(&by_name));
        assert!(!Event::tunnel("tunnel.created", &tunnel("db")).passes(&by_name));
        assert!(Event::tunnel("tunnel.deleted", &tunnel("pi")).passes(&by_name));
        let online_only = watch(r#"{"tunnels":{"status":"online"}}"#);
        assert!(!Event::tunnel("tunnel.deleted", &tunnel("pi")).passes(&online_only));
        let summary = |t: Option<TunnelView>| Event::new(STREAM_SUMMARY, Subject::Stream(t), json!({}));
        assert!(summary(Some(tunnel("pi"))).passes(&by_name) && !summary(Some(tunnel("db"))).passes(&by_name));
        assert!(!summary(None).passes(&by_name) && summary(None).passes(&WatchParams::default()));
        let c = ClientView { id: "c1".into(), details: ClientDetails::this_binary(""), user_id: "pi".into() };
        assert!(!Event::client("client.created", &c).passes(&watch(r#"{"clients":{"id":"c2"}}"#)));
        assert!(Event::client("client.created", &c).passes(&by_name), "tunnel filters leave clients alone");
        let initial: Value =
            serde_json::from_str(&state_initial(&[c], &[tunnel("pi"), tunnel("db")], &by_name)).unwrap();
        assert_eq!(initial["type"], STATE_INITIAL);
        assert_eq!(initial["object"]["tunnels"].as_array().unwrap().len(), 1);
        assert_eq!(initial["object"]["clients"].as_array().unwrap().len(), 1);
        assert!(initial["object"]["snapshot_at"].is_string());
    }

    #[test]
    fn a_subscriber_that_stops_reading_is_cut_off_and_the_others_keep_going() {
        smol::block_on(async {
            let bus = EventBus::default();
            let slow = bus.subscribe().unwrap();
            let fast = bus.subscribe().unwrap();
            for i in 0..EVENT_QUEUE_DEPTH + 1 {
                bus.publish(|| Event::tunnel("tunnel.created", &tunnel(&format!("t{i}"))));
                assert!(fast.next().await.is_some());
            }
            assert!(slow.overflowed() && !fast.overflowed());
            for _ in 0..EVENT_QUEUE_DEPTH {
                assert!(slow.next().await.is_some(), "what was queued is still delivered");
            }
            assert!(slow.next().await.is_none(), "then the queue is closed");
            assert_eq!(bus.subscribers(), 1);
        });
    }

    #[test]
    fn subscribers_are_capped_and_leaving_frees_a_place() {
        let bus = EventBus::default();
        let mut held: Vec<Subscription> = (0..MAX_EVENT_SUBSCRIBERS).map(|_| bus.subscribe().unwrap()).collect();
        assert!(bus.subscribe().is_err());
        held.pop();
        assert!(bus.subscribe().is_ok());
        let mut built = false;
        EventBus::default().publish(|| {
            built = true;
            Event::tunnel("tunnel.created", &tunnel("x"))
        });
        assert!(!built, "no subscriber: no event is built");
    }
}
