//! POP3 against the real binary with independent clients: Python's poplib, fetchmail and curl.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{PASSWORD, TestServer, python};

const FIRST: &[u8] = b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: one\r\n\r\nHello\r\n.leading dot line\r\n";
const SECOND: &[u8] =
    b"From: b@example.org\r\nSubject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\nline 4\r\n";

fn server() -> TestServer {
    let mut server = TestServer::prepare(&["pop3", "pop3s"], &["alice", "bob"], "");
    server.seed_inbox("alice", &[FIRST, SECOND]);
    server.launch();
    server
}

fn dump(server: &TestServer, listener: &str, extra: &[&str]) -> Value {
    let port = server.port(listener).to_string();
    let mut args = vec!["127.0.0.1", &port, "alice@example.test", PASSWORD];
    args.extend_from_slice(extra);
    serde_json::from_str(&python("pop3_dump.py", &args)).expect("json from pop3_dump.py")
}

fn decoded(value: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("base64 string"))
        .expect("valid base64")
}

#[test]
fn poplib_reads_the_maildrop_byte_exact_and_sizes_match() {
    let server = server();
    let v = dump(&server, "pop3", &["--top", "2", "1"]);
    assert!(v.get("error").is_none(), "{v}");
    let total = FIRST.len() + SECOND.len();
    assert_eq!(v["stat"], serde_json::json!([2, total]));
    assert_eq!(
        v["list"],
        serde_json::json!([[1, FIRST.len()], [2, SECOND.len()]])
    );
    assert_eq!(decoded(&v["messages"][0]), FIRST);
    assert_eq!(decoded(&v["messages"][1]), SECOND);
    assert_eq!(
        decoded(&v["top"]),
        b"From: b@example.org\r\nSubject: two\r\n\r\nline 1\r\n"
    );
    // UIDL is stable across sessions.
    let again = dump(&server, "pop3", &[]);
    assert_eq!(v["uidl"], again["uidl"]);
    let capa = v["capa"].as_object().expect("capa");
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "SASL",
        "RESP-CODES",
        "PIPELINING",
        "STLS",
    ] {
        assert!(capa.contains_key(cap), "CAPA lacks {cap}: {capa:?}");
    }
}

#[test]
fn dele_then_quit_removes_and_dele_then_disconnect_keeps() {
    let server = server();
    let kept = dump(&server, "pop3", &["--dele", "1", "--no-quit"]);
    assert!(kept.get("error").is_none(), "{kept}");
    assert_eq!(dump(&server, "pop3", &[])["stat"][0], 2);

    let removed = dump(&server, "pop3", &["--dele", "1"]);
    assert!(removed.get("error").is_none(), "{removed}");
    let after = dump(&server, "pop3", &[]);
    assert_eq!(after["stat"][0], 1);
    assert_eq!(decoded(&after["messages"][0]), SECOND);
    // The remaining message keeps its UIDL.
    assert_eq!(after["uidl"][0][1], removed["uidl"][1][1]);
}

#[test]
fn wrong_password_and_unknown_user_are_refused_alike() {
    let server = server();
    let port = server.port("pop3").to_string();
    let bad: Value = serde_json::from_str(&python(
        "pop3_dump.py",
        &["127.0.0.1", &port, "alice@example.test", "wrong-password"],
    ))
    .expect("json");
    let unknown: Value = serde_json::from_str(&python(
        "pop3_dump.py",
        &["127.0.0.1", &port, "nobody@example.test", "wrong-password"],
    ))
    .expect("json");
    assert!(
        bad["error"].as_str().expect("error").starts_with("-ERR"),
        "{bad}"
    );
    assert_eq!(bad["error"], unknown["error"]);
}

#[test]
fn stls_and_implicit_tls_both_work() {
    let server = server();
    let v = dump(&server, "pop3", &["--stls"]);
    assert_eq!(v["stat"][0], 2, "{v}");
    let v = dump(&server, "pop3s", &["--ssl"]);
    assert_eq!(v["stat"][0], 2, "{v}");
}

#[test]
fn curl_lists_and_retrieves() {
    let server = server();
    let port = server.port("pop3");
    let user = format!("alice@example.test:{PASSWORD}");
    let list = Command::new("curl")
        .args(["-s", "--max-time", "20", "-u", &user])
        .arg(format!("pop3://127.0.0.1:{port}/"))
        .output()
        .expect("curl");
    assert!(list.status.success(), "{list:?}");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&format!("1 {}", FIRST.len())), "{text}");
    let retr = Command::new("curl")
        .args(["-s", "--max-time", "20", "-u", &user])
        .arg(format!("pop3://127.0.0.1:{port}/2"))
        .output()
        .expect("curl");
    assert!(retr.status.success(), "{retr:?}");
    assert_eq!(retr.stdout, SECOND);
}

#[test]
fn fetchmail_downloads_everything_over_pop3s() {
    let server = server();
    let dir = server.dir.path();
    let mbox = dir.join("fetched.mbox");
    let rc = dir.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no syslog\npoll 127.0.0.1 with proto POP3 port {port}\n  user \"alice@example.test\" there with password \"{PASSWORD}\" is root here\n  options ssl no sslcertck fetchall\n  mda \"/bin/sh -c 'cat >> {mbox}'\"\n",
            port = server.port("pop3s"),
            mbox = mbox.display()
        ),
    )
    .expect("write rc");
    let mut perms = std::fs::metadata(&rc).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&rc, perms).expect("chmod");
    let out = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .args(["--nodetach", "--pidfile"])
        .arg(dir.join("fetchmail.pid"))
        .env("HOME", dir)
        .output()
        .expect("run fetchmail");
    let fetched = std::fs::read(&mbox).unwrap_or_default();
    let fetched = String::from_utf8_lossy(&fetched);
    assert!(
        fetched.contains("Subject: one") && fetched.contains("Subject: two"),
        "fetchmail: {}\n{}\nmbox: {fetched}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fetched.contains(".leading dot line"), "{fetched}");
    // fetchall without keep deletes on the server.
    assert_eq!(dump(&server, "pop3", &[])["stat"][0], 0);
}

/// Reads one CRLF-terminated line.
fn read_line(reader: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read line");
    line
}

#[test]
fn hostile_input_gets_err_and_the_server_keeps_serving() {
    use std::io::{BufReader, Write};
    let server = server();
    let stream = std::net::TcpStream::connect(server.addr("pop3")).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    assert!(read_line(&mut reader).starts_with("+OK"));
    // An over-long line, invalid UTF-8 and an unknown command: each an -ERR, no disconnect.
    writer.write_all(&vec![b'A'; 100_000]).expect("write");
    writer
        .write_all(b"\r\n\xff\xfe\r\nFROB\r\n")
        .expect("write");
    for _ in 0..3 {
        assert!(read_line(&mut reader).starts_with("-ERR"));
    }
    // A second session for a locked maildrop is refused with IN-USE.
    writer
        .write_all(format!("USER alice@example.test\r\nPASS {PASSWORD}\r\n").as_bytes())
        .expect("write");
    assert!(read_line(&mut reader).starts_with("+OK"));
    assert!(read_line(&mut reader).starts_with("+OK"));
    let second = dump(&server, "pop3", &[]);
    assert!(
        second["error"]
            .as_str()
            .unwrap_or_default()
            .contains("[IN-USE]"),
        "{second}"
    );
    writer.write_all(b"QUIT\r\n").expect("write");
    assert!(read_line(&mut reader).starts_with("+OK"));
    // And the server still serves everyone.
    assert_eq!(dump(&server, "pop3", &[])["stat"][0], 2);
}
