//! Synchronisation between sessions, IDLE, CONDSTORE and QRESYNC.

use super::*;

#[tokio::test]
async fn a_change_in_one_session_shows_up_in_the_other_at_noop() {
    let h = Harness::with_messages().await;
    let mut a = h.select().await;
    let mut b = h.select().await;
    a.cmd("a1 STORE 1 +FLAGS (\\Seen)", "a1 OK").await;
    let lines = b.cmd("b1 NOOP", "b1 OK").await;
    assert_eq!(lines, ["* 1 FETCH (UID 1 FLAGS (\\Seen))"]);
    // The session that made the change hears about it once: in its STORE reply.
    let lines = a.cmd("a2 NOOP", "a2 OK").await;
    assert!(lines.is_empty(), "{lines:#?}");
    a.cmd("a3 STORE 2 +FLAGS.SILENT (\\Deleted)", "a3 OK").await;
    a.cmd("a4 EXPUNGE", "a4 OK").await;
    a.cmd("a5 APPEND INBOX {3+}\r\nx\r\n", "a5 OK").await;
    let lines = b.cmd("b2 NOOP", "b2 OK").await;
    // a saw its APPEND first: the message is recent there, not here (RFC 3501 §2.3.2).
    assert_eq!(lines, ["* 4 EXISTS", "* 0 RECENT", "* 2 EXPUNGE"]);
    let lines = b.cmd("b3 FETCH 3 (UID)", "b3 OK").await;
    assert_eq!(lines, ["* 3 FETCH (UID 4)"]);
}

#[tokio::test]
async fn expunges_wait_while_answering_fetch_by_number() {
    let h = Harness::with_messages().await;
    let mut a = h.select().await;
    let mut b = h.select().await;
    a.cmd("a1 STORE 1 +FLAGS.SILENT (\\Deleted)", "a1 OK").await;
    a.cmd("a2 EXPUNGE", "a2 OK").await;
    // RFC 9051 §7.5.1: no EXPUNGE during FETCH; numbers stay as b knows them.
    let lines = b.cmd("b1 FETCH 2 (UID)", "b1 OK").await;
    assert_eq!(lines, ["* 2 FETCH (UID 2)"]);
    let lines = b.cmd("b2 FETCH 1 (UID)", "b2 OK").await;
    assert!(
        lines.is_empty(),
        "an expunged message is not returned: {lines:#?}"
    );
    let lines = b.cmd("b3 UID FETCH 3 (UID)", "b3 OK").await;
    assert_eq!(lines, ["* 3 FETCH (UID 3)", "* 1 EXPUNGE"]);
}

#[tokio::test]
async fn idle_pushes_changes_from_other_sessions_and_deliveries_immediately() {
    let h = Harness::with_messages().await;
    let mut a = h.select().await;
    let mut b = h.select().await;
    b.send("i1 IDLE").await;
    b.expect("+ idling").await;
    assert!(b.quiet().await);
    a.cmd("a1 STORE 3 +FLAGS (\\Flagged)", "a1 OK").await;
    b.expect("* 3 FETCH (UID 3 FLAGS (\\Flagged))").await;
    h.deliver(MSG1).await;
    b.expect("* 4 EXISTS").await;
    // b is told first, so the new message is recent in b.
    b.expect("* 1 RECENT").await;
    a.cmd("a2 STORE 1 +FLAGS.SILENT (\\Deleted)", "a2 OK").await;
    a.cmd("a3 EXPUNGE", "a3 OK").await;
    b.expect("* 1 FETCH (UID 1 FLAGS (\\Deleted))").await;
    b.expect("* 1 EXPUNGE").await;
    b.send("DONE").await;
    b.expect_tagged("i1 OK").await;
    b.cmd("b1 NOOP", "b1 OK").await;
}

#[tokio::test]
async fn idle_in_the_authenticated_state_waits_for_done() {
    let h = harness().await;
    let mut c = h.login().await;
    c.send("i IDLE").await;
    c.expect("+ idling").await;
    c.send("done").await;
    c.expect_tagged("i OK").await;
    c.send("j IDLE").await;
    c.expect("+ idling").await;
    c.send("NOPE").await;
    c.expect("j BAD").await;
}

#[tokio::test]
async fn condstore_changedsince_returns_only_changed_messages() {
    let h = Harness::with_messages().await;
    let mut c = h.login().await;
    let lines = c.cmd("a SELECT INBOX (CONDSTORE)", "a OK").await;
    let hms: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|l| l.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    let lines = c.cmd("b STORE 2 +FLAGS (\\Answered)", "b OK").await;
    assert!(
        lines[0].starts_with("* 2 FETCH (FLAGS (\\Recent \\Answered) MODSEQ ("),
        "{lines:#?}"
    );
    let lines = c
        .cmd(&format!("c FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})"), "c OK")
        .await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("* 2 FETCH (FLAGS (\\Recent \\Answered) MODSEQ ("),
        "{lines:#?}"
    );
    let lines = c.cmd(&format!("d SEARCH MODSEQ {}", hms + 1), "d OK").await;
    assert!(lines[0].starts_with("* SEARCH 2 (MODSEQ "), "{lines:#?}");
}

#[tokio::test]
async fn qresync_reports_vanished_messages() {
    let h = Harness::with_messages().await;
    let mb = h.store.mailbox(h.inbox).await.unwrap().unwrap();
    let (v, hms) = (mb.uidvalidity.0, mb.highestmodseq.0);
    let mut a = h.select().await;
    a.cmd("a1 STORE 2 +FLAGS.SILENT (\\Deleted)", "a1 OK").await;
    a.cmd("a2 EXPUNGE", "a2 OK").await;
    a.cmd("a3 UID STORE 3 +FLAGS.SILENT (\\Seen)", "a3 OK")
        .await;

    let mut c = h.login().await;
    c.cmd("b1 SELECT INBOX (QRESYNC (1 1))", "b1 BAD").await;
    let lines = c.cmd("b2 ENABLE QRESYNC", "b2 OK").await;
    assert_eq!(lines, ["* ENABLED QRESYNC"]);
    let lines = c
        .cmd(
            &format!("b3 SELECT INBOX (QRESYNC ({v} {hms} 1:3))"),
            "b3 OK",
        )
        .await;
    assert!(has(&lines, "* VANISHED (EARLIER) 2"), "{lines:#?}");
    assert!(
        has(&lines, "* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ ("),
        "{lines:#?}"
    );
    let lines = c
        .cmd(
            &format!("b4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)"),
            "b4 OK",
        )
        .await;
    assert_eq!(lines[0], "* VANISHED (EARLIER) 2");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    // Live expunges come as VANISHED too.
    a.cmd("a4 STORE 1 +FLAGS.SILENT (\\Deleted)", "a4 OK").await;
    a.cmd("a5 EXPUNGE", "a5 OK").await;
    let lines = c.cmd("b5 NOOP", "b5 OK").await;
    assert_eq!(
        lines.last().map(String::as_str),
        Some("* VANISHED 1"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn own_appends_and_implicit_seen_are_reported_exactly_once() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c.cmd("a APPEND INBOX {3+}\r\nx\r\n", "a OK").await;
    assert_eq!(lines, ["* 4 EXISTS", "* 4 RECENT"]);
    let lines = c.cmd("b FETCH 1 (BODY[TEXT])", "b OK").await;
    assert!(lines[0].ends_with("FLAGS (\\Recent \\Seen))"), "{lines:#?}");
    let lines = c.cmd("c NOOP", "c OK").await;
    assert!(lines.is_empty(), "{lines:#?}");
}

#[tokio::test]
async fn a_lagged_session_resynchronises_from_the_store() {
    let h = Harness::with_messages().await;
    let mut a = h.select().await;
    let mut b = h.select().await;
    // More changes than the bus holds for a receiver that is not reading.
    for i in 0..400 {
        let op = if i % 2 == 0 { "+" } else { "-" };
        a.cmd(
            &format!("a{i} STORE 1:3 {op}FLAGS.SILENT (\\Seen)"),
            &format!("a{i} OK"),
        )
        .await;
    }
    a.cmd("x1 UID STORE 3 +FLAGS.SILENT (\\Deleted)", "x1 OK")
        .await;
    a.cmd("x2 EXPUNGE", "x2 OK").await;
    h.deliver(MSG1).await;
    let lines = b.cmd("b1 NOOP", "b1 OK").await;
    assert!(has(&lines, "* 4 EXISTS"), "{lines:#?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("* 3 EXPUNGE"),
        "{lines:#?}"
    );
    let lines = b.cmd("b2 FETCH 1:* (UID FLAGS)", "b2 OK").await;
    assert_eq!(
        lines,
        [
            "* 1 FETCH (UID 1 FLAGS ())",
            "* 2 FETCH (UID 2 FLAGS ())",
            // Delivered while b was behind; b was told first.
            "* 3 FETCH (UID 4 FLAGS (\\Recent))"
        ]
    );
}

#[tokio::test]
async fn deleting_the_selected_mailbox_elsewhere_ends_the_session() {
    let h = harness().await;
    let mut a = h.login().await;
    a.cmd("a1 CREATE Doomed", "a1 OK").await;
    let mut b = h.login().await;
    b.cmd("b1 SELECT Doomed", "b1 OK").await;
    a.cmd("a2 DELETE Doomed", "a2 OK").await;
    b.send("b2 NOOP").await;
    b.expect("b2 OK").await;
    b.expect("* BYE").await;
}
