//! Virus filtering at the SMTP door, against the real binary and a real clamd (Debian
//! `clamav-daemon`) that this test starts with a signature database holding only EICAR.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TestServer, python};

/// The EICAR anti-virus test file.
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// ClamAV `.hdb` line: MD5 of the file, its size, the signature name.
const HDB: &str = "44d88612fea8a8f36de82e1278abb02f:68:Tern.Test.EICAR\n";

struct Clamd(Child);

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_clamd(dir: &Path) -> Clamd {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).expect("db dir");
    std::fs::write(db.join("tern-test.hdb"), HDB).expect("signature db");
    let socket = dir.join("clamd.sock");
    let conf = dir.join("clamd.conf");
    std::fs::write(
        &conf,
        format!(
            "Foreground yes\nLocalSocket {}\nDatabaseDirectory {}\nTemporaryDirectory {}\nLogFile {}\n",
            socket.display(),
            db.display(),
            dir.display(),
            dir.join("clamd.log").display()
        ),
    )
    .expect("clamd.conf");
    let child = Command::new("/usr/sbin/clamd")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clamd (scripts/test.sh installs clamav-daemon)");
    let clamd = Clamd(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "clamd did not open its socket");
        std::thread::sleep(Duration::from_millis(200));
    }
    clamd
}

fn send(server: &TestServer, attachment: &str) -> Value {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(attachment);
    let file = server.dir.path().join("message.eml");
    let message = format!(
        "From: x@example.org\r\nTo: alice@example.test\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b\r\nContent-Type: application/octet-stream; name=\"file.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b--\r\n"
    );
    std::fs::write(&file, message).expect("write");
    let port = server.port("smtp").to_string();
    serde_json::from_str(&python(
        "smtp_send.py",
        &[
            "127.0.0.1",
            &port,
            "--file",
            file.to_str().expect("path"),
            "--from",
            "x@example.org",
            "--to",
            "alice@example.test",
        ],
    ))
    .expect("json")
}

#[test]
fn infected_mail_is_refused_at_data_and_clean_mail_delivered() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let _clamd = start_clamd(scratch.path());
    let server = TestServer::start_with(
        &["smtp"],
        &["alice"],
        &format!(
            "[filter]\nclamd = \"{}\"\n",
            scratch.path().join("clamd.sock").display()
        ),
    );
    let v = send(&server, EICAR);
    assert_eq!(v["error"], 554, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Tern.Test.EICAR"),
        "{v}"
    );
    let v = send(&server, "just some harmless bytes");
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
}

#[test]
fn unreachable_clamd_is_a_temporary_failure() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(
        &["smtp"],
        &["alice"],
        &format!(
            "[filter]\nclamd = \"{}\"\n",
            scratch.path().join("no-such.sock").display()
        ),
    );
    let v = send(&server, "harmless");
    assert_eq!(v["error"], 451, "{v}");
}

#[test]
fn mail_too_large_to_scan_is_deferred_unless_the_operator_accepts_it_unscanned() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let _clamd = start_clamd(scratch.path());
    let socket = scratch.path().join("clamd.sock");
    let large = "harmless ".repeat(200);
    let server = TestServer::start_with(
        &["smtp"],
        &["alice"],
        &format!(
            "[filter]\nclamd = \"{}\"\nmax_scan_size = 1000\n",
            socket.display()
        ),
    );
    let v = send(&server, &large);
    assert_eq!(v["error"], 451, "{v}");
    // Small mail is still scanned and delivered.
    let v = send(&server, "harmless");
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");

    let server = TestServer::start_with(
        &["smtp"],
        &["alice"],
        &format!(
            "[filter]\nclamd = \"{}\"\nmax_scan_size = 1000\ntoo_large_to_scan = \"accept\"\n",
            socket.display()
        ),
    );
    let v = send(&server, &large);
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
}

#[test]
fn spam_to_a_forwarding_alias_is_refused_like_spam_to_a_mailbox() {
    // Rules alone decide here (no training): a message without Date and Message-ID scores
    // above this low reject threshold.
    let server = TestServer::start_with(
        &["smtp"],
        &["alice"],
        "[filter]\njunk_threshold = 0.5\nreject_threshold = 1.0\n",
    );
    server.admin_ok(
        &["alias", "add", "fwd@example.test", "someone@elsewhere.test"],
        None,
    );
    let file = server.dir.path().join("ratware.eml");
    std::fs::write(
        &file,
        "From: x@example.org\r\nTo: fwd@example.test\r\nSubject: offer\r\n\r\nBuy now.\r\n",
    )
    .expect("write");
    let port = server.port("smtp").to_string();
    let send_to = |to: &str| -> Value {
        serde_json::from_str(&python(
            "smtp_send.py",
            &[
                "127.0.0.1",
                &port,
                "--file",
                file.to_str().expect("path"),
                "--from",
                "x@example.org",
                "--to",
                to,
            ],
        ))
        .expect("json")
    };
    for to in ["alice@example.test", "fwd@example.test"] {
        let v = send_to(to);
        assert_eq!(v["error"], 550, "{to}: {v}");
    }
    let queued = server.admin_ok(&["queue", "list"], None);
    assert!(!queued.contains("someone@elsewhere.test"), "{queued}");
}
