//! Crash safety of the real binary: 50 concurrent SMTP sessions deliver uniquely numbered
//! messages while `tern` is killed with SIGKILL at a random moment; after every kill the
//! server must start again without repair, and every message that got a 250 must be in the
//! store exactly once and intact. Unacknowledged messages may or may not be there.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::TestServer;

const SESSIONS: usize = 50;
const ROUNDS: usize = 20;
const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];

/// The exact bytes sent for message `id`; every 10th is over the store's inline limit
/// (64 KiB) so that the file-blob path is crashed too.
fn message(id: &str) -> Vec<u8> {
    let filler = if id.ends_with('7') { 70_000 } else { 300 };
    let mut body = format!("X-Crash-Id: {id}\r\nSubject: crash {id}\r\n\r\n").into_bytes();
    let line: Vec<u8> = id.bytes().cycle().take(76).collect();
    while body.len() < filler {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    body
}

fn expect(reader: &mut impl BufRead, code: &str) -> std::io::Result<()> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if !line.starts_with(code) {
            return Err(std::io::Error::other(line));
        }
        if line.as_bytes().get(3) == Some(&b' ') {
            return Ok(());
        }
    }
}

/// Sends messages until the connection breaks or `stop` is set; records each acknowledged id.
fn sender(addr: SocketAddr, prefix: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(addr) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut writer = stream;
        let mut session = || -> std::io::Result<()> {
            expect(&mut reader, "220")?;
            writer.write_all(b"EHLO crash.test\r\n")?;
            expect(&mut reader, "250")?;
            for _ in 0..5 {
                let id = format!("{prefix}-{n}");
                n += 1;
                let user = USERS[n as usize % USERS.len()];
                writer.write_all(
                    format!(
                        "MAIL FROM:<s@example.org>\r\nRCPT TO:<{user}@example.test>\r\nDATA\r\n"
                    )
                    .as_bytes(),
                )?;
                expect(&mut reader, "250")?;
                expect(&mut reader, "250")?;
                expect(&mut reader, "354")?;
                writer.write_all(&message(&id))?;
                writer.write_all(b".\r\n")?;
                expect(&mut reader, "250")?;
                // Only now is the message acknowledged.
                acked.lock().expect("lock").push(id);
            }
            writer.write_all(b"QUIT\r\n")?;
            Ok(())
        };
        if session().is_err() {
            return;
        }
    }
}

/// Every message in the users' INBOXes, by crash id, with how often it is there.
fn stored_messages(server: &TestServer) -> HashMap<String, Vec<Vec<u8>>> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = tern_store::Store::open(tern_store::StoreOptions::new(server.data_dir()))
            .await
            .expect("store opens after a crash");
        store
            .check_integrity()
            .await
            .expect("integrity after crash");
        let mut found: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for user in USERS {
            let account = store
                .account_by_address(&format!("{user}@example.test"))
                .await
                .expect("lookup")
                .expect("account");
            let inbox = store
                .mailbox_by_name(account.id, "INBOX")
                .await
                .expect("lookup")
                .expect("inbox");
            for record in store.messages(inbox.id).await.expect("messages") {
                let bytes = store.read_blob(&record.blob).await.expect("blob readable");
                let text = String::from_utf8_lossy(&bytes);
                let id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("X-Crash-Id: "))
                    .expect("crash id header")
                    .to_owned();
                found.entry(id).or_default().push(bytes.to_vec());
            }
        }
        store.close().await;
        found
    })
}

#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() {
    let mut server = TestServer::prepare(&["smtp"], &USERS, "");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..ROUNDS {
        server.launch();
        let addr = server.addr("smtp");
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..SESSIONS)
            .map(|s| {
                let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
                std::thread::spawn(move || sender(addr, format!("{round}.{s}"), stop, acked))
            })
            .collect();
        // xorshift: a different kill moment each round, 100–900 ms into the load.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(100 + seed % 800);
        let start = Instant::now();
        while start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(10));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("sender thread");
        }
    }
    // The store must open without repair, and a server must start on it again.
    server.launch();
    server.stop();

    let found = stored_messages(&server);
    let acked = acked.lock().expect("lock");
    assert!(
        acked.len() > 100,
        "too little load to mean anything: {}",
        acked.len()
    );
    for id in acked.iter() {
        let copies = found.get(id).map(Vec::len).unwrap_or(0);
        assert_eq!(
            copies, 1,
            "acknowledged message {id} is stored {copies} times"
        );
        let original = message(id);
        assert!(
            found[id][0].ends_with(&original),
            "message {id} is not intact"
        );
    }
    for (id, copies) in &found {
        assert_eq!(
            copies.len(),
            1,
            "message {id} stored {} times",
            copies.len()
        );
    }
    eprintln!(
        "{ROUNDS} kills: {} acknowledged, {} stored (the rest were in flight)",
        acked.len(),
        found.len()
    );
}
