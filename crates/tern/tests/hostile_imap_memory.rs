//! Memory exhaustion through IMAP APPEND, against the real binary: authenticated clients, ten
//! at once, each part-way through a 40 MiB message literal under a 50 MiB APPENDLIMIT. The
//! octets beyond a small threshold must wait on disk, not in the server's memory; the messages
//! then read back for the store within the memory budget and arrive byte for byte.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use support::memory::MemoryWatch;
use support::wire::Wire;
use support::{PASSWORD, TestServer};

const CLIENTS: usize = 10;
/// One read's worth of the literal a client sends at a time.
const BLOCK: usize = 64 * 1024;
/// Each client's message: 40 MiB.
const MESSAGE: usize = 640 * BLOCK;
/// The server's resident memory must stay below this, peak included (before the fix: 432 MiB).
const LIMIT_KIB: u64 = 150 * 1024;

/// Block `i` of client `n`'s message: deterministic, different for every client and block,
/// lines of about 1,000 octets; block 0 starts with the header.
fn block(n: usize, i: usize) -> Vec<u8> {
    let mut block = Vec::with_capacity(BLOCK);
    if i == 0 {
        block.extend_from_slice(
            format!("From: c{n}@example.org\r\nSubject: client {n}\r\n\r\n").as_bytes(),
        );
    }
    let mut line = 0;
    while block.len() < BLOCK {
        let start = block.len();
        block.extend_from_slice(format!("{n} {i} {line} ").as_bytes());
        let fill = b'a' + ((n + i + line) % 26) as u8;
        block.resize((start + 998).min(BLOCK), fill);
        block.extend_from_slice(b"\r\n");
        line += 1;
    }
    block.truncate(BLOCK - 2);
    block.extend_from_slice(b"\r\n");
    block
}

fn login(server: &TestServer) -> Wire {
    let mut wire = Wire::connect(server.addr("imap"));
    assert!(wire.line().starts_with("* OK "));
    let (_, ok) = wire.imap("l", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK "), "{ok}");
    wire
}

#[test]
fn ten_clients_each_appending_40_mib_keep_the_server_under_150_mib_and_store_every_octet() {
    // The budget for whole messages being stored: one of these at a time (the default, 256 MiB,
    // lets six be stored at once, which is what it is for; here it shows the budget holds).
    let server = TestServer::start_with(
        &["imap"],
        &["alice"],
        "[limits]\nmax_message_size = 52428800\nmessage_memory = 52428800\n",
    );
    let started = Instant::now();
    let all_in_literal = Arc::new(Barrier::new(CLIENTS));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watch = MemoryWatch {
        server: &server,
        stop: &stop,
        limit_kib: LIMIT_KIB,
    };
    let finish = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let mut wire = login(&server);
            let (all_in_literal, sent, stop, finish) = (
                Arc::clone(&all_in_literal),
                Arc::clone(&sent),
                Arc::clone(&stop),
                Arc::clone(&finish),
            );
            thread::spawn(move || {
                wire.send(format!("a APPEND INBOX {{{MESSAGE}}}\r\n"));
                let ready = wire.line();
                assert!(ready.starts_with("+ "), "{ready}");
                // Every client is inside its literal before any sends much.
                all_in_literal.wait();
                // All but the last block, then wait.
                for i in 0..MESSAGE / BLOCK - 1 {
                    if stop.load(Ordering::SeqCst) || wire.try_send(block(n, i)).is_err() {
                        return None;
                    }
                }
                sent.fetch_add(1, Ordering::SeqCst);
                while !finish.load(Ordering::SeqCst) {
                    if stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                let mut last = block(n, MESSAGE / BLOCK - 1);
                last.extend_from_slice(b"\r\n");
                wire.send(last);
                Some(wire.imap_until("a").1)
            })
        })
        .collect();

    // While the octets stream in, and until the server has taken in all of them (each client's
    // is then in its spool file), the server's memory stays bounded.
    let expected = (CLIENTS * (MESSAGE - BLOCK - 320 * 1024)) as u64;
    let arrived_peak = watch.until_spooled(
        "while 10 messages arrive",
        &sent,
        CLIENTS,
        expected,
        Duration::from_secs(120),
        Duration::from_millis(100),
    );
    eprintln!(
        "{CLIENTS} x {} MiB mid-APPEND after {:?}: server peak {} MiB",
        MESSAGE >> 20,
        started.elapsed(),
        arrived_peak / 1024
    );

    // All finish at once: each message is read back and stored under the budget.
    finish.store(true, Ordering::SeqCst);
    while !clients.iter().all(|c| c.is_finished()) {
        watch.check("while 10 messages are stored");
        thread::sleep(Duration::from_millis(50));
    }
    for client in clients {
        let tagged = client.join().expect("client thread").expect("client sent");
        assert!(tagged.starts_with("a OK [APPENDUID "), "{tagged}");
    }
    let stored_peak = watch.check("after storing");
    eprintln!(
        "stored after {:?}: server peak {} MiB",
        started.elapsed(),
        stored_peak / 1024
    );
    assert_eq!(server.open_spool_files().0, 0, "spool files left open");

    // Another client is served, and finds every message as its client sent it.
    let mut wire = login(&server);
    let (untagged, ok) = wire.imap("s", "EXAMINE INBOX");
    assert!(ok.starts_with("s OK "), "{ok}");
    assert!(
        untagged.iter().any(|l| l == &format!("* {CLIENTS} EXISTS")),
        "{untagged:#?}"
    );
    let mut seen = [false; CLIENTS];
    for seq in 1..=CLIENTS {
        wire.send(format!("f FETCH {seq} BODY.PEEK[]\r\n"));
        let line = wire.line();
        assert!(
            line.ends_with(&format!("BODY[] {{{MESSAGE}}}")),
            "message {seq}: {line}"
        );
        let first = wire.octets(BLOCK);
        let n = (0..CLIENTS)
            .find(|&n| first == block(n, 0))
            .unwrap_or_else(|| panic!("message {seq} starts like no client's"));
        for i in 1..MESSAGE / BLOCK {
            assert!(
                wire.octets(BLOCK) == block(n, i),
                "message {seq} (client {n}) differs in block {i}"
            );
        }
        assert_eq!(wire.line(), ")");
        assert_eq!(wire.imap_until("f").1, "f OK FETCH completed");
        seen[n] = true;
    }
    assert!(seen.iter().all(|&s| s), "a client's message is missing");
    eprintln!("whole test {:?}", started.elapsed());
}
