//! Hostile POP3 clients against the real binary: logging in as another user, STLS command
//! injection, USER/PASS and AUTH brute force, invalid UTF-8, a 100 MB command line,
//! disconnects at every protocol step (the maildrop lock must always be released),
//! slowloris clients and connection floods. Every case asserts the exact reply and that the
//! server still serves a normal client.
//!
//! Covered elsewhere and not repeated here (`tests/pop3.rs`): wrong password and unknown user
//! refused alike, an over-long line, an unknown command, invalid UTF-8 as a whole line, the
//! IN-USE lock for a second session, and DELE then disconnect keeping the messages.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use support::wire::{Wire, connection_burst, slowloris, stream_long_line};
use support::{PASSWORD, TestServer, python};

const FIRST: &[u8] = b"From: a@example.org\r\nSubject: one\r\n\r\nfirst\r\n";
const SECOND: &[u8] = b"From: b@example.org\r\nSubject: two\r\n\r\nsecond\r\n";
const BOB: &[u8] = b"From: c@example.org\r\nSubject: bob-secret\r\n\r\nfor bob only\r\n";
/// carol's password differs from everybody else's.
const CAROL_PASSWORD: &str = "carol-password-2";

/// alice with two messages, bob with one, carol with none (and her own password).
fn server_with(extra_toml: &str) -> TestServer {
    let mut server = TestServer::prepare(&["pop3", "pop3s"], &["alice", "bob"], extra_toml);
    server.admin_ok(
        &["user", "add", "carol@example.test"],
        Some(&format!("{CAROL_PASSWORD}\n")),
    );
    server.seed_inbox("alice", &[FIRST, SECOND]);
    server.seed_inbox("bob", &[BOB]);
    server.launch();
    server
}

fn alice_logged_in() -> String {
    format!(
        "+OK Logged in, 2 messages ({} octets)",
        FIRST.len() + SECOND.len()
    )
}

fn alice_stat() -> String {
    format!("+OK 2 {}", FIRST.len() + SECOND.len())
}

fn greeted(server: &TestServer) -> Wire {
    let mut wire = Wire::connect(server.addr("pop3"));
    assert_eq!(wire.line(), "+OK mail.example.test POP3 ready");
    wire
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Logs `user` in with USER/PASS; returns the reply to PASS.
fn user_pass(wire: &mut Wire, user: &str, password: &str) -> String {
    assert_eq!(wire.pop3(&format!("USER {user}")), "+OK Send PASS");
    wire.pop3(&format!("PASS {password}"))
}

/// A normal client logs in as `user` (waiting up to 3 s for a maildrop lock held by a
/// session that has just gone away) and returns the STAT reply.
fn stat(server: &TestServer, user: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut wire = greeted(server);
        let reply = user_pass(&mut wire, &format!("{user}@example.test"), PASSWORD);
        if reply.starts_with("-ERR [IN-USE]") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert!(reply.starts_with("+OK Logged in"), "{reply}");
        let stat = wire.pop3("STAT");
        let left = stat.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(
            wire.pop3("QUIT"),
            format!("+OK mail.example.test POP3 server signing off ({left} messages left)")
        );
        return stat;
    }
}

#[test]
fn nobody_logs_in_as_another_user() {
    // Throttling off (0 = no limit), so that the many failures below are each answered on
    // their own merits.
    let server = server_with(
        "[auth]\nallow_plaintext_on_loopback = true\nmax_failures_per_account = 0\n\
         max_failures_per_ip = 0\n",
    );
    let failed = "-ERR [AUTH] Authentication failed";
    // Another user's name with one's own password (carol's differs from alice's), both ways.
    let mut wire = greeted(&server);
    assert_eq!(
        user_pass(&mut wire, "alice@example.test", CAROL_PASSWORD),
        failed
    );
    assert_eq!(user_pass(&mut wire, "carol@example.test", PASSWORD), failed);
    // Names that might be taken for alice's address: with carol's password none gets in;
    // with alice's, a name either fails or is alice herself and shows her maildrop.
    for (name, alice) in [
        ("alice", false),
        ("alice+carol@example.test", false),
        ("alice@EXAMPLE.TEST@example.test", false),
        ("alice%example.test", false),
        ("alice@example.test.", true),
        ("\"alice\"@example.test", true),
        ("ALICE@Example.Test", true),
    ] {
        assert_eq!(user_pass(&mut wire, name, CAROL_PASSWORD), failed, "{name}");
        let mut own = greeted(&server);
        let reply = user_pass(&mut own, name, PASSWORD);
        if alice {
            assert_eq!(reply, alice_logged_in(), "{name}");
            assert_eq!(own.pop3("STAT"), alice_stat());
            assert_eq!(
                own.pop3("QUIT"),
                "+OK mail.example.test POP3 server signing off (2 messages left)"
            );
        } else {
            assert_eq!(reply, failed, "{name}");
        }
    }
    wire.send("USER bob@example.test\0alice@example.test\r\n");
    assert_eq!(wire.line(), "-ERR Control characters in command");
    assert_eq!(
        wire.pop3("USER alice@example.test carol@example.test"),
        "-ERR USER takes one argument"
    );
    wire.send(b"USER \xff\xfe@example.test\r\n");
    assert_eq!(wire.line(), "-ERR Argument is not valid UTF-8");
    // SASL PLAIN as carol, asking to act as alice: no proxy authorization.
    let reply = wire.pop3(&format!(
        "AUTH PLAIN {}",
        b64(&format!(
            "alice@example.test\0carol@example.test\0{CAROL_PASSWORD}"
        ))
    ));
    assert_eq!(reply, failed);
    // PASS without USER (a failed PASS uses the USER up).
    assert_eq!(
        wire.pop3(&format!("PASS {PASSWORD}")),
        "-ERR Send USER first"
    );
    assert_eq!(wire.pop3("STAT"), "-ERR Not logged in");
    // Everybody's mail is where it was.
    assert_eq!(stat(&server, "bob"), format!("+OK 1 {}", BOB.len()));
    assert_eq!(stat(&server, "alice"), alice_stat());
}

#[test]
fn commands_pipelined_after_stls_are_discarded() {
    let server = server_with("");
    let port = server.port("pop3").to_string();
    let injected = format!("USER alice@example.test\\r\\nPASS {PASSWORD}\\r\\nDELE 1\\r\\n");
    let v: Value = serde_json::from_str(&python(
        "starttls_inject.py",
        &[
            "127.0.0.1",
            &port,
            "pop3",
            &injected,
            "STAT",
            "PASS x",
            "QUIT",
        ],
    ))
    .expect("json");
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(
        v["upgrade"],
        serde_json::json!(["+OK Begin TLS negotiation"])
    );
    assert_eq!(
        v["replies"],
        serde_json::json!([
            ["-ERR Not logged in"],
            ["-ERR Send USER first"],
            ["+OK mail.example.test POP3 server signing off"]
        ])
    );
    assert_eq!(stat(&server, "alice"), alice_stat());
}

#[test]
fn password_guessing_is_slowed_then_blocked_per_address_and_never_locks_the_account() {
    let server = server_with(
        "[auth]\nallow_plaintext_on_loopback = true\nmax_failures_per_account = 3\n\
         max_failures_per_ip = 5\n",
    );
    let failed = "-ERR [AUTH] Authentication failed";
    let mut wire = greeted(&server);
    assert_eq!(
        user_pass(&mut wire, "alice@example.test", "guess-1"),
        failed
    );
    assert_eq!(
        wire.pop3(&format!(
            "AUTH PLAIN {}",
            b64("\0alice@example.test\0guess-2")
        )),
        failed
    );
    assert_eq!(wire.pop3("AUTH LOGIN"), "+ VXNlcm5hbWU6");
    assert_eq!(wire.pop3(&b64("alice@example.test")), "+ UGFzc3dvcmQ6");
    assert_eq!(wire.pop3(&b64("guess-3")), failed);
    // The account is not locked: its owner logs in from another address at once.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut elsewhere = Wire::connect_from(other, server.addr("pop3"));
    elsewhere.line();
    assert_eq!(
        user_pass(&mut elsewhere, "alice@example.test", PASSWORD),
        alice_logged_in()
    );
    assert!(elsewhere.pop3("QUIT").starts_with("+OK"));
    elsewhere.expect_close(Duration::from_secs(5));
    // From the failing address the right password is delayed (tarpit), not refused.
    assert_eq!(
        user_pass(&mut wire, "alice@example.test", PASSWORD),
        alice_logged_in()
    );
    assert!(wire.pop3("QUIT").starts_with("+OK"));
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("login delayed") && l.contains("ip=127.0.0.1 ")),
        "{log}"
    );
    // Spraying other names from the address: the fifth failure blocks it (logged), and then
    // even the right password is refused, in every session; another address is not affected.
    let mut wire = greeted(&server);
    for user in ["admin", "root", "test", "info", "sales"] {
        assert_eq!(
            user_pass(&mut wire, &format!("{user}@example.test"), PASSWORD),
            failed
        );
    }
    let blocked = "-ERR [LOGIN-DELAY] Too many failed logins; retry in 29";
    let reply = user_pass(&mut wire, "bob@example.test", PASSWORD);
    assert!(reply.starts_with(blocked), "{reply}");
    let mut again = greeted(&server);
    let reply = again.pop3(&format!(
        "AUTH PLAIN {}",
        b64(&format!("\0alice@example.test\0{PASSWORD}"))
    ));
    assert!(reply.starts_with(blocked), "{reply}");
    let mut elsewhere = Wire::connect_from(other, server.addr("pop3"));
    elsewhere.line();
    assert!(
        user_pass(&mut elsewhere, "bob@example.test", PASSWORD).starts_with("+OK Logged in"),
        "bob"
    );
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
fn a_100_mb_command_line_is_refused_without_being_buffered() {
    let server = server_with("");
    let mut wire = greeted(&server);
    let grown = stream_long_line(&server, &mut wire, b"USER ", 100 << 20);
    // RFC 2449 §4: answered as soon as the line is too long, then dropped as it arrives.
    assert_eq!(wire.line(), "-ERR Line too long");
    assert!(grown < 16 * 1024, "server memory grew by {grown} KiB");
    assert_eq!(
        user_pass(&mut wire, "alice@example.test", PASSWORD),
        alice_logged_in()
    );
}

#[derive(Clone, Copy, Debug)]
enum Leave {
    Close,
    Reset,
}

#[test]
fn disconnects_at_every_step_release_the_maildrop_and_keep_every_message() {
    let big = {
        let mut m = b"Subject: big\r\n\r\n".to_vec();
        while m.len() < 2_000_000 {
            m.extend_from_slice(&[b'z'; 998]);
            m.extend_from_slice(b"\r\n");
        }
        m
    };
    let mut server = TestServer::prepare(&["pop3", "pop3s"], &["alice"], "");
    server.seed_inbox("alice", &[FIRST, &big]);
    server.launch();
    let size = FIRST.len() + big.len();
    let login = format!("USER alice@example.test\r\nPASS {PASSWORD}\r\n");
    let steps: Vec<(&str, &str, Vec<u8>)> = vec![
        ("after the greeting", "pop3", Vec::new()),
        ("mid-command", "pop3", b"US".to_vec()),
        (
            "after USER",
            "pop3",
            b"USER alice@example.test\r\n".to_vec(),
        ),
        ("mid-AUTH PLAIN", "pop3", b"AUTH PLAIN\r\n".to_vec()),
        (
            "mid-AUTH LOGIN",
            "pop3",
            format!("AUTH LOGIN\r\n{}\r\n", b64("alice@example.test")).into(),
        ),
        ("logged in", "pop3", login.clone().into()),
        (
            "after DELE and RSET",
            "pop3",
            format!("{login}DELE 1\r\nDELE 2\r\nRSET\r\nDELE 1\r\n").into(),
        ),
        ("mid-RETR", "pop3", format!("{login}RETR 2\r\n").into()),
        ("mid-TOP", "pop3", format!("{login}TOP 2 100000\r\n").into()),
        ("mid-QUIT", "pop3", format!("{login}NOOP\r\nQUI").into()),
        ("after STLS", "pop3", b"STLS\r\n".to_vec()),
        (
            "mid-TLS handshake",
            "pop3",
            b"STLS\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        (
            "mid-implicit-TLS handshake",
            "pop3s",
            b"\x16\x03\x01".to_vec(),
        ),
    ];
    for (step, listener, input) in steps {
        for how in [Leave::Close, Leave::Reset] {
            let mut wire = Wire::connect(server.addr(listener));
            if listener == "pop3" {
                assert!(wire.line().starts_with("+OK"));
            }
            wire.send(&input);
            thread::sleep(Duration::from_millis(20));
            match how {
                Leave::Close => drop(wire),
                Leave::Reset => wire.reset(),
            }
            // The lock is released and nothing was removed.
            assert_eq!(
                stat(&server, "alice"),
                format!("+OK 2 {size}"),
                "after {step} ({how:?})"
            );
        }
    }
    assert!(server.is_running());
}

#[test]
fn slowloris_clients_do_not_delay_others_and_are_logged_out() {
    let server = server_with("[limits]\nidle_timeout_seconds = 2\n");
    let slow: Vec<_> = (0..10)
        .map(|_| {
            slowloris(
                server.addr("pop3"),
                b"USER alice@example.test",
                Duration::from_secs(1),
                Duration::from_secs(8),
            )
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(stat(&server, "alice"), alice_stat());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "a normal client took {took:?}"
    );
    for handle in slow {
        let (sent, said, after) = handle.join().expect("slow client");
        assert!(sent >= 2, "sent {sent}");
        // RFC 1939 §3: the autologout closes without a response.
        assert_eq!(said, ["+OK mail.example.test POP3 ready"]);
        assert!(after < Duration::from_secs(4), "cut off after {after:?}");
    }
}

#[test]
fn a_connection_flood_from_one_address_gets_sys_temp_and_others_are_served() {
    let server = server_with("[limits]\nmax_connections_per_ip = 4\n");
    let held: Vec<Wire> = (0..4).map(|_| greeted(&server)).collect();
    let mut wire = Wire::connect(server.addr("pop3"));
    assert_eq!(
        wire.expect_close(Duration::from_secs(5)),
        ["-ERR [SYS/TEMP] Too many connections"]
    );
    let mut wire = Wire::connect(server.addr("pop3s"));
    assert!(wire.expect_close(Duration::from_secs(5)).is_empty());
    let burst = connection_burst(server.addr("pop3"), 4, 100);
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut wire = Wire::connect_from(other, server.addr("pop3"));
    assert_eq!(wire.line(), "+OK mail.example.test POP3 ready");
    assert_eq!(
        user_pass(&mut wire, "bob@example.test", PASSWORD),
        format!("+OK Logged in, 1 messages ({} octets)", BOB.len())
    );
    for b in burst {
        b.join().expect("burst");
    }
    for mut wire in held {
        assert_eq!(
            wire.pop3("QUIT"),
            "+OK mail.example.test POP3 server signing off"
        );
        wire.expect_close(Duration::from_secs(5));
    }
    thread::sleep(Duration::from_millis(50));
    let again: Vec<Wire> = (0..4).map(|_| greeted(&server)).collect();
    drop(again);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(stat(&server, "alice"), alice_stat());
}

#[test]
fn a_client_that_never_reads_is_dropped_and_its_maildrop_released() {
    let mut server = TestServer::prepare(
        &["pop3"],
        &["alice"],
        "[limits]\nidle_timeout_seconds = 2\nmax_connections_per_ip = 1\n",
    );
    // Each RETR of this one answers 200 KB, so the socket buffers fill after a few.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.resize(200_000, b'z');
    big.extend_from_slice(b"\r\n");
    server.seed_inbox("alice", &[&big]);
    server.launch();
    support::wire::assert_stalled_reader_is_dropped(
        server.addr("pop3"),
        |wire| {
            assert_eq!(wire.line(), "+OK mail.example.test POP3 ready");
            let reply = user_pass(wire, "alice@example.test", PASSWORD);
            assert!(reply.starts_with("+OK Logged in, 1 messages"), "{reply}");
        },
        b"RETR 1\r\n",
        "-ERR [SYS/TEMP] Too many connections",
        Duration::from_secs(8),
    );
    thread::sleep(Duration::from_millis(100));
    assert_eq!(stat(&server, "alice"), format!("+OK 1 {}", big.len()));
}
