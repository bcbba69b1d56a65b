//! `tern-store`: the only crate of Tern that touches persistence.
//!
//! The API speaks mail (domains, accounts, mailboxes, messages, flags), never SQL. It is backend-neutral:
//! internally [`Store`] holds an `enum Backend { Sqlite(..) }`; a PostgreSQL backend will be added as a
//! second variant, so no backend type appears in the public API (backend errors become strings in
//! [`StoreError`]).
//!
//! # Implementation notes
//!
//! Invariants this crate keeps, and every change must keep:
//!
//! - **Durability before the reply.** A mutating call returns only after the transaction holding its
//!   writes has committed (SQLite WAL, `synchronous=FULL`). A message's bytes are durable no later than its
//!   metadata: blobs of at most `inline_blob_max` bytes live inside the `blobs` table (one WAL fsync covers
//!   both), larger ones are files written to `blob_dir/tmp/`, fsync'd, renamed to `blob_dir/ab/cdef…`, and
//!   the target directory fsync'd — all before the COMMIT of the batch that references them.
//! - **Group commit.** One writer thread owns the write connection. Mutating calls become jobs; the writer
//!   takes one, gathers more for `group_commit_window` (at most 256), runs each in its own SAVEPOINT (a
//!   failing job is rolled back alone and gets its own error; a batch of one needs none), COMMITs once,
//!   then answers everyone. If the COMMIT fails every caller of the batch gets an error.
//!   [`Store::stats`] counts commits and jobs.
//! - **Reads** use a pool of read-only connections. Scans and blob reads run in `spawn_blocking`;
//!   lookups by key (a domain, an account, an alias, a mailbox, a sender list) run on the calling
//!   thread, since they take microseconds and the hand-off to the blocking pool costs more. Multi-statement
//!   reads use one read transaction (a consistent snapshot). No lock is held across an `.await`.
//! - **UIDs** strictly increase per mailbox and are never reused: `uidnext` only grows and is allocated
//!   inside the writing transaction. **UIDVALIDITY** comes from a store-wide counter seeded from the clock,
//!   so it is unique and increasing even when a mailbox is deleted and recreated within one second.
//! - **MODSEQ**: every mutating operation bumps the highestmodseq of each mailbox it changes by exactly one
//!   and stamps every row and tombstone it writes with that value (RFC 7162 allows messages changed by one
//!   operation to share a mod-sequence). An operation that changes nothing (a no-op STORE, an EXPUNGE with
//!   nothing `\Deleted`) does not bump. Expunged messages leave tombstones `(mailbox, uid, modseq)` for
//!   QRESYNC VANISHED until the mailbox is deleted.
//! - **Blobs** are content-addressed ([`BlobId`] = hex SHA-256) and stored once; `refcount` equals the
//!   number of message rows referencing the blob. At zero the row is deleted in the transaction and the file
//!   unlinked after the COMMIT. On open, temp files and blob files without a row are removed (crash
//!   leftovers); [`Store::check_integrity`] verifies all of the above.
//! - **One owner of the blob files** ([`StoreRole`], security issue 17). A file renamed into place
//!   is referenced only once its batch commits, so only the process whose writer renames files may
//!   judge a file an orphan. The owner (`tern serve`) holds an exclusive `flock` on
//!   [`StoreOptions::lock_path`] for as long as its writer thread runs; a second owner fails with
//!   [`StoreError::Locked`]. Every blob-file creation, rename and unlink needs that lock (the
//!   crate-private `DataDirLock` is a parameter of the sweep and of the unlink). A client (the admin
//!   commands, beside a running server or not) opens the database only: it stores new blobs inline
//!   whatever their size and never unlinks a file, not even one it released to refcount zero —
//!   the owner may at that moment be renaming a delivery of the same content (same hash, same
//!   path) into place, and a client's check of the row cannot see the owner's uncommitted batch.
//!   It records the hash in `released_files` instead, in the releasing transaction; the owner's
//!   writer takes those rows in its next batch and, after that COMMIT, unlinks each file no row
//!   references (the owner's next open removes any left). Conversely the owner's unlink
//!   after its own COMMIT cannot race a client, because a client never creates a file row: a row
//!   of the same content a client inserts meanwhile is inline and does not need the file.
//! - **Message cache**: a message row has at most one cache row ([`MessageMeta`], opaque bytes), written
//!   in the transaction that writes the message (delivery, APPEND, COPY/MOVE copy the source's) or later
//!   by [`Store::fill_message_meta`], and deleted with the message row (foreign key, ON DELETE CASCADE).
//!   It is a pure function of the blob's bytes, so it never needs updating.
//! - **Credential epoch**: every change of an account's password or disabled state, and its
//!   removal, bumps the store-wide `credential_epoch` in the same transaction and stamps the
//!   new value on the account (`credential_generation`), so servers notice changes made by
//!   any process by polling one value ([`Store::credential_epoch`]).
//! - **Change bus**: [`Change`]s are published only after the COMMIT that made them succeeded, never for a
//!   rolled-back job. Per-account channels are created on first [`Store::subscribe`].
//! - **Names**: domain names are lowercased; account and alias addresses get a lowercase domain part
//!   (callers pass otherwise normalised, validated strings). Mailbox names use `/` as hierarchy separator;
//!   `INBOX` (any case, also as a parent) is stored uppercase; INBOX cannot be renamed or deleted
//!   ([`StoreError::Inbox`]).
#![forbid(unsafe_code)]

mod blob;
mod bus;
mod dkim;
mod error;
mod lock;
mod queue;
mod spam;
mod sqlite;
mod types;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

pub use blob::BlobId;
pub use bus::{Change, ChangeKind};
pub use dkim::{DkimAlgorithm, DkimKeyFile, dkim_dir, read_dkim_keys, write_dkim_key};
pub use error::{Result, StoreError};
pub use queue::{
    AttemptOutcome, DsnReturn, NewQueued, NewQueuedRecipient, Notify, QueueEntry, QueueId,
    QueueRecipientId, QueueStats, QueueStatus, QueuedMessage, QueuedRecipient, SenderTrust,
};
pub use spam::{
    LearnOutcome, SenderAction, SenderRule, SpamClass, SpamCounts, TokenCounts, TokenScope,
    TrainingMessage,
};
pub use types::{
    Account, AccountId, Alias, Appended, BlobInfo, Changes, CredentialEpoch, Delivery, Domain,
    DomainId, FlagOp, FlagUpdate, Flags, Mailbox, MailboxId, MailboxStatus, MessageFlags,
    MessageMeta, MessageRecord, MetaParts, ModSeq, NewAccount, RecentClaim, RecentStatus,
    SpecialUse, StoreOptions, StoreRole, StoreStats, SystemFlags, Uid, UidValidity,
};

use sqlite::SqliteBackend;

// `Store` is shared between tasks and threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};

enum Backend {
    Sqlite(SqliteBackend),
}

/// Handle to the store; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Backend::Sqlite(_) => f.write_str("Store(sqlite)"),
        }
    }
}

/// Forwards a call to the backend.
macro_rules! backend {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.inner {
            Backend::Sqlite(b) => b.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the embedded store, applies pending migrations and starts the
    /// writer thread. As the [`StoreRole::Owner`] it first takes the data directory's lock
    /// ([`StoreError::Locked`] if another process holds it) and removes crash leftovers from the
    /// blob directory; as a [`StoreRole::Client`] it does neither.
    pub async fn open(options: StoreOptions) -> Result<Store> {
        let backend = SqliteBackend::open(options).await?;
        Ok(Store {
            inner: Arc::new(Backend::Sqlite(backend)),
        })
    }

    /// Finishes the queued writes and stops the writer; later mutating calls fail with
    /// [`StoreError::Closed`]. Dropping the last handle does the same without waiting.
    pub async fn close(&self) {
        backend!(self.close())
    }

    /// Writer counters (commits, jobs).
    pub fn stats(&self) -> StoreStats {
        match &*self.inner {
            Backend::Sqlite(b) => b.stats(),
        }
    }

    /// Runs the database integrity check plus the store's own invariants (blob refcounts = referencing rows,
    /// blob files present, UIDs below UIDNEXT, MODSEQs at most HIGHESTMODSEQ); [`StoreError::Corrupt`] lists
    /// the problems found.
    pub async fn check_integrity(&self) -> Result<()> {
        backend!(self.check_integrity())
    }

    /// Receives the committed changes of `account`'s mailboxes from now on.
    pub fn subscribe(&self, account: AccountId) -> broadcast::Receiver<Change> {
        match &*self.inner {
            Backend::Sqlite(b) => b.subscribe(account),
        }
    }

    // ---- directory ----

    /// Adds a hosted domain (lowercased). [`StoreError::AlreadyExists`] if present.
    pub async fn add_domain(&self, name: &str) -> Result<DomainId> {
        backend!(self.add_domain(name))
    }

    /// All domains, by name.
    pub async fn domains(&self) -> Result<Vec<Domain>> {
        backend!(self.domains())
    }

    /// The domain called `name` (case-insensitive).
    pub async fn domain(&self, name: &str) -> Result<Option<Domain>> {
        backend!(self.domain(name))
    }

    /// Removes a domain: [`StoreError::InUse`] while accounts or aliases use it, NotFound if absent.
    /// Send-as entries for addresses in the domain are removed with it.
    pub async fn remove_domain(&self, name: &str) -> Result<()> {
        backend!(self.remove_domain(name))
    }

    /// Sets or clears the catch-all address of a domain (NotFound if absent).
    pub async fn set_catch_all(&self, domain: &str, target: Option<&str>) -> Result<()> {
        backend!(self.set_catch_all(domain, target))
    }

    /// Adds an account and, in the same transaction, its default mailboxes (INBOX, Drafts, Sent, Trash,
    /// Junk, Archive with their special-use attributes, all subscribed). NotFound if the domain does not
    /// exist, AlreadyExists if the address is taken.
    pub async fn add_account(&self, new: NewAccount) -> Result<AccountId> {
        backend!(self.add_account(new))
    }

    /// The account with this id.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        backend!(self.account(id))
    }

    /// The account with this address (the domain part is matched case-insensitively).
    pub async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        backend!(self.account_by_address(address))
    }

    /// All accounts, or those of one domain (NotFound if that domain does not exist), by address.
    pub async fn accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        backend!(self.accounts(domain))
    }

    /// Replaces the password hash and SCRAM keys of an account.
    pub async fn set_password(
        &self,
        id: AccountId,
        password_hash: &str,
        scram_sha256: Option<&str>,
    ) -> Result<()> {
        backend!(self.set_password(id, password_hash, scram_sha256))
    }

    /// Disables (every login refused; mail still delivered) or enables an account.
    pub async fn set_disabled(&self, id: AccountId, disabled: bool) -> Result<()> {
        backend!(self.set_disabled(id, disabled))
    }

    /// The store-wide credential epoch: it moves with every password change, disable, enable
    /// and account removal, in the same transaction, and the changed account (if it still
    /// exists) carries the new value as its `credential_generation`. One key lookup, cheap
    /// enough to poll every second or two.
    pub async fn credential_epoch(&self) -> Result<CredentialEpoch> {
        backend!(self.credential_epoch())
    }

    /// Removes an account with its mailboxes, messages (releasing blobs) and send-as list. Aliases are
    /// strings and stay.
    pub async fn remove_account(&self, id: AccountId) -> Result<()> {
        backend!(self.remove_account(id))
    }

    /// Adds an alias; the domain of `source` must exist (NotFound), a duplicate pair is AlreadyExists.
    pub async fn add_alias(&self, source: &str, target: &str) -> Result<()> {
        backend!(self.add_alias(source, target))
    }

    /// All aliases, or those whose source is in `domain` (NotFound if it does not exist).
    pub async fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>> {
        backend!(self.aliases(domain))
    }

    /// Targets of an alias source, sorted (empty if none).
    pub async fn alias_targets(&self, source: &str) -> Result<Vec<String>> {
        backend!(self.alias_targets(source))
    }

    /// Removes one alias pair, or every target of `source` if `target` is `None`; NotFound if nothing
    /// was removed.
    pub async fn remove_alias(&self, source: &str, target: Option<&str>) -> Result<()> {
        backend!(self.remove_alias(source, target))
    }

    /// Lets `account` send as `address` (see `send_as`). NotFound if the account or the address's
    /// domain does not exist, AlreadyExists if the pair is there.
    pub async fn add_send_as(&self, account: AccountId, address: &str) -> Result<()> {
        backend!(self.add_send_as(account, address))
    }

    /// Removes one address from an account's send-as list; NotFound if it was not there.
    pub async fn remove_send_as(&self, account: AccountId, address: &str) -> Result<()> {
        backend!(self.remove_send_as(account, address))
    }

    /// The addresses besides its own that `account` may send as, sorted. The rows go with the
    /// account ([`Store::remove_account`]) and with their domain ([`Store::remove_domain`]).
    pub async fn send_as(&self, account: AccountId) -> Result<Vec<String>> {
        backend!(self.send_as(account))
    }

    /// Whether `address` (domain part matched case-insensitively) is on `account`'s send-as list.
    pub async fn may_send_as(&self, account: AccountId, address: &str) -> Result<bool> {
        backend!(self.may_send_as(account, address))
    }

    // ---- mailboxes ----

    /// Creates a mailbox (subscribed). AlreadyExists on a duplicate name (INBOX matched case-insensitively),
    /// NotFound for an unknown account, Invalid for an empty name or empty hierarchy level.
    pub async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<MailboxId> {
        backend!(self.create_mailbox(account, name, special_use))
    }

    /// The mailboxes of an account, by name.
    pub async fn mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        backend!(self.mailboxes(account))
    }

    /// One mailbox.
    pub async fn mailbox(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        backend!(self.mailbox(id))
    }

    /// A mailbox by name (INBOX case-insensitive).
    pub async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        backend!(self.mailbox_by_name(account, name))
    }

    /// Renames a mailbox and its children (`a/b` follows `a`). [`StoreError::Inbox`] for INBOX,
    /// AlreadyExists if any resulting name is taken, Invalid when renaming below itself.
    pub async fn rename_mailbox(&self, id: MailboxId, new_name: &str) -> Result<()> {
        backend!(self.rename_mailbox(id, new_name))
    }

    /// Deletes a mailbox with its messages (releasing blobs) and tombstones; children stay.
    /// [`StoreError::Inbox`] for INBOX.
    pub async fn delete_mailbox(&self, id: MailboxId) -> Result<()> {
        backend!(self.delete_mailbox(id))
    }

    /// Sets the subscription of a mailbox.
    pub async fn set_subscribed(&self, id: MailboxId, subscribed: bool) -> Result<()> {
        backend!(self.set_subscribed(id, subscribed))
    }

    /// STATUS counters of a mailbox.
    pub async fn mailbox_status(&self, id: MailboxId) -> Result<MailboxStatus> {
        backend!(self.mailbox_status(id))
    }

    /// IMAP4rev1 `\Recent` (RFC 3501 §2.3.2): claims the messages of `mailbox` no session has
    /// claimed yet for the caller (the session that SELECTs it) and returns their UID range.
    /// Atomic: each UID is claimed by at most one caller. Not a change clients see (no
    /// mod-sequence, nothing on the change bus); a claim with nothing new writes nothing.
    pub async fn claim_recent(&self, mailbox: MailboxId) -> Result<RecentClaim> {
        backend!(self.claim_recent(mailbox))
    }

    /// The `\Recent` mark of `mailbox` and how many messages are above it, without claiming
    /// (EXAMINE, STATUS RECENT).
    pub async fn recent_status(&self, mailbox: MailboxId) -> Result<RecentStatus> {
        backend!(self.recent_status(mailbox))
    }

    // ---- messages ----

    /// Stores one message in every target mailbox in one transaction: the blob once (refcount = number of
    /// targets, plus one if queued), one row per target (with `delivery.meta` as its cache unless empty),
    /// and — with `delivery.queue` — the outbound queue rows for its remote recipients. All or nothing: an unknown target fails the whole delivery.
    pub async fn deliver(&self, delivery: Delivery) -> Result<Vec<Appended>> {
        backend!(self.deliver(delivery))
    }

    /// Several [`Store::deliver`]s in one transaction: all are stored or none (IMAP MULTIAPPEND,
    /// RFC 3502 §3). Each delivery is its own operation (its own mod-sequence and change-bus
    /// entries); the result lists each delivery's copies in order. A failing delivery rolls back
    /// the others and leaves no blob row or file behind.
    pub async fn deliver_all(&self, deliveries: Vec<Delivery>) -> Result<Vec<Vec<Appended>>> {
        backend!(self.deliver_all(deliveries))
    }

    /// [`Store::deliver`] to a single mailbox (IMAP APPEND).
    pub async fn append(
        &self,
        mailbox: MailboxId,
        bytes: Bytes,
        flags: Flags,
        internal_date: i64,
        meta: MessageMeta,
    ) -> Result<Appended> {
        let delivery = Delivery {
            bytes,
            internal_date,
            meta,
            targets: vec![(mailbox, flags)],
            queue: None,
        };
        let mut appended = self.deliver(delivery).await?;
        appended
            .pop()
            .ok_or_else(|| StoreError::Database("delivery stored no copy".into()))
    }

    /// The bytes of a blob (NotFound if no message references it any more).
    pub async fn read_blob(&self, id: &BlobId) -> Result<Bytes> {
        backend!(self.read_blob(id))
    }

    /// The bytes of several blobs, in order, read on one blocking thread in one read transaction (one
    /// round trip instead of one per blob). Each entry is what [`Store::read_blob`] would give for that id;
    /// the outer error is for the batch as a whole (no connection, store closed).
    pub async fn read_blobs(&self, ids: &[BlobId]) -> Result<Vec<Result<Bytes>>> {
        backend!(self.read_blobs(ids))
    }

    /// Size, refcount and placement of a blob, `None` if absent (doctor/admin use).
    pub async fn blob_info(&self, id: &BlobId) -> Result<Option<BlobInfo>> {
        backend!(self.blob_info(id))
    }

    /// The messages of a mailbox in UID order (NotFound for an unknown mailbox).
    pub async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
        backend!(self.messages(mailbox))
    }

    /// The messages of `mailbox` among `uids` (ascending) that still exist, in UID order (NotFound for
    /// an unknown mailbox). One read; a long list is served by one scan of the UID range, so FETCH
    /// can read a large mailbox a slice at a time.
    pub async fn messages_in(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageRecord>> {
        backend!(self.messages_in(mailbox, uids))
    }

    /// [`Store::messages_in`] with only the UID, flags and mod-sequence of each message: what
    /// `FETCH 1:* (FLAGS)` needs, read at half the cost.
    pub async fn message_flags_in(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageFlags>> {
        backend!(self.message_flags_in(mailbox, uids))
    }

    /// One message.
    pub async fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>> {
        backend!(self.message(mailbox, uid))
    }

    /// The cached parse ([`MessageMeta`]) of the messages of `mailbox` among `uids` (ascending), in
    /// UID order, reading only `parts` (the others are `None`). Messages stored without a cache
    /// (before it existed, or by a caller that passed none) are left out; unknown UIDs too. One read
    /// transaction; a long list is served by one scan of the UID range.
    pub async fn message_meta(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        parts: MetaParts,
    ) -> Result<Vec<(Uid, MessageMeta)>> {
        backend!(self.message_meta(mailbox, uids, parts))
    }

    /// Stores the cache of messages that have none (computed later from their blob, e.g. for
    /// messages stored before the cache existed). Existing caches are kept and expunged messages
    /// are skipped; not a change clients see (no mod-sequence, nothing on the change bus).
    /// Returns how many caches were added.
    pub async fn fill_message_meta(
        &self,
        mailbox: MailboxId,
        entries: Vec<(Uid, MessageMeta)>,
    ) -> Result<usize> {
        backend!(self.fill_message_meta(mailbox, entries))
    }

    /// IMAP STORE with RFC 7162 CONDSTORE semantics: a message whose modseq exceeds `unchanged_since` is
    /// left alone and listed in `failed_unchanged_since`; a change that alters nothing keeps its modseq.
    /// Unknown UIDs are ignored. `updated` lists only messages whose flags actually changed.
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<FlagUpdate> {
        backend!(self.store_flags(mailbox, uids, op, flags, unchanged_since))
    }

    /// Removes the messages flagged `\Deleted` (only among `uids` if given), leaves tombstones, releases
    /// blobs. Returns the expunged UIDs ascending.
    pub async fn expunge(&self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        backend!(self.expunge(mailbox, uids))
    }

    /// Removes the given messages regardless of their flags in one transaction (POP3 QUIT in the UPDATE
    /// state), leaving tombstones and releasing blobs like [`Store::expunge`]. Unknown UIDs are ignored.
    /// Returns the removed UIDs ascending.
    pub async fn remove_messages(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        backend!(self.remove_messages(mailbox, uids))
    }

    /// Copies messages (sharing blobs and copying their caches) and returns (source UID, new UID) pairs in source UID order
    /// (RFC 4315 COPYUID). Unknown UIDs are ignored.
    pub async fn copy(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>> {
        backend!(self.copy(from, uids, to))
    }

    /// RFC 6851 MOVE: copy plus expunge of the sources (regardless of `\Deleted`) in one transaction,
    /// leaving tombstones in the source.
    pub async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>> {
        backend!(self.move_messages(from, uids, to))
    }

    /// Messages changed and UIDs expunged after `since` (CONDSTORE CHANGEDSINCE, QRESYNC VANISHED).
    pub async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Changes> {
        backend!(self.changes_since(mailbox, since))
    }

    // Outbound queue

    /// Leases up to `limit` due pending recipients (next attempt reached, lease free or expired) to
    /// `owner` for `lease_secs`, grouped by message. Each claimed recipient must be settled with
    /// [`Store::queue_complete`]; if its node dies, the lease runs out and another claim takes it.
    pub async fn queue_claim(
        &self,
        owner: &str,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueEntry>> {
        backend!(self.queue_claim(owner, now, lease_secs, limit))
    }

    /// Frees every lease held by `owner`: a node starting up (after a crash, say) holds none, so its
    /// recipients become claimable at once instead of after the lease expiry. Returns how many.
    pub async fn queue_release_leases(&self, owner: &str) -> Result<usize> {
        backend!(self.queue_release_leases(owner))
    }

    /// Extends to `until` (unix seconds) the leases `owner` still holds on the pending recipients
    /// `ids`, while a delivery to them runs longer than a lease: they are then neither claimed
    /// again by this node nor taken over by another. Settled recipients and leases another node
    /// took over are left alone. Returns how many were renewed.
    pub async fn queue_renew_leases(
        &self,
        owner: &str,
        ids: Vec<QueueRecipientId>,
        until: i64,
    ) -> Result<usize> {
        backend!(self.queue_renew_leases(owner, ids, until))
    }

    /// Records attempt results for recipients of message `id` in one transaction (rows no longer
    /// pending or leased by another owner are left alone), optionally marks the "delayed" DSN as sent,
    /// and removes the message (releasing its blob) once no recipient is pending. Returns whether it
    /// was removed.
    pub async fn queue_complete(
        &self,
        owner: &str,
        id: QueueId,
        results: Vec<(QueueRecipientId, AttemptOutcome)>,
        delay_notified: bool,
    ) -> Result<bool> {
        backend!(self.queue_complete(owner, id, results, delay_notified))
    }

    /// Every queued message with all its recipients, oldest first (`tern queue list`).
    pub async fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        backend!(self.queue_list())
    }

    /// One queued message with all its recipients (`tern queue show`).
    pub async fn queue_entry(&self, id: QueueId) -> Result<Option<QueueEntry>> {
        backend!(self.queue_entry(id))
    }

    /// Makes the pending recipients of message `id` (all messages with `None`) due at `now`
    /// (`tern queue retry|flush`); NotFound for an unknown id. Returns how many recipients.
    pub async fn queue_retry(&self, id: Option<QueueId>, now: i64) -> Result<usize> {
        backend!(self.queue_retry(id, now))
    }

    /// Removes a queued message and its recipients without a DSN (`tern queue delete`); NotFound if
    /// absent.
    pub async fn queue_delete(&self, id: QueueId) -> Result<()> {
        backend!(self.queue_delete(id))
    }

    /// Queue size.
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        backend!(self.queue_stats())
    }

    /// The earliest next attempt of a pending recipient, unix seconds.
    pub async fn queue_next_due(&self) -> Result<Option<i64>> {
        backend!(self.queue_next_due())
    }
}

// Spam tokens: the classifier's counts, learned-message fingerprints and sender lists of
// `tern-filter`. A separate impl block keeps these apart from the mail API above.
impl Store {
    /// Message totals and the counts of `tokens` (in order; zero when unknown) in one scope, read from
    /// one snapshot.
    pub async fn spam_counts(&self, scope: TokenScope, tokens: &[u64]) -> Result<SpamCounts> {
        let mut all = self.spam_counts_in(&[scope], tokens).await?;
        all.pop().ok_or(StoreError::NotFound)
    }

    /// [`Self::spam_counts`] for several scopes (in order) in one read, as scoring a message needs
    /// the global counts and each recipient's.
    pub async fn spam_counts_in(
        &self,
        scopes: &[TokenScope],
        tokens: &[u64],
    ) -> Result<Vec<SpamCounts>> {
        backend!(self.spam_counts(scopes, tokens))
    }

    /// The numbers of learned spam and ham messages of each scope (in order): a point lookup
    /// each, so a caller can skip reading token counts the classifier could not use.
    pub async fn spam_totals(&self, scopes: &[TokenScope]) -> Result<Vec<TokenCounts>> {
        backend!(self.spam_totals(scopes))
    }

    /// Learns a batch of messages in one transaction (one message per call for learn-on-move; many per
    /// call for `tern spam train`). A message already learned as the same class in its scope is
    /// skipped; one learned as the other class has its counts moved over.
    pub async fn learn_spam(&self, batch: Vec<TrainingMessage>) -> Result<Vec<LearnOutcome>> {
        backend!(self.learn_spam(batch))
    }

    /// An account's sender allow/block list, by pattern.
    pub async fn spam_senders(&self, account: AccountId) -> Result<Vec<SenderRule>> {
        backend!(self.spam_senders(account))
    }

    /// Sets (`Some`) or removes (`None`; NotFound if absent) one sender-list entry of an account.
    /// The pattern is trimmed and lowercased; NotFound for an unknown account.
    pub async fn set_spam_sender(
        &self,
        account: AccountId,
        pattern: &str,
        action: Option<SenderAction>,
    ) -> Result<()> {
        backend!(self.set_spam_sender(account, pattern, action))
    }
}

#[cfg(test)]
mod tests;
