//! Tern's directory: hosted domains, user accounts, aliases, catch-all and sub-addressing,
//! password storage, SASL server mechanisms and login throttling.
//!
//! Implementation notes:
//! - Validation lives here; the store receives normalised strings only: domains lowercase,
//!   addresses as [`Address::normalized`].
//! - An address is either a user account or an alias source, never both: the account would
//!   always win and the alias would silently never be used, so both `add_user` and
//!   `add_alias` refuse the collision. (Checked before the insert, not in the same
//!   transaction: two concurrent admin calls can still race; resolution then prefers the
//!   account.)
//! - Alias targets may be local or external addresses. Local targets that resolve to nothing
//!   are skipped with a warning (the alias may have been created before the user).
//! - Removing a user leaves aliases that point to it; they stop delivering to it. Its send-as
//!   list goes with it.
//! - Sender identity is one rule (`send_as.rs`): own address, its sub-addresses, the send-as
//!   list. Receiving through an alias does not make it a sender identity.
//! - Unknown user and wrong password are indistinguishable to the caller, in result and in
//!   time: an unknown user is verified against a dummy argon2 hash, and SCRAM answers an
//!   unknown user with stable decoy salt and iteration count.
//! - argon2 runs on the blocking pool, at most `max_concurrent_hashes` at a time (each needs
//!   `m_cost` memory), with at most `max_queued_hashes` waiting behind them: a login flood gets
//!   quick temporary failures instead of a queue so long that every client times out.
//! - A login is admitted by the throttle before its password is hashed, and an attempt admitted
//!   under an active tarpit pushes the key's "not before" instant, so parallel guesses queue
//!   one delay apart. Attempts in flight are not yet failures, though: until the first
//!   failures are recorded, as many run at once as the client has connections (at most
//!   `limits.max_connections_per_ip`) and hash slots allow.
//! - A disabled account cannot log in (it fails like a wrong password); its mail is still
//!   delivered. Sessions of an account end when its password changes, it is disabled or
//!   removed (`sessions.rs`), whichever process made the change.
//! - Domain names are compared in the form `tern_common::Domain` produces (lowercase; U-labels
//!   stay U-labels — no IDNA conversion yet).
#![forbid(unsafe_code)]

mod auth;
pub mod cache;
mod error;
pub mod password;
mod resolve;
pub mod sasl;
mod send_as;
mod sessions;
pub mod throttle;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tern_common::{Address, Domain, Secret};
use tern_store::{NewAccount, Store, StoreError};
use tokio::sync::{OnceCell, Semaphore, TryAcquireError};

pub use auth::{SaslExchange, SaslStep};
pub use error::{AuthError, DirectoryError};
pub use password::Argon2Params;
pub use resolve::Recipient;
pub use sasl::{Mechanism, SaslError, decode_base64_response, encode_base64};
pub use sessions::{LiveSession, POLL_INTERVAL};
pub use tern_store::{Account, AccountId, Alias, Domain as HostedDomain, DomainId};
pub use throttle::ThrottleConfig;

use crate::cache::AuthCache;
use crate::password::{PasswordError, ScramCredentials};
use crate::throttle::Throttle;

/// Directory settings.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Sub-address separator (RFC 5233): `user+tag@` delivers to `user@`. Default `'+'`;
    /// `None` turns sub-addressing off.
    pub subaddress_separator: Option<char>,
    /// Minimum length of new passwords, in characters. Default 8.
    pub min_password_length: usize,
    /// argon2id cost of new password hashes. Default m=19 MiB, t=2, p=1 (OWASP).
    pub argon2: Argon2Params,
    /// Login throttling: a tarpit after 5 failures of one account from one address, a block of
    /// the address after 20 failures from it, in 5 minutes (see [`throttle`]).
    pub throttle: ThrottleConfig,
    /// How long a successful password verification is remembered. Default 60 s; zero turns
    /// the cache off.
    pub cache_ttl: Duration,
    /// Most remembered verifications. Default 10 000.
    pub cache_capacity: usize,
    /// Most argon2 computations at once (each takes `argon2.m_cost_kib` of memory). Default 4.
    pub max_concurrent_hashes: usize,
    /// Most password verifications waiting for one of the `max_concurrent_hashes` slots; more
    /// get a temporary failure at once (SMTP 454 4.7.0, IMAP `NO [UNAVAILABLE]`, POP3
    /// `-ERR [SYS/TEMP]`) instead of joining an unbounded queue in which every login, the
    /// owner's too, would wait out its client's timeout. Default 256: at about 100
    /// default-cost verifications a second the last one waits some 2.5 s, and a burst of
    /// hundreds of clients logging in at once (a restart) still gets through.
    pub max_queued_hashes: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            subaddress_separator: Some('+'),
            min_password_length: 8,
            argon2: Argon2Params::default(),
            throttle: ThrottleConfig::default(),
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
            max_concurrent_hashes: 4,
            max_queued_hashes: 256,
        }
    }
}

impl DirectoryConfig {
    /// The directory settings of a server configuration's `[auth]` table; the rest keep
    /// their defaults.
    pub fn from_auth(auth: &tern_common::config::AuthConfig) -> Self {
        let defaults = Self::default();
        Self {
            subaddress_separator: auth.subaddress_separator,
            throttle: ThrottleConfig {
                account_limit: auth.max_failures_per_account,
                ip_limit: auth.max_failures_per_ip,
                // `auth.block_seconds` is documented as both the block and the counting window.
                window: auth.block_duration,
                block_duration: auth.block_duration,
                ..defaults.throttle
            },
            ..defaults
        }
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryStats {
    /// argon2 verifications run (including dummy ones for unknown users).
    pub password_verifications: u64,
    /// Logins answered from the verification cache.
    pub cache_hits: u64,
    /// Failed logins (all mechanisms).
    pub auth_failures: u64,
}

/// The directory service. Cheap to clone; clones share caches and throttling state.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: DirectoryConfig,
    throttle: Throttle,
    cache: AuthCache<AccountId>,
    hash_slots: Semaphore,
    /// Tasks waiting for a `hash_slots` permit, at most `config.max_queued_hashes`.
    hash_waiting: AtomicUsize,
    dummy_hash: OnceCell<String>,
    /// Key for SCRAM decoy credentials of unknown users (stable per name for this process).
    decoy_key: [u8; 32],
    password_verifications: AtomicU64,
    cache_hits: AtomicU64,
    auth_failures: AtomicU64,
    sessions: sessions::Sessions,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// A directory over `store`.
    pub fn new(store: Store, config: DirectoryConfig) -> Result<Self, DirectoryError> {
        let cache = AuthCache::new(config.cache_ttl, config.cache_capacity)?;
        let decoy_key = password::random_bytes::<32>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                throttle: Throttle::new(config.throttle.clone()),
                cache,
                hash_slots: Semaphore::new(config.max_concurrent_hashes.max(1)),
                hash_waiting: AtomicUsize::new(0),
                dummy_hash: OnceCell::new(),
                decoy_key,
                password_verifications: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                auth_failures: AtomicU64::new(0),
                sessions: sessions::Sessions::default(),
                config,
            }),
        })
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> DirectoryStats {
        DirectoryStats {
            password_verifications: self.inner.password_verifications.load(Ordering::Relaxed),
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
            auth_failures: self.inner.auth_failures.load(Ordering::Relaxed),
        }
    }

    // ---- domains ----

    /// Hosts a new domain.
    pub async fn add_domain(&self, name: &str) -> Result<DomainId, DirectoryError> {
        let domain = parse_domain(name)?;
        self.inner
            .store
            .add_domain(domain.as_str())
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => DirectoryError::AlreadyExists(domain.to_string()),
                e => e.into(),
            })
    }

    /// Stops hosting a domain; it must have no users and no aliases left.
    pub async fn remove_domain(&self, name: &str) -> Result<(), DirectoryError> {
        let domain = parse_domain(name)?;
        self.inner
            .store
            .remove_domain(domain.as_str())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DirectoryError::UnknownDomain(domain.to_string()),
                StoreError::InUse => DirectoryError::DomainInUse(domain.to_string()),
                e => e.into(),
            })
    }

    /// Every hosted domain, by name.
    pub async fn domains(&self) -> Result<Vec<HostedDomain>, DirectoryError> {
        Ok(self.inner.store.domains().await?)
    }

    /// Whether mail for `domain` is ours.
    pub async fn is_local_domain(&self, domain: &Domain) -> Result<bool, DirectoryError> {
        Ok(self.hosted(domain).await?.is_some())
    }

    /// Sets (or with `None` clears) the address receiving mail for unknown local parts of
    /// `domain`. The target may be local or external.
    pub async fn set_catch_all(
        &self,
        domain: &str,
        target: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let domain = parse_domain(domain)?;
        let target = target.map(parse_address).transpose()?;
        if let Some(target) = &target
            && target.domain() == &domain
            && self.account(target).await?.is_none()
            && self.alias_targets(target).await?.is_empty()
        {
            return Err(DirectoryError::UnknownUser(target.normalized()));
        }
        let target = target.map(|t| t.normalized());
        self.inner
            .store
            .set_catch_all(domain.as_str(), target.as_deref())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DirectoryError::UnknownDomain(domain.to_string()),
                e => e.into(),
            })
    }

    // ---- users ----

    /// Creates a user account (and its default mailboxes). The domain must be hosted here.
    pub async fn add_user(
        &self,
        address: &str,
        password: &Secret,
        display_name: Option<&str>,
    ) -> Result<Account, DirectoryError> {
        let address = parse_address(address)?;
        let key = address.normalized();
        self.require_local(address.domain()).await?;
        let display_name = display_name.map(check_display_name).transpose()?;
        if !self.alias_targets(&address).await?.is_empty() {
            return Err(DirectoryError::AddressIsAlias(key));
        }
        let (password_hash, scram) = self.hash_new_password(password).await?;
        let new = NewAccount {
            address: key.clone(),
            display_name,
            password_hash,
            scram_sha256: Some(scram),
            quota_bytes: None,
        };
        let id = self
            .inner
            .store
            .add_account(new)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => DirectoryError::AlreadyExists(key.clone()),
                StoreError::NotFound => DirectoryError::UnknownDomain(address.domain().to_string()),
                e => e.into(),
            })?;
        self.inner
            .store
            .account(id)
            .await?
            .ok_or(DirectoryError::UnknownUser(key))
    }

    /// Replaces a user's password (argon2 hash and SCRAM keys) and drops cached logins.
    pub async fn set_password(
        &self,
        address: &str,
        password: &Secret,
    ) -> Result<(), DirectoryError> {
        let address = parse_address(address)?;
        let account = self
            .account(&address)
            .await?
            .ok_or_else(|| DirectoryError::UnknownUser(address.normalized()))?;
        let (password_hash, scram) = self.hash_new_password(password).await?;
        let result = self
            .inner
            .store
            .set_password(account.id, &password_hash, Some(&scram))
            .await;
        self.inner.cache.invalidate_account(account.id);
        result.map_err(|e| match e {
            StoreError::NotFound => DirectoryError::UnknownUser(address.normalized()),
            e => e.into(),
        })
    }

    /// Disables a user (every login refused, live sessions ended; mail is still delivered) or
    /// enables it again.
    pub async fn set_disabled(&self, address: &str, disabled: bool) -> Result<(), DirectoryError> {
        let address = parse_address(address)?;
        let account = self
            .account(&address)
            .await?
            .ok_or_else(|| DirectoryError::UnknownUser(address.normalized()))?;
        let result = self.inner.store.set_disabled(account.id, disabled).await;
        self.inner.cache.invalidate_account(account.id);
        result.map_err(|e| match e {
            StoreError::NotFound => DirectoryError::UnknownUser(address.normalized()),
            e => e.into(),
        })
    }

    /// Deletes a user account with its mailboxes and messages.
    pub async fn remove_user(&self, address: &str) -> Result<(), DirectoryError> {
        let address = parse_address(address)?;
        let account = self
            .account(&address)
            .await?
            .ok_or_else(|| DirectoryError::UnknownUser(address.normalized()))?;
        let result = self.inner.store.remove_account(account.id).await;
        self.inner.cache.invalidate_account(account.id);
        result.map_err(|e| match e {
            StoreError::NotFound => DirectoryError::UnknownUser(address.normalized()),
            e => e.into(),
        })
    }

    /// User accounts, of one domain or of all, by address.
    pub async fn users(&self, domain: Option<&str>) -> Result<Vec<Account>, DirectoryError> {
        let domain = domain.map(parse_domain).transpose()?;
        let name = domain.as_ref().map(Domain::as_str);
        self.inner.store.accounts(name).await.map_err(|e| match e {
            StoreError::NotFound => {
                DirectoryError::UnknownDomain(name.unwrap_or_default().to_owned())
            }
            e => e.into(),
        })
    }

    /// The account with exactly this address (no alias or sub-address resolution).
    pub async fn user(&self, address: &Address) -> Result<Option<Account>, DirectoryError> {
        self.account(address).await
    }

    // ---- aliases ----

    /// Adds `target` to the alias `source`. The source must be in a hosted domain and not a
    /// user account; the target may be any valid address, local or external. An alias may
    /// have several targets (one call each).
    pub async fn add_alias(&self, source: &str, target: &str) -> Result<(), DirectoryError> {
        let source = parse_address(source)?;
        let target = parse_address(target)?;
        let (source_key, target_key) = (source.normalized(), target.normalized());
        if source_key == target_key {
            return Err(DirectoryError::InvalidAlias(
                "an alias cannot point to itself",
            ));
        }
        self.require_local(source.domain()).await?;
        if self.account(&source).await?.is_some() {
            return Err(DirectoryError::AddressIsAccount(source_key));
        }
        self.inner
            .store
            .add_alias(&source_key, &target_key)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => {
                    DirectoryError::AlreadyExists(format!("alias {source_key} -> {target_key}"))
                }
                StoreError::NotFound => DirectoryError::UnknownDomain(source.domain().to_string()),
                e => e.into(),
            })
    }

    /// Removes one target of an alias, or with `None` the whole alias.
    pub async fn remove_alias(
        &self,
        source: &str,
        target: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let source = parse_address(source)?.normalized();
        let target = target
            .map(parse_address)
            .transpose()?
            .map(|t| t.normalized());
        self.inner
            .store
            .remove_alias(&source, target.as_deref())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => match &target {
                    Some(t) => DirectoryError::UnknownAlias(format!("{source} -> {t}")),
                    None => DirectoryError::UnknownAlias(source.clone()),
                },
                e => e.into(),
            })
    }

    /// Alias pairs, of one domain or of all, by source then target.
    pub async fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, DirectoryError> {
        let domain = domain.map(parse_domain).transpose()?;
        let name = domain.as_ref().map(Domain::as_str);
        self.inner.store.aliases(name).await.map_err(|e| match e {
            StoreError::NotFound => {
                DirectoryError::UnknownDomain(name.unwrap_or_default().to_owned())
            }
            e => e.into(),
        })
    }

    // ---- helpers shared by the modules ----

    async fn hosted(&self, domain: &Domain) -> Result<Option<HostedDomain>, DirectoryError> {
        Ok(self.inner.store.domain(domain.as_str()).await?)
    }

    async fn require_local(&self, domain: &Domain) -> Result<HostedDomain, DirectoryError> {
        self.hosted(domain)
            .await?
            .ok_or_else(|| DirectoryError::UnknownDomain(domain.to_string()))
    }

    async fn account(&self, address: &Address) -> Result<Option<Account>, DirectoryError> {
        Ok(self
            .inner
            .store
            .account_by_address(&address.normalized())
            .await?)
    }

    async fn alias_targets(&self, address: &Address) -> Result<Vec<String>, DirectoryError> {
        Ok(self
            .inner
            .store
            .alias_targets(&address.normalized())
            .await?)
    }

    /// Checks the policy, then computes the argon2 PHC string and the SCRAM credentials.
    async fn hash_new_password(
        &self,
        password: &Secret,
    ) -> Result<(String, String), DirectoryError> {
        let prepared =
            password::check_new_password(password.expose(), self.inner.config.min_password_length)?;
        let params = self.inner.config.argon2;
        let (phc, scram) = self
            .blocking_hash(move || {
                let phc = password::hash_password(&prepared, params)?;
                let scram = ScramCredentials::generate(&prepared)?;
                Ok::<_, PasswordError>((phc, scram.to_string()))
            })
            .await
            .map_err(DirectoryError::Internal)??;
        Ok((phc, scram))
    }

    /// Runs CPU-heavy password work on the blocking pool, bounded by `max_concurrent_hashes`
    /// running and `max_queued_hashes` waiting; past that it fails at once, for the caller to
    /// answer with a temporary failure.
    async fn blocking_hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let inner = &self.inner;
        let _slot = match inner.hash_slots.try_acquire() {
            Ok(slot) => slot,
            Err(TryAcquireError::Closed) => return Err("password hashing is shut down".into()),
            Err(TryAcquireError::NoPermits) => {
                let max = inner.config.max_queued_hashes;
                let Some(_waiting) = Waiting::join(&inner.hash_waiting, max) else {
                    return Err(format!(
                        "{max} password verifications already waiting; try again shortly"
                    ));
                };
                inner
                    .hash_slots
                    .acquire()
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| format!("password hashing task failed: {e}"))
    }
}

/// One place in the queue for a hash slot; leaves it when dropped (also when the login's
/// future is dropped because its client went away).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Joins the queue unless `max` are waiting already; check and count are one atomic step.
    fn join(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn parse_address(input: &str) -> Result<Address, DirectoryError> {
    input
        .trim()
        .parse()
        .map_err(|reason| DirectoryError::InvalidAddress {
            input: input.to_owned(),
            reason,
        })
}

fn parse_domain(input: &str) -> Result<Domain, DirectoryError> {
    input
        .trim()
        .parse()
        .map_err(|reason| DirectoryError::InvalidDomain {
            input: input.to_owned(),
            reason,
        })
}

fn check_display_name(name: &str) -> Result<String, DirectoryError> {
    let name = name.trim();
    if name.chars().any(char::is_control) {
        return Err(DirectoryError::InvalidDisplayName("control character"));
    }
    if name.len() > 256 {
        return Err(DirectoryError::InvalidDisplayName("longer than 256 bytes"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests;
