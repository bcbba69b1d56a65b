//! Mailboxes: naming, UIDVALIDITY, and the per-mailbox UID/MODSEQ counters.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::JobCtx;
use super::{SqlExt, blobs, unix_now};
use crate::blob::BlobId;
use crate::bus::{Change, ChangeKind};
use crate::error::{Result, StoreError};
use crate::types::{
    AccountId, Mailbox, MailboxId, MailboxStatus, ModSeq, RecentClaim, RecentStatus, SpecialUse,
    Uid, UidValidity,
};

/// Hierarchy separator.
pub(crate) const SEPARATOR: char = '/';

/// Validates a mailbox name and makes a leading `INBOX` component uppercase.
///
/// RFC 9051 §5.1: the name INBOX is case-insensitive; we store it (and as a parent, `INBOX/…`) canonically.
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    if name.is_empty() || name.split(SEPARATOR).any(str::is_empty) {
        return Err(StoreError::Invalid(format!("bad mailbox name {name:?}")));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "control character in mailbox name".into(),
        ));
    }
    let (first, rest) = match name.split_once(SEPARATOR) {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    if first.eq_ignore_ascii_case("INBOX") {
        return Ok(match rest {
            Some(rest) => format!("INBOX{SEPARATOR}{rest}"),
            None => "INBOX".to_owned(),
        });
    }
    Ok(name.to_owned())
}

/// The counters of one mailbox, loaded at the start of a write and saved at its end.
pub(crate) struct Counters {
    pub id: MailboxId,
    pub account: AccountId,
    pub uidvalidity: UidValidity,
    pub uidnext: u32,
    pub highestmodseq: u64,
}

impl Counters {
    pub(crate) fn load(c: &Connection, id: MailboxId) -> Result<Counters> {
        c.prepare_cached(
            "SELECT account_id, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE id = ?1",
        )
        .db()?
        .query_row([id.0], |r| {
            Ok(Counters {
                id,
                account: AccountId(r.get(0)?),
                uidvalidity: UidValidity(r.get(1)?),
                uidnext: r.get(2)?,
                highestmodseq: r.get::<_, i64>(3)? as u64,
            })
        })
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)
    }

    /// Allocates the next UID (RFC 9051 §2.3.1.1: strictly ascending, never reused).
    pub(crate) fn next_uid(&mut self) -> Result<Uid> {
        let uid =
            Uid::new(self.uidnext).ok_or_else(|| StoreError::Corrupt("uidnext is 0".into()))?;
        self.uidnext = self
            .uidnext
            .checked_add(1)
            .ok_or_else(|| StoreError::Invalid("UID space of mailbox exhausted".into()))?;
        Ok(uid)
    }

    /// Allocates the mod-sequence of this operation (RFC 7162 §3.1: one per operation, never goes back).
    pub(crate) fn bump(&mut self) -> ModSeq {
        self.highestmodseq += 1;
        ModSeq(self.highestmodseq)
    }

    pub(crate) fn save(&self, c: &Connection) -> Result<()> {
        c.execute(
            "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3 WHERE id = ?1",
            params![self.id.0, self.uidnext, self.highestmodseq as i64],
        )
        .db()?;
        Ok(())
    }

    pub(crate) fn change(&self, kind: ChangeKind) -> Change {
        Change {
            account: self.account,
            mailbox: self.id,
            kind,
        }
    }
}

/// Next UIDVALIDITY: a store-wide counter seeded from the clock, so a mailbox deleted and recreated in the
/// same second still gets a new, larger value (RFC 9051 §2.3.1.1).
fn next_uidvalidity(c: &Connection) -> Result<UidValidity> {
    let stored: Option<i64> = c
        .prepare_cached("SELECT value FROM settings WHERE key = 'uidvalidity_next'")
        .db()?
        .query_row([], |r| r.get(0))
        .optional()
        .db()?;
    let now = unix_now().clamp(1, i64::from(u32::MAX));
    let value = stored.unwrap_or(0).max(now);
    let value = u32::try_from(value)
        .map_err(|_| StoreError::Invalid("UIDVALIDITY space exhausted".into()))?;
    c.execute(
        "INSERT INTO settings (key, value) VALUES ('uidvalidity_next', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [i64::from(value) + 1],
    )
    .db()?;
    Ok(UidValidity(value))
}

const COLUMNS: &str =
    "id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Mailbox> {
    let special_use: Option<String> = r.get(6)?;
    Ok(Mailbox {
        id: MailboxId(r.get(0)?),
        account_id: AccountId(r.get(1)?),
        name: r.get(2)?,
        uidvalidity: UidValidity(r.get(3)?),
        uidnext: r.get(4)?,
        highestmodseq: ModSeq(r.get::<_, i64>(5)? as u64),
        special_use: special_use.as_deref().and_then(SpecialUse::parse),
        subscribed: r.get(7)?,
    })
}

pub(crate) fn create(
    ctx: &mut JobCtx<'_>,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxId> {
    let c = ctx.conn;
    let name = normalize_name(name)?;
    let account_exists: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if !account_exists {
        return Err(StoreError::NotFound);
    }
    if by_name(c, account, &name)?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    let uidvalidity = next_uidvalidity(c)?;
    c.execute(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed)
         VALUES (?1, ?2, ?3, 1, 1, ?4, 1)",
        params![account.0, name, uidvalidity.0, special_use.map(SpecialUse::as_str)],
    )
    .db()?;
    let id = MailboxId(c.last_insert_rowid());
    ctx.changes.push(Change {
        account,
        mailbox: id,
        kind: ChangeKind::MailboxCreated,
    });
    Ok(id)
}

pub(crate) fn list(c: &Connection, account: AccountId) -> Result<Vec<Mailbox>> {
    let exists: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let sql = format!("SELECT {COLUMNS} FROM mailboxes WHERE account_id = ?1 ORDER BY name");
    let mut st = c.prepare_cached(&sql).db()?;
    st.query_map([account.0], from_row)
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

pub(crate) fn get(c: &Connection, id: MailboxId) -> Result<Option<Mailbox>> {
    let sql = format!("SELECT {COLUMNS} FROM mailboxes WHERE id = ?1");
    c.prepare_cached(&sql)
        .db()?
        .query_row([id.0], from_row)
        .optional()
        .db()
}

pub(crate) fn by_name(c: &Connection, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
    let Ok(name) = normalize_name(name) else {
        return Ok(None);
    };
    let sql = format!("SELECT {COLUMNS} FROM mailboxes WHERE account_id = ?1 AND name = ?2");
    c.prepare_cached(&sql)
        .db()?
        .query_row(params![account.0, name], from_row)
        .optional()
        .db()
}

/// Renames a mailbox and every mailbox below it (`a` → `b` also moves `a/x` to `b/x`).
pub(crate) fn rename(ctx: &mut JobCtx<'_>, id: MailboxId, new_name: &str) -> Result<()> {
    let c = ctx.conn;
    let mailbox = get(c, id)?.ok_or(StoreError::NotFound)?;
    if mailbox.name == "INBOX" {
        return Err(StoreError::Inbox);
    }
    let new_name = normalize_name(new_name)?;
    if new_name == mailbox.name {
        return Ok(());
    }
    let prefix = format!("{}{SEPARATOR}", mailbox.name);
    if new_name.starts_with(&prefix) {
        return Err(StoreError::Invalid(
            "cannot rename a mailbox below itself".into(),
        ));
    }
    let mut renames = vec![(mailbox.id, new_name.clone())];
    for child in list(c, mailbox.account_id)? {
        if let Some(rest) = child.name.strip_prefix(&prefix) {
            renames.push((child.id, format!("{new_name}{SEPARATOR}{rest}")));
        }
    }
    for (_, name) in &renames {
        if by_name(c, mailbox.account_id, name)?.is_some() {
            return Err(StoreError::AlreadyExists);
        }
    }
    for (mid, name) in renames {
        c.execute(
            "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
            params![mid.0, name],
        )
        .db()?;
        ctx.changes.push(Change {
            account: mailbox.account_id,
            mailbox: mid,
            kind: ChangeKind::MailboxRenamed,
        });
    }
    Ok(())
}

/// Deletes a mailbox (not INBOX), its messages and tombstones; children stay.
pub(crate) fn delete(ctx: &mut JobCtx<'_>, id: MailboxId) -> Result<()> {
    let mailbox = get(ctx.conn, id)?.ok_or(StoreError::NotFound)?;
    if mailbox.name == "INBOX" {
        return Err(StoreError::Inbox);
    }
    delete_unchecked(ctx, id)
}

/// Deletes any mailbox, INBOX included (account removal).
pub(crate) fn delete_unchecked(ctx: &mut JobCtx<'_>, id: MailboxId) -> Result<()> {
    let c = ctx.conn;
    let counters = Counters::load(c, id)?;
    let refs: Vec<(String, i64)> = {
        let mut st = c
            .prepare_cached(
                "SELECT blob_hash, COUNT(*) FROM messages WHERE mailbox_id = ?1 GROUP BY blob_hash",
            )
            .db()?;
        st.query_map([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?
    };
    c.execute("DELETE FROM messages WHERE mailbox_id = ?1", [id.0])
        .db()?;
    for (hash, n) in refs {
        let blob = BlobId::from_hex(&hash)
            .ok_or_else(|| StoreError::Corrupt(format!("bad blob hash {hash:?}")))?;
        blobs::release(ctx, &blob, n as u64)?;
    }
    c.execute("DELETE FROM expunged WHERE mailbox_id = ?1", [id.0])
        .db()?;
    c.execute("DELETE FROM mailboxes WHERE id = ?1", [id.0])
        .db()?;
    ctx.changes
        .push(counters.change(ChangeKind::MailboxDeleted));
    Ok(())
}

pub(crate) fn set_subscribed(c: &Connection, id: MailboxId, subscribed: bool) -> Result<()> {
    match c
        .execute(
            "UPDATE mailboxes SET subscribed = ?2 WHERE id = ?1",
            params![id.0, subscribed],
        )
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(crate) fn status(c: &Connection, id: MailboxId) -> Result<MailboxStatus> {
    let tx = c.unchecked_transaction().db()?;
    let mailbox = get(&tx, id)?.ok_or(StoreError::NotFound)?;
    let (messages, unseen, deleted, size_bytes): (u32, u32, u32, i64) = tx
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM((flags & 1) = 0), 0), COALESCE(SUM((flags & 8) != 0), 0),
                    COALESCE(SUM(size), 0)
             FROM messages WHERE mailbox_id = ?1",
            [id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .db()?;
    Ok(MailboxStatus {
        messages,
        unseen,
        deleted,
        size_bytes: size_bytes.max(0) as u64,
        uidnext: mailbox.uidnext,
        uidvalidity: mailbox.uidvalidity,
        highestmodseq: mailbox.highestmodseq,
    })
}

/// What [`claim_recent`] would claim now, without claiming it.
pub(crate) fn peek_recent(c: &Connection, id: MailboxId) -> Result<RecentClaim> {
    let (after, uidnext): (u32, u32) = c
        .prepare_cached("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)?;
    Ok(RecentClaim {
        after,
        through: uidnext.saturating_sub(1).max(after),
    })
}

/// RFC 3501 §2.3.2: the caller becomes the session that sees the messages above the recent
/// mark as recent; the mark moves to the highest UID allocated. Runs in the writer, so two
/// sessions never claim the same UID.
pub(crate) fn claim_recent(c: &Connection, id: MailboxId) -> Result<RecentClaim> {
    let claim = peek_recent(c, id)?;
    if claim.through > claim.after {
        c.prepare_cached("UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1")
            .db()?
            .execute(params![id.0, claim.through])
            .db()?;
    }
    Ok(claim)
}

/// The recent mark and the number of messages above it.
pub(crate) fn recent_status(c: &Connection, id: MailboxId) -> Result<RecentStatus> {
    let claimed = peek_recent(c, id)?.after;
    let unclaimed: u32 = c
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE mailbox_id = ?1 AND uid > ?2")
        .db()?
        .query_row(params![id.0, claimed], |r| r.get(0))
        .db()?;
    Ok(RecentStatus { claimed, unclaimed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_canonical_uppercase_also_as_parent() {
        assert_eq!(normalize_name("inbox").ok(), Some("INBOX".into()));
        assert_eq!(normalize_name("InBox/Work").ok(), Some("INBOX/Work".into()));
        assert_eq!(normalize_name("Inboxes").ok(), Some("Inboxes".into()));
        assert!(normalize_name("").is_err());
        assert!(normalize_name("a//b").is_err());
        assert!(normalize_name("/a").is_err());
    }
}
