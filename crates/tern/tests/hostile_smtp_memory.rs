//! Memory exhaustion through message text, against the real binary: unauthenticated clients,
//! as many as one address may open (50), each part-way through a message just under the 50 MiB
//! size limit at the same time, half of them in DATA and half in one large BDAT chunk. The
//! text beyond a small threshold must wait on disk, not in the server's memory.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use support::memory::MemoryWatch;
use support::wire::Wire;
use support::{PASSWORD, TestServer};

/// Connections from one address the server accepts by default (`max_connections_per_ip`).
const CLIENTS: usize = 50;
/// What each client sends before it waits: just under the 50 MiB limit.
const TEXT: usize = 49 << 20;
/// The server's resident memory must stay below this, peak included.
const LIMIT_KIB: u64 = 200 * 1024;

/// What a BDAT client announces: more than it sends before it waits, within the limit.
const CHUNK: usize = 50 << 20;

/// A client about to send message text: greeted, MAIL and RCPT accepted, then `DATA` and its
/// `354` or, with `bdat`, the command of one chunk of [`CHUNK`] octets.
fn start_message(addr: std::net::SocketAddr, bdat: bool) -> Wire {
    let mut wire = Wire::connect(addr);
    assert!(wire.smtp_reply()[0].starts_with("220 "));
    assert!(wire.smtp("EHLO client.test").starts_with("250 "));
    assert_eq!(
        wire.smtp("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        wire.smtp("RCPT TO:<alice@example.test>"),
        "250 2.1.5 Recipient OK"
    );
    if bdat {
        wire.send(format!("BDAT {CHUNK} LAST\r\n"));
    } else {
        assert_eq!(
            wire.smtp("DATA"),
            "354 Start mail input; end with <CRLF>.<CRLF>"
        );
    }
    wire
}

/// 64 KiB of message text: a header, then 998-octet lines (the RFC 5322 maximum).
fn text_block(first: bool) -> Vec<u8> {
    let mut block = Vec::with_capacity(64 * 1024);
    if first {
        block.extend_from_slice(b"From: a@example.org\r\nSubject: large\r\n\r\n");
    }
    while block.len() + 1000 <= 64 * 1024 {
        block.extend_from_slice(&[b'x'; 998]);
        block.extend_from_slice(b"\r\n");
    }
    block
}

#[test]
fn fifty_clients_each_midway_through_a_50_mib_message_keep_the_server_under_200_mib() {
    let server = TestServer::start_with(
        &["smtp", "pop3"],
        &["alice"],
        "[limits]\nmax_message_size = 52428800\n",
    );
    let addr = server.addr("smtp");
    let spool = server.data_dir().join("spool");
    let started = Instant::now();
    let all_in_data = Arc::new(Barrier::new(CLIENTS));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watch = MemoryWatch {
        server: &server,
        stop: &stop,
        limit_kib: LIMIT_KIB,
    };
    let leave = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (all_in_data, sent, stop, leave) = (
                Arc::clone(&all_in_data),
                Arc::clone(&sent),
                Arc::clone(&stop),
                Arc::clone(&leave),
            );
            thread::spawn(move || {
                // The last client (which finishes its message below) uses DATA.
                let mut wire = start_message(addr, n % 2 == 0);
                // Every client is mid-DATA before any sends much.
                all_in_data.wait();
                let (first, block) = (text_block(true), text_block(false));
                let mut total = 0;
                while total < TEXT && !stop.load(Ordering::SeqCst) {
                    let piece = if total == 0 { &first } else { &block };
                    if wire.try_send(piece).is_err() {
                        return None;
                    }
                    total += piece.len();
                }
                sent.fetch_add(1, Ordering::SeqCst);
                while !leave.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                Some((wire, total))
            })
        })
        .collect();

    // While the text streams in, and until the server has taken in all of it (every client's
    // text is then in its spool file), the server's memory stays bounded.
    let expected = (CLIENTS * (TEXT - 320 * 1024)) as u64;
    let peak = watch.until_spooled(
        "while 50 messages arrive",
        &sent,
        CLIENTS,
        expected,
        Duration::from_secs(240),
        Duration::from_millis(200),
    );
    eprintln!(
        "{CLIENTS} x {} MiB mid-DATA or mid-BDAT after {:?}: server peak {} MiB",
        TEXT >> 20,
        started.elapsed(),
        peak / 1024
    );

    // The clients leave without finishing; the spool files go with their sessions.
    leave.store(true, Ordering::SeqCst);
    let mut wires: Vec<(Wire, usize)> = clients
        .into_iter()
        .map(|c| {
            c.join()
                .expect("client thread")
                .expect("client sent its text")
        })
        .collect();
    let (mut finisher, finisher_text) = wires.pop().expect("one client");
    drop(wires);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.open_spool_files().0 > 1 {
        assert!(
            Instant::now() < deadline,
            "spool files of closed sessions are still open"
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_dir(&spool).expect("spool directory").count(),
        0,
        "names left in the spool directory"
    );

    // One client does finish: its 49 MiB message is delivered from the spool.
    finisher.send(b"\r\n.\r\n");
    let reply = finisher.smtp_reply().pop().unwrap_or_default();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(
        finisher.smtp("QUIT"),
        "221 2.0.0 mail.example.test closing connection"
    );
    // And a normal client is served as usual.
    let mut normal = start_message(addr, false);
    normal.send(b"Subject: small\r\n\r\nsmall\r\n.\r\n");
    let reply = normal.smtp_reply().pop().unwrap_or_default();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let sizes = maildrop_sizes(&server);
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(
        sizes[0] >= finisher_text as u64 + 2,
        "the large message lost text: {sizes:?}"
    );
    eprintln!(
        "whole test {:?}; server peak {} MiB after delivering the large message",
        started.elapsed(),
        server.memory_kib().1 / 1024
    );
}

/// The sizes of the messages in alice's maildrop (POP3 LIST).
fn maildrop_sizes(server: &TestServer) -> Vec<u64> {
    let mut wire = Wire::connect(server.addr("pop3"));
    assert!(wire.line().starts_with("+OK"));
    assert!(wire.pop3("USER alice@example.test").starts_with("+OK"));
    assert!(wire.pop3(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    assert!(wire.pop3("LIST").starts_with("+OK"));
    let mut sizes = Vec::new();
    loop {
        let line = wire.line();
        if line == "." {
            return sizes;
        }
        let size = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        sizes.push(size.unwrap_or_else(|| panic!("LIST line {line:?}")));
    }
}

#[test]
fn spool_files_left_by_a_crash_are_removed_at_start_and_nothing_else_is() {
    let mut server = TestServer::prepare(&["smtp"], &["alice"], "");
    let spool = server.data_dir().join("spool");
    std::fs::create_dir_all(&spool).expect("create spool directory");
    std::fs::write(
        spool.join("tern-spool-4242-7"),
        b"text of a crashed session",
    )
    .expect("write leftover");
    std::fs::write(spool.join("operator-notes.txt"), b"not the server's").expect("write notes");
    server.launch();
    let names: Vec<String> = std::fs::read_dir(&spool)
        .expect("spool directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["operator-notes.txt"]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&spool)
            .expect("spool metadata")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "spool directory mode {mode:o}");
}
