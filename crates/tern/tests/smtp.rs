//! SMTP against the real binary with independent clients: Python's smtplib, swaks and curl;
//! what they deliver is read back over POP3.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{PASSWORD, TestServer, python};

const MESSAGE: &[u8] = b"From: Sender <sender@example.org>\r\nTo: alice@example.test\r\nSubject: hello\r\nDate: Tue, 24 Nov 2026 20:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nBody line\r\n.dot line\r\n";

/// [`MESSAGE`] as alice writes it: submissions must name the account in From:.
const ALICE_MESSAGE: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello\r\nDate: Tue, 24 Nov 2026 20:00:00 +0000\r\nMessage-ID: <2@example.test>\r\n\r\nBody line\r\n.dot line\r\n";

fn server() -> TestServer {
    TestServer::start(
        &["smtp", "submission", "submissions", "pop3"],
        &["alice", "bob"],
    )
}

fn send(server: &TestServer, listener: &str, args: &[&str], message: &[u8]) -> Value {
    let dir = server.dir.path();
    let file = dir.join(format!("msg-{}.eml", std::process::id()));
    std::fs::write(&file, message).expect("write message");
    let port = server.port(listener).to_string();
    let mut all = vec![
        "127.0.0.1",
        port.as_str(),
        "--file",
        file.to_str().expect("path"),
    ];
    all.extend_from_slice(args);
    serde_json::from_str(&python("smtp_send.py", &all)).expect("json from smtp_send.py")
}

/// The messages in `user`'s INBOX, read over POP3.
fn inbox(server: &TestServer, user: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let port = server.port("pop3").to_string();
    let address = format!("{user}@example.test");
    let v: Value = serde_json::from_str(&python(
        "pop3_dump.py",
        &["127.0.0.1", &port, &address, PASSWORD],
    ))
    .expect("json");
    assert!(v.get("error").is_none(), "{v}");
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            base64::engine::general_purpose::STANDARD
                .decode(m.as_str().expect("string"))
                .expect("base64")
        })
        .collect()
}

/// The stored message is the original preceded by exactly our two trace headers.
fn assert_delivered_intact(stored: &[u8], original: &[u8]) {
    assert!(
        stored.ends_with(original),
        "{}",
        String::from_utf8_lossy(stored)
    );
    let added = String::from_utf8_lossy(&stored[..stored.len() - original.len()]);
    assert!(added.starts_with("Return-Path: <"), "{added}");
    assert!(added.contains("Received: from "), "{added}");
    assert!(added.contains("by mail.example.test (Tern)"), "{added}");
}

#[test]
fn smtplib_delivers_to_a_local_user_byte_intact() {
    let server = server();
    let v = send(
        &server,
        "smtp",
        &["--from", "sender@example.org", "--to", "alice@example.test"],
        MESSAGE,
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    let messages = inbox(&server, "alice");
    assert_eq!(messages.len(), 1);
    assert_delivered_intact(&messages[0], MESSAGE);
    assert!(String::from_utf8_lossy(&messages[0]).contains("Return-Path: <sender@example.org>"));
}

#[test]
fn swaks_delivers_over_mx_and_over_submissions_with_auth() {
    let server = server();
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", server.port("smtp"))])
        .args(["--from", "someone@example.org", "--to", "bob@example.test"])
        .args(["--header", "Subject: via swaks", "--body", "swaks body"])
        .args(["--timeout", "20"])
        .output()
        .expect("swaks");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{}", server.port("submissions")),
        ])
        .args(["--tls-on-connect", "--auth", "PLAIN"])
        .args([
            "--auth-user",
            "alice@example.test",
            "--auth-password",
            PASSWORD,
        ])
        .args(["--from", "alice@example.test", "--to", "bob@example.test"])
        .args(["--header", "Subject: submitted", "--body", "submitted body"])
        .args(["--timeout", "20"])
        .output()
        .expect("swaks");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let messages = inbox(&server, "bob");
    assert_eq!(messages.len(), 2);
    let first = String::from_utf8_lossy(&messages[0]);
    assert!(
        first.contains("Subject: via swaks") && first.contains("with ESMTP "),
        "{first}"
    );
    let second = String::from_utf8_lossy(&messages[1]);
    assert!(second.contains("Subject: submitted"), "{second}");
    assert!(second.contains("with ESMTPSA "), "{second}");
}

#[test]
fn curl_delivers_over_smtp() {
    let server = server();
    let file = server.dir.path().join("curl.eml");
    std::fs::write(&file, MESSAGE).expect("write");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .arg(format!("smtp://127.0.0.1:{}", server.port("smtp")))
        .args([
            "--mail-from",
            "sender@example.org",
            "--mail-rcpt",
            "alice@example.test",
        ])
        .arg("--upload-file")
        .arg(&file)
        .output()
        .expect("curl");
    assert!(out.status.success(), "{out:?}");
    let messages = inbox(&server, "alice");
    assert_eq!(messages.len(), 1);
    assert_delivered_intact(&messages[0], MESSAGE);
}

#[test]
fn relay_and_unknown_users_are_refused_at_rcpt() {
    let server = server();
    for rcpt in [
        "someone@elsewhere.test",
        "alice%elsewhere.test@example.test",
        "\"alice@elsewhere.test\"@example.test",
    ] {
        let v = send(
            &server,
            "smtp",
            &["--from", "x@example.org", "--to", rcpt],
            MESSAGE,
        );
        let code = v["refused"][rcpt][0].as_i64().unwrap_or_default();
        assert!(code == 554 || code == 550, "{rcpt}: {v}");
    }
    let v = send(
        &server,
        "smtp",
        &["--from", "x@example.org", "--to", "nobody@example.test"],
        MESSAGE,
    );
    assert_eq!(v["refused"]["nobody@example.test"][0], 550, "{v}");
    assert!(
        v["refused"]["nobody@example.test"][1]
            .as_str()
            .unwrap_or_default()
            .contains("5.1.1"),
        "{v}"
    );
    assert!(inbox(&server, "alice").is_empty());
}

#[test]
fn submission_requires_auth_and_an_owned_sender() {
    let server = server();
    // Without AUTH: 530 at MAIL.
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--starttls",
        ],
        MESSAGE,
    );
    assert_eq!(v["error"], 530, "{v}");
    // With AUTH but a sender alice does not own: 553.
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "bob@example.test",
            "--to",
            "bob@example.test",
            "--starttls",
            "--login",
            "alice@example.test",
            PASSWORD,
        ],
        MESSAGE,
    );
    assert_eq!(v["error"], 553, "{v}");
    // Wrong password: 535.
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--starttls",
            "--login",
            "alice@example.test",
            "wrong-password",
        ],
        MESSAGE,
    );
    assert_eq!(v["error"], 535, "{v}");
    // Properly (her address in the envelope and in From:): delivered, with Date and
    // Message-ID kept as given.
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--starttls",
            "--login",
            "alice@example.test",
            PASSWORD,
        ],
        ALICE_MESSAGE,
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    assert_delivered_intact(&inbox(&server, "bob")[0], ALICE_MESSAGE);
}

#[test]
fn passwords_are_refused_before_tls_when_plaintext_is_not_allowed() {
    let server = TestServer::start_with(
        &["submission", "pop3"],
        &["alice"],
        "[auth]\nallow_plaintext_on_loopback = false\n",
    );
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "alice@example.test",
            "--to",
            "alice@example.test",
            "--login",
            "alice@example.test",
            PASSWORD,
        ],
        MESSAGE,
    );
    // smtplib refuses to log in when the server offers no AUTH before STARTTLS.
    assert!(
        v.get("error").is_some() || v.get("refused").is_none(),
        "{v}"
    );
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "alice@example.test",
            "--to",
            "alice@example.test",
            "--starttls",
            "--login",
            "alice@example.test",
            PASSWORD,
        ],
        ALICE_MESSAGE,
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
}

/// Sends raw bytes and returns the reply lines seen until the server has answered `replies`
/// times (multi-line replies count once).
fn raw_session(server: &TestServer, input: &[u8], replies: usize) -> Vec<String> {
    let stream = TcpStream::connect(server.addr("smtp")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    writer.write_all(input).expect("write");
    let mut lines = Vec::new();
    let mut complete = 0;
    while complete < replies {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 {
            break;
        }
        // "250-..." continues a reply, "250 ..." ends it.
        if line.as_bytes().get(3) == Some(&b' ') {
            complete += 1;
        }
        lines.push(line.trim_end().to_owned());
    }
    lines
}

#[test]
fn bare_lf_smuggling_never_creates_a_second_message() {
    let server = server();
    let smuggled = b"EHLO attacker.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
Subject: first\r\n\r\nhello\n.\nMAIL FROM:<spoof@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\nQUIT\r\n";
    // Greeting, EHLO, MAIL, RCPT, DATA 354, the verdict on the one message, QUIT.
    let lines = raw_session(&server, smuggled, 7);
    assert!(
        lines.iter().any(|l| l.starts_with("550 5.6")),
        "expected a bare-LF rejection, got {lines:?}"
    );
    let messages = inbox(&server, "alice");
    assert!(
        messages
            .iter()
            .all(|m| !String::from_utf8_lossy(m).contains("Subject: smuggled")),
        "a smuggled message was stored"
    );
}

#[test]
fn a_whole_pipelined_session_with_bdat_and_data_is_accepted() {
    let server = server();
    let body = "Subject: pipelined\r\n\r\nbody\r\n";
    // One write: a BDAT transaction (a chunk, then an empty LAST chunk) and a DATA one.
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\n\
         BDAT {len}\r\n{body}BDAT 0 LAST\r\n\
         MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n{body}.\r\nQUIT\r\n",
        len = body.len()
    );
    // Greeting, EHLO, MAIL, RCPT, BDAT, BDAT LAST, MAIL, RCPT, DATA 354, end of data, QUIT.
    let lines = raw_session(&server, input.as_bytes(), 11);
    let finals: Vec<&String> = lines
        .iter()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .collect();
    assert_eq!(finals.len(), 11, "{lines:?}");
    assert!(finals[9].starts_with("250"), "{lines:?}");
    assert!(finals[10].starts_with("221"), "{lines:?}");
    for user in ["alice", "bob"] {
        let messages = inbox(&server, user);
        assert_eq!(messages.len(), 1, "{user}");
        assert!(messages[0].ends_with(body.as_bytes()), "{user}");
    }
}

#[test]
fn smtputf8_mail_to_a_utf8_address_arrives_intact() {
    let server = server();
    server.admin_ok(
        &["user", "add", "josé@example.test"],
        Some(&format!("{PASSWORD}\n")),
    );
    let message = "From: Zoë <zoë@example.org>\r\nTo: josé@example.test\r\nSubject: Grüße\r\n\r\nnaïve café\r\n".as_bytes();
    let v = send(
        &server,
        "smtp",
        &[
            "--from",
            "zoë@example.org",
            "--to",
            "josé@example.test",
            "--smtputf8",
        ],
        message,
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    let messages = inbox(&server, "josé");
    assert_eq!(messages.len(), 1);
    assert_delivered_intact(&messages[0], message);
    // RFC 6531 §4.3: the transaction used SMTPUTF8.
    let stored = String::from_utf8_lossy(&messages[0]);
    assert!(stored.contains(" with UTF8SMTP id "), "{stored}");
}

#[test]
fn notify_success_to_a_local_user_brings_a_delivered_dsn_to_the_sender() {
    let server = server();
    let v = send(
        &server,
        "submission",
        &[
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--starttls",
            "--login",
            "alice@example.test",
            PASSWORD,
            "--mail-option",
            "ENVID=msg-42",
            "--rcpt-option",
            "NOTIFY=SUCCESS,FAILURE",
        ],
        ALICE_MESSAGE,
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    assert_eq!(inbox(&server, "bob").len(), 1);
    // The DSN is stored right after the reply, on a task of its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let dsn = loop {
        if let Some(m) = inbox(&server, "alice").pop() {
            break String::from_utf8_lossy(&m).into_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no DSN for alice");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    for line in [
        "multipart/report",
        "Original-Envelope-Id: msg-42",
        "Final-Recipient: rfc822; bob@example.test",
        "Action: delivered",
        "Status: 2.0.0",
        "Subject: hello",
    ] {
        assert!(dsn.contains(line), "{line:?} missing in {dsn}");
    }
    assert!(
        !dsn.contains("Body line"),
        "a success DSN returns the header only"
    );
}
