//! The admin CLI and `tern serve`, run as the real binary on a temporary data directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

mod support;

fn tern(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("TERN_CONFIG")
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

fn ok(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = tern(data_dir, args, stdin);
    assert!(
        out.status.success(),
        "tern {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn fails(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = tern(data_dir, args, stdin);
    assert!(
        !out.status.success(),
        "tern {args:?} unexpectedly succeeded"
    );
    String::from_utf8(out.stderr).expect("utf-8 output")
}

fn authenticates(data_dir: &Path, user: &str, password: &str) -> bool {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // As a client, like the admin commands: it may run beside a server on this directory.
        let options = tern_store::StoreOptions {
            role: tern_store::StoreRole::Client,
            ..tern_store::StoreOptions::new(data_dir)
        };
        let store = tern_store::Store::open(options).await.expect("open store");
        let directory =
            tern_directory::Directory::new(store, tern_directory::DirectoryConfig::default())
                .expect("directory");
        directory
            .authenticate(
                user,
                &tern_common::Secret::new(password),
                "127.0.0.1".parse().expect("ip"),
            )
            .await
            .is_ok()
    })
}

#[test]
fn domains_users_and_aliases_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    assert!(ok(data, &["domain", "add", "example.com"], None).contains("example.com"));
    assert!(ok(data, &["domain", "list"], None).contains("example.com"));
    let err = fails(data, &["domain", "add", "example.com"], None);
    assert!(err.contains("example.com"), "{err}");

    ok(
        data,
        &["user", "add", "alice@example.com", "--name", "Alice"],
        Some("first-secret\n"),
    );
    let list = ok(data, &["user", "list"], None);
    assert!(list.contains("alice@example.com"), "{list}");
    assert!(authenticates(data, "alice@example.com", "first-secret"));

    // Duplicate user, unknown domain and an invalid address are clear errors.
    let err = fails(
        data,
        &["user", "add", "alice@example.com"],
        Some("x-secret-1\n"),
    );
    assert!(err.contains("alice@example.com"), "{err}");
    let err = fails(
        data,
        &["user", "add", "bob@example.org"],
        Some("x-secret-1\n"),
    );
    assert!(err.contains("example.org"), "{err}");
    fails(
        data,
        &["user", "add", "not an address"],
        Some("x-secret-1\n"),
    );

    let pw_file = data.join("pw");
    std::fs::write(&pw_file, "second-secret\n").expect("write password file");
    ok(
        data,
        &[
            "user",
            "passwd",
            "alice@example.com",
            "--password-file",
            pw_file.to_str().expect("utf-8 path"),
        ],
        None,
    );
    assert!(!authenticates(data, "alice@example.com", "first-secret"));
    assert!(authenticates(data, "alice@example.com", "second-secret"));

    ok(
        data,
        &["alias", "add", "info@example.com", "alice@example.com"],
        None,
    );
    let aliases = ok(data, &["alias", "list"], None);
    assert!(
        aliases.contains("info@example.com\talice@example.com"),
        "{aliases}"
    );
    let err = fails(
        data,
        &["alias", "add", "info@example.org", "alice@example.com"],
        None,
    );
    assert!(err.contains("example.org"), "{err}");

    // A domain still in use cannot be removed.
    fails(data, &["domain", "remove", "example.com"], None);
    ok(data, &["alias", "remove", "info@example.com"], None);
    ok(data, &["user", "remove", "alice@example.com"], None);
    assert!(!ok(data, &["user", "list"], None).contains("alice@example.com"));
    fails(data, &["user", "remove", "alice@example.com"], None);
    ok(data, &["domain", "remove", "example.com"], None);
    assert!(!ok(data, &["domain", "list"], None).contains("example.com"));
}

#[test]
fn send_as_addresses_are_managed_from_the_command_line_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    ok(data, &["domain", "add", "example.com"], None);
    ok(
        data,
        &["user", "add", "alice@example.com"],
        Some("first-secret\n"),
    );
    ok(
        data,
        &["alias", "add", "info@example.com", "alice@example.com"],
        None,
    );

    let added = ok(
        data,
        &[
            "user",
            "send-as",
            "add",
            "alice@example.com",
            "info@example.com",
        ],
        None,
    );
    assert!(added.contains("info@example.com"), "{added}");
    let list = ok(
        data,
        &["user", "send-as", "list", "alice@example.com"],
        None,
    );
    assert_eq!(list.trim(), "info@example.com");

    // A foreign domain, an unknown account, a duplicate and a missing entry say what is wrong.
    for (args, expected) in [
        (
            ["add", "alice@example.com", "ceo@example.org"],
            "unknown domain example.org",
        ),
        (
            ["add", "ghost@example.com", "info@example.com"],
            "no user ghost@example.com",
        ),
        (
            ["add", "alice@example.com", "INFO@example.com"],
            "already exists",
        ),
        (
            ["remove", "alice@example.com", "x@example.com"],
            "not on the send-as list",
        ),
    ] {
        let err = fails(data, &[&["user", "send-as"][..], &args].concat(), None);
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    ok(
        data,
        &[
            "user",
            "send-as",
            "remove",
            "alice@example.com",
            "info@example.com",
        ],
        None,
    );
    assert!(
        ok(
            data,
            &["user", "send-as", "list", "alice@example.com"],
            None
        )
        .is_empty()
    );
}

#[test]
fn config_check_reports_every_error_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, include_str!("../../../tern.example.toml")).expect("write");
    let out = ok(
        dir.path(),
        &["config", "check", good.to_str().expect("path")],
        None,
    );
    assert!(out.contains("ok"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[limits]\nmax_connections = 0\n[[listener]]\nprotocol = \"smtp\"\nbind = \"nowhere\"\n\
         [[listener]]\nprotocol = \"lmtp\"\nbind = \"0.0.0.0:24\"\n",
    )
    .expect("write");
    let err = fails(
        dir.path(),
        &["config", "check", bad.to_str().expect("path")],
        None,
    );
    assert!(err.contains("listener[0].bind"), "{err}");
    assert!(err.contains("limits.max_connections"), "{err}");
    // An LMTP port open to the network would take anyone's mail for any local user.
    assert!(
        err.contains("listener[1].bind: LMTP has no authentication"),
        "{err}"
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "hostnme = \"typo\"\n").expect("write");
    let err = fails(
        dir.path(),
        &["config", "check", unknown.to_str().expect("path")],
        None,
    );
    assert!(err.contains("hostnme"), "{err}");
}

#[test]
fn serve_without_config_creates_postmaster_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    let (mut child, stdout) = start_serve(data);
    support::terminate(&mut child);
    let printed = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("stdout");
    let line = printed.lines().next().expect("a line on stdout");
    assert!(line.contains("postmaster@localhost"), "{line}");
    let password = line
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("password on the first line")
        .to_owned();
    assert!(authenticates(data, "postmaster@localhost", &password));

    // A second start finds the account and prints no new password.
    let (mut child, stdout) = start_serve(data);
    support::terminate(&mut child);
    let printed = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("stdout");
    assert!(!printed.contains("password"), "{printed}");
}

/// Starts `tern serve` on `data_dir` without a config file and waits until it logs that it
/// runs. The receiver yields everything it printed on stdout once it has exited.
fn start_serve(data_dir: &Path) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("serve")
        // The tests run as root where there is no `tern` user to switch to.
        .arg("--allow-root")
        .env_remove("TERN_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern serve");
    let stderr = child.stderr.take().expect("stderr");
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("tern is running") {
                let _ = ready_tx.send(());
            }
        }
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = out_tx.send(text);
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("tern serve did not report readiness");
    (child, out_rx)
}
