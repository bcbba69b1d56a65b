//! Blob rows: reference counting, inline data, and file placement inside the writer.
//!
//! Invariant: `blobs.refcount` equals the number of `messages` plus `queue_messages` rows with that
//! `blob_hash`; a row with `data IS NULL` has its bytes in a file that was fsync'd before the row
//! committed.

use std::fs;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqlExt;
use super::writer::JobCtx;
use crate::blob::{BlobFiles, BlobId, PreparedBlob, PreparedBody};
use crate::error::{Result, StoreError};
use crate::types::BlobInfo;

/// Adds `count` references to a prepared blob, inserting it (and moving its file into place) if new.
pub(crate) fn acquire(ctx: &mut JobCtx<'_>, blob: PreparedBlob, count: u64) -> Result<()> {
    let c = ctx.conn;
    let n = i64::try_from(count).map_err(|_| StoreError::Invalid("too many references".into()))?;
    let updated = c
        .execute(
            "UPDATE blobs SET refcount = refcount + ?2 WHERE hash = ?1",
            params![blob.id.as_str(), n],
        )
        .db()?;
    if updated > 0 {
        // Same content already stored: the prepared temp file (if any) is dropped and removed.
        return Ok(());
    }
    let size =
        i64::try_from(blob.size).map_err(|_| StoreError::Invalid("blob too large".into()))?;
    match blob.body {
        PreparedBody::Inline(bytes) => {
            c.execute(
                "INSERT INTO blobs (hash, size, refcount, data) VALUES (?1, ?2, ?3, ?4)",
                params![blob.id.as_str(), size, n, bytes.as_ref()],
            )
            .db()?;
        }
        PreparedBody::File(temp) => {
            // Renamed now (in the writer, so no other job can race on the name); the directory is fsync'd
            // before COMMIT and the file is removed again after the batch if no committed row references it.
            ctx.maybe_orphans.push(blob.id.clone());
            fs::rename(temp.path(), ctx.files.path_of(&blob.id))?;
            ctx.dirs_to_sync.insert(ctx.files.dir_of(&blob.id));
            c.execute(
                "INSERT INTO blobs (hash, size, refcount, data) VALUES (?1, ?2, ?3, NULL)",
                params![blob.id.as_str(), size, n],
            )
            .db()?;
        }
    }
    Ok(())
}

/// Adds `count` references to a blob that must already exist (COPY).
pub(crate) fn acquire_existing(c: &Connection, id: &BlobId, count: u64) -> Result<()> {
    let n = i64::try_from(count).map_err(|_| StoreError::Invalid("too many references".into()))?;
    match c
        .execute(
            "UPDATE blobs SET refcount = refcount + ?2 WHERE hash = ?1",
            params![id.as_str(), n],
        )
        .db()?
    {
        0 => Err(StoreError::Corrupt(format!(
            "message references missing blob {id}"
        ))),
        _ => Ok(()),
    }
}

/// Drops `count` references; at zero the row goes and its file is unlinked after COMMIT.
pub(crate) fn release(ctx: &mut JobCtx<'_>, id: &BlobId, count: u64) -> Result<()> {
    let c = ctx.conn;
    // Cached statements: a POP3 QUIT or an IMAP EXPUNGE releases thousands of blobs in one job.
    // `length(data) IS NULL`, not `data IS NULL`: SQLite answers length() from the record
    // header, but reads an inline blob's overflow pages to test it for NULL.
    let row: Option<(i64, bool)> = c
        .prepare_cached("SELECT refcount, length(data) IS NULL FROM blobs WHERE hash = ?1")
        .db()?
        .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    let Some((refcount, is_file)) = row else {
        return Err(StoreError::Corrupt(format!("release of missing blob {id}")));
    };
    let left = refcount
        - i64::try_from(count).map_err(|_| StoreError::Invalid("too many references".into()))?;
    if left > 0 {
        c.prepare_cached("UPDATE blobs SET refcount = ?2 WHERE hash = ?1")
            .db()?
            .execute(params![id.as_str(), left])
            .db()?;
    } else {
        if left < 0 {
            tracing::error!(blob = %id, refcount, count, "blob refcount went negative");
        }
        c.prepare_cached("DELETE FROM blobs WHERE hash = ?1")
            .db()?
            .execute([id.as_str()])
            .db()?;
        if is_file && ctx.owns_files {
            ctx.maybe_orphans.push(id.clone());
        } else if is_file {
            // A client leaves the file to the owner (see `released_files` in the schema).
            c.prepare_cached("INSERT OR IGNORE INTO released_files (hash) VALUES (?1)")
                .db()?
                .execute([id.as_str()])
                .db()?;
        }
    }
    Ok(())
}

pub(crate) fn info(c: &Connection, id: &BlobId) -> Result<Option<BlobInfo>> {
    c.query_row(
        "SELECT size, refcount, length(data) IS NOT NULL FROM blobs WHERE hash = ?1",
        [id.as_str()],
        |r| {
            Ok(BlobInfo {
                size: r.get::<_, i64>(0)?.max(0) as u64,
                refcount: r.get::<_, i64>(1)?.max(0) as u64,
                inline: r.get(2)?,
            })
        },
    )
    .optional()
    .db()
}

/// Reads a blob's bytes (inline or from its file). Blocking.
pub(crate) fn read(c: &Connection, files: &BlobFiles, id: &BlobId) -> Result<Bytes> {
    let row: Option<Option<Vec<u8>>> = c
        .prepare_cached("SELECT data FROM blobs WHERE hash = ?1")
        .db()?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()
        .db()?;
    match row {
        None => Err(StoreError::NotFound),
        Some(Some(data)) => Ok(Bytes::from(data)),
        Some(None) => match files.read(id) {
            // The message may have been expunged (and the file unlinked) after our query: a fresh look
            // at the row tells a vanished blob (NotFound) from a missing file (Corrupt).
            Err(StoreError::Corrupt(msg)) => {
                let still_there: bool = c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)",
                        [id.as_str()],
                        |r| r.get(0),
                    )
                    .db()?;
                Err(if still_there {
                    StoreError::Corrupt(msg)
                } else {
                    StoreError::NotFound
                })
            }
            other => other,
        },
    }
}

/// Consistency problems between blob rows, message rows and files (empty when all is well).
pub(crate) fn check(c: &Connection, files: &BlobFiles) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut st = c
        .prepare(
            "SELECT b.hash, b.refcount,
                    (SELECT COUNT(*) FROM messages m WHERE m.blob_hash = b.hash)
                    + (SELECT COUNT(*) FROM queue_messages q WHERE q.blob_hash = b.hash),
                    length(b.data) IS NULL
             FROM blobs b",
        )
        .db()?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .db()?;
    for row in rows {
        let (hash, refcount, uses, is_file) = row.db()?;
        if refcount != uses {
            problems.push(format!(
                "blob {hash}: refcount {refcount} but {uses} messages and queued messages"
            ));
        }
        match BlobId::from_hex(&hash) {
            None => problems.push(format!("blob {hash}: malformed hash")),
            Some(id) if is_file && !files.path_of(&id).is_file() => {
                problems.push(format!("blob {hash}: file missing"))
            }
            Some(_) => {}
        }
    }
    Ok(problems)
}
