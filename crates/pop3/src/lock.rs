//! One POP3 session per maildrop (RFC 1939 §8: the server acquires an exclusive-access lock on
//! the maildrop when entering the TRANSACTION state).
//!
//! In-process only: a registry of the accounts whose maildrop a session holds. With several
//! nodes on one database this must become a lease row in the store.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tern_store::AccountId;

/// The accounts whose maildrop is held. Cheap to clone; clones share the registry.
#[derive(Debug, Default, Clone)]
pub(crate) struct MaildropLocks {
    held: Arc<Mutex<HashSet<AccountId>>>,
}

impl MaildropLocks {
    fn held(&self) -> MutexGuard<'_, HashSet<AccountId>> {
        // The critical sections only insert or remove one id; a poisoned set is still valid.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lock of `account`'s maildrop, `None` if another session holds it.
    pub(crate) fn try_lock(&self, account: AccountId) -> Option<MaildropLock> {
        self.held().insert(account).then(|| MaildropLock {
            locks: self.clone(),
            account,
        })
    }

    pub(crate) fn is_locked(&self, account: AccountId) -> bool {
        self.held().contains(&account)
    }
}

/// A held maildrop lock; dropping it (session end, panic unwinding, task abort) releases it.
#[derive(Debug)]
pub(crate) struct MaildropLock {
    locks: MaildropLocks,
    account: AccountId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.locks.held().remove(&self.account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maildrop_is_locked_once_and_released_on_drop() {
        let locks = MaildropLocks::default();
        let a = AccountId(1);
        let first = locks.try_lock(a).expect("free");
        assert!(locks.try_lock(a).is_none(), "second lock refused");
        assert!(
            locks.try_lock(AccountId(2)).is_some(),
            "other accounts unaffected"
        );
        assert!(locks.is_locked(a));
        drop(first);
        assert!(!locks.is_locked(a));
        assert!(locks.try_lock(a).is_some());
    }

    #[test]
    fn a_panicking_holder_releases_the_lock() {
        let locks = MaildropLocks::default();
        let clone = locks.clone();
        let result = std::thread::spawn(move || {
            let _lock = clone.try_lock(AccountId(7));
            panic!("session task panics");
        })
        .join();
        assert!(result.is_err());
        assert!(!locks.is_locked(AccountId(7)));
    }
}
