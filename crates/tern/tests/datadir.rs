//! The data directory belongs to one `tern serve` (security issue 17): a second server on the
//! same directory is refused, and admin commands run beside the server without touching the
//! blob files it is writing. Before the lock, every admin command and any second server swept
//! the blob directory at open and deleted the files a running server had just renamed into
//! place but not yet committed: acknowledged mail was lost. An admin command that deletes mail
//! leaves the blob files to the server, which unlinks them after its next commit.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use support::wire::Wire;
use support::{PASSWORD, TestServer};

const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
/// Concurrent SMTP clients, and messages each sends: 200 in all.
const SENDERS: usize = 8;
const PER_SENDER: usize = 25;
/// Admin processes running at once, each in a loop, while the mail comes in.
const ADMIN_LOOPS: usize = 3;

/// The exact bytes sent for message `id`: over the store's inline limit (64 KiB), so that each
/// is a blob file, and distinct, so that no two share a blob.
fn message(id: &str) -> Vec<u8> {
    let mut body = format!("X-Test-Id: {id}\r\nSubject: large {id}\r\n\r\n").into_bytes();
    let line: Vec<u8> = format!("{id} ").bytes().cycle().take(76).collect();
    let size = 70_000 + id.len() * 100;
    while body.len() < size {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// An SMTP session after its greeting and EHLO.
fn smtp_session(addr: SocketAddr) -> Wire {
    let mut wire = Wire::connect(addr);
    wire.smtp_reply();
    assert!(wire.smtp("EHLO datadir.test").starts_with("250"));
    wire
}

/// Sends message `id` to `user` (a local part); the reply to the end of DATA.
fn deliver(wire: &mut Wire, id: &str, user: &str) -> String {
    assert!(wire.smtp("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(
        wire.smtp(&format!("RCPT TO:<{user}@example.test>"))
            .starts_with("250")
    );
    assert!(wire.smtp("DATA").starts_with("354"));
    wire.send(message(id));
    wire.smtp(".")
}

/// Sends [`PER_SENDER`] messages in one session; returns the ids that got their 250 after DATA
/// and the replies that were not 250.
fn send_all(addr: SocketAddr, sender: usize) -> (Vec<String>, Vec<String>) {
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let mut wire = smtp_session(addr);
    for n in 0..PER_SENDER {
        let id = format!("m{sender}-{n}");
        let reply = deliver(&mut wire, &id, USERS[(sender + n) % USERS.len()]);
        if reply.starts_with("250") {
            acked.push(id);
        } else {
            refused.push(format!("{id}: {reply}"));
        }
    }
    wire.smtp("QUIT");
    (acked, refused)
}

/// Every message of `user`'s maildrop over POP3 (RETR, dot-unstuffed), by X-Test-Id; a RETR
/// that fails is recorded under the id `retr <n>: <reply>`.
fn maildrop(addr: SocketAddr, user: &str) -> BTreeMap<String, Vec<u8>> {
    let mut wire = Wire::connect(addr);
    assert!(wire.line().starts_with("+OK"));
    assert!(
        wire.pop3(&format!("USER {user}@example.test"))
            .starts_with("+OK")
    );
    let pass = wire.pop3(&format!("PASS {PASSWORD}"));
    assert!(pass.starts_with("+OK"), "{pass}");
    let stat = wire.pop3("STAT");
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("STAT reply {stat:?}"));
    let mut found = BTreeMap::new();
    for n in 1..=count {
        let reply = wire.pop3(&format!("RETR {n}"));
        if !reply.starts_with("+OK") {
            found.insert(format!("retr {n}: {reply}"), Vec::new());
            continue;
        }
        let mut bytes = Vec::new();
        loop {
            let line = wire.line();
            if line == "." {
                break;
            }
            // RFC 1939 §3: a line starting with the termination octet is byte-stuffed.
            let line = line.strip_prefix('.').unwrap_or(&line);
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        let text = String::from_utf8_lossy(&bytes);
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("X-Test-Id: "))
            .unwrap_or("(no id)")
            .to_owned();
        found.insert(id, bytes);
    }
    wire.pop3("QUIT");
    found
}

#[test]
fn admin_commands_while_large_mail_arrives_lose_no_acknowledged_message() {
    let server = TestServer::start_with(
        &["smtp", "pop3"],
        &[USERS.as_slice(), &["gone"]].concat(),
        "[limits]\nmax_connections_per_ip = 1000\n",
    );
    let smtp = server.addr("smtp");
    // Mail of a user an admin removes during the ingest: its blob files are released by the
    // admin command and must be unlinked by the server, and only those.
    let mut wire = smtp_session(smtp);
    for n in 0..5 {
        let reply = deliver(&mut wire, &format!("gone-{n}"), "gone");
        assert!(reply.starts_with("250"), "{reply}");
    }
    let done = AtomicBool::new(false);
    let (acked, refused, admin_runs, admin_failures) = std::thread::scope(|s| {
        let remove = s.spawn(|| server.admin(&["user", "remove", "gone@example.test"], None));
        let admins: Vec<_> = (0..ADMIN_LOOPS)
            .map(|a| {
                let (server, done) = (&server, &done);
                s.spawn(move || {
                    let (mut runs, mut failures) = (0, Vec::new());
                    while !done.load(Ordering::Relaxed) {
                        let args: &[&str] = if (a + runs) % 2 == 0 {
                            &["user", "list"]
                        } else {
                            &["queue", "list"]
                        };
                        let out = server.admin(args, None);
                        if !out.status.success() {
                            failures.push(format!(
                                "tern {args:?}: {}",
                                String::from_utf8_lossy(&out.stderr).trim()
                            ));
                        }
                        runs += 1;
                    }
                    (runs, failures)
                })
            })
            .collect();
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| s.spawn(move || send_all(smtp, sender)))
            .collect();
        let (mut acked, mut refused) = (Vec::new(), Vec::new());
        for sender in senders {
            let (a, r) = sender.join().expect("SMTP sender");
            acked.extend(a);
            refused.extend(r);
        }
        done.store(true, Ordering::Relaxed);
        let (mut runs, mut failures) = (1, Vec::new());
        let removed = remove.join().expect("user remove");
        if !removed.status.success() {
            failures.push(format!(
                "tern user remove: {}",
                String::from_utf8_lossy(&removed.stderr).trim()
            ));
        }
        for admin in admins {
            let (r, f) = admin.join().expect("admin loop");
            runs += r;
            failures.extend(f);
        }
        (acked, refused, runs, failures)
    });
    assert!(admin_runs > 0, "no admin command ran during the ingest");

    let pop3 = server.addr("pop3");
    let mut stored = BTreeMap::new();
    for user in USERS {
        stored.extend(maildrop(pop3, user));
    }
    let damaged: Vec<&String> = acked
        .iter()
        .filter(|id| {
            !stored
                .get(*id)
                .is_some_and(|bytes| bytes.ends_with(&message(id)))
        })
        .collect();
    let unreadable: Vec<&String> = stored.keys().filter(|k| k.starts_with("retr")).collect();
    assert!(
        damaged.is_empty() && unreadable.is_empty(),
        "{} of {} acknowledged messages are missing or damaged after {admin_runs} admin \
         commands: {damaged:?}; failed RETRs: {unreadable:?}",
        damaged.len(),
        acked.len()
    );
    // Nothing got in the way of the deliveries either (a swept temp file fails one with 451).
    assert!(refused.is_empty(), "deliveries refused: {refused:?}");
    assert_eq!(acked.len(), SENDERS * PER_SENDER);
    // Admin commands work while the server runs.
    assert!(
        admin_failures.is_empty(),
        "{} of {admin_runs} admin commands failed: {admin_failures:?}",
        admin_failures.len()
    );

    // The server's next batch unlinks the files of the removed user's mail; every other file
    // belongs to a stored message (each is over 64 KiB and distinct).
    let reply = deliver(&mut wire, "last", "u1");
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(
        blob_files(&server.data_dir().join("blobs")),
        acked.len() + 1,
        "blob files left over beside those of the stored messages"
    );
}

/// The number of blob files under `blobs` (the temp directory left out).
fn blob_files(blobs: &Path) -> usize {
    std::fs::read_dir(blobs)
        .expect("blob directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() && !p.ends_with("tmp"))
        .map(|dir| std::fs::read_dir(dir).expect("prefix directory").count())
        .sum()
}

#[test]
fn a_second_serve_on_the_same_data_directory_exits_with_a_clear_error_while_the_first_serves() {
    let server = TestServer::start(&["smtp", "pop3"], &["alice"]);
    let (status, text) = server.serve_until_exit();
    assert!(
        !status.success(),
        "the second tern serve succeeded:\n{text}"
    );
    let expected = format!(
        "tern: the data directory {} is in use by another tern serve (pid {}); stop it first \
         or use another data_dir",
        server.data_dir().display(),
        server.pid()
    );
    assert!(
        text.contains(&expected),
        "expected {expected:?} in:\n{text}"
    );
    assert!(
        !text.contains("tern is running"),
        "the second server started:\n{text}"
    );

    // The first server still takes mail.
    let reply = deliver(&mut smtp_session(server.addr("smtp")), "after", "alice");
    assert!(reply.starts_with("250"), "{reply}");
    let stored = maildrop(server.addr("pop3"), "alice");
    assert!(
        stored
            .get("after")
            .is_some_and(|b| b.ends_with(&message("after"))),
        "{:?}",
        stored.keys()
    );
}
