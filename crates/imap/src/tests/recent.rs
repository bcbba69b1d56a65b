//! IMAP4rev1 `\Recent` (RFC 3501 §2.3.2, §7.3.2): one session sees a message as recent, the
//! first to SELECT the mailbox after it arrived; EXAMINE looks without claiming; IMAP4rev2
//! sessions see nothing of it.

use super::*;

fn recent_line(lines: &[String]) -> Option<&str> {
    lines
        .iter()
        .find(|l| l.ends_with(" RECENT"))
        .map(String::as_str)
}

#[tokio::test]
async fn the_first_select_after_delivery_gets_recent_and_later_ones_do_not() {
    let h = harness().await;
    h.deliver(MSG1).await;
    h.deliver(MSG2).await;
    // EXAMINE reports the recent messages but must not take the flag away (§6.3.2).
    let mut examiner = h.login().await;
    let lines = examiner.cmd("e1 EXAMINE INBOX", "e1 OK").await;
    assert_eq!(recent_line(&lines), Some("* 2 RECENT"), "{lines:#?}");
    let lines = examiner.cmd("e2 FETCH 1:* FLAGS", "e2 OK").await;
    assert_eq!(
        lines,
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))"
        ]
    );
    // An IMAP4rev2 session neither sees nor claims \Recent (RFC 9051 Appendix E).
    let mut rev2 = h.login().await;
    rev2.cmd("r1 ENABLE IMAP4rev2", "r1 OK").await;
    let lines = rev2.cmd("r2 SELECT INBOX", "r2 OK").await;
    assert_eq!(recent_line(&lines), None, "{lines:#?}");
    let lines = rev2.cmd("r3 FETCH 1:* FLAGS", "r3 OK").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]);
    // The first IMAP4rev1 SELECT claims both.
    let mut first = h.select_rev1("a").await;
    assert_eq!(recent_line(&first.1), Some("* 2 RECENT"), "{:#?}", first.1);
    let lines = first.0.cmd("a2 FETCH 1:* FLAGS", "a2 OK").await;
    assert_eq!(
        lines,
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))"
        ]
    );
    // Every later one sees them as old, EXAMINE included.
    let mut second = h.select_rev1("b").await;
    assert_eq!(
        recent_line(&second.1),
        Some("* 0 RECENT"),
        "{:#?}",
        second.1
    );
    let lines = second.0.cmd("b2 FETCH 1:* FLAGS", "b2 OK").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]);
    let lines = examiner.cmd("e3 EXAMINE INBOX", "e3 OK").await;
    assert_eq!(recent_line(&lines), Some("* 0 RECENT"), "{lines:#?}");
    // A new message goes to whichever selected session hears of it first.
    h.deliver(MSG3).await;
    let lines = second.0.cmd("b3 NOOP", "b3 OK").await;
    assert_eq!(lines, ["* 3 EXISTS", "* 1 RECENT"]);
    let lines = first.0.cmd("a3 NOOP", "a3 OK").await;
    assert_eq!(lines, ["* 3 EXISTS", "* 2 RECENT"]);
    let lines = second.0.cmd("b4 FETCH 3 FLAGS", "b4 OK").await;
    assert_eq!(lines, ["* 3 FETCH (FLAGS (\\Recent))"]);
    let lines = first.0.cmd("a4 FETCH 3 FLAGS", "a4 OK").await;
    assert_eq!(lines, ["* 3 FETCH (FLAGS ())"]);
    // Nothing is left to claim: STATUS counts unclaimed messages. The IMAP4rev2 session
    // hears of the new message without RECENT.
    let lines = rev2.cmd("r4 STATUS INBOX (RECENT)", "r4 OK").await;
    assert_eq!(lines, ["* STATUS \"INBOX\" (RECENT 0)", "* 3 EXISTS"]);
}

#[tokio::test]
async fn search_recent_new_and_old_follow_this_sessions_recent_messages() {
    let h = harness().await;
    h.deliver(MSG1).await;
    let (mut old, _) = h.select_rev1("o").await;
    h.deliver(MSG2).await;
    h.deliver(MSG3).await;
    let lines = h.login().await.cmd("s STATUS INBOX (RECENT)", "s OK").await;
    assert_eq!(lines, ["* STATUS \"INBOX\" (RECENT 2)"]);
    let (mut c, lines) = h.select_rev1("a").await;
    assert_eq!(recent_line(&lines), Some("* 2 RECENT"), "{lines:#?}");
    c.cmd("b STORE 2 +FLAGS.SILENT (\\Seen)", "b OK").await;
    // RFC 3501 §6.4.4: NEW is RECENT UNSEEN, OLD is NOT RECENT.
    for (criteria, expected) in [
        ("RECENT", "* SEARCH 2 3"),
        ("NEW", "* SEARCH 3"),
        ("OLD", "* SEARCH 1"),
        ("NOT RECENT SEEN", "* SEARCH"),
    ] {
        let lines = c.cmd(&format!("c SEARCH {criteria}"), "c OK").await;
        assert_eq!(lines, [expected], "SEARCH {criteria}");
    }
    // The session that selected before they arrived was not told yet: it lost the race.
    let lines = old.cmd("o2 NOOP", "o2 OK").await;
    assert_eq!(lines, ["* 3 EXISTS", "* 1 RECENT"]);
    let lines = old.cmd("o3 SEARCH RECENT", "o3 OK").await;
    assert_eq!(lines, ["* SEARCH 1"]);
}
