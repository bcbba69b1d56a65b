//! Probes of the BDAT attack classes most exploited against real SMTP servers (security
//! issue 17), through the real binary: BDAT before MAIL, `BDAT 0 LAST`, chunk sizes past the
//! message limit and past 2^64 (the Exim CVE-2026-45185 class), and a TLS close_notify in the
//! middle of a chunk followed by cleartext. Each gets a clean reply (or a clean close), no
//! octet of a chunk is ever taken for a command, memory stays bounded and other clients are
//! served.
//!
//! Covered in `tests/hostile_smtp.rs` and not repeated here: a BDAT chunk 50% over the limit,
//! disconnects mid-BDAT, SMTP smuggling through BDAT, STARTTLS command injection.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::wire::Wire;
use support::{PASSWORD, TestServer, python};

/// A second transaction hidden in what follows a BDAT command: if the server reads any of it
/// as commands, alice gets a message with the subject "smuggled".
const SMUGGLED: &str = "MAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
                        Subject: smuggled\r\n\r\nevil\r\n.\r\n";

fn server() -> TestServer {
    TestServer::start_with(
        &["smtp", "pop3"],
        &["alice"],
        "[limits]\nmax_message_size = 1000000\n",
    )
}

/// Connected, greeted and past EHLO.
fn greeted(server: &TestServer) -> Wire {
    let mut wire = Wire::connect(server.addr("smtp"));
    assert_eq!(
        wire.smtp_reply(),
        ["220 mail.example.test ESMTP Tern ready"]
    );
    assert!(wire.smtp("EHLO client.test").starts_with("250 "));
    wire
}

/// Greeted, with a transaction from a@example.org to alice open.
fn in_transaction(server: &TestServer) -> Wire {
    let mut wire = greeted(server);
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    wire
}

/// The Subject: of every message in alice's maildrop, read over POP3.
fn subjects(server: &TestServer) -> Vec<String> {
    let mut wire = Wire::connect(server.addr("pop3"));
    assert!(wire.line().starts_with("+OK"));
    assert!(wire.pop3("USER alice@example.test").starts_with("+OK"));
    assert!(wire.pop3(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    let stat = wire.pop3("STAT");
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stat}"));
    let mut subjects = Vec::new();
    for n in 1..=count {
        assert!(wire.pop3(&format!("RETR {n}")).starts_with("+OK"));
        let mut subject = String::from("(none)");
        loop {
            let line = wire.line();
            if line == "." {
                break;
            }
            if let Some(s) = line.strip_prefix("Subject: ") {
                subject = s.to_owned();
            }
        }
        subjects.push(subject);
    }
    subjects
}

/// A normal client delivers a message at once.
fn others_are_served(server: &TestServer, subject: &str) {
    let started = Instant::now();
    let mut wire = in_transaction(server);
    let text = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n");
    wire.send(format!("BDAT {} LAST\r\n{text}", text.len()));
    let reply = wire.smtp_reply();
    assert!(
        reply[0].starts_with("250 2.0.0 Message accepted"),
        "{reply:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a normal client waited {:?}",
        started.elapsed()
    );
}

#[test]
fn bdat_before_mail_and_an_empty_last_chunk_get_clean_replies() {
    let server = server();
    let mut wire = greeted(&server);
    // RFC 3030 §2: the refused chunk is still read, so "MAIL ..." inside it is no command.
    let chunk = "MAIL FROM:<x@example.org>\r\n";
    wire.send(format!("BDAT {} LAST\r\n{chunk}", chunk.len()));
    assert_eq!(wire.smtp_reply(), ["503 5.5.1 Need MAIL before BDAT"]);
    wire.send("BDAT 0 LAST\r\n");
    assert_eq!(wire.smtp_reply(), ["503 5.5.1 Need MAIL before BDAT"]);
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "503 5.5.1 Need MAIL before RCPT"
    );
    // An empty last chunk ends a transaction (RFC 3030 §2): an empty message, stored with
    // its trace header, readable like any other.
    drop(wire);
    let mut wire = in_transaction(&server);
    wire.send("BDAT 0 LAST\r\n");
    let reply = wire.smtp_reply();
    assert!(
        reply[0].starts_with("250 2.0.0 Message accepted"),
        "{reply:?}"
    );
    assert_eq!(wire.smtp("NOOP"), "250 2.0.0 OK");
    others_are_served(&server, "after empty");
    assert_eq!(subjects(&server), ["(none)", "after empty"]);
}

#[test]
fn a_bdat_chunk_size_past_2_to_the_64_closes_the_connection_and_nothing_after_it_is_a_command() {
    let server = server();
    for size in [
        // Saturating parsers restart here and read a 10-octet chunk.
        "184467440737095516160000000010",
        "18446744073709551616",
        "99999999999999999999999999999",
        "-1",
        "0x10",
        "",
    ] {
        let mut wire = in_transaction(&server);
        wire.send(format!("BDAT {size} LAST\r\n0123456789{SMUGGLED}"));
        assert_eq!(
            wire.expect_close(Duration::from_secs(10)),
            ["421 4.5.2 Syntax: BDAT chunk-size [LAST]; chunk size unreadable, closing connection"],
            "BDAT {size}"
        );
    }
    others_are_served(&server, "after huge sizes");
    assert_eq!(subjects(&server), ["after huge sizes"]);
}

#[test]
fn a_bdat_chunk_far_beyond_the_limit_is_discarded_as_it_arrives_in_bounded_memory() {
    let server = server();
    let mut wire = in_transaction(&server);
    let (_, peak_before) = server.memory_kib();
    // u64::MAX octets announced: every octet that follows is chunk data, dropped on arrival;
    // the transaction deadline (421 4.4.2) ends it eventually.
    wire.send("BDAT 18446744073709551615 LAST\r\n");
    let flood = format!("RSET\r\n{SMUGGLED}").repeat(64 * 1024);
    for _ in 0..4 {
        wire.send(&flood);
    }
    wire.set_timeout(Duration::from_millis(500));
    assert!(
        wire.try_line().is_err(),
        "the server answered inside a chunk"
    );
    let (_, peak) = server.memory_kib();
    assert!(
        peak.saturating_sub(peak_before) < 16 * 1024,
        "{} MiB of chunk data: server peak {peak_before} -> {peak} KiB",
        (4 * flood.len()) >> 20
    );
    others_are_served(&server, "after a huge chunk");
    drop(wire);
    assert_eq!(subjects(&server), ["after a huge chunk"]);
}

#[test]
fn a_tls_close_notify_mid_chunk_ends_the_session_and_the_cleartext_after_it_is_ignored() {
    let server = server();
    let addr = server.addr("smtp");
    let out: Value = serde_json::from_str(&python(
        "bdat_close_notify.py",
        &[&addr.ip().to_string(), &addr.port().to_string()],
    ))
    .expect("json from bdat_close_notify.py");
    assert_eq!(out["tls"][2], serde_json::json!(["250 2.1.5 Recipient OK"]));
    // Nothing in cleartext: neither a reply to the smuggled commands nor to the chunk.
    assert_eq!(out["after_close_notify"], "", "{out}");
    assert_eq!(out["closed"], true, "{out}");
    others_are_served(&server, "after close_notify");
    assert_eq!(subjects(&server), ["after close_notify"]);
}

#[test]
fn a_10_mb_header_line_over_lmtp_is_delivered_in_bounded_memory_and_read_back_within_seconds() {
    let server = TestServer::start_with(
        &["lmtp", "imap"],
        &["alice"],
        "[limits]\nmax_message_size = 20000000\n",
    );
    let mut wire = Wire::connect(server.addr("lmtp"));
    assert!(wire.smtp_reply()[0].starts_with("220 "));
    assert!(wire.smtp("LHLO client.test").starts_with("250 "));
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    assert!(wire.smtp("DATA").starts_with("354 "));
    let (_, peak_before) = server.memory_kib();
    wire.send("From: a@example.org\r\nSubject: long header\r\nX-Long: ");
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..10 {
        wire.send(&chunk);
    }
    wire.send("\r\n\r\nbody\r\n.\r\n");
    let started = Instant::now();
    // RFC 2033 §4.2: one reply per recipient.
    assert_eq!(
        wire.smtp_reply(),
        ["250 2.1.5 <alice@example.test> delivered"]
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Reading it back: the long field is one of the header's fields like any other.
    let mut imap = Wire::connect(server.addr("imap"));
    assert!(imap.line().starts_with("* OK "));
    let (_, ok) = imap.imap("l", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK "), "{ok}");
    assert!(imap.imap("s", "SELECT INBOX").1.starts_with("s OK "));
    let started = Instant::now();
    let (lines, ok) = imap.imap("f", "FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert_eq!(ok, "f OK FETCH completed");
    assert!(
        lines.iter().any(|l| l == "Subject: long header"),
        "{lines:?}"
    );
    let (lines, ok) = imap.imap("h", "SEARCH HEADER X-Long aaaaaaaaaab");
    assert_eq!(
        (lines, ok.as_str()),
        (vec!["* SEARCH".to_owned()], "h OK SEARCH completed")
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "reading the message back took {:?}",
        started.elapsed()
    );
    let (_, peak) = server.memory_kib();
    assert!(
        peak.saturating_sub(peak_before) < 128 * 1024,
        "a 10 MB header line: server peak {peak_before} -> {peak} KiB"
    );
}
