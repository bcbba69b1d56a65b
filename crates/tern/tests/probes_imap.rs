//! Probes of the attack classes most exploited against real IMAP servers (security issue 17),
//! through the real binary: MIME bombs (message/rfc822 nested 1,000 deep, a multipart of
//! 100,000 parts, RFC 2231 parameter floods, 100,000 addresses) answered by BODYSTRUCTURE,
//! FETCH BODY[1.1.1...] and SEARCH, and many literals in one command. Each must get a clean
//! protocol answer within a time bound, the server's peak memory must stay bounded, and
//! another client must be served afterwards.
//!
//! Covered in `tests/hostile_imap.rs` and not repeated here: 30,000 nested parentheses,
//! oversized and unterminated literals, a 100 MB command line, slowloris clients.

mod support;

use std::time::{Duration, Instant};

use support::wire::Wire;
use support::{PASSWORD, TestServer};

/// How long one command over a hostile message may take in a debug build on a loaded
/// machine; a quadratic walk over 100,000 parts takes minutes.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// A normal message next to the hostile ones, which every probe must leave readable.
const NORMAL: &[u8] = b"From: a@example.org\r\nSubject: normal\r\n\r\nhello\r\n";

/// alice with `messages` in INBOX (after a normal first message), logged in and selected.
fn seeded(messages: &[&[u8]]) -> (TestServer, Wire) {
    let mut server = TestServer::prepare(&["imap"], &["alice"], "");
    let mut all = vec![NORMAL];
    all.extend_from_slice(messages);
    server.seed_inbox("alice", &all);
    server.launch();
    let wire = selected(&server);
    (server, wire)
}

fn selected(server: &TestServer) -> Wire {
    let mut wire = Wire::connect(server.addr("imap"));
    assert!(wire.line().starts_with("* OK "));
    let (_, ok) = wire.imap("l", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK "), "{ok}");
    let (_, ok) = wire.imap("s", "SELECT INBOX");
    assert_eq!(ok, "s OK [READ-WRITE] SELECT completed");
    wire
}

/// Runs `command`, asserts it completes with `OK` within [`ANSWER_WITHIN`] and returns its
/// untagged lines.
fn answered(wire: &mut Wire, command: &str) -> Vec<String> {
    let started = Instant::now();
    let (untagged, tagged) = wire.imap("p", command);
    let took = started.elapsed();
    let shown: String = command.chars().take(60).collect();
    assert!(tagged.starts_with("p OK "), "{shown}: {tagged}");
    assert!(took < ANSWER_WITHIN, "{shown} took {took:?}");
    untagged
}

/// FETCH BODYSTRUCTURE of the probe message (sequence number 2) is answered in time.
fn bodystructure_is_answered(wire: &mut Wire) {
    let structure = answered(wire, "FETCH 2 BODYSTRUCTURE");
    assert!(
        structure
            .first()
            .is_some_and(|l| l.starts_with("* 2 FETCH (BODYSTRUCTURE (")),
        "{:?}",
        structure.first().map(|l| l.get(..80))
    );
}

/// Another client reads the normal message at once.
fn others_are_served(server: &TestServer) {
    let started = Instant::now();
    let mut wire = selected(server);
    let (lines, ok) = wire.imap("n", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert_eq!(ok, "n OK FETCH completed");
    assert!(lines.iter().any(|l| l == "Subject: normal"), "{lines:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a normal client waited {:?}",
        started.elapsed()
    );
}

/// Asserts the server's peak memory grew by less than `mib` MiB since `peak_before`.
fn assert_peak_below(server: &TestServer, peak_before: u64, mib: u64, what: &str) {
    let (_, peak) = server.memory_kib();
    assert!(
        peak.saturating_sub(peak_before) < mib * 1024,
        "{what}: server peak memory {peak_before} -> {peak} KiB"
    );
}

/// message/rfc822 inside message/rfc822, `depth` times, around a text body.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut message = Vec::new();
    for level in 0..depth {
        message.extend_from_slice(
            format!("Subject: level {level}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
        );
    }
    message.extend_from_slice(b"Subject: core\r\n\r\ndeepneedle\r\n");
    message
}

/// One multipart/mixed with `parts` one-line text parts, the last holding `needle`.
fn many_parts(parts: usize, needle: &str) -> Vec<u8> {
    let mut message =
        b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 1..parts {
        message.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    message.extend_from_slice(format!("--b\r\n\r\n{needle}\r\n--b--\r\n").as_bytes());
    message
}

#[test]
fn message_rfc822_nested_1000_deep_gets_clean_answers_within_seconds() {
    let message = nested_messages(1000);
    let (server, mut wire) = seeded(&[&message]);
    let (_, peak_before) = server.memory_kib();
    let structure = answered(&mut wire, "FETCH 2 BODYSTRUCTURE");
    assert_eq!(structure.len(), 1, "{structure:?}");
    assert!(structure[0].starts_with("* 2 FETCH (BODYSTRUCTURE ("));
    // A section path through all 1,000 levels names a part below the nesting bound: no such
    // part, so NIL; a path within the bound is answered with the part's octets.
    let deep = answered(
        &mut wire,
        &format!("FETCH 2 (BODY.PEEK[{}1])", "1.".repeat(999)),
    );
    assert_eq!(deep.len(), 1, "{deep:?}");
    assert!(deep[0].ends_with("] NIL)"), "{}", deep[0]);
    let shallow = answered(&mut wire, "FETCH 2 (BODY.PEEK[1.1.1.HEADER])");
    assert!(
        shallow.iter().any(|l| l == "Subject: level 3"),
        "{shallow:?}"
    );
    // SEARCH reads the headers of attached messages down to the nesting bound (32 levels);
    // below it a message is an opaque leaf, not searched (`tern-imap` message/mod.rs).
    assert_eq!(
        answered(&mut wire, "SEARCH TEXT \"level 20\""),
        ["* SEARCH 2"]
    );
    assert_eq!(answered(&mut wire, "SEARCH TEXT deepneedle"), ["* SEARCH"]);
    assert_eq!(answered(&mut wire, "SEARCH BODY nothinghere"), ["* SEARCH"]);
    assert_peak_below(&server, peak_before, 64, "1,000 nested messages");
    others_are_served(&server);
}

#[test]
fn a_mime_tree_of_100000_parts_gets_clean_answers_within_seconds() {
    let message = many_parts(100_000, "lastneedle");
    let (server, mut wire) = seeded(&[&message]);
    let (_, peak_before) = server.memory_kib();
    bodystructure_is_answered(&mut wire);
    let last = answered(&mut wire, "FETCH 2 (BODY.PEEK[100000])");
    assert_eq!(last, ["* 2 FETCH (BODY[100000] {10}", "lastneedle)"]);
    let past = answered(&mut wire, "FETCH 2 (BODY.PEEK[100001.1.1.1])");
    assert!(past[0].ends_with("] NIL)"), "{past:?}");
    assert_eq!(
        answered(&mut wire, "SEARCH TEXT lastneedle"),
        ["* SEARCH 2"]
    );
    assert_eq!(answered(&mut wire, "SEARCH BODY nothinghere"), ["* SEARCH"]);
    assert_peak_below(&server, peak_before, 256, "100,000 MIME parts");
    others_are_served(&server);
}

#[test]
fn many_literals_in_one_search_are_refused_before_they_are_buffered() {
    let (server, mut wire) = seeded(&[]);
    let (_, peak_before) = server.memory_kib();
    // Non-synchronizing: 64 literals of 1 MiB each in one SEARCH, sent without waiting. Only
    // APPEND carries message-sized literals; the first one here is already refused and the
    // rest of the command is skipped as it arrives.
    let literal = vec![b'x'; 1 << 20];
    wire.send("a SEARCH");
    for _ in 0..64 {
        wire.send(" BODY {1048576+}\r\n");
        wire.send(&literal);
    }
    wire.send("\r\n");
    assert_eq!(wire.line(), "a BAD [TOOBIG] Literal too big");
    assert_eq!(wire.imap("b", "NOOP").1, "b OK NOOP completed");
    // Synchronizing: no continuation is offered for a literal that could not be used.
    wire.send("c SEARCH BODY {1048576}\r\n");
    assert_eq!(wire.line(), "c NO [TOOBIG] Literal too big");
    // Many small literals fed forever add up to the same limit.
    wire.send("d SEARCH");
    for _ in 0..2_000 {
        wire.send(" BODY {1000+}\r\n");
        wire.send([b'y'; 1000]);
    }
    wire.send("\r\n");
    assert_eq!(wire.line(), "d BAD [TOOBIG] Literal too big");
    assert_peak_below(&server, peak_before, 16, "64 MiB of SEARCH literals");
    // A search string in a literal of ordinary size still works.
    wire.send("e SEARCH BODY {5+}\r\nhello\r\n");
    assert_eq!(wire.imap_until("e").0, ["* SEARCH 1"]);
    others_are_served(&server);
}

/// A part whose Content-Type and Content-Disposition carry `count` RFC 2231 parameters
/// each: continuations of one name (`name*0*`, `name*1*`, ...) and as many distinct names.
fn parameter_flood(count: usize) -> Vec<u8> {
    let mut message = b"Subject: params\r\nContent-Type: multipart/mixed; boundary=b".to_vec();
    for n in 0..count {
        message.extend_from_slice(format!(";\r\n p{n}=v").as_bytes());
    }
    message.extend_from_slice(b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=us-ascii");
    for n in 0..count {
        message.extend_from_slice(format!(";\r\n name*{n}*=us-ascii''a%41").as_bytes());
    }
    message.extend_from_slice(b"\r\nContent-Disposition: attachment");
    for n in 0..count {
        message.extend_from_slice(format!(";\r\n filename*{}*=b%42", count - n).as_bytes());
    }
    message.extend_from_slice(b"\r\n\r\nparamneedle\r\n--b--\r\n");
    message
}

/// `count` addresses in one To: field, and `count` Cc: fields of one address each.
fn address_flood(count: usize) -> Vec<u8> {
    let mut message = b"From: a@example.org\r\nSubject: addresses\r\nTo: ".to_vec();
    for n in 0..count {
        message.extend_from_slice(format!("\"User {n}\" <u{n}@example.org>,\r\n ").as_bytes());
    }
    message.extend_from_slice(b"last@example.org\r\n");
    for n in 0..count {
        message.extend_from_slice(format!("Cc: c{n}@example.org\r\n").as_bytes());
    }
    message.extend_from_slice(b"\r\nbody\r\n");
    message
}

#[test]
fn rfc_2231_parameter_floods_get_clean_answers_within_seconds() {
    let message = parameter_flood(100_000);
    let (server, mut wire) = seeded(&[&message]);
    let (_, peak_before) = server.memory_kib();
    bodystructure_is_answered(&mut wire);
    let part = answered(&mut wire, "FETCH 2 (BODY.PEEK[1])");
    assert_eq!(part, ["* 2 FETCH (BODY[1] {11}", "paramneedle)"]);
    assert_eq!(
        answered(&mut wire, "SEARCH TEXT paramneedle"),
        ["* SEARCH 2"]
    );
    assert_peak_below(&server, peak_before, 256, "100,000 parameters");
    others_are_served(&server);
}

#[test]
fn a_100000_address_header_gets_clean_answers_within_seconds() {
    let message = address_flood(100_000);
    let (server, mut wire) = seeded(&[&message]);
    let (_, peak_before) = server.memory_kib();
    let envelope = answered(&mut wire, "FETCH 2 ENVELOPE");
    assert!(
        envelope
            .first()
            .is_some_and(|l| l.starts_with("* 2 FETCH (ENVELOPE (")),
        "{:?}",
        envelope.first().map(|l| l.get(..80))
    );
    assert_eq!(
        answered(&mut wire, "SEARCH TO last@example.org"),
        ["* SEARCH 2"]
    );
    assert_eq!(
        answered(&mut wire, "SEARCH CC c99999@example.org"),
        ["* SEARCH 2"]
    );
    assert_eq!(
        answered(&mut wire, "SEARCH TO nobody@example.org"),
        ["* SEARCH"]
    );
    assert_peak_below(&server, peak_before, 256, "100,000 addresses");
    others_are_served(&server);
}

/// LIST with patterns built to make a wildcard matcher backtrack (`*%*%…`, and `*x*x…*`
/// that no collapsing removes) against 300 names of 900 octets answers within a second,
/// with the list or `NO [LIMIT]`; the account's mailboxes are bounded by
/// `limits.max_mailboxes`.
#[test]
fn hostile_list_patterns_answer_within_a_second_and_mailboxes_are_bounded() {
    let server = TestServer::start_with(&["imap"], &["alice"], "[limits]\nmax_mailboxes = 310\n");
    let mut wire = Wire::connect(server.addr("imap"));
    wire.line();
    let (_, ok) = wire.imap("l", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK "), "{ok}");
    let long = "x".repeat(900);
    // Pipelined: one write, then the 300 replies.
    let creates: String = (0..300)
        .map(|i| format!("c{i} CREATE {long}{i:03}\r\n"))
        .collect();
    wire.send(creates);
    for i in 0..300 {
        let (_, tagged) = wire.imap_until(&format!("c{i}"));
        assert!(tagged.starts_with(&format!("c{i} OK")), "{tagged}");
    }

    let collapsing = "*%".repeat(400);
    let started = Instant::now();
    let (untagged, tagged) = wire.imap("p1", &format!("LIST \"\" \"{collapsing}\""));
    let took = started.elapsed();
    eprintln!("LIST of 800 octets of *% over 306 names: {took:?}");
    assert!(tagged.starts_with("p1 OK"), "{tagged}");
    assert_eq!(untagged.len(), 306);
    assert!(took < Duration::from_secs(1), "{took:?}");

    let alternating = "*x".repeat(200) + "*";
    let started = Instant::now();
    let (_, tagged) = wire.imap("p2", &format!("LIST \"\" \"{alternating}\""));
    let took = started.elapsed();
    eprintln!("LIST of 401 octets of *x over 306 names: {took:?}: {tagged}");
    assert!(
        tagged.starts_with("p2 OK") || tagged.starts_with("p2 NO [LIMIT]"),
        "{tagged}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");

    // 306 mailboxes now (the six defaults); four more fit.
    for i in 0..4 {
        let (_, tagged) = wire.imap(&format!("m{i}"), &format!("CREATE more{i}"));
        assert!(tagged.starts_with(&format!("m{i} OK")), "{tagged}");
    }
    let (_, tagged) = wire.imap("m4", "CREATE more4");
    assert!(tagged.starts_with("m4 NO [LIMIT]"), "{tagged}");
    let (_, tagged) = wire.imap("r", "RENAME more0 sub/more0");
    assert!(tagged.starts_with("r NO [LIMIT]"), "{tagged}");
    let (_, tagged) = wire.imap("n", "NOOP");
    assert!(tagged.starts_with("n OK"), "{tagged}");
}
