//! Internationalised spellings of hosted domains (security issue 17): a domain is one domain
//! whether written as U-labels (RFC 5890 §2.3.2.1, with SMTPUTF8, RFC 6531) or A-labels
//! (`xn--`), in any letter case. Every spelling of a hosted domain is local; every spelling
//! of another domain is relayed to no one; a malformed `xn--` label is a syntax error.

mod support;

use support::wire::Wire;
use support::{PASSWORD, TestServer, wait_for_messages};

/// A server hosting example.test and `domain` (added with `tern domain add` as spelled), with
/// alice under the latter.
fn server(domain: &str) -> TestServer {
    let mut server = TestServer::prepare(&["smtp", "pop3"], &[], "");
    server.admin_ok(&["domain", "add", domain], None);
    server.admin_ok(
        &["user", "add", &format!("alice@{domain}")],
        Some(&format!("{PASSWORD}\n")),
    );
    server.launch();
    server
}

/// One transaction on port 25 (no AUTH): the reply to RCPT, and to the end of DATA when the
/// recipient was accepted.
fn rcpt(server: &TestServer, recipient: &str) -> String {
    let mut wire = Wire::connect(server.addr("smtp"));
    wire.smtp_reply();
    wire.smtp("EHLO client.test");
    let utf8 = if recipient.is_ascii() {
        ""
    } else {
        " SMTPUTF8"
    };
    let mail = wire.smtp(&format!("MAIL FROM:<x@example.org>{utf8}"));
    assert!(mail.starts_with("250"), "{mail}");
    let reply = wire.smtp(&format!("RCPT TO:<{recipient}>"));
    if reply.starts_with("250") {
        assert!(wire.smtp("DATA").starts_with("354"));
        let end = wire.smtp(&format!(
            "From: x@example.org\r\nSubject: to {recipient}\r\n\r\nHello.\r\n."
        ));
        assert!(end.starts_with("250"), "{recipient}: {end}");
    }
    wire.smtp("QUIT");
    reply
}

#[test]
fn every_spelling_of_a_hosted_idn_domain_is_local_and_others_are_not_relayed() {
    const RELAY: &str = "554 5.7.1 Relay access denied";
    const SYNTAX: &str = "501 5.1.3 Bad recipient address syntax";
    // Configured as U-label (in upper case) and as A-label: the same matrix for both.
    for (configured, pop3_name) in [
        ("BÜCHER.test", "alice@bücher.test"),
        ("xn--bcher-kva.test", "alice@XN--BCHER-KVA.test"),
    ] {
        let server = server(configured);
        let local = [
            "alice@xn--bcher-kva.test",
            "alice@XN--BCHER-KVA.TEST",
            "alice@bücher.test",
            "ALICE@BÜCHER.TEST",
        ];
        for recipient in local {
            assert_eq!(
                rcpt(&server, recipient),
                "250 2.1.5 Recipient OK",
                "{configured}: {recipient}"
            );
        }
        let refused = [
            // Look-alikes and other domains, in either spelling: not ours, no relaying.
            ("alice@xn--exmple-cua.test", RELAY),
            ("alice@exämple.test", RELAY),
            ("alice@xn--bcher-kva.test.example", RELAY),
            ("alice@bucher.test", RELAY),
            // Not valid punycode (RFC 3492 §6.2: decodes to U+0080, not allowed by IDNA2008).
            ("alice@xn--a.test", SYNTAX),
            ("alice@xn--bcher-kva-.test", SYNTAX),
        ];
        for (recipient, expected) in refused {
            assert_eq!(
                rcpt(&server, recipient),
                expected,
                "{configured}: {recipient}"
            );
        }
        // Every accepted spelling reached the one mailbox, which logs in by any spelling.
        let messages = wait_for_messages(&server, "127.0.0.1", pop3_name, local.len());
        assert_eq!(messages.len(), local.len(), "{configured}");

        // The CLI finds the same domain by the other spelling: no second domain (example.test
        // is the other), no second alice.
        let other = if configured.is_ascii() {
            "bücher.test"
        } else {
            "xn--bcher-kva.test"
        };
        let add = server.admin(&["domain", "add", other], None);
        let listed = server.admin_ok(&["domain", "list"], None);
        assert_eq!(
            listed.lines().count(),
            2,
            "{configured} + {other}: {listed} {add:?}"
        );
        let again = server.admin(
            &["user", "add", &format!("alice@{other}")],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(!again.status.success(), "alice@{other} added twice");
        server.admin_ok(
            &[
                "alias",
                "add",
                &format!("books@{other}"),
                &format!("alice@{configured}"),
            ],
            None,
        );
        assert_eq!(
            rcpt(&server, "BOOKS@xn--bcher-kva.test"),
            "250 2.1.5 Recipient OK"
        );
    }
}
