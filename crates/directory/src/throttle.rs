//! Authentication-failure throttling, per client address and per account name, in memory.
//!
//! Each key counts failures inside a sliding window (the count restarts when the first
//! failure is older than the window). From the `limit`-th failure on, the key is blocked
//! for an exponentially growing delay (`base_delay`, ×2 per further failure); once that
//! delay would exceed `max_delay`, the key is blocked for `block_duration`. A success
//! clears the account's counter (not the address's: one valid login must not unlock a
//! password-spraying client).
//!
//! Time is passed in (`now: Instant`) so tests never sleep. Memory is bounded by
//! `max_entries`: when full, expired entries go first, then the least recently seen.
//! IPv6 clients are counted per /64, since one host usually owns a whole /64.
//!
//! In a multi-node deployment each node throttles on its own; that only multiplies the
//! limits by the node count.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Throttling limits. Defaults follow common practice (fail2ban-like, Dovecot auth penalty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures per account name inside `window` before delays start. Default 5.
    pub account_limit: u32,
    /// Failures per client address (IPv6: /64) inside `window` before delays start. Default 20.
    pub ip_limit: u32,
    /// How long a failure counts. Default 15 minutes.
    pub window: Duration,
    /// First delay once the limit is reached. Default 1 s.
    pub base_delay: Duration,
    /// Largest delay; beyond it the key is blocked for `block_duration`. Default 60 s.
    pub max_delay: Duration,
    /// The temporary block. Default 5 minutes.
    pub block_duration: Duration,
    /// Most keys tracked per table (accounts, addresses). Default 100 000.
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_limit: 5,
            ip_limit: 20,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            block_duration: Duration::from_secs(5 * 60),
            max_entries: 100_000,
        }
    }
}

/// Tracks failures; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    accounts: Mutex<Table<String>>,
    ips: Mutex<Table<IpKey>>,
}

/// Client address as counted: IPv4 as is, IPv6 by its /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(u32::from(v4)),
                None => IpKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            accounts: Mutex::new(Table::default()),
            ips: Mutex::new(Table::default()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// `Err(retry_after)` if the account name or the address is currently blocked.
    /// `account` should be the normalised user name.
    pub fn check(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let by_ip = lock(&self.ips).blocked_for(&IpKey::from(ip), now);
        let by_account = lock(&self.accounts).blocked_for(account, now);
        match by_ip.max(by_account) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt for both keys. A limit of 0 turns that counter off (as
    /// `auth.max_failures_per_*` = 0 is documented to), instead of blocking at once.
    pub fn record_failure(&self, account: &str, ip: IpAddr, now: Instant) {
        if self.config.account_limit > 0 {
            lock(&self.accounts).fail(
                account.to_owned(),
                now,
                self.config.account_limit,
                &self.config,
            );
        }
        if self.config.ip_limit > 0 {
            lock(&self.ips).fail(IpKey::from(ip), now, self.config.ip_limit, &self.config);
        }
    }

    /// Records a success: the account's failures are forgotten.
    pub fn record_success(&self, account: &str) {
        lock(&self.accounts).entries.remove(account);
    }

    /// Number of tracked keys (accounts, addresses), for metrics and tests.
    pub fn tracked(&self) -> (usize, usize) {
        (
            lock(&self.accounts).entries.len(),
            lock(&self.ips).entries.len(),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a table inconsistent in a way that matters
    // (worst case one counter is off), so a poisoned lock is simply reused.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    last_seen: Instant,
    blocked_until: Option<Instant>,
}

impl Entry {
    fn is_stale(&self, now: Instant, window: Duration) -> bool {
        let window_over = now.saturating_duration_since(self.window_start) >= window;
        let unblocked = self.blocked_until.is_none_or(|until| until <= now);
        window_over && unblocked
    }
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn blocked_for<Q>(&self, key: &Q, now: Instant) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let until = self.entries.get(key)?.blocked_until?;
        Some(until.saturating_duration_since(now))
    }

    fn fail(&mut self, key: K, now: Instant, limit: u32, config: &ThrottleConfig) {
        if !self.entries.contains_key(&key) && self.entries.len() >= config.max_entries {
            self.evict(now, config);
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
            last_seen: now,
            blocked_until: None,
        });
        if entry.is_stale(now, config.window) {
            entry.window_start = now;
            entry.failures = 0;
            entry.blocked_until = None;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_seen = now;
        if entry.failures >= limit {
            let excess = entry.failures - limit;
            let delay = config
                .base_delay
                .checked_mul(2u32.saturating_pow(excess))
                .filter(|d| *d <= config.max_delay);
            let wait = delay.unwrap_or(config.block_duration);
            entry.blocked_until = Some(now + wait);
        }
    }

    /// Frees room: drops stale entries, then (if still full) the least recently seen tenth.
    fn evict(&mut self, now: Instant, config: &ThrottleConfig) {
        self.entries.retain(|_, e| !e.is_stale(now, config.window));
        if self.entries.len() < config.max_entries {
            return;
        }
        let mut seen: Vec<Instant> = self.entries.values().map(|e| e.last_seen).collect();
        let drop = (config.max_entries / 10).max(1).min(seen.len());
        let (_, cutoff, _) = seen.select_nth_unstable(drop.saturating_sub(1));
        let cutoff = *cutoff;
        let mut removed = 0;
        self.entries.retain(|_, e| {
            if removed < drop && e.last_seen <= cutoff {
                removed += 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const IP2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const S: Duration = Duration::from_secs(1);

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig::default())
    }

    #[test]
    fn account_is_delayed_after_limit_with_growing_delay_then_blocked() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..4 {
            t.record_failure("alice@example.test", IP, now);
            assert_eq!(t.check("alice@example.test", IP, now), Ok(()));
        }
        let mut expected = Vec::new();
        for _ in 0..7 {
            t.record_failure("alice@example.test", IP, now);
            expected.push(t.check("alice@example.test", IP2, now));
        }
        assert_eq!(
            expected,
            vec![
                Err(S),
                Err(2 * S),
                Err(4 * S),
                Err(8 * S),
                Err(16 * S),
                Err(32 * S),
                Err(300 * S)
            ]
        );
        // Other accounts are unaffected.
        assert_eq!(t.check("bob@example.test", IP2, now), Ok(()));
    }

    #[test]
    fn block_expires() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..5 {
            t.record_failure("alice", IP, now);
        }
        assert_eq!(t.check("alice", IP, now), Err(S));
        assert_eq!(t.check("alice", IP, now + S / 2), Err(S / 2));
        assert_eq!(t.check("alice", IP, now + S), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..4 {
            t.record_failure("alice", IP, now);
        }
        let later = now + Duration::from_secs(15 * 60);
        t.record_failure("alice", IP, later);
        assert_eq!(t.check("alice", IP, later), Ok(()));
    }

    #[test]
    fn ip_is_delayed_after_its_own_limit_across_accounts() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..19 {
            t.record_failure(&format!("user{i}"), IP, now);
        }
        assert_eq!(t.check("fresh", IP, now), Ok(()));
        t.record_failure("user19", IP, now);
        assert_eq!(t.check("fresh", IP, now), Err(S));
        assert_eq!(t.check("fresh", IP2, now), Ok(()));
    }

    #[test]
    fn ipv6_clients_in_one_64_share_a_counter() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..20u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            t.record_failure(&format!("user{i}"), ip, now);
        }
        let same64 = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        let other64 = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(t.check("x", same64, now).is_err());
        assert_eq!(t.check("x", other64, now), Ok(()));
    }

    #[test]
    fn success_resets_the_account_counter_but_not_the_ip() {
        let t = Throttle::new(ThrottleConfig {
            ip_limit: 6,
            ..ThrottleConfig::default()
        });
        let now = Instant::now();
        for _ in 0..4 {
            t.record_failure("alice", IP, now);
        }
        t.record_success("alice");
        t.record_failure("alice", IP, now);
        assert_eq!(t.check("alice", IP2, now), Ok(()));
        t.record_failure("alice", IP, now);
        // The address has six failures now.
        assert_eq!(t.check("other", IP, now), Err(S));
    }

    #[test]
    fn a_zero_limit_turns_that_counter_off() {
        let now = Instant::now();
        let no_account_limit = Throttle::new(ThrottleConfig {
            account_limit: 0,
            ..ThrottleConfig::default()
        });
        for _ in 0..10 {
            no_account_limit.record_failure("alice", IP, now);
        }
        assert_eq!(no_account_limit.check("alice", IP2, now), Ok(()));
        let no_ip_limit = Throttle::new(ThrottleConfig {
            ip_limit: 0,
            ..ThrottleConfig::default()
        });
        for i in 0..50 {
            no_ip_limit.record_failure(&format!("user{i}"), IP, now);
        }
        assert_eq!(no_ip_limit.check("fresh", IP, now), Ok(()));
        // The other counter still works.
        for _ in 0..5 {
            no_ip_limit.record_failure("alice", IP, now);
        }
        assert_eq!(no_ip_limit.check("alice", IP2, now), Err(S));
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let t = Throttle::new(ThrottleConfig {
            max_entries: 100,
            ..ThrottleConfig::default()
        });
        let now = Instant::now();
        for i in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            t.record_failure(
                &format!("user{i}"),
                ip,
                now + Duration::from_millis(u64::from(i)),
            );
        }
        let (accounts, ips) = t.tracked();
        assert!(accounts <= 100 && ips <= 100, "{accounts} {ips}");
        // The most recent key survived eviction.
        assert!(lock(&t.accounts).entries.contains_key("user999"));
    }
}
