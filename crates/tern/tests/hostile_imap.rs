//! Hostile IMAP clients against the real binary: names that try to reach another user's
//! mailboxes, STARTTLS command injection, LOGIN brute force, oversized and unterminated
//! literals, a 100 MB command line, deep nesting, invalid UTF-8 and modified UTF-7,
//! disconnects at every protocol step, slowloris clients, connection floods and 200
//! simultaneous logins. Every case asserts the exact reply and that the server still serves a
//! normal client.
//!
//! Covered elsewhere and not repeated here: logins, CAPABILITY, mailbox management and message
//! commands with real clients (`tests/imap.rs`).

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use support::wire::{Wire, connection_burst, slowloris, stream_long_line};
use support::{PASSWORD, TestServer, python};

const ALICE_MESSAGE: &[u8] = b"From: a@example.org\r\nSubject: alice-1\r\n\r\nhello alice\r\n";
const BOB_MESSAGE: &[u8] = b"From: b@example.org\r\nSubject: bob-secret\r\n\r\nfor bob only\r\n";

/// alice and bob with one message each in INBOX.
fn server_with(extra_toml: &str) -> TestServer {
    let mut server = TestServer::prepare(&["imap", "imaps"], &["alice", "bob"], extra_toml);
    server.seed_inbox("alice", &[ALICE_MESSAGE]);
    server.seed_inbox("bob", &[BOB_MESSAGE]);
    server.launch();
    server
}

fn greeted(server: &TestServer) -> Wire {
    let mut wire = Wire::connect(server.addr("imap"));
    let greeting = wire.line();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    wire
}

fn login(server: &TestServer, user: &str) -> Wire {
    let mut wire = greeted(server);
    let (_, ok) = wire.imap("l", &format!("LOGIN {user}@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK [CAPABILITY "), "{ok}");
    wire
}

/// A normal client: logs in, selects INBOX and returns the message count and subjects.
fn inbox(server: &TestServer, user: &str) -> Vec<String> {
    let mut wire = login(server, user);
    let (untagged, ok) = wire.imap("s", "EXAMINE INBOX");
    assert_eq!(ok, "s OK [READ-ONLY] EXAMINE completed");
    let exists: usize = untagged
        .iter()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
        .expect("EXISTS");
    let mut subjects = Vec::new();
    if exists > 0 {
        let (lines, ok) = wire.imap("f", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
        assert_eq!(ok, "f OK FETCH completed");
        subjects = lines
            .iter()
            .filter_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
            .collect();
    }
    assert_eq!(subjects.len(), exists, "{subjects:?}");
    let (_, ok) = wire.imap("o", "LOGOUT");
    assert_eq!(ok, "o OK LOGOUT completed");
    subjects
}

/// Every mailbox name alice's LIST shows.
fn mailboxes(wire: &mut Wire) -> Vec<String> {
    let (lines, ok) = wire.imap("ls", "LIST \"\" \"*\"");
    assert_eq!(ok, "ls OK LIST completed");
    lines
        .iter()
        .filter_map(|l| l.rsplit_once(" \"/\" ").map(|(_, n)| n.to_owned()))
        .collect()
}

const DEFAULT_MAILBOXES: [&str; 6] = [
    "\"Archive\"",
    "\"Drafts\"",
    "\"INBOX\"",
    "\"Junk\"",
    "\"Sent\"",
    "\"Trash\"",
];

#[test]
fn mailbox_names_never_reach_another_users_mail() {
    let server = server_with("");
    let mut wire = login(&server, "alice");
    // (name, why it is refused) for names that try to leave alice's namespace.
    let hostile = [
        ("..", "Invalid hierarchy level"),
        ("../x", "Invalid hierarchy level"),
        ("../bob/INBOX", "Invalid hierarchy level"),
        ("INBOX/../../bob", "Invalid hierarchy level"),
        (".", "Invalid hierarchy level"),
        ("~bob", "No such namespace"),
        ("~bob/INBOX", "No such namespace"),
        ("#shared", "No such namespace"),
        ("#shared/bob", "No such namespace"),
        ("#news.comp.mail", "No such namespace"),
        (
            "/INBOX",
            "Mailbox names do not start with the hierarchy delimiter",
        ),
        ("INBOX//x", "Empty hierarchy level"),
        ("*", "Wildcards in mailbox name"),
        ("bob%", "Wildcards in mailbox name"),
    ];
    for (name, why) in hostile {
        let q = format!("\"{name}\"");
        for (command, code) in [
            (format!("SELECT {q}"), "NONEXISTENT"),
            (format!("EXAMINE {q}"), "NONEXISTENT"),
            (format!("STATUS {q} (MESSAGES)"), "NONEXISTENT"),
            (format!("CREATE {q}"), "CANNOT"),
            (format!("DELETE {q}"), "NONEXISTENT"),
            (format!("RENAME {q} stolen"), "NONEXISTENT"),
            (format!("RENAME Drafts {q}"), "CANNOT"),
        ] {
            let (untagged, tagged) = wire.imap("h", &command);
            assert_eq!(tagged, format!("h NO [{code}] {why}"), "{command}");
            assert!(
                untagged.iter().all(|l| l.starts_with("* OK [CLOSED]")),
                "{command}: {untagged:?}"
            );
        }
        // LIST with the name as reference or pattern lists nothing of anybody (wildcards
        // would match alice's own names).
        if name.contains(['*', '%']) {
            continue;
        }
        for command in [format!("LIST {q} \"*\""), format!("LIST \"\" \"{name}/*\"")] {
            let (untagged, tagged) = wire.imap("l", &command);
            assert_eq!(tagged, "l OK LIST completed", "{command}");
            assert!(untagged.is_empty(), "{command}: {untagged:?}");
        }
    }
    // Messages cannot be copied, moved or appended there either, and no TRYCREATE invites
    // a CREATE that would be refused (RFC 9051 §6.4.7).
    let (_, ok) = wire.imap("s", "SELECT INBOX");
    assert_eq!(ok, "s OK [READ-WRITE] SELECT completed");
    for (command, why) in [
        ("COPY 1 \"~bob/INBOX\"", "No such namespace"),
        ("MOVE 1 \"../bob/INBOX\"", "Invalid hierarchy level"),
        ("UID COPY 1:* \"#shared/bob\"", "No such namespace"),
    ] {
        let (_, tagged) = wire.imap("c", command);
        assert_eq!(tagged, format!("c NO [CANNOT] {why}"), "{command}");
    }
    wire.send("a APPEND \"~bob/INBOX\" {5+}\r\nhello\r\n");
    assert_eq!(wire.imap_until("a").1, "a NO [CANNOT] No such namespace");
    // `Other Users/bob` is an ordinary name in alice's own namespace: not there until she
    // creates it, and then hers and empty.
    let (_, tagged) = wire.imap("o", "SELECT \"Other Users/bob\"");
    assert_eq!(tagged, "o NO [NONEXISTENT] No such mailbox");
    let (_, tagged) = wire.imap("o", "CREATE \"Other Users/bob\"");
    assert_eq!(tagged, "o OK CREATE completed");
    let (untagged, tagged) = wire.imap("o", "STATUS \"Other Users/bob\" (MESSAGES)");
    assert_eq!(tagged, "o OK STATUS completed");
    assert_eq!(untagged, ["* STATUS \"Other Users/bob\" (MESSAGES 0)"]);
    let (_, tagged) = wire.imap("o", "DELETE \"Other Users/bob\"");
    assert_eq!(tagged, "o OK DELETE completed");
    // Nothing was created by the refused commands; bob's mail is where it was.
    assert_eq!(
        mailboxes(&mut wire)
            .iter()
            .filter(|n| !n.starts_with("\"Other Users"))
            .collect::<Vec<_>>(),
        DEFAULT_MAILBOXES
    );
    drop(wire);
    assert_eq!(inbox(&server, "bob"), ["bob-secret"]);
    assert_eq!(inbox(&server, "alice"), ["alice-1"]);
}

#[test]
fn control_characters_invalid_utf8_and_bad_modified_utf7_are_refused() {
    let server = server_with("");
    let mut wire = login(&server, "alice");
    let control = "x BAD mailbox name has a control character";
    for raw in [
        &b"x CREATE \"a\x01b\""[..],
        b"x CREATE \"a\x7fb\"",
        b"x SELECT \"\x1b[31mred\"",
        b"x CREATE {3}\r\na\x01b",
    ] {
        check(&mut wire, raw, control);
    }
    let non_ascii = "x BAD mailbox name has a non-ASCII octet; use modified UTF-7";
    for raw in [&b"x CREATE \"\xff\xfe\""[..], b"x SELECT \"caf\xc3\""] {
        check(&mut wire, raw, non_ascii);
    }
    for (raw, expected) in [
        (
            &b"x CREATE \"&Jjo\""[..],
            "x BAD unterminated modified UTF-7 shift sequence",
        ),
        (
            b"x CREATE \"&ZeVnLIqe\"",
            "x BAD unterminated modified UTF-7 shift sequence",
        ),
        (b"x SELECT \"&AGE-\"", "x BAD non-canonical modified UTF-7"),
        (
            b"x STATUS \"&2D0-\" (MESSAGES)",
            "x BAD invalid UTF-16 in modified UTF-7 shift sequence",
        ),
        (
            b"x LOGIN \"\xff\" \"\xfe\"",
            "x BAD string is not valid UTF-8",
        ),
        (b"x\xff NOOP", "x BAD expected a space"),
    ] {
        check(&mut wire, raw, expected);
    }
    // With UTF8=ACCEPT names are UTF-8: invalid UTF-8 is refused, control characters too.
    let (untagged, tagged) = wire.imap("e", "ENABLE UTF8=ACCEPT");
    assert_eq!(
        (untagged.as_slice(), tagged.as_str()),
        (
            &["* ENABLED UTF8=ACCEPT".to_owned()][..],
            "e OK ENABLE completed"
        )
    );
    check(
        &mut wire,
        b"x CREATE \"a\xffb\"",
        "x BAD string is not valid UTF-8",
    );
    check(
        &mut wire,
        b"x CREATE \"\xc0\xafetc\"",
        "x BAD string is not valid UTF-8",
    );
    check(
        &mut wire,
        b"x CREATE \"a\x01b\"",
        "x NO [CANNOT] Control characters in mailbox name",
    );
    check(
        &mut wire,
        "x CREATE \"été\"".as_bytes(),
        "x OK CREATE completed",
    );
    let names = mailboxes(&mut wire);
    assert!(names.contains(&"\"été\"".to_owned()), "{names:?}");
    assert_eq!(names.len(), DEFAULT_MAILBOXES.len() + 1, "{names:?}");
    // An invalid octet before any tag.
    wire.send(b"\xff\xfe\r\n");
    assert_eq!(wire.line(), "* BAD missing or invalid tag");
    assert_eq!(wire.imap("n", "NOOP").1, "n OK NOOP completed");
}

/// Sends `raw` (tag `x`) and checks the tagged reply; a NOOP after it keeps the limit on
/// consecutive errors away.
fn check(wire: &mut Wire, raw: &[u8], expected: &str) {
    wire.send(raw);
    wire.send(b"\r\n");
    let (_, tagged) = wire.imap_until("x");
    assert_eq!(tagged, expected, "{:?}", String::from_utf8_lossy(raw));
    assert_eq!(wire.imap("n", "NOOP").1, "n OK NOOP completed");
}

fn starttls_inject(server: &TestServer, args: &[&str]) -> Value {
    let port = server.port("imap").to_string();
    let mut all = vec!["127.0.0.1", port.as_str(), "imap"];
    all.extend_from_slice(args);
    serde_json::from_str(&python("starttls_inject.py", &all)).expect("json")
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let server = server_with("");
    let injected = format!(
        "i1 LOGIN alice@example.test {PASSWORD}\\r\\ni2 SELECT INBOX\\r\\ni3 DELETE Drafts\\r\\n"
    );
    let v = starttls_inject(
        &server,
        &[&injected, "t1 NOOP", "t2 SELECT INBOX", "t3 LOGOUT"],
    );
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(
        v["upgrade"],
        serde_json::json!(["s1 OK Begin TLS negotiation now"])
    );
    assert_eq!(
        v["replies"],
        serde_json::json!([
            ["t1 OK NOOP completed"],
            ["t2 BAD Not authenticated"],
            ["* BYE Logging out", "t3 OK LOGOUT completed"]
        ])
    );
    // The injected DELETE did not happen either.
    let mut wire = login(&server, "alice");
    assert_eq!(mailboxes(&mut wire), DEFAULT_MAILBOXES);
}

#[test]
fn login_brute_force_is_slowed_then_blocked_per_address_and_never_locks_the_account() {
    let server = server_with(
        "[auth]\nallow_plaintext_on_loopback = true\nmax_failures_per_account = 3\n\
         max_failures_per_ip = 5\n",
    );
    let failed = "NO [AUTHENTICATIONFAILED] Authentication failed";
    let mut wire = greeted(&server);
    for guess in ["guess-1", "guess-2", "guess-3"] {
        let (_, tagged) = wire.imap("a", &format!("LOGIN alice@example.test {guess}"));
        assert_eq!(tagged, format!("a {failed}"));
    }
    // The account is not locked: its owner logs in from another address at once.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut elsewhere = Wire::connect_from(other, server.addr("imap"));
    elsewhere.line();
    let (_, tagged) = elsewhere.imap("b", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(tagged.starts_with("b OK [CAPABILITY "), "{tagged}");
    // From the failing address the right password is delayed (tarpit), not refused.
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0alice@example.test\0{PASSWORD}"));
    let (_, tagged) = wire.imap("c", &format!("AUTHENTICATE PLAIN {plain}"));
    assert!(tagged.starts_with("c OK [CAPABILITY "), "{tagged}");
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("login delayed") && l.contains("ip=127.0.0.1 ")),
        "{log}"
    );
    // Spraying other names from the address: the fifth failure blocks it (logged), and then
    // even the right password is refused, whatever the mechanism; another address is not
    // affected.
    let mut wire = greeted(&server);
    for user in ["admin", "root", "test", "info", "sales"] {
        let (_, tagged) = wire.imap("d", &format!("LOGIN {user}@example.test {PASSWORD}"));
        assert_eq!(tagged, format!("d {failed}"));
    }
    let blocked = "NO [UNAVAILABLE] Too many failed logins; retry in 29";
    let (_, tagged) = wire.imap("e", &format!("LOGIN bob@example.test {PASSWORD}"));
    assert!(tagged.starts_with(&format!("e {blocked}")), "{tagged}");
    let (_, tagged) = wire.imap("f", &format!("AUTHENTICATE PLAIN {plain}"));
    assert!(tagged.starts_with(&format!("f {blocked}")), "{tagged}");
    let mut elsewhere = Wire::connect_from(other, server.addr("imap"));
    elsewhere.line();
    let (_, tagged) = elsewhere.imap("g", &format!("LOGIN bob@example.test {PASSWORD}"));
    assert!(tagged.starts_with("g OK [CAPABILITY "), "{tagged}");
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
fn oversized_and_unterminated_literals_are_refused_and_nothing_is_buffered() {
    let server = server_with("[limits]\nmax_message_size = 1000000\n");
    let mut wire = greeted(&server);
    // Before login: no literal worth buffering, synchronizing or not.
    for (command, expected) in [
        ("a LOGIN {100000}", "a NO [TOOBIG] Literal too big"),
        ("b LOGIN {4294967296}", "b NO [TOOBIG] Literal too big"),
        ("c LOGIN {5", "c BAD invalid literal"),
        ("d LOGIN alice@example.test {5", "d BAD invalid literal"),
    ] {
        wire.send(format!("{command}\r\n"));
        assert_eq!(wire.line(), expected, "{command}");
    }
    wire.send("e LOGIN {100000+}\r\n");
    wire.send(vec![b'x'; 100_000]);
    wire.send(" x\r\n");
    assert_eq!(wire.line(), "e BAD [TOOBIG] Literal too big");
    assert_eq!(wire.imap("f", "NOOP").1, "f OK NOOP completed");
    let (_, ok) = wire.imap("g", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("g OK"), "{ok}");
    // After login APPENDLIMIT (the 1000000 octets configured) applies.
    for (command, expected) in [
        ("h APPEND INBOX {1000001}", "h NO [TOOBIG] Literal too big"),
        (
            "i APPEND INBOX {4294967296}",
            "i NO [TOOBIG] Literal too big",
        ),
        (
            "j APPEND INBOX {18446744073709551616}",
            "j NO [TOOBIG] Literal too big",
        ),
        (
            "k APPEND INBOX {99999999999999999999999999}",
            "k NO [TOOBIG] Literal too big",
        ),
    ] {
        wire.send(format!("{command}\r\n"));
        assert_eq!(wire.line(), expected, "{command}");
    }
    // A LITERAL+ over the limit is read and dropped, never taken for commands.
    let (rss_before, peak_before) = server.memory_kib();
    wire.send("l APPEND INBOX {3000000+}\r\n");
    wire.send(b"m DELETE Drafts\r\n".repeat(3_000_000 / 17));
    wire.send(vec![b'x'; 3_000_000 % 17]);
    wire.send("\r\n");
    assert_eq!(wire.line(), "l BAD [TOOBIG] Literal too big");
    assert_eq!(wire.imap("n", "NOOP").1, "n OK NOOP completed");
    let (rss, peak) = server.memory_kib();
    assert!(
        rss.saturating_sub(rss_before) < 8 * 1024 && peak.saturating_sub(peak_before) < 8 * 1024,
        "memory grew: RSS {rss_before} -> {rss} KiB, peak {peak_before} -> {peak} KiB"
    );
    // MULTIAPPEND whose second message is too big stores neither (checked below).
    wire.send("o APPEND INBOX {5+}\r\nhello {2000000+}\r\n");
    assert_eq!(wire.line(), "o BAD [TOOBIG] Literal too big");
    wire.send(vec![b'y'; 2_000_000]);
    wire.send("\r\n");
    assert_eq!(wire.imap("p", "NOOP").1, "p OK NOOP completed");
    assert_eq!(mailboxes(&mut wire), DEFAULT_MAILBOXES);
    drop(wire);
    assert_eq!(inbox(&server, "alice"), ["alice-1"]);
}

#[test]
fn deep_nesting_is_refused_without_crashing() {
    let server = server_with("");
    let mut wire = login(&server, "alice");
    assert_eq!(
        wire.imap("s", "SELECT INBOX").1,
        "s OK [READ-WRITE] SELECT completed"
    );
    let deep = "x BAD too deeply nested";
    for command in [
        format!("SEARCH {}ALL{}", "(".repeat(30_000), ")".repeat(30_000)),
        format!("SEARCH {}ALL", "NOT ".repeat(15_000)),
        format!("SEARCH {}ALL", "OR ALL ".repeat(9_000)),
        format!("UID SEARCH {}", "(".repeat(60_000)),
    ] {
        assert_eq!(wire.imap("x", &command).1, deep);
        assert_eq!(wire.imap("n", "NOOP").1, "n OK NOOP completed");
    }
    assert_eq!(
        wire.imap(
            "x",
            &format!("FETCH 1 {}FLAGS{}", "(".repeat(30_000), ")".repeat(30_000))
        )
        .1,
        "x BAD unknown FETCH item"
    );
    // A section path thousands of parts deep names nothing.
    let (untagged, tagged) = wire.imap(
        "y",
        &format!("FETCH 1 (BODY.PEEK[{}1])", "1.".repeat(5_000)),
    );
    assert_eq!(tagged, "y OK FETCH completed");
    assert_eq!(untagged.len(), 1);
    assert!(
        untagged[0].ends_with("] NIL)"),
        "{}",
        &untagged[0][untagged[0].len() - 40..]
    );
    assert_eq!(wire.imap("z", "SEARCH ALL").0, ["* SEARCH 1"]);
}

#[test]
fn a_100_mb_command_line_is_refused_without_being_buffered() {
    let server = server_with("");
    let mut wire = greeted(&server);
    let grown = stream_long_line(&server, &mut wire, b"x LOGIN ", 100 << 20);
    // The error comes as soon as the line is too long; the rest is dropped as it arrives.
    assert_eq!(wire.line(), "x BAD Command line too long");
    assert_eq!(wire.imap("y", "NOOP").1, "y OK NOOP completed");
    assert!(grown < 16 * 1024, "server memory grew by {grown} KiB");
    let (_, ok) = wire.imap("z", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("z OK"), "{ok}");
}

#[derive(Clone, Copy, Debug)]
enum Leave {
    Close,
    Reset,
}

#[test]
fn disconnects_at_every_step_leave_nothing_behind_and_the_server_serves_on() {
    let big = {
        let mut m = b"Subject: big\r\n\r\n".to_vec();
        while m.len() < 2_000_000 {
            m.extend_from_slice(&[b'z'; 998]);
            m.extend_from_slice(b"\r\n");
        }
        m
    };
    let mut server = TestServer::prepare(&["imap", "imaps"], &["alice"], "");
    server.seed_inbox("alice", &[ALICE_MESSAGE, &big]);
    server.launch();
    let login_line = format!("l LOGIN alice@example.test {PASSWORD}\r\n");
    let selected = format!("{login_line}s SELECT INBOX\r\n");
    // (step, listener, what the client sends before it vanishes)
    let steps: Vec<(&str, &str, Vec<u8>)> = vec![
        ("after the greeting", "imap", Vec::new()),
        ("mid-command", "imap", b"a LOG".to_vec()),
        ("mid-literal before login", "imap", b"a LOGIN {18}\r\nalice@ex".to_vec()),
        ("mid-AUTHENTICATE", "imap", b"a AUTHENTICATE PLAIN\r\n".to_vec()),
        (
            "mid-APPEND literal",
            "imap",
            format!("{login_line}a APPEND INBOX {{100}}\r\nSubject: partial\r\n\r\nhal").into(),
        ),
        (
            "mid-APPEND LITERAL+",
            "imap",
            format!("{login_line}a APPEND INBOX {{100+}}\r\nSubject: partial+\r\n\r\nhal").into(),
        ),
        (
            "mid-MULTIAPPEND",
            "imap",
            format!(
                "{login_line}a APPEND INBOX {{18+}}\r\nSubject: first\r\n\r\n {{100+}}\r\nSubject: second\r\n"
            )
            .into(),
        ),
        (
            "after APPEND without its final CRLF",
            "imap",
            format!("{login_line}a APPEND INBOX {{18+}}\r\nSubject: whole\r\n\r\n").into(),
        ),
        ("in IDLE", "imap", format!("{selected}i IDLE\r\n").into()),
        (
            "mid-FETCH of a large message",
            "imap",
            format!("{selected}f FETCH 1:* BODY[]\r\n").into(),
        ),
        (
            "after STORE before EXPUNGE",
            "imap",
            format!("{selected}d STORE 1:* +FLAGS.SILENT (\\Deleted)\r\nd2 STORE 1:* -FLAGS.SILENT (\\Deleted)\r\n").into(),
        ),
        ("after STARTTLS", "imap", b"t STARTTLS\r\n".to_vec()),
        (
            "mid-TLS handshake",
            "imap",
            b"t STARTTLS\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        ("mid-implicit-TLS handshake", "imaps", b"\x16\x03\x01".to_vec()),
    ];
    for (step, listener, input) in steps {
        for how in [Leave::Close, Leave::Reset] {
            let mut wire = Wire::connect(server.addr(listener));
            if listener == "imap" {
                assert!(wire.line().starts_with("* OK "));
            }
            wire.send(&input);
            thread::sleep(Duration::from_millis(20));
            match how {
                Leave::Close => drop(wire),
                Leave::Reset => wire.reset(),
            }
            // A normal client is served at once and sees exactly the two messages.
            assert_eq!(
                inbox(&server, "alice"),
                ["alice-1", "big"],
                "after {step} ({how:?})"
            );
        }
    }
    // The server is still the same process.
    assert!(server.is_running());
}

#[test]
fn slowloris_clients_do_not_delay_others_and_are_cut_off_by_the_login_timeout() {
    let server = server_with("[limits]\nidle_timeout_seconds = 2\n");
    let slow: Vec<_> = (0..10)
        .map(|_| {
            slowloris(
                server.addr("imap"),
                b"a LOGIN alice@example.test secret",
                Duration::from_secs(1),
                Duration::from_secs(8),
            )
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(inbox(&server, "alice"), ["alice-1"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "a normal client took {took:?}"
    );
    for handle in slow {
        let (sent, said, after) = handle.join().expect("slow client");
        assert!(sent >= 2, "sent {sent}");
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("* OK [CAPABILITY "), "{said:?}");
        assert_eq!(said[1], "* BYE Autologout; idle for too long");
        assert!(after < Duration::from_secs(4), "cut off after {after:?}");
    }
}

#[test]
fn a_connection_flood_from_one_address_gets_bye_and_others_are_served() {
    let server = server_with("[limits]\nmax_connections_per_ip = 4\n");
    let held: Vec<Wire> = (0..4).map(|_| greeted(&server)).collect();
    let mut wire = Wire::connect(server.addr("imap"));
    assert_eq!(
        wire.expect_close(Duration::from_secs(5)),
        ["* BYE Too many connections"]
    );
    // Implicit TLS: no text, just the close.
    let mut wire = Wire::connect(server.addr("imaps"));
    assert!(wire.expect_close(Duration::from_secs(5)).is_empty());
    let burst = connection_burst(server.addr("imap"), 4, 100);
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut wire = Wire::connect_from(other, server.addr("imap"));
    assert!(wire.line().starts_with("* OK [CAPABILITY "));
    let (_, ok) = wire.imap("l", &format!("LOGIN bob@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK"), "{ok}");
    for b in burst {
        b.join().expect("burst");
    }
    for mut wire in held {
        assert_eq!(wire.imap("o", "LOGOUT").1, "o OK LOGOUT completed");
        wire.expect_close(Duration::from_secs(5));
    }
    thread::sleep(Duration::from_millis(50));
    // All four slots are free again.
    let again: Vec<Wire> = (0..4).map(|_| greeted(&server)).collect();
    for mut wire in again {
        assert_eq!(wire.imap("o", "LOGOUT").1, "o OK LOGOUT completed");
        wire.expect_close(Duration::from_secs(5));
    }
    thread::sleep(Duration::from_millis(50));
    assert_eq!(inbox(&server, "alice"), ["alice-1"]);
}

#[test]
fn two_hundred_simultaneous_logins_all_succeed_within_the_per_address_limit() {
    let server = server_with("");
    // The default per-address limit is 50: 200 clients come from four loopback addresses,
    // 50 each, so every one of them must get in; a 51st from one address is refused.
    const CLIENTS: usize = 200;
    let addr = server.addr("imap");
    // Steady state, as when clients reconnect: each password was verified once (argon2) and
    // is in the verification cache. Cold logins cost one argon2 each, at most
    // `max_concurrent_hashes` at a time; that cost is measured in docs/benchmarks.md.
    // (From an address the 200 do not use, so its slot cannot be counted against them.)
    for user in ["alice", "bob"] {
        let mut wire = Wire::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)), addr);
        wire.line();
        let (_, ok) = wire.imap("l", &format!("LOGIN {user}@example.test {PASSWORD}"));
        assert!(ok.starts_with("l OK"), "{ok}");
    }
    // Gates the clients wait at (a read lock) until the test opens them (drops its write
    // lock); if the test fails, unwinding opens them, so nothing hangs.
    let login_gate = Arc::new(RwLock::new(()));
    let logout_gate = Arc::new(RwLock::new(()));
    let closed_login = login_gate.write().expect("gate");
    let closed_logout = logout_gate.write().expect("gate");
    let (tx, rx) = mpsc::channel::<&'static str>();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (login_gate, logout_gate, tx) = (
                Arc::clone(&login_gate),
                Arc::clone(&logout_gate),
                tx.clone(),
            );
            thread::spawn(move || {
                let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 4) as u8));
                let mut wire = Wire::connect_from(ip, addr);
                wire.set_timeout(Duration::from_secs(60));
                let greeting = wire.line();
                assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting}");
                tx.send("connected").expect("send");
                // Everybody is connected: now all log in at once.
                drop(login_gate.read());
                let user = if i % 2 == 0 { "alice" } else { "bob" };
                let (_, ok) = wire.imap("l", &format!("LOGIN {user}@example.test {PASSWORD}"));
                assert!(ok.starts_with("l OK [CAPABILITY "), "client {i}: {ok}");
                let (untagged, ok) = wire.imap("s", "EXAMINE INBOX");
                assert_eq!(ok, "s OK [READ-ONLY] EXAMINE completed");
                assert!(untagged.contains(&"* 1 EXISTS".to_owned()), "{untagged:?}");
                tx.send("logged in").expect("send");
                // Hold the session until every client is in.
                drop(logout_gate.read());
                assert_eq!(wire.imap("o", "LOGOUT").1, "o OK LOGOUT completed");
            })
        })
        .collect();
    let wait_for = |what: &str| {
        for n in 0..CLIENTS {
            let got = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("only {n} clients {what}"));
            assert_eq!(got, what);
        }
    };
    wait_for("connected");
    let started = Instant::now();
    drop(closed_login);
    wait_for("logged in");
    let took = started.elapsed();
    // While all 200 are connected, one more from a full address gets the refusal.
    let mut extra = Wire::connect(addr);
    assert_eq!(
        extra.expect_close(Duration::from_secs(5)),
        ["* BYE Too many connections"]
    );
    drop(closed_logout);
    for c in clients {
        c.join().expect("client");
    }
    eprintln!("200 simultaneous logins took {took:?}");
    assert!(took < Duration::from_secs(30), "logins took {took:?}");
}

#[test]
fn a_client_that_never_reads_its_replies_is_dropped_after_the_timeout() {
    let server = server_with("[limits]\nidle_timeout_seconds = 2\nmax_connections_per_ip = 1\n");
    support::wire::assert_stalled_reader_is_dropped(
        server.addr("imap"),
        |wire| assert!(wire.line().starts_with("* OK [CAPABILITY ")),
        b"a CAPABILITY\r\n",
        "* BYE Too many connections",
        Duration::from_secs(8),
    );
    thread::sleep(Duration::from_millis(100));
    let mut wire = login(&server, "alice");
    assert_eq!(wire.imap("o", "LOGOUT").1, "o OK LOGOUT completed");
}
