//! A short-lived cache of successful password verifications (the idea of Dovecot's auth
//! cache): clients that log in every minute (IMAP polling, several POP3 connections) skip
//! the argon2 work after the first success.
//!
//! An entry holds `HMAC-SHA256(process key, stored hash ‖ NUL ‖ password)`, the account id
//! and an expiry — never the password. The process key is random and never leaves memory,
//! so a memory dump does not give an offline-guessable value cheaper than the argon2 hash.
//! Binding the MAC to the stored PHC string means a password changed anywhere (another
//! node included) misses the cache at once; the Directory also invalidates explicitly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::password::{PasswordError, ct_eq, random_bytes};
use aws_lc_rs::hmac;

#[derive(Debug)]
pub struct AuthCache<Id> {
    key: hmac::Key,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry<Id>>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry<Id> {
    mac: [u8; 32],
    account: Id,
    expires: Instant,
}

/// `Id` is the account id type (the store's `AccountId`).
impl<Id: Copy + Eq> AuthCache<Id> {
    /// A cache keeping entries for `ttl` (zero disables it), at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Result<Self, PasswordError> {
        let key = random_bytes::<32>()?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    fn mac(&self, password_hash: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(password_hash.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        // HMAC-SHA256 tags are exactly 32 bytes.
        for (o, b) in out.iter_mut().zip(tag.as_ref()) {
            *o = *b;
        }
        out
    }

    /// Whether `password` was verified for this user, account and stored hash within the TTL.
    pub fn hit(
        &self,
        username: &str,
        account: Id,
        password_hash: &str,
        password: &str,
        now: Instant,
    ) -> bool {
        if !self.enabled() {
            return false;
        }
        let entry = match lock(&self.entries).get(username) {
            Some(entry) => *entry,
            None => return false,
        };
        if entry.expires <= now || entry.account != account {
            return false;
        }
        ct_eq(&entry.mac, &self.mac(password_hash, password))
    }

    /// Remembers a successful verification.
    pub fn insert(
        &self,
        username: &str,
        account: Id,
        password_hash: &str,
        password: &str,
        now: Instant,
    ) {
        if !self.enabled() {
            return;
        }
        let entry = Entry {
            mac: self.mac(password_hash, password),
            account,
            expires: now + self.ttl,
        };
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(username) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop the one closest to expiry.
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(username.to_owned(), entry);
    }

    /// Forgets the entry of one user (password changed, user removed).
    pub fn invalidate(&self, username: &str) {
        lock(&self.entries).remove(username);
    }

    /// Forgets every entry of an account, whatever user name it was logged in with.
    pub fn invalidate_account(&self, account: Id) {
        lock(&self.entries).retain(|_, e| e.account != account);
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache map is still a valid map; at worst an entry is missing.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u32 = 1;
    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn hit_needs_same_password_hash_account_and_time() {
        let cache: AuthCache<u32> = AuthCache::new(MIN, 10).unwrap();
        let now = Instant::now();
        cache.insert("alice", A, "$argon2id$h1", "pw", now);
        assert!(cache.hit("alice", A, "$argon2id$h1", "pw", now));
        assert!(!cache.hit("alice", A, "$argon2id$h1", "pw2", now));
        assert!(!cache.hit("alice", A, "$argon2id$h2", "pw", now));
        assert!(!cache.hit("alice", 2, "$argon2id$h1", "pw", now));
        assert!(!cache.hit("bob", A, "$argon2id$h1", "pw", now));
        assert!(!cache.hit("alice", A, "$argon2id$h1", "pw", now + MIN));
    }

    #[test]
    fn invalidation_removes_entries() {
        let cache: AuthCache<u32> = AuthCache::new(MIN, 10).unwrap();
        let now = Instant::now();
        cache.insert("alice", A, "h", "pw", now);
        cache.insert("alice+x", A, "h", "pw", now);
        cache.invalidate("alice");
        assert!(!cache.hit("alice", A, "h", "pw", now));
        assert!(cache.hit("alice+x", A, "h", "pw", now));
        cache.invalidate_account(A);
        assert!(cache.is_empty());
    }

    #[test]
    fn capacity_is_bounded() {
        let cache: AuthCache<u32> = AuthCache::new(MIN, 3).unwrap();
        let now = Instant::now();
        for i in 0..10u64 {
            cache.insert(
                &format!("u{i}"),
                A,
                "h",
                "pw",
                now + Duration::from_millis(i),
            );
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.hit("u9", A, "h", "pw", now + Duration::from_millis(9)));
    }

    #[test]
    fn zero_ttl_disables_the_cache() {
        let cache: AuthCache<u32> = AuthCache::new(Duration::ZERO, 10).unwrap();
        let now = Instant::now();
        cache.insert("alice", A, "h", "pw", now);
        assert!(!cache.hit("alice", A, "h", "pw", now));
    }

    #[test]
    fn entries_never_contain_the_password() {
        let cache: AuthCache<u32> = AuthCache::new(MIN, 10).unwrap();
        cache.insert("alice", A, "h", "hunter2", Instant::now());
        assert!(!format!("{cache:?}").contains("hunter2"));
    }
}
