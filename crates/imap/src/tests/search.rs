//! SEARCH keys, ESEARCH and SEARCHRES.

use super::*;

#[tokio::test]
async fn search_keys_match_flags_headers_body_and_dates() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    c.cmd("s STORE 2 +FLAGS (\\Flagged)", "s OK").await;
    let cases = [
        ("ALL", "* SEARCH 1 2 3"),
        ("FLAGGED", "* SEARCH 2"),
        ("UNFLAGGED", "* SEARCH 1 3"),
        ("NOT FLAGGED SUBJECT three", "* SEARCH 3"),
        ("OR FROM bob FROM carol", "* SEARCH 1 2"),
        ("SUBJECT apples", "* SEARCH 2"),
        ("BODY banana", "* SEARCH 2"),
        ("TEXT \"body part\"", "* SEARCH 3"),
        ("HEADER Message-ID <1@example.test>", "* SEARCH 1"),
        ("TO alice", "* SEARCH 1 2"),
        ("SENTON 15-Nov-2023", "* SEARCH 2"),
        ("SENTBEFORE 15-Nov-2023", "* SEARCH 1"),
        ("SINCE 14-Nov-2023", "* SEARCH 1 2 3"),
        ("BEFORE 14-Nov-2023", "* SEARCH"),
        ("LARGER 200", "* SEARCH 3"),
        ("UID 2:*", "* SEARCH 2 3"),
        ("2:3 NOT 3", "* SEARCH 2"),
        ("(FLAGGED) OR SEEN ANSWERED", "* SEARCH"),
        ("CHARSET UTF-8 SUBJECT one", "* SEARCH 1"),
        // This SELECT was the first to see the three: all recent (RFC 3501 §6.4.4).
        ("NEW", "* SEARCH 1 2 3"),
        ("RECENT", "* SEARCH 1 2 3"),
        ("OLD", "* SEARCH"),
    ];
    for (i, (criteria, expected)) in cases.iter().enumerate() {
        let lines = c
            .cmd(&format!("a{i} SEARCH {criteria}"), &format!("a{i} OK"))
            .await;
        assert_eq!(lines, [*expected], "SEARCH {criteria}");
    }
    let lines = c.cmd("b UID SEARCH FLAGGED", "b OK").await;
    assert_eq!(lines, ["* SEARCH 2"]);
    c.cmd(
        "c SEARCH CHARSET KOI8-R ALL",
        "c NO [BADCHARSET (UTF-8 US-ASCII)]",
    )
    .await;
}

#[tokio::test]
async fn esearch_return_options_and_saved_results() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c
        .cmd("a SEARCH RETURN (MIN MAX COUNT ALL) ALL", "a OK")
        .await;
    assert_eq!(lines, ["* ESEARCH (TAG \"a\") MIN 1 MAX 3 COUNT 3 ALL 1:3"]);
    let lines = c.cmd("b UID SEARCH RETURN () SUBJECT t", "b OK").await;
    assert_eq!(lines, ["* ESEARCH (TAG \"b\") UID ALL 2:3"]);
    let lines = c
        .cmd("c SEARCH RETURN (COUNT) KEYWORD nothing", "c OK")
        .await;
    assert_eq!(lines, ["* ESEARCH (TAG \"c\") COUNT 0"]);
    let lines = c.cmd("d UID SEARCH RETURN (SAVE) SUBJECT t", "d OK").await;
    assert!(lines.is_empty(), "{lines:#?}");
    let lines = c.cmd("e FETCH $ (UID)", "e OK").await;
    assert_eq!(lines, ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]);
    let lines = c.cmd("f UID SEARCH UID $ FROM dave", "f OK").await;
    assert_eq!(lines, ["* SEARCH 3"]);
    let lines = c
        .cmd("g UID STORE $ +FLAGS.SILENT (\\Deleted)", "g OK")
        .await;
    assert!(lines.is_empty());
    // An IMAP4rev2 client gets ESEARCH for a plain SEARCH.
    let mut c2 = h.login().await;
    c2.cmd("h ENABLE IMAP4rev2", "h OK").await;
    c2.cmd("i SELECT INBOX", "i OK").await;
    let lines = c2.cmd("j SEARCH DELETED", "j OK").await;
    assert_eq!(lines, ["* ESEARCH (TAG \"j\") ALL 2:3"]);
}
