//! A nearly full data volume (security issue 17): new mail gets temporary errors before any
//! of it is written (SMTP `452 4.3.1` at MAIL, IMAP `NO [OVERQUOTA]` at APPEND), mail already
//! accepted stays, and mail flows again once space is freed. One test on a real small tmpfs
//! (needs root to mount it; elsewhere it says why it is skipped), one with a configured minimum
//! above what the volume has.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::wire::Wire;
use support::{PASSWORD, TestServer};

const MESSAGE: &str = "From: a@remote.test\r\nSubject: hello\r\n\r\nhello\r\n";

/// Sends one message over SMTP; the reply to MAIL, and to the final dot when MAIL was taken.
fn send(server: &TestServer) -> String {
    let mut wire = Wire::connect(server.addr("smtp"));
    wire.line();
    wire.smtp("EHLO client.test");
    let mail = wire.smtp("MAIL FROM:<a@remote.test>");
    if !mail.starts_with("250") {
        return mail;
    }
    assert!(wire.smtp("RCPT TO:<alice@example.test>").starts_with("250"));
    assert!(wire.smtp("DATA").starts_with("354"));
    wire.smtp(&format!("{MESSAGE}."))
}

/// APPENDs one message over IMAP; the tagged reply.
fn append(server: &TestServer) -> String {
    let mut wire = Wire::connect(server.addr("imap"));
    wire.line();
    let (_, ok) = wire.imap("a", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("a OK"), "{ok}");
    wire.send(format!("b APPEND INBOX {{{}}}\r\n", MESSAGE.len()));
    assert!(wire.line().starts_with('+'));
    wire.send(format!("{MESSAGE}\r\n"));
    wire.imap_until("b").1
}

/// Messages in alice's INBOX.
fn inbox_count(server: &TestServer) -> usize {
    let mut wire = Wire::connect(server.addr("imap"));
    wire.line();
    wire.imap("a", &format!("LOGIN alice@example.test {PASSWORD}"));
    let (untagged, _) = wire.imap("b", "STATUS INBOX (MESSAGES)");
    let status = untagged.join(" ");
    let count = status
        .rsplit("MESSAGES ")
        .next()
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok());
    count.unwrap_or_else(|| panic!("no message count in {status:?}"))
}

#[test]
fn a_minimum_above_the_free_space_refuses_new_mail_for_now() {
    let server = TestServer::start_with(
        &["smtp", "imap"],
        &["alice"],
        "[limits]\nmin_free_space = 9000000000000000000\n",
    );
    assert!(send(&server).starts_with("452 4.3.1 "));
    assert!(append(&server).starts_with("b NO [OVERQUOTA] "));
    assert_eq!(inbox_count(&server), 0);
    assert!(
        server
            .log()
            .contains("refusing new mail with temporary errors")
    );
}

/// A tmpfs mounted over a directory; detached (lazily: the server may still hold files) when
/// dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn on_a_nearly_full_volume_new_mail_waits_and_flows_again_once_space_is_freed() {
    let mut server = TestServer::prepare(&["smtp", "imap"], &[], "");
    // 64 MiB: the default minimum is then 5 % of it, 3.2 MiB.
    let Some(_tmpfs) = Tmpfs::mount(&server.data_dir(), "64m") else {
        eprintln!("skipped: mounting a tmpfs needs root (or CAP_SYS_ADMIN)");
        return;
    };
    server.admin_ok(
        &["user", "add", "alice@example.test"],
        Some(&format!("{PASSWORD}\n")),
    );
    server.launch();
    assert!(send(&server).starts_with("250 "));
    assert!(append(&server).starts_with("b OK "));
    // Fill the volume to 2 MiB short of full: below the minimum, not out of space.
    let free = || {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(server.data_dir())
            .output()
            .expect("df");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .expect("df figure")
    };
    let filler = server.data_dir().join("filler");
    let fill = free() - (2 << 20);
    std::fs::write(&filler, vec![0x5a; usize::try_from(fill).expect("size")]).expect("fill");
    assert!(send(&server).starts_with("452 4.3.1 "));
    assert!(append(&server).starts_with("b NO [OVERQUOTA] "));
    // What was accepted before is still there; the server keeps serving.
    assert_eq!(inbox_count(&server), 2);
    // Space freed: mail flows again.
    std::fs::remove_file(&filler).expect("remove filler");
    assert!(send(&server).starts_with("250 "));
    assert!(append(&server).starts_with("b OK "));
    assert_eq!(inbox_count(&server), 4);
    let log = server.log();
    assert!(
        log.contains("refusing new mail with temporary errors"),
        "{log}"
    );
    assert!(log.contains("accepting new mail again"), "{log}");
    server.stop();
}
