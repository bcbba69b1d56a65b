//! `tern serve` started as root gives root up after binding (security issue 17): every thread
//! of the running server has the configured user's uids and gids, mail still flows (the store
//! works as that user), and without a user to switch to it refuses to start instead of serving
//! as root. These tests need root; elsewhere they print why they are skipped.

mod support;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};

use support::wire::Wire;
use support::{PASSWORD, TestServer};

/// The `Uid:` or `Gid:` line of a `/proc/.../status` file: real, effective, saved, filesystem.
fn ids(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line in:\n{status}"))
        .split_whitespace()
        .map(|id| id.parse().expect("numeric id"))
        .collect()
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    if ids(&status, "Uid:")[1] == 0 {
        return true;
    }
    eprintln!("skipped: switching users needs root, and this test runs as another user");
    false
}

/// `id <flag> <user>`: the user's uid (`-u`) or primary gid (`-g`).
fn id_of(flag: &str, user: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, user])
        .output()
        .expect("run id");
    assert!(out.status.success(), "id {flag} {user} failed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

/// Gives the data directory to `user` (as an operator would with `chown -R`) and lets everyone
/// pass through the test's private temp directory to reach it.
fn hand_data_dir_to(server: &TestServer, user: &str) {
    let dir = server.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(server.data_dir())
        .status()
        .expect("run chown");
    assert!(status.success(), "chown -R {user}: failed");
}

#[test]
fn serve_started_as_root_runs_every_thread_as_the_configured_user_and_still_delivers_mail() {
    if !running_as_root() {
        return;
    }
    let (uid, gid) = (id_of("-u", "nobody"), id_of("-g", "nobody"));
    let mut server = TestServer::prepare(&["smtp", "pop3"], &["alice"], "");
    server.set_run_as("user = \"nobody\"");
    hand_data_dir_to(&server, "nobody");
    // Started with root's group as a supplementary group, which must not survive the switch
    // (setpriv is in util-linux; without it only the uids and gids are checked).
    if Command::new("setpriv").arg("--version").output().is_ok() {
        server.launch_via(&["setpriv", "--groups", "0", "--"]);
    } else {
        eprintln!("setpriv is not installed: supplementary groups are not checked");
        server.launch();
    }

    // Every thread, not just the main one: the async runtime's workers existed before the switch.
    let tasks = format!("/proc/{}/task", server.pid());
    let mut threads = 0;
    for task in std::fs::read_dir(&tasks).expect("task directory") {
        let status = task.expect("task").path().join("status");
        let Ok(status) = std::fs::read_to_string(&status) else {
            continue; // the thread ended meanwhile
        };
        assert_eq!(
            ids(&status, "Uid:"),
            [uid; 4],
            "uids of a thread:\n{status}"
        );
        assert_eq!(
            ids(&status, "Gid:"),
            [gid; 4],
            "gids of a thread:\n{status}"
        );
        let groups = status
            .lines()
            .find_map(|line| line.strip_prefix("Groups:"))
            .unwrap_or_default();
        assert!(
            !groups.split_whitespace().any(|g| g == "0"),
            "root's group is kept as a supplementary group: {groups}"
        );
        threads += 1;
    }
    assert!(
        threads > 1,
        "expected the runtime's worker threads in {tasks}"
    );
    assert!(server.log().contains("gave up root"), "{}", server.log());

    // The store works as that user: a message is accepted, stored and read back.
    let mut smtp = Wire::connect(server.addr("smtp"));
    assert!(smtp.smtp_reply()[0].starts_with("220"));
    assert!(smtp.smtp("EHLO privs.test").starts_with("250"));
    assert!(smtp.smtp("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(smtp.smtp("RCPT TO:<alice@example.test>").starts_with("250"));
    assert!(smtp.smtp("DATA").starts_with("354"));
    smtp.send("Subject: as nobody\r\n\r\nhello\r\n");
    let reply = smtp.smtp(".");
    assert!(reply.starts_with("250"), "{reply}\n{}", server.log());
    let mut pop3 = Wire::connect(server.addr("pop3"));
    assert!(pop3.line().starts_with("+OK"));
    assert!(pop3.pop3("USER alice@example.test").starts_with("+OK"));
    assert!(pop3.pop3(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    assert!(pop3.pop3("STAT").starts_with("+OK 1 "));
    server.stop();
}

#[test]
fn serve_started_as_root_without_a_user_to_switch_to_refuses_before_binding() {
    if !running_as_root() {
        return;
    }
    if user_exists("tern") {
        eprintln!("skipped: this machine has a `tern` user, which serve would switch to");
        return;
    }
    let server = TestServer::prepare(&["smtp"], &[], "");
    server.set_run_as("");
    let (status, stderr) = server.serve_until_exit();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("does not keep running as root"), "{stderr}");
    assert!(stderr.contains("useradd --system"), "{stderr}");
    assert!(stderr.contains("allow_root = true"), "{stderr}");
    assert!(
        !stderr.contains("listening"),
        "bound a port first:\n{stderr}"
    );
}

#[test]
fn serve_refuses_a_data_directory_the_configured_user_does_not_own_and_names_the_chown() {
    if !running_as_root() {
        return;
    }
    let server = TestServer::prepare(&["smtp"], &["alice"], "");
    server.set_run_as("user = \"nobody\"");
    let (status, stderr) = server.serve_until_exit();
    assert!(!status.success(), "{stderr}");
    let chown = format!("chown -R nobody: {}", server.data_dir().display());
    assert!(stderr.contains(&chown), "{stderr}");
}

#[test]
fn admin_commands_started_as_root_leave_every_file_to_the_owner_of_the_data_directory() {
    if !running_as_root() {
        return;
    }
    let server = TestServer::prepare(&["smtp"], &["alice"], "");
    hand_data_dir_to(&server, "nobody");
    // DKIM keys are new files (mode 0600): owned by root, the server as nobody could not read them.
    server.admin_ok(&["dkim", "generate", "example.test"], None);
    server.admin_ok(
        &["user", "add", "bob@example.test"],
        Some(&format!("{PASSWORD}\n")),
    );
    let uid = id_of("-u", "nobody");
    let mut pending = vec![server.data_dir()];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read data directory") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            assert_eq!(meta.uid(), uid, "{} is not nobody's", path.display());
            if meta.is_dir() {
                pending.push(path);
            }
            seen += 1;
        }
    }
    assert!(seen > 3, "expected the database and the DKIM keys");
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `dist/tern.service` is a valid unit (checked by systemd itself, with `ExecStart` pointed at
/// the binary under test, since verify insists that it exists).
#[test]
fn the_shipped_systemd_unit_passes_systemd_analyze_verify() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/tern.service");
    let text = std::fs::read_to_string(&unit).expect("dist/tern.service");
    for setting in [
        "User=tern",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tern",
    ] {
        assert!(text.contains(setting), "dist/tern.service lacks {setting}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped the verify step: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("tern.service");
    let text = text.replace("/usr/local/bin/tern", env!("CARGO_BIN_EXE_tern"));
    std::fs::write(&copy, text).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only complaints about our unit count; verify also loads the host's units (absent in a
    // container) and reports on them.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("tern.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}
