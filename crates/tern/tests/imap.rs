//! IMAP against the real binary with independent clients: Python's imaplib, mbsync (isync),
//! curl and mutt; mail arrives over SMTP and is compared byte for byte.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

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

/// Strips terminal control sequences (CSI `ESC [ ... letter`, charset selections `ESC ( B`)
/// from what a curses program drew, leaving the text.
fn screen_text(raw: &[u8]) -> String {
    let mut out = String::new();
    let text = String::from_utf8_lossy(raw);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                while chars.next_if(|c| !c.is_ascii_alphabetic()).is_some() {}
                chars.next();
            }
            Some('(' | ')') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

#[test]
fn mutt_in_batch_mode_lists_the_inbox_and_copies_both_messages() {
    const ALPHA: &[u8] = b"From: a@example.org\r\nSubject: mutt-alpha-4711\r\n\r\nfirst body\r\n";
    const BETA: &[u8] = b"From: b@example.org\r\nSubject: mutt-beta-4712\r\n\r\nsecond body\r\n";
    let version = Command::new("mutt").arg("-v").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "mutt is required for this test (scripts/test.sh installs it: apt-get install mutt)"
    );
    let mut server = TestServer::prepare(&["imap"], &["alice"], "");
    server.seed_inbox("alice", &[ALPHA, BETA]);
    server.launch();
    let dir = server.dir.path();
    let saved = dir.join("saved.mbox");
    let rc = dir.join("muttrc");
    // No ~/.muttrc (-n, HOME is the test directory), no header or body cache, nothing to
    // confirm; `folder` is set so that mutt does not offer to create ~/Mail (that prompt
    // would eat the pushed keys). The pushed keys run once the index is drawn: tag every
    // message, copy the tagged ones to a local mbox (FETCH BODY[] of each), quit.
    std::fs::write(
        &rc,
        format!(
            "set folder=\"imap://127.0.0.1:{port}/\"\nset spoolfile=\"+INBOX\"\n\
             set imap_user=\"alice@example.test\"\nset imap_pass=\"{PASSWORD}\"\n\
             set header_cache=\"\"\nset message_cachedir=\"\"\n\
             set ssl_starttls=no\nset ssl_force_tls=no\n\
             set confirmcreate=no\nset confirmappend=no\nset quit=yes\nset move=no\n\
             set delete=no\nset mark_old=no\nset mbox_type=mbox\nset sort=mailbox-order\n\
             set index_format=\"IDX[%C|%s]\"\n\
             push \"<tag-pattern>~A<enter><tag-prefix><copy-message>{saved}<enter><quit>\"\n",
            saved = saved.display(),
            port = server.port("imap"),
        ),
    )
    .expect("write muttrc");
    // mutt is a curses program: `script` gives it a terminal and records what it drew. Its
    // stdin stays open (and silent) until mutt is done: at EOF `script` would type ^D into
    // the terminal, which mutt takes as a key.
    let mut child = Command::new("timeout")
        .arg("60")
        .arg("script")
        .arg("-qec")
        .arg(format!(
            "mutt -n -F {} -f imap://127.0.0.1:{}/INBOX",
            rc.display(),
            server.port("imap")
        ))
        .arg("/dev/null")
        .env("HOME", dir)
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mutt under script");
    let stdin = child.stdin.take();
    let out = child.wait_with_output().expect("wait for mutt");
    drop(stdin);
    let screen = screen_text(&out.stdout);
    assert!(
        out.status.success(),
        "mutt failed ({:?}):\n{screen}",
        out.status
    );
    // The index lists both messages of the INBOX, in order (LIST, SELECT, FETCH headers).
    let alpha = screen.find("IDX[1|mutt-alpha-4711]");
    let beta = screen.find("IDX[2|mutt-beta-4712]");
    assert!(
        alpha.is_some() && alpha < beta,
        "index not listed in order:\n{screen}"
    );
    // The copies hold the messages as stored (FETCH BODY[]); mutt writes LF line ends.
    let mbox = std::fs::read_to_string(&saved)
        .unwrap_or_else(|e| panic!("mutt saved nothing ({e}):\n{screen}"));
    for (subject, body) in [
        ("mutt-alpha-4711", "first body"),
        ("mutt-beta-4712", "second body"),
    ] {
        assert!(
            mbox.contains(&format!("Subject: {subject}\n")) && mbox.contains(body),
            "{subject} missing from the copy:\n{mbox}\n{screen}"
        );
    }
    assert_eq!(
        mbox.matches("\nFrom ").count() + usize::from(mbox.starts_with("From ")),
        2
    );
}

#[test]
fn a_multiappend_with_one_bad_message_stores_none_of_them() {
    let mut server =
        TestServer::start_with(&["imap"], &["alice"], "[limits]\nmax_message_size = 2000\n");
    let mut wire = support::wire::Wire::connect(server.addr("imap"));
    wire.line();
    let (_, ok) = wire.imap("l", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK"), "{ok}");
    let first = |tag: &str| {
        let mut command =
            format!("{tag} APPEND INBOX (\\Seen) {{{}+}}\r\n", FIRST.len()).into_bytes();
        command.extend_from_slice(FIRST);
        command
    };
    // RFC 3502 §3: the second message has an unknown system flag, a day that does not
    // exist, a literal over APPENDLIMIT: the first one is not stored either.
    for (tag, second, expected) in [
        ("a", &b" (\\Bogus) {1+}\r\nx\r\n"[..], "a BAD"),
        (
            "b",
            b" \"30-Feb-2024 10:00:00 +0000\" {1+}\r\nx\r\n",
            "b BAD",
        ),
        ("c", b" {2001}\r\n", "c NO [TOOBIG]"),
    ] {
        let mut command = first(tag);
        command.extend_from_slice(second);
        wire.send(command);
        let (_, tagged) = wire.imap_until(tag);
        assert!(tagged.starts_with(expected), "{tagged}");
    }
    let (untagged, ok) = wire.imap("s", "STATUS INBOX (MESSAGES UIDNEXT)");
    assert_eq!(ok, "s OK STATUS completed");
    assert_eq!(untagged, ["* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1)"]);
    drop(wire);
    server.stop();
    // No blob row (or file) of the first message was left behind.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = tern_store::Store::open(tern_store::StoreOptions::new(server.data_dir()))
            .await
            .expect("open store");
        let blob = tern_store::BlobId::of(FIRST);
        assert_eq!(store.blob_info(&blob).await.expect("blob info"), None);
        store.check_integrity().await.expect("integrity");
        store.close().await;
    });
}
