//! Sessions of an account end when an admin command in another process changes its password,
//! disables or removes it (security issue 17): IMAP (logged in, and idling), POP3 and
//! authenticated submission, each within a few seconds, with the protocol's goodbye. Other
//! accounts' sessions carry on.

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use support::wire::Wire;
use support::{PASSWORD, TestServer};

/// The server polls for credential changes every 2 s; this leaves room for a loaded machine.
const WITHIN: Duration = Duration::from_secs(8);
const NEW_PASSWORD: &str = "a-new-password-2";

fn server() -> TestServer {
    TestServer::start(&["imap", "pop3", "submission"], &["alice", "bob"])
}

fn imap_login(server: &TestServer, user: &str, password: &str) -> Wire {
    let mut w = Wire::connect(server.addr("imap"));
    w.line();
    let (_, tagged) = w.imap("a1", &format!("LOGIN {user}@example.test {password}"));
    assert!(tagged.starts_with("a1 OK"), "{tagged}");
    w
}

/// Logged in, INBOX selected, in IDLE.
fn imap_idling(server: &TestServer, user: &str) -> Wire {
    let mut w = imap_login(server, user, PASSWORD);
    let (_, tagged) = w.imap("a2", "SELECT INBOX");
    assert!(tagged.starts_with("a2 OK"), "{tagged}");
    w.send("a3 IDLE\r\n");
    assert!(w.line().starts_with("+ "));
    w
}

fn pop3_login(server: &TestServer, user: &str) -> Wire {
    let mut w = Wire::connect(server.addr("pop3"));
    w.line();
    assert!(
        w.pop3(&format!("USER {user}@example.test"))
            .starts_with("+OK")
    );
    let reply = w.pop3(&format!("PASS {PASSWORD}"));
    assert!(reply.starts_with("+OK"), "{reply}");
    w
}

fn submission_login(server: &TestServer, user: &str) -> Wire {
    let mut w = Wire::connect(server.addr("submission"));
    w.smtp_reply();
    assert!(w.smtp("EHLO client.test").starts_with("250"));
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{user}@example.test\0{PASSWORD}"));
    let reply = w.smtp(&format!("AUTH PLAIN {plain}"));
    assert!(reply.starts_with("235"), "{reply}");
    w
}

/// alice's sessions: IMAP logged in, IMAP idling, POP3, submission.
fn alice_sessions(server: &TestServer) -> [(&'static str, Wire); 4] {
    [
        ("imap", imap_login(server, "alice", PASSWORD)),
        ("imap idle", imap_idling(server, "alice")),
        ("pop3", pop3_login(server, "alice")),
        ("submission", submission_login(server, "alice")),
    ]
}

/// Each session closes within [`WITHIN`] of `since`, after its protocol's goodbye.
fn assert_all_closed(sessions: [(&str, Wire); 4], since: Instant) {
    for (what, mut w) in sessions {
        let lines = w.expect_close(WITHIN.saturating_sub(since.elapsed()));
        let goodbye = match what {
            // RFC 9051 §7.1.5, RFC 5530 EXPIRED.
            "imap" | "imap idle" => "* BYE [EXPIRED]",
            // RFC 3206 AUTH.
            "pop3" => "-ERR [AUTH]",
            // RFC 5321 §3.8.
            _ => "421 4.7.0",
        };
        assert!(
            lines.iter().any(|l| l.starts_with(goodbye)),
            "{what}: expected {goodbye:?}, got {lines:?}"
        );
    }
    eprintln!("all sessions closed {:?} after the change", since.elapsed());
}

fn imap_login_fails(server: &TestServer, user: &str, password: &str) {
    let mut w = Wire::connect(server.addr("imap"));
    w.line();
    let (_, tagged) = w.imap("a1", &format!("LOGIN {user}@example.test {password}"));
    assert!(tagged.starts_with("a1 NO"), "{tagged}");
}

#[test]
fn password_change_by_the_cli_ends_the_accounts_sessions_and_not_others() {
    let server = server();
    let alice = alice_sessions(&server);
    let mut bob = imap_idling(&server, "bob");
    let mut bob_pop = pop3_login(&server, "bob");

    server.admin_ok(
        &["user", "passwd", "alice@example.test"],
        Some(&format!("{NEW_PASSWORD}\n")),
    );
    let changed = Instant::now();
    assert_all_closed(alice, changed);

    // bob's sessions were left alone.
    bob.send("DONE\r\n");
    let (_, tagged) = bob.imap_until("a3");
    assert!(tagged.starts_with("a3 OK"), "{tagged}");
    let (_, tagged) = bob.imap("a4", "NOOP");
    assert!(tagged.starts_with("a4 OK"), "{tagged}");
    assert!(bob_pop.pop3("STAT").starts_with("+OK"));

    // The old password is refused, the new one logs in and stays logged in.
    imap_login_fails(&server, "alice", PASSWORD);
    let mut again = imap_login(&server, "alice", NEW_PASSWORD);
    std::thread::sleep(Duration::from_secs(3));
    let (_, tagged) = again.imap("a2", "NOOP");
    assert!(tagged.starts_with("a2 OK"), "{tagged}");
}

#[test]
fn disabling_by_the_cli_ends_sessions_and_refuses_logins_until_enabled() {
    let server = server();
    let alice = alice_sessions(&server);
    let mut bob = imap_login(&server, "bob", PASSWORD);

    server.admin_ok(&["user", "disable", "alice@example.test"], None);
    let changed = Instant::now();
    assert_all_closed(alice, changed);
    let (_, tagged) = bob.imap("b1", "NOOP");
    assert!(tagged.starts_with("b1 OK"), "{tagged}");
    assert!(
        server
            .admin_ok(&["user", "list"], None)
            .contains("alice@example.test\tdisabled")
    );

    imap_login_fails(&server, "alice", PASSWORD);
    let mut w = Wire::connect(server.addr("pop3"));
    w.line();
    w.pop3("USER alice@example.test");
    assert!(w.pop3(&format!("PASS {PASSWORD}")).starts_with("-ERR"));

    server.admin_ok(&["user", "enable", "alice@example.test"], None);
    imap_login(&server, "alice", PASSWORD);
}

#[test]
fn removing_the_account_ends_its_sessions() {
    let server = server();
    let alice = alice_sessions(&server);
    server.admin_ok(&["user", "remove", "alice@example.test"], None);
    assert_all_closed(alice, Instant::now());
}
