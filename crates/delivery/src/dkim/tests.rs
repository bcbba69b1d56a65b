//! Key generation, DNS records, and signatures checked by independent verifiers: dkimpy (both
//! algorithms) with a DNS function returning the printed records, and OpenDKIM.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::*;

const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n\
Subject: signed  by   Tern\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <m1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n\
Hello Bob.  \r\n\r\n\r\n";

#[test]
fn generate_writes_two_keys_and_prints_rsa_and_ed25519_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = generate_keys(dir.path(), "Example.ORG", "tern").unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].name, "tern-rsa._domainkey.example.org");
    assert!(
        records[0].value.starts_with("v=DKIM1; k=rsa; p=MII"),
        "{:?}",
        records[0]
    );
    assert_eq!(records[1].name, "tern-ed._domainkey.example.org");
    assert!(records[1].value.starts_with("v=DKIM1; k=ed25519; p="));
    // Ed25519: 32 raw octets, 44 base64 characters (RFC 8463 §4.2).
    let p = records[1].value.rsplit_once("p=").unwrap().1;
    assert_eq!(STANDARD.decode(p).unwrap().len(), 32);
    // Zone-file form splits the long RSA text into <= 255-octet strings.
    let line = records[0].to_string();
    assert!(line.starts_with("tern-rsa._domainkey.example.org TXT \"v=DKIM1; k=rsa; p="));
    assert_eq!(line.matches("\" \"").count(), 1, "{line}");
    // `show` prints the same records again; a second `generate` refuses to overwrite.
    assert_eq!(super::records(dir.path(), "example.org").unwrap(), records);
    assert!(matches!(
        generate_keys(dir.path(), "example.org", "tern"),
        Err(DkimError::Store(StoreError::AlreadyExists))
    ));
    assert!(matches!(
        super::records(dir.path(), "example.net"),
        Err(DkimError::NoKeys(_))
    ));
}

#[test]
fn signers_prefer_the_configured_selector_and_our_own_mail_may_use_a_parents_keys() {
    let dir = tempfile::tempdir().unwrap();
    generate_keys(dir.path(), "example.org", "a2026").unwrap();
    generate_keys(dir.path(), "example.org", "tern").unwrap();
    generate_keys(dir.path(), "example.org", "z2020").unwrap();
    let signers = DkimSigners::load(dir.path(), "tern").unwrap();
    let fields = signers.sign("example.org", &[MESSAGE]);
    assert!(
        fields.contains("s=tern-rsa") && fields.contains("s=tern-ed"),
        "{fields}"
    );
    let signers = DkimSigners::load(dir.path(), "other").unwrap();
    let fields = signers.sign("example.org", &[MESSAGE]);
    assert!(fields.contains("s=z2020-rsa"), "{fields}");
    assert_eq!(
        signers.signing_domain_or_parent("mx.EXAMPLE.org"),
        Some("example.org")
    );
    assert_eq!(
        signers.signing_domain_or_parent("example.org"),
        Some("example.org")
    );
    assert_eq!(signers.signing_domain_or_parent("example.net"), None);
    assert_eq!(signers.signing_domain_or_parent("org"), None);
}

#[test]
fn an_author_domain_is_signed_only_by_its_own_keys_never_a_parents() {
    let dir = tempfile::tempdir().unwrap();
    generate_keys(dir.path(), "example.org", "tern").unwrap();
    let signers = DkimSigners::load(dir.path(), "tern").unwrap();
    assert_eq!(signers.signing_domain("Example.ORG."), Some("example.org"));
    assert_eq!(signers.signing_domain("sub.example.org"), None);
    assert_eq!(signers.signing_domain("example.net"), None);
}

#[test]
fn from_is_oversigned_and_missing_headers_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    generate_keys(dir.path(), "example.org", "tern").unwrap();
    let signers = DkimSigners::load(dir.path(), "tern").unwrap();
    let fields = signers.sign("example.org", &[MESSAGE]);
    let unfolded = fields.replace("\r\n\t", "").replace("\r\n ", "");
    let h = unfolded
        .split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix("h="))
        .expect("h= tag")
        .to_ascii_lowercase();
    assert_eq!(h.matches("from").count(), 2, "{h}");
    for name in [
        "to",
        "subject",
        "date",
        "message-id",
        "cc",
        "reply-to",
        "references",
    ] {
        assert!(h.split(':').any(|x| x == name), "{name} in {h}");
    }
}

/// `/usr/bin/python3` (Debian's, where python3-dkim lives), else `python3`.
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Runs dkimpy over `message`; its DNS answers are `records` only. Returns one verdict per
/// signature, `"pass"` or `"fail"`.
fn dkimpy_verify(message: &[u8], records: &[DkimRecord]) -> Option<Vec<String>> {
    let table: Vec<String> = records
        .iter()
        .map(|r| format!("{:?}: {:?}", format!("{}.", r.name), r.value))
        .collect();
    let script = format!(
        r#"
import sys, dkim
records = {{{}}}
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return records.get(name if name.endswith('.') else name + '.', '').encode()
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
sigs = [h for h in d.headers if h[0].lower() == b'dkim-signature']
for i in range(len(sigs)):
    try:
        print('pass' if d.verify(idx=i, dnsfunc=dnsfunc) else 'fail')
    except dkim.ValidationError:
        print('fail')
"#,
        table.join(", ")
    );
    let mut child = match Command::new(python())
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("python3 not available ({e}); skipping dkimpy");
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named 'dkim'") {
            eprintln!("python3-dkim not installed (scripts/test.sh installs it); skipping");
            return None;
        }
        panic!("dkimpy failed: {stderr}");
    }
    Some(stdout.lines().map(str::to_owned).collect())
}

#[test]
fn dkimpy_verifies_tern_signatures_rsa_and_ed25519_and_rejects_a_changed_body() {
    let dir = tempfile::tempdir().unwrap();
    let records = generate_keys(dir.path(), "example.org", "tern").unwrap();
    let signers = DkimSigners::load(dir.path(), "tern").unwrap();
    // Signed as the pipeline signs: added fields (whole lines, maybe none) and original data.
    let first_line = MESSAGE.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    for split in [0, first_line] {
        let (added, data) = MESSAGE.split_at(split);
        let mut signed = signers.sign("example.org", &[added, data]).into_bytes();
        signed.extend_from_slice(MESSAGE);
        let Some(verdicts) = dkimpy_verify(&signed, &records) else {
            return;
        };
        assert_eq!(
            verdicts,
            ["pass", "pass"],
            "{}",
            String::from_utf8_lossy(&signed)
        );
    }
    let mut signed = signers.sign("example.org", &[MESSAGE]).into_bytes();
    signed.extend_from_slice(MESSAGE);
    let mut changed = signed.clone();
    let at = changed.len() - 10;
    changed[at] = b'X';
    let verdicts = dkimpy_verify(&changed, &records).unwrap_or_default();
    assert_eq!(verdicts, ["fail", "fail"]);
}

/// OpenDKIM's own verifier (`opendkim -t`, test mode), with the public keys from a
/// `TestPublicKeys` file holding the printed records. Returns its report lines.
fn opendkim_verify(message: &[u8], records: &[DkimRecord]) -> Option<String> {
    if !std::path::Path::new("/usr/sbin/opendkim").exists() {
        eprintln!("opendkim not installed (scripts/test.sh installs it); skipping");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let lines: Vec<String> = records
        .iter()
        .map(|r| format!("{} {}\n", r.name, r.value))
        .collect();
    std::fs::write(&keys, lines.concat()).unwrap();
    let conf = dir.path().join("opendkim.conf");
    std::fs::write(
        &conf,
        format!(
            "Mode v\nTestPublicKeys {}\nSyslog no\nAlwaysAddARHeader yes\nAuthservID test\n",
            keys.display()
        ),
    )
    .unwrap();
    let msg = dir.path().join("msg.eml");
    std::fs::write(&msg, message).unwrap();
    let out = Command::new("/usr/sbin/opendkim")
        .arg("-x")
        .arg(&conf)
        .arg("-vvv")
        .arg("-t")
        .arg(&msg)
        .output()
        .unwrap();
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn opendkim_verifies_tern_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let records = generate_keys(dir.path(), "example.org", "tern").unwrap();
    let signers = DkimSigners::load(dir.path(), "tern").unwrap();
    let mut signed = signers.sign("example.org", &[MESSAGE]).into_bytes();
    signed.extend_from_slice(MESSAGE);
    let Some(report) = opendkim_verify(&signed, &records) else {
        return;
    };
    // OpenDKIM 2.11 verifies RFC 8463 Ed25519 as well as RSA.
    assert!(
        report.contains("dkim=pass (2048-bit key) header.d=example.org")
            && report.contains("header.a=rsa-sha256 header.s=tern-rsa"),
        "{report}"
    );
    assert!(
        report.contains("header.a=ed25519-sha256 header.s=tern-ed"),
        "{report}"
    );
    assert_eq!(report.matches("dkim=pass").count(), 2, "{report}");
    let changed = String::from_utf8_lossy(&signed).replace("Hello Bob.", "Hello Eve.");
    let report = opendkim_verify(changed.as_bytes(), &records).unwrap_or_default();
    assert_eq!(report.matches("dkim=pass").count(), 0, "{report}");
    assert_eq!(report.matches("dkim=fail").count(), 2, "{report}");
}
