//! Log injection: what clients send (login names, EHLO names, addresses) reaches the server's
//! log, where a line break or a terminal escape sequence in it could forge log lines that
//! fail2ban-style tools or an administrator would trust.

mod support;

use base64::Engine;
use support::TestServer;
use support::wire::Wire;

/// A forged log line (as tern's text format writes them) after a line break, and an ANSI escape.
const FORGED: &str =
    "evil\n2026-01-01T00:00:00.000000Z  INFO forged: login succeeded user=root\x1b[2J";

#[test]
fn control_characters_from_clients_are_escaped_in_the_log() {
    let server = TestServer::start(&["submission", "imap", "pop3"], &["alice"]);
    // SASL PLAIN carries any octet in the user name.
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{FORGED}\0wrong"));
    let mut smtp = Wire::connect(server.addr("submission"));
    smtp.smtp_reply();
    smtp.smtp("EHLO client.test");
    let reply = smtp.smtp(&format!("AUTH PLAIN {plain}"));
    assert!(reply.starts_with("535"), "{reply}");
    // An IMAP literal too.
    let mut imap = Wire::connect(server.addr("imap"));
    imap.line();
    imap.send(format!(
        "a LOGIN {{{}+}}\r\n{FORGED} wrong\r\n",
        FORGED.len()
    ));
    let (_, done) = imap.imap_until("a");
    assert!(done.starts_with("a NO"), "{done}");
    // POP3 USER with a bare CR and an escape (a line cannot hold LF).
    let mut pop3 = Wire::connect(server.addr("pop3"));
    pop3.line();
    pop3.pop3("USER evil\rINFO forged\x1b[2J");
    pop3.pop3("PASS wrong");

    let log = server.log();
    assert!(log.contains("login failed"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "an escape sequence reached the log:\n{log}"
    );
    assert!(
        !log.contains('\r'),
        "a carriage return reached the log:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00.000000Z"),
            "a forged line in the log:\n{log}"
        );
    }
}
