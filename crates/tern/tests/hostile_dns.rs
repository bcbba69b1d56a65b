//! Hostile DNS answers for SPF, DKIM and DMARC (security issue 17): the real `tern` binary on
//! port 25 (loopback NOT trusted) asks `py/hostile_dns.py`, which serves oversized, truncated,
//! malformed, mismatched and merely absurd answers. Each message must get the documented
//! result (recorded in Authentication-Results, or 451 where policy defers), the server must not
//! panic, and another client must be served right after.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{PASSWORD, TestServer, python};

/// `py/hostile_dns.py` on a loopback port (UDP and TCP); killed on drop.
struct HostileDns {
    child: Child,
    port: u16,
}

impl HostileDns {
    fn start() -> HostileDns {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/hostile_dns.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line.trim().parse().expect("port");
        HostileDns { child, port }
    }
}

impl Drop for HostileDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct World {
    server: TestServer,
    _dns: HostileDns,
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- tern log ----\n{}", self.server.log());
        }
    }
}

fn world(mail_auth: &str) -> World {
    let dns = HostileDns::start();
    let toml = format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_seconds = 2\n\
         [mail_auth]\ntrusted_relays = []\n{mail_auth}",
        dns.port
    );
    let server = TestServer::start_with(&["smtp", "pop3"], &["alice"], &toml);
    World { server, _dns: dns }
}

impl World {
    /// Sends `message` on port 25 from 127.0.0.1 with EHLO client.test.
    fn send(&self, mail_from: &str, message: &str) -> Value {
        let file = self.server.dir.path().join("message.eml");
        std::fs::write(&file, message).expect("write message");
        let port = self.server.port("smtp").to_string();
        let out = python(
            "smtp_send.py",
            &[
                "127.0.0.1",
                &port,
                "--from",
                mail_from,
                "--to",
                "alice@example.test",
                "--ehlo",
                "client.test",
                "--file",
                file.to_str().expect("utf-8 path"),
            ],
        );
        serde_json::from_str(&out).expect("json from smtp_send.py")
    }

    /// alice's INBOX over POP3.
    fn inbox(&self) -> Vec<String> {
        use base64::Engine;
        let port = self.server.port("pop3").to_string();
        let out = python(
            "pop3_dump.py",
            &["127.0.0.1", &port, "alice@example.test", PASSWORD],
        );
        let v: Value = serde_json::from_str(&out).expect("json from pop3_dump.py");
        v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(m.as_str().unwrap_or_default())
                    .expect("base64");
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .collect()
    }

    /// The server is alive and greets a new client at once, and has not panicked.
    fn still_serving(&self, case: &str) {
        let started = Instant::now();
        let mut stream = TcpStream::connect(self.server.addr("smtp")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut banner = [0u8; 3];
        stream.read_exact(&mut banner).expect("banner");
        assert_eq!(&banner, b"220", "{case}: greeting");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: greeting took {:?}",
            started.elapsed()
        );
        let log = self.server.log();
        assert!(!log.contains("panicked"), "{case}: panic in log");
    }
}

fn message(from: &str, subject: &str, extra_header: &str) -> String {
    format!(
        "{extra_header}From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 24 Nov 2025 10:00:00 +0000\r\nMessage-ID: <{subject}@client.test>\r\n\r\nHello.\r\n"
    )
}

/// A DKIM signature by `d=domain; s=sel` whose body hash is right for "Hello.\r\n" and whose
/// signature is not: the verdict comes from the key record.
fn dkim_header(domain: &str) -> String {
    format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=sel;\r\n \
         h=from:to:subject; bh=yZQq1c8wjBl0fZ4Wc/oraMCAG1mZJv5v/hlvyFy+t6A=;\r\n \
         b=dGhpcyBpcyBub3QgYSBzaWduYXR1cmU=\r\n"
    )
}

/// The single Authentication-Results field of `message`'s header, unfolded.
fn auth_results(message: &str) -> String {
    let header = message.split("\r\n\r\n").next().unwrap_or_default();
    let mut field = String::new();
    let mut in_ar = false;
    for line in header.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if in_ar {
                field.push(' ');
                field.push_str(line.trim());
            }
            continue;
        }
        in_ar = line
            .to_ascii_lowercase()
            .starts_with("authentication-results:");
        if in_ar {
            field.push_str(line);
        }
    }
    field
}

/// The `method=result` for `method` in the A-R of the message whose Subject is `subject`.
fn result_of(inbox: &[String], subject: &str, method: &str) -> String {
    let line = format!("\r\nSubject: {subject}\r\n");
    let stored = inbox
        .iter()
        .find(|m| m.contains(&line))
        .unwrap_or_else(|| panic!("no message {subject:?} in {inbox:#?}"));
    let field = auth_results(stored);
    field
        .split(';')
        .skip(1)
        .map(str::trim)
        // SPF by its MAIL FROM resinfo (not the HELO one), DKIM by its signature's.
        .filter(|r| r.contains("smtp.mailfrom=") || r.contains("header.d="))
        .find_map(|r| r.strip_prefix(&format!("{method}=")))
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{subject}: no {method}= in {field:?}"))
}

#[test]
fn hostile_spf_and_dkim_answers_give_the_documented_result_and_no_harm() {
    let w = world("");
    // (MAIL FROM domain, extra header, method, expected result). From: is at none.test (no
    // DMARC record) unless the case signs, so SPF alone decides and `spf_fail = "none"` accepts.
    let cases: &[(&str, &str, &str, &str)] = &[
        // Over UDP only the TC bit; the resolver must retry over TCP (RFC 7766 §5).
        ("oversized.test", "", "spf", "pass"),
        ("many-records.test", "", "spf", "pass"),
        ("zero-strings.test", "", "spf", "pass"),
        // RFC 7208 §4.4: a DNS error (no usable answer) is a temperror.
        ("tc-only.test", "", "spf", "temperror"),
        ("bad-length.test", "", "spf", "temperror"),
        ("pointer-loop.test", "", "spf", "temperror"),
        ("wrong-id.test", "", "spf", "temperror"),
        ("wrong-question.test", "", "spf", "temperror"),
        // RFC 7208 §4.5, §4.6.4, §4.6: the sender's broken record.
        ("two-spf.test", "", "spf", "permerror"),
        ("many-lookups.test", "", "spf", "permerror"),
        ("non-utf8.test", "", "spf", "permerror"),
        // RFC 6376 §6.1.2: a key record that cannot be parsed is PERMFAIL (RFC 8601 §2.7.1
        // permerror); a DNS failure fetching it is TEMPFAIL (temperror).
        ("bad-key.test", "bad-key.test", "dkim", "permerror"),
        ("broken-key.test", "broken-key.test", "dkim", "temperror"),
    ];
    for (domain, signer, method, _) in cases {
        let extra = if signer.is_empty() {
            String::new()
        } else {
            dkim_header(signer)
        };
        let from = if signer.is_empty() {
            "x@none.test".to_owned()
        } else {
            format!("x@{signer}")
        };
        let started = Instant::now();
        let v = w.send(
            &format!("x@{domain}"),
            &message(&from, &format!("{method} {domain}"), &extra),
        );
        // Accepted: spf_fail and DMARC are at their defaults, so no result here defers.
        assert_eq!(v, serde_json::json!({"refused": {}}), "{domain}: {v}");
        // Bounded: a DNS server that never answers costs the resolver's 3 tries of 2 s.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{domain}: took {:?}",
            started.elapsed()
        );
        w.still_serving(domain);
    }
    let inbox = w.inbox();
    let mut wrong = Vec::new();
    for (domain, _, method, expected) in cases {
        let got = result_of(&inbox, &format!("{method} {domain}"), method);
        if got != *expected {
            wrong.push(format!("{domain}: {method}={got}, expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn hostile_answers_defer_where_policy_says_and_dmarc_records_are_judged_as_rfc_7489_says() {
    // (settings, MAIL FROM domain, From: domain, SMTP answer: None for accepted, or the code and
    // the start of the enhanced status).
    type Case = (&'static str, &'static str, Option<(u64, &'static str)>);
    let worlds: [(&str, &[Case]); 2] = [
        (
            // RFC 7208 §8.6 / docs/security.md: a temperror defers when a fail would have been
            // refused; a permerror (§8.7) is never refused.
            "spf_fail = \"reject\"\n",
            &[
                ("tc-only.test", "none.test", Some((451, "4.7.24"))),
                ("bad-length.test", "none.test", Some((451, "4.7.24"))),
                ("pointer-loop.test", "none.test", Some((451, "4.7.24"))),
                ("two-spf.test", "none.test", None),
                ("non-utf8.test", "none.test", None),
            ],
        ),
        (
            "",
            &[
                // RFC 7489 §6.6.2: the DMARC record cannot be read: neither pass nor fail.
                (
                    "broken-dmarc.test",
                    "broken-dmarc.test",
                    Some((451, "4.7.5")),
                ),
                // p=reject is valid; the rest of the record cannot weaken it.
                ("absurd.test", "absurd.test", Some((550, "5.7.1"))),
                (
                    "non-utf8-dmarc.test",
                    "non-utf8-dmarc.test",
                    Some((550, "5.7.1")),
                ),
            ],
        ),
    ];
    for (settings, cases) in worlds {
        let w = world(settings);
        for (mail_from, from, expected) in cases {
            let v = w.send(
                &format!("x@{mail_from}"),
                &message(&format!("x@{from}"), &format!("to {mail_from}"), ""),
            );
            match expected {
                None => assert_eq!(v, serde_json::json!({"refused": {}}), "{mail_from}: {v}"),
                Some((code, status)) => {
                    assert_eq!(v["error"], *code, "{mail_from}: {v}");
                    let text = v["message"].as_str().unwrap_or_default();
                    assert!(text.starts_with(status), "{mail_from}: {v}");
                }
            }
            w.still_serving(mail_from);
        }
    }
}
