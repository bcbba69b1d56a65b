//! The clamd client against a real clamd (Debian `clamav-daemon`), started here with a signature
//! database of our own holding the EICAR test file (freshclam cannot download anything here).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tern_common::config::ClamdAddress;
use tern_filter::{Clamd, ClamdError, ScanResult};
use tokio::process::{Child, Command};

const CLAMD: &str = "/usr/sbin/clamd";
/// The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/).
const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// `.hdb` line: MD5 of the whole file, its size, the signature name (ClamAV signatures manual,
/// "File hash signatures").
const HDB: &str = "44d88612fea8a8f36de82e1278abb02f:68:Tern.Test.EICAR\n";

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Daemon {
    // scripts/test.sh installs clamav-daemon; without it this test must fail, not pass.
    assert!(
        Path::new(CLAMD).exists(),
        "{CLAMD} is not installed: run scripts/test.sh (or apt-get install clamav-daemon)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("tern-test.hdb"), HDB).expect("signature db");
    let socket = dir.path().join("clamd.sock");
    let conf = dir.path().join("clamd.conf");
    std::fs::write(
        &conf,
        format!(
            "Foreground yes\nLocalSocket {}\nDatabaseDirectory {}\nTemporaryDirectory {}\n\
             LogFile {}\nLogVerbose no\n",
            socket.display(),
            db.display(),
            dir.path().display(),
            dir.path().join("clamd.log").display(),
        ),
    )
    .expect("clamd.conf");
    let child = Command::new(CLAMD)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start clamd");
    // Loading even a tiny database takes clamd a few seconds; wait for its socket, bounded.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "clamd did not open its socket; log:\n{}",
            std::fs::read_to_string(dir.path().join("clamd.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Daemon {
        child,
        socket,
        _dir: dir,
    }
}

fn message_with_attachment(name: &str, content: &[u8]) -> Vec<u8> {
    // Base64 by hand (the test needs no dependency for 68 bytes).
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in content.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                encoded.push('=');
            }
        }
    }
    format!(
        "From: a@example.org\r\nTo: b@example.test\r\nSubject: test\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         see attachment\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {encoded}\r\n--b--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn real_clamd_finds_eicar_passes_clean_mail_and_down_is_an_error() {
    let mut daemon = start().await;
    let clamd = Clamd::new(
        ClamdAddress::Unix(daemon.socket.clone()),
        Duration::from_secs(30),
    );
    let infected = clamd
        .scan(&message_with_attachment("eicar.com", EICAR))
        .await
        .expect("scan");
    match infected {
        ScanResult::Infected(sig) => assert!(sig.starts_with("Tern.Test.EICAR"), "{sig}"),
        other => panic!("EICAR not found: {other:?}"),
    }
    let clean = clamd
        .scan(&message_with_attachment("notes.txt", b"just some text"))
        .await
        .expect("scan");
    assert_eq!(clean, ScanResult::Clean);
    // The raw EICAR file, streamed in one piece, is found too.
    assert!(matches!(
        clamd.scan(EICAR).await.expect("scan"),
        ScanResult::Infected(_)
    ));

    daemon.child.kill().await.expect("kill clamd");
    let _ = std::fs::remove_file(&daemon.socket);
    let down = clamd.scan(b"Subject: x\r\n\r\nx\r\n").await;
    assert!(matches!(down, Err(ClamdError::Connect { .. })), "{down:?}");
}
