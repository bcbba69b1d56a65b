//! The message cache in commands over many messages: reading messages with their cache rows
//! a slice at a time, and filling the cache of messages stored without one (before the cache
//! existed) — a FETCH or SEARCH that had to parse such a message's blob hands the result to
//! the store, so the next command over the mailbox is served from the cache.

use tern_store::{MailboxId, MessageMeta, MessageRecord, MetaParts, Store, StoreError, Uid};
use tokio::task::JoinHandle;

/// Messages read per store call. FETCH and SEARCH go through a large mailbox a slice at a
/// time, the next slice read (on the store's threads) while this one is answered.
pub(crate) const SLICE: usize = 1024;

/// A slice being read: the messages among some UIDs and their cache rows.
pub(crate) type SliceRead =
    JoinHandle<Result<(Vec<MessageRecord>, Vec<(Uid, MessageMeta)>), StoreError>>;

/// Starts reading the messages among `uids` (ascending) that still exist, with the `parts`
/// of their cache rows (none when `parts` is empty).
pub(crate) fn read_slice(
    store: &Store,
    mailbox: MailboxId,
    uids: &[Uid],
    parts: MetaParts,
) -> SliceRead {
    let (store, uids) = (store.clone(), uids.to_vec());
    tokio::spawn(async move {
        let (records, metas) = tokio::join!(
            store.messages_in(mailbox, &uids),
            store.message_meta(mailbox, &uids, parts)
        );
        Ok((records?, metas?))
    })
}

/// Caches written per store call: bounds the memory a FETCH over a large old mailbox holds,
/// and keeps each write job short for the group-commit writer.
const FILL_BATCH: usize = 256;

/// Collects computed caches and writes them in batches.
pub(crate) struct CacheFill {
    mailbox: MailboxId,
    pending: Vec<(Uid, MessageMeta)>,
}

impl CacheFill {
    pub(crate) fn new(mailbox: MailboxId) -> CacheFill {
        CacheFill {
            mailbox,
            pending: Vec::new(),
        }
    }

    /// Queues the cache of one message, writing a batch when enough are queued.
    pub(crate) async fn push(&mut self, store: &Store, uid: Uid, meta: MessageMeta) {
        self.pending.push((uid, meta));
        if self.pending.len() >= FILL_BATCH {
            self.flush(store).await;
        }
    }

    /// Writes what is queued. The cache only saves work, so a failure is logged and the
    /// command goes on: the message is parsed again next time.
    pub(crate) async fn flush(&mut self, store: &Store) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(e) = store.fill_message_meta(self.mailbox, batch).await {
            tracing::warn!(mailbox = self.mailbox.0, error = %e, "cannot fill the message cache");
        }
    }
}
