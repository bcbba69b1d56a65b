//! Hostile SMTP clients against the real binary: open-relay variants, SMTP smuggling variants,
//! STARTTLS command injection, AUTH brute force, submission as another user, oversized and
//! invalid input, disconnects at every protocol step, slowloris clients and connection floods.
//! Every case asserts the exact reply and that the server still serves a normal client.
//!
//! Already covered elsewhere and not repeated here (`tests/smtp.rs`): relay to a foreign
//! domain, the `%` hack and a quoted `@` in the local part, unknown local users, submission
//! without AUTH, with a wrong password and with the sender `bob@` for alice, passwords before
//! TLS, and `<LF>.<LF>` smuggling.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use support::wire::{Wire, connection_burst, slowloris, stream_long_line};
use support::{PASSWORD, TestServer, python};

fn server_with(extra_toml: &str) -> TestServer {
    TestServer::start_with(
        &["smtp", "submission", "submissions", "pop3"],
        &["alice", "bob"],
        extra_toml,
    )
}

fn server() -> TestServer {
    server_with("")
}

/// Connects to `listener` and says EHLO.
fn greeted(server: &TestServer, listener: &str) -> Wire {
    let mut wire = Wire::connect(server.addr(listener));
    let greeting = wire.smtp_reply();
    assert_eq!(
        greeting,
        ["220 mail.example.test ESMTP Tern ready"],
        "greeting"
    );
    let ehlo = wire.smtp("EHLO client.test");
    assert!(ehlo.starts_with("250 "), "{ehlo}");
    wire
}

/// SASL PLAIN initial response for `user@example.test`.
fn plain(authzid: &str, user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("{authzid}\0{user}@example.test\0{password}"))
}

/// A submission session authenticated as `user`.
fn submitter(server: &TestServer, user: &str) -> Wire {
    let mut wire = greeted(server, "submission");
    assert_eq!(
        wire.smtp(&format!("AUTH PLAIN {}", plain("", user, PASSWORD))),
        "235 2.7.0 Authentication successful"
    );
    wire
}

fn message(subject: &str) -> String {
    format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n")
}

/// MAIL FROM a@example.org, RCPT TO alice, DATA; asserts each reply.
fn start_data(wire: &mut Wire) {
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    assert_eq!(
        wire.smtp("DATA"),
        "354 Start mail input; end with <CRLF>.<CRLF>"
    );
}

/// A normal client delivers one message to alice over MX; asserts every reply.
fn deliver(server: &TestServer, subject: &str) {
    let mut wire = greeted(server, "smtp");
    start_data(&mut wire);
    let reply = wire.smtp(&format!("{}.", message(subject)));
    assert!(reply.starts_with("250 2.0.0 Message accepted"), "{reply}");
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
}

/// The messages in `user`'s maildrop, read over POP3.
fn maildrop(server: &TestServer, user: &str) -> Vec<String> {
    let mut wire = Wire::connect(server.addr("pop3"));
    assert!(wire.line().starts_with("+OK"));
    assert!(
        wire.pop3(&format!("USER {user}@example.test"))
            .starts_with("+OK")
    );
    let login = wire.pop3(&format!("PASS {PASSWORD}"));
    assert!(login.starts_with("+OK Logged in"), "{login}");
    let stat = wire.pop3("STAT");
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stat}"));
    let mut messages = Vec::new();
    for n in 1..=count {
        assert!(wire.pop3(&format!("RETR {n}")).starts_with("+OK"));
        let mut text = String::new();
        loop {
            let line = wire.line();
            if line == "." {
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        messages.push(text);
    }
    assert!(wire.pop3("QUIT").starts_with("+OK"));
    messages
}

fn subjects(server: &TestServer, user: &str) -> Vec<String> {
    maildrop(server, user)
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        })
        .collect()
}

#[test]
fn open_relay_variants_are_refused_at_rcpt() {
    let server = server();
    // (forward-path, the exact reply). Each in a fresh session, so the error limit never
    // closes one early.
    let cases = [
        // A source route is dropped (RFC 5321 §3.6.1): what counts is the final address.
        (
            "<@example.test:someone@elsewhere.test>",
            "554 5.7.1 Relay access denied",
        ),
        ("<someone@ELSEWHERE.TEST>", "554 5.7.1 Relay access denied"),
        ("<someone@elsewhere.test.>", "554 5.7.1 Relay access denied"),
        (
            "<alice@example.test.elsewhere.test>",
            "554 5.7.1 Relay access denied",
        ),
        ("<alice@sub.example.test>", "554 5.7.1 Relay access denied"),
        // Our own host name and `localhost` are not mail domains of this server.
        ("<alice@mail.example.test>", "554 5.7.1 Relay access denied"),
        ("<alice@localhost>", "554 5.7.1 Relay access denied"),
        // A look-alike (xn--exmple-cua = exämple) is just another domain.
        (
            "<alice@xn--exmple-cua.test>",
            "554 5.7.1 Relay access denied",
        ),
        (
            "<postmaster@elsewhere.test>",
            "554 5.7.1 Relay access denied",
        ),
        // UUCP bang paths are local parts, not routes.
        (
            "<elsewhere.test!alice@example.test>",
            "550 5.1.1 User unknown",
        ),
        (
            "<alice!elsewhere.test@example.test>",
            "550 5.1.1 User unknown",
        ),
        // Address literals, two `@`, escaped `@`, lists: not an address we deliver to.
        (
            "<alice@[127.0.0.1]>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<alice@[IPv6:::1]>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<alice@example.test@elsewhere.test>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<alice@example.test\\@elsewhere.test>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<alice@elsewhere.test%example.test>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<alice@elsewhere.test,alice@example.test>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<\"alice@elsewhere.test\">",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "alice@elsewhere.test",
            "501 5.5.2 Syntax: RCPT TO:<forward-path> [parameters]",
        ),
        // DSN parameters (RFC 3461) do not change the relay decision.
        (
            "<alice@elsewhere.test> NOTIFY=NEVER",
            "554 5.7.1 Relay access denied",
        ),
        (
            "<alice@elsewhere.test> NOTIFY=SUCCESS ORCPT=rfc822;alice+40example.test",
            "554 5.7.1 Relay access denied",
        ),
    ];
    for (path, expected) in cases {
        let mut wire = greeted(&server, "smtp");
        assert_eq!(
            wire.smtp("MAIL FROM:<x@example.org>"),
            "250 2.1.0 Sender OK"
        );
        assert_eq!(wire.smtp(&format!("RCPT TO:{path}")), expected, "{path}");
        assert_eq!(
            wire.smtp("QUIT"),
            "221 2.0.0 mail.example.test closing connection"
        );
    }
    // The null sender (bounces) and an AUTH attempt on the MX port do not open relaying.
    let mut wire = greeted(&server, "smtp");
    assert_eq!(
        wire.smtp(&format!("AUTH PLAIN {}", plain("", "alice", PASSWORD))),
        "502 5.5.1 Command not implemented"
    );
    assert_eq!(wire.smtp("MAIL FROM:<>"), "250 2.1.0 Sender OK");
    assert_eq!(
        wire.smtp("RCPT TO:<someone@elsewhere.test>"),
        "554 5.7.1 Relay access denied"
    );
    // A local recipient in the same transaction still works, and only it gets the message.
    assert_eq!(
        wire.smtp("RCPT TO:<@elsewhere.test:alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    assert_eq!(
        wire.smtp("DATA"),
        "354 Start mail input; end with <CRLF>.<CRLF>"
    );
    let reply = wire.smtp(&format!("{}.", message("relay probe")));
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    assert_eq!(subjects(&server, "alice"), ["relay probe"]);
    // Nothing was queued for a foreign domain.
    let mut server = server;
    server.stop();
    let queue = server.admin_ok(&["queue", "list"], None);
    assert!(!queue.contains("elsewhere.test"), "{queue}");
}

/// One smuggling attempt: a message whose text contains `ending` followed by a complete
/// second transaction; the server must see one message with a bare CR or LF and refuse it.
fn smuggle(server: &TestServer, ending: &[u8], split: Option<usize>) -> Vec<String> {
    let mut wire = greeted(server, "smtp");
    start_data(&mut wire);
    let mut text = b"Subject: first\r\n\r\nhello".to_vec();
    text.extend_from_slice(ending);
    text.extend_from_slice(
        b"MAIL FROM:<spoof@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
          Subject: smuggled\r\n\r\nevil\r\n.\r\n",
    );
    match split {
        // The ending split across two writes (and so, usually, two reads).
        Some(at) => {
            let at = b"Subject: first\r\n\r\nhello".len() + at;
            wire.send(&text[..at]);
            thread::sleep(Duration::from_millis(50));
            wire.send(&text[at..]);
        }
        None => wire.send(&text),
    }
    let mut replies = vec![wire.smtp_reply().join("|")];
    wire.send(b"QUIT\r\n");
    replies.extend(wire.expect_close(Duration::from_secs(10)));
    replies
}

#[test]
fn smtp_smuggling_variants_never_create_a_second_message() {
    let server = server();
    // CVE-2023-51766 / SEC Consult's end-of-data variants; `<LF>.<LF>` is in tests/smtp.rs.
    let endings: [&[u8]; 8] = [
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r.\r",
        b"\n.\r",
        b"\r.\n",
        b"\r\n.\r\r\n",
    ];
    for ending in endings {
        assert_eq!(
            smuggle(&server, ending, None),
            [
                "550 5.6.0 Message contains bare CR or LF; lines must end with CRLF",
                "221 2.0.0 mail.example.test closing connection"
            ],
            "{ending:?}"
        );
    }
    // The same with the ending split between two reads.
    for at in 1..=3 {
        assert_eq!(
            smuggle(&server, b"\r\n.\n", Some(at)),
            [
                "550 5.6.0 Message contains bare CR or LF; lines must end with CRLF",
                "221 2.0.0 mail.example.test closing connection"
            ],
            "split at {at}"
        );
    }
    // BDAT takes octets by count: a chunk holding a whole second transaction is one message,
    // refused for its bare LF.
    let mut wire = greeted(&server, "smtp");
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    let chunk = b"Subject: first\r\n\r\nhello\n.\nMAIL FROM:<spoof@example.test>\r\n\
                  RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n";
    wire.send(format!("BDAT {} LAST\r\n", chunk.len()));
    wire.send(chunk);
    assert_eq!(
        wire.smtp_reply(),
        ["550 5.6.0 Message contains bare CR or LF; lines must end with CRLF"]
    );
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
    // Neither the first nor the smuggled message exists; the server serves on.
    assert!(subjects(&server, "alice").is_empty());
    deliver(&server, "after smuggling");
    assert_eq!(subjects(&server, "alice"), ["after smuggling"]);
}

fn starttls_inject(server: &TestServer, listener: &str, args: &[&str]) -> Value {
    let port = server.port(listener).to_string();
    let mut all = vec!["127.0.0.1", port.as_str(), "smtp"];
    all.extend_from_slice(args);
    serde_json::from_str(&python("starttls_inject.py", &all)).expect("json")
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let server = server();
    // MX: a whole injected transaction. After the handshake the first reply must be to our
    // first command, and the session must have forgotten everything (RFC 3207 §4.2).
    let injected = "EHLO evil.test\\r\\nMAIL FROM:<a@example.org>\\r\\nRCPT TO:<alice@example.test>\\r\\n\
                    DATA\\r\\nSubject: injected\\r\\n\\r\\nx\\r\\n.\\r\\n";
    let v = starttls_inject(
        &server,
        "smtp",
        &[
            injected,
            "RCPT TO:<alice@example.test>",
            "EHLO client.test",
            "RCPT TO:<alice@example.test>",
            "QUIT",
        ],
    );
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["upgrade"][0], "220 2.0.0 Ready to start TLS", "{v}");
    let replies = v["replies"].as_array().expect("replies");
    assert_eq!(
        replies[0],
        serde_json::json!(["503 5.5.1 Send EHLO/HELO first"])
    );
    assert_eq!(replies[1][0], "250-mail.example.test greets client.test");
    assert_eq!(
        replies[2],
        serde_json::json!(["503 5.5.1 Need MAIL before RCPT"])
    );
    assert_eq!(
        replies[3],
        serde_json::json!(["221 2.0.0 mail.example.test closing connection"])
    );
    // Submission: an injected AUTH with alice's credentials must not log the TLS session in.
    let injected = format!("AUTH PLAIN {}\\r\\n", plain("", "alice", PASSWORD));
    let v = starttls_inject(
        &server,
        "submission",
        &[
            &injected,
            "EHLO client.test",
            "MAIL FROM:<alice@example.test>",
            "QUIT",
        ],
    );
    assert!(v.get("error").is_none(), "{v}");
    let replies = v["replies"].as_array().expect("replies");
    assert_eq!(replies[0][0], "250-mail.example.test greets client.test");
    assert_eq!(
        replies[1],
        serde_json::json!(["530 5.7.0 Authentication required"])
    );
    assert!(subjects(&server, "alice").is_empty());
}

#[test]
fn submission_cannot_use_another_users_address_or_identity() {
    let server = server();
    let mut wire = submitter(&server, "alice");
    // Variants of bob's address that do not match `bob@example.test` textually.
    for from in [
        "<BOB@EXAMPLE.TEST>",
        "<bob+tag@example.test>",
        "<\"bob\"@example.test>",
        "<@elsewhere.test:bob@example.test>",
        "<bob@example.test> SIZE=100",
        "<postmaster@example.test>",
        "<bob@elsewhere.test>",
    ] {
        assert_eq!(
            wire.smtp(&format!("MAIL FROM:{from}")),
            "553 5.7.1 Sender address not owned by the authenticated user",
            "{from}"
        );
    }
    assert_eq!(
        wire.smtp("MAIL FROM:<>"),
        "553 5.7.1 Null sender not allowed for submission"
    );
    // Her own address still works.
    assert_eq!(
        wire.smtp("MAIL FROM:<alice@example.test>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
    // SASL PLAIN with authzid bob and alice's credentials: no proxy authorization.
    let mut wire = greeted(&server, "submission");
    assert_eq!(
        wire.smtp(&format!(
            "AUTH PLAIN {}",
            plain("bob@example.test", "alice", PASSWORD)
        )),
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        wire.smtp("MAIL FROM:<bob@example.test>"),
        "530 5.7.0 Authentication required"
    );
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
}

#[test]
fn auth_brute_force_is_slowed_then_blocked_per_address_and_never_locks_the_account() {
    let server = server_with(
        "[auth]\nallow_plaintext_on_loopback = true\nmax_failures_per_account = 3\n\
         max_failures_per_ip = 5\n",
    );
    let login = |user: &str, password: &str| {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        (b64(&format!("{user}@example.test")), b64(password))
    };
    let failed = "535 5.7.8 Authentication credentials invalid";
    // Three failures in one session, PLAIN and LOGIN mixed: the session is closed.
    let mut wire = greeted(&server, "submission");
    assert_eq!(
        wire.smtp(&format!("AUTH PLAIN {}", plain("", "alice", "guess-1"))),
        failed
    );
    let (user, password) = login("alice", "guess-2");
    assert_eq!(wire.smtp("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    assert_eq!(wire.smtp(&user), "334 UGFzc3dvcmQ6");
    assert_eq!(wire.smtp(&password), failed);
    assert_eq!(
        wire.smtp(&format!("AUTH PLAIN {}", plain("", "alice", "guess-3"))),
        "421 4.7.0 Too many authentication failures"
    );
    wire.expect_close(Duration::from_secs(5));
    // The account is not locked: its owner submits from another address at once.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let from_elsewhere = |user: &str| {
        let mut wire = Wire::connect_from(other, server.addr("submission"));
        wire.smtp_reply();
        assert!(wire.smtp("EHLO client.test").starts_with("250 "));
        assert_eq!(
            wire.smtp(&format!("AUTH PLAIN {}", plain("", user, PASSWORD))),
            "235 2.7.0 Authentication successful"
        );
    };
    from_elsewhere("alice");
    // From the failing address the right password is delayed (tarpit), not refused.
    let mut wire = submitter(&server, "alice");
    assert_eq!(
        wire.smtp("MAIL FROM:<alice@example.test>"),
        "250 2.1.0 Sender OK"
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("login delayed") && l.contains("ip=127.0.0.1 ")),
        "{log}"
    );
    // Spraying other names from the address (two per session, under the session's limit):
    // the fifth failure blocks it (logged), and then even the right password is refused;
    // another address is not affected.
    for pair in ["admin", "root", "test", "info", "sales"].chunks(2) {
        let mut wire = greeted(&server, "submission");
        for user in pair {
            assert_eq!(
                wire.smtp(&format!("AUTH PLAIN {}", plain("", user, PASSWORD))),
                failed
            );
        }
    }
    let mut wire = greeted(&server, "submission");
    assert_eq!(
        wire.smtp(&format!("AUTH PLAIN {}", plain("", "bob", PASSWORD))),
        "454 4.7.0 Too many failed logins, try again later"
    );
    from_elsewhere("bob");
    let log = server.log();
    let blocks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("blocking client address"))
        .collect();
    assert_eq!(blocks.len(), 1, "{log}");
    assert!(
        blocks[0].contains("ip=127.0.0.1 ") && blocks[0].contains("failures=5 "),
        "{}",
        blocks[0]
    );
}

#[test]
fn oversized_input_gets_the_right_code_and_the_session_survives() {
    let server = server_with("[limits]\nmax_message_size = 1000000\n");
    let mut wire = greeted(&server, "smtp");
    // RFC 1870: a declared size over the limit is refused at MAIL.
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org> SIZE=1000001"),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    // A DATA message over the limit is read to its end and refused.
    start_data(&mut wire);
    let mut big = b"Subject: too big\r\n\r\n".to_vec();
    let line = [b'y'; 98];
    while big.len() < 1_500_000 {
        big.extend_from_slice(&line);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    wire.send(&big);
    assert_eq!(
        wire.smtp_reply(),
        ["552 5.3.4 Message size exceeds fixed maximum message size"]
    );
    // BDAT over the limit: the chunk is consumed, never read as commands.
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    wire.send("BDAT 1500000 LAST\r\n");
    wire.send(b"RSET\r\n".repeat(250_000));
    assert_eq!(
        wire.smtp_reply(),
        ["552 5.3.4 Message size exceeds fixed maximum message size"]
    );
    // Over-long command lines: 500 5.5.2, the session goes on.
    assert_eq!(
        wire.smtp(&format!("NOOP {}", "x".repeat(600))),
        "500 5.5.2 Line too long"
    );
    // MAIL and RCPT lines may be longer (extension parameters), but not unbounded.
    assert_eq!(
        wire.smtp(&format!("MAIL FROM:<{}@example.org>", "a".repeat(1600))),
        "500 5.5.2 Line too long"
    );
    assert_eq!(
        wire.smtp(&format!("RCPT TO:<{}@example.org>", "a".repeat(1100))),
        "500 5.5.2 Line too long"
    );
    // The recipient limit (100) answers 452 and keeps the accepted ones.
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    for _ in 0..100 {
        assert_eq!(
            wire.smtp("RCPT TO:<alice@example.test>"),
            "250 2.1.5 Recipient OK"
        );
    }
    assert_eq!(
        wire.smtp("RCPT TO:<bob@example.test>"),
        "452 4.5.3 Too many recipients"
    );
    assert_eq!(wire.smtp("RSET"), "250 2.0.0 OK");
    drop(wire);
    deliver(&server, "after oversized input");
    assert_eq!(subjects(&server, "alice"), ["after oversized input"]);
}

#[test]
fn a_100_mb_command_line_is_refused_without_being_buffered() {
    let server = server();
    let mut wire = greeted(&server, "smtp");
    let grown = stream_long_line(&server, &mut wire, b"EHLO ", 100 << 20);
    assert_eq!(wire.smtp_reply(), ["500 5.5.2 Line too long"]);
    assert!(grown < 16 * 1024, "server memory grew by {grown} KiB");
    assert_eq!(wire.smtp("NOOP"), "250 2.0.0 OK");
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
    deliver(&server, "after a long line");
}

#[test]
fn invalid_utf8_in_commands_is_refused_or_made_harmless() {
    let server = server();
    let mut wire = greeted(&server, "smtp");
    wire.send(b"\xff\xfe\xfd\r\n");
    assert_eq!(wire.smtp_reply(), ["500 5.5.1 Command unrecognized"]);
    wire.send(b"NOOP\x00\r\n");
    assert_eq!(wire.smtp_reply(), ["500 5.5.1 Command unrecognized"]);
    // RFC 6531 §3.4: no 8-bit addresses without SMTPUTF8.
    wire.send(b"MAIL FROM:<\xff@example.org>\r\n");
    assert_eq!(
        wire.smtp_reply(),
        ["553 5.6.7 Non-ASCII address requires SMTPUTF8"]
    );
    wire.send(b"MAIL FROM:<a@example.org>\r\n");
    assert_eq!(wire.smtp_reply(), ["250 2.1.0 Sender OK"]);
    wire.send(b"RCPT TO:<al\xffice@example.test>\r\n");
    assert_eq!(
        wire.smtp_reply(),
        ["553 5.6.7 Non-ASCII address requires SMTPUTF8"]
    );
    // With SMTPUTF8, invalid UTF-8 never names a local user (nor another domain).
    assert_eq!(wire.smtp("RSET"), "250 2.0.0 OK");
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org> SMTPUTF8"),
        "250 2.1.0 Sender OK"
    );
    for rcpt in [
        &b"RCPT TO:<al\xffice@example.test>\r\n"[..],
        b"RCPT TO:<\xc0\xe1lice@example.test>\r\n",
    ] {
        wire.send(rcpt);
        assert_eq!(wire.smtp_reply(), ["550 5.1.1 User unknown"]);
    }
    // The replacement character U+FFFD is not allowed in a domain label (IDNA2008, RFC 5892).
    wire.send(b"RCPT TO:<alice@ex\xffample.test>\r\n");
    assert_eq!(
        wire.smtp_reply(),
        ["501 5.1.3 Bad recipient address syntax"]
    );
    // An invalid EHLO name is accepted (RFC 5321 §4.1.4: no rejection for a bad name) but
    // never reaches the stored Received: header as raw bytes.
    wire.send(b"EHLO \xff\xfe\x01evil\r\n");
    assert!(wire.smtp_reply().last().expect("reply").starts_with("250 "));
    start_data(&mut wire);
    let reply = wire.smtp(&format!("{}.", message("odd helo")));
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let stored = maildrop(&server, "alice");
    assert_eq!(stored.len(), 1);
    // smtp-proto reads the name lossily (U+FFFD for invalid octets); the control character
    // is replaced when the trace header is written.
    let received = stored[0]
        .lines()
        .find(|l| l.starts_with("Received: from "))
        .expect("Received header");
    assert_eq!(
        received,
        "Received: from \u{fffd}\u{fffd}_evil (unknown [127.0.0.1])"
    );
}

/// How a test client leaves.
#[derive(Clone, Copy, Debug)]
enum Leave {
    /// FIN.
    Close,
    /// RST.
    Reset,
}

fn leave(wire: Wire, how: Leave) {
    match how {
        Leave::Close => drop(wire),
        Leave::Reset => wire.reset(),
    }
}

#[test]
fn disconnects_at_every_step_leave_nothing_behind_and_the_server_serves_on() {
    let server = server();
    // Each step: what the client sends (after the greeting and EHLO unless `fresh`) before
    // it vanishes.
    let tx = "MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\n";
    let steps: Vec<(&str, &str, bool, Vec<u8>)> = vec![
        ("after greeting", "smtp", true, Vec::new()),
        ("mid-command", "smtp", true, b"EHLO cli".to_vec()),
        ("after MAIL", "smtp", false, b"MAIL FROM:<a@example.org>\r\n".to_vec()),
        ("after RCPT", "smtp", false, tx.into()),
        ("after DATA", "smtp", false, format!("{tx}DATA\r\n").into()),
        (
            "mid-DATA",
            "smtp",
            false,
            format!("{tx}DATA\r\nSubject: partial data\r\n\r\nhalf a li").into(),
        ),
        (
            "before the final CRLF",
            "smtp",
            false,
            format!("{tx}DATA\r\nSubject: partial dot\r\n\r\nbody\r\n.").into(),
        ),
        (
            "mid-BDAT",
            "smtp",
            false,
            format!("{tx}BDAT 1000 LAST\r\nSubject: partial bdat\r\n\r\nhalf").into(),
        ),
        (
            "after a BDAT chunk without LAST",
            "smtp",
            false,
            format!("{tx}BDAT 30\r\nSubject: partial chunks\r\n\r\nabcd").into(),
        ),
        ("mid-AUTH PLAIN", "submission", false, b"AUTH PLAIN\r\n".to_vec()),
        (
            "mid-AUTH LOGIN",
            "submission",
            false,
            format!(
                "AUTH LOGIN\r\n{}\r\n",
                base64::engine::general_purpose::STANDARD.encode("alice@example.test")
            )
            .into(),
        ),
        (
            "mid-submission DATA",
            "submission",
            false,
            format!(
                "AUTH PLAIN {}\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\n\
                 DATA\r\nSubject: partial submission\r\n\r\nhalf",
                plain("", "alice", PASSWORD)
            )
            .into(),
        ),
        ("after STARTTLS", "smtp", false, b"STARTTLS\r\n".to_vec()),
        (
            "mid-TLS handshake",
            "smtp",
            false,
            b"STARTTLS\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        (
            "mid-implicit-TLS handshake",
            "submissions",
            true,
            b"\x16\x03\x01".to_vec(),
        ),
    ];
    let mut delivered = Vec::new();
    for (name, listener, fresh, input) in steps {
        for how in [Leave::Close, Leave::Reset] {
            let mut wire = if fresh {
                let mut wire = Wire::connect(server.addr(listener));
                if listener != "submissions" {
                    assert!(wire.line().starts_with("220 "));
                }
                wire
            } else {
                greeted(&server, listener)
            };
            wire.send(&input);
            // Let the server read it before the connection goes.
            thread::sleep(Duration::from_millis(20));
            leave(wire, how);
            // A normal client is served at once, every time.
            let subject = format!("normal after {name} ({how:?})");
            deliver(&server, &subject);
            delivered.push(subject);
        }
    }
    // Exactly the normal messages exist: no partial or half-authenticated one.
    assert_eq!(subjects(&server, "alice"), delivered);
}

#[test]
fn slowloris_clients_do_not_delay_others_and_are_cut_off_by_the_command_timeout() {
    let server = server_with("[limits]\nidle_timeout_seconds = 2\n");
    let limit = Duration::from_secs(8);
    let mut slow = Vec::new();
    for listener in ["smtp", "submission"] {
        for _ in 0..8 {
            slow.push(slowloris(
                server.addr(listener),
                b"EHLO slow.client.test",
                Duration::from_secs(1),
                limit,
            ));
        }
    }
    thread::sleep(Duration::from_millis(300));
    // Normal clients complete while the slow ones are connected.
    let started = Instant::now();
    deliver(&server, "while slowloris");
    let mut wire = submitter(&server, "alice");
    assert_eq!(
        wire.smtp("MAIL FROM:<alice@example.test>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "normal clients took {took:?}"
    );
    for handle in slow {
        let (sent, said, after) = handle.join().expect("slow client");
        // Each octet came well inside the 2 s timeout, so only a timeout on the whole
        // command cuts them off.
        assert!(sent >= 2, "sent {sent}");
        assert_eq!(
            said,
            [
                "220 mail.example.test ESMTP Tern ready",
                "421 4.4.2 Timeout, closing connection"
            ]
        );
        assert!(after < Duration::from_secs(4), "cut off after {after:?}");
    }
    assert_eq!(subjects(&server, "alice"), ["while slowloris"]);
}

#[test]
fn a_connection_flood_from_one_address_gets_421_and_others_are_served() {
    let server = server_with("[limits]\nmax_connections_per_ip = 4\n");
    let held: Vec<Wire> = (0..4).map(|_| greeted(&server, "smtp")).collect();
    // Over the per-IP limit: one line and the close, on every SMTP-family listener; implicit
    // TLS listeners just close (the client expects a handshake, not text).
    for listener in ["smtp", "submission"] {
        let mut wire = Wire::connect(server.addr(listener));
        assert_eq!(
            wire.expect_close(Duration::from_secs(5)),
            ["421 4.7.0 Too many connections, try again later"],
            "{listener}"
        );
    }
    let mut wire = Wire::connect(server.addr("submissions"));
    assert!(wire.expect_close(Duration::from_secs(5)).is_empty());
    // A burst of connections that are refused or dropped at once.
    let burst = connection_burst(server.addr("smtp"), 4, 100);
    // Meanwhile another client address is served normally.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut wire = Wire::connect_from(other, server.addr("smtp"));
    assert_eq!(
        wire.smtp_reply(),
        ["220 mail.example.test ESMTP Tern ready"]
    );
    assert!(wire.smtp("EHLO other.test").starts_with("250 "));
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
    for b in burst {
        b.join().expect("burst");
    }
    // When the flood ends its slots are free again: all four can be used at once.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let again = loop {
        let mut wire = Wire::connect(server.addr("smtp"));
        let first = wire.line();
        if first.starts_with("220 ") {
            break wire;
        }
        assert!(Instant::now() < deadline, "slots not released: {first}");
        thread::sleep(Duration::from_millis(50));
    };
    let more: Vec<Wire> = (0..3).map(|_| greeted(&server, "smtp")).collect();
    for mut wire in more.into_iter().chain([again]) {
        wire.send("QUIT\r\n");
        wire.expect_close(Duration::from_secs(5));
    }
    thread::sleep(Duration::from_millis(50));
    deliver(&server, "after the flood");
    assert_eq!(subjects(&server, "alice"), ["after the flood"]);
}

#[test]
fn a_client_that_never_reads_its_replies_is_dropped_after_the_command_timeout() {
    let server = server_with("[limits]\nidle_timeout_seconds = 2\nmax_connections_per_ip = 1\n");
    support::wire::assert_stalled_reader_is_dropped(
        server.addr("smtp"),
        |wire| assert!(wire.line().starts_with("220 ")),
        b"NOOP\r\n",
        "421 4.7.0 Too many connections, try again later",
        Duration::from_secs(8),
    );
    thread::sleep(Duration::from_millis(100));
    let mut wire = greeted(&server, "smtp");
    assert_eq!(
        wire.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
}
