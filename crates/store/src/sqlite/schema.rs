//! Connection setup and versioned migrations (`PRAGMA user_version` = number of migrations applied).

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::SqlExt;
use crate::error::{Result, StoreError};

/// Migrations in order; each runs in its own transaction together with the `user_version` bump.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: directory, mailboxes, messages, blobs. Ids use AUTOINCREMENT so that an id is never
    // reused: a session or cache holding the id of a removed account or mailbox can never
    // reach a newer one.
    r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value NOT NULL
);
CREATE TABLE domains (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL UNIQUE,
    catch_all TEXT
);
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address       TEXT NOT NULL UNIQUE,
    domain_id     INTEGER NOT NULL REFERENCES domains(id),
    display_name  TEXT,
    password_hash TEXT NOT NULL,
    scram_sha256  TEXT,
    quota_bytes   INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain_id);
CREATE TABLE aliases (
    source    TEXT NOT NULL,
    target    TEXT NOT NULL,
    domain_id INTEGER NOT NULL REFERENCES domains(id),
    PRIMARY KEY (source, target)
);
CREATE INDEX aliases_domain ON aliases(domain_id);
CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    name          TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    special_use   TEXT,
    subscribed    INTEGER NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE blobs (
    hash     TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    refcount INTEGER NOT NULL CHECK (refcount > 0),
    data     BLOB
);
CREATE TABLE messages (
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes(id),
    uid            INTEGER NOT NULL,
    modseq         INTEGER NOT NULL,
    flags          INTEGER NOT NULL,
    keywords       TEXT NOT NULL,
    internal_date  INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    blob_hash      TEXT NOT NULL REFERENCES blobs(hash),
    envelope       BLOB,
    body_structure BLOB,
    headers        BLOB,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_hash);
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
"#,
    // N: outbound queue. A message holds one reference on its blob (`skip` bytes at the start of the
    // blob, the local copies' Return-Path, are not sent); one row per remote recipient with its own
    // state, attempts, next attempt, expiry and lease (owner + end) so nodes sharing a store can share
    // the queue.
    r#"
CREATE TABLE queue_messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    blob_hash      TEXT NOT NULL REFERENCES blobs(hash),
    skip           INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    mail_from      TEXT NOT NULL,
    env_id         TEXT,
    ret_full       INTEGER NOT NULL,
    smtputf8       INTEGER NOT NULL,
    eight_bit      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    delay_notified INTEGER NOT NULL
);
CREATE INDEX queue_messages_blob ON queue_messages(blob_hash);
CREATE TABLE queue_recipients (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES queue_messages(id),
    address      TEXT NOT NULL,
    domain       TEXT NOT NULL,
    orcpt        TEXT,
    notify       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    last_error   TEXT,
    next_attempt INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER
);
CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);
CREATE INDEX queue_recipients_message ON queue_recipients(message_id);
"#,
    // N: spam tokens. Classifier counts per scope (account_id 0 = site-wide, accounts start at 1) and
    // token (a 64-bit hash, so no message text is kept); message totals per scope; fingerprints of
    // learned messages so relearning moves counts instead of doubling them; per-account sender
    // allow/block lists. No foreign keys: the global scope is no account; account removal deletes
    // the account's rows explicitly.
    r#"
CREATE TABLE spam_tokens (
    account_id INTEGER NOT NULL,
    token      INTEGER NOT NULL,
    spam       INTEGER NOT NULL,
    ham        INTEGER NOT NULL,
    PRIMARY KEY (account_id, token)
) WITHOUT ROWID;
CREATE TABLE spam_totals (
    account_id INTEGER PRIMARY KEY,
    spam       INTEGER NOT NULL,
    ham        INTEGER NOT NULL
);
CREATE TABLE spam_learned (
    account_id  INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL,
    class       TEXT NOT NULL CHECK (class IN ('spam', 'ham')),
    PRIMARY KEY (account_id, fingerprint)
) WITHOUT ROWID;
CREATE TABLE spam_senders (
    account_id INTEGER NOT NULL,
    pattern    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'block')),
    PRIMARY KEY (account_id, pattern)
) WITHOUT ROWID;
"#,
    // N: the message cache (`MessageMeta`: ENVELOPE, BODYSTRUCTURE, top-level header block, each
    // an opaque byte string the IMAP crate encodes) moves out of `messages` into its own table,
    // one row per message row rather than per blob, clustered by (mailbox_id, uid). Per blob
    // would store each summary once for all copies, but FETCH ENVELOPE and header SEARCH read
    // the cache of a whole mailbox in UID order: keyed like `messages` that is one range scan,
    // keyed by blob hash it is one random B-tree lookup per message (measured on 50,000
    // messages: ~4× slower, and the lookups, not the bytes, dominate). Copies cost a duplicated
    // summary (about 1 KiB), which COPY/MOVE copy row to row. Kept out of `messages` so that
    // scans of flags and UIDs do not wade through summary bytes. Rows go with their message
    // (ON DELETE CASCADE), so no removal path can leave one behind. The old per-row columns
    // were never written (NULL everywhere) and are dropped.
    r#"
CREATE TABLE message_cache (
    mailbox_id     INTEGER NOT NULL,
    uid            INTEGER NOT NULL,
    envelope       BLOB,
    body_structure BLOB,
    headers        BLOB,
    PRIMARY KEY (mailbox_id, uid),
    FOREIGN KEY (mailbox_id, uid) REFERENCES messages(mailbox_id, uid) ON DELETE CASCADE
) WITHOUT ROWID;
ALTER TABLE messages DROP COLUMN envelope;
ALTER TABLE messages DROP COLUMN body_structure;
ALTER TABLE messages DROP COLUMN headers;
"#,
    // N: IMAP4rev1 `\Recent` (RFC 3501 §2.3.2): per mailbox the highest UID some session has
    // already claimed as recent; messages above it are recent for the next session that
    // claims them (`claim_recent`). Existing messages count as claimed: they are not news.
    r#"
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uidnext - 1;
"#,
    // N: RFC 3461 RET of a queued message is three-valued now that the server accepts it: the
    // column becomes a code (0 not given, 1 FULL, 2 HDRS), because only a RET the client gave is
    // passed on to the next hop (§5.2.1). Rows so far hold 0 or 1, which keep their meaning.
    r#"
ALTER TABLE queue_messages RENAME COLUMN ret_full TO ret;
"#,
    // N: the addresses an account may send as besides its own (and its sub-addresses): set by
    // an admin, checked at MAIL FROM and against From:/Sender: of submitted messages. Only
    // addresses in hosted domains (`domain_id`); the rows go with their account, and with their
    // domain when it is removed (they grant nothing once the domain is not ours).
    r#"
CREATE TABLE send_as (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    address    TEXT NOT NULL,
    domain_id  INTEGER NOT NULL REFERENCES domains(id),
    PRIMARY KEY (account_id, address)
) WITHOUT ROWID;
CREATE INDEX send_as_domain ON send_as(domain_id);
"#,
    // N: blob files a client (an admin command beside `tern serve`) released to refcount zero.
    // A client never unlinks a blob file, since the server may be renaming one of the same
    // content into place; the owner's writer takes these rows in its next batch and unlinks
    // the files after that COMMIT if no row references them then (security issue 17).
    r#"
CREATE TABLE released_files (
    hash TEXT PRIMARY KEY
) WITHOUT ROWID;
"#,
    // N: how far the reverse-path of a queued message is trusted (`SenderTrust`: 0 unverified,
    // 1 SPF/DMARC failed, 2 SPF pass, 3 authenticated), which decides the DSNs it may get.
    // Rows so far are unverified: they keep their failure DSNs, headers only.
    r#"
ALTER TABLE queue_messages ADD COLUMN sender_trust INTEGER NOT NULL DEFAULT 0;
"#,
    // N: ending an account's sessions when its credentials change (security issue 17). An
    // account may be disabled (no login; mail is still delivered). Every password change,
    // disable, enable and removal takes the next value of the store-wide `credential_epoch`
    // counter (in `settings`) and stamps it on the account as its `credential_generation`: a
    // server polls that one counter and, when it moved, compares the generation of each
    // logged-in account with the one its sessions logged in at — changes made by admin
    // commands in another process, or by another node, are seen without a scan of accounts.
    r#"
ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN credential_generation INTEGER NOT NULL DEFAULT 0;
"#,
];

/// Opens the single write connection: WAL, `synchronous=FULL`, foreign keys, busy timeout.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).db()?;
    conn.busy_timeout(Duration::from_secs(10)).db()?;
    stable_plans(&conn)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "cannot enable WAL (journal_mode={mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .db()?;
    Ok(conn)
}

/// Turns on SQLite's query planner stability guarantee. Without it the planner may look at
/// the values bound to a statement (`exprCompareVariable`, STAT4 probes, LIKE prefixes) and
/// then marks the statement to be re-prepared whenever a different value is bound: every
/// `WHERE x = ?1 … ORDER BY` query of ours was parsed and planned again on each execution,
/// despite the statement cache (measured: the sender-list and alias lookups of every
/// delivered message, ~4 % of SMTP ingest CPU). Our plans never depend on values (no ANALYZE
/// data, no LIKE), so we lose nothing.
fn stable_plans(conn: &Connection) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .db()?;
    Ok(())
}

/// Address space a read connection maps of the database file (the rest is read with pread).
/// Scans of a large mailbox (FETCH 1:*, SEARCH) touch far more pages than SQLite's page
/// cache holds (2 MiB); mapped, they are read from the OS page cache without a system call
/// and a copy per page, which took a tenth of a FETCH FLAGS over 50,000 messages. Mapped pages
/// are shared with the page cache, so this is address space, not memory per connection.
const READER_MMAP_SIZE: i64 = 1 << 30;

/// Opens the connection of the checkpoint thread. `synchronous=FULL` makes each checkpoint
/// fsync the log before copying it and the database file after (SQLite's rule for checkpoints).
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).db()?;
    conn.busy_timeout(Duration::from_secs(10)).db()?;
    conn.execute_batch("PRAGMA synchronous=FULL;").db()?;
    Ok(conn)
}

/// Opens a read-only connection for the read pool.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).db()?;
    conn.busy_timeout(Duration::from_secs(10)).db()?;
    stable_plans(&conn)?;
    // Returns the size in effect; SQLite may cap it (SQLITE_MAX_MMAP_SIZE), which is fine.
    let _: i64 = conn
        .query_row(&format!("PRAGMA mmap_size={READER_MMAP_SIZE}"), [], |r| {
            r.get(0)
        })
        .db()?;
    Ok(conn)
}

/// Applies every pending migration, each in one transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Applies the pending migrations up to version `target` (tests build old schemas with it).
pub(crate) fn migrate_to(conn: &mut Connection, target: usize) -> Result<()> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .db()?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Database(format!(
            "database schema version {current} is newer than this binary ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction().db()?;
        tx.execute_batch(sql).db()?;
        tx.pragma_update(None, "user_version", i as i64 + 1).db()?;
        tx.commit().db()?;
        tracing::info!(version = i + 1, "applied store migration");
    }
    Ok(())
}

/// Version the schema is at after [`migrate`].
pub(crate) const fn latest_version() -> usize {
    MIGRATIONS.len()
}
