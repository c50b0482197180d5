//! Reconnect back-off: exponential, jittered, capped.
//!
//! When a server node dies, every device it held loses its connection in the same instant; were
//! they all to come back after the same delay, the surviving nodes (or the load balancer) would
//! take the whole fleet's logins at once, again at each retry. Each wait is therefore the current
//! step times a random factor in [0.5, 1.5), never above the cap, and the step doubles after each
//! failure until it reaches the cap. A session that got records acked resets it (the TCP loop in
//! `device/tcp.rs` decides): a login alone does not, since a node whose database is down takes
//! logins and then drops the connection.

use std::time::Duration;

use super::route::Rng;

/// The waits of one device between connection attempts.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// `first`: the step after a session ended; `max`: the longest wait (and step).
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        let max = max.max(first);
        Self {
            first,
            max,
            step: first,
        }
    }

    /// The last session was a working one: the next failure waits about `first` again.
    pub(crate) fn reset(&mut self) {
        self.step = self.first;
    }

    /// How long to wait before the next attempt; doubles the step for the one after.
    pub(crate) fn next_wait(&mut self, jitter: &mut Rng) -> Duration {
        let wait = self.step.mul_f64(jitter.range(0.5, 1.5)).min(self.max);
        self.step = (self.step * 2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_with_jitter_up_to_the_cap_and_reset_after_a_login() {
        let mut rng = Rng::new(7);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait(&mut rng)).collect();
        let mut step = Duration::from_millis(100);
        for w in &waits {
            assert!(*w >= step / 2 && *w < step * 3 / 2, "{w:?} around {step:?}");
            assert!(*w <= Duration::from_secs(1), "{w:?} above the cap");
            step = (step * 2).min(Duration::from_secs(1));
        }
        assert!(waits[4..].iter().all(|w| *w >= Duration::from_millis(500)));
        b.reset();
        assert!(b.next_wait(&mut rng) < Duration::from_millis(150));
    }

    #[test]
    fn devices_disconnected_together_spread_their_retries() {
        let mut waits: Vec<Duration> = (0..100)
            .map(|i| {
                Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
                    .next_wait(&mut Rng::new(i))
            })
            .collect();
        waits.sort();
        assert!(
            waits[99] - waits[0] > Duration::from_millis(800),
            "{waits:?}"
        );
    }
}
