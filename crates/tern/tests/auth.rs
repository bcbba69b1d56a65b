//! Inbound email authentication end to end: the real `tern` binary on port 25 (loopback NOT
//! trusted), DNS served by a dnsmasq the test starts, messages sent with smtplib and read back
//! over POP3/IMAP. SPF results are compared with pyspf, DKIM results with dkimpy, both asking
//! the same dnsmasq.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Dnsmasq, PASSWORD, TestServer, python};

/// `tern dkim generate signer.test` against a throwaway data dir: the key directory and the
/// printed TXT records as (name, character-strings).
fn dkim_keys(dir: &Path) -> (std::path::PathBuf, Vec<(String, Vec<String>)>) {
    let config = dir.join("keygen.toml");
    let data = dir.join("keygen-data");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.signer.test\"\ndomains = [\"signer.test\"]\ndata_dir = \"{}\"\n\
             [tls]\nself_signed = true\n",
            data.display()
        ),
    )
    .expect("write keygen config");
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--config")
        .arg(&config)
        .args(["dkim", "generate", "signer.test"])
        .output()
        .expect("run tern dkim generate");
    assert!(
        out.status.success(),
        "tern dkim generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let records = stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (name, rest) = line.split_once(" TXT ").expect("NAME TXT \"...\"");
            // The value as character-strings: every "..." group (no escapes in DKIM records).
            let strings = rest
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            (name.to_owned(), strings)
        })
        .collect::<Vec<_>>();
    assert_eq!(records.len(), 2, "RSA and Ed25519 records: {stdout}");
    (data.join("dkim").join("signer.test"), records)
}

fn txt(name: &str, value: &str) -> (String, Vec<String>) {
    (name.to_owned(), vec![value.to_owned()])
}

struct World {
    server: TestServer,
    dns: Dnsmasq,
    keys: std::path::PathBuf,
    _keygen: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- tern log ----\n{}", self.server.log());
        }
    }
}

fn world() -> World {
    world_with("")
}

/// The world with `mail_auth` settings added to `[mail_auth]`.
fn world_with(mail_auth: &str) -> World {
    let keygen = tempfile::tempdir().expect("tempdir");
    let (keys, mut records) = dkim_keys(keygen.path());
    records.extend([
        txt("pass.test", "v=spf1 ip4:127.0.0.1 -all"),
        txt("_dmarc.pass.test", "v=DMARC1; p=reject"),
        txt("fail.test", "v=spf1 ip4:192.0.2.1 -all"),
        txt("soft.test", "v=spf1 ~all"),
        txt("none.test", "no spf here"),
        txt("_dmarc.reject.test", "v=DMARC1; p=reject"),
        txt("_dmarc.quar.test", "v=DMARC1; p=quarantine"),
        // RFC 7208 §4.6: a syntax error anywhere in the record is a permerror.
        txt("perm-ip.test", "v=spf1 ip4:not-an-ip -all"),
        txt("perm-include.test", "v=spf1 include -all"),
        // tempfail.test and tempdmarc.test have no answer (below); the latter's DMARC record
        // is served locally, so only its SPF lookup fails.
        txt("_dmarc.tempdmarc.test", "v=DMARC1; p=reject"),
    ]);
    // Answer for `.test` only (unknown names NXDOMAIN, which DMARC's walk to the organisational
    // domain needs); iprev: 127.0.0.1 ↔ client.test, the name the client says in EHLO. (Tern's
    // resolver, hickory, answers reverse names under 127.in-addr.arpa itself with `localhost.`
    // (RFC 6761 §6.3), so iprev passes through localhost ↔ 127.0.0.1 without asking dnsmasq.)
    let mut options = vec![
        "--local=/test/".to_owned(),
        "--local=/in-addr.arpa/".to_owned(),
        "--ptr-record=1.0.0.127.in-addr.arpa,client.test".to_owned(),
        "--address=/client.test/127.0.0.1".to_owned(),
        // "Ask the standard servers", of which there are none: every query for these names is
        // answered REFUSED (RCODE 5) at once, a DNS failure (RFC 7208 §4.4: temperror) that
        // costs no timeout. Local records (the DMARC one above) still answer.
        "--server=/tempfail.test/#".to_owned(),
        "--server=/tempdmarc.test/#".to_owned(),
    ];
    // On the command line dnsmasq keeps quotes literally; commas separate the
    // character-strings (none of the records here contains a comma).
    options.extend(
        records
            .iter()
            .map(|(name, strings)| format!("--txt-record={name},{}", strings.join(","))),
    );
    let dns = Dnsmasq::start(&options);
    let toml = format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_seconds = 2\n\
         [mail_auth]\ntrusted_relays = []\n{mail_auth}",
        dns.port
    );
    let server = TestServer::start_with(&["smtp", "pop3", "imap"], &["alice"], &toml);
    World {
        server,
        dns,
        keys,
        _keygen: keygen,
    }
}

impl World {
    /// Sends `message` on port 25 from 127.0.0.1 with EHLO client.test.
    fn send(&self, mail_from: &str, message: &str) -> Value {
        self.send_bytes(mail_from, message.as_bytes())
    }

    fn send_bytes(&self, mail_from: &str, message: &[u8]) -> Value {
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

    fn accepted(&self, mail_from: &str, message: &str) {
        let v = self.send(mail_from, message);
        assert_eq!(v, serde_json::json!({"refused": {}}), "{mail_from}: {v}");
    }

    /// What pyspf says about the MAIL FROM identity.
    fn pyspf(&self, mail_from: &str) -> String {
        python(
            "auth_check.py",
            &[
                "spf",
                &self.dns.port.to_string(),
                "127.0.0.1",
                mail_from,
                "client.test",
            ],
        )
        .trim()
        .to_owned()
    }

    /// `message` DKIM-signed by dkimpy with the signer.test keys (RSA and Ed25519).
    fn signed(&self, message: &str) -> String {
        let file = self.server.dir.path().join("unsigned.eml");
        std::fs::write(&file, message).expect("write message");
        python(
            "auth_check.py",
            &[
                "dkim-sign",
                self.keys.to_str().expect("utf-8"),
                "signer.test",
                "tern",
                file.to_str().expect("utf-8"),
            ],
        )
    }

    /// dkimpy's verdict on every signature of a stored message.
    fn dkimpy_verify(&self, stored: &str) -> Vec<String> {
        let file = self.server.dir.path().join("stored.eml");
        std::fs::write(&file, stored).expect("write message");
        python(
            "auth_check.py",
            &[
                "dkim-verify",
                &self.dns.port.to_string(),
                file.to_str().expect("utf-8"),
            ],
        )
        .lines()
        .map(str::to_owned)
        .collect()
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

    fn imap_messages(&self, mailbox: &str) -> usize {
        let port = self.server.port("imap").to_string();
        python(
            "auth_check.py",
            &[
                "imap-status",
                "127.0.0.1",
                &port,
                "alice@example.test",
                PASSWORD,
                mailbox,
            ],
        )
        .trim()
        .parse()
        .expect("count")
    }
}

/// The stored message whose Subject is `subject`.
fn by_subject<'a>(inbox: &'a [String], subject: &str) -> &'a str {
    let line = format!("\r\nSubject: {subject}\r\n");
    inbox
        .iter()
        .find(|m| m.contains(&line))
        .unwrap_or_else(|| panic!("no message {subject:?} in {inbox:#?}"))
}

/// Every `Authentication-Results:` field of `message`'s header, unfolded.
fn auth_results(message: &str) -> Vec<String> {
    let header = message.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    let mut in_ar = false;
    for line in header.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if in_ar {
                let last = fields.last_mut().expect("field");
                last.push(' ');
                last.push_str(line.trim());
            }
            continue;
        }
        in_ar = line
            .to_ascii_lowercase()
            .starts_with("authentication-results:");
        if in_ar {
            fields.push(line.to_owned());
        }
    }
    fields
}

/// The `method=result` of the resinfo of `method` that carries `property` (e.g. `spf` with
/// `smtp.mailfrom`), from our single A-R field.
fn result_of(message: &str, method: &str, property: &str) -> String {
    let fields = auth_results(message);
    assert_eq!(fields.len(), 1, "exactly one A-R: {fields:#?}\n{message}");
    let field = &fields[0];
    assert!(
        field.starts_with("Authentication-Results: mail.example.test;"),
        "our authserv-id: {field}"
    );
    field
        .split(';')
        .skip(1)
        .map(str::trim)
        .find(|r| r.starts_with(&format!("{method}=")) && r.contains(property))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("no {method} ... {property} in {field}"))
}

fn message(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 24 Nov 2025 10:00:00 +0000\r\nMessage-ID: <{subject}@client.test>\r\n\r\n{body}"
    )
}

#[test]
fn spf_results_match_pyspf_and_a_forged_authentication_results_is_stripped() {
    let w = world();
    let cases = [
        ("pass", "x@pass.test"),
        ("fail", "x@fail.test"),
        ("softfail", "x@soft.test"),
        ("none", "x@none.test"),
    ];
    for (_, from) in cases {
        let mut m = message(from, &format!("spf {from}"), "Hello.\r\n");
        if from.ends_with("fail.test") {
            // A forged result claiming our authserv-id, and forged filter verdicts.
            m = format!(
                "Authentication-Results: mail.example.test; spf=pass smtp.mailfrom={from}\r\n\
                 X-Spam-Status: No, score=-100.0 required=5.0\r\nX-Virus-Scan: clean (forged)\r\n{m}"
            );
        }
        w.accepted(from, &m);
    }
    let inbox = w.inbox();
    assert_eq!(inbox.len(), cases.len(), "{inbox:#?}");
    for (expected, from) in cases {
        let stored = by_subject(&inbox, &format!("spf {from}"));
        let ours = result_of(stored, "spf", "smtp.mailfrom=");
        let pyspf = w.pyspf(from);
        assert_eq!(ours, expected, "{from}: {stored}");
        assert_eq!(ours, pyspf, "{from}: Tern vs pyspf");
        // The HELO identity client.test has no SPF record; iprev: PTR and A agree.
        assert_eq!(result_of(stored, "spf", "smtp.helo="), "none", "{stored}");
        assert_eq!(result_of(stored, "iprev", "policy.iprev="), "pass");
    }
    // The forged field is gone: the one A-R is ours and says fail.
    let forged = by_subject(&inbox, "spf x@fail.test");
    assert!(
        !forged.contains("spf=pass smtp.mailfrom=x@fail.test"),
        "{forged}"
    );
    assert!(!forged.contains("score=-100.0"), "{forged}");
    assert!(!forged.contains("clean (forged)"), "{forged}");
    // SPF pass aligned with From: DMARC passes even under p=reject.
    let aligned = by_subject(&inbox, "spf x@pass.test");
    assert_eq!(result_of(aligned, "dmarc", "header.from="), "pass");
}

#[test]
fn only_the_topmost_five_of_many_dkim_signatures_are_verified() {
    let w = world();
    // Twenty signatures from domains the sender chose, each with its own key record to look
    // up; the real two on top.
    let bogus: String = (0..20)
        .map(|i| {
            format!(
                "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=sig{i}.test; s=x;\r\n\
                 \th=from:subject; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\r\n"
            )
        })
        .collect();
    let flooded = w.signed(&format!(
        "{bogus}{}",
        message("x@signer.test", "dkim flood", "Signed body.\r\n")
    ));
    w.accepted("x@signer.test", &flooded);
    let inbox = w.inbox();
    let results = auth_results(by_subject(&inbox, "dkim flood")).join("\n");
    assert_eq!(results.matches("dkim=").count(), 5, "{results}");
    assert_eq!(results.matches("dkim=pass").count(), 2, "{results}");
    for i in 0..3 {
        assert!(
            results.contains(&format!("header.d=sig{i}.test")),
            "{results}"
        );
    }
    assert!(!results.contains("header.d=sig3.test"), "{results}");
}

#[test]
fn dkim_signatures_verify_as_dkimpy_says() {
    let w = world();
    let good = w.signed(&message("x@signer.test", "dkim good", "Signed body.\r\n"));
    assert_eq!(good.matches("DKIM-Signature:").count(), 2, "{good}");
    w.accepted("x@signer.test", &good);
    let tampered = w
        .signed(&message(
            "x@signer.test",
            "dkim tampered body",
            "Signed body.\r\n",
        ))
        .replace("Signed body.", "Changed body.");
    w.accepted("x@signer.test", &tampered);
    let tampered = w
        .signed(&message(
            "x@signer.test",
            "dkim tampered header",
            "Signed body.\r\n",
        ))
        .replace(
            "Subject: dkim tampered header\r\n",
            "Subject: dkim tampered header (changed)\r\n",
        );
    w.accepted("x@signer.test", &tampered);
    w.accepted(
        "x@signer.test",
        &message("x@signer.test", "dkim unsigned", "Plain.\r\n"),
    );
    let inbox = w.inbox();
    assert_eq!(inbox.len(), 4, "{inbox:#?}");

    let stored = by_subject(&inbox, "dkim good");
    let results = auth_results(stored).join("\n");
    assert_eq!(
        result_of(stored, "dkim", "header.s=tern-rsa"),
        "pass",
        "{results}"
    );
    assert_eq!(
        result_of(stored, "dkim", "header.s=tern-ed"),
        "pass",
        "{results}"
    );
    assert_eq!(w.dkimpy_verify(stored), ["pass", "pass"]);

    // A changed body: RFC 6376 §6.1.3 PERMFAIL "body hash did not verify", which RFC 8601
    // §2.7.1 records as `fail` — as dkimpy says too.
    let stored = by_subject(&inbox, "dkim tampered body");
    let results = auth_results(stored).join("\n");
    for selector in ["tern-rsa", "tern-ed"] {
        assert_eq!(
            result_of(stored, "dkim", &format!("header.s={selector}")),
            "fail",
            "{selector}: {results}"
        );
    }
    assert_eq!(
        results
            .matches("dkim=fail (body hash did not verify)")
            .count(),
        2,
        "{results}"
    );
    assert_eq!(w.dkimpy_verify(stored), ["fail", "fail"]);

    // A changed signed header field: the signature itself fails.
    let stored = by_subject(&inbox, "dkim tampered header (changed)");
    let results = auth_results(stored).join("\n");
    for selector in ["tern-rsa", "tern-ed"] {
        assert_eq!(
            result_of(stored, "dkim", &format!("header.s={selector}")),
            "fail",
            "{results}"
        );
    }
    assert_eq!(w.dkimpy_verify(stored), ["fail", "fail"]);

    let stored = by_subject(&inbox, "dkim unsigned");
    let field = auth_results(stored).join("\n");
    // mail-auth leaves the dkim method out when there is no signature (RFC 8601 allows
    // `dkim=none` or nothing); it must not pass.
    assert!(
        !field.contains("dkim=") || field.contains("dkim=none"),
        "{field}"
    );
    assert_eq!(auth_results(stored).len(), 1, "{stored}");
    assert_eq!(w.dkimpy_verify(stored), Vec::<String>::new());
}

#[test]
fn dmarc_reject_is_refused_and_quarantine_lands_in_junk() {
    let w = world();
    let v = w.send(
        "x@reject.test",
        &message("x@reject.test", "dmarc reject", "Forged.\r\n"),
    );
    assert_eq!(v["error"], 550, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("5.7.1"),
        "{v}"
    );
    w.accepted(
        "x@quar.test",
        &message("x@quar.test", "dmarc quarantine", "Suspicious.\r\n"),
    );
    // Unaligned: MAIL FROM passes SPF at pass.test, but From: is reject.test.
    let v = w.send(
        "x@pass.test",
        &message("x@reject.test", "dmarc unaligned", "Forged.\r\n"),
    );
    assert_eq!(v["error"], 550, "{v}");
    assert!(w.inbox().is_empty(), "nothing in INBOX");
    assert_eq!(w.imap_messages("Junk"), 1);
    assert_eq!(w.imap_messages("INBOX"), 0);
}

#[test]
fn spf_permerror_and_temperror_match_pyspf_and_a_dns_failure_is_not_acceptance() {
    let w = world();
    // MAIL FROM at the broken or unreachable domain; From: at none.test (no DMARC record), so
    // the SPF result alone decides, and the default `spf_fail = "none"` accepts it.
    let cases = [
        ("permerror", "x@perm-ip.test"),
        ("permerror", "x@perm-include.test"),
        ("temperror", "x@tempfail.test"),
    ];
    for (_, mail_from) in cases {
        let subject = format!("spf {mail_from}");
        w.accepted(mail_from, &message("x@none.test", &subject, "Hello.\r\n"));
    }
    let inbox = w.inbox();
    assert_eq!(inbox.len(), cases.len(), "{inbox:#?}");
    for (expected, mail_from) in cases {
        let stored = by_subject(&inbox, &format!("spf {mail_from}"));
        let ours = result_of(stored, "spf", "smtp.mailfrom=");
        assert_eq!(ours, expected, "{mail_from}: {stored}");
        assert_eq!(ours, w.pyspf(mail_from), "{mail_from}: Tern vs pyspf");
        assert_eq!(result_of(stored, "dmarc", "header.from="), "none");
    }

    // The From: domain publishes p=reject and its SPF lookup fails: DMARC can neither pass
    // nor fail (RFC 7489 §6.6.2), so the sender is asked to retry instead of us accepting a
    // possible forgery or rejecting a legitimate message for good.
    let v = w.send(
        "x@tempdmarc.test",
        &message("x@tempdmarc.test", "dmarc temperror", "Maybe forged.\r\n"),
    );
    assert_eq!(v["error"], 451, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("4.7.5"),
        "{v}"
    );
    assert_eq!(w.pyspf("x@tempdmarc.test"), "temperror");
    assert_eq!(w.inbox().len(), cases.len(), "nothing more stored");
}

#[test]
fn spf_temperror_defers_with_451_when_spf_fail_is_reject() {
    // RFC 7208 §8.6 lets the receiver defer; we do when a `fail` would have been refused, so
    // a DNS failure cannot get past the policy.
    let w = world_with("spf_fail = \"reject\"\n");
    let v = w.send(
        "x@tempfail.test",
        &message("x@none.test", "spf temperror", "Hello.\r\n"),
    );
    assert_eq!(v["error"], 451, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("4.7.24"),
        "{v}"
    );
    // A permerror is the sender's broken record, not a forgery (RFC 7208 §8.7): accepted.
    w.accepted(
        "x@perm-ip.test",
        &message("x@none.test", "spf permerror", "Hello.\r\n"),
    );
    let inbox = w.inbox();
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(
        result_of(&inbox[0], "spf", "smtp.mailfrom="),
        "permerror",
        "{}",
        inbox[0]
    );
}
