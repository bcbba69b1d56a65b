//! Interop with a real Postfix (the Debian package), started by the test with its own
//! configuration, queue and Maildir in a tempdir on 127.0.0.1 — never the system instance:
//! Tern (a.test) delivers to Postfix's virtual domain p.test over a static route with STARTTLS,
//! and Postfix relays mail for a.test to Tern's port 25 listener.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Instance, PASSWORD, TestServer, python};

const POSTFIX: &str = "/usr/sbin/postfix";
const SENDMAIL: &str = "/usr/sbin/sendmail";
/// Owner of the virtual mailboxes: `nobody`, above Postfix's `virtual_minimum_uid` (100).
const VMAIL_ID: u32 = 65534;

/// The services of Debian's master.cf that this setup uses, all unchrooted (a chroot would need
/// copies of /etc files inside the tempdir queue), with smtpd on `127.0.0.1:PORT` only.
const MASTER_CF: &str = "\
127.0.0.1:PORT inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
virtual    unix  - n n -     - virtual
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
";

/// A Postfix instance with its configuration in `<dir>/etc`, queue in `<dir>/spool`, virtual
/// Maildirs in `<dir>/vmail` and its log in `<dir>/postfix.log`; stopped on drop.
struct Postfix {
    dir: tempfile::TempDir,
    running: bool,
}

impl Postfix {
    /// Writes the configuration and starts Postfix on `port`: `user@p.test` is a virtual
    /// Maildir mailbox, and mail for `a.test` is relayed to `127.0.0.1:tern_smtp_port`.
    fn start(port: u16, tern_smtp_port: u16) -> Postfix {
        assert!(
            Path::new(POSTFIX).exists(),
            "Postfix is required for this test (apt-get install postfix)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // The delivery agents run as `postfix` and `nobody` and must reach the queue and the
        // Maildirs below the tempdir (created 0700).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let d = dir.path().display().to_string();
        for sub in ["etc", "spool", "data", "vmail"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        std::os::unix::fs::chown(dir.path().join("vmail"), Some(VMAIL_ID), Some(VMAIL_ID))
            .expect("chown vmail");
        let etc = dir.path().join("etc");
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = yes
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relay_domains = a.test
transport_maps = texthash:{d}/etc/transport
virtual_mailbox_domains = p.test
virtual_mailbox_base = {d}/vmail
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_uid_maps = static:{VMAIL_ID}
virtual_gid_maps = static:{VMAIL_ID}
smtpd_tls_security_level = may
smtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_received_header = yes
smtp_tls_security_level = may
smtp_dns_support_level = disabled
"
        );
        std::fs::write(etc.join("main.cf"), main_cf).expect("write main.cf");
        std::fs::write(
            etc.join("master.cf"),
            MASTER_CF.replace("PORT", &port.to_string()),
        )
        .expect("write master.cf");
        std::fs::write(
            etc.join("transport"),
            format!("a.test smtp:[127.0.0.1]:{tern_smtp_port}\n"),
        )
        .expect("write transport");
        std::fs::write(etc.join("vmailbox"), "user@p.test p.test/user/\n").expect("write vmailbox");
        let mut postfix = Postfix {
            dir,
            running: false,
        };
        // Creates the queue subdirectories with the owners and modes Postfix insists on.
        postfix.run(&["set-permissions"]);
        postfix.run(&["start"]);
        postfix.running = true;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix did not listen on {addr}:\n{}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// `postfix -c <etc> ARGS`, which must succeed.
    fn run(&self, args: &[&str]) {
        let out = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.etc())
            .args(args)
            .output()
            .expect("run postfix");
        assert!(
            out.status.success(),
            "postfix {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Injects `message` with Postfix's own sendmail (via its maildrop and pickup).
    fn sendmail(&self, from: &str, to: &str, message: &str) {
        let mut child = Command::new(SENDMAIL)
            .arg("-C")
            .arg(self.etc())
            .args(["-i", "-f", from, to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run Postfix's sendmail");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(message.as_bytes())
            .expect("write message");
        let out = child.wait_with_output().expect("wait for sendmail");
        assert!(
            out.status.success(),
            "sendmail failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The messages in the Maildir of `user@p.test`, waiting up to 30 s for at least one.
    fn wait_for_maildir(&self) -> Vec<String> {
        let new = self.dir.path().join("vmail/p.test/user/new");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages: Vec<String> = std::fs::read_dir(&new)
                .map(|entries| {
                    entries
                        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            if !messages.is_empty() {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "nothing in Postfix's Maildir {}",
                new.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `postfix stop`, then waits for the master to exit (SIGKILL after 10 s).
    fn stop(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let pid = std::fs::read_to_string(self.dir.path().join("spool/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .output();
        let Some(pid) = pid else { return };
        let alive = || Path::new(&format!("/proc/{pid}")).exists();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if alive() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- Postfix log ----\n{}", self.log());
        }
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Tern for a.test on 127.0.0.1 (with a DKIM key) and a Postfix, each knowing the other's port.
struct Setup {
    // Dropped first: Postfix stops before Tern.
    postfix: Postfix,
    tern: TestServer,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- Tern log ----\n{}", self.tern.log());
        }
    }
}

fn setup() -> Setup {
    let postfix_port = free_port();
    let toml = format!(
        "[outbound]\npoll_interval_seconds = 1\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\
         connect_timeout_seconds = 5\ncommand_timeout_seconds = 20\n\
         [outbound.route.\"p.test\"]\nhost = \"127.0.0.1\"\nport = {postfix_port}\n\
         tls = \"starttls\"\nverify_certificate = false\n"
    );
    let mut tern = TestServer::prepare_instance(
        &["smtp", "submission", "pop3"],
        &["alice"],
        &toml,
        &Instance {
            domain: "a.test".into(),
            ..Instance::default()
        },
    );
    tern.admin_ok(&["dkim", "generate", "a.test"], None);
    tern.launch();
    let postfix = Postfix::start(postfix_port, tern.port("smtp"));
    Setup { postfix, tern }
}

#[test]
fn tern_delivers_to_a_postfix_maildir_with_starttls_and_dkim() {
    let s = setup();
    let file = s.tern.dir.path().join("message.eml");
    std::fs::write(
        &file,
        "From: alice@a.test\r\nTo: user@p.test\r\nSubject: Tern to Postfix\r\n\r\nHello Postfix.\r\n",
    )
    .expect("write message");
    let port = s.tern.port("submission").to_string();
    let out = python(
        "smtp_send.py",
        &[
            "127.0.0.1",
            &port,
            "--from",
            "alice@a.test",
            "--to",
            "user@p.test",
            "--file",
            file.to_str().expect("utf-8 path"),
            "--login",
            "alice@a.test",
            PASSWORD,
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("json from smtp_send.py");
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");

    let got = s.postfix.wait_for_maildir();
    assert_eq!(got.len(), 1, "{got:?}");
    // The virtual agent writes the Maildir file with LF line endings.
    let m = got[0].replace("\r\n", "\n");
    assert!(m.starts_with("Return-Path: <alice@a.test>\n"), "{m}");
    assert!(m.contains("Delivered-To: user@p.test\n"), "{m}");
    assert!(
        m.contains("by postfix.test (Postfix) with ESMTPS"),
        "Postfix received it over STARTTLS: {m}"
    );
    assert!(
        m.contains("from mail.a.test (localhost [127.0.0.1])"),
        "Postfix's Received names Tern's EHLO: {m}"
    );
    assert!(
        m.contains("by mail.a.test (Tern) with ESMTPA"),
        "Tern's Received: {m}"
    );
    assert!(m.contains("DKIM-Signature:"), "{m}");
    assert!(m.contains("d=a.test"), "{m}");
    assert!(m.contains("Subject: Tern to Postfix\n"), "{m}");
    assert!(m.ends_with("\nHello Postfix.\n"), "{m}");

    // Tern's queue drains: Postfix's 250 was taken as final.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .tern
        .admin_ok(&["queue", "list"], None)
        .contains("0 message(s)")
    {
        assert!(Instant::now() < deadline, "Tern's queue did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn postfix_relays_to_tern_which_files_it_in_the_inbox() {
    let s = setup();
    s.postfix.sendmail(
        "sender@postfix.test",
        "alice@a.test",
        "From: sender@postfix.test\nTo: alice@a.test\nSubject: Postfix to Tern\n\nHello Alice.\n.\n..two dots\n",
    );

    use base64::Engine;
    let port = s.tern.port("pop3").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let out = python(
            "pop3_dump.py",
            &["127.0.0.1", &port, "alice@a.test", PASSWORD],
        );
        let v: Value = serde_json::from_str(&out).expect("json from pop3_dump.py");
        let messages: Vec<String> = v["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(m.as_str().unwrap_or_default())
                            .expect("base64");
                        String::from_utf8_lossy(&bytes).into_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !messages.is_empty() {
            break messages;
        }
        assert!(Instant::now() < deadline, "nothing in alice's INBOX: {out}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert!(
        m.starts_with("Return-Path: <sender@postfix.test>\r\n"),
        "{m}"
    );
    assert!(
        m.contains("from postfix.test"),
        "Tern's Received names Postfix's EHLO: {m}"
    );
    assert!(
        m.contains("with ESMTPS"),
        "Postfix used Tern's STARTTLS: {m}"
    );
    assert!(
        m.contains("by postfix.test (Postfix"),
        "Postfix's Received: {m}"
    );
    assert!(m.contains("Subject: Postfix to Tern\r\n"), "{m}");
    assert!(
        m.ends_with("\r\nHello Alice.\r\n.\r\n..two dots\r\n"),
        "{m}"
    );
    let log = s.postfix.log();
    assert!(
        log.contains(&format!(
            "to=<alice@a.test>, relay=127.0.0.1[127.0.0.1]:{}",
            s.tern.port("smtp")
        )) && log.contains("status=sent"),
        "{log}"
    );
}
