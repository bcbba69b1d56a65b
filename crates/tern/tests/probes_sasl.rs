//! Probe of SASL continuations carrying invalid base64 (security issue 17), through the real
//! binary: many concurrent IMAP and SMTP sessions send malformed PLAIN, LOGIN and
//! SCRAM-SHA-256 responses at every step. Only those exchanges fail, each with a clean
//! protocol error; the sessions themselves go on, and the account's owner logs in at once
//! meanwhile from another address.
//!
//! Covered elsewhere and not repeated here: wrong passwords and lockout
//! (`tests/login_throttle.rs`), SASL decoding in the codec's unit tests.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use support::wire::Wire;
use support::{PASSWORD, TestServer};

/// Sessions per protocol sending malformed responses at once (under the 50 connections
/// allowed per address).
const SESSIONS: usize = 20;

/// Not base64 in different ways: invalid characters, misplaced padding, a bad length.
const GARBAGE: [&str; 3] = ["!!!not*base64", "=AAA", "AAA"];

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// SCRAM client-first message (RFC 5802 §7) and LOGIN user name: valid, so the exchange
/// reaches its second step.
fn first_steps() -> [(&'static str, Option<String>); 3] {
    [
        ("PLAIN", None),
        ("LOGIN", Some(b64("alice@example.test"))),
        (
            "SCRAM-SHA-256",
            Some(b64("n,,n=alice@example.test,r=rOprNGfwEbeRWgbNEkqO")),
        ),
    ]
}

/// One IMAP session: every mechanism gets garbage at its first and (where there is one)
/// second step; each answer must be a tagged BAD, then the session still works.
fn imap_garbage(server_addr: std::net::SocketAddr, start: &Barrier) {
    let mut wire = Wire::connect(server_addr);
    assert!(wire.line().starts_with("* OK "));
    start.wait();
    for garbage in GARBAGE {
        for (mechanism, first) in first_steps() {
            wire.send(format!("a AUTHENTICATE {mechanism}\r\n"));
            assert!(wire.line().starts_with("+ "), "{mechanism}");
            if let Some(first) = &first {
                wire.send(format!("{first}\r\n"));
                let challenge = wire.line();
                assert!(challenge.starts_with("+ "), "{mechanism}: {challenge}");
            }
            wire.send(format!("{garbage}\r\n"));
            assert_eq!(
                wire.line(),
                "a BAD Malformed authentication data: invalid base64 in SASL response",
                "{mechanism} {garbage}"
            );
        }
    }
    assert_eq!(wire.imap("n", "NOOP").1, "n OK NOOP completed");
}

/// The same over SMTP submission: 501 5.5.2 each time.
fn smtp_garbage(server_addr: std::net::SocketAddr, start: &Barrier) {
    let mut wire = Wire::connect(server_addr);
    assert!(wire.smtp_reply()[0].starts_with("220 "));
    assert!(wire.smtp("EHLO client.test").starts_with("250 "));
    start.wait();
    for garbage in GARBAGE {
        for (mechanism, first) in first_steps() {
            assert!(wire.smtp(&format!("AUTH {mechanism}")).starts_with("334 "));
            if let Some(first) = &first {
                let challenge = wire.smtp(first);
                assert!(challenge.starts_with("334 "), "{mechanism}: {challenge}");
            }
            assert_eq!(
                wire.smtp(garbage),
                "501 5.5.2 Invalid base64 data",
                "{mechanism} {garbage}"
            );
        }
    }
    assert_eq!(wire.smtp("NOOP"), "250 2.0.0 OK");
}

#[test]
fn invalid_base64_in_sasl_continuations_on_many_sessions_fails_only_those_exchanges() {
    let server = TestServer::start(&["imap", "submission"], &["alice"]);
    let (imap, submission) = (server.addr("imap"), server.addr("submission"));
    let start = Arc::new(Barrier::new(2 * SESSIONS + 1));
    let mut workers = Vec::new();
    for _ in 0..SESSIONS {
        let start_imap = Arc::clone(&start);
        workers.push(thread::spawn(move || imap_garbage(imap, &start_imap)));
        let start_smtp = Arc::clone(&start);
        workers.push(thread::spawn(move || smtp_garbage(submission, &start_smtp)));
    }
    start.wait();
    // Meanwhile the owner logs in from another address, with the same mechanisms.
    let owner = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let started = Instant::now();
    let mut wire = Wire::connect_from(owner, imap);
    assert!(wire.line().starts_with("* OK "));
    let plain = b64(&format!("\0alice@example.test\0{PASSWORD}"));
    let (_, ok) = wire.imap("a", &format!("AUTHENTICATE PLAIN {plain}"));
    assert!(ok.starts_with("a OK "), "{ok}");
    let mut wire = Wire::connect_from(owner, submission);
    assert!(wire.smtp_reply()[0].starts_with("220 "));
    assert!(wire.smtp("EHLO client.test").starts_with("250 "));
    assert_eq!(
        wire.smtp(&format!("AUTH PLAIN {plain}")),
        "235 2.7.0 Authentication successful"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the owner waited {:?}",
        started.elapsed()
    );
    for worker in workers {
        worker
            .join()
            .expect("a malformed-SASL session got an unexpected answer");
    }
}
