//! Outbound delivery between two real `tern` processes on 127.0.0.2 (a.test) and 127.0.0.3
//! (b.test), with a dnsmasq serving their MX records: submission on A, MX delivery to B (over
//! opportunistic STARTTLS), POP3 on B; bounces back to A; a queue that survives kill -9.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Dnsmasq, Instance, PASSWORD, TestServer, python};

/// A port free on both 127.0.0.2 and 127.0.0.3, so both instances listen for SMTP on it and
/// use it as their MX port.
fn shared_port() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = a.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

fn instance(domain: &str, ip: &str, smtp_port: u16) -> Instance {
    Instance {
        domain: domain.into(),
        ip: ip.into(),
        ports: vec![("smtp".into(), smtp_port)],
    }
}

fn extra(dns: &Dnsmasq, port: u16) -> String {
    format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_seconds = 2\n\
         [outbound]\nmx_port = {port}\npoll_interval_seconds = 1\nretry_initial_seconds = 1\n\
         retry_max_seconds = 2\nconnect_timeout_seconds = 5\ncommand_timeout_seconds = 20\n",
        dns.port
    )
}

struct Pair {
    a: TestServer,
    b: TestServer,
    _dns: Dnsmasq,
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- A log ----\n{}\n---- B log ----\n{}",
                self.a.log(),
                self.b.log()
            );
        }
    }
}

fn pair() -> Pair {
    let dns = Dnsmasq::start(&[
        "--mx-host=a.test,mx.a.test,10".to_owned(),
        "--address=/mx.a.test/127.0.0.2".to_owned(),
        "--mx-host=b.test,mx.b.test,10".to_owned(),
        "--address=/mx.b.test/127.0.0.3".to_owned(),
    ]);
    let port = shared_port();
    let toml = extra(&dns, port);
    let b = TestServer::prepare_instance(
        &["smtp", "pop3", "imap"],
        &["bob"],
        &toml,
        &instance("b.test", "127.0.0.3", port),
    );
    let a = TestServer::prepare_instance(
        &["smtp", "submission", "pop3"],
        &["alice"],
        &toml,
        &instance("a.test", "127.0.0.2", port),
    );
    Pair { a, b, _dns: dns }
}

fn send(server: &TestServer, from: &str, to: &str, body: &str) -> Value {
    let file = server.dir.path().join("message.eml");
    std::fs::write(&file, body).expect("write message");
    let port = server.port("submission").to_string();
    let out = python(
        "smtp_send.py",
        &[
            "127.0.0.2",
            &port,
            "--from",
            from,
            "--to",
            to,
            "--file",
            file.to_str().expect("utf-8 path"),
            "--login",
            from,
            PASSWORD,
        ],
    );
    serde_json::from_str(&out).expect("json from smtp_send.py")
}

/// POP3 messages of `user` on `server`, waiting up to 30 s for at least `n`.
fn wait_for_messages(server: &TestServer, ip: &str, user: &str, n: usize) -> Vec<String> {
    use base64::Engine;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let port = server.port("pop3").to_string();
        let out = python("pop3_dump.py", &[ip, &port, user, PASSWORD]);
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

const MESSAGE: &str = "From: alice@a.test\r\nTo: bob@b.test\r\nSubject: across the wire\r\n\r\nHello Bob.\r\n..leading dot\r\n";

#[test]
fn a_user_on_a_sends_to_a_user_on_b_who_reads_it_over_pop3_and_imap() {
    let mut p = pair();
    p.b.launch();
    p.a.launch();
    let v = send(&p.a, "alice@a.test", "bob@b.test", MESSAGE);
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    let got = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.starts_with("Return-Path: <alice@a.test>\r\n"), "{m}");
    assert!(
        m.contains("by mail.a.test (Tern) with ESMTPA"),
        "A's Received: {m}"
    );
    assert!(
        m.contains("from mail.a.test"),
        "B's Received names A's EHLO: {m}"
    );
    assert!(
        m.contains("with ESMTPS"),
        "opportunistic STARTTLS between the two: {m}"
    );
    assert!(m.contains("Subject: across the wire\r\n"), "{m}");
    // smtplib and Tern's client each dot-stuff on the wire; the text arrives as written.
    assert!(m.ends_with("Hello Bob.\r\n..leading dot\r\n"), "{m}");
    // Over IMAP (curl) the same bytes.
    let imap = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-u",
            &format!("bob@b.test:{PASSWORD}"),
        ])
        .arg(format!("imap://127.0.0.3:{}/INBOX;UID=1", p.b.port("imap")))
        .output()
        .expect("curl");
    assert!(imap.status.success(), "{imap:?}");
    assert_eq!(String::from_utf8_lossy(&imap.stdout), *m);
    // Nothing left in A's queue.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p
        .a
        .admin_ok(&["queue", "list"], None)
        .contains("0 message(s)")
    {
        assert!(Instant::now() < deadline, "A's queue did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_unknown_user_on_b_bounces_into_the_senders_inbox_on_a() {
    let mut p = pair();
    p.b.launch();
    p.a.launch();
    let v = send(&p.a, "alice@a.test", "nobody@b.test", MESSAGE);
    assert_eq!(
        v["refused"],
        serde_json::json!({}),
        "A accepts and queues: {v}"
    );
    let got = wait_for_messages(&p.a, "127.0.0.2", "alice@a.test", 1);
    let dsn = &got[0];
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(
        dsn.contains("report-type=delivery-status")
            || dsn.contains("report-type=\"delivery-status\""),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Subject: across the wire"),
        "original headers: {dsn}"
    );
}

#[test]
fn a_queue_survives_kill_9_and_is_delivered_once_after_restart() {
    let mut p = pair();
    // B is down: A queues and retries.
    p.a.launch();
    let v = send(&p.a, "alice@a.test", "bob@b.test", MESSAGE);
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    let listed = p.a.admin_ok(&["queue", "list"], None);
    assert!(
        listed.contains("1 message(s), 1 recipient(s) pending"),
        "{listed}"
    );
    let id = listed.split('\t').next().expect("id").trim().to_owned();
    let shown = p.a.admin_ok(&["queue", "show", &id], None);
    assert!(shown.contains("recipient:     <bob@b.test>"), "{shown}");
    assert!(shown.contains("last error:"), "{shown}");
    p.a.kill();
    p.b.launch();
    p.a.launch();
    let got = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    std::thread::sleep(Duration::from_secs(3));
    let again = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    assert_eq!(again.len(), 1, "delivered exactly once: {got:?}");
    assert!(
        p.a.admin_ok(&["queue", "list"], None)
            .contains("0 message(s)")
    );
}
