//! Unit tests of [`super::TunnelRegistry`]: names, ownership and grace, caps, pending streams, liveness.

use super::*;
use crate::proto::rstream::StringValue;

fn props(name: &str) -> TunnelProperties {
    TunnelProperties { name: some_str(name), ..Default::default() }
}

fn client(reg: &TunnelRegistry) -> (String, async_channel::Receiver<Box<Message>>) {
    client_of(reg, "sub")
}

fn client_of(reg: &TunnelRegistry, sub: &str) -> (String, async_channel::Receiver<Box<Message>>) {
    let (tx, rx) = async_channel::bounded(8);
    (reg.add_client(ClientDetails::default(), sub.into(), tx), rx)
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
    assert_eq!(reg.open_tunnel(&b, props("Shell"), host).unwrap_err().code(), ErrorCode::InvalidRequest);
    assert_eq!(reg.open_tunnel(&a, props("shell"), host).unwrap_err().code(), ErrorCode::InvalidRequest);
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
    assert_eq!(reg.open_tunnel(&a, props("a.b"), host).unwrap_err().code(), ErrorCode::InvalidRequest);
    let datagram = TunnelProperties { r#type: some_str("datagram"), ..props("udp") };
    assert_eq!(reg.open_tunnel(&a, datagram, host).unwrap_err().code(), ErrorCode::FeatureNotAvailable);
    assert_eq!(reg.open_tunnel("nobody", props("x"), host).unwrap_err().code(), ErrorCode::InvalidStream);
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
            assert_eq!(refused.code(), ErrorCode::FeatureNotAvailable);
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
    assert_eq!(reg.open_tunnel(&a, props("one-more"), host).unwrap_err().code(), ErrorCode::CapacityExhausted);
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
    let fired = |p: &PendingStream| smol::block_on(futures_lite::future::poll_once(p.agent.unresponsive())).is_some();
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
    assert_eq!(reg.claim_leg(&req.stream_id, "wrong").unwrap_err().code(), ErrorCode::InvalidStream);
    assert!(reg.claim_leg(&req.stream_id, &secret).is_ok());
    assert_eq!(reg.claim_leg(&req.stream_id, &secret).unwrap_err().code(), ErrorCode::InvalidStream, "single use");
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
    reg.answer_stream("someone-else", &p2.stream_id, Err(ProtoError::new(ErrorCode::Internal, "not yours")));
    assert!(p2.leg.try_recv().is_err(), "only the owner may refuse");
    reg.answer_stream(&a, &p2.stream_id, Err(ProtoError::new(ErrorCode::ServiceUnavailable, "busy")));
    assert_eq!(p2.leg.try_recv().unwrap().err().unwrap().code(), ErrorCode::ServiceUnavailable);
    assert_eq!(reg.begin_stream("nope", None, |_| Ok(())).err().unwrap().code(), ErrorCode::TunnelNotFound);
    let refused = reg.begin_stream("web", None, |_| Err(ProtoError::new(ErrorCode::TunnelNotFound, "private")));
    assert_eq!(refused.err().unwrap().code(), ErrorCode::TunnelNotFound);
}

#[test]
fn a_stuck_agent_outbox_refuses_streams_and_is_closed() {
    let reg = Arc::new(TunnelRegistry::default());
    let (tx, rx) = async_channel::bounded(1);
    let a = reg.add_client(ClientDetails::default(), "sub".into(), tx);
    reg.open_tunnel(&a, props("web"), host).unwrap();
    let _first = reg.begin_stream("web", None, |_| Ok(())).unwrap();
    assert_eq!(reg.begin_stream("web", None, |_| Ok(())).err().unwrap().code(), ErrorCode::CapacityExhausted);
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
    assert_eq!(reg.begin_stream("busy", None, |_| Ok(())).err().unwrap().code(), ErrorCode::CapacityExhausted);
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

#[test]
fn a_dropped_channel_leaves_its_names_to_their_owner_for_the_grace_period() {
    let reg = TunnelRegistry::with_name_grace(Duration::from_secs(60));
    let (a, _ra) = client_of(&reg, "pi");
    let (intruder, _ri) = client_of(&reg, "intruder");
    reg.open_tunnel(&a, props("shell"), host).unwrap();
    assert_eq!(reg.open_tunnel(&intruder, props("shell"), host).unwrap_err().code(), ErrorCode::InvalidRequest, "live");
    reg.remove_client(&a);
    assert!(reg.find("shell").is_none(), "a reserved name resolves to nothing");
    let refused = reg.open_tunnel(&intruder, props("SHELL"), host).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidRequest);
    assert!(opt_str(&refused.message).unwrap().contains("reserved"), "{refused}");
    let (back, _rb) = client_of(&reg, "pi");
    assert!(reg.open_tunnel(&back, props("shell"), host).is_ok(), "the owner takes its name back");
}

#[test]
fn names_are_free_after_the_grace_and_at_once_after_an_eviction() {
    let reg = TunnelRegistry::with_name_grace(Duration::from_millis(1));
    let (a, _ra) = client_of(&reg, "pi");
    let (b, _rb) = client_of(&reg, "other");
    reg.open_tunnel(&a, props("shell"), host).unwrap();
    reg.remove_client(&a);
    std::thread::sleep(Duration::from_millis(5));
    let t = reg.open_tunnel(&b, props("shell"), host).expect("the grace is over");
    assert!(reg.evict_tunnel(opt_id(&t)));
    let (c, _rc) = client_of(&reg, "third");
    assert!(reg.open_tunnel(&c, props("shell"), host).is_ok(), "an evicted name is free");
}

#[test]
fn names_never_look_like_ids_and_ids_resolve_in_any_case() {
    let reg = TunnelRegistry::default();
    let (a, _ra) = client(&reg);
    let unnamed = reg.open_tunnel(&a, TunnelProperties::default(), host).unwrap();
    let id = opt_id(&unnamed).to_owned();
    for name in [id.clone(), id.to_ascii_uppercase(), "0123456789ABCDEF".into()] {
        let refused = reg.open_tunnel(&a, props(&name), host).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidRequest, "{name}");
        assert!(opt_str(&refused.message).unwrap().contains("shape of a tunnel id"), "{refused}");
    }
    assert_eq!(reg.find(&id.to_ascii_uppercase()).map(|t| t.props.id), Some(some_str(id)));
}

#[test]
fn a_1_4_agent_confirms_its_streams_and_a_1_3_agent_is_not_waited_for() {
    let reg = Arc::new(TunnelRegistry::default());
    let (tx, _rx) = async_channel::bounded(8);
    let modern = reg.add_client(ClientDetails::this_binary("t"), "sub".into(), tx);
    reg.open_tunnel(&modern, props("new"), host).unwrap();
    let (legacy, _rl) = client(&reg);
    reg.open_tunnel(&legacy, props("old"), host).unwrap();
    assert!(reg.begin_stream("old", None, |_| Ok(())).unwrap().answer.is_none(), "1.3: no answer awaited");

    let pending = reg.begin_stream("new", None, |_| Ok(())).unwrap();
    let answer = pending.answer.as_ref().expect("1.4: the answer is awaited");
    reg.answer_stream(&legacy, &pending.stream_id, Ok(()));
    assert!(answer.try_recv().is_err(), "only the owner's channel answers");
    reg.answer_stream(&modern, &pending.stream_id, Ok(()));
    assert_eq!(answer.try_recv().unwrap(), Ok(()));
    let refused = reg.begin_stream("new", None, |_| Ok(())).unwrap();
    let down = ProtoError::new(ErrorCode::ServiceUnavailable, "local service down");
    reg.answer_stream(&modern, &refused.stream_id, Err(down.clone()));
    assert_eq!(refused.answer.as_ref().unwrap().try_recv().unwrap(), Err(down));
    drop((pending, refused));
    assert!(reg.lock().answers.is_empty(), "waiters leave with their streams");
}
