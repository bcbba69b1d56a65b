//! A real `tern` process on ephemeral loopback ports, for integration tests that talk to it
//! with independent clients (Python's smtplib/imaplib/poplib, swaks, curl, fetchmail, ...).
#![allow(dead_code)] // each test crate uses a different part of this module

pub mod memory;
pub mod wire;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The password every test user gets.
pub const PASSWORD: &str = "test-password-1";

/// Test servers keep running as root where the tests run as root (CI), which has no `tern` user;
/// `privileges.rs` tests the switch.
const RUN_AS_ROOT: &str = "allow_root = true\n";

pub struct TestServer {
    pub dir: tempfile::TempDir,
    /// The mail domain of this instance (`example.test` unless [`Instance`] says otherwise).
    pub domain: String,
    pub config: PathBuf,
    child: Option<Child>,
    /// Listener name → bound address, as the server logged them.
    pub addrs: HashMap<String, SocketAddr>,
}

impl TestServer {
    /// Writes a config with one listener per protocol in `protocols` (names like "smtp",
    /// "pop3", "pop3s"), all on 127.0.0.1 port 0, the domain `example.test` and a
    /// self-signed certificate, adds `users` (local parts) and starts `tern serve`.
    pub fn start(protocols: &[&str], users: &[&str]) -> TestServer {
        Self::start_with(protocols, users, "")
    }

    /// Like [`TestServer::start`], with extra TOML appended to the config.
    pub fn start_with(protocols: &[&str], users: &[&str], extra_toml: &str) -> TestServer {
        let mut server = Self::prepare(protocols, users, extra_toml);
        server.launch();
        server
    }

    /// Writes the config and adds the users, without starting the server yet (so a test
    /// can seed mailboxes first with [`TestServer::seed_inbox`]); then call `launch`.
    pub fn prepare(protocols: &[&str], users: &[&str], extra_toml: &str) -> TestServer {
        Self::prepare_instance(protocols, users, extra_toml, &Instance::default())
    }

    /// Like [`TestServer::prepare`] for another domain, listen address or fixed ports.
    pub fn prepare_instance(
        protocols: &[&str],
        users: &[&str],
        extra_toml: &str,
        instance: &Instance,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let domain = instance.domain.as_str();
        let mut toml = format!(
            "hostname = \"mail.{domain}\"\ndomains = [\"{domain}\"]\ndata_dir = \"{}\"\n\
             {RUN_AS_ROOT}[tls]\nself_signed = true\n",
            dir.path().join("data").display()
        );
        // Plaintext logins on loopback, unless the test configures [auth] itself.
        if !extra_toml.contains("[auth]") {
            toml.push_str("[auth]\nallow_plaintext_on_loopback = true\n");
        }
        // Test clients send from loopback with senders at domains no test DNS serves; mail
        // authentication would defer them (451, DNS failure). Tests of authentication configure
        // [mail_auth] themselves (and leave loopback untrusted).
        if !extra_toml.contains("[mail_auth]") {
            toml.push_str("[mail_auth]\ntrusted_relays = [\"127.0.0.0/8\", \"::1\"]\n");
        }
        for protocol in protocols {
            let port = instance
                .ports
                .iter()
                .find(|(p, _)| p == protocol)
                .map_or(0, |(_, port)| *port);
            toml.push_str(&format!(
                "[[listener]]\nname = \"{protocol}\"\nprotocol = \"{protocol}\"\nbind = \"{}:{port}\"\n",
                instance.ip
            ));
        }
        toml.push_str(extra_toml);
        let config = dir.path().join("tern.toml");
        std::fs::write(&config, toml).expect("write config");
        let server = TestServer {
            dir,
            domain: domain.to_owned(),
            config,
            child: None,
            addrs: HashMap::new(),
        };
        for user in users {
            server.admin_ok(
                &["user", "add", &format!("{user}@{domain}")],
                Some(&format!("{PASSWORD}\n")),
            );
        }
        server
    }

    /// Appends `messages` to the INBOX of `user` (a local part) directly in the store; only
    /// while the server is not running.
    pub fn seed_inbox(&self, user: &str, messages: &[&[u8]]) {
        assert!(self.child.is_none(), "seed before launching the server");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let store = tern_store::Store::open(tern_store::StoreOptions::new(self.data_dir()))
                .await
                .expect("open store");
            let account = store
                .account_by_address(&format!("{user}@{}", self.domain))
                .await
                .expect("account lookup")
                .expect("account exists");
            let inbox = store
                .mailbox_by_name(account.id, "INBOX")
                .await
                .expect("mailbox lookup")
                .expect("INBOX exists");
            for message in messages {
                store
                    .append(
                        inbox.id,
                        bytes::Bytes::copy_from_slice(message),
                        tern_store::Flags::default(),
                        1_700_000_000,
                        tern_store::MessageMeta::default(),
                    )
                    .await
                    .expect("append");
            }
            store.close().await;
        });
    }

    pub fn launch(&mut self) {
        self.launch_via(&[]);
    }

    /// Like [`TestServer::launch`], through a wrapper that execs the server (e.g.
    /// `["setpriv", "--groups", "0", "--"]`), so the server keeps the child's pid.
    pub fn launch_via(&mut self, wrapper: &[&str]) {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_tern"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_tern")),
        };
        let mut child = command
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tern serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log_path = self.dir.path().join("tern.log");
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(log_path).ok();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("tern did not start:\n{}", self.log()));
            if let Some((name, addr)) = parse_listening(&line) {
                self.addrs.insert(name, addr);
            }
            if line.contains("tern is running") {
                break;
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.child = Some(child);
    }

    /// Replaces the `allow_root = true` line of the config (tests run as root in CI, with no
    /// `tern` user) with `top_level`, e.g. `user = "nobody"`; before `launch`.
    pub fn set_run_as(&self, top_level: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        assert!(
            text.contains(RUN_AS_ROOT),
            "the config already says who to run as"
        );
        let text = text.replacen(RUN_AS_ROOT, &format!("{top_level}\n"), 1);
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The address of the listener named `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?} in {:?}", self.addrs))
    }

    pub fn port(&self, name: &str) -> u16 {
        self.addr(name).port()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tern.log")).unwrap_or_default()
    }

    /// Runs a `tern` admin command against this server's configuration.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tern");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("wait for tern")
    }

    pub fn admin_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.admin(args, stdin);
        assert!(
            out.status.success(),
            "tern {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs another `tern serve` on this server's config and returns its exit status and
    /// standard error, for start-ups that must fail; fails the test if it is still running
    /// after 30 seconds.
    pub fn serve_until_exit(&self) -> (std::process::ExitStatus, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tern serve");
        let mut stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tern serve kept running: {}",
                    reader.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, reader.join().unwrap_or_default())
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// The server's memory now: (`VmRSS`, `VmHWM` = peak RSS so far), in KiB, from
    /// `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/<pid>/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Spool files the server has open: (how many, their total size). They are unlinked, so
    /// they are found through `/proc/<pid>/fd`, as links to `<spool>/… (deleted)`.
    pub fn open_spool_files(&self) -> (usize, u64) {
        // As the kernel names it in /proc/<pid>/fd.
        let Ok(spool) = std::fs::canonicalize(self.data_dir()).map(|d| d.join("spool")) else {
            return (0, 0);
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else {
            return (0, 0);
        };
        let mut count = 0;
        let mut size = 0;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.starts_with(&spool) {
                count += 1;
                size += std::fs::metadata(fd.path()).map_or(0, |m| m.len());
            }
        }
        (count, size)
    }

    /// Whether the server process is still running (not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL: the process dies wherever it is, as in a crash or power loss of the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
        self.addrs.clear();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Domain, listen address and fixed ports of a test server.
pub struct Instance {
    /// Mail domain; the hostname is `mail.<domain>`.
    pub domain: String,
    /// IP address every listener binds (127.0.0.1, or 127.0.0.2 / 127.0.0.3 for a second server).
    pub ip: String,
    /// Fixed ports by listener name; the others get port 0.
    pub ports: Vec<(String, u16)>,
}

impl Default for Instance {
    fn default() -> Self {
        Instance {
            domain: "example.test".into(),
            ip: "127.0.0.1".into(),
            ports: Vec::new(),
        }
    }
}

/// `... listening listener=pop3 protocol=pop3 addr=127.0.0.1:40000`
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    if !line.contains("listening") {
        return None;
    }
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_owned())
    };
    Some((field("listener=")?, field("addr=")?.parse().ok()?))
}

/// Sends SIGTERM; the process must exit successfully within ten seconds.
pub fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "tern exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "tern did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a Python script (from `tests/py/`) with arguments; returns its stdout, failing the
/// test with its stderr when it exits non-zero.
pub fn python(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Submits `body` from `from` (who logs in with [`PASSWORD`]) to `to` over `server`'s submission
/// listener on `ip`, with extra smtp_send.py arguments (`--mail-option`, `--rcpt-option`); the
/// script's JSON outcome.
pub fn submit(
    server: &TestServer,
    ip: &str,
    from: &str,
    to: &[&str],
    body: &str,
    extra: &[&str],
) -> serde_json::Value {
    let file = server.dir.path().join("message.eml");
    std::fs::write(&file, body).expect("write message");
    let port = server.port("submission").to_string();
    let mut args = vec![ip, &port, "--from", from];
    for rcpt in to {
        args.extend(["--to", rcpt]);
    }
    args.extend([
        "--file",
        file.to_str().expect("utf-8 path"),
        "--login",
        from,
        PASSWORD,
    ]);
    args.extend(extra);
    serde_json::from_str(&python("smtp_send.py", &args)).expect("json from smtp_send.py")
}

/// POP3 messages of `user` on `server` (listening on `ip`), waiting up to 30 s for at least `n`.
pub fn wait_for_messages(server: &TestServer, ip: &str, user: &str, n: usize) -> Vec<String> {
    use base64::Engine;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let port = server.port("pop3").to_string();
        let out = python("pop3_dump.py", &[ip, &port, user, PASSWORD]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("json from pop3_dump.py");
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
        if messages.len() >= n {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "{user} has {} of {n} messages",
            messages.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// dnsmasq on a free loopback port with the given record options (`--mx-host=...`,
/// `--txt-record=...`), answering nothing else from outside; killed on drop.
pub struct Dnsmasq {
    child: Child,
    pub port: u16,
}

impl Dnsmasq {
    pub fn start(records: &[String]) -> Dnsmasq {
        for _attempt in 0..5 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new("dnsmasq")
                .args([
                    "--no-daemon",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--no-resolv",
                    "--no-hosts",
                    "--conf-file=/dev/null",
                    "--pid-file=",
                ])
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("dnsmasq is required for this test (apt-get install dnsmasq): {e}")
                });
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut exited = false;
            while std::net::TcpStream::connect(addr).is_err() {
                // The port came free from a UDP probe, but its TCP side may belong to another
                // test's listener; dnsmasq then exits, and we try another port.
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
                assert!(Instant::now() < deadline, "dnsmasq did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            if exited {
                // Already reaped by try_wait; wait() just returns its status.
                let _ = child.wait();
                continue;
            }
            return Dnsmasq { child, port };
        }
        panic!("dnsmasq exited at start five times in a row (ports taken?)");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
