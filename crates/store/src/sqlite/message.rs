//! Message rows: delivery, flags (CONDSTORE), expunge with tombstones, copy and move, change queries.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::mailbox::{self, Counters};
use super::writer::JobCtx;
use super::{SqlExt, blobs, cache};
use crate::blob::{BlobId, PreparedBlob};
use crate::bus::ChangeKind;
use crate::error::{Result, StoreError};
use crate::queue::NewQueued;
use crate::types::{
    Appended, Changes, FlagOp, FlagUpdate, Flags, MailboxId, MessageFlags, MessageMeta,
    MessageRecord, ModSeq, SystemFlags, Uid,
};

/// RFC 9051 `flag-keyword` is an atom: no spaces, controls, or atom-specials; `\` starts system flags only.
fn check_flags(flags: &Flags) -> Result<()> {
    for k in &flags.keywords {
        let bad = |ch: char| ch.is_whitespace() || ch.is_control() || "(){%*\"\\]".contains(ch);
        if k.is_empty() || k.chars().any(bad) {
            return Err(StoreError::Invalid(format!("bad keyword {k:?}")));
        }
    }
    Ok(())
}

fn encode_keywords(flags: &Flags) -> String {
    flags
        .keywords
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode_flags(bits: i64, keywords: &str) -> Flags {
    Flags {
        system: SystemFlags::from_bits_truncate(u8::try_from(bits & 0xff).unwrap_or(0)),
        keywords: keywords
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

fn uid_from(v: u32) -> rusqlite::Result<Uid> {
    Uid::new(v).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, 0))
}

/// The blob id of a row, read in place: one allocation for the id, none for the column (this runs
/// for every row of a mailbox listing).
fn blob_from(value: ValueRef<'_>) -> rusqlite::Result<BlobId> {
    let hash = value.as_str()?;
    BlobId::from_hex(hash).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(0, hash.to_owned(), rusqlite::types::Type::Text)
    })
}

const COLUMNS: &str = "mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_hash";

fn from_row(r: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        mailbox: MailboxId(r.get(0)?),
        uid: uid_from(r.get(1)?)?,
        modseq: ModSeq(r.get::<_, i64>(2)? as u64),
        flags: decode_flags(r.get(3)?, &r.get::<_, String>(4)?),
        internal_date: r.get(5)?,
        size: r.get::<_, i64>(6)?.max(0) as u64,
        blob: blob_from(r.get_ref(7)?)?,
    })
}

fn insert(c: &Connection, m: &MessageRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        m.mailbox.0,
        m.uid.get(),
        m.modseq.0 as i64,
        m.flags.system.bits(),
        encode_keywords(&m.flags),
        m.internal_date,
        m.size as i64,
        m.blob.as_str(),
    ])
    .db()?;
    Ok(())
}

/// Stores one message (blob once) in every target mailbox, and enqueues it for its remote recipients.
pub(crate) fn deliver(
    ctx: &mut JobCtx<'_>,
    blob: PreparedBlob,
    internal_date: i64,
    meta: &MessageMeta,
    targets: &[(MailboxId, Flags)],
    queue: Option<&NewQueued>,
) -> Result<Vec<Appended>> {
    if targets.is_empty() && queue.is_none() {
        return Err(StoreError::Invalid(
            "delivery without target mailbox".into(),
        ));
    }
    for (_, flags) in targets {
        check_flags(flags)?;
    }
    let (id, size) = (blob.id.clone(), blob.size);
    blobs::acquire(ctx, blob, targets.len() as u64 + u64::from(queue.is_some()))?;
    if let Some(q) = queue {
        super::queue::enqueue(ctx.conn, &id, size, q, super::unix_now())?;
    }
    let mut out = Vec::with_capacity(targets.len());
    for (mailbox, flags) in targets {
        // Loaded per target, so the same mailbox listed twice gets two consecutive UIDs.
        let mut counters = Counters::load(ctx.conn, *mailbox)?;
        let uid = counters.next_uid()?;
        let modseq = counters.bump();
        let record = MessageRecord {
            mailbox: *mailbox,
            uid,
            modseq,
            flags: flags.clone(),
            internal_date,
            size,
            blob: id.clone(),
        };
        insert(ctx.conn, &record)?;
        cache::insert(ctx.conn, *mailbox, uid, meta)?;
        counters.save(ctx.conn)?;
        ctx.changes
            .push(counters.change(ChangeKind::Appended { uid, modseq }));
        out.push(Appended {
            mailbox: *mailbox,
            uid,
            modseq,
            uidvalidity: counters.uidvalidity,
        });
    }
    Ok(out)
}

/// Existing messages of `mailbox` among `uids`, in UID order.
fn select(c: &Connection, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<MessageRecord>> {
    let wanted: BTreeSet<Uid> = uids.iter().copied().collect();
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE mailbox_id = ?1 AND uid = ?2");
    let mut st = c.prepare_cached(&sql).db()?;
    let mut out = Vec::with_capacity(wanted.len());
    for uid in wanted {
        if let Some(m) = st
            .query_row(params![mailbox.0, uid.get()], from_row)
            .optional()
            .db()?
        {
            out.push(m);
        }
    }
    Ok(out)
}

/// RFC 7162 §3.2: with UNCHANGEDSINCE, a message whose mod-sequence is greater is left alone and reported;
/// a STORE that changes nothing does not bump the mod-sequence.
pub(crate) fn store_flags(
    ctx: &mut JobCtx<'_>,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    flags: &Flags,
    unchanged_since: Option<ModSeq>,
) -> Result<FlagUpdate> {
    check_flags(flags)?;
    let c = ctx.conn;
    let mut counters = Counters::load(c, mailbox)?;
    let mut modseq = None;
    let mut result = FlagUpdate::default();
    for message in select(c, mailbox, uids)? {
        if unchanged_since.is_some_and(|since| message.modseq > since) {
            result.failed_unchanged_since.push(message.uid);
            continue;
        }
        let new = message.flags.apply(op, flags);
        if new == message.flags {
            continue;
        }
        let m = *modseq.get_or_insert_with(|| counters.bump());
        c.prepare_cached("UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2")
            .db()?
            .execute(params![mailbox.0, message.uid.get(), new.system.bits(), encode_keywords(&new), m.0 as i64])
            .db()?;
        ctx.changes.push(counters.change(ChangeKind::FlagsChanged {
            uid: message.uid,
            modseq: m,
        }));
        result.updated.push((message.uid, new, m));
    }
    if modseq.is_some() {
        counters.save(c)?;
    }
    Ok(result)
}

/// Deletes `messages` from their mailbox with tombstones at a fresh mod-sequence, releasing blob refs
/// if `release_blobs`.
fn remove(
    ctx: &mut JobCtx<'_>,
    counters: &mut Counters,
    messages: &[MessageRecord],
    release_blobs: bool,
) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let c = ctx.conn;
    let modseq = counters.bump();
    let mut refs: BTreeMap<&BlobId, u64> = BTreeMap::new();
    for m in messages {
        c.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")
            .db()?
            .execute(params![counters.id.0, m.uid.get()])
            .db()?;
        c.prepare_cached("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)")
            .db()?
            .execute(params![counters.id.0, m.uid.get(), modseq.0 as i64])
            .db()?;
        *refs.entry(&m.blob).or_default() += 1;
        ctx.changes
            .push(counters.change(ChangeKind::Expunged { uid: m.uid, modseq }));
    }
    counters.save(c)?;
    if release_blobs {
        for (blob, n) in refs {
            blobs::release(ctx, blob, n)?;
        }
    }
    Ok(())
}

/// Removes messages flagged `\Deleted` (only among `uids` if given, RFC 4315 UID EXPUNGE).
pub(crate) fn expunge(
    ctx: &mut JobCtx<'_>,
    mailbox: MailboxId,
    uids: Option<&[Uid]>,
) -> Result<Vec<Uid>> {
    let mut counters = Counters::load(ctx.conn, mailbox)?;
    let candidates = match uids {
        Some(uids) => select(ctx.conn, mailbox, uids)?,
        None => list(ctx.conn, mailbox)?,
    };
    let doomed: Vec<MessageRecord> = candidates
        .into_iter()
        .filter(|m| m.flags.system.contains(SystemFlags::DELETED))
        .collect();
    remove(ctx, &mut counters, &doomed, true)?;
    Ok(doomed.into_iter().map(|m| m.uid).collect())
}

/// Removes the given messages whatever their flags (POP3 UPDATE state), with tombstones and blob release.
pub(crate) fn remove_messages(
    ctx: &mut JobCtx<'_>,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<Uid>> {
    let mut counters = Counters::load(ctx.conn, mailbox)?;
    let doomed = select(ctx.conn, mailbox, uids)?;
    remove(ctx, &mut counters, &doomed, true)?;
    Ok(doomed.into_iter().map(|m| m.uid).collect())
}

/// Adds copies of `messages` to `to`; returns (source UID, new UID) pairs.
fn add_copies(
    ctx: &mut JobCtx<'_>,
    messages: &[MessageRecord],
    to: MailboxId,
) -> Result<Vec<(Uid, Uid)>> {
    let mut counters = Counters::load(ctx.conn, to)?;
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = counters.bump();
    let mut pairs = Vec::with_capacity(messages.len());
    for m in messages {
        let uid = counters.next_uid()?;
        insert(
            ctx.conn,
            &MessageRecord {
                mailbox: to,
                uid,
                modseq,
                ..m.clone()
            },
        )?;
        cache::copy(ctx.conn, m.mailbox, m.uid, to, uid)?;
        ctx.changes
            .push(counters.change(ChangeKind::Appended { uid, modseq }));
        pairs.push((m.uid, uid));
    }
    counters.save(ctx.conn)?;
    Ok(pairs)
}

/// RFC 4315 COPYUID order: source UIDs ascending, destination UIDs allocated in the same order.
pub(crate) fn copy(
    ctx: &mut JobCtx<'_>,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<Vec<(Uid, Uid)>> {
    Counters::load(ctx.conn, from)?;
    let messages = select(ctx.conn, from, uids)?;
    let pairs = add_copies(ctx, &messages, to)?;
    let mut refs: BTreeMap<&BlobId, u64> = BTreeMap::new();
    for m in &messages {
        *refs.entry(&m.blob).or_default() += 1;
    }
    for (blob, n) in refs {
        blobs::acquire_existing(ctx.conn, blob, n)?;
    }
    Ok(pairs)
}

/// RFC 6851 MOVE: copy, then expunge the sources whatever their flags; blob refs move with the rows.
pub(crate) fn move_messages(
    ctx: &mut JobCtx<'_>,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<Vec<(Uid, Uid)>> {
    Counters::load(ctx.conn, from)?;
    let messages = select(ctx.conn, from, uids)?;
    let pairs = add_copies(ctx, &messages, to)?;
    // Loaded after the copy so that a move within one mailbox sees the counters it just saved.
    let mut counters = Counters::load(ctx.conn, from)?;
    remove(ctx, &mut counters, &messages, false)?;
    Ok(pairs)
}

fn list(c: &Connection, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE mailbox_id = ?1 ORDER BY uid");
    let mut st = c.prepare_cached(&sql).db()?;
    st.query_map([mailbox.0], from_row)
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

pub(crate) fn messages(c: &Connection, mailbox: MailboxId) -> Result<Vec<MessageRecord>> {
    let tx = c.unchecked_transaction().db()?;
    mailbox::get(&tx, mailbox)?.ok_or(StoreError::NotFound)?;
    list(&tx, mailbox)
}

/// Below this many UIDs each is looked up alone; above it the UID range is scanned once.
const POINT_LOOKUPS: usize = 16;

/// The messages of `mailbox` among `uids` (ascending) that exist, in UID order.
pub(crate) fn messages_in(
    c: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<MessageRecord>> {
    rows_in(c, mailbox, uids, (COLUMNS, 1), from_row)
}

/// [`messages_in`] with the flags and mod-sequence only (FETCH FLAGS of a large mailbox reads
/// half the columns).
pub(crate) fn flags_in(
    c: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<MessageFlags>> {
    rows_in(c, mailbox, uids, ("uid, modseq, flags, keywords", 0), |r| {
        Ok(MessageFlags {
            uid: uid_from(r.get(0)?)?,
            modseq: ModSeq(r.get::<_, i64>(1)? as u64),
            flags: decode_flags(r.get(2)?, r.get_ref(3)?.as_str()?),
        })
    })
}

/// Rows of `mailbox` among `uids` (ascending): `columns` (the UID at index `uid_at` among
/// them) decoded by `decode`; point lookups for a few UIDs, one scan of the UID range for
/// many. One read transaction, NotFound for an unknown mailbox.
fn rows_in<T>(
    c: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
    (columns, uid_at): (&str, usize),
    decode: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let tx = c.unchecked_transaction().db()?;
    mailbox::get(&tx, mailbox)?.ok_or(StoreError::NotFound)?;
    let (Some(first), Some(last)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(uids.len());
    if uids.len() <= POINT_LOOKUPS {
        let sql = format!("SELECT {columns} FROM messages WHERE mailbox_id = ?1 AND uid = ?2");
        let mut st = tx.prepare_cached(&sql).db()?;
        let mut last_seen = None;
        for uid in uids {
            // Ascending, so a repeated UID is the previous one.
            if last_seen == Some(uid) {
                continue;
            }
            last_seen = Some(uid);
            if let Some(row) = st
                .query_row(params![mailbox.0, uid.get()], &decode)
                .optional()
                .db()?
            {
                out.push(row);
            }
        }
        return Ok(out);
    }
    let sql = format!(
        "SELECT {columns} FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
    );
    let mut st = tx.prepare_cached(&sql).db()?;
    let mut rows = st.query(params![mailbox.0, first.get(), last.get()]).db()?;
    // Both ascend: walk them together; rows in the range but not asked for are not decoded.
    let mut wanted = uids.iter().peekable();
    while let Some(r) = rows.next().db()? {
        let uid: u32 = r.get(uid_at).db()?;
        while wanted.next_if(|w| w.get() < uid).is_some() {}
        if wanted.next_if(|w| w.get() == uid).is_some() {
            out.push(decode(r).db()?);
        }
    }
    Ok(out)
}

pub(crate) fn message(
    c: &Connection,
    mailbox: MailboxId,
    uid: Uid,
) -> Result<Option<MessageRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE mailbox_id = ?1 AND uid = ?2");
    c.query_row(&sql, params![mailbox.0, uid.get()], from_row)
        .optional()
        .db()
}

pub(crate) fn changes_since(c: &Connection, mailbox: MailboxId, since: ModSeq) -> Result<Changes> {
    let tx = c.unchecked_transaction().db()?;
    mailbox::get(&tx, mailbox)?.ok_or(StoreError::NotFound)?;
    let since = i64::try_from(since.0).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid"
    );
    let changed = tx
        .prepare_cached(&sql)
        .db()?
        .query_map(params![mailbox.0, since], from_row)
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    let vanished = tx
        .prepare_cached(
            "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        )
        .db()?
        .query_map(params![mailbox.0, since], |r| uid_from(r.get(0)?))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    Ok(Changes { changed, vanished })
}

/// Rows that break the UID/MODSEQ invariants (empty when all is well).
pub(crate) fn check(c: &Connection) -> Result<Vec<String>> {
    let mut st = c
        .prepare(
            "SELECT mb.id, 'message uid >= uidnext' FROM mailboxes mb JOIN messages m ON m.mailbox_id = mb.id
               WHERE m.uid >= mb.uidnext
             UNION ALL
             SELECT mb.id, 'message modseq > highestmodseq' FROM mailboxes mb JOIN messages m ON m.mailbox_id = mb.id
               WHERE m.modseq > mb.highestmodseq
             UNION ALL
             SELECT mb.id, 'tombstone modseq > highestmodseq' FROM mailboxes mb JOIN expunged e ON e.mailbox_id = mb.id
               WHERE e.modseq > mb.highestmodseq
             UNION ALL
             SELECT e.mailbox_id, 'uid both live and expunged' FROM expunged e JOIN messages m
               ON m.mailbox_id = e.mailbox_id AND m.uid = e.uid",
        )
        .db()?;
    let rows = st
        .query_map([], |r| {
            Ok(format!(
                "mailbox {}: {}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?
            ))
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}
