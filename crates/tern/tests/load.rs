//! Load against the real binary: many IMAP sessions in IDLE while concurrent SMTP sessions
//! deliver to their users. The driver is `scripts/load-idle-smtp.py` (the same one
//! `scripts/load-idle-smtp.sh` runs at full size, 10,000 sessions, against a release build);
//! here at CI size. Results of the full-size runs: docs/reliability.md.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::{PASSWORD, TestServer};

/// Users the sessions and messages are spread over.
const USERS: usize = 10;
/// IMAP sessions in IDLE.
const IDLE_SESSIONS: usize = 1_000;
/// Concurrent SMTP sessions.
const SMTP_SESSIONS: usize = 50;
/// Messages delivered while the sessions idle.
const MESSAGES: usize = 300;

#[test]
fn a_thousand_idle_sessions_see_every_message_fifty_smtp_sessions_deliver() {
    let users: Vec<String> = (1..=USERS).map(|i| format!("user{i}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    // Every client comes from 127.0.0.1: room for all sessions, the SMTP sessions and probes.
    let limit = IDLE_SESSIONS + SMTP_SESSIONS + 200;
    let server = TestServer::start_with(
        &["smtp", "imap"],
        &users,
        &format!("[limits]\nmax_connections_per_ip = {limit}\nmax_connections = {limit}\n"),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/load-idle-smtp.py");
    let started = Instant::now();
    let out = Command::new("python3")
        .arg(&script)
        .args(["--imap-port", &server.port("imap").to_string()])
        .args(["--smtp-port", &server.port("smtp").to_string()])
        .args(["--users", &USERS.to_string()])
        .args(["--user-pattern", &format!("user%d@{}", server.domain)])
        .args(["--password", PASSWORD])
        .args(["--conns", &IDLE_SESSIONS.to_string()])
        .args(["--smtp-sessions", &SMTP_SESSIONS.to_string()])
        .args(["--messages", &MESSAGES.to_string()])
        // Debug build on a shared two-core machine: generous bounds, still far below a hang.
        .args(["--probe-max", "10"])
        .args(["--exists-timeout", "60", "--step-timeout", "60"])
        .args(["--settle", "0.5", "--probe-interval", "0.5"])
        .args(["--server-pid", &server.pid().to_string()])
        // The harness starts tern with this process's soft descriptor limit, which may be
        // 1024: too few for 1,050 connections.
        .arg("--raise-server-nofile")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON result from the driver:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && result["ok"] == true,
        "load run failed: {}\n{stderr}\nserver log (tail):\n{}",
        result["failures"],
        tail(&server.log(), 30)
    );
    assert_eq!(result["opened"], IDLE_SESSIONS);
    assert_eq!(result["smtp_acked"], MESSAGES);
    assert_eq!(result["idle_sessions_reached"], IDLE_SESSIONS);
    assert_eq!(result["imap_errors"], 0);
    assert_eq!(result["smtp_errors"], 0);
    assert_eq!(result["close_errors"], 0);
    eprintln!(
        "driver {:.1} s; result: {result}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        server.log().lines().all(|l| !l.contains("ERROR")),
        "errors logged:\n{}",
        server.log()
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
