//! Outbound queue rows: enqueue (inside a delivery's transaction), claims with leases, attempt results,
//! and the administrative operations behind `tern queue`.
//!
//! Invariants: a `queue_messages` row holds one reference on its blob; it exists while at least one of
//! its recipients is `pending`, and is removed (with its recipients, releasing the blob) in the same
//! transaction that settles its last pending recipient.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::JobCtx;
use super::{SqlExt, blobs};
use crate::blob::BlobId;
use crate::error::{Result, StoreError};
use crate::queue::*;

const MESSAGE_COLUMNS: &str = "id, blob_hash, skip, size, mail_from, env_id, ret, smtputf8, eight_bit, created_at, delay_notified, sender_trust";
const RECIPIENT_COLUMNS: &str = "id, message_id, address, domain, orcpt, notify, status, attempts, last_error, next_attempt, expires_at, lease_owner, lease_until";

fn message_from(r: &Row<'_>) -> rusqlite::Result<QueuedMessage> {
    let hash: String = r.get(1)?;
    let blob = BlobId::from_hex(&hash)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(1, hash, rusqlite::types::Type::Text))?;
    let mail_from: String = r.get(4)?;
    Ok(QueuedMessage {
        id: QueueId(r.get(0)?),
        blob,
        skip: r.get::<_, i64>(2)?.max(0) as u64,
        size: r.get::<_, i64>(3)?.max(0) as u64,
        mail_from: (!mail_from.is_empty()).then_some(mail_from),
        env_id: r.get(5)?,
        ret: ret_from_code(r.get(6)?),
        smtputf8: r.get(7)?,
        eight_bit: r.get(8)?,
        created_at: r.get(9)?,
        delay_notified: r.get(10)?,
        sender_trust: trust_from_code(r.get(11)?),
    })
}

fn recipient_from(r: &Row<'_>) -> rusqlite::Result<QueuedRecipient> {
    let status: String = r.get(6)?;
    let status = QueueStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(6, status, rusqlite::types::Type::Text)
    })?;
    Ok(QueuedRecipient {
        id: QueueRecipientId(r.get(0)?),
        message: QueueId(r.get(1)?),
        address: r.get(2)?,
        domain: r.get(3)?,
        orcpt: r.get(4)?,
        notify: Notify(u8::try_from(r.get::<_, i64>(5)?).unwrap_or(0)),
        status,
        attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(u32::MAX),
        last_error: r.get(8)?,
        next_attempt: r.get(9)?,
        expires_at: r.get(10)?,
        lease_owner: r.get(11)?,
        lease_until: r.get(12)?,
    })
}

/// The `ret` column: 0 RET not given, 1 FULL, 2 HDRS.
fn ret_code(ret: Option<DsnReturn>) -> i64 {
    match ret {
        None => 0,
        Some(DsnReturn::Full) => 1,
        Some(DsnReturn::Headers) => 2,
    }
}

fn ret_from_code(code: i64) -> Option<DsnReturn> {
    match code {
        1 => Some(DsnReturn::Full),
        2 => Some(DsnReturn::Headers),
        _ => None,
    }
}

/// The `sender_trust` column: 0 unverified (the default of rows from before it existed), 1 failed,
/// 2 SPF pass, 3 authenticated.
fn trust_code(trust: SenderTrust) -> i64 {
    match trust {
        SenderTrust::Unverified => 0,
        SenderTrust::Failed => 1,
        SenderTrust::SpfPass => 2,
        SenderTrust::Authenticated => 3,
    }
}

fn trust_from_code(code: i64) -> SenderTrust {
    match code {
        1 => SenderTrust::Failed,
        2 => SenderTrust::SpfPass,
        3 => SenderTrust::Authenticated,
        _ => SenderTrust::Unverified,
    }
}

/// The domain part of an address, lowercased (the routing key).
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase()
}

/// Inserts a queued message and its recipients; the caller has already acquired one blob reference
/// for it.
pub(crate) fn enqueue(
    c: &Connection,
    blob: &BlobId,
    blob_size: u64,
    q: &NewQueued,
    now: i64,
) -> Result<QueueId> {
    if q.recipients.is_empty() {
        return Err(StoreError::Invalid(
            "queued message without recipients".into(),
        ));
    }
    let size = blob_size.checked_sub(q.skip).ok_or_else(|| {
        StoreError::Invalid("queued message skips more than the whole blob".into())
    })?;
    c.prepare_cached(
        "INSERT INTO queue_messages (blob_hash, skip, size, mail_from, env_id, ret, smtputf8,
                                     eight_bit, created_at, delay_notified, sender_trust)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
    )
    .db()?
    .execute(params![
        blob.as_str(),
        q.skip as i64,
        size as i64,
        q.mail_from.as_deref().unwrap_or(""),
        q.env_id,
        ret_code(q.ret),
        q.smtputf8,
        q.eight_bit,
        now,
        trust_code(q.sender_trust),
    ])
    .db()?;
    let id = QueueId(c.last_insert_rowid());
    let mut st = c
        .prepare_cached(
            "INSERT INTO queue_recipients (message_id, address, domain, orcpt, notify, status,
                                           attempts, next_attempt, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7)",
        )
        .db()?;
    for r in &q.recipients {
        st.execute(params![
            id.0,
            r.address,
            domain_of(&r.address),
            r.orcpt,
            i64::from(r.notify.0),
            q.next_attempt,
            q.expires_at,
        ])
        .db()?;
    }
    Ok(id)
}

fn message(c: &Connection, id: QueueId) -> Result<Option<QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id = ?1");
    c.prepare_cached(&sql)
        .db()?
        .query_row([id.0], message_from)
        .optional()
        .db()
}

fn recipients(c: &Connection, id: QueueId) -> Result<Vec<QueuedRecipient>> {
    let sql = format!(
        "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients WHERE message_id = ?1 ORDER BY id"
    );
    let mut st = c.prepare_cached(&sql).db()?;
    let rows = st.query_map([id.0], recipient_from).db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Claims up to `limit` due pending recipients whose lease is free or expired, leasing them to `owner`
/// until `now + lease_secs`. Grouped by message, in message id order.
pub(crate) fn claim(
    c: &Connection,
    owner: &str,
    now: i64,
    lease_secs: i64,
    limit: usize,
) -> Result<Vec<QueueEntry>> {
    let ids: Vec<(i64, i64)> = {
        let mut st = c
            .prepare_cached(
                "SELECT id, message_id FROM queue_recipients
                 WHERE status = 'pending' AND next_attempt <= ?1
                   AND (lease_until IS NULL OR lease_until <= ?1)
                 ORDER BY next_attempt, id LIMIT ?2",
            )
            .db()?;
        let rows = st
            .query_map(params![now, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .db()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db()?
    };
    let until = now.saturating_add(lease_secs);
    let mut update = c
        .prepare_cached(
            "UPDATE queue_recipients SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
        )
        .db()?;
    for (id, _) in &ids {
        update.execute(params![id, owner, until]).db()?;
    }
    let mut message_ids: Vec<i64> = ids.iter().map(|(_, m)| *m).collect();
    message_ids.sort_unstable();
    message_ids.dedup();
    let claimed: std::collections::HashSet<i64> = ids.iter().map(|(id, _)| *id).collect();
    let mut out = Vec::with_capacity(message_ids.len());
    for m in message_ids {
        let Some(message) = message(c, QueueId(m))? else {
            return Err(StoreError::Corrupt(format!(
                "queue recipient of missing message {m}"
            )));
        };
        let recipients = recipients(c, QueueId(m))?
            .into_iter()
            .filter(|r| claimed.contains(&r.id.0))
            .collect();
        out.push(QueueEntry {
            message,
            recipients,
        });
    }
    Ok(out)
}

/// Frees every lease held by `owner` (a node restarting after a crash owns nothing any more).
pub(crate) fn release_leases(c: &Connection, owner: &str) -> Result<usize> {
    c.execute(
        "UPDATE queue_recipients SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
        [owner],
    )
    .db()
}

/// Extends to `until` the leases `owner` still holds on the pending recipients `ids` (settled or
/// taken-over ones are left alone). Returns how many were renewed.
pub(crate) fn renew_leases(
    c: &Connection,
    owner: &str,
    ids: &[QueueRecipientId],
    until: i64,
) -> Result<usize> {
    let mut st = c
        .prepare_cached(
            "UPDATE queue_recipients SET lease_until = MAX(lease_until, ?3)
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'pending'",
        )
        .db()?;
    let mut renewed = 0;
    for id in ids {
        renewed += st.execute(params![id.0, owner, until]).db()?;
    }
    Ok(renewed)
}

/// Records attempt results for recipients of one message (only rows still leased to `owner` and
/// pending are changed; others were settled or taken over meanwhile and are left alone). Removes the
/// message when nothing is pending any more. Returns whether it was removed.
pub(crate) fn complete(
    ctx: &mut JobCtx<'_>,
    owner: &str,
    id: QueueId,
    results: &[(QueueRecipientId, AttemptOutcome)],
    delay_notified: bool,
) -> Result<bool> {
    let c = ctx.conn;
    for (rcpt, outcome) in results {
        let (status, error, next): (QueueStatus, Option<&str>, Option<i64>) = match outcome {
            AttemptOutcome::Delivered(_) => (QueueStatus::Delivered, None, None),
            AttemptOutcome::Deferred {
                error,
                next_attempt,
            } => (QueueStatus::Pending, Some(error), Some(*next_attempt)),
            AttemptOutcome::Failed(error) => (QueueStatus::Failed, Some(error), None),
        };
        c.prepare_cached(
            "UPDATE queue_recipients
             SET status = ?4, attempts = attempts + 1, last_error = COALESCE(?5, last_error),
                 next_attempt = COALESCE(?6, next_attempt), lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND message_id = ?2 AND status = 'pending'
               AND (lease_owner = ?3 OR lease_owner IS NULL)",
        )
        .db()?
        .execute(params![rcpt.0, id.0, owner, status.as_str(), error, next])
        .db()?;
    }
    if delay_notified {
        c.execute(
            "UPDATE queue_messages SET delay_notified = 1 WHERE id = ?1",
            [id.0],
        )
        .db()?;
    }
    let pending: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM queue_recipients WHERE message_id = ?1 AND status = 'pending'",
            [id.0],
            |r| r.get(0),
        )
        .db()?;
    if pending == 0 {
        remove(ctx, id)?;
        return Ok(true);
    }
    Ok(false)
}

/// Removes a message with its recipients and releases its blob reference. NotFound if absent.
pub(crate) fn remove(ctx: &mut JobCtx<'_>, id: QueueId) -> Result<()> {
    let c = ctx.conn;
    let hash: Option<String> = c
        .query_row(
            "SELECT blob_hash FROM queue_messages WHERE id = ?1",
            [id.0],
            |r| r.get(0),
        )
        .optional()
        .db()?;
    let Some(hash) = hash else {
        return Err(StoreError::NotFound);
    };
    let blob = BlobId::from_hex(&hash)
        .ok_or_else(|| StoreError::Corrupt(format!("queue message {id}: bad blob hash")))?;
    c.execute("DELETE FROM queue_recipients WHERE message_id = ?1", [id.0])
        .db()?;
    c.execute("DELETE FROM queue_messages WHERE id = ?1", [id.0])
        .db()?;
    blobs::release(ctx, &blob, 1)
}

/// Every queued message with all its recipients, oldest first.
pub(crate) fn list(c: &Connection) -> Result<Vec<QueueEntry>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages ORDER BY id");
    let mut st = c.prepare(&sql).db()?;
    let messages = st
        .query_map([], message_from)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let recipients = recipients(c, message.id)?;
        out.push(QueueEntry {
            message,
            recipients,
        });
    }
    Ok(out)
}

/// One queued message with all its recipients.
pub(crate) fn entry(c: &Connection, id: QueueId) -> Result<Option<QueueEntry>> {
    let Some(message) = message(c, id)? else {
        return Ok(None);
    };
    let recipients = recipients(c, id)?;
    Ok(Some(QueueEntry {
        message,
        recipients,
    }))
}

/// Makes the pending recipients of one message (or of all, with `None`) due now. Returns how many.
pub(crate) fn retry_now(c: &Connection, id: Option<QueueId>, now: i64) -> Result<usize> {
    let n = match id {
        Some(id) => {
            if message(c, id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            c.execute(
                "UPDATE queue_recipients SET next_attempt = ?2 WHERE message_id = ?1 AND status = 'pending'",
                params![id.0, now],
            )
            .db()?
        }
        None => c
            .execute(
                "UPDATE queue_recipients SET next_attempt = ?1 WHERE status = 'pending'",
                [now],
            )
            .db()?,
    };
    Ok(n)
}

/// Counters.
pub(crate) fn stats(c: &Connection) -> Result<QueueStats> {
    let messages: i64 = c
        .query_row("SELECT COUNT(*) FROM queue_messages", [], |r| r.get(0))
        .db()?;
    let pending: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM queue_recipients WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .db()?;
    Ok(QueueStats {
        messages: messages.max(0) as u64,
        pending: pending.max(0) as u64,
    })
}

/// Earliest `next_attempt` of a pending recipient, if any (so the worker can sleep until then).
pub(crate) fn next_due(c: &Connection) -> Result<Option<i64>> {
    c.query_row(
        "SELECT MIN(next_attempt) FROM queue_recipients WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )
    .db()
}
