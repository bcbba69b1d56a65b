//! Domains stored in another spelling than their A-label.
//!
//! Since security issue 17 every domain name is normalised to its A-label when it is parsed
//! (`tern_common::Domain`): `bücher.test` is looked up as `xn--bcher-kva.test`. A domain that
//! an earlier version stored as `bücher.test` (`tern domain add` kept the spelling it was
//! given) would then match no lookup, and its mail would be refused after an upgrade. So each
//! open renames such a domain to its A-label, with every stored address that names it, in one
//! transaction per domain; with nothing to rename it costs one small query.

use rusqlite::{Connection, OptionalExtension};
use tern_common::Domain;
use tracing::{info, warn};

use super::SqlExt;
use crate::error::Result;

/// (table, column, whether the rows are keyed by the domain's id): every stored address that
/// may name a hosted domain. Alias targets and catch-alls may name any hosted domain, so they
/// are matched by their text alone.
const ADDRESS_COLUMNS: &[(&str, &str, bool)] = &[
    ("accounts", "address", true),
    ("aliases", "source", true),
    ("send_as", "address", true),
    ("aliases", "target", false),
    ("domains", "catch_all", false),
];

/// Renames every stored domain whose name is not its A-label (see the module notes). A
/// domain stored in both spellings is left alone and reported: merging two domains' accounts
/// needs the operator.
pub(crate) fn normalize_domain_names(conn: &mut Connection) -> Result<()> {
    let stored: Vec<(i64, String)> = {
        let mut st = conn.prepare("SELECT id, name FROM domains").db()?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?
    };
    for (id, name) in stored {
        let normal = match name.parse::<Domain>() {
            Ok(domain) if domain.as_str() == name => continue,
            Ok(domain) => domain.as_str().to_owned(),
            Err(e) => {
                warn!(domain = %name, "a stored domain name is not valid ({e}); remove it with tern domain remove");
                continue;
            }
        };
        let tx = conn.transaction().db()?;
        let taken: Option<i64> = tx
            .query_row("SELECT id FROM domains WHERE name = ?1", [&normal], |r| {
                r.get(0)
            })
            .optional()
            .db()?;
        if taken.is_some() {
            warn!(
                domain = %name,
                a_label = %normal,
                "the domain is stored in two spellings; its accounts under {name} cannot be \
                 reached until they are moved to {normal} (re-create them there) and {name} is \
                 removed with tern domain remove"
            );
            continue;
        }
        tx.execute(
            "UPDATE domains SET name = ?1 WHERE id = ?2",
            rusqlite::params![normal, id],
        )
        .db()?;
        // `'@' || old` ends the address: its domain part is replaced, its local part kept.
        for (table, column, by_id) in ADDRESS_COLUMNS {
            let owned = if *by_id {
                "domain_id = ?3 AND"
            } else {
                "?3 = ?3 AND"
            };
            let sql = format!(
                "UPDATE {table} SET {column} = substr({column}, 1, length({column}) - length(?1)) || ?2 \
                 WHERE {owned} substr({column}, -length(?1) - 1) = '@' || ?1"
            );
            tx.execute(&sql, rusqlite::params![name, normal, id]).db()?;
        }
        tx.commit().db()?;
        info!(domain = %name, a_label = %normal, "renamed a stored domain to its A-label");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::super::schema::open_writer(&dir.path().join("t.db")).unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    fn one(conn: &Connection, sql: &str) -> Vec<String> {
        let mut st = conn.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_domain_stored_in_unicode_is_renamed_with_its_addresses_and_others_are_untouched() {
        let (_dir, mut conn) = store();
        conn.execute_batch(
            "INSERT INTO domains (id, name, catch_all) VALUES (1, 'bücher.test', 'alice@bücher.test');
             INSERT INTO domains (id, name) VALUES (2, 'example.test');
             INSERT INTO accounts (id, address, domain_id, password_hash, created_at)
                 VALUES (1, 'alice@bücher.test', 1, 'x', 0), (2, 'bob@example.test', 2, 'x', 0);
             INSERT INTO aliases (source, target, domain_id)
                 VALUES ('info@bücher.test', 'alice@bücher.test', 1),
                        ('team@example.test', 'alice@bücher.test', 2),
                        ('out@example.test', 'someone@bücher.test.other', 2);",
        )
        .unwrap();
        normalize_domain_names(&mut conn).unwrap();
        assert_eq!(
            one(&conn, "SELECT name FROM domains ORDER BY id"),
            ["xn--bcher-kva.test", "example.test"]
        );
        assert_eq!(
            one(&conn, "SELECT address FROM accounts ORDER BY id"),
            ["alice@xn--bcher-kva.test", "bob@example.test"]
        );
        assert_eq!(
            one(
                &conn,
                "SELECT source || ' ' || target FROM aliases ORDER BY source"
            ),
            [
                "info@xn--bcher-kva.test alice@xn--bcher-kva.test",
                "out@example.test someone@bücher.test.other",
                "team@example.test alice@xn--bcher-kva.test",
            ]
        );
        assert_eq!(
            one(&conn, "SELECT catch_all FROM domains WHERE id = 1"),
            ["alice@xn--bcher-kva.test"]
        );
        // A second open finds nothing to do.
        normalize_domain_names(&mut conn).unwrap();
        assert_eq!(
            one(&conn, "SELECT name FROM domains WHERE id = 1"),
            ["xn--bcher-kva.test"]
        );
    }

    #[test]
    fn a_domain_stored_in_both_spellings_is_left_for_the_operator() {
        let (_dir, mut conn) = store();
        conn.execute_batch(
            "INSERT INTO domains (id, name) VALUES (1, 'bücher.test'), (2, 'xn--bcher-kva.test');",
        )
        .unwrap();
        normalize_domain_names(&mut conn).unwrap();
        assert_eq!(
            one(&conn, "SELECT name FROM domains ORDER BY id"),
            ["bücher.test", "xn--bcher-kva.test"]
        );
    }
}
