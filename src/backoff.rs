//! Reconnect delays: exponential from `RECONNECT_INITIAL`, capped, with jitter so a fleet of devices does not
//! reconnect in lockstep after an engine restart.

use std::time::Duration;

use crate::limits::{RECONNECT_INITIAL, RECONNECT_MAX};

/// The delay sequence between reconnect attempts.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays from [`RECONNECT_INITIAL`] doubling up to `cap` (default [`RECONNECT_MAX`]).
    pub fn new(cap: Option<Duration>) -> Self {
        let max = cap.unwrap_or(RECONNECT_MAX).max(Duration::from_millis(1));
        let initial = RECONNECT_INITIAL.min(max);
        Backoff { initial, max, next: initial }
    }

    /// The next delay: the current step scaled by a random factor in [0.5, 1.0], then the step doubles.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let mut byte = [0u8; 1];
        let jitter = match getrandom::getrandom(&mut byte) {
            Ok(()) => 0.5 + f64::from(byte[0]) / 510.0,
            Err(_) => 0.75,
        };
        step.mul_f64(jitter)
    }

    /// Back to the first step (after a session that came fully up).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(Some(Duration::from_secs(2)));
        let steps: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        let nominal = [250, 500, 1000, 2000, 2000, 2000].map(Duration::from_millis);
        for (got, step) in steps.iter().zip(nominal) {
            assert!(*got >= step / 2 && *got <= step, "{got:?} not within jitter of {step:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(250));
    }

    #[test]
    fn a_cap_below_the_first_step_is_the_only_step() {
        let mut b = Backoff::new(Some(Duration::from_millis(100)));
        assert!(b.next_delay() <= Duration::from_millis(100));
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
