//! The embedded SQLite backend: one writer thread (group commit) and a pool of read-only connections.

mod blobs;
mod cache;
mod checkpoint;
mod directory;
mod mailbox;
mod message;
mod queue;
pub(crate) mod schema;
mod spam;
mod spelling;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{Semaphore, broadcast};

use self::writer::{JobCtx, Writer};
use crate::blob::{BlobFiles, BlobId, PreparedBlob};
use crate::bus::{Bus, Change};
use crate::error::{Result, StoreError};
use crate::lock::DataDirLock;
use crate::queue::*;
use crate::types::*;

/// Maps backend errors to [`StoreError`] without exposing them.
pub(crate) trait SqlExt<T> {
    fn db(self) -> Result<T>;
}

impl<T> SqlExt<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T> {
        self.map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                StoreError::AlreadyExists
            }
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::AlreadyExists
            }
            e => StoreError::Database(e.to_string()),
        })
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Idle read-only connections; one is taken per read inside `spawn_blocking`.
struct ReadPool {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Reads in flight on the blocking pool, at most [`MAX_READS`].
    reads: Arc<Semaphore>,
}

/// Reads running at once on the blocking pool; the rest wait their turn. Unbounded, a burst
/// (one delivery wakes every IDLE session of its recipient, and each reads its mailbox's
/// changes: 10,000 sessions, ~100 reads at a time) grew tokio's blocking pool to its 512
/// threads and opened a connection per read beyond the idle ones, so most reads paid for a
/// connection, a schema parse and fresh statements (83 % of server CPU in that load test)
/// and the process kept hundreds of file descriptors open. Two cores gain nothing from more.
const MAX_READS: usize = 16;

/// Idle connections kept: every bounded read finds one, plus the inline lookups of the async
/// workers. More are opened only beyond that and closed afterwards (a schema parse each).
const MAX_IDLE_READERS: usize = MAX_READS + 16;

/// Prepared statements kept per connection; rusqlite's default (16) is fewer than the distinct
/// statements one delivery runs, and a miss means parsing the SQL again.
const STATEMENT_CACHE: usize = 128;

impl ReadPool {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves at worst a connection fewer in the vector.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on an idle connection (or a new one), then returns the connection to the pool.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle().pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = schema::open_reader(&self.path)?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                c
            }
        };
        let result = f(&conn);
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

pub(crate) struct SqliteBackend {
    writer: Writer,
    readers: Arc<ReadPool>,
    files: Arc<BlobFiles>,
    bus: Arc<Bus>,
    inline_blob_max: usize,
    /// WAL checkpoints completed off the writer thread (see [`checkpoint`]).
    checkpoints: Arc<AtomicU64>,
}

impl SqliteBackend {
    pub(crate) async fn open(options: StoreOptions) -> Result<SqliteBackend> {
        let files = Arc::new(BlobFiles::new(options.blob_dir.clone()));
        let files2 = Arc::clone(&files);
        let (db_path, lock_path, role) = (
            options.db_path.clone(),
            options.lock_path.clone(),
            options.role,
        );
        let checkpoints = Arc::new(AtomicU64::new(0));
        let checkpoints2 = Arc::clone(&checkpoints);
        let (conn, owner) = tokio::task::spawn_blocking(move || -> Result<_> {
            // The lock comes first: nothing in the data directory is touched by a second owner.
            let owner = match role {
                StoreRole::Owner => {
                    if let Some(parent) = lock_path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    Some(DataDirLock::acquire(&lock_path)?)
                }
                StoreRole::Client => None,
            };
            if let Some(parent) = db_path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut conn = schema::open_writer(&db_path)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            schema::migrate(&mut conn)?;
            spelling::normalize_domain_names(&mut conn)?;
            if let Some(owner) = &owner {
                remove_crash_leftovers(&conn, &files2, owner)?;
            }
            checkpoint::start(&mut conn, &db_path, checkpoints2)?;
            Ok((conn, owner))
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        // A client never writes a blob file (see `StoreRole::Client`): every blob goes inline.
        let inline_blob_max = match owner {
            Some(_) => options.inline_blob_max,
            None => usize::MAX,
        };
        let bus = Arc::new(Bus::default());
        let writer = Writer::start(
            conn,
            options.group_commit_window,
            Arc::clone(&files),
            Arc::clone(&bus),
            owner,
        )?;
        let readers = Arc::new(ReadPool {
            path: options.db_path,
            idle: Mutex::new(Vec::new()),
            reads: Arc::new(Semaphore::new(MAX_READS)),
        });
        Ok(SqliteBackend {
            writer,
            readers,
            files,
            bus,
            inline_blob_max,
            checkpoints,
        })
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut JobCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.run(f).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &BlobFiles) -> Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        let files = Arc::clone(&self.files);
        let permit = Arc::clone(&pool.reads)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let result = tokio::task::spawn_blocking(move || pool.with(|conn| f(conn, &files)))
            .await
            .map_err(|_| StoreError::Closed)?;
        // Released once the result is back rather than inside the closure, so that the next
        // read's `spawn_blocking` is more likely to find this thread idle again instead of
        // starting another (idle blocking threads linger for 10 s).
        drop(permit);
        result
    }

    /// A lookup by primary key or unique index, run on the calling thread: it touches a few
    /// cached pages and takes microseconds, less than the hand-off to the blocking pool and back
    /// (two thread wake-ups), which dominated the SMTP ingest profile (several lookups per
    /// message). Anything that scans or reads blobs goes through [`Self::read`].
    fn lookup<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.readers.with(f)
    }

    pub(crate) fn subscribe(&self, account: AccountId) -> broadcast::Receiver<Change> {
        self.bus.subscribe(account)
    }

    pub(crate) fn stats(&self) -> StoreStats {
        StoreStats {
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            ..self.writer.stats()
        }
    }

    pub(crate) async fn close(&self) {
        if let Some(handle) = self.writer.shutdown() {
            // Joining blocks: keep it off the async workers.
            let joined = tokio::task::spawn_blocking(move || handle.join().is_ok()).await;
            if !matches!(joined, Ok(true)) {
                tracing::error!("store writer thread panicked");
            }
        }
    }

    pub(crate) async fn check_integrity(&self) -> Result<()> {
        self.read(|c, files| {
            // One snapshot for all SQL checks (a blob file unlinked by a concurrent expunge can still be
            // reported; run this on a quiet store for a definite answer).
            let tx = c.unchecked_transaction().db()?;
            let c = &*tx;
            let mut problems: Vec<String> = {
                let mut st = c.prepare("PRAGMA integrity_check").db()?;
                let rows = st.query_map([], |r| r.get::<_, String>(0)).db()?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .db()?
                    .into_iter()
                    .filter(|r| r != "ok")
                    .collect()
            };
            {
                let mut st = c.prepare("PRAGMA foreign_key_check").db()?;
                let rows = st.query_map([], |r| r.get::<_, String>(0)).db()?;
                for table in rows {
                    problems.push(format!("foreign key violation in {}", table.db()?));
                }
            }
            let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
            if version != schema::latest_version() as i64 {
                problems.push(format!("schema version {version}"));
            }
            problems.extend(message::check(c)?);
            problems.extend(blobs::check(c, files)?);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(StoreError::Corrupt(problems.join("; ")))
            }
        })
        .await
    }

    // ---- directory ----

    pub(crate) async fn add_domain(&self, name: &str) -> Result<DomainId> {
        let name = name.to_ascii_lowercase();
        self.write(move |ctx| directory::add_domain(ctx.conn, &name))
            .await
    }

    pub(crate) async fn domains(&self) -> Result<Vec<Domain>> {
        self.read(|c, _| directory::domains(c)).await
    }

    pub(crate) async fn domain(&self, name: &str) -> Result<Option<Domain>> {
        let name = name.to_ascii_lowercase();
        self.lookup(|c| directory::domain(c, &name))
    }

    pub(crate) async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        self.write(move |ctx| directory::remove_domain(ctx.conn, &name))
            .await
    }

    pub(crate) async fn set_catch_all(&self, domain: &str, target: Option<&str>) -> Result<()> {
        let (domain, target) = (domain.to_ascii_lowercase(), target.map(str::to_owned));
        self.write(move |ctx| directory::set_catch_all(ctx.conn, &domain, target.as_deref()))
            .await
    }

    pub(crate) async fn add_account(&self, new: NewAccount) -> Result<AccountId> {
        self.write(move |ctx| directory::add_account(ctx, &new))
            .await
    }

    pub(crate) async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.lookup(|c| directory::account(c, id))
    }

    pub(crate) async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        self.lookup(|c| directory::account_by_address(c, address))
    }

    pub(crate) async fn accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        let domain = domain.map(str::to_ascii_lowercase);
        self.read(move |c, _| directory::accounts(c, domain.as_deref()))
            .await
    }

    pub(crate) async fn set_password(
        &self,
        id: AccountId,
        hash: &str,
        scram: Option<&str>,
    ) -> Result<()> {
        let (hash, scram) = (hash.to_owned(), scram.map(str::to_owned));
        self.write(move |ctx| directory::set_password(ctx.conn, id, &hash, scram.as_deref()))
            .await
    }

    pub(crate) async fn set_disabled(&self, id: AccountId, disabled: bool) -> Result<()> {
        self.write(move |ctx| directory::set_disabled(ctx.conn, id, disabled))
            .await
    }

    pub(crate) async fn credential_epoch(&self) -> Result<CredentialEpoch> {
        self.lookup(directory::credential_epoch)
    }

    pub(crate) async fn remove_account(&self, id: AccountId) -> Result<()> {
        self.write(move |ctx| directory::remove_account(ctx, id))
            .await
    }

    pub(crate) async fn add_alias(&self, source: &str, target: &str) -> Result<()> {
        let (source, target) = (source.to_owned(), target.to_owned());
        self.write(move |ctx| directory::add_alias(ctx.conn, &source, &target))
            .await
    }

    pub(crate) async fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>> {
        let domain = domain.map(str::to_ascii_lowercase);
        self.read(move |c, _| directory::aliases(c, domain.as_deref()))
            .await
    }

    pub(crate) async fn alias_targets(&self, source: &str) -> Result<Vec<String>> {
        self.lookup(|c| directory::alias_targets(c, source))
    }

    pub(crate) async fn remove_alias(&self, source: &str, target: Option<&str>) -> Result<()> {
        let (source, target) = (source.to_owned(), target.map(str::to_owned));
        self.write(move |ctx| directory::remove_alias(ctx.conn, &source, target.as_deref()))
            .await
    }

    pub(crate) async fn add_send_as(&self, account: AccountId, address: &str) -> Result<()> {
        let address = address.to_owned();
        self.write(move |ctx| directory::add_send_as(ctx.conn, account, &address))
            .await
    }

    pub(crate) async fn remove_send_as(&self, account: AccountId, address: &str) -> Result<()> {
        let address = address.to_owned();
        self.write(move |ctx| directory::remove_send_as(ctx.conn, account, &address))
            .await
    }

    pub(crate) async fn send_as(&self, account: AccountId) -> Result<Vec<String>> {
        self.lookup(|c| directory::send_as(c, account))
    }

    pub(crate) async fn may_send_as(&self, account: AccountId, address: &str) -> Result<bool> {
        self.lookup(|c| directory::may_send_as(c, account, address))
    }

    // ---- mailboxes ----

    pub(crate) async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<MailboxId> {
        let name = name.to_owned();
        self.write(move |ctx| mailbox::create(ctx, account, &name, special_use))
            .await
    }

    pub(crate) async fn mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.read(move |c, _| mailbox::list(c, account)).await
    }

    pub(crate) async fn mailbox(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        self.lookup(|c| mailbox::get(c, id))
    }

    pub(crate) async fn mailbox_by_name(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<Mailbox>> {
        self.lookup(|c| mailbox::by_name(c, account, name))
    }

    pub(crate) async fn rename_mailbox(&self, id: MailboxId, new_name: &str) -> Result<()> {
        let new_name = new_name.to_owned();
        self.write(move |ctx| mailbox::rename(ctx, id, &new_name))
            .await
    }

    pub(crate) async fn delete_mailbox(&self, id: MailboxId) -> Result<()> {
        self.write(move |ctx| mailbox::delete(ctx, id)).await
    }

    pub(crate) async fn set_subscribed(&self, id: MailboxId, subscribed: bool) -> Result<()> {
        self.write(move |ctx| mailbox::set_subscribed(ctx.conn, id, subscribed))
            .await
    }

    pub(crate) async fn mailbox_status(&self, id: MailboxId) -> Result<MailboxStatus> {
        self.read(move |c, _| mailbox::status(c, id)).await
    }

    pub(crate) async fn claim_recent(&self, id: MailboxId) -> Result<RecentClaim> {
        // Nothing new since the last claim (most SELECTs): a lookup, no write. The writer
        // checks again, so a claim racing another one still gets each UID once.
        let peek = self.lookup(|c| mailbox::peek_recent(c, id))?;
        if peek.through == peek.after {
            return Ok(peek);
        }
        self.write(move |ctx| mailbox::claim_recent(ctx.conn, id))
            .await
    }

    pub(crate) async fn recent_status(&self, id: MailboxId) -> Result<RecentStatus> {
        self.read(move |c, _| mailbox::recent_status(c, id)).await
    }

    // ---- messages ----

    pub(crate) async fn deliver(&self, delivery: Delivery) -> Result<Vec<Appended>> {
        let prepared = self.prepare_delivery(delivery).await?;
        self.write(move |ctx| prepared.deliver(ctx)).await
    }

    pub(crate) async fn deliver_all(
        &self,
        deliveries: Vec<Delivery>,
    ) -> Result<Vec<Vec<Appended>>> {
        let mut prepared = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            prepared.push(self.prepare_delivery(delivery).await?);
        }
        // One job: a failing delivery fails the job, whose savepoint (or transaction) is
        // rolled back whole, and the writer removes the files the job renamed in.
        self.write(move |ctx| prepared.into_iter().map(|p| p.deliver(ctx)).collect())
            .await
    }

    /// Prepares a delivery's blob before its writer job: hashes the bytes, and writes and
    /// fsyncs a large one to a temporary file on a blocking thread, outside the writer. A
    /// prepared blob that never reaches a row removes its temporary file when dropped.
    async fn prepare_delivery(&self, delivery: Delivery) -> Result<PreparedDelivery> {
        let Delivery {
            bytes,
            internal_date,
            meta,
            targets,
            queue,
        } = delivery;
        let max = self.inline_blob_max;
        let blob = if bytes.len() <= max {
            self.files.prepare(bytes, max)?
        } else {
            let files = Arc::clone(&self.files);
            tokio::task::spawn_blocking(move || files.prepare(bytes, max))
                .await
                .map_err(|_| StoreError::Closed)??
        };
        Ok(PreparedDelivery {
            blob,
            internal_date,
            meta,
            targets,
            queue,
        })
    }

    pub(crate) async fn read_blob(&self, id: &BlobId) -> Result<Bytes> {
        let id = id.clone();
        self.read(move |c, files| blobs::read(c, files, &id)).await
    }

    pub(crate) async fn read_blobs(&self, ids: &[BlobId]) -> Result<Vec<Result<Bytes>>> {
        let ids = ids.to_vec();
        self.read(move |c, files| {
            // One snapshot for the whole batch.
            let tx = c.unchecked_transaction().db()?;
            Ok(ids.iter().map(|id| blobs::read(&tx, files, id)).collect())
        })
        .await
    }

    pub(crate) async fn blob_info(&self, id: &BlobId) -> Result<Option<BlobInfo>> {
        let id = id.clone();
        self.read(move |c, _| blobs::info(c, &id)).await
    }

    pub(crate) async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
        self.read(move |c, _| message::messages(c, mailbox)).await
    }

    pub(crate) async fn message(
        &self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Option<MessageRecord>> {
        self.read(move |c, _| message::message(c, mailbox, uid))
            .await
    }

    pub(crate) async fn messages_in(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageRecord>> {
        let uids = uids.to_vec();
        self.read(move |c, _| message::messages_in(c, mailbox, &uids))
            .await
    }

    pub(crate) async fn message_flags_in(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageFlags>> {
        let uids = uids.to_vec();
        self.read(move |c, _| message::flags_in(c, mailbox, &uids))
            .await
    }

    pub(crate) async fn message_meta(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        parts: MetaParts,
    ) -> Result<Vec<(Uid, MessageMeta)>> {
        if uids.is_empty() || parts.is_empty() {
            return Ok(Vec::new());
        }
        let uids = uids.to_vec();
        self.read(move |c, _| cache::read(c, mailbox, &uids, parts))
            .await
    }

    pub(crate) async fn fill_message_meta(
        &self,
        mailbox: MailboxId,
        entries: Vec<(Uid, MessageMeta)>,
    ) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.write(move |ctx| cache::fill(ctx.conn, mailbox, &entries))
            .await
    }

    pub(crate) async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<FlagUpdate> {
        let (uids, flags) = (uids.to_vec(), flags.clone());
        self.write(move |ctx| {
            message::store_flags(ctx, mailbox, &uids, op, &flags, unchanged_since)
        })
        .await
    }

    pub(crate) async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: Option<&[Uid]>,
    ) -> Result<Vec<Uid>> {
        let uids = uids.map(<[Uid]>::to_vec);
        self.write(move |ctx| message::expunge(ctx, mailbox, uids.as_deref()))
            .await
    }

    pub(crate) async fn remove_messages(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<Uid>> {
        let uids = uids.to_vec();
        self.write(move |ctx| message::remove_messages(ctx, mailbox, &uids))
            .await
    }

    pub(crate) async fn copy(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>> {
        let uids = uids.to_vec();
        self.write(move |ctx| message::copy(ctx, from, &uids, to))
            .await
    }

    pub(crate) async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>> {
        let uids = uids.to_vec();
        self.write(move |ctx| message::move_messages(ctx, from, &uids, to))
            .await
    }

    pub(crate) async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Changes> {
        self.read(move |c, _| message::changes_since(c, mailbox, since))
            .await
    }

    // ---- outbound queue ----

    pub(crate) async fn queue_claim(
        &self,
        owner: &str,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueEntry>> {
        let owner = owner.to_owned();
        self.write(move |ctx| queue::claim(ctx.conn, &owner, now, lease_secs, limit))
            .await
    }

    pub(crate) async fn queue_release_leases(&self, owner: &str) -> Result<usize> {
        let owner = owner.to_owned();
        self.write(move |ctx| queue::release_leases(ctx.conn, &owner))
            .await
    }

    pub(crate) async fn queue_renew_leases(
        &self,
        owner: &str,
        ids: Vec<QueueRecipientId>,
        until: i64,
    ) -> Result<usize> {
        let owner = owner.to_owned();
        self.write(move |ctx| queue::renew_leases(ctx.conn, &owner, &ids, until))
            .await
    }

    pub(crate) async fn queue_complete(
        &self,
        owner: &str,
        id: QueueId,
        results: Vec<(QueueRecipientId, AttemptOutcome)>,
        delay_notified: bool,
    ) -> Result<bool> {
        let owner = owner.to_owned();
        self.write(move |ctx| queue::complete(ctx, &owner, id, &results, delay_notified))
            .await
    }

    pub(crate) async fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        self.read(|c, _| queue::list(c)).await
    }

    pub(crate) async fn queue_entry(&self, id: QueueId) -> Result<Option<QueueEntry>> {
        self.read(move |c, _| queue::entry(c, id)).await
    }

    pub(crate) async fn queue_retry(&self, id: Option<QueueId>, now: i64) -> Result<usize> {
        self.write(move |ctx| queue::retry_now(ctx.conn, id, now))
            .await
    }

    pub(crate) async fn queue_delete(&self, id: QueueId) -> Result<()> {
        self.write(move |ctx| queue::remove(ctx, id)).await
    }

    pub(crate) async fn queue_stats(&self) -> Result<QueueStats> {
        self.read(|c, _| queue::stats(c)).await
    }

    pub(crate) async fn queue_next_due(&self) -> Result<Option<i64>> {
        self.read(|c, _| queue::next_due(c)).await
    }
}

/// A [`Delivery`] whose blob is prepared, ready to run in the writer.
struct PreparedDelivery {
    blob: PreparedBlob,
    internal_date: i64,
    meta: MessageMeta,
    targets: Vec<(MailboxId, Flags)>,
    queue: Option<NewQueued>,
}

impl PreparedDelivery {
    fn deliver(self, ctx: &mut JobCtx<'_>) -> Result<Vec<Appended>> {
        message::deliver(
            ctx,
            self.blob,
            self.internal_date,
            &self.meta,
            &self.targets,
            self.queue.as_ref(),
        )
    }
}

/// Crash leftovers of a previous owner: temp files are gone after `init`; files without a
/// file-blob row are removed (also those clients released that no batch took yet). Safe only
/// under the lock: no other process renames files into place.
fn remove_crash_leftovers(conn: &Connection, files: &BlobFiles, owner: &DataDirLock) -> Result<()> {
    for id in files.init(owner)? {
        let referenced: Option<bool> = conn
            .query_row(
                "SELECT length(data) IS NULL FROM blobs WHERE hash = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .db()?;
        if referenced != Some(true) {
            tracing::info!(blob = %id, "removing orphan blob file");
            files.remove(&id, owner)?;
        }
    }
    // `released_files` stays: its rows are checked again after the first batch, and clearing
    // it here could drop a release a client commits while this loop runs.
    Ok(())
}
