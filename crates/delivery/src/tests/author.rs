//! The author check of submissions (`From:`/`Sender:` must be the account's), DKIM signing by
//! exactly the `From:` domain, and several `From:` fields failing DMARC on arrival.

use tern_common::config::MailAuthConfig;

use super::*;
use crate::auth::tests::{Dns, authenticator, keys};

/// A submission by alice to bob with this header block; example.test and other.test hosted.
async fn submit(env: &Env, header: &str) -> Result<Vec<RecipientOutcome>, DeliveryError> {
    let alice = env.rcpt("alice@example.test").await.accounts[0];
    let data = format!("{header}To: bob@example.test\r\nSubject: s\r\n\r\nbody\r\n");
    let rcpts = env.rcpts(&["bob@example.test"]).await;
    env.pipeline
        .deliver(inbound(
            InboundKind::Submission { account: alice },
            rcpts,
            data.as_bytes(),
        ))
        .await
}

async fn env_with_other_domain() -> Env {
    let env = env().await;
    env.directory.add_domain("other.test").await.unwrap();
    env.directory
        .add_user(
            "ceo@other.test",
            &Secret::new("correct horse battery"),
            None,
        )
        .await
        .unwrap();
    env
}

fn refusal(result: Result<Vec<RecipientOutcome>, DeliveryError>) -> (u16, [u8; 3], String) {
    match result {
        Err(DeliveryError::Refused { code, status, text }) => (code, status, text),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn alice_cannot_submit_as_bob_or_a_user_of_another_hosted_domain_and_nothing_is_stored() {
    let env = env_with_other_domain().await;
    for (header, named) in [
        ("From: bob@example.test\r\n", "<bob@example.test>"),
        ("From: \"Alice\" <ceo@other.test>\r\n", "<ceo@other.test>"),
        ("FROM : Bob@Example.Test\r\n", "<Bob@example.test>"),
        // Every mailbox of a From: must be hers, and the Sender: too.
        (
            "From: alice@example.test, bob@example.test\r\nSender: alice@example.test\r\n",
            "<bob@example.test>",
        ),
        (
            "From: alice@example.test\r\nSender: bob@example.test\r\n",
            "<bob@example.test>",
        ),
        // Her address in the display name or a comment changes nothing.
        (
            "From: alice@example.test <bob@example.test>\r\n",
            "<bob@example.test>",
        ),
    ] {
        let (code, status, text) = refusal(submit(&env, header).await);
        assert_eq!((code, status), (550, [5, 7, 1]), "{header}: {text}");
        assert_eq!(
            text,
            format!("{named} is not an address you may send as"),
            "{header}"
        );
    }
    assert!(env.inbox("bob@example.test").await.is_empty());
    assert!(env.store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_repeated_group_and_empty_author_fields_are_refused_as_malformed() {
    let env = env().await;
    for (header, says) in [
        ("", "no From: header field"),
        (
            "From: alice@example.test\r\nFrom: alice@example.test\r\n",
            "2 From: header fields",
        ),
        (
            "From: alice@example.test\r\nSubject: x\r\n \r\nFrom: bob@example.test\r\n",
            "2 From: header fields",
        ),
        (
            "From: alice@example.test\r\nSender: alice@example.test\r\nSender: alice@example.test\r\n",
            "2 Sender: header fields",
        ),
        ("From: friends: alice@example.test;\r\n", "group syntax"),
        ("From: undisclosed-recipients:;\r\n", "group syntax"),
        ("From: Alice\r\n", "names no address"),
        ("From:\r\n", "names no address"),
    ] {
        let (code, status, text) = refusal(submit(&env, header).await);
        assert_eq!((code, status), (550, [5, 6, 0]), "{header:?}: {text}");
        assert!(text.contains(says), "{header:?}: {text}");
    }
    assert!(env.inbox("bob@example.test").await.is_empty());
}

#[tokio::test]
async fn alice_may_submit_as_herself_her_subaddresses_and_her_send_as_list() {
    let env = env_with_other_domain().await;
    env.directory
        .add_send_as("alice@example.test", "ceo@other.test")
        .await
        .unwrap();
    for header in [
        "From: Alice <alice@example.test>\r\n",
        "From: ALICE+lists@Example.Test\r\n",
        "From: The CEO <ceo@other.test>\r\nSender: alice@example.test\r\n",
        "From: alice@example.test,\r\n ceo@other.test\r\nSender: alice@example.test\r\n",
    ] {
        let outcomes = submit(&env, header).await.unwrap();
        assert_eq!(
            statuses(&outcomes),
            [RecipientStatus::Delivered],
            "{header}"
        );
    }
    assert_eq!(env.inbox("bob@example.test").await.len(), 4);
}

#[tokio::test]
async fn a_submission_from_a_subdomain_without_keys_is_not_signed_by_the_parents_keys() {
    let env = env().await;
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    let (signers, _) = keys(&dns, "example.test");
    env.directory.add_domain("sub.example.test").await.unwrap();
    env.directory
        .add_send_as("alice@example.test", "alice@sub.example.test")
        .await
        .unwrap();
    let alice = env.rcpt("alice@example.test").await.accounts[0];
    let pipeline = env.pipeline.clone().with_dkim(signers);
    for from in ["alice@sub.example.test", "alice@example.test"] {
        let data = format!("From: {from}\r\nTo: bob@example.test\r\nSubject: s\r\n\r\nbody\r\n");
        let rcpts = env.rcpts(&["bob@example.test"]).await;
        pipeline
            .deliver(inbound(
                InboundKind::Submission { account: alice },
                rcpts,
                data.as_bytes(),
            ))
            .await
            .unwrap();
    }
    let inbox = env.inbox("bob@example.test").await;
    assert_eq!(count_fields(&inbox[0].0, "DKIM-Signature"), 0);
    // Its own domain's keys sign.
    let signed = String::from_utf8_lossy(&inbox[1].0).into_owned();
    assert_eq!(count_fields(&inbox[1].0, "DKIM-Signature"), 2, "{signed}");
    assert!(signed.contains("d=example.test"), "{signed}");
}

#[tokio::test]
async fn inbound_mail_with_two_from_fields_fails_dmarc_even_when_one_domain_has_no_policy() {
    let env = env().await;
    let a = authenticator(MailAuthConfig::default());
    let dns = Dns(&a);
    dns.base();
    dns.spf("example.org", "v=spf1 ip4:192.0.2.1 -all");
    dns.dmarc("example.org", "v=DMARC1; p=reject");
    dns.spf("bank.example", "v=spf1 -all");
    dns.dmarc("bank.example", "v=DMARC1; p=reject");
    dns.nx("_dmarc.example");
    // SPF and DKIM of example.org pass; a second From: names a domain whose mail this is not.
    // mail-auth exempts messages whose From: fields name different domains.
    let (signers, _) = keys(&dns, "example.org");
    let body = b"From: ceo@bank.example\r\nFrom: sender@example.org\r\nTo: alice@example.test\r\n\
Subject: wire the money\r\n\r\nNow.\r\n";
    let signed = [
        signers.sign("example.org", &[&body[..]]).as_bytes(),
        &body[..],
    ]
    .concat();
    let pipeline = env.pipeline.clone().with_authenticator(a);
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    match pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, &signed))
        .await
    {
        Err(DeliveryError::Refused { code, status, text }) => {
            assert_eq!((code, status), (550, [5, 7, 1]), "{text}");
            assert!(text.contains("several From:"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(env.inbox("alice@example.test").await.is_empty());
}
