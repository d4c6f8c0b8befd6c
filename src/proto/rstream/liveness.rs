//! Control-channel liveness (protocol 1.4): the policy a client asks for, the engine's answer, and the numbered
//! heartbeats with their acknowledgements — the rules both sides apply, in one place.
//!
//! A 1.4 client puts `liveness{heartbeat_interval_ms}` in `OpenControlChannelReq`; an engine that negotiates it
//! echoes the interval in `Ok.liveness` with a timeout ([`engine_answer`]: 3 × interval, at most
//! [`MAX_HEARTBEAT_TIMEOUT_MS`]). The client accepts the answer only when the interval is its own and
//! interval ≤ timeout ≤ [`MAX_HEARTBEAT_TIMEOUT_MS`] ([`client_accepts`]); no `Ok.liveness` means a 1.3 engine
//! and legacy (empty) heartbeats. In a negotiated session the client numbers its heartbeats 1, 2, 3, … and the
//! engine answers each with `Heartbeat{sequence: 0, acknowledgement: N}`; an ack that is 0, does not increase,
//! or is ahead of the last number sent is a protocol error ([`HeartbeatCounter::acknowledge`]). Either side
//! drops a channel from which nothing arrived for the timeout.
//!
//! ```
//! use rstream::proto::rstream::{client_accepts, engine_answer, ControlChannelLiveness, HeartbeatCounter};
//! let asked = ControlChannelLiveness { heartbeat_interval_ms: 5000, heartbeat_timeout_ms: 0 };
//! let answer = engine_answer(asked).unwrap();
//! assert_eq!(answer.heartbeat_timeout_ms, 15_000);
//! assert_eq!(client_accepts(5000, Some(answer)).unwrap(), Some(std::time::Duration::from_secs(15)));
//! let counter = HeartbeatCounter::default();
//! assert_eq!(counter.next_heartbeat().sequence, 1);
//! assert!(counter.acknowledge(1).is_ok());
//! assert!(counter.acknowledge(1).is_err(), "an ack must increase");
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{ControlChannelLiveness, Heartbeat};

/// The longest heartbeat timeout either side accepts (upstream's bound), in milliseconds.
pub const MAX_HEARTBEAT_TIMEOUT_MS: u32 = 900_000;
/// The shortest heartbeat interval the engine negotiates, in milliseconds: a client cannot make the engine
/// answer more than 10 heartbeats a second.
pub const MIN_HEARTBEAT_INTERVAL_MS: u32 = 100;
/// The engine's timeout is this many intervals (capped at [`MAX_HEARTBEAT_TIMEOUT_MS`]).
pub const TIMEOUT_INTERVALS: u32 = 3;

/// The engine's answer to a client's liveness policy: the same interval and a timeout of
/// [`TIMEOUT_INTERVALS`] × interval, at most [`MAX_HEARTBEAT_TIMEOUT_MS`]. An interval outside
/// [`MIN_HEARTBEAT_INTERVAL_MS`]..=[`MAX_HEARTBEAT_TIMEOUT_MS`] is refused with the reason.
pub fn engine_answer(asked: ControlChannelLiveness) -> Result<ControlChannelLiveness, String> {
    let interval = asked.heartbeat_interval_ms;
    if !(MIN_HEARTBEAT_INTERVAL_MS..=MAX_HEARTBEAT_TIMEOUT_MS).contains(&interval) {
        return Err(format!(
            "invalid liveness policy: heartbeat_interval_ms {interval} is outside \
             {MIN_HEARTBEAT_INTERVAL_MS}..={MAX_HEARTBEAT_TIMEOUT_MS}"
        ));
    }
    let timeout = interval.saturating_mul(TIMEOUT_INTERVALS).min(MAX_HEARTBEAT_TIMEOUT_MS);
    Ok(ControlChannelLiveness { heartbeat_interval_ms: interval, heartbeat_timeout_ms: timeout })
}

/// The client's check of the engine's `Ok.liveness` for its `interval_ms`: `Ok(None)` when absent (a 1.3
/// engine: legacy heartbeats), `Ok(Some(timeout))` when negotiated, an error when the interval is not the one
/// asked for or the timeout is not within interval..=[`MAX_HEARTBEAT_TIMEOUT_MS`].
pub fn client_accepts(interval_ms: u32, answer: Option<ControlChannelLiveness>) -> Result<Option<Duration>, String> {
    let Some(answer) = answer else { return Ok(None) };
    let (interval, timeout) = (answer.heartbeat_interval_ms, answer.heartbeat_timeout_ms);
    if interval != interval_ms || !(interval..=MAX_HEARTBEAT_TIMEOUT_MS).contains(&timeout) {
        return Err(format!(
            "invalid liveness policy from the engine: interval {interval} ms (asked {interval_ms} ms), \
             timeout {timeout} ms (must be within the interval..={MAX_HEARTBEAT_TIMEOUT_MS} ms)"
        ));
    }
    Ok(Some(Duration::from_millis(u64::from(timeout))))
}

/// The client's heartbeat numbers in one negotiated session: the last sent and the last acknowledged.
#[derive(Debug, Default)]
pub struct HeartbeatCounter {
    sent: AtomicU64,
    acked: AtomicU64,
}

impl HeartbeatCounter {
    /// The next numbered heartbeat to send (1, 2, 3, …).
    pub fn next_heartbeat(&self) -> Heartbeat {
        Heartbeat { sequence: self.sent.fetch_add(1, Ordering::AcqRel) + 1, acknowledgement: 0 }
    }

    /// Records the engine's acknowledgement `ack`; an ack that is 0, not above the previous one, or above the
    /// last number sent is a protocol error.
    pub fn acknowledge(&self, ack: u64) -> Result<(), String> {
        let (sent, acked) = (self.sent.load(Ordering::Acquire), self.acked.load(Ordering::Acquire));
        let problem = match ack {
            0 => "is 0",
            a if a <= acked => "does not increase",
            a if a > sent => "is ahead of the last heartbeat sent",
            _ => {
                self.acked.store(ack, Ordering::Release);
                return Ok(());
            }
        };
        Err(format!("heartbeat acknowledgement {ack} {problem} (last sent {sent}, last acknowledged {acked})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(interval: u32, timeout: u32) -> ControlChannelLiveness {
        ControlChannelLiveness { heartbeat_interval_ms: interval, heartbeat_timeout_ms: timeout }
    }

    #[test]
    fn the_engine_answers_three_intervals_capped_at_fifteen_minutes() {
        assert_eq!(engine_answer(policy(5000, 0)), Ok(policy(5000, 15_000)));
        assert_eq!(engine_answer(policy(200, 99)), Ok(policy(200, 600)), "the client's timeout is not taken");
        assert_eq!(engine_answer(policy(400_000, 0)), Ok(policy(400_000, 900_000)));
        assert_eq!(engine_answer(policy(900_000, 0)), Ok(policy(900_000, 900_000)));
        for bad in [0, 99, 900_001, u32::MAX] {
            assert!(engine_answer(policy(bad, 0)).unwrap_err().starts_with("invalid liveness policy"), "{bad}");
        }
    }

    #[test]
    fn the_client_refuses_a_policy_it_did_not_ask_for() {
        assert_eq!(client_accepts(5000, None), Ok(None), "a 1.3 engine: legacy");
        assert_eq!(client_accepts(5000, Some(policy(5000, 5000))), Ok(Some(Duration::from_secs(5))));
        assert_eq!(client_accepts(5000, Some(policy(5000, 900_000))), Ok(Some(Duration::from_secs(900))));
        for bad in [policy(4000, 12_000), policy(5000, 4999), policy(5000, 900_001), policy(5000, 0)] {
            assert!(client_accepts(5000, Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn acks_must_be_nonzero_increasing_and_not_ahead() {
        let counter = HeartbeatCounter::default();
        assert!(counter.acknowledge(1).unwrap_err().contains("ahead"), "nothing sent yet");
        let sent: Vec<u64> = (0..3).map(|_| counter.next_heartbeat().sequence).collect();
        assert_eq!(sent, [1, 2, 3]);
        assert!(counter.acknowledge(0).unwrap_err().contains("is 0"));
        assert_eq!(counter.acknowledge(2), Ok(()), "acks may skip (a lost ack)");
        assert!(counter.acknowledge(2).unwrap_err().contains("does not increase"));
        assert!(counter.acknowledge(1).unwrap_err().contains("does not increase"));
        assert!(counter.acknowledge(4).unwrap_err().contains("ahead"));
        assert_eq!(counter.acknowledge(3), Ok(()));
    }
}
