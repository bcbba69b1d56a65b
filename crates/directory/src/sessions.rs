//! Logged-in sessions per account, ended when the account's credentials change (security
//! issue 17: a stolen password stops working at once, not at the thief's next login).
//!
//! A protocol session registers after a successful login ([`Directory::open_session`]) and
//! holds the [`LiveSession`] until it ends; dropping it deregisters. The server runs
//! [`Directory::watch_sessions`], which polls the store's credential epoch (one key lookup)
//! every [`POLL_INTERVAL`]. Password changes, disabling and removal are made by admin commands
//! in another process (or on another node), so the database is the only channel that sees them
//! all. When the epoch moved, every account with live sessions is looked up again; a session
//! whose account is gone, disabled, or at another credential generation than at its login is
//! revoked: its token is cancelled and the protocol says goodbye (IMAP `* BYE`, POP3 `-ERR`,
//! SMTP `421`) and closes. Sessions registered since the last poll are checked on the next one
//! even if the epoch did not move, which closes the race between a login's account lookup and
//! its registration.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tern_store::{Account, AccountId, CredentialEpoch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Directory, DirectoryError};

/// How often the server looks for credential changes: sessions of a changed account end within
/// about this time. The poll is one key lookup, so a short interval costs nothing measurable.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The registry of live sessions, shared by every clone of a [`Directory`].
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    registry: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    accounts: HashMap<AccountId, Vec<Entry>>,
    /// Accounts with sessions registered since the last check.
    unchecked: HashSet<AccountId>,
    /// The epoch the last complete check saw; `None` before the first one or after a failure.
    checked_epoch: Option<CredentialEpoch>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    generation: CredentialEpoch,
    revoked: CancellationToken,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry holds no invariant a panicking holder could break halfway.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A logged-in session's registration; dropping it deregisters the session.
#[derive(Debug)]
pub struct LiveSession {
    registry: Arc<Mutex<Registry>>,
    account: AccountId,
    id: u64,
    revoked: CancellationToken,
}

impl LiveSession {
    /// Completes when the session's credentials were revoked; the session must then say
    /// goodbye and close.
    pub async fn revoked(&self) {
        self.revoked.cancelled().await;
    }

    /// Whether the session's credentials were revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked.is_cancelled()
    }

    /// [`LiveSession::revoked`] of a session that may not have logged in yet: never completes
    /// for `None`, so it can sit in every `select!` of a connection loop.
    pub async fn revoked_opt(live: Option<&LiveSession>) {
        match live {
            Some(live) => live.revoked().await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        if let Some(entries) = registry.accounts.get_mut(&self.account) {
            entries.retain(|e| e.id != self.id);
            if entries.is_empty() {
                registry.accounts.remove(&self.account);
                registry.unchecked.remove(&self.account);
            }
        }
    }
}

impl Directory {
    /// Registers a session that just logged in as `account` (as returned by the login, so its
    /// credential generation is the one the password was checked against).
    pub fn open_session(&self, account: &Account) -> LiveSession {
        let registry = Arc::clone(&self.inner.sessions.registry);
        let revoked = CancellationToken::new();
        let id = {
            let mut r = lock(&registry);
            r.next_id += 1;
            let id = r.next_id;
            r.accounts.entry(account.id).or_default().push(Entry {
                id,
                generation: account.credential_generation,
                revoked: revoked.clone(),
            });
            r.unchecked.insert(account.id);
            id
        };
        LiveSession {
            registry,
            account: account.id,
            id,
            revoked,
        }
    }

    /// Polls for credential changes every [`POLL_INTERVAL`] until `shutdown`; a failed poll is
    /// logged and retried at the next tick.
    pub async fn watch_sessions(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.revoke_stale_sessions().await {
                warn!(error = %e, "could not check sessions for credential changes");
            }
        }
    }

    /// One poll: revokes the sessions whose account was removed or disabled or changed its
    /// credentials since their login; returns how many it revoked.
    pub async fn revoke_stale_sessions(&self) -> Result<usize, DirectoryError> {
        let registry = &self.inner.sessions.registry;
        let epoch = self.inner.store.credential_epoch().await?;
        let accounts: Vec<AccountId> = {
            let mut r = lock(registry);
            let accounts = if r.checked_epoch == Some(epoch) {
                r.unchecked.iter().copied().collect()
            } else {
                r.accounts.keys().copied().collect()
            };
            r.unchecked.clear();
            // Set now: a change committed from here on moves the epoch past this value.
            r.checked_epoch = Some(epoch);
            accounts
        };
        let mut revoked = 0;
        for (i, &id) in accounts.iter().enumerate() {
            let current = match self.inner.store.account(id).await {
                Ok(current) => current,
                Err(e) => {
                    // Check these again next time, whatever the epoch says then.
                    let mut r = lock(registry);
                    r.unchecked.extend(&accounts[i..]);
                    return Err(e.into());
                }
            };
            let valid = current
                .as_ref()
                .filter(|a| !a.disabled)
                .map(|a| a.credential_generation);
            let mut ended = 0;
            for entry in lock(registry).accounts.get_mut(&id).into_iter().flatten() {
                if Some(entry.generation) != valid && !entry.revoked.is_cancelled() {
                    entry.revoked.cancel();
                    ended += 1;
                }
            }
            if ended > 0 {
                let why = match &current {
                    None => "account removed",
                    Some(a) if a.disabled => "account disabled",
                    Some(_) => "credentials changed",
                };
                info!(account = id.0, sessions = ended, "ending sessions: {why}");
            }
            revoked += ended;
        }
        Ok(revoked)
    }
}
