//! The maildrop of a TRANSACTION-state session: a snapshot of INBOX taken at login, with the
//! deletion marks of DELE (RFC 1939 §5).

use tern_proto::pop3::Reply;
use tern_store::{BlobId, MailboxId, Store, StoreError, Uid, UidValidity};

/// One message of the maildrop.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) uid: Uid,
    /// Octets as stored (CRLF line endings), which is what RETR sends before dot-stuffing.
    pub(crate) size: u64,
    pub(crate) blob: BlobId,
    pub(crate) deleted: bool,
}

/// Messages 1..n in UID order.
#[derive(Debug)]
pub(crate) struct Maildrop {
    pub(crate) mailbox: MailboxId,
    pub(crate) uidvalidity: UidValidity,
    entries: Vec<Entry>,
}

/// Why the maildrop could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The account has no INBOX (should not happen: accounts are created with one).
    #[error("the account has no INBOX")]
    NoInbox,
    #[error("store error: {0}")]
    Store(#[from] StoreError),
}

impl Maildrop {
    /// Snapshots `INBOX` of `account`.
    pub(crate) async fn open(
        store: &Store,
        account: tern_store::AccountId,
    ) -> Result<Maildrop, OpenError> {
        let inbox = store
            .mailbox_by_name(account, "INBOX")
            .await?
            .ok_or(OpenError::NoInbox)?;
        // `messages` is one read transaction, in UID order.
        let entries = store
            .messages(inbox.id)
            .await?
            .into_iter()
            .map(|m| Entry {
                uid: m.uid,
                size: m.size,
                blob: m.blob,
                deleted: false,
            })
            .collect();
        Ok(Maildrop {
            mailbox: inbox.id,
            uidvalidity: inbox.uidvalidity,
            entries,
        })
    }

    /// Number and total size of the messages not marked deleted (RFC 1939 §5 STAT).
    pub(crate) fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, size), (_, e)| (n + 1, size + e.size))
    }

    /// The messages not marked deleted, with their numbers.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    /// The messages numbered after `msg` not marked deleted, with their numbers.
    pub(crate) fn live_after(&self, msg: u32) -> impl Iterator<Item = (u32, &Entry)> {
        let start = (msg as usize).min(self.entries.len());
        self.entries[start..]
            .iter()
            .zip(start + 1..)
            .filter(|(e, _)| !e.deleted)
            .filter_map(|(e, n)| Some((u32::try_from(n).ok()?, e)))
    }

    /// Message `msg`, or the `-ERR` to send: RFC 1939 §5, a message-number must be that of
    /// an existing message that is not marked deleted.
    pub(crate) fn get(&self, msg: u32) -> Result<&Entry, Reply> {
        let entry = self.entry(msg)?;
        if entry.deleted {
            return Err(Reply::err(format!("Message {msg} already deleted")));
        }
        Ok(entry)
    }

    fn entry(&self, msg: u32) -> Result<&Entry, Reply> {
        (msg as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .ok_or_else(|| Reply::err("No such message"))
    }

    /// Marks `msg` deleted (DELE).
    pub(crate) fn mark_deleted(&mut self, msg: u32) -> Result<(), Reply> {
        self.get(msg)?;
        if let Some(entry) = (msg as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get_mut(i))
        {
            entry.deleted = true;
        }
        Ok(())
    }

    /// Unmarks every message (RSET).
    pub(crate) fn reset(&mut self) {
        for entry in &mut self.entries {
            entry.deleted = false;
        }
    }

    /// The UIDs marked deleted, ascending.
    pub(crate) fn deleted_uids(&self) -> Vec<Uid> {
        self.entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect()
    }

    /// The unique-id listing string of a message (RFC 1939 §7: 1 to 70 characters in
    /// 0x21..=0x7E): `<uidvalidity>.<uid>`, stable forever and the same in every session.
    pub(crate) fn unique_id(&self, entry: &Entry) -> String {
        format!("{}.{}", self.uidvalidity.0, entry.uid)
    }
}
