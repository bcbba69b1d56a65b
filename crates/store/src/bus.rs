//! In-process change bus: one broadcast channel per account, created lazily on first subscribe.
//!
//! The writer publishes a batch's changes only after its COMMIT succeeded; changes of a job that was
//! rolled back are dropped with its savepoint. (Cluster mode will forward these through LISTEN/NOTIFY.)

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::types::{AccountId, MailboxId, ModSeq, Uid};

/// One committed change, as seen by IDLE/NOTIFY sessions of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Owner of the mailbox.
    pub account: AccountId,
    /// Mailbox concerned.
    pub mailbox: MailboxId,
    /// What happened.
    pub kind: ChangeKind,
}

/// What a [`Change`] was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A message was added (delivery, APPEND, COPY or MOVE target).
    Appended {
        /// Its UID.
        uid: Uid,
        /// Its mod-sequence.
        modseq: ModSeq,
    },
    /// A message's flags changed.
    FlagsChanged {
        /// Its UID.
        uid: Uid,
        /// Its new mod-sequence.
        modseq: ModSeq,
    },
    /// A message was expunged (EXPUNGE or MOVE source).
    Expunged {
        /// Its UID.
        uid: Uid,
        /// Mod-sequence of the tombstone.
        modseq: ModSeq,
    },
    /// The mailbox was created.
    MailboxCreated,
    /// The mailbox was deleted.
    MailboxDeleted,
    /// The mailbox (or one of its parents) was renamed.
    MailboxRenamed,
}

/// Capacity of each account's channel; slow receivers see `RecvError::Lagged` and should resynchronise.
const CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Bus {
    senders: Mutex<HashMap<AccountId, broadcast::Sender<Change>>>,
}

impl Bus {
    fn lock(&self) -> MutexGuard<'_, HashMap<AccountId, broadcast::Sender<Change>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts/removes).
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn subscribe(&self, account: AccountId) -> broadcast::Receiver<Change> {
        self.lock()
            .entry(account)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    pub(crate) fn publish(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut map = self.lock();
        for change in changes {
            let account = change.account;
            if let Some(sender) = map.get(&account)
                && sender.send(change).is_err()
            {
                // No receiver left: drop the sender, a later subscribe creates a new one.
                map.remove(&account);
            }
        }
    }
}
