//! IMAP against the real binary with independent clients: Python's imaplib, mbsync (isync)
//! and curl; mail arrives over SMTP and is compared byte for byte.

mod support;

use std::path::Path;
use std::process::Command;

use support::{PASSWORD, TestServer, python};

const FIRST: &[u8] =
    b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: one\r\n\r\nHello\r\n.dot\r\n";
const SECOND: &[u8] = b"From: b@example.org\r\nSubject: two\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n";
const THIRD: &[u8] = b"From: c@example.org\r\nSubject: three\r\n\r\nthird\r\n";

fn server() -> TestServer {
    let mut server = TestServer::prepare(&["imap", "imaps", "smtp", "pop3"], &["alice", "bob"], "");
    server.seed_inbox("alice", &[FIRST, SECOND, THIRD]);
    server.launch();
    server
}

fn write_fixtures(dir: &Path) -> Vec<String> {
    [FIRST, SECOND, THIRD]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = dir.join(format!("fixture-{i}.eml"));
            std::fs::write(&path, m).expect("write fixture");
            path.to_str().expect("utf-8 path").to_owned()
        })
        .collect()
}

#[test]
fn imaplib_reads_flags_copies_moves_expunges_and_appends() {
    let server = server();
    let port = server.port("imap").to_string();
    let files = write_fixtures(server.dir.path());
    let mut args = vec![
        "basic",
        "127.0.0.1",
        port.as_str(),
        "alice@example.test",
        PASSWORD,
    ];
    args.extend(files.iter().map(String::as_str));
    assert_eq!(python("imap_check.py", &args).trim(), "ok");
}

#[test]
fn idle_sees_smtp_delivery_at_once() {
    let server = server();
    let port = server.port("imap").to_string();
    let smtp = server.port("smtp").to_string();
    let out = python(
        "imap_check.py",
        &[
            "idle",
            "127.0.0.1",
            &port,
            "alice@example.test",
            PASSWORD,
            &smtp,
        ],
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn curl_fetches_a_message_by_uid() {
    let server = server();
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-u",
            &format!("alice@example.test:{PASSWORD}"),
        ])
        .arg(format!(
            "imap://127.0.0.1:{}/INBOX;UID=2",
            server.port("imap")
        ))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, SECOND);
}

#[test]
fn imap_and_pop3_agree_on_the_inbox() {
    let server = server();
    let pop: serde_json::Value = serde_json::from_str(&python(
        "pop3_dump.py",
        &[
            "127.0.0.1",
            &server.port("pop3").to_string(),
            "alice@example.test",
            PASSWORD,
        ],
    ))
    .expect("json");
    assert_eq!(pop["stat"][0], 3, "{pop}");
    // POP3 UIDLs are <uidvalidity>.<uid> of the IMAP INBOX.
    let uidl: Vec<String> = pop["uidl"]
        .as_array()
        .expect("uidl")
        .iter()
        .map(|e| e[1].as_str().expect("uid").to_owned())
        .collect();
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-u",
            &format!("alice@example.test:{PASSWORD}"),
        ])
        .args(["-X", "STATUS INBOX (MESSAGES UIDVALIDITY)"])
        .arg(format!("imap://127.0.0.1:{}/", server.port("imap")))
        .output()
        .expect("curl");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("MESSAGES 3"), "{status}");
    let uidvalidity = status
        .split("UIDVALIDITY ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .expect("uidvalidity");
    assert_eq!(uidl, [1, 2, 3].map(|uid| format!("{uidvalidity}.{uid}")));
}

#[test]
fn mbsync_mirrors_the_account_and_pushes_changes_back() {
    let server = server();
    let dir = server.dir.path();
    let maildir = dir.join("mirror");
    std::fs::create_dir_all(&maildir).expect("mkdir");
    let rc = dir.join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount tern\nHost 127.0.0.1\nPort {port}\nUser alice@example.test\nPass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore tern-remote\nAccount tern\n\n\
             MaildirStore local\nPath {path}/\nInbox {path}/INBOX\nSubFolders Verbatim\n\n\
             Channel tern\nFar :tern-remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            port = server.port("imap"),
            path = maildir.display()
        ),
    )
    .expect("write rc");
    let sync = || {
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&rc)
            .arg("-a")
            .env("HOME", dir)
            .output()
            .expect("run mbsync");
        assert!(
            out.status.success(),
            "mbsync failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sync();
    let inbox_new = maildir.join("INBOX/cur");
    let inbox_fresh = maildir.join("INBOX/new");
    let mut files: Vec<_> = std::fs::read_dir(&inbox_new)
        .into_iter()
        .chain(std::fs::read_dir(&inbox_fresh))
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect();
    assert_eq!(contents.len(), 3, "{files:?}");
    // mbsync stores with LF line ends and adds its X-TUID tracking header; the rest must be
    // the message as delivered.
    let normalize = |m: &[u8]| -> String {
        String::from_utf8_lossy(m)
            .replace("\r\n", "\n")
            .lines()
            .filter(|l| !l.starts_with("X-TUID: "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    for original in [FIRST, SECOND, THIRD] {
        assert!(
            contents.iter().any(|c| normalize(c) == normalize(original)),
            "missing {:?} in {:?}",
            String::from_utf8_lossy(original),
            contents
                .iter()
                .map(|c| String::from_utf8_lossy(c))
                .collect::<Vec<_>>()
        );
    }
    for special in ["Sent", "Trash", "Junk", "Drafts", "Archive"] {
        assert!(maildir.join(special).is_dir(), "{special} not mirrored");
    }
    // Delete one message locally (mark trashed in the maildir name) and sync: gone on Tern.
    let victim = &files[0];
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let trashed = if name.contains(":2,") {
        format!("{name}T")
    } else {
        format!("{name}:2,T")
    };
    std::fs::rename(victim, maildir.join("INBOX/cur").join(trashed)).expect("trash locally");
    sync();
    let pop: serde_json::Value = serde_json::from_str(&python(
        "pop3_dump.py",
        &[
            "127.0.0.1",
            &server.port("pop3").to_string(),
            "alice@example.test",
            PASSWORD,
        ],
    ))
    .expect("json");
    assert_eq!(pop["stat"][0], 2, "{pop}");
}
