//! Which addresses to dial and when: configured peers forever, learned ones a few times, each
//! with capped, jittered exponential backoff.

use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Failed attempts after which a learned (not configured) address is forgotten.
const MAX_LEARNED_FAILURES: u32 = 6;
/// Most addresses tracked at once; further learned addresses are ignored.
const MAX_TARGETS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Dialing,
    Connected,
}

#[derive(Debug)]
struct Target {
    configured: bool,
    state: State,
    failures: u32,
    next_at: Instant,
}

/// Dial schedule. Time is passed in, so the policy is testable without sleeping.
#[derive(Debug)]
pub struct Dialer {
    targets: BTreeMap<String, Target>,
    base: Duration,
    max: Duration,
}

impl Dialer {
    /// Backoff starts at `base` and doubles up to `max` (each delay jittered to 50-100%).
    pub fn new(base: Duration, max: Duration) -> Dialer {
        Dialer {
            targets: BTreeMap::new(),
            base,
            max: max.max(base),
        }
    }

    /// Adds an address to dial now; `false` if it was already known or the table is full.
    pub fn add(&mut self, addr: &str, configured: bool, now: Instant) -> bool {
        if let Some(t) = self.targets.get_mut(addr) {
            t.configured |= configured;
            return false;
        }
        if !configured && self.targets.len() >= MAX_TARGETS {
            return false;
        }
        self.targets.insert(
            addr.to_string(),
            Target {
                configured,
                state: State::Waiting,
                failures: 0,
                next_at: now,
            },
        );
        true
    }

    /// Never dial `addr` again (e.g. it is this node itself).
    pub fn remove(&mut self, addr: &str) {
        self.targets.remove(addr);
    }

    /// Whether `addr` came from `--peer` (dialled forever).
    pub fn is_configured(&self, addr: &str) -> bool {
        self.targets.get(addr).is_some_and(|t| t.configured)
    }

    /// Addresses due for a dial at `now`, marked as dialling. Learned addresses are only taken
    /// while `learned_budget` allows.
    pub fn due(&mut self, now: Instant, mut learned_budget: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (addr, t) in self.targets.iter_mut() {
            if t.state != State::Waiting || t.next_at > now {
                continue;
            }
            if !t.configured {
                if learned_budget == 0 {
                    continue;
                }
                learned_budget -= 1;
            }
            t.state = State::Dialing;
            out.push(addr.clone());
        }
        out
    }

    /// The TCP connection to `addr` is open.
    pub fn connected(&mut self, addr: &str) {
        if let Some(t) = self.targets.get_mut(addr) {
            t.state = State::Connected;
        }
    }

    /// The handshake with `addr` completed: it is a good address again.
    pub fn ready(&mut self, addr: &str) {
        if let Some(t) = self.targets.get_mut(addr) {
            t.failures = 0;
        }
    }

    /// A dial failed or a connection closed: try again after the backoff.
    pub fn failed(&mut self, addr: &str, now: Instant, jitter: &mut impl Rng) {
        let Some(t) = self.targets.get_mut(addr) else {
            return;
        };
        t.failures = t.failures.saturating_add(1);
        if !t.configured && t.failures >= MAX_LEARNED_FAILURES {
            self.targets.remove(addr);
            return;
        }
        let exp = self
            .base
            .saturating_mul(1u32 << t.failures.min(16))
            .min(self.max);
        let delay = exp.mul_f64(jitter.gen_range(0.5..1.0));
        t.state = State::Waiting;
        t.next_at = now + delay;
    }

    /// Another connection already reaches `addr`'s node; look again after the maximum delay.
    pub fn covered(&mut self, addr: &str, now: Instant) {
        if let Some(t) = self.targets.get_mut(addr) {
            t.state = State::Waiting;
            t.next_at = now + self.max;
        }
    }

    /// The connection that covered `addr` is gone: dial it again soon.
    pub fn nudge(&mut self, addr: &str, now: Instant) {
        if let Some(t) = self.targets.get_mut(addr) {
            if t.state == State::Waiting {
                t.next_at = t.next_at.min(now + self.base);
            }
        }
    }

    /// When the next waiting address becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.targets
            .values()
            .filter(|t| t.state == State::Waiting)
            .map(|t| t.next_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_caps_and_forgets_learned() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let base = Duration::from_millis(100);
        let mut d = Dialer::new(base, Duration::from_secs(2));
        let t0 = Instant::now();
        assert!(d.add("a:1", true, t0));
        assert!(d.add("b:1", false, t0));
        assert!(!d.add("a:1", false, t0));
        assert_eq!(d.due(t0, 0), vec!["a:1".to_string()]);
        assert_eq!(d.due(t0, 5), vec!["b:1".to_string()]);
        let mut prev = Duration::ZERO;
        for i in 0..10 {
            d.failed("a:1", t0, &mut rng);
            let wait = d.targets["a:1"].next_at - t0;
            assert!(wait <= Duration::from_secs(2), "capped");
            if i < 3 {
                assert!(wait >= prev / 2, "grows");
            }
            prev = wait;
        }
        for _ in 0..MAX_LEARNED_FAILURES {
            d.failed("b:1", t0, &mut rng);
        }
        assert!(!d.targets.contains_key("b:1"), "learned address forgotten");
        assert!(d.is_configured("a:1"), "configured address kept");
    }
}
