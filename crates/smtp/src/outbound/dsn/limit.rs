//! A cap on the DSNs sent to one domain: whoever can make us send DSNs (with forged reverse-paths
//! that pass no check we make, or with a real domain of their own) cannot turn this server into a
//! flood aimed at one domain. In memory, per node: a fixed window of an hour per domain.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the limit counts in.
const WINDOW: Duration = Duration::from_secs(3600);
/// Domains tracked before expired windows are swept (each entry is a few dozen octets).
const SWEEP_ABOVE: usize = 10_000;

/// DSNs per destination domain and hour. Share one (`Arc`) between the SMTP sessions and the
/// outbound worker: both send DSNs.
#[derive(Debug)]
pub struct DsnLimiter {
    per_window: u32,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    sent: u32,
    /// Whether a DSN was refused in this window already (the refusal is logged once per window).
    refused: bool,
}

/// Whether one more DSN may go to a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Send it.
    Send,
    /// Drop it; `first` for the first refusal of the window (log that one).
    Drop {
        /// The first refusal in this window.
        first: bool,
    },
}

impl DsnLimiter {
    /// At most `per_hour` DSNs to one domain per hour (`outbound.dsn_per_domain_per_hour`).
    pub fn new(per_hour: u32) -> DsnLimiter {
        DsnLimiter {
            per_window: per_hour,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a DSN to `domain` if the limit allows it.
    pub(crate) fn admit(&self, domain: &str) -> Admission {
        self.admit_at(domain, Instant::now())
    }

    fn admit_at(&self, domain: &str, now: Instant) -> Admission {
        // A poisoned lock only means another task panicked while counting; the counts are fine.
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows
            .entry(domain.to_ascii_lowercase())
            .or_insert(Window {
                started: now,
                sent: 0,
                refused: false,
            });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                sent: 0,
                refused: false,
            };
        }
        if window.sent < self.per_window {
            window.sent += 1;
            return Admission::Send;
        }
        let first = !window.refused;
        window.refused = true;
        Admission::Drop { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_gets_at_most_the_limit_per_hour_and_the_first_refusal_is_marked() {
        let limiter = DsnLimiter::new(2);
        let t0 = Instant::now();
        assert_eq!(limiter.admit_at("victim.test", t0), Admission::Send);
        assert_eq!(limiter.admit_at("VICTIM.test", t0), Admission::Send);
        assert_eq!(
            limiter.admit_at("victim.test", t0),
            Admission::Drop { first: true }
        );
        assert_eq!(
            limiter.admit_at("victim.test", t0 + Duration::from_secs(60)),
            Admission::Drop { first: false }
        );
        // Other domains count on their own.
        assert_eq!(limiter.admit_at("other.test", t0), Admission::Send);
        // A new hour, a new allowance.
        assert_eq!(
            limiter.admit_at("victim.test", t0 + WINDOW),
            Admission::Send
        );
    }

    #[test]
    fn expired_windows_are_swept_when_many_domains_are_tracked() {
        let limiter = DsnLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..=SWEEP_ABOVE {
            limiter.admit_at(&format!("d{i}.test"), t0);
        }
        limiter.admit_at("late.test", t0 + WINDOW);
        let tracked = limiter.windows.lock().unwrap().len();
        assert_eq!(tracked, 1);
    }
}
