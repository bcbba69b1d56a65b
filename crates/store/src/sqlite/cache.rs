//! The message cache table (`message_cache`, see the migration in `schema.rs` for why it is
//! per message row): insert with a new message, copy with COPY/MOVE, bulk reads in UID order,
//! and the late fill for messages stored without a cache.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqlExt;
use crate::error::Result;
use crate::types::{MailboxId, MessageMeta, MetaParts, Uid};

/// Below this many UIDs each is looked up alone; above it the UID range is scanned once.
const POINT_LOOKUPS: usize = 16;

/// Stores the cache of a new message row; an empty `meta` stores nothing.
pub(crate) fn insert(
    c: &Connection,
    mailbox: MailboxId,
    uid: Uid,
    meta: &MessageMeta,
) -> Result<()> {
    if meta.is_empty() {
        return Ok(());
    }
    c.prepare_cached(
        "INSERT INTO message_cache (mailbox_id, uid, envelope, body_structure, headers)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(params![
        mailbox.0,
        uid.get(),
        meta.envelope,
        meta.body_structure,
        meta.headers
    ])
    .db()?;
    Ok(())
}

/// Gives the copy `(to, to_uid)` the cache of `(from, from_uid)`, if it has one (COPY, MOVE:
/// same bytes, same summary).
pub(crate) fn copy(
    c: &Connection,
    from: MailboxId,
    from_uid: Uid,
    to: MailboxId,
    to_uid: Uid,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO message_cache (mailbox_id, uid, envelope, body_structure, headers)
         SELECT ?3, ?4, envelope, body_structure, headers FROM message_cache
          WHERE mailbox_id = ?1 AND uid = ?2",
    )
    .db()?
    .execute(params![from.0, from_uid.get(), to.0, to_uid.get()])
    .db()?;
    Ok(())
}

/// Adds the cache of messages stored without one. A message that has a cache row keeps it, and
/// one expunged meanwhile gets none (its UID is never reused, so nothing can attach to a wrong
/// message). Returns how many rows were added.
pub(crate) fn fill(
    c: &Connection,
    mailbox: MailboxId,
    entries: &[(Uid, MessageMeta)],
) -> Result<usize> {
    let mut st = c
        .prepare_cached(
            "INSERT OR IGNORE INTO message_cache (mailbox_id, uid, envelope, body_structure, headers)
             SELECT ?1, ?2, ?3, ?4, ?5
              WHERE EXISTS (SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2)",
        )
        .db()?;
    let mut added = 0;
    for (uid, meta) in entries {
        if meta.is_empty() {
            continue;
        }
        added += st
            .execute(params![
                mailbox.0,
                uid.get(),
                meta.envelope,
                meta.body_structure,
                meta.headers
            ])
            .db()?;
    }
    Ok(added)
}

/// The cache rows of `mailbox` among `uids` (ascending), with only the `parts` asked for read;
/// messages without a row are left out.
pub(crate) fn read(
    c: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
    parts: MetaParts,
) -> Result<Vec<(Uid, MessageMeta)>> {
    let (Some(first), Some(last)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    // Unread parts are selected as NULL, so one statement shape per combination of parts.
    let column = |wanted: bool, name: &'static str| if wanted { name } else { "NULL" };
    let columns = format!(
        "uid, {}, {}, {}",
        column(parts.envelope, "envelope"),
        column(parts.body_structure, "body_structure"),
        column(parts.headers, "headers"),
    );
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(u32, MessageMeta)> {
        Ok((
            r.get(0)?,
            MessageMeta {
                envelope: r.get(1)?,
                body_structure: r.get(2)?,
                headers: r.get(3)?,
            },
        ))
    };
    let mut out = Vec::with_capacity(uids.len());
    if uids.len() <= POINT_LOOKUPS {
        let sql = format!("SELECT {columns} FROM message_cache WHERE mailbox_id = ?1 AND uid = ?2");
        let mut st = c.prepare_cached(&sql).db()?;
        for uid in uids {
            if let Some((_, meta)) = st
                .query_row(params![mailbox.0, uid.get()], row)
                .optional()
                .db()?
            {
                out.push((*uid, meta));
            }
        }
        return Ok(out);
    }
    let sql = format!(
        "SELECT {columns} FROM message_cache WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
    );
    let mut st = c.prepare_cached(&sql).db()?;
    let mut rows = st.query(params![mailbox.0, first.get(), last.get()]).db()?;
    // Both sides ascend: walk them together instead of searching `uids` for every row.
    let mut wanted = uids.iter().peekable();
    while let Some(r) = rows.next().db()? {
        let (uid, meta) = row(r).db()?;
        while wanted.next_if(|w| w.get() < uid).is_some() {}
        if let Some(w) = wanted.next_if(|w| w.get() == uid) {
            out.push((*w, meta));
        }
    }
    Ok(out)
}
