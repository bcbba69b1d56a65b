//! Domains, accounts and aliases.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::JobCtx;
use super::{SqlExt, mailbox, unix_now};
use crate::error::{Result, StoreError};
use crate::types::{
    Account, AccountId, Alias, CredentialEpoch, Domain, DomainId, NewAccount, SpecialUse,
};

/// Mailboxes every new account gets, all subscribed (RFC 6154 attributes where one applies).
const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The lowercase domain part of `local@domain`.
pub(crate) fn domain_part(address: &str) -> Result<String> {
    match address.rsplit_once('@') {
        Some((_, d)) if !d.is_empty() => Ok(d.to_ascii_lowercase()),
        _ => Err(StoreError::Invalid(format!(
            "address without domain: {address:?}"
        ))),
    }
}

/// `address` with its domain part lowercased.
pub(crate) fn normalize_address(address: &str) -> Result<String> {
    let domain = domain_part(address)?;
    let local = &address[..address.len() - domain.len() - 1];
    Ok(format!("{local}@{domain}"))
}

fn domain_id(c: &Connection, name: &str) -> Result<Option<DomainId>> {
    c.prepare_cached("SELECT id FROM domains WHERE name = ?1")
        .db()?
        .query_row([name], |r| r.get(0))
        .optional()
        .db()
        .map(|o| o.map(DomainId))
}

fn domain_from_row(r: &Row<'_>) -> rusqlite::Result<Domain> {
    Ok(Domain {
        id: DomainId(r.get(0)?),
        name: r.get(1)?,
        catch_all: r.get(2)?,
    })
}

pub(crate) fn add_domain(c: &Connection, name: &str) -> Result<DomainId> {
    if name.is_empty() {
        return Err(StoreError::Invalid("empty domain name".into()));
    }
    if domain_id(c, name)?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    c.execute("INSERT INTO domains (name) VALUES (?1)", [name])
        .db()?;
    Ok(DomainId(c.last_insert_rowid()))
}

pub(crate) fn domains(c: &Connection) -> Result<Vec<Domain>> {
    let mut st = c
        .prepare_cached("SELECT id, name, catch_all FROM domains ORDER BY name")
        .db()?;
    st.query_map([], domain_from_row)
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

pub(crate) fn domain(c: &Connection, name: &str) -> Result<Option<Domain>> {
    c.prepare_cached("SELECT id, name, catch_all FROM domains WHERE name = ?1")
        .db()?
        .query_row([name], domain_from_row)
        .optional()
        .db()
}

pub(crate) fn remove_domain(c: &Connection, name: &str) -> Result<()> {
    let id = domain_id(c, name)?.ok_or(StoreError::NotFound)?;
    let used: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE domain_id = ?1)
                 OR EXISTS (SELECT 1 FROM aliases WHERE domain_id = ?1)",
        )
        .db()?
        .query_row([id.0], |r| r.get(0))
        .db()?;
    if used {
        return Err(StoreError::InUse);
    }
    c.execute("DELETE FROM send_as WHERE domain_id = ?1", [id.0])
        .db()?;
    c.execute("DELETE FROM domains WHERE id = ?1", [id.0])
        .db()?;
    Ok(())
}

pub(crate) fn set_catch_all(c: &Connection, name: &str, target: Option<&str>) -> Result<()> {
    match c
        .execute(
            "UPDATE domains SET catch_all = ?2 WHERE name = ?1",
            params![name, target],
        )
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

const ACCOUNT_COLUMNS: &str = "id, address, domain_id, display_name, password_hash, scram_sha256, \
     quota_bytes, created_at, disabled, credential_generation";

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: AccountId(r.get(0)?),
        address: r.get(1)?,
        domain_id: DomainId(r.get(2)?),
        display_name: r.get(3)?,
        password_hash: r.get(4)?,
        scram_sha256: r.get(5)?,
        quota_bytes: r.get::<_, Option<i64>>(6)?.map(|q| q.max(0) as u64),
        created_at: r.get(7)?,
        disabled: r.get(8)?,
        credential_generation: CredentialEpoch(r.get(9)?),
    })
}

/// The store-wide credential epoch (0 before the first change).
pub(crate) fn credential_epoch(c: &Connection) -> Result<CredentialEpoch> {
    let stored: Option<i64> = c
        .prepare_cached("SELECT value FROM settings WHERE key = 'credential_epoch'")
        .db()?
        .query_row([], |r| r.get(0))
        .optional()
        .db()?;
    Ok(CredentialEpoch(stored.unwrap_or(0)))
}

/// Takes the next credential epoch, in the transaction of the change it announces, and stamps
/// it on `account` (if the account still exists).
fn bump_credentials(c: &Connection, account: AccountId) -> Result<()> {
    let next = credential_epoch(c)?.0 + 1;
    c.execute(
        "INSERT INTO settings (key, value) VALUES ('credential_epoch', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [next],
    )
    .db()?;
    c.execute(
        "UPDATE accounts SET credential_generation = ?2 WHERE id = ?1",
        params![account.0, next],
    )
    .db()?;
    Ok(())
}

pub(crate) fn add_account(ctx: &mut JobCtx<'_>, new: &NewAccount) -> Result<AccountId> {
    let c = ctx.conn;
    let address = normalize_address(&new.address)?;
    let domain = domain_id(c, &domain_part(&address)?)?.ok_or(StoreError::NotFound)?;
    let quota = new
        .quota_bytes
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StoreError::Invalid("quota too large".into()))?;
    let exists: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE address = ?1)")
        .db()?
        .query_row([&address], |r| r.get(0))
        .db()?;
    if exists {
        return Err(StoreError::AlreadyExists);
    }
    c.execute(
        "INSERT INTO accounts (address, domain_id, display_name, password_hash, scram_sha256, quota_bytes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![address, domain.0, new.display_name, new.password_hash, new.scram_sha256, quota, unix_now()],
    )
    .db()?;
    let id = AccountId(c.last_insert_rowid());
    for (name, special_use) in DEFAULT_MAILBOXES {
        mailbox::create(ctx, id, name, special_use)?;
    }
    Ok(id)
}

pub(crate) fn account(c: &Connection, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
    c.prepare_cached(&sql)
        .db()?
        .query_row([id.0], account_from_row)
        .optional()
        .db()
}

pub(crate) fn account_by_address(c: &Connection, address: &str) -> Result<Option<Account>> {
    let Ok(address) = normalize_address(address) else {
        return Ok(None);
    };
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?1");
    c.prepare_cached(&sql)
        .db()?
        .query_row([address], account_from_row)
        .optional()
        .db()
}

pub(crate) fn accounts(c: &Connection, domain: Option<&str>) -> Result<Vec<Account>> {
    let filter = match domain {
        Some(name) => Some(domain_id(c, name)?.ok_or(StoreError::NotFound)?.0),
        None => None,
    };
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE ?1 IS NULL OR domain_id = ?1 ORDER BY address"
    );
    let mut st = c.prepare_cached(&sql).db()?;
    st.query_map([filter], account_from_row)
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

pub(crate) fn set_password(
    c: &Connection,
    id: AccountId,
    hash: &str,
    scram: Option<&str>,
) -> Result<()> {
    match c
        .execute(
            "UPDATE accounts SET password_hash = ?2, scram_sha256 = ?3 WHERE id = ?1",
            params![id.0, hash, scram],
        )
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => bump_credentials(c, id),
    }
}

pub(crate) fn set_disabled(c: &Connection, id: AccountId, disabled: bool) -> Result<()> {
    match c
        .execute(
            "UPDATE accounts SET disabled = ?2 WHERE id = ?1",
            params![id.0, disabled],
        )
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => bump_credentials(c, id),
    }
}

pub(crate) fn remove_account(ctx: &mut JobCtx<'_>, id: AccountId) -> Result<()> {
    if account(ctx.conn, id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let ids: Vec<i64> = {
        let mut st = ctx
            .conn
            .prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1")
            .db()?;
        st.query_map([id.0], |r| r.get(0))
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?
    };
    for mailbox in ids {
        mailbox::delete_unchecked(ctx, crate::types::MailboxId(mailbox))?;
    }
    super::spam::remove_account(ctx.conn, id)?;
    ctx.conn
        .execute("DELETE FROM send_as WHERE account_id = ?1", [id.0])
        .db()?;
    ctx.conn
        .execute("DELETE FROM accounts WHERE id = ?1", [id.0])
        .db()?;
    // The row is gone; the epoch still moves so that servers look at its sessions.
    bump_credentials(ctx.conn, id)
}

pub(crate) fn add_alias(c: &Connection, source: &str, target: &str) -> Result<()> {
    let source = normalize_address(source)?;
    let domain = domain_id(c, &domain_part(&source)?)?.ok_or(StoreError::NotFound)?;
    let exists: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM aliases WHERE source = ?1 AND target = ?2)")
        .db()?
        .query_row([&source, target], |r| r.get(0))
        .db()?;
    if exists {
        return Err(StoreError::AlreadyExists);
    }
    c.execute(
        "INSERT INTO aliases (source, target, domain_id) VALUES (?1, ?2, ?3)",
        params![source, target, domain.0],
    )
    .db()?;
    Ok(())
}

pub(crate) fn aliases(c: &Connection, domain: Option<&str>) -> Result<Vec<Alias>> {
    let filter = match domain {
        Some(name) => Some(domain_id(c, name)?.ok_or(StoreError::NotFound)?.0),
        None => None,
    };
    let mut st = c
        .prepare_cached("SELECT source, target FROM aliases WHERE ?1 IS NULL OR domain_id = ?1 ORDER BY source, target")
        .db()?;
    st.query_map([filter], |r| {
        Ok(Alias {
            source: r.get(0)?,
            target: r.get(1)?,
        })
    })
    .db()?
    .collect::<rusqlite::Result<_>>()
    .db()
}

pub(crate) fn alias_targets(c: &Connection, source: &str) -> Result<Vec<String>> {
    let Ok(source) = normalize_address(source) else {
        return Ok(Vec::new());
    };
    let mut st = c
        .prepare_cached("SELECT target FROM aliases WHERE source = ?1 ORDER BY target")
        .db()?;
    st.query_map([source], |r| r.get(0))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

pub(crate) fn remove_alias(c: &Connection, source: &str, target: Option<&str>) -> Result<()> {
    let source = normalize_address(source)?;
    let n = match target {
        Some(t) => c.execute(
            "DELETE FROM aliases WHERE source = ?1 AND target = ?2",
            [source.as_str(), t],
        ),
        None => c.execute("DELETE FROM aliases WHERE source = ?1", [source.as_str()]),
    }
    .db()?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(crate) fn add_send_as(c: &Connection, id: AccountId, address: &str) -> Result<()> {
    let address = normalize_address(address)?;
    let domain = domain_id(c, &domain_part(&address)?)?.ok_or(StoreError::NotFound)?;
    if account(c, id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    if may_send_as(c, id, &address)? {
        return Err(StoreError::AlreadyExists);
    }
    c.execute(
        "INSERT INTO send_as (account_id, address, domain_id) VALUES (?1, ?2, ?3)",
        params![id.0, address, domain.0],
    )
    .db()?;
    Ok(())
}

pub(crate) fn remove_send_as(c: &Connection, id: AccountId, address: &str) -> Result<()> {
    let address = normalize_address(address)?;
    match c
        .execute(
            "DELETE FROM send_as WHERE account_id = ?1 AND address = ?2",
            params![id.0, address],
        )
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(crate) fn send_as(c: &Connection, id: AccountId) -> Result<Vec<String>> {
    let mut st = c
        .prepare_cached("SELECT address FROM send_as WHERE account_id = ?1 ORDER BY address")
        .db()?;
    st.query_map([id.0], |r| r.get(0))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

pub(crate) fn may_send_as(c: &Connection, id: AccountId, address: &str) -> Result<bool> {
    let Ok(address) = normalize_address(address) else {
        return Ok(false);
    };
    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM send_as WHERE account_id = ?1 AND address = ?2)")
        .db()?
        .query_row(params![id.0, address], |r| r.get(0))
        .db()
}
