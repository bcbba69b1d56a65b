//! WAL checkpoints off the writer thread.
//!
//! By default SQLite checkpoints a WAL database from the connection that commits, once the log
//! has grown past 1,000 pages: that commit then also copies those pages into the database file
//! and fsyncs it, and only afterwards does the writer answer the batch's callers and start the
//! next batch. With small messages stored inline that was several times a second under SMTP
//! load, each time stalling every delivery in flight. Instead, the writer's WAL hook only wakes
//! a thread of its own connection, which runs PASSIVE checkpoints: they neither wait for nor
//! block the writer and the readers, and SQLite keeps them crash-safe (a checkpoint interrupted
//! by a crash is redone from the log at the next open). The log restarts from its beginning at
//! the first write after a complete checkpoint, as before.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TrySendError};

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

use super::{SqlExt, schema};
use crate::error::Result;

/// Log size (pages) from which the checkpointer is woken after a commit: SQLite's own default
/// auto-checkpoint threshold.
const WAKE_PAGES: c_int = 1_000;

/// Log size (pages, 64 MiB) from which the writer checkpoints itself after a commit, as SQLite
/// would: a bound on the log should the checkpointer ever fall this far behind.
const WRITER_PAGES: c_int = 16_384;

/// Installs the WAL hook on the writer connection `writer` of the database at `path` and starts
/// the checkpoint thread. The thread ends when the writer connection is closed (its hook, the
/// only sender, is dropped with it). `done` counts completed checkpoints.
pub(crate) fn start(writer: &mut Connection, path: &Path, done: Arc<AtomicU64>) -> Result<()> {
    let conn = schema::open_checkpointer(path)?;
    // Capacity 1: wake-ups while a checkpoint runs merge into one more run.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("tern-store-checkpoint".into())
        .spawn(move || run(&conn, &woken, &done))?;
    writer
        .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            if pages >= WRITER_PAGES {
                // Best effort, like SQLite's auto-checkpoint: the commit already succeeded.
                if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                    tracing::warn!(error = %e, pages, "writer checkpoint failed");
                }
            } else if pages >= WAKE_PAGES
                && let Err(TrySendError::Disconnected(())) = wake.try_send(())
            {
                tracing::warn!(pages, "the checkpoint thread has stopped");
            }
            Ok(())
        }))
        .db()?;
    Ok(())
}

fn run(conn: &Connection, woken: &Receiver<()>, done: &AtomicU64) {
    while woken.recv().is_ok() {
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok(_) => {
                done.fetch_add(1, Ordering::Relaxed);
            }
            // Not fatal: the log only grows until the next run, or the writer's own bound.
            Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
        }
    }
}
