//! Crash test: a child process (this test binary re-executed in "writer child" mode) appends messages and
//! prints every acknowledged one; the parent SIGKILLs it at a random moment, reopens the store, and checks
//! that the database is intact and every acknowledged message is present and byte-identical.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tern_store::{
    BlobId, Flags, MailboxId, MessageMeta, NewAccount, Store, StoreError, StoreOptions, Uid,
};

const CHILD_ENV: &str = "TERN_STORE_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "TERN_STORE_CRASH_ROUND";
const ROUNDS: u64 = 4;
const WRITERS: u64 = 8;

/// Message `seq`: every third one is larger than the 64 KiB inline threshold, so it is stored as a file.
fn content(seq: u64) -> Vec<u8> {
    let mut body = format!("Subject: message {seq}\r\n\r\n").into_bytes();
    let len = if seq.is_multiple_of(3) {
        70_000 + (seq * 7919 % 60_000) as usize
    } else {
        200 + (seq * 31 % 3000) as usize
    };
    body.extend((0..len).map(|i| (i as u64).wrapping_mul(seq | 1).wrapping_add(seq) as u8));
    body
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn inbox(store: &Store) -> MailboxId {
    match store.add_domain("example.test").await {
        Ok(_) | Err(StoreError::AlreadyExists) => {}
        Err(e) => panic!("add_domain: {e}"),
    }
    let new = NewAccount {
        address: "u@example.test".into(),
        password_hash: "h".into(),
        ..Default::default()
    };
    let account = match store.add_account(new).await {
        Ok(id) => id,
        Err(StoreError::AlreadyExists) => {
            store
                .account_by_address("u@example.test")
                .await
                .expect("lookup")
                .expect("present")
                .id
        }
        Err(e) => panic!("add_account: {e}"),
    };
    store
        .mailbox_by_name(account, "INBOX")
        .await
        .expect("lookup")
        .expect("INBOX")
        .id
}

/// The child: appends from several tasks until killed, printing `ACK <mailbox> <uid> <seq> <hash>` after each
/// append returned (i.e. after its batch committed).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    runtime().block_on(async move {
        let store = Store::open(StoreOptions::new(dir)).await.expect("open");
        let mailbox = inbox(&store).await;
        println!("READY");
        std::io::stdout().flush().expect("flush");
        let next = Arc::new(AtomicU64::new(round * 1_000_000));
        let deadline = Instant::now() + Duration::from_secs(20);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (store, next) = (store.clone(), Arc::clone(&next));
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        let body = content(seq);
                        let hash = BlobId::of(&body);
                        let a = store
                            .append(
                                mailbox,
                                Bytes::from(body),
                                Flags::new(),
                                0,
                                MessageMeta::default(),
                            )
                            .await
                            .expect("append");
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {} {} {seq} {hash}", mailbox.0, a.uid).expect("write");
                        out.flush().expect("flush");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
    });
}

struct Ack {
    mailbox: MailboxId,
    uid: Uid,
    seq: u64,
    hash: String,
}

fn parse(line: &str) -> Option<Ack> {
    let mut it = line.strip_prefix("ACK ")?.split(' ');
    let mailbox = MailboxId(it.next()?.parse().ok()?);
    let uid = Uid::new(it.next()?.parse().ok()?)?;
    let seq = it.next()?.parse().ok()?;
    let hash = it.next()?.to_owned();
    Some(Ack {
        mailbox,
        uid,
        seq,
        hash,
    })
}

fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| u64::from(d.subsec_nanos()));
    let mut x = nanos ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x % n
}

#[test]
fn acknowledged_messages_survive_sigkill_mid_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            // Only complete lines count: `lines()` drops a torn last line only if it lacks the newline,
            // so we check for the trailing newline ourselves.
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.ends_with('\n') && lines_tx.send(line.trim_end().to_owned()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        // The test harness prints its own text first ("running 1 test", "test crash_child ... READY").
        while !lines
            .recv_timeout(Duration::from_secs(30))
            .expect("child ready")
            .ends_with("READY")
        {}
        std::thread::sleep(Duration::from_millis(50 + random_below(350)));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        reader.join().expect("reader");
        let before = acked.len();
        acked.extend(lines.try_iter().filter_map(|l| parse(&l)));
        assert!(
            acked.len() > before,
            "round {round}: the child acknowledged nothing"
        );

        runtime().block_on(async {
            let store = Store::open(StoreOptions::new(dir.path()))
                .await
                .expect("reopen after crash");
            store
                .check_integrity()
                .await
                .expect("integrity after crash");
            for ack in &acked {
                let m = store
                    .message(ack.mailbox, ack.uid)
                    .await
                    .expect("read")
                    .unwrap_or_else(|| {
                        panic!(
                            "round {round}: acknowledged message uid {} (seq {}) is missing",
                            ack.uid, ack.seq
                        )
                    });
                assert_eq!(m.blob.as_str(), ack.hash);
                let bytes = store.read_blob(&m.blob).await.expect("read blob");
                assert!(bytes == content(ack.seq), "seq {}: bytes differ", ack.seq);
            }
            store.close().await;
        });
    }
    assert!(
        acked.iter().any(|a| a.seq.is_multiple_of(3)),
        "at least one large (file) blob was acknowledged"
    );
    eprintln!(
        "{} acknowledged messages verified over {ROUNDS} crashes",
        acked.len()
    );
}
