//! Verification with an in-memory DNS: the mail-auth caches are pre-filled with parsed records and
//! the resolver behind them points at a closed port, so a name the test forgot is a temperror.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{DnsError, Error, RecordSet, ResolverCache, Txt};
use tern_common::config::{DmarcRejectAction, DnsConfig, MailAuthConfig, SpfFailAction};
use tern_store::{DkimAlgorithm, DkimKeyFile};

use super::*;
use crate::dkim::{DkimSigners, dns_selector};

pub(crate) const HOST: &str = "mx.example.test";
pub(crate) const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
pub(crate) const MESSAGE: &[u8] =
    b"From: Sender <sender@example.org>\r\nTo: alice@example.test\r\n\
Subject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n\r\n\
Hello.\r\n";

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn fqdn(name: &str) -> Box<str> {
    format!("{}.", name.trim_end_matches('.')).into()
}

/// An authenticator whose DNS is only what the test puts into its caches.
pub(crate) fn authenticator(config: MailAuthConfig) -> Authenticator {
    let dns = DnsConfig {
        // Port 9 (discard) on loopback: nothing answers, so a missing entry is a temperror.
        nameservers: vec!["127.0.0.1:9".parse().unwrap()],
        timeout: Duration::from_millis(300),
    };
    let resolver = tern_common::dns::resolver(&dns).unwrap();
    Authenticator::new(resolver, config, HOST)
}

/// Pre-filled DNS.
pub(crate) struct Dns<'a>(pub &'a Authenticator);

impl Dns<'_> {
    pub(crate) fn txt<T: TxtRecordParser + Into<Txt>>(&self, name: &str, record: &str) {
        let value = T::parse(record.as_bytes()).map_or_else(Txt::Error, Into::into);
        self.0.caches().txt.insert(fqdn(name), value, far());
    }
    pub(crate) fn spf(&self, name: &str, record: &str) {
        self.txt::<Spf>(name, record);
    }
    pub(crate) fn dmarc(&self, domain: &str, record: &str) {
        self.txt::<Dmarc>(&format!("_dmarc.{domain}"), record);
    }
    pub(crate) fn key(&self, name: &str, record: &str) {
        self.txt::<DomainKey>(name, record);
    }
    pub(crate) fn nx(&self, name: &str) {
        let e = Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain));
        self.0.caches().txt.insert(fqdn(name), Txt::Error(e), far());
    }
    /// The TXT lookup of `name` fails (SERVFAIL, timeout): a temperror.
    pub(crate) fn servfail(&self, name: &str) {
        let e = Error::Dns(DnsError::Resolver("SERVFAIL".to_owned()));
        self.0.caches().txt.insert(fqdn(name), Txt::Error(e), far());
    }
    /// `ip`'s PTR is `name`, whose A record is `ip` (iprev pass).
    pub(crate) fn ptr(&self, ip: Ipv4Addr, name: &str) {
        let c = self.0.caches();
        c.ptr.insert(
            IpAddr::V4(ip),
            RecordSet {
                rrset: Arc::from(vec![fqdn(name)]),
                dnssec_status: Default::default(),
            },
            far(),
        );
        c.ipv4.insert(
            fqdn(name),
            RecordSet {
                rrset: Arc::from(vec![ip]),
                dnssec_status: Default::default(),
            },
            far(),
        );
    }
    /// The usual world: iprev passes, HELO has no SPF, `org` has no DMARC record.
    pub(crate) fn base(&self) {
        self.ptr(Ipv4Addr::new(192, 0, 2, 1), "mail.example.org");
        self.nx("mail.example.org");
        self.nx("_dmarc.org");
        self.nx("_dmarc.mail.example.org");
    }
}

/// RSA + Ed25519 keys for `domain`, generated fresh, with their records published in `dns`.
pub(crate) fn keys(dns: &Dns<'_>, domain: &str) -> (DkimSigners, Vec<DkimKeyFile>) {
    let dir = tempfile::tempdir().unwrap();
    let records = crate::dkim::generate_keys(dir.path(), domain, "tern").unwrap();
    for r in &records {
        dns.key(&r.name, &r.value);
    }
    let files = tern_store::read_dkim_keys(dir.path()).unwrap();
    (DkimSigners::from_keys(&files).unwrap(), files)
}

fn input<'a>(data: &'a [u8], mail_from: Option<&'a str>) -> VerifyInput<'a> {
    VerifyInput {
        data,
        client_ip: CLIENT,
        helo: "mail.example.org",
        mail_from,
    }
}

fn signed(signers: &DkimSigners, domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = signers.sign(domain, &[message]).into_bytes();
    out.extend_from_slice(message);
    out
}

#[tokio::test]
async fn spf_results_pass_fail_softfail_none_appear_in_one_header() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.nx("_dmarc.example.org");
    for (record, expect) in [
        ("v=spf1 ip4:192.0.2.0/24 -all", "spf=pass"),
        ("v=spf1 ip4:198.51.100.1 -all", "spf=fail"),
        ("v=spf1 ~all", "spf=softfail"),
        ("v=spf1 ?all", "spf=neutral"),
    ] {
        dns.spf("example.org", record);
        let v = a
            .verify(input(MESSAGE, Some("sender@example.org")), None)
            .await;
        assert!(
            v.header
                .starts_with("Authentication-Results: mx.example.test;"),
            "{}",
            v.header
        );
        assert_eq!(v.header.matches("Authentication-Results:").count(), 1);
        assert!(
            v.header.contains(&format!("{expect} ")),
            "{record}: {}",
            v.header
        );
        assert!(
            v.header.contains("smtp.mailfrom=sender@example.org"),
            "{}",
            v.header
        );
        assert!(v.header.contains("iprev=pass"), "{}", v.header);
        // mail-auth writes no dkim entry for an unsigned message.
        assert!(!v.header.contains("dkim="), "{}", v.header);
        assert!(v.header.contains("dmarc=none"), "{}", v.header);
        assert_eq!(
            v.decision,
            AuthDecision::Accept,
            "spf_fail defaults to none"
        );
    }
    dns.nx("example.org");
    let v = a
        .verify(input(MESSAGE, Some("sender@example.org")), None)
        .await;
    assert!(v.header.contains("spf=none "), "{}", v.header);
    assert_eq!(v.summary.spf, AuthResult::None);
}

#[tokio::test]
async fn dkim_signed_by_tern_passes_both_algorithms_and_a_changed_body_fails() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 -all");
    dns.dmarc("example.org", "v=DMARC1; p=reject");
    let (signers, _) = keys(&dns, "example.org");
    let message = signed(&signers, "example.org", MESSAGE);
    let text = String::from_utf8_lossy(&message).into_owned();
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    assert!(
        text.contains("a=rsa-sha256") && text.contains("a=ed25519-sha256"),
        "{text}"
    );
    assert!(text.contains("c=relaxed/relaxed"), "{text}");
    let v = a
        .verify(input(&message, Some("sender@example.org")), None)
        .await;
    assert_eq!(v.header.matches("dkim=pass").count(), 2, "{}", v.header);
    assert!(v.header.contains("header.s=tern-rsa") && v.header.contains("header.s=tern-ed"));
    assert!(v.header.contains("dmarc=pass"), "{}", v.header);
    assert!(v.summary.dkim_author_domain);
    assert_eq!(v.decision, AuthDecision::Accept);

    let tampered = String::from_utf8_lossy(&message).replace("Hello.", "Hellx.");
    let v = a
        .verify(input(tampered.as_bytes(), Some("sender@example.org")), None)
        .await;
    // RFC 6376 §6.1.3 / RFC 8601 §2.7.1: a body hash mismatch is a failed verification, not
    // `neutral` (what mail-auth reports); the signature's identity stays on the entry.
    let unfolded = v.header.replace("\r\n\t", " ");
    for selector in ["tern-rsa", "tern-ed"] {
        assert!(
            unfolded.contains(&format!(
                "dkim=fail (body hash did not verify) header.d=example.org header.s={selector}"
            )),
            "{selector}: {}",
            v.header
        );
    }
    assert!(!v.header.contains("dkim=neutral"), "{}", v.header);
    assert!(!v.summary.dkim_author_domain);
    assert!(v.header.contains("dmarc=fail"), "{}", v.header);
    assert!(matches!(
        v.decision,
        AuthDecision::Refuse {
            code: 550,
            status: [5, 7, 1],
            ..
        }
    ));
}

#[tokio::test]
async fn dmarc_policies_decide_reject_quarantine_or_configured_quarantine() {
    let run = |config: MailAuthConfig, record: &'static str| async move {
        let a = authenticator(config);
        let dns = Dns(&a);
        dns.base();
        dns.spf("example.org", "v=spf1 ip4:198.51.100.1 -all");
        dns.dmarc("example.org", record);
        a.verify(input(MESSAGE, Some("sender@example.org")), None)
            .await
    };
    let v = run(MailAuthConfig::default(), "v=DMARC1; p=reject").await;
    assert!(v.header.contains("dmarc=fail") && v.header.contains("policy.dmarc=reject"));
    match v.decision {
        AuthDecision::Refuse { code, status, text } => {
            assert_eq!((code, status), (550, [5, 7, 1]));
            assert!(text.contains("example.org"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let v = run(MailAuthConfig::default(), "v=DMARC1; p=quarantine").await;
    assert_eq!(v.decision, AuthDecision::Junk("dmarc p=quarantine"));
    let v = run(MailAuthConfig::default(), "v=DMARC1; p=none").await;
    assert_eq!(v.decision, AuthDecision::Accept);
    assert_eq!(v.summary.dmarc, AuthResult::Fail);
    let quarantine = MailAuthConfig {
        dmarc_reject: DmarcRejectAction::Quarantine,
        ..MailAuthConfig::default()
    };
    let v = run(quarantine, "v=DMARC1; p=reject").await;
    assert!(matches!(v.decision, AuthDecision::Junk(_)));
    // RFC 9989 t=y: testing lowers reject to quarantine.
    let v = run(MailAuthConfig::default(), "v=DMARC1; p=reject; t=y").await;
    assert!(matches!(v.decision, AuthDecision::Junk(_)));
}

#[tokio::test]
async fn spf_fail_action_is_configurable() {
    let run = |spf_fail| async move {
        let a = authenticator(MailAuthConfig {
            spf_fail,
            ..MailAuthConfig::default()
        });
        let dns = Dns(&a);
        dns.base();
        dns.spf("example.org", "v=spf1 -all");
        dns.nx("_dmarc.example.org");
        a.verify(input(MESSAGE, Some("sender@example.org")), None)
            .await
            .decision
    };
    assert_eq!(run(SpfFailAction::None).await, AuthDecision::Accept);
    assert_eq!(
        run(SpfFailAction::Junk).await,
        AuthDecision::Junk("spf fail")
    );
    assert!(matches!(
        run(SpfFailAction::Reject).await,
        AuthDecision::Refuse {
            code: 550,
            status: [5, 7, 23],
            ..
        }
    ));
}

#[tokio::test]
async fn a_syntactically_broken_signature_stays_neutral() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 ip4:192.0.2.1 -all");
    dns.nx("_dmarc.example.org");
    // RFC 8601 §2.7.1: "neutral" is for signatures that could not be processed; only the body
    // hash mismatch moves to fail.
    let broken = [
        &b"DKIM-Signature: v=2; a=rsa-sha256; d=example.org; s=x; h=From; bh=AAAA; b=AAAA\r\n"[..],
        MESSAGE,
    ]
    .concat();
    let v = a
        .verify(input(&broken, Some("sender@example.org")), None)
        .await;
    assert!(v.header.contains("dkim=neutral"), "{}", v.header);
    assert!(!v.header.contains("dkim=fail"), "{}", v.header);
}

#[tokio::test]
async fn spf_permerror_is_recorded_and_never_refused() {
    for spf_fail in [
        SpfFailAction::None,
        SpfFailAction::Junk,
        SpfFailAction::Reject,
    ] {
        // RFC 7208 §4.6: a syntax error anywhere in the record; §6: `redirect` at most once.
        for record in [
            "v=spf1 ip4:not-an-ip -all",
            "v=spf1 include -all",
            "v=spf1 redirect=a.example redirect=b.example",
        ] {
            let a = authenticator(MailAuthConfig {
                spf_fail,
                ..MailAuthConfig::default()
            });
            let dns = Dns(&a);
            dns.base();
            dns.spf("example.org", record);
            dns.nx("_dmarc.example.org");
            let v = a
                .verify(input(MESSAGE, Some("sender@example.org")), None)
                .await;
            assert!(
                v.header.contains("spf=permerror "),
                "{record}: {}",
                v.header
            );
            assert_eq!(v.summary.spf, AuthResult::PermError);
            // RFC 7208 §8.7: the sender's broken record, not a forgery.
            assert_eq!(v.decision, AuthDecision::Accept, "{spf_fail:?} {record}");
        }
    }
}

#[tokio::test]
async fn spf_temperror_defers_only_when_a_fail_would_have_mattered() {
    let run = |spf_fail| async move {
        let a = authenticator(MailAuthConfig {
            spf_fail,
            ..MailAuthConfig::default()
        });
        let dns = Dns(&a);
        dns.base();
        dns.servfail("example.org");
        dns.nx("_dmarc.example.org");
        a.verify(input(MESSAGE, Some("sender@example.org")), None)
            .await
    };
    let v = run(SpfFailAction::None).await;
    assert!(v.header.contains("spf=temperror "), "{}", v.header);
    assert_eq!(v.summary.spf, AuthResult::TempError);
    assert_eq!(v.decision, AuthDecision::Accept);
    for spf_fail in [SpfFailAction::Junk, SpfFailAction::Reject] {
        let v = run(spf_fail).await;
        match v.decision {
            AuthDecision::Refuse { code, status, .. } => {
                assert_eq!((code, status), (451, [4, 7, 24]), "{spf_fail:?}");
            }
            other => panic!("{spf_fail:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn spf_temperror_of_a_dmarc_domain_defers_whatever_spf_fail_says() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.servfail("example.org");
    dns.dmarc("example.org", "v=DMARC1; p=reject");
    let v = a
        .verify(input(MESSAGE, Some("sender@example.org")), None)
        .await;
    // RFC 7489 §6.6.2 / RFC 9989: the aligned SPF check could not be done, so DMARC can neither
    // pass nor fail.
    assert!(v.header.contains("spf=temperror "), "{}", v.header);
    assert!(v.header.contains("dmarc=temperror"), "{}", v.header);
    assert!(matches!(
        v.decision,
        AuthDecision::Refuse {
            code: 451,
            status: [4, 7, 5],
            ..
        }
    ));
}

#[tokio::test]
async fn a_dns_failure_defers_with_451_instead_of_accepting() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 -all");
    // _dmarc.example.org is not in the cache: the (dead) resolver fails.
    let v = a
        .verify(input(MESSAGE, Some("sender@example.org")), None)
        .await;
    match v.decision {
        AuthDecision::Refuse { code, status, .. } => assert_eq!((code, status), (451, [4, 7, 5])),
        other => panic!("{other:?}: {}", v.header),
    }
    assert!(v.header.contains("dmarc=temperror"), "{}", v.header);
}

#[tokio::test]
async fn null_sender_is_checked_as_postmaster_at_helo() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("mail.example.org", "v=spf1 ip4:192.0.2.1 -all");
    dns.nx("_dmarc.example.org");
    let v = a.verify(input(MESSAGE, None), None).await;
    assert!(v.header.contains("smtp.mailfrom=<>"), "{}", v.header);
    assert!(
        v.header.contains("smtp.helo=mail.example.org"),
        "{}",
        v.header
    );
    assert_eq!(v.summary.spf, AuthResult::Pass);
}

#[tokio::test]
async fn arc_seal_is_added_when_asked_and_verifies_as_a_chain() {
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 ip4:192.0.2.1 -all");
    dns.nx("_dmarc.example.org");
    let (signers, files) = keys(&dns, "example.test");
    let sealer = signers.sealer("example.test").expect("RSA key seals");
    let v = a
        .verify(input(MESSAGE, Some("sender@example.org")), Some(sealer))
        .await;
    let set = v.arc_set.expect("sealed");
    for f in [
        "ARC-Seal: i=1;",
        "ARC-Message-Signature: i=1;",
        "ARC-Authentication-Results: i=1;",
    ] {
        assert!(set.contains(f), "{set}");
    }
    assert!(set.contains("cv=none"), "{set}");
    // The next hop sees a valid chain of one.
    let mut forwarded = set.into_bytes();
    forwarded.extend_from_slice(MESSAGE);
    let rsa = files
        .iter()
        .find(|f| f.algorithm == DkimAlgorithm::Rsa)
        .expect("rsa");
    assert_eq!(dns_selector(&rsa.selector, rsa.algorithm), "tern-rsa");
    let v = a
        .verify(input(&forwarded, Some("sender@example.org")), None)
        .await;
    assert!(v.header.contains("arc=pass"), "{}", v.header);
}
