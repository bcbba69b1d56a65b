//! The authentication stages in the pipeline: A-R field placement, forged A-R removal, DMARC
//! refusal and quarantine, DKIM signing of submissions, trusted relays.

use tern_common::config::MailAuthConfig;
use tern_store::{SenderTrust, SpecialUse};

use super::*;
use crate::auth::tests::{Dns, authenticator, keys};

/// The pipeline of `env` with an authenticator whose DNS has `setup` applied.
fn with_auth(env: &Env, config: MailAuthConfig, setup: impl FnOnce(&Dns<'_>)) -> Pipeline {
    let a = authenticator(config);
    let dns = Dns(&a);
    dns.base();
    setup(&dns);
    env.pipeline.clone().with_authenticator(a)
}

async fn junk(env: &Env, user: &str) -> Vec<Bytes> {
    let account = env.directory.user(&addr(user)).await.unwrap().unwrap();
    let mut out = Vec::new();
    for mailbox in env.store.mailboxes(account.id).await.unwrap() {
        if mailbox.special_use == Some(SpecialUse::Junk) {
            for m in env.store.messages(mailbox.id).await.unwrap() {
                out.push(env.store.read_blob(&m.blob).await.unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn mx_mail_gets_one_authentication_results_below_received_and_forged_ones_are_removed() {
    let env = env().await;
    let pipeline = with_auth(&env, MailAuthConfig::default(), |dns| {
        dns.spf("example.org", "v=spf1 ip4:192.0.2.1 -all");
        dns.nx("_dmarc.example.org");
    });
    let forged = [
        &b"Authentication-Results: MX.example.test; dmarc=pass header.from=example.org\r\n"[..],
        MESSAGE,
    ]
    .concat();
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, &forged))
        .await
        .unwrap();
    let inbox = env.inbox("alice@example.test").await;
    let stored = String::from_utf8_lossy(&inbox[0].0).into_owned();
    // The forged field is gone and the rest of the message is byte-identical.
    let added = split_added(&inbox[0].0, MESSAGE);
    let added = std::str::from_utf8(added).unwrap();
    assert_eq!(
        count_fields(added.as_bytes(), "Authentication-Results"),
        1,
        "{stored}"
    );
    assert!(!stored.contains("dmarc=pass"), "{stored}");
    let received = added.find("Received:").unwrap();
    let results = added
        .find("Authentication-Results: mx.example.test;")
        .unwrap();
    assert!(received < results, "{stored}");
    assert!(added.contains("spf=pass"), "{stored}");
}

#[tokio::test]
async fn dmarc_reject_refuses_with_550_and_quarantine_goes_to_junk() {
    let env = env().await;
    let pipeline = with_auth(&env, MailAuthConfig::default(), |dns| {
        dns.spf("example.org", "v=spf1 -all");
        dns.dmarc("example.org", "v=DMARC1; p=reject");
    });
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    match pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
    {
        Err(DeliveryError::Refused { code, status, .. }) => {
            assert_eq!((code, status), (550, [5, 7, 1]));
        }
        other => panic!("{other:?}"),
    }
    assert!(env.inbox("alice@example.test").await.is_empty());

    let pipeline = with_auth(&env, MailAuthConfig::default(), |dns| {
        dns.spf("example.org", "v=spf1 -all");
        dns.dmarc("example.org", "v=DMARC1; p=quarantine");
    });
    let rcpts = env.rcpts(&["alice@example.test", "bob@example.test"]).await;
    let outcomes = pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    assert!(
        statuses(&outcomes)
            .iter()
            .all(|s| *s == RecipientStatus::Delivered)
    );
    for user in ["alice@example.test", "bob@example.test"] {
        assert!(env.inbox(user).await.is_empty(), "{user}");
        let junk = junk(&env, user).await;
        assert_eq!(junk.len(), 1, "{user}");
        assert!(String::from_utf8_lossy(&junk[0]).contains("policy.dmarc=quarantine"));
    }
}

#[tokio::test]
async fn trusted_relays_submissions_and_lmtp_are_not_verified() {
    let env = env().await;
    // No DNS at all: verification would defer with 451.
    let trusted = MailAuthConfig {
        trusted_relays: vec!["192.0.2.0/24".parse().unwrap()],
        ..MailAuthConfig::default()
    };
    let pipeline = with_auth(&env, trusted, |_| {});
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    let pipeline = with_auth(&env, MailAuthConfig::default(), |_| {});
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    pipeline
        .deliver(inbound(InboundKind::Lmtp, rcpts, MESSAGE))
        .await
        .unwrap();
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    let err = pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    for (bytes, _) in env.inbox("alice@example.test").await {
        assert_eq!(count_fields(&bytes, "Authentication-Results"), 0);
    }
}

#[tokio::test]
async fn submissions_are_dkim_signed_over_the_added_fields_and_verify_on_arrival() {
    let env = env().await;
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 ip4:192.0.2.1 -all");
    dns.dmarc("example.org", "v=DMARC1; p=reject");
    let (signers, _) = keys(&dns, "example.org");
    let alice = env.rcpt("alice@example.test").await;
    let account = alice.accounts[0];
    env.directory.add_domain("example.org").await.unwrap();
    env.directory
        .add_send_as("alice@example.test", "sender@example.org")
        .await
        .unwrap();
    // No Date/Message-ID: the fix-ups add them, and the signature must cover them.
    let bare = b"From: Sender <sender@example.org>\r\nTo: alice@example.test\r\n\
Subject: hello\r\n\r\nHello.\r\n";
    env.pipeline
        .clone()
        .with_dkim(signers)
        .deliver(inbound(
            InboundKind::Submission { account },
            vec![alice],
            bare,
        ))
        .await
        .unwrap();
    let stored = env.inbox("alice@example.test").await.remove(0).0;
    let text = String::from_utf8_lossy(&stored).into_owned();
    assert_eq!(count_fields(&stored, "DKIM-Signature"), 2, "{text}");
    // What a receiver gets: the stored copy without our Return-Path.
    let sent = &stored[text.find("DKIM-Signature").unwrap()..];
    let v = a
        .verify(
            crate::auth::VerifyInput {
                data: sent,
                client_ip: crate::auth::tests::CLIENT,
                helo: "mail.example.org",
                mail_from: Some("sender@example.org"),
            },
            None,
        )
        .await;
    assert_eq!(
        v.header.matches("dkim=pass").count(),
        2,
        "{}\n{text}",
        v.header
    );
    assert!(v.header.contains("dmarc=pass"), "{}", v.header);
}

#[tokio::test]
async fn mx_mail_for_an_external_alias_target_is_queued_under_an_arc_set_of_the_alias_domain() {
    let env = env().await;
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 ip4:192.0.2.1 -all");
    dns.nx("_dmarc.example.org");
    let (signers, _) = keys(&dns, "example.test");
    let pipeline = env
        .pipeline
        .clone()
        .with_dkim(signers)
        .with_authenticator(a.clone());
    // An alias of ours whose only target is elsewhere: the copy goes to the outbound queue.
    let forward = InboundRecipient {
        address: addr("fwd@example.test"),
        accounts: Vec::new(),
        remote: vec![addr("bob@elsewhere.example")],
        notify: Default::default(),
        orcpt: None,
    };
    let outcomes = pipeline
        .deliver(inbound(InboundKind::Mx, vec![forward], MESSAGE))
        .await
        .unwrap();
    assert_eq!(statuses(&outcomes), [RecipientStatus::Delivered]);
    let queued = env.store.queue_list().await.unwrap();
    let [entry] = queued.as_slice() else {
        panic!("{queued:?}");
    };
    let blob = env.store.read_blob(&entry.message.blob).await.unwrap();
    let skip = usize::try_from(entry.message.skip).unwrap();
    let sent = &blob[skip..];
    // RFC 8617 §4.1: the set goes on top of what the next hop receives, sealed by the alias's
    // domain with what we verified.
    assert!(
        sent.starts_with(b"ARC-Seal: i=1;"),
        "{}",
        String::from_utf8_lossy(sent)
    );
    let text = String::from_utf8_lossy(sent).into_owned();
    assert!(text.contains("d=example.test"), "{text}");
    assert!(
        text.contains("ARC-Authentication-Results: i=1; mx.example.test;"),
        "{text}"
    );
    // The next hop (here: our own verifier again) finds a valid chain.
    let v = a
        .verify(
            crate::auth::VerifyInput {
                data: sent,
                client_ip: crate::auth::tests::CLIENT,
                helo: "mail.example.org",
                mail_from: Some("sender@example.org"),
            },
            None,
        )
        .await;
    assert!(v.header.contains("arc=pass"), "{}", v.header);
}

#[tokio::test]
async fn the_sender_trust_follows_spf_and_dmarc_and_is_queued_with_forwarded_mail() {
    let env = env().await;
    let forward = || InboundRecipient {
        address: addr("fwd@example.test"),
        accounts: Vec::new(),
        remote: vec![addr("bob@elsewhere.example")],
        notify: Default::default(),
        orcpt: None,
    };
    // The client is 192.0.2.1; MAIL FROM and From: are example.org.
    let cases: [(&str, Option<&str>, SenderTrust); 5] = [
        ("v=spf1 ip4:192.0.2.1 -all", None, SenderTrust::SpfPass),
        ("v=spf1 -all", None, SenderTrust::Failed),
        ("v=spf1 ~all", None, SenderTrust::Failed),
        ("v=spf1 ?all", None, SenderTrust::Unverified),
        // SPF proves nothing and DMARC fails (no aligned DKIM or SPF pass), even at p=none.
        ("v=spf1 ?all", Some("v=DMARC1; p=none"), SenderTrust::Failed),
    ];
    for (spf, dmarc, expected) in cases {
        let pipeline = with_auth(&env, MailAuthConfig::default(), |dns| {
            dns.spf("example.org", spf);
            match dmarc {
                Some(record) => dns.dmarc("example.org", record),
                None => dns.nx("_dmarc.example.org"),
            }
        });
        let delivered = pipeline
            .deliver_verified(inbound(InboundKind::Mx, vec![forward()], MESSAGE))
            .await
            .unwrap();
        assert_eq!(delivered.sender_trust, expected, "{spf} {dmarc:?}");
        let queued = env.store.queue_list().await.unwrap();
        let entry = queued.last().unwrap();
        assert_eq!(entry.message.sender_trust, expected, "{spf} {dmarc:?}");
    }
    let delivered = env
        .pipeline
        .deliver_verified(inbound(
            InboundKind::Submission {
                account: env
                    .directory
                    .user(&addr("alice@example.test"))
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            },
            vec![forward()],
            // A submission names its own user as the author.
            b"From: alice@example.test\r\nSubject: hello\r\n\r\nHello.\r\n",
        ))
        .await
        .unwrap();
    assert_eq!(delivered.sender_trust, SenderTrust::Authenticated);
    // Not verified at all (no authenticator, as for a trusted relay): proves nothing.
    let delivered = env
        .pipeline
        .deliver_verified(inbound(InboundKind::Mx, vec![forward()], MESSAGE))
        .await
        .unwrap();
    assert_eq!(delivered.sender_trust, SenderTrust::Unverified);
}
