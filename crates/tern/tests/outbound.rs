//! Outbound delivery between two real `tern` processes on 127.0.0.2 (a.test) and 127.0.0.3
//! (b.test), with a dnsmasq serving their MX records: submission on A, MX delivery to B (over
//! opportunistic STARTTLS), POP3 on B; bounces back to A; a queue that survives kill -9; an
//! alias on A forwarding to B with an ARC seal that B (and dkimpy) validate; no DSN
//! backscatter or reflection (forged senders get no reports, returned parts are header blocks,
//! DSNs to one domain are capped).

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Dnsmasq, Instance, PASSWORD, TestServer, python, wait_for_messages};

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

/// The MX hosts of these tests are on loopback, which A refuses unless allowed.
fn extra(dns: &Dnsmasq, port: u16) -> String {
    format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_seconds = 2\n\
         [outbound]\nmx_port = {port}\nallow_private_destinations = true\n\
         poll_interval_seconds = 1\nretry_initial_seconds = 1\n\
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

/// A pair that verifies what it receives, as on the Internet (loopback is not trusted), with SPF
/// records authorising each server for its own domain (and 127.0.0.1, the source address of
/// their outbound connections); a client on 127.0.0.4 fails SPF for both domains. `a_outbound`
/// adds `[outbound]` settings to A.
fn verified_pair(a_outbound: &str) -> Pair {
    let dns = Dnsmasq::start(&[
        "--mx-host=a.test,mx.a.test,10".to_owned(),
        "--address=/mx.a.test/127.0.0.2".to_owned(),
        "--mx-host=b.test,mx.b.test,10".to_owned(),
        "--address=/mx.b.test/127.0.0.3".to_owned(),
        // Unknown `.test` and reverse names are NXDOMAIN, not a DNS failure (see the ARC test).
        "--local=/test/".to_owned(),
        "--local=/in-addr.arpa/".to_owned(),
        "--txt-record=a.test,v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all".to_owned(),
        "--txt-record=b.test,v=spf1 ip4:127.0.0.1 ip4:127.0.0.3 -all".to_owned(),
    ]);
    let port = shared_port();
    let toml = |outbound: &str| {
        format!(
            "{}{outbound}[mail_auth]\ntrusted_relays = []\n",
            extra(&dns, port)
        )
    };
    let b = TestServer::prepare_instance(
        &["smtp", "pop3"],
        &["bob"],
        &toml(""),
        &instance("b.test", "127.0.0.3", port),
    );
    let a = TestServer::prepare_instance(
        &["smtp", "submission", "pop3"],
        &["alice"],
        &toml(a_outbound),
        &instance("a.test", "127.0.0.2", port),
    );
    Pair { a, b, _dns: dns }
}

/// Sends `body` to `server`'s port 25 (on `ip`) from the client address `source`, with
/// `rcpt_options` on the RCPT.
fn send_mx(
    server: &TestServer,
    ip: &str,
    source: &str,
    (from, to): (&str, &str),
    body: &str,
    rcpt_options: &[&str],
) -> Value {
    let file = server.dir.path().join(format!("mx-{source}.eml"));
    std::fs::write(&file, body).expect("write message");
    let port = server.port("smtp").to_string();
    let mut args = vec![
        ip,
        &port,
        "--source",
        source,
        "--from",
        from,
        "--to",
        to,
        "--file",
        file.to_str().expect("utf-8 path"),
    ];
    for option in rcpt_options {
        args.extend(["--rcpt-option", option]);
    }
    serde_json::from_str(&python("smtp_send.py", &args)).expect("json from smtp_send.py")
}

fn send(server: &TestServer, from: &str, to: &str, body: &str) -> Value {
    send_with(server, from, to, body, &[])
}

/// [`send`] with extra smtp_send.py arguments (`--mail-option`, `--rcpt-option`).
fn send_with(server: &TestServer, from: &str, to: &str, body: &str, extra: &[&str]) -> Value {
    support::submit(server, "127.0.0.2", from, &[to], body, extra)
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

/// Waits until A's queue is empty.
fn wait_for_empty_queue(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .admin_ok(&["queue", "list"], None)
        .contains("0 message(s)")
    {
        assert!(Instant::now() < deadline, "the queue did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn notify_never_suppresses_the_bounce_of_an_unknown_user_on_b() {
    let mut p = pair();
    p.b.launch();
    p.a.launch();
    let v = send_with(
        &p.a,
        "alice@a.test",
        "nobody@b.test",
        MESSAGE,
        &["--rcpt-option", "NOTIFY=NEVER"],
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    // B refuses at RCPT; A settles the recipient as failed without telling anyone.
    wait_for_empty_queue(&p.a);
    std::thread::sleep(Duration::from_millis(500));
    let got = wait_for_messages(&p.a, "127.0.0.2", "alice@a.test", 0);
    assert!(got.is_empty(), "no DSN expected: {got:?}");
}

#[test]
fn notify_success_is_passed_to_b_which_sends_the_delivered_dsn_back_to_a() {
    // B reports success only to a sender it verified: a.test passes SPF from A.
    let mut p = verified_pair("");
    p.b.launch();
    p.a.launch();
    let v = send_with(
        &p.a,
        "alice@a.test",
        "bob@b.test",
        MESSAGE,
        &[
            "--mail-option",
            "ENVID=e+2B1",
            "--rcpt-option",
            "NOTIFY=SUCCESS",
        ],
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    // B offers DSN, so A passes NOTIFY, ENVID and an ORCPT on (RFC 3461 §5.2.1) and sends no
    // "relayed" DSN; B delivers and reports "delivered" (§5.2.3) to alice on A.
    let got = wait_for_messages(&p.a, "127.0.0.2", "alice@a.test", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    let dsn = &got[0];
    assert!(dsn.contains("Reporting-MTA: dns; mail.b.test"), "{dsn}");
    assert!(dsn.contains("Original-Envelope-Id: e+1"), "{dsn}");
    assert!(dsn.contains("Action: delivered"), "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; bob@b.test"), "{dsn}");
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

/// `tern dkim generate DOMAIN` against a throwaway data directory under `dir`: the directory
/// holding the key files, and the printed records as dnsmasq `--txt-record` options (the
/// character-strings comma-separated; DKIM records contain no commas).
fn dkim_keys(dir: &Path, domain: &str) -> (PathBuf, Vec<String>) {
    let config = dir.join("keygen.toml");
    let data = dir.join("keygen-data");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.{domain}\"\ndomains = [\"{domain}\"]\ndata_dir = \"{}\"\n\
             [tls]\nself_signed = true\n",
            data.display()
        ),
    )
    .expect("write keygen config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--config")
        .arg(&config)
        .args(["dkim", "generate", domain])
        .output()
        .expect("run tern dkim generate");
    assert!(
        out.status.success(),
        "tern dkim generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let records: Vec<String> = stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (name, rest) = line.split_once(" TXT ").expect("NAME TXT \"...\"");
            let strings: Vec<&str> = rest.split('"').skip(1).step_by(2).collect();
            format!("--txt-record={name},{}", strings.join(","))
        })
        .collect();
    assert_eq!(records.len(), 2, "RSA and Ed25519 records: {stdout}");
    (data.join("dkim").join(domain), records)
}

/// The field `name` of `message`'s header whose value starts with `value_prefix`, unfolded.
fn header_field(message: &str, name: &str, value_prefix: &str) -> Option<String> {
    let header = message.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in header.split("\r\n") {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => fields.push(line.to_owned()),
        }
    }
    let start = format!("{}: {value_prefix}", name.to_ascii_lowercase());
    fields
        .into_iter()
        .find(|f| f.to_ascii_lowercase().starts_with(&start))
}

#[test]
fn mail_to_an_alias_forwarded_from_a_to_b_arrives_with_an_arc_seal_that_b_and_dkimpy_validate() {
    // The original sender's domain authorises only the client 127.0.0.4. A verifies it (SPF
    // pass), seals, and forwards from its own address, where SPF fails at B: only the ARC chain
    // carries A's verdict to B (RFC 8617 §1).
    let keygen = tempfile::tempdir().expect("tempdir");
    let (keys, mut records) = dkim_keys(keygen.path(), "a.test");
    records.extend([
        "--mx-host=a.test,mx.a.test,10".to_owned(),
        "--address=/mx.a.test/127.0.0.2".to_owned(),
        "--mx-host=b.test,mx.b.test,10".to_owned(),
        "--address=/mx.b.test/127.0.0.3".to_owned(),
        // Unknown `.test` and reverse names are NXDOMAIN, not a DNS failure (which would
        // defer the message: DMARC's tree walk asks for names nobody serves).
        "--local=/test/".to_owned(),
        "--local=/in-addr.arpa/".to_owned(),
        "--txt-record=origin.test,v=spf1 ip4:127.0.0.4 -all".to_owned(),
        "--txt-record=_dmarc.origin.test,v=DMARC1; p=none".to_owned(),
    ]);
    let dns = Dnsmasq::start(&records);
    let port = shared_port();
    // Loopback is not trusted here: both instances verify what they receive.
    let toml = format!("{}[mail_auth]\ntrusted_relays = []\n", extra(&dns, port));
    let b = TestServer::prepare_instance(
        &["smtp", "pop3"],
        &["bob"],
        &toml,
        &instance("b.test", "127.0.0.3", port),
    );
    let a = TestServer::prepare_instance(
        &["smtp"],
        &[],
        &toml,
        &instance("a.test", "127.0.0.2", port),
    );
    a.admin_ok(&["alias", "add", "fwd@a.test", "bob@b.test"], None);
    // A seals with its own domain's RSA key (RFC 8617 §4.1.3: rsa-sha256).
    let target = a.data_dir().join("dkim").join("a.test");
    std::fs::create_dir_all(&target).expect("key dir");
    for entry in std::fs::read_dir(&keys).expect("keys") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, target.join(path.file_name().expect("name"))).expect("copy key");
    }
    let mut p = Pair { a, b, _dns: dns };
    p.b.launch();
    p.a.launch();

    let file = p.a.dir.path().join("forwarded.eml");
    std::fs::write(
        &file,
        "From: x@origin.test\r\nTo: fwd@a.test\r\nSubject: forwarded with ARC\r\n\
         Date: Mon, 24 Nov 2025 10:00:00 +0000\r\nMessage-ID: <arc@origin.test>\r\n\r\n\
         Hello through an alias.\r\n",
    )
    .expect("write message");
    let smtp_port = port.to_string();
    let out = python(
        "smtp_send.py",
        &[
            "127.0.0.2",
            &smtp_port,
            "--source",
            "127.0.0.4",
            "--ehlo",
            "client.test",
            "--from",
            "x@origin.test",
            "--to",
            "fwd@a.test",
            "--file",
            file.to_str().expect("utf-8 path"),
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("json from smtp_send.py");
    assert_eq!(
        v,
        serde_json::json!({"refused": {}}),
        "A accepts and queues"
    );

    let got = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    let m = &got[0];
    // One ARC set by A (RFC 8617 §4.1), the first in the chain: i=1, cv=none (§5.1.1).
    let seal = header_field(m, "ARC-Seal", "i=1;").unwrap_or_else(|| panic!("ARC-Seal: {m}"));
    for tag in ["cv=none", "d=a.test", "s=tern-rsa", "a=rsa-sha256"] {
        assert!(seal.contains(tag), "{tag}: {seal}");
    }
    let ams = header_field(m, "ARC-Message-Signature", "i=1;")
        .unwrap_or_else(|| panic!("ARC-Message-Signature: {m}"));
    assert!(ams.contains("d=a.test"), "{ams}");
    // What A verified, for B to see (RFC 8617 §4.1.1): SPF passed at A, and so did DMARC.
    let aar = header_field(m, "ARC-Authentication-Results", "i=1; mail.a.test;")
        .unwrap_or_else(|| panic!("ARC-Authentication-Results: {m}"));
    assert!(aar.contains("spf=pass"), "{aar}");
    assert!(aar.contains("smtp.mailfrom=x@origin.test"), "{aar}");
    assert!(aar.contains("dmarc=pass"), "{aar}");
    assert_eq!(m.matches("\r\nARC-Seal:").count(), 1, "{m}");

    // B's own verdict: SPF fails from A's address, the ARC chain is valid.
    let ours = header_field(m, "Authentication-Results", "mail.b.test;")
        .unwrap_or_else(|| panic!("B's Authentication-Results: {m}"));
    assert!(ours.contains("arc=pass"), "{ours}");
    assert!(ours.contains("spf=fail"), "{ours}");
    // An independent verifier agrees with B.
    let stored = p.b.dir.path().join("arc.eml");
    std::fs::write(&stored, m).expect("write stored message");
    let dkimpy = python(
        "auth_check.py",
        &[
            "arc-verify",
            &p._dns.port.to_string(),
            stored.to_str().expect("utf-8"),
        ],
    );
    assert!(dkimpy.starts_with("pass"), "dkimpy arc_verify: {dkimpy}");
}

#[test]
fn a_forged_notify_success_on_port_25_gets_no_report_and_an_spf_pass_only_the_header_block() {
    let mut p = verified_pair("");
    p.b.launch();
    p.a.launch();
    // The reflection attack (client 127.0.0.4, SPF fail for a.test): alice@a.test is the victim;
    // the text has no empty line, so "everything up to CRLFCRLF" would be all of it.
    let spam = "Subject: forged\r\nBuy cheap pills at http://spam.example/\r\n\
                X-Payload: after the text\r\n";
    let v = send_mx(
        &p.b,
        "127.0.0.3",
        "127.0.0.4",
        ("alice@a.test", "bob@b.test"),
        spam,
        &["NOTIFY=SUCCESS"],
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    // From A's own address (SPF pass) the report is sent, with the header block only, and at
    // most 16 KiB of it: 200 fields of 100 octets, then text, no empty line.
    let filler: String = (0..200)
        .map(|i| format!("X-Filler-{i:03}: {}\r\n", "f".repeat(84)))
        .collect();
    let body = format!("Subject: verified\r\n{filler}Buy cheap pills\r\nX-Payload: late\r\n");
    let v = send_mx(
        &p.b,
        "127.0.0.3",
        "127.0.0.2",
        ("alice@a.test", "bob@b.test"),
        &body,
        &["NOTIFY=SUCCESS"],
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 2);
    let got = wait_for_messages(&p.a, "127.0.0.2", "alice@a.test", 1);
    wait_for_empty_queue(&p.b);
    std::thread::sleep(Duration::from_secs(2));
    let got_later = wait_for_messages(&p.a, "127.0.0.2", "alice@a.test", 1);
    assert_eq!(
        got_later.len(),
        1,
        "one report, for the verified message; the forged one got: {}",
        got_later.first().map_or("", |m| m.as_str())
    );
    let report = &got[0];
    assert!(report.contains("Action: delivered"), "{report}");
    assert!(report.contains("Subject: verified"), "{report}");
    assert!(!report.contains("Subject: forged"), "{report}");
    assert!(!report.contains("Buy cheap pills"), "{report}");
    assert!(!report.contains("X-Payload"), "{report}");
    let fields = report.matches("X-Filler-").count();
    assert!(
        (100..200).contains(&fields),
        "cut at 16 KiB: {fields} fields"
    );
}

#[test]
fn forwarded_mail_from_a_sender_failing_spf_is_not_bounced_but_from_a_verified_one_it_is() {
    let mut p = verified_pair("");
    p.a.admin_ok(&["alias", "add", "fwd@a.test", "nobody@b.test"], None);
    p.b.launch();
    p.a.launch();
    // bob@b.test is forged from 127.0.0.4 (SPF fail); B refuses the forwarded copy (no such
    // user), and a bounce would land on bob: backscatter.
    let forged = "Subject: forged forward\r\n\r\nspam\r\n";
    let v = send_mx(
        &p.a,
        "127.0.0.2",
        "127.0.0.4",
        ("bob@b.test", "fwd@a.test"),
        forged,
        &[],
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    // The same from B's own address (SPF pass) is bounced.
    let real = "Subject: real forward\r\n\r\nhello\r\n";
    let v = send_mx(
        &p.a,
        "127.0.0.2",
        "127.0.0.3",
        ("bob@b.test", "fwd@a.test"),
        real,
        &[],
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    let got = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    wait_for_empty_queue(&p.a);
    std::thread::sleep(Duration::from_secs(2));
    let got_later = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 1);
    assert_eq!(
        got_later.len(),
        1,
        "one bounce, for the verified sender; the forged one got: {}",
        got_later.first().map_or("", |m| m.as_str())
    );
    assert!(got[0].contains("Action: failed"), "{}", got[0]);
    assert!(got[0].contains("Subject: real forward"), "{}", got[0]);
}

#[test]
fn dsns_to_one_domain_stop_at_the_hourly_limit() {
    let mut p = verified_pair("dsn_per_domain_per_hour = 2\n");
    p.a.admin_ok(&["alias", "add", "fwd@a.test", "nobody@b.test"], None);
    p.b.launch();
    p.a.launch();
    // Four forwarded messages from a verified sender fail at B: four bounces due, two sent.
    for i in 0..4 {
        let v = send_mx(
            &p.a,
            "127.0.0.2",
            "127.0.0.3",
            ("bob@b.test", "fwd@a.test"),
            &format!("Subject: flood {i}\r\n\r\nhello\r\n"),
            &[],
        );
        assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    }
    wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 2);
    wait_for_empty_queue(&p.a);
    std::thread::sleep(Duration::from_secs(2));
    let got = wait_for_messages(&p.b, "127.0.0.3", "bob@b.test", 2);
    assert_eq!(got.len(), 2, "two bounces, the rest dropped");
    assert!(
        p.a.log().contains("DSN limit per domain reached"),
        "{}",
        p.a.log()
    );
}
