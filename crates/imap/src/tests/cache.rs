//! The message cache in sessions: cached and uncached messages answer FETCH and SEARCH alike,
//! uncached ones get their cache filled on first use, and cached answers never read the blob.

use tern_store::MetaParts;

use super::*;
use crate::message::summarize;

/// Messages with encoded words, groups, folded and 8-bit headers, nesting.
const MSG4: &[u8] = b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.test>\r\nTo: Friends: a@x.test, \"B, b\" <b@y.test>;\r\nCc: (comment) c@z.test\r\nBcc: hidden@example.test\r\nSubject: =?iso-8859-1?q?caf=E9?= au\r\n lait\r\nDate: Sat, 2 Dec 2023 23:30:00 -0900\r\nX-Tag: tag-042\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: i@example.test\r\n\r\ninner body\r\n--o--\r\n";
const MSG5: &[u8] = b"Subject: \xc3\xa4 raw UTF-8 and no blank line\r\nFrom: x@example.test";

const ALL: [&[u8]; 5] = [MSG1, MSG2, MSG3, MSG4, MSG5];

/// UIDs 1..=5 stored without a cache (as before the cache existed), 6..=10 the same
/// messages appended through IMAP (cached).
async fn twins() -> (Harness, Client<DuplexStream>) {
    let h = harness().await;
    for m in ALL {
        h.deliver(m).await;
    }
    let mut c = h.select().await;
    for (i, m) in ALL.iter().enumerate() {
        c.send(&format!("p{i} APPEND INBOX {{{}+}}", m.len())).await;
        c.send_raw(m).await;
        c.send_raw(b"\r\n").await;
        c.expect_tagged(&format!("p{i} OK")).await;
    }
    c.cmd("n NOOP", "n OK").await;
    (h, c)
}

/// A UID FETCH response line without its `* n FETCH (UID u ` start.
fn fetched_items(line: &str) -> String {
    let rest = line.split_once(" FETCH (UID ").map_or(line, |(_, r)| r);
    rest.split_once(' ').map_or(rest, |(_, r)| r).to_owned()
}

#[tokio::test]
async fn cached_and_uncached_messages_fetch_the_same_octets() {
    let items = [
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY",
        "BODY.PEEK[HEADER]",
        "BODY.PEEK[HEADER.FIELDS (From SUBJECT x-tag)]",
        "BODY.PEEK[HEADER.FIELDS.NOT (Subject)]<5.20>",
        "RFC822.HEADER",
        "(ENVELOPE BODY.PEEK[1] RFC822.SIZE FLAGS)",
    ];
    for item in items {
        // A fresh store each: the first FETCH fills the cache of the uncached twins.
        let (h, mut c) = twins().await;
        assert!(
            h.store
                .message_meta(h.inbox, &[Uid::new(1).expect("uid")], MetaParts::ALL)
                .await
                .expect("meta")
                .is_empty(),
            "UID 1 starts without a cache"
        );
        let lines = c.cmd(&format!("f UID FETCH 1:* {item}"), "f OK").await;
        assert_eq!(lines.len(), 10, "{lines:#?}");
        for i in 0..5 {
            assert_eq!(
                fetched_items(&lines[i]),
                fetched_items(&lines[i + 5]),
                "{item} of message {}",
                i + 1
            );
        }
    }
}

#[tokio::test]
async fn cached_and_uncached_messages_match_the_same_header_searches() {
    // Each key with the uncached UIDs it matches (their cached twins are UID + 5).
    let criteria: [(&str, &[u32]); 21] = [
        ("FROM bob", &[1]),
        ("FROM \"jürgen\"", &[4]),
        ("FROM example.test", &[1, 2, 3, 4, 5]),
        ("TO alice", &[1, 2]),
        ("TO friends", &[4]),
        ("CC c@z", &[4]),
        ("BCC hidden", &[4]),
        ("SUBJECT apples", &[2]),
        ("SUBJECT \"café au lait\"", &[4]),
        ("SUBJECT \"ä\"", &[5]),
        ("HEADER X-Tag tag-042", &[4]),
        ("HEADER Message-ID <1@example.test>", &[1]),
        ("HEADER Content-Type \"\"", &[3, 4]),
        ("SENTON 15-Nov-2023", &[2]),
        ("SENTON 2-Dec-2023", &[4]),
        ("SENTBEFORE 15-Nov-2023", &[1]),
        ("SENTSINCE 15-Nov-2023", &[2, 4]),
        ("NOT SUBJECT one", &[2, 3, 4, 5]),
        ("OR FROM carol SUBJECT three", &[2, 3]),
        ("SUBJECT inner", &[]),
        ("SUBJECT three BODY part", &[3]),
    ];
    for (key, expected) in criteria {
        let (_h, mut c) = twins().await;
        let lines = c.cmd(&format!("s UID SEARCH {key}"), "s OK").await;
        let hits: Vec<u32> = lines
            .iter()
            .flat_map(|l| {
                l.strip_prefix("* SEARCH")
                    .unwrap_or_default()
                    .split_whitespace()
            })
            .map(|n| n.parse().expect("uid"))
            .collect();
        let (uncached, cached): (Vec<u32>, Vec<u32>) = hits.iter().partition(|&&u| u <= 5);
        assert_eq!(uncached, expected, "SEARCH {key} (blob)");
        assert_eq!(
            cached,
            expected.iter().map(|u| u + 5).collect::<Vec<_>>(),
            "SEARCH {key} (cache)"
        );
        // A second run answers the uncached twins from the cache it filled.
        let again = c.cmd(&format!("t UID SEARCH {key}"), "t OK").await;
        assert_eq!(again, lines, "SEARCH {key} after the fill");
    }
}

#[tokio::test]
async fn fetch_and_search_fill_the_cache_of_messages_stored_without_one() {
    let h = harness().await;
    for m in ALL {
        h.deliver(m).await;
    }
    let uids: Vec<Uid> = (1..=5).filter_map(Uid::new).collect();
    let cached = |h: &Harness| {
        let store = h.store.clone();
        let (inbox, uids) = (h.inbox, uids.clone());
        async move {
            store
                .message_meta(inbox, &uids, MetaParts::ALL)
                .await
                .expect("meta")
        }
    };
    let mut c = h.select().await;
    c.cmd("a FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[TEXT])", "a OK")
        .await;
    assert!(cached(&h).await.is_empty(), "no cache item asked for");
    c.cmd("b FETCH 1:2 (ENVELOPE)", "b OK").await;
    c.cmd("c SEARCH 3:* SUBJECT x", "c OK").await;
    let expected: Vec<(Uid, tern_store::MessageMeta)> = uids
        .iter()
        .zip(ALL)
        .map(|(u, m)| (*u, summarize(m)))
        .collect();
    assert_eq!(cached(&h).await, expected);
    h.store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn cached_answers_and_flags_never_read_the_blob() {
    let h = harness().await;
    let mut c = h.select().await;
    // Above the inline threshold, so the blob is a file we can take away.
    let mut big = MSG4.to_vec();
    big.extend(std::iter::repeat_n(b'x', 100_000));
    c.send(&format!("p APPEND INBOX {{{}+}}", big.len())).await;
    c.send_raw(&big).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged("p OK").await;
    let blobs = h._dir.path().join("blobs");
    let mut removed = 0;
    for dir in std::fs::read_dir(&blobs).expect("blob dir") {
        let dir = dir.expect("entry").path();
        if dir.is_dir() && dir.file_name().is_some_and(|n| n.len() == 2) {
            for file in std::fs::read_dir(&dir).expect("blob subdir") {
                std::fs::remove_file(file.expect("entry").path()).expect("remove");
                removed += 1;
            }
        }
    }
    assert_eq!(removed, 1);
    c.cmd("a UID FETCH 1:* (FLAGS)", "a OK").await;
    let lines = c
        .cmd(
            "b FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE INTERNALDATE \
             BODY.PEEK[HEADER.FIELDS (X-Tag)] RFC822.HEADER)",
            "b OK",
        )
        .await;
    assert!(has(&lines, "X-Tag: tag-042"), "{lines:#?}");
    let lines = c
        .cmd(
            "c UID SEARCH HEADER X-Tag tag-042 FROM \"jürgen\" SENTON 2-Dec-2023 NOT BCC nobody",
            "c OK",
        )
        .await;
    assert_eq!(lines, ["* SEARCH 1"]);
    // The blob really is gone: what needs the body fails.
    c.cmd("d FETCH 1 (BODY.PEEK[TEXT])", "d NO [UNAVAILABLE]")
        .await;
}

#[tokio::test]
async fn a_mailbox_larger_than_one_read_slice_is_answered_in_order() {
    let h = harness().await;
    // 1,100 messages span two read slices; every third one without a cache, as if stored
    // before the cache existed.
    for i in 1..=1100u32 {
        let raw = format!("Subject: number {i}\r\nFrom: n{i}@example.test\r\n\r\nbody {i}\r\n");
        let meta = if i % 3 == 0 {
            tern_store::MessageMeta::default()
        } else {
            summarize(raw.as_bytes())
        };
        h.store
            .append(h.inbox, Bytes::from(raw), Flags::new(), 1_700_000_000, meta)
            .await
            .expect("append");
    }
    let mut c = h.select().await;
    let lines = c.cmd("a UID FETCH 1:* (FLAGS)", "a OK").await;
    assert_eq!(lines.len(), 1100);
    // New mail, and this SELECT is the first to see it: \Recent (IMAP4rev1).
    assert_eq!(lines[1099], "* 1100 FETCH (UID 1100 FLAGS (\\Recent))");
    // Change a few messages on both sides of the slice boundary, then ask for the changes only.
    let lines = c.cmd("m UID FETCH 1100 (MODSEQ)", "m OK").await;
    let modseq: u64 = lines[0]
        .split("MODSEQ (")
        .nth(1)
        .and_then(|m| m.split(')').next())
        .and_then(|m| m.parse().ok())
        .expect("MODSEQ of the newest message");
    c.cmd("b UID STORE 5,1023:1026,1099 +FLAGS (\\Flagged)", "b OK")
        .await;
    let lines = c
        .cmd(
            &format!("c UID FETCH 1:* (ENVELOPE) (CHANGEDSINCE {modseq})"),
            "c OK",
        )
        .await;
    let uids: Vec<u32> = lines
        .iter()
        .map(|l| {
            let uid: u32 = fetched_uid(l);
            assert!(
                l.contains(&format!("\"number {uid}\"")),
                "envelope of UID {uid}: {l}"
            );
            uid
        })
        .collect();
    assert_eq!(uids, [5, 1023, 1024, 1025, 1026, 1099]);
    // The flags-only path answers exactly as the general one (which RFC822.SIZE forces).
    for (i, items) in [
        "(FLAGS)",
        "(UID FLAGS MODSEQ)",
        "(MODSEQ FLAGS) (CHANGEDSINCE 3)",
    ]
    .iter()
    .enumerate()
    {
        for uid in ["", "UID "] {
            let fast = c
                .cmd(&format!("f{i} {uid}FETCH 1:* {items}"), &format!("f{i} OK"))
                .await;
            let general = c
                .cmd(
                    &format!(
                        "g{i} {uid}FETCH 1:* {}",
                        items.replacen('(', "(RFC822.SIZE ", 1)
                    ),
                    &format!("g{i} OK"),
                )
                .await;
            let general: Vec<String> = general
                .iter()
                .map(|l| {
                    let (head, rest) = l.split_once("RFC822.SIZE ").expect("size");
                    let rest = rest.split_once(' ').map_or(")", |(_, r)| r);
                    format!("{head}{rest}")
                })
                .collect();
            assert!(!fast.is_empty());
            assert_eq!(fast, general, "{uid}FETCH {items}");
        }
    }
    let lines = c
        .cmd("d FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "d OK")
        .await;
    assert_eq!(lines.len(), 1100);
    assert!(
        lines[1024].ends_with("Subject: number 1025\r\n\r\n)"),
        "{}",
        lines[1024]
    );
}

/// The UID in a `* n FETCH (UID u ...` line.
fn fetched_uid(line: &str) -> u32 {
    line.split("(UID ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0)
}
