//! Authentication-failure throttling that slows guessing down without locking anyone out.
//!
//! Counting failures per account name let anyone lock any account (security issue 17): a dozen
//! wrong passwords from anywhere refused the owner's right password too, and one device still
//! trying an old password locked the account on every other device. So nothing here is keyed
//! by the account name alone:
//!
//! - **Per (account name, client address)**: the tarpit. Failures of one name from one address
//!   (IPv6: its /64) count inside `window`. From the `account_limit`-th on, the next attempt
//!   under that key waits before its password is verified: `base_delay` (1 s), twice as long per
//!   further failure, at most `max_delay` (15 s, Dovecot's auth penalty cap). Attempts are delayed,
//!   never refused, and a success clears the key. A password from an address without failures
//!   for that name is never delayed by other addresses' failures, so the owner's other devices
//!   keep working while an attacker (or a stale device) keeps failing elsewhere.
//! - **Per client address**: tarpit, then a fail2ban-style block. Failures from one address at
//!   any names count too; from half of `ip_limit` on they delay that address's attempts the same
//!   way (spraying many names from one address meets no per-name tarpit), and at `ip_limit` the
//!   address is refused outright for `block_duration`. [`Throttle::record_failure`] reports each
//!   new block once, for the caller to log with its reason. When the block ends the address
//!   starts with a clean count. Loopback is not exempt.
//! - **Forgiveness.** A success forgives that name's failures from that address in the address's
//!   count too: the user mistyped their own password, then proved they know it. Failures at other
//!   names stay counted, so owning one valid account does not unlock a spraying client.
//! - **Repeats.** A failure with the same wrong password as the key's previous failure is not
//!   counted again (as Dovecot does): a device retrying an old password in a loop guesses
//!   nothing new, and must not push its household's address into the tarpit or a block. Only a
//!   32-bit keyed hash of the last wrong password is kept, never the password.
//!
//! Concurrent attempts cannot bypass a delay: each key has a "not before" instant, and every
//! attempt admitted while the key's tarpit is active pushes it one delay further, so parallel
//! connections queue behind each other. Before the first failures are recorded, though, there
//! is no tarpit yet: fifty connections sending their guesses at the same instant would all be
//! verified at once. So each key also bounds its attempts in flight (admitted, outcome not yet
//! recorded): at most `account_limit` per (name, address) and half of `ip_limit` per address,
//! the points where the tarpits start. A further attempt is [`Refusal::Busy`]: the caller
//! waits and asks again, and by then the outcomes of those in flight are recorded, so a wave
//! of guesses meets the tarpit after its first few, while a burst of honest logins (an office
//! behind one address at nine o'clock, a webmail server) only waits a verification or two.
//! Counting attempts in flight as failures instead would delay such bursts for seconds. An attempt that would have to queue longer than
//! `max_delay` is refused with the time to wait rather than held; that only ever concerns the
//! key that is failing, and a client that waits for each answer never meets it.
//!
//! Time is passed in (`now: Instant`) so tests never sleep; the caller sleeps until the instant
//! [`Throttle::admit`] returns. Memory is bounded by `max_entries` per table: when full, expired
//! entries go first, then the least recently seen tenth. Names are kept to at most 256 octets
//! (an address is at most 254, RFC 5321 §4.5.3.1.3; a longer name matches no account anyway).
//!
//! In a multi-node deployment each node throttles on its own; that only multiplies the limits
//! by the node count. Guessing one account's password from many addresses gets each address's
//! allowance: that is the price of never locking the owner out, as with Dovecot.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Throttling limits. Defaults follow common practice (fail2ban, Dovecot's auth penalty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures of one account name from one address (IPv6: /64) inside `window` before that
    /// pair's attempts are delayed. Default 5: typos pass unnoticed. 0 turns the tarpit per
    /// name off.
    pub account_limit: u32,
    /// Failures from one address (IPv6: /64), at any names, inside `window` before the address
    /// is blocked for `block_duration`; from half as many on its attempts are delayed. Default
    /// 20. 0 turns the per-address tarpit and block off.
    pub ip_limit: u32,
    /// How long a failure counts. Default 5 minutes.
    pub window: Duration,
    /// First delay once a limit is reached. Default 1 s.
    pub base_delay: Duration,
    /// Longest delay, and the longest an attempt queues before it is refused instead.
    /// Default 15 s (Dovecot's auth penalty cap): long enough to make guessing slow, short
    /// enough for a client's login timeout.
    pub max_delay: Duration,
    /// How long a blocked address is refused. Default 5 minutes.
    pub block_duration: Duration,
    /// Most keys tracked per table ((name, address) pairs; addresses). Default 100 000.
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_limit: 5,
            ip_limit: 20,
            window: Duration::from_secs(5 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            block_duration: Duration::from_secs(5 * 60),
            max_entries: 100_000,
        }
    }
}

/// Why [`Throttle::admit`] refuses an attempt without verifying its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client address is blocked after too many failures.
    AddressBlocked {
        /// When the block ends.
        retry_after: Duration,
    },
    /// Attempts under this key are already queued longer than `max_delay` (parallel guessing).
    Queued {
        /// When a new attempt would be admitted without queueing.
        retry_after: Duration,
    },
    /// As many attempts under this key as it allows are being verified: ask again shortly
    /// (their outcomes decide whether this one is delayed).
    Busy,
}

impl Refusal {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::AddressBlocked { retry_after } | Refusal::Queued { retry_after } => {
                *retry_after
            }
            Refusal::Busy => Duration::ZERO,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::AddressBlocked { .. } => "client address blocked",
            Refusal::Queued { .. } => "too many parallel attempts",
            Refusal::Busy => "as many attempts as allowed are being verified",
        })
    }
}

/// A block [`Throttle::record_failure`] has just imposed on an address, to be logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Failures that triggered it.
    pub failures: u32,
    /// Inside this window.
    pub window: Duration,
    /// How long the address is refused.
    pub duration: Duration,
}

/// Tracks failures; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    tables: Mutex<Tables>,
    /// Keys the fingerprint of a wrong password (random per process).
    fingerprint_key: RandomState,
}

#[derive(Debug, Default)]
struct Tables {
    pairs: Table<PairKey>,
    ips: Table<IpKey>,
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

/// One account name from one client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PairKey {
    account: Box<str>,
    ip: IpKey,
}

impl PairKey {
    fn new(account: &str, ip: IpAddr) -> Self {
        const MAX_NAME: usize = 256;
        let end = account.floor_char_boundary(MAX_NAME);
        PairKey {
            account: account[..end].into(),
            ip: IpKey::from(ip),
        }
    }
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            tables: Mutex::new(Tables::default()),
            fingerprint_key: RandomState::new(),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Whether an attempt for `account` (the normalised name) from `ip` may go ahead, and when:
    /// `Ok(start)` means verify the password at `start` (now, or later while a tarpit is
    /// active), `Err` means refuse it without verifying. An admitted attempt under an active
    /// tarpit pushes the key's "not before" instant, so concurrent attempts queue.
    pub fn admit(&self, account: &str, ip: IpAddr, now: Instant) -> Result<Instant, Refusal> {
        let config = &self.config;
        let mut tables = lock(&self.tables);
        let Tables { pairs, ips } = &mut *tables;
        if let Some(entry) = ips.entries.get(&IpKey::from(ip))
            && let Some(until) = entry.blocked_until.filter(|until| *until > now)
        {
            return Err(Refusal::AddressBlocked {
                retry_after: until - now,
            });
        }
        // The entries are created here, not at the first failure, to count this attempt while
        // it is in flight.
        let pair_entry =
            (config.account_limit > 0).then(|| pairs.entry(PairKey::new(account, ip), now, config));
        let ip_entry = (config.ip_limit > 0).then(|| ips.entry(IpKey::from(ip), now, config));
        // Each key: its entry, the gap this attempt puts behind itself while the key's tarpit
        // is active, and whether the key has as many attempts in flight as it allows.
        let mut keys: Vec<(&mut Entry, Duration, bool)> = Vec::with_capacity(2);
        for (entry, tarpit_from) in [
            (pair_entry, config.account_limit),
            (ip_entry, config.ip_tarpit_from()),
        ] {
            if let Some(entry) = entry {
                entry.refresh(now, config.window);
                let gap = config.delay(entry.failures, tarpit_from);
                let full = entry.in_flight >= tarpit_from;
                keys.push((entry, gap, full));
            }
        }
        let start = keys
            .iter()
            .filter(|(_, gap, _)| !gap.is_zero())
            .map(|(entry, _, _)| entry.not_before)
            .fold(now, Instant::max);
        let wait = start - now;
        if wait > config.max_delay {
            return Err(Refusal::Queued { retry_after: wait });
        }
        if keys.iter().any(|(_, _, full)| *full) {
            return Err(Refusal::Busy);
        }
        for (entry, gap, _) in keys {
            if !gap.is_zero() {
                entry.not_before = start + gap;
            }
            entry.in_flight = entry.in_flight.saturating_add(1);
            entry.last_seen = now;
        }
        Ok(start)
    }

    /// Forgets an admitted attempt that ends without an outcome (the client went away, or
    /// the verification failed for a reason of ours): it no longer counts as in flight.
    pub fn release(&self, account: &str, ip: IpAddr) {
        let mut tables = lock(&self.tables);
        let Tables { pairs, ips } = &mut *tables;
        if let Some(entry) = pairs.entries.get_mut(&PairKey::new(account, ip)) {
            entry.settle();
        }
        if let Some(entry) = ips.entries.get_mut(&IpKey::from(ip)) {
            entry.settle();
        }
    }

    /// Records a failed attempt; `password` is the wrong password when the mechanism had one
    /// (not SCRAM), so that a repeat of the key's previous wrong password is not counted again.
    /// Returns the block this failure imposed on the address, if it did (reported once).
    pub fn record_failure(
        &self,
        account: &str,
        ip: IpAddr,
        password: Option<&[u8]>,
        now: Instant,
    ) -> Option<Block> {
        let config = &self.config;
        if config.account_limit == 0 && config.ip_limit == 0 {
            return None;
        }
        // 32 bits of a keyed hash: enough to tell a repeat, too little to recover a password.
        let fingerprint = password.map(|p| self.fingerprint_key.hash_one(p) as u32);
        let mut tables = lock(&self.tables);
        let Tables { pairs, ips } = &mut *tables;
        let pair = pairs.entry(PairKey::new(account, ip), now, config);
        pair.settle();
        pair.refresh(now, config.window);
        if fingerprint.is_some() && pair.failures > 0 && pair.last_password == fingerprint {
            if let Some(address) = ips.entries.get_mut(&IpKey::from(ip)) {
                address.settle();
            }
            return None;
        }
        pair.last_password = fingerprint;
        pair.fail(now, config.account_limit, config);
        if config.ip_limit == 0 {
            return None;
        }
        let address = ips.entry(IpKey::from(ip), now, config);
        address.settle();
        address.refresh(now, config.window);
        if address.blocked_until.is_some() {
            // A verification that was under way when the block began.
            return None;
        }
        address.fail(now, config.ip_tarpit_from(), config);
        if address.failures < config.ip_limit {
            return None;
        }
        let block = Block {
            failures: address.failures,
            window: config.window,
            duration: config.block_duration,
        };
        let until = now + config.block_duration;
        address.blocked_until = Some(until);
        // The address starts again with a clean count when the block is over.
        address.failures = 0;
        address.window_start = until;
        address.not_before = now;
        Some(block)
    }

    /// Records a success: the key's failures are forgotten, in the address's count too.
    pub fn record_success(&self, account: &str, ip: IpAddr, now: Instant) {
        let mut tables = lock(&self.tables);
        let Tables { pairs, ips } = &mut *tables;
        // No pair entry when the tarpit per name is off (or it was evicted): nothing to forgive.
        let forgiven = pairs
            .entries
            .remove(&PairKey::new(account, ip))
            .map_or(0, |pair| pair.failures);
        if let Some(address) = ips.entries.get_mut(&IpKey::from(ip)) {
            address.settle();
            address.refresh(now, self.config.window);
            address.failures = address.failures.saturating_sub(forgiven);
            if self
                .config
                .delay(address.failures, self.config.ip_tarpit_from())
                .is_zero()
            {
                address.not_before = address.not_before.min(now);
            }
        }
    }

    /// Number of tracked keys ((name, address) pairs, addresses), for metrics and tests.
    pub fn tracked(&self) -> (usize, usize) {
        let tables = lock(&self.tables);
        (tables.pairs.entries.len(), tables.ips.entries.len())
    }
}

impl ThrottleConfig {
    /// The delay behind an attempt under a key with `failures`, for a tarpit that starts at
    /// `from` failures (0: no tarpit): `base_delay` doubling per failure, capped.
    fn delay(&self, failures: u32, from: u32) -> Duration {
        if from == 0 || failures < from {
            return Duration::ZERO;
        }
        let doubled = 2u32.saturating_pow(failures - from);
        self.base_delay
            .checked_mul(doubled)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// Failures from one address before its attempts are delayed: half the block limit.
    fn ip_tarpit_from(&self) -> u32 {
        self.ip_limit.div_ceil(2)
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
    /// The earliest start of the next attempt while the key's tarpit is active.
    not_before: Instant,
    /// Addresses only: refused until then.
    blocked_until: Option<Instant>,
    /// Pairs only: fingerprint of the last wrong password.
    last_password: Option<u32>,
    /// Admitted attempts whose outcome is not recorded yet.
    in_flight: u32,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            window_start: now,
            failures: 0,
            last_seen: now,
            not_before: now,
            blocked_until: None,
            last_password: None,
            in_flight: 0,
        }
    }

    /// One admitted attempt has its outcome (or was abandoned).
    fn settle(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Ends a block that is over and forgets failures older than the window.
    fn refresh(&mut self, now: Instant, window: Duration) {
        if let Some(until) = self.blocked_until {
            if until > now {
                return;
            }
            self.blocked_until = None;
        }
        if now.saturating_duration_since(self.window_start) >= window {
            self.window_start = now;
            self.failures = 0;
        }
    }

    /// Counts a failure; the next attempt waits the delay it earns from now on.
    fn fail(&mut self, now: Instant, tarpit_from: u32, config: &ThrottleConfig) {
        self.failures = self.failures.saturating_add(1);
        self.last_seen = now;
        let delay = config.delay(self.failures, tarpit_from);
        self.not_before = self.not_before.max(now + delay);
    }

    fn is_stale(&self, now: Instant, window: Duration) -> bool {
        let window_over = now.saturating_duration_since(self.window_start) >= window;
        let unblocked = self.blocked_until.is_none_or(|until| until <= now);
        window_over && unblocked && self.not_before <= now && self.in_flight == 0
    }
}

impl<K: Hash + Eq> Table<K> {
    /// The entry of `key`, created (after eviction if the table is full) if missing.
    fn entry(&mut self, key: K, now: Instant, config: &ThrottleConfig) -> &mut Entry {
        if !self.entries.contains_key(&key) && self.entries.len() >= config.max_entries {
            self.evict(now, config);
        }
        self.entries.entry(key).or_insert_with(|| Entry::new(now))
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
#[path = "throttle_tests.rs"]
mod tests;
