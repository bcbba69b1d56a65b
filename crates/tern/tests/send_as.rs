//! Submission cannot send as someone else, through the real binary with smtplib and swaks:
//! `From:` (and `Sender:`) must name addresses the account may send as — its own, its
//! sub-addresses, its send-as list (`tern user send-as`) — else `550 5.7.1` naming the address
//! and nothing is delivered or queued.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{PASSWORD, TestServer, python};

/// example.test with alice and bob, and a second hosted domain other.test with ceo.
fn server() -> TestServer {
    let server = TestServer::start(&["submission", "pop3"], &["alice", "bob"]);
    server.admin_ok(&["domain", "add", "other.test"], None);
    server.admin_ok(
        &["user", "add", "ceo@other.test"],
        Some(&format!("{PASSWORD}\n")),
    );
    server
}

/// alice submits `header` + a body to bob and friend@remote.test with smtplib.
fn submit(server: &TestServer, header: &str) -> Value {
    let file = server.dir.path().join("message.eml");
    let message = format!("{header}To: bob@example.test\r\nSubject: s\r\n\r\nbody\r\n");
    std::fs::write(&file, message).expect("write message");
    let port = server.port("submission").to_string();
    let out = python(
        "smtp_send.py",
        &[
            "127.0.0.1",
            &port,
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--to",
            "friend@remote.test",
            "--file",
            file.to_str().expect("utf-8 path"),
            "--login",
            "alice@example.test",
            PASSWORD,
        ],
    );
    serde_json::from_str(&out).expect("json from smtp_send.py")
}

/// How many messages `user`@example.test has, read over POP3.
fn inbox_len(server: &TestServer, user: &str) -> usize {
    let port = server.port("pop3").to_string();
    let address = format!("{user}@example.test");
    let v: Value = serde_json::from_str(&python(
        "pop3_dump.py",
        &["127.0.0.1", &port, &address, PASSWORD],
    ))
    .expect("json");
    v["messages"].as_array().map_or(0, Vec::len)
}

/// The reply to the final dot when the message was refused: (code, text).
fn refused(v: &Value) -> (i64, String) {
    (
        v["error"].as_i64().unwrap_or_default(),
        v["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn smtplib_alice_cannot_put_bob_or_another_domains_user_in_from_and_nothing_is_delivered() {
    let server = server();
    for (header, expected) in [
        (
            "From: Bob <bob@example.test>\r\n",
            "5.7.1 <bob@example.test> is not an address you may send as",
        ),
        (
            "From: ceo@other.test\r\n",
            "5.7.1 <ceo@other.test> is not an address you may send as",
        ),
        (
            "From: alice@example.test\r\nSender: bob@example.test\r\n",
            "5.7.1 <bob@example.test> is not an address you may send as",
        ),
        (
            "From: alice@example.test\r\nFrom: bob@example.test\r\n",
            "5.6.0 Message has 2 From: header fields",
        ),
        ("", "5.6.0 Message has no From: header field"),
    ] {
        let v = submit(&server, header);
        let (code, text) = refused(&v);
        assert_eq!(code, 550, "{header:?}: {v}");
        assert!(text.starts_with(expected), "{header:?}: {v}");
    }
    assert_eq!(inbox_len(&server, "bob"), 0);
    let queue = server.admin_ok(&["queue", "list"], None);
    assert!(!queue.contains("friend@remote.test"), "{queue}");
}

#[test]
fn smtplib_alice_can_send_as_herself_a_subaddress_and_her_send_as_list() {
    let server = server();
    for header in [
        "From: Alice <alice@example.test>\r\n",
        "From: alice+lists@example.test\r\n",
    ] {
        let v = submit(&server, header);
        assert_eq!(v["refused"], serde_json::json!({}), "{header:?}: {v}");
    }
    // Not yet hers; then an admin adds it.
    let v = submit(&server, "From: The CEO <ceo@other.test>\r\n");
    assert_eq!(refused(&v).0, 550, "{v}");
    server.admin_ok(
        &[
            "user",
            "send-as",
            "add",
            "alice@example.test",
            "ceo@other.test",
        ],
        None,
    );
    let v = submit(&server, "From: The CEO <ceo@other.test>\r\n");
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    assert_eq!(inbox_len(&server, "bob"), 3);
}

/// swaks as alice with an explicit From: header.
fn swaks(server: &TestServer, from_header: &str) -> std::process::Output {
    Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{}", server.port("submission")),
        ])
        .args(["--auth", "PLAIN", "--auth-user", "alice@example.test"])
        .args(["--auth-password", PASSWORD])
        .args(["--from", "alice@example.test", "--to", "bob@example.test"])
        .args(["--header", &format!("From: {from_header}")])
        .args(["--header", "Subject: via swaks", "--timeout", "20"])
        .output()
        .expect("swaks")
}

#[test]
fn swaks_alice_cannot_send_from_bob_or_ceo_of_another_hosted_domain() {
    let server = server();
    for (from, named) in [
        ("bob@example.test", "<bob@example.test>"),
        ("CEO <ceo@other.test>", "<ceo@other.test>"),
    ] {
        let out = swaks(&server, from);
        let transcript = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{transcript}");
        assert!(
            transcript.contains(&format!(
                "550 5.7.1 {named} is not an address you may send as"
            )),
            "{transcript}"
        );
    }
    assert_eq!(inbox_len(&server, "bob"), 0);
    let out = swaks(&server, "Alice <alice@example.test>");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(inbox_len(&server, "bob"), 1);
}
