//! The group-commit writer: one thread owns the write connection.
//!
//! Every mutating call becomes a [`Job`] sent over a channel. The writer takes one job, gathers more that
//! arrive within the group commit window (at most [`MAX_BATCH`]), opens one IMMEDIATE transaction, runs each
//! job inside its own SAVEPOINT (a failing job is rolled back alone; a batch of one needs none), fsyncs the blob directories the batch
//! renamed files into, COMMITs once, publishes the batch's changes, unlinks blob files that lost their last
//! reference (or belonged to rolled-back jobs), and only then answers every caller.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::blob::{BlobFiles, BlobId, sync_dir};
use crate::bus::{Bus, Change};
use crate::error::{Result, StoreError};
use crate::lock::DataDirLock;
use crate::types::StoreStats;

/// Most jobs in one batch.
pub(crate) const MAX_BATCH: usize = 256;

/// What a job sees: the connection (inside its savepoint, or alone in its transaction) and the side
/// effects to apply after COMMIT.
pub(crate) struct JobCtx<'c> {
    pub conn: &'c Connection,
    pub files: &'c BlobFiles,
    /// Changes to publish if the job and the batch commit.
    pub changes: Vec<Change>,
    /// Whether this process owns the data directory and so unlinks the files of blobs it
    /// releases (see [`crate::StoreRole`]).
    pub owns_files: bool,
    /// Blobs whose file may have no row after the batch (released to zero, or renamed in by this job).
    pub maybe_orphans: Vec<BlobId>,
    /// Directories a file was renamed into; fsync'd before COMMIT.
    pub dirs_to_sync: BTreeSet<PathBuf>,
}

/// Called once the batch is decided: `Ok(())` if the job's savepoint was released and the batch committed.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

trait AnyJob: Send {
    /// Runs the job; returns whether it succeeded and how to answer its caller.
    fn run(self: Box<Self>, ctx: &mut JobCtx<'_>) -> (bool, Completion);
    /// Answers the caller without running the job.
    fn fail(self: Box<Self>, error: String);
}

struct TypedJob<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> AnyJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut JobCtx<'_>) -> Result<T> + Send,
{
    fn run(self: Box<Self>, ctx: &mut JobCtx<'_>) -> (bool, Completion) {
        let TypedJob { f, reply } = *self;
        let result = f(ctx);
        let ok = result.is_ok();
        let completion: Completion = Box::new(move |outcome| {
            let answer = match (result, outcome) {
                (Err(e), _) => Err(e),
                (Ok(_), Err(msg)) => Err(StoreError::Database(msg)),
                (Ok(v), Ok(())) => Ok(v),
            };
            // The caller may have gone away (cancelled future); nothing to do then.
            let _ = reply.send(answer);
        });
        (ok, completion)
    }

    fn fail(self: Box<Self>, error: String) {
        let _ = self.reply.send(Err(StoreError::Database(error)));
    }
}

enum Msg {
    Job(Box<dyn AnyJob>),
    Shutdown,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    jobs: AtomicU64,
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    sender: mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

struct WriterEnv {
    window: Duration,
    files: Arc<BlobFiles>,
    /// The data directory lock if this process owns it, held as long as the thread runs: only
    /// then may the writer rename blob files into place or unlink them (see [`crate::StoreRole`]).
    owner: Option<DataDirLock>,
    bus: Arc<Bus>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(
        conn: Connection,
        window: Duration,
        files: Arc<BlobFiles>,
        bus: Arc<Bus>,
        owner: Option<DataDirLock>,
    ) -> Result<Writer> {
        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let env = WriterEnv {
            window,
            files,
            owner,
            bus,
            counters: Arc::clone(&counters),
        };
        let thread = std::thread::Builder::new()
            .name("tern-store-writer".into())
            .spawn(move || writer_loop(conn, &receiver, &env))?;
        Ok(Writer {
            sender,
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// Runs `f` in the writer's next batch and returns its result once the batch committed.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut JobCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Msg::Job(Box::new(TypedJob { f, reply })))
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the writer stopped (closed store, or a panic inside the job).
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) fn stats(&self) -> StoreStats {
        StoreStats {
            checkpoints: 0,
            commits: self.counters.commits.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
        }
    }

    /// Asks the thread to stop after the jobs already queued; returns its handle to join (once).
    pub(crate) fn shutdown(&self) -> Option<JoinHandle<()>> {
        let _ = self.sender.send(Msg::Shutdown);
        // Poisoning only means another closer panicked; the handle is still valid.
        self.thread.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Let the thread finish the queue and close the connection; do not block the dropping task.
        let _ = self.sender.send(Msg::Shutdown);
    }
}

fn writer_loop(mut conn: Connection, receiver: &mpsc::Receiver<Msg>, env: &WriterEnv) {
    let mut stop = false;
    while !stop {
        let first = match receiver.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Shutdown) | Err(_) => break,
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + env.window;
        while batch.len() < MAX_BATCH {
            let msg = match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => receiver.recv_timeout(left),
                _ => receiver.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                }),
            };
            match msg {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        run_batch(&mut conn, batch, env);
    }
    tracing::debug!("store writer stopped");
}

fn run_batch(conn: &mut Connection, jobs: Vec<Box<dyn AnyJob>>, env: &WriterEnv) {
    env.counters
        .jobs
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = format!("cannot begin transaction: {e}");
            tracing::error!(error = %msg, "store write batch failed");
            jobs.into_iter().for_each(|j| j.fail(msg.clone()));
            return;
        }
    };
    // A batch of one job needs no savepoint: rolling back the transaction undoes the job alone.
    // A savepoint makes SQLite copy every page the job changes into a statement journal first,
    // which was a third of the time of a large expunge (POP3 QUIT of thousands of messages).
    let savepoints = jobs.len() > 1;
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    let mut outcome: Result<(), String> = Ok(());
    let mut lone_job_failed = false;
    let mut changes = Vec::new();
    let mut orphans = Vec::new();
    let mut dirs = BTreeSet::new();
    for job in jobs {
        if savepoints && let Err(e) = savepoint(&tx, "SAVEPOINT job") {
            job.fail(format!("cannot open savepoint: {e}"));
            continue;
        }
        let mut ctx = JobCtx {
            conn: &tx,
            files: &env.files,
            owns_files: env.owner.is_some(),
            changes: Vec::new(),
            maybe_orphans: Vec::new(),
            dirs_to_sync: BTreeSet::new(),
        };
        let ran = catch_unwind(AssertUnwindSafe(|| job.run(&mut ctx)));
        let JobCtx {
            changes: job_changes,
            maybe_orphans,
            dirs_to_sync,
            ..
        } = ctx;
        // Files renamed in by a job are checked after the batch whatever happens to the job.
        orphans.extend(maybe_orphans);
        dirs.extend(dirs_to_sync);
        match ran {
            Ok((true, completion)) => {
                match savepoints
                    .then(|| savepoint(&tx, "RELEASE job"))
                    .transpose()
                {
                    Ok(_) => {
                        changes.extend(job_changes);
                        completions.push(completion);
                    }
                    Err(e) => {
                        completion(Err(format!("cannot release savepoint: {e}")));
                        outcome = Err(format!("savepoint release failed: {e}"));
                    }
                }
            }
            failed => {
                if failed.is_err() {
                    // The reply sender was dropped with the job: its caller sees `Closed`.
                    tracing::error!("store write job panicked; rolled back");
                }
                if savepoints {
                    // Roll back this job alone; the job answers with its own error. If even that
                    // fails, its writes could leak into the batch, so the whole batch is abandoned.
                    if let Err(e) = savepoint(&tx, "ROLLBACK TO job")
                        .and_then(|()| savepoint(&tx, "RELEASE job"))
                    {
                        outcome = Err(format!("savepoint rollback failed: {e}"));
                    }
                } else {
                    lone_job_failed = true;
                }
                if let Ok((_, completion)) = failed {
                    completions.push(completion);
                }
            }
        }
    }
    if env.owner.is_some() && outcome.is_ok() && !lone_job_failed {
        // Files clients released since the last batch: checked and unlinked after this COMMIT
        // like the batch's own (if it rolls back, the rows come back for the next one).
        match take_released(&tx) {
            Ok(ids) => orphans.extend(ids),
            Err(e) => tracing::warn!(error = %e, "cannot read the blob files clients released"),
        }
    }
    if outcome.is_ok() && !lone_job_failed {
        // Blob files renamed by this batch must be durable before the rows that reference them.
        outcome = dirs.iter().try_for_each(|dir| {
            sync_dir(dir).map_err(|e| format!("cannot fsync {}: {e}", dir.display()))
        });
    }
    outcome = match outcome {
        Ok(()) if !lone_job_failed => tx.commit().map_err(|e| format!("commit failed: {e}")),
        // The job's own error is its answer; the transaction holds nothing else.
        Ok(()) => tx.rollback().map_err(|e| format!("rollback failed: {e}")),
        Err(msg) => {
            if let Err(e) = tx.rollback() {
                tracing::error!(error = %e, "rollback failed");
            }
            Err(msg)
        }
    };
    match &outcome {
        Ok(()) if !lone_job_failed => {
            env.counters.commits.fetch_add(1, Ordering::Relaxed);
            env.bus.publish(changes);
        }
        Ok(()) => {}
        Err(msg) => tracing::error!(error = %msg, "store write batch rolled back"),
    }
    // A client unlinks nothing: the owner may be committing a row for the same content right
    // now. Its releases went to `released_files`, which the owner's next batch takes.
    if let Some(owner) = &env.owner {
        remove_orphans(conn, &env.files, orphans, owner);
    }
    for completion in completions {
        completion(outcome.clone());
    }
}

/// Runs a savepoint statement (cached: one batch runs up to [`MAX_BATCH`] of each).
fn savepoint(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Most client-released files one batch takes: the unlinks run before the batch's callers are
/// answered, so removing a large account's mail is spread over several batches.
const RELEASED_PER_BATCH: usize = 1_000;

/// Takes up to [`RELEASED_PER_BATCH`] rows of `released_files` in the batch's transaction.
fn take_released(conn: &Connection) -> rusqlite::Result<Vec<BlobId>> {
    let mut st = conn.prepare_cached(
        "DELETE FROM released_files WHERE hash IN
             (SELECT hash FROM released_files LIMIT ?1)
         RETURNING hash",
    )?;
    let hashes = st
        .query_map([RELEASED_PER_BATCH as i64], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(hashes.iter().filter_map(|h| BlobId::from_hex(h)).collect())
}

/// Unlinks the files of `candidates` that no committed row references as a file blob.
fn remove_orphans(
    conn: &Connection,
    files: &BlobFiles,
    mut candidates: Vec<BlobId>,
    owner: &DataDirLock,
) {
    candidates.sort();
    candidates.dedup();
    for id in candidates {
        let file_row = conn
            .query_row(
                "SELECT length(data) IS NULL FROM blobs WHERE hash = ?1",
                [id.as_str()],
                |r| r.get::<_, bool>(0),
            )
            .optional();
        match file_row {
            Ok(Some(true)) => {}
            Ok(_) => {
                if let Err(e) = files.remove(&id, owner) {
                    tracing::warn!(blob = %id, error = %e, "cannot remove unreferenced blob file");
                }
            }
            Err(e) => tracing::warn!(blob = %id, error = %e, "cannot check blob reference"),
        }
    }
}
