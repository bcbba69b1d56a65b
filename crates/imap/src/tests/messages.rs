//! SELECT/EXAMINE, APPEND, STORE, COPY/MOVE, EXPUNGE, CLOSE.

use super::*;

#[tokio::test]
async fn select_and_examine_report_the_mailbox() {
    let h = Harness::with_messages().await;
    let mb = h.store.mailbox(h.inbox).await.unwrap().unwrap();
    let mut c = h.login().await;
    let lines = c
        .cmd("a SELECT INBOX", "a OK [READ-WRITE] SELECT completed")
        .await;
    assert_eq!(
        lines,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_owned(),
            "* 3 EXISTS".to_owned(),
            "* 3 RECENT".to_owned(),
            "* OK [UNSEEN 1] First unseen".to_owned(),
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted".to_owned(),
            format!("* OK [UIDVALIDITY {}] UIDs valid", mb.uidvalidity.0),
            "* OK [UIDNEXT 4] Predicted next UID".to_owned(),
        ]
    );
    c.cmd("b ENABLE IMAP4rev2", "b BAD").await;
    let lines = c
        .cmd("c EXAMINE INBOX (CONDSTORE)", "c OK [READ-ONLY]")
        .await;
    assert_eq!(lines[0], "* OK [CLOSED] Previous mailbox closed");
    assert!(has(&lines, "* OK [PERMANENTFLAGS ()]"), "{lines:#?}");
    assert!(
        has(
            &lines,
            &format!("* OK [HIGHESTMODSEQ {}]", mb.highestmodseq.0)
        ),
        "{lines:#?}"
    );
    c.cmd("d STORE 1 +FLAGS (\\Seen)", "d NO [READ-ONLY]").await;
    c.cmd("e EXPUNGE", "e NO").await;
    c.cmd("f UNSELECT", "f OK").await;
    c.cmd("g FETCH 1 FLAGS", "g BAD").await;
    let lines = c.cmd("h ENABLE IMAP4rev2", "h OK").await;
    assert_eq!(lines, ["* ENABLED IMAP4REV2"]);
    let lines = c.cmd("i SELECT inbox", "i OK").await;
    assert!(!has(&lines, "RECENT"), "{lines:#?}");
    assert!(has(&lines, "* LIST () \"/\" \"INBOX\""), "{lines:#?}");
    c.cmd("j SELECT Nope", "j NO [NONEXISTENT]").await;
    c.cmd("k FETCH 1 FLAGS", "k BAD").await;
}

#[tokio::test]
async fn append_then_fetch_returns_the_same_octets_with_appenduid() {
    let h = harness().await;
    let mb = h.store.mailbox(h.inbox).await.unwrap().unwrap();
    let mut c = h.login().await;
    c.send(&format!(
        "a APPEND INBOX (\\Seen $Forwarded) \"14-Nov-2023 22:13:20 +0100\" {{{}}}",
        MSG3.len()
    ))
    .await;
    c.expect("+ ").await;
    c.send_raw(MSG3).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged(&format!("a OK [APPENDUID {} 1]", mb.uidvalidity.0))
        .await;
    // MULTIAPPEND with LITERAL+.
    c.send_raw(format!("b APPEND INBOX {{{}+}}\r\n", MSG1.len()).as_bytes())
        .await;
    c.send_raw(MSG1).await;
    c.send_raw(format!(" (\\Draft) {{{}+}}\r\n", MSG2.len()).as_bytes())
        .await;
    c.send_raw(MSG2).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged(&format!("b OK [APPENDUID {} 2:3]", mb.uidvalidity.0))
        .await;
    c.cmd("c SELECT INBOX", "c OK").await;
    c.send("d UID FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .await;
    let line = c.try_raw_line().await.unwrap();
    let mut expected = format!(
        "* 1 FETCH (UID 1 FLAGS (\\Recent \\Seen $Forwarded) INTERNALDATE \"14-Nov-2023 21:13:20 +0000\" RFC822.SIZE {} BODY[] {{{}}}\r\n",
        MSG3.len(),
        MSG3.len()
    )
    .into_bytes();
    expected.extend_from_slice(MSG3);
    expected.push(b')');
    assert_eq!(
        String::from_utf8_lossy(&line),
        String::from_utf8_lossy(&expected)
    );
    c.expect_tagged("d OK").await;
    let lines = c.cmd("e FETCH 2:3 (FLAGS)", "e OK").await;
    assert_eq!(
        lines,
        [
            "* 2 FETCH (FLAGS (\\Recent))",
            "* 3 FETCH (FLAGS (\\Recent \\Draft))"
        ]
    );
    c.cmd("f APPEND Nope {1+}\r\nx", "f NO [TRYCREATE]").await;
}

#[tokio::test]
async fn a_multiappend_with_one_bad_message_appends_none() {
    let h = harness_with(|ctx| ctx.append_limit = 1000).await;
    let mut c = h.login().await;
    let first = |tag: &str| {
        format!(
            "{tag} APPEND INBOX (\\Seen) {{{}+}}\r\n{}",
            MSG1.len(),
            String::from_utf8_lossy(MSG1)
        )
    };
    // RFC 3502 §3: an unknown system flag, a bad date or a too-big literal in the second
    // message, and the first is not stored either.
    c.cmd(&format!("{} (\\Bogus) {{1+}}\r\nx", first("a")), "a BAD")
        .await;
    c.cmd(
        &format!("{} \"31-Feb-2024 00:00:00 +0000\" {{1+}}\r\nx", first("b")),
        "b BAD",
    )
    .await;
    c.cmd(&format!("{} {{1001}}", first("c")), "c NO [TOOBIG]")
        .await;
    // A non-synchronizing literal arrives anyway and is skipped.
    let big = "x".repeat(1001);
    c.cmd(
        &format!("{} {{1001+}}\r\n{big}", first("d")),
        "d BAD [TOOBIG]",
    )
    .await;
    assert!(h.store.messages(h.inbox).await.unwrap().is_empty());
    let blob = tern_store::BlobId::of(MSG1);
    assert_eq!(h.store.blob_info(&blob).await.unwrap(), None);
    h.store.check_integrity().await.unwrap();
    // The session goes on, and a good MULTIAPPEND stores both, in order.
    let lines = c
        .cmd(&format!("{} {{1+}}\r\nx", first("e")), "e OK [APPENDUID")
        .await;
    assert!(lines.is_empty(), "{lines:#?}");
    let lines = c.cmd("f STATUS INBOX (MESSAGES UIDNEXT)", "f OK").await;
    assert_eq!(lines, ["* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3)"]);
}

#[tokio::test]
async fn store_changes_flags_and_reports_them() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c.cmd("a STORE 1:2 +FLAGS (\\Flagged Work)", "a OK").await;
    assert_eq!(
        lines,
        [
            "* 1 FETCH (FLAGS (\\Recent \\Flagged Work))",
            "* 2 FETCH (FLAGS (\\Recent \\Flagged Work))"
        ]
    );
    let lines = c.cmd("b STORE 1 -FLAGS.SILENT (Work)", "b OK").await;
    assert!(lines.is_empty(), "{lines:#?}");
    let lines = c.cmd("c UID STORE 2 FLAGS (\\Seen)", "c OK").await;
    assert_eq!(lines, ["* 2 FETCH (UID 2 FLAGS (\\Recent \\Seen))"]);
    // Unchanged messages still get their FLAGS.
    let lines = c.cmd("d STORE 2 +FLAGS (\\Seen)", "d OK").await;
    assert_eq!(lines, ["* 2 FETCH (FLAGS (\\Recent \\Seen))"]);
    // RFC 3501 §2.3.2: \Recent cannot be altered by the client.
    let lines = c.cmd("e STORE 1 -FLAGS (\\Recent)", "e OK").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Recent \\Flagged))"]);
    c.cmd("f STORE 9 +FLAGS (\\Seen)", "f BAD").await;
    c.cmd("g UID STORE 9 +FLAGS (\\Seen)", "g OK").await;
}

#[tokio::test]
async fn store_unchangedsince_reports_modified() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    let lines = c.cmd("a FETCH 1:3 (MODSEQ)", "a OK").await;
    let modseq = |l: &str| -> u64 {
        l.split("MODSEQ (")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let m1 = modseq(&lines[0]);
    let lines = c
        .cmd(
            &format!("b STORE 1 (UNCHANGEDSINCE {m1}) +FLAGS (\\Seen)"),
            "b OK",
        )
        .await;
    assert!(
        lines[0].starts_with("* 1 FETCH (FLAGS (\\Recent \\Seen) MODSEQ ("),
        "{lines:#?}"
    );
    let m1b = modseq(&lines[0]);
    assert!(m1b > m1);
    c.cmd(
        &format!("c STORE 1:2 (UNCHANGEDSINCE {m1}) +FLAGS (\\Answered)"),
        "c OK [MODIFIED 1:2]",
    )
    .await;
    c.cmd(
        "d UID STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Answered)",
        "d OK [MODIFIED 1]",
    )
    .await;
}

#[tokio::test]
async fn copy_and_move_answer_with_copyuid_and_move_expunges() {
    let h = Harness::with_messages().await;
    let archive = h
        .store
        .mailbox_by_name(h.account.id, "Archive")
        .await
        .unwrap()
        .unwrap();
    let v = archive.uidvalidity.0;
    let mut c = h.select().await;
    c.cmd("a COPY 2:3 Archive", &format!("a OK [COPYUID {v} 2:3 1:2]"))
        .await;
    c.cmd("b COPY 1 Nowhere", "b NO [TRYCREATE]").await;
    let lines = c.cmd("c MOVE 1:2 Archive", "c OK").await;
    assert_eq!(
        lines,
        [
            format!("* OK [COPYUID {v} 1:2 3:4] Moved"),
            "* 2 EXPUNGE".to_owned(),
            "* 1 EXPUNGE".to_owned(),
        ]
    );
    let lines = c.cmd("d UID FETCH 1:* UID", "d OK").await;
    assert_eq!(lines, ["* 1 FETCH (UID 3)"]);
    let lines = c.cmd("e UID MOVE 3 Trash", "e OK").await;
    assert_eq!(lines[1], "* 1 EXPUNGE");
    let lines = c.cmd("f STATUS Archive (MESSAGES)", "f OK").await;
    assert_eq!(lines, ["* STATUS \"Archive\" (MESSAGES 4)"]);
}

#[tokio::test]
async fn copy_move_and_append_to_names_create_refuses_get_no_trycreate() {
    let h = Harness::with_messages().await;
    let mut c = h.select().await;
    // Without UTF8=ACCEPT a control character is not modified UTF-7: a syntax error.
    c.cmd(
        "u1 COPY 1 {3+}\r\na\u{1}b",
        "u1 BAD mailbox name has a control character",
    )
    .await;
    c.cmd("u2 UNSELECT", "u2 OK").await;
    c.cmd("u3 ENABLE UTF8=ACCEPT", "u3 OK").await;
    c.cmd("u4 SELECT INBOX", "u4 OK").await;
    let names = [
        "~bob/INBOX",
        "../x",
        "#shared/x",
        "a/../b",
        "{3+}\r\na\u{1}b",
    ];
    for (i, name) in names.iter().enumerate() {
        // RFC 9051 §6.4.7: TRYCREATE promises that a CREATE could succeed; it cannot here.
        c.cmd(&format!("c{i} CREATE {name}"), &format!("c{i} NO [CANNOT]"))
            .await;
        for verb in ["COPY", "MOVE", "UID COPY"] {
            let tag = format!("{}{i}", verb.replace(' ', ""));
            c.cmd(
                &format!("{tag} {verb} 1 {name}"),
                &format!("{tag} NO [CANNOT]"),
            )
            .await;
        }
        c.cmd(
            &format!("a{i} APPEND {name} {{1+}}\r\nx"),
            &format!("a{i} NO [CANNOT]"),
        )
        .await;
    }
    // A name that could be created still gets TRYCREATE, and the retry works.
    c.cmd("t1 MOVE 1 New/Sub", "t1 NO [TRYCREATE]").await;
    c.cmd("t2 CREATE New/Sub", "t2 OK").await;
    c.cmd("t3 MOVE 1 New/Sub", "t3 OK").await;
    let lines = c.cmd("t4 FETCH 1:* UID", "t4 OK").await;
    assert_eq!(lines, ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]);
}

#[tokio::test]
async fn expunge_shifts_sequence_numbers() {
    let h = harness().await;
    for _ in 0..5 {
        h.deliver(MSG1).await;
    }
    let mut c = h.select().await;
    c.cmd("a STORE 2,4,5 +FLAGS.SILENT (\\Deleted)", "a OK")
        .await;
    let lines = c.cmd("b EXPUNGE", "b OK").await;
    assert_eq!(lines, ["* 5 EXPUNGE", "* 4 EXPUNGE", "* 2 EXPUNGE"]);
    let lines = c.cmd("c FETCH 1:* (UID)", "c OK").await;
    assert_eq!(lines, ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]);
    c.cmd("d STORE 1:2 +FLAGS.SILENT (\\Deleted)", "d OK").await;
    let lines = c.cmd("e UID EXPUNGE 3", "e OK").await;
    assert_eq!(lines, ["* 2 EXPUNGE"]);
    c.cmd("f CLOSE", "f OK").await;
    let lines = c.cmd("g STATUS INBOX (MESSAGES)", "g OK").await;
    assert_eq!(lines, ["* STATUS \"INBOX\" (MESSAGES 0)"]);
}

#[tokio::test]
async fn moving_into_junk_trains_spam_and_out_of_junk_trains_ham() {
    // The classifier scores once it has learned one message of each class.
    let config = tern_common::config::FilterConfig {
        bayes_min_messages: 1,
        ..Default::default()
    };
    let filter = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = std::sync::Arc::clone(&filter);
    let h = harness_with(move |ctx| {
        let made = tern_filter::Filter::new(
            config,
            ctx.store.clone(),
            "mail.example.test",
            &["example.test".to_owned()],
        );
        *slot.lock().expect("lock") = Some(made.clone());
        ctx.filter = Some(made);
    })
    .await;
    let filter = filter.lock().expect("lock").clone().expect("filter");
    let ham =
        b"From: mum@family.example\r\nSubject: sunday lunch\r\n\r\nsee you at lunch on sunday\r\n";
    filter
        .learn(h.account.id, ham, tern_store::SpamClass::Ham)
        .await
        .expect("learn ham");
    let spam: &[u8] =
        b"From: pills@spam.example\r\nSubject: cheap pills\r\n\r\nbuy cheap pills now\r\n";
    let similar: &[u8] =
        b"From: deals@spam.example\r\nSubject: cheap pills today\r\n\r\nbuy cheap pills\r\n";
    let score = |raw: &'static [u8]| {
        let (filter, account) = (filter.clone(), h.account.id);
        async move {
            let parsed = mail_parser::MessageParser::default().parse(raw);
            let input =
                tern_filter::MessageInput::new(raw, parsed.as_ref(), tern_filter::Origin::Mx);
            filter.check(&input, &[account]).await.accounts[0].score
        }
    };
    let before = score(similar).await;
    h.deliver(spam).await;

    let scope = tern_store::TokenScope::Account(h.account.id);
    let learned = |class: fn(&tern_store::TokenCounts) -> u64, expected: u64| {
        let store = h.store.clone();
        async move {
            // Training runs in the background after the MOVE reply; wait for it, bounded.
            for _ in 0..200 {
                let counts = store.spam_counts(scope, &[]).await.expect("counts");
                if class(&counts.messages) == expected {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        }
    };
    let mut c = h.select().await;
    c.cmd("m1 UID MOVE 1 Junk", "m1 OK").await;
    assert!(
        learned(|m| m.spam, 1).await,
        "moving into Junk did not train spam"
    );
    let after = score(similar).await;
    assert!(
        after > before,
        "a similar message scores {after}, before the move {before}"
    );

    c.cmd("s1 SELECT Junk", "s1 OK").await;
    c.cmd("m2 MOVE 1 INBOX", "m2 OK").await;
    assert!(
        learned(|m| m.ham, 2).await,
        "moving out of Junk did not train ham"
    );
    let counts = h.store.spam_counts(scope, &[]).await.expect("counts");
    assert_eq!(
        counts.messages.spam, 0,
        "relearned as ham: the spam count moves over"
    );
}
