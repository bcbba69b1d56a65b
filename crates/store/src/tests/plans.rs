//! Cached statements stay prepared: binding new values must not make SQLite plan them again.

use rusqlite::StatementStatus;

use crate::sqlite::schema;

#[test]
fn cached_statements_are_not_re_prepared_for_new_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = super::options(&dir);
    let mut writer = schema::open_writer(&options.db_path).expect("open");
    schema::migrate(&mut writer).expect("migrate");
    let reader = schema::open_reader(&options.db_path).expect("reader");
    // The shape SQLite re-planned on every new binding (`= ?1` with ORDER BY): the alias and
    // sender-list lookups of each delivery, the mailbox scans of FETCH and SEARCH.
    let statements = [
        "SELECT target FROM aliases WHERE source = ?1 ORDER BY target",
        "SELECT pattern FROM spam_senders WHERE account_id = ?1 ORDER BY pattern",
        "SELECT uid FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?1 AND 99 ORDER BY uid",
    ];
    for conn in [&writer, &reader] {
        for sql in statements {
            for value in 1..=3 {
                let mut st = conn.prepare_cached(sql).expect("prepare");
                let rows = st.query_map([value], |_| Ok(())).expect("query");
                rows.for_each(drop);
                assert_eq!(
                    st.get_status(StatementStatus::RePrepare),
                    0,
                    "{sql} was prepared again for value {value}"
                );
            }
        }
    }
}
