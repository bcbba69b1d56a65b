//! FETCH data items.

use super::*;

#[tokio::test]
async fn fetch_envelope_and_bodystructure() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c.cmd("a FETCH 1 (ENVELOPE)", "a OK").await;
    assert_eq!(
        lines,
        [
            "* 1 FETCH (ENVELOPE (\"Tue, 14 Nov 2023 22:13:20 +0000\" \"one\" ((\"Bob\" NIL \"bob\" \"example.test\")) ((\"Bob\" NIL \"bob\" \"example.test\")) ((\"Bob\" NIL \"bob\" \"example.test\")) ((NIL NIL \"alice\" \"example.test\")) NIL NIL NIL \"<1@example.test>\"))"
        ]
    );
    let lines = c.cmd("b FETCH 3 (BODYSTRUCTURE)", "b OK").await;
    assert!(
        lines[0].starts_with("* 3 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\""),
        "{lines:#?}"
    );
    assert!(lines[0].contains("\"MIXED\""), "{lines:#?}");
    let lines = c.cmd("c FETCH 3 (BODY)", "c OK").await;
    assert!(
        lines[0].starts_with("* 3 FETCH (BODY ((\"TEXT\" \"PLAIN\""),
        "{lines:#?}"
    );
    let lines = c.cmd("d FETCH 1 ALL", "d OK").await;
    assert!(
        lines[0].contains("ENVELOPE (") && lines[0].contains("RFC822.SIZE"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn body_peek_leaves_seen_alone_and_body_sets_it() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c
        .cmd("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "a OK")
        .await;
    assert_eq!(
        lines,
        ["* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: one\r\n\r\n)"]
    );
    let lines = c.cmd("b FETCH 1 (FLAGS)", "b OK").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Recent))"]);
    let lines = c.cmd("c FETCH 1 (BODY[TEXT])", "c OK").await;
    assert_eq!(
        lines,
        ["* 1 FETCH (BODY[TEXT] {14}\r\nHello Alice.\r\n FLAGS (\\Recent \\Seen))"]
    );
    let lines = c.cmd("d FETCH 1 (FLAGS)", "d OK").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Recent \\Seen))"]);
    let lines = c.cmd("e FETCH 1 (BODY[]<0.4>)", "e OK").await;
    assert_eq!(lines, ["* 1 FETCH (BODY[]<0> {4}\r\nFrom)"]);
    // EXAMINE never sets \Seen (and the SELECT before claimed \Recent).
    c.cmd("f EXAMINE INBOX", "f OK").await;
    let lines = c.cmd("g FETCH 2 (RFC822.TEXT FLAGS)", "g OK").await;
    assert!(lines[0].ends_with("FLAGS ())"), "{lines:#?}");
}

#[tokio::test]
async fn binary_and_binary_size_decode_the_transfer_encoding() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c
        .cmd("a FETCH 3 (BINARY.SIZE[2] BINARY.PEEK[2])", "a OK")
        .await;
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("* 3 FETCH (BINARY.SIZE[2] 3 BINARY[2] ~{3}\r\n\0\x01\x02)"),
        "{lines:?}"
    );
    let lines = c.cmd("b FETCH 3 (BODY.PEEK[1])", "b OK").await;
    assert_eq!(lines, ["* 3 FETCH (BODY[1] {9}\r\nbody part)"]);
    let lines = c.cmd("c UID FETCH 3 (BODY.PEEK[9])", "c OK").await;
    assert_eq!(lines, ["* 3 FETCH (UID 3 BODY[9] NIL)"]);
}
