//! RFC 3461 DSN: the extension offered, its parameters checked and stored, success DSNs for
//! what is stored here, and the parameters passed on or answered with "relayed" by the queue.
//! Also the RFC 6531 §4.3 `with` word of SMTPUTF8 transactions.

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tern_common::config::OutboundConfig;
use tern_directory::Account;
use tern_store::{DsnReturn, Notify, SenderTrust};

use super::outbound::LoopbackDns;
use super::peer::{Peer, Script};
use super::*;
use crate::outbound::Outbound;

/// Alice's AUTH PLAIN on a submission session from loopback.
async fn submission(h: &Harness) -> Client<DuplexStream> {
    let mut c = h.connect(Protocol::Submission, LOOPBACK).await;
    c.ehlo().await;
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("\0alice@example.test\0{PW}"),
    );
    c.cmd(&format!("AUTH PLAIN {token}"), "235").await;
    c
}

/// DATA with a message by alice (what her submissions must say; MX takes it as well).
async fn data(c: &mut Client<DuplexStream>, subject: &str) {
    c.cmd("DATA", "354").await;
    c.write(message_from("alice@example.test", subject).as_bytes())
        .await;
    c.cmd(".", "250 2.0.0").await;
}

/// The messages in `account`'s INBOX once there are `n` (success DSNs are stored after the
/// reply, on a task of their own).
async fn wait_for(h: &Harness, account: &Account, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let inbox = h.inbox(account).await;
        if inbox.len() >= n {
            return inbox;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} messages expected in {}", account.address);
}

/// The `message/delivery-status` part of a stored DSN.
fn status_part(stored: &str) -> String {
    let m = MessageParser::default().parse(stored.as_bytes()).unwrap();
    m.parts
        .iter()
        .find(|p| p.content_type().and_then(|c| c.subtype()) == Some("delivery-status"))
        .map(|p| match &p.body {
            PartType::Text(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b).into(),
            _ => String::new(),
        })
        .expect("delivery-status part")
}

#[tokio::test]
async fn dsn_is_advertised_after_ehlo_and_lhlo_on_every_flavour() {
    let h = harness().await;
    let mut mx = h.mx().await;
    assert!(mx.ehlo().await.contains("250-DSN\r\n"));
    let mut sub = h.connect(Protocol::Submission, LOOPBACK).await;
    assert!(sub.ehlo().await.contains("250-DSN\r\n"));
    let mut lmtp = h.connect(Protocol::Lmtp, LOOPBACK).await;
    assert!(
        lmtp.cmd("LHLO client.test", "250")
            .await
            .contains("DSN\r\n")
    );
}

#[tokio::test]
async fn dsn_parameters_after_helo_are_refused_as_not_offered() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.cmd("HELO client.test", "250").await;
    c.cmd("MAIL FROM:<s@remote.test> RET=HDRS", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<s@remote.test> ENVID=x", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<s@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER", "555 5.5.4")
        .await;
    c.cmd(
        "RCPT TO:<alice@example.test> ORCPT=rfc822;a@b.test",
        "555 5.5.4",
    )
    .await;
}

#[tokio::test]
async fn bad_dsn_parameters_are_refused_with_501_and_unknown_ones_with_555() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    for line in [
        "MAIL FROM:<s@remote.test> RET=FULL RET=HDRS",
        "MAIL FROM:<s@remote.test> ENVID=a ENVID=b",
        "MAIL FROM:<s@remote.test> RET=SOME",
        "MAIL FROM:<s@remote.test> ENVID=caf+C3+A9",
    ] {
        c.cmd(line, "501 5.5.4").await;
    }
    c.cmd("MAIL FROM:<s@remote.test> HOLDFOR=10", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<s@remote.test> RET=HDRS ENVID=QQ+2B1", "250")
        .await;
    for line in [
        "RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS",
        "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,NEVER",
        "RCPT TO:<alice@example.test> NOTIFY=DELAY NOTIFY=FAILURE",
        "RCPT TO:<alice@example.test> NOTIFY=SOMETIMES",
        "RCPT TO:<alice@example.test> ORCPT=rfc822;a@b ORCPT=rfc822;c@d",
        "RCPT TO:<alice@example.test> ORCPT=rfc822;b+0Ad@x.test",
    ] {
        c.cmd(line, "501 5.5.4").await;
    }
    c.cmd("RCPT TO:<alice@example.test> CONNEG", "555 5.5.4")
        .await;
    c.cmd(
        "RCPT TO:<alice@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;alice+40example.test",
        "250",
    )
    .await;
}

#[tokio::test]
async fn dsn_parameters_are_stored_with_the_queued_copy() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.cmd(
        "MAIL FROM:<alice@example.test> RET=FULL ENVID=QQ+2B314159",
        "250",
    )
    .await;
    c.cmd(
        "RCPT TO:<friend@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Friend+40Remote.test",
        "250",
    )
    .await;
    c.cmd("RCPT TO:<other@remote.test>", "250").await;
    data(&mut c, "stored").await;
    let queue = h.store.queue_list().await.unwrap();
    let m = &queue[0].message;
    assert_eq!(m.env_id.as_deref(), Some("QQ+314159"));
    assert_eq!(m.ret, Some(DsnReturn::Full));
    let r = &queue[0].recipients;
    assert_eq!(r[0].notify, Notify(Notify::SUCCESS | Notify::FAILURE));
    assert_eq!(r[0].orcpt.as_deref(), Some("rfc822;Friend@Remote.test"));
    assert_eq!(r[1].notify, Notify::default());
    assert_eq!(r[1].orcpt, None);
}

#[tokio::test]
async fn notify_success_to_a_local_mailbox_sends_a_delivered_dsn_to_the_sender() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.cmd("MAIL FROM:<alice@example.test> ENVID=e-1", "250")
        .await;
    c.cmd(
        "RCPT TO:<bob@example.test> NOTIFY=SUCCESS ORCPT=rfc822;bob+40example.test",
        "250",
    )
    .await;
    data(&mut c, "hello-bob").await;
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
    let inbox = wait_for(&h, &h.alice, 1).await;
    assert!(inbox[0].starts_with("Return-Path: <>\r\n"), "{}", inbox[0]);
    assert!(inbox[0].contains("Subject: Successful Mail Delivery Report"));
    let status = status_part(&inbox[0]);
    for line in [
        "Original-Envelope-Id: e-1",
        "Original-Recipient: rfc822;bob@example.test",
        "Final-Recipient: rfc822; bob@example.test",
        "Action: delivered",
        "Status: 2.0.0",
    ] {
        assert!(status.contains(line), "{line:?} missing in\n{status}");
    }
    assert!(inbox[0].contains("Subject: hello-bob"), "headers returned");
    assert!(!inbox[0].contains("Hello hello-bob."), "no body returned");
}

#[tokio::test]
async fn no_success_dsn_without_notify_success_or_for_the_null_sender() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<bob@example.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test> NOTIFY=FAILURE,DELAY", "250")
        .await;
    data(&mut c, "quiet").await;
    c.cmd("MAIL FROM:<>", "250").await;
    c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS", "250")
        .await;
    data(&mut c, "bounce").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.inbox(&h.alice).await.len(), 2);
    assert!(h.inbox(&h.bob).await.is_empty(), "no DSN for bob");
}

#[tokio::test]
async fn an_alias_with_several_targets_reports_expanded_and_asks_its_remote_target_nothing() {
    let h = harness().await;
    // Submitted by alice (authenticated): she gets her copy through the alias, and the report.
    let mut c = submission(&h).await;
    c.cmd("MAIL FROM:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<mixed@example.test> NOTIFY=SUCCESS", "250")
        .await;
    data(&mut c, "to-mixed").await;
    let inbox = wait_for(&h, &h.alice, 2).await;
    let report = inbox
        .iter()
        .find(|m| m.contains("multipart/report"))
        .expect("an expanded DSN");
    let status = status_part(report);
    assert!(
        status.contains("Final-Recipient: rfc822; mixed@example.test"),
        "{status}"
    );
    assert!(status.contains("Action: expanded"), "{status}");
    // RFC 3461 §5.2.7.3: the external target is not asked for a success DSN of its own.
    let queue = h.store.queue_list().await.unwrap();
    let r = &queue[0].recipients[0];
    assert_eq!(r.address, "ext@remote.test");
    assert_eq!(r.notify, Notify(Notify::NEVER));
    assert_eq!(r.orcpt.as_deref(), Some("rfc822;mixed@example.test"));
}

#[tokio::test]
async fn notify_success_on_port_25_from_an_unverified_sender_gets_no_report() {
    // The reflection attack: anyone on port 25 names a victim as MAIL FROM and asks for
    // NOTIFY=SUCCESS with a message of their own writing. Here nothing verifies the sender (no
    // SPF pass), so neither "delivered" nor "expanded" is sent (RFC 3461 §5.2.2).
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<bob@example.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS", "250")
        .await;
    c.cmd("RCPT TO:<team@example.test> NOTIFY=SUCCESS", "250")
        .await;
    c.cmd("DATA", "354").await;
    c.write(b"Buy cheap pills at http://spam.example/\r\n")
        .await;
    c.cmd(".", "250 2.0.0").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bob = h.inbox(&h.bob).await;
    assert_eq!(bob.len(), 1, "only bob's copy through team@: {bob:?}");
    assert!(!bob[0].contains("multipart/report"), "{}", bob[0]);
}

#[tokio::test]
async fn lmtp_takes_dsn_parameters_but_leaves_success_reports_to_its_client() {
    let h = harness().await;
    let mut c = h.connect(Protocol::Lmtp, LOOPBACK).await;
    c.cmd("LHLO client.test", "250").await;
    c.cmd("MAIL FROM:<bob@example.test> RET=HDRS", "250").await;
    c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS", "250")
        .await;
    c.cmd("DATA", "354").await;
    c.write(message("lmtp").as_bytes()).await;
    c.cmd(".", "250").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.inbox(&h.bob).await.is_empty());
}

#[tokio::test]
async fn an_smtputf8_transaction_is_received_with_utf8smtp() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<sender@remote.test> SMTPUTF8", "250")
        .await;
    c.cmd("RCPT TO:<josé@example.test>", "250").await;
    data(&mut c, "utf8").await;
    c.cmd("MAIL FROM:<sender@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    data(&mut c, "ascii").await;
    let jose = h.inbox(&h.jose).await;
    assert!(jose[0].contains(" with UTF8SMTP id "), "{}", jose[0]);
    let alice = h.inbox(&h.alice).await;
    assert!(alice[0].contains(" with ESMTP id "), "{}", alice[0]);
}

async fn run_queue(h: &Harness, peer: &Peer) {
    let config = OutboundConfig {
        mx_port: peer.addr.port(),
        allow_private_destinations: true,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
        ..OutboundConfig::default()
    };
    let out = Outbound::new(
        h.ctx.pipeline.clone(),
        config,
        "mx.example.test".into(),
        Arc::new(LoopbackDns),
        Arc::clone(&h.ctx.dsn_limiter),
    )
    .unwrap();
    Arc::new(out).run_once().await;
}

/// Alice sends to `friend@remote.test` with these RCPT parameters.
async fn submit_remote(h: &Harness, mail: &str, rcpt: &str) {
    let mut c = submission(h).await;
    c.cmd(&format!("MAIL FROM:<alice@example.test>{mail}"), "250")
        .await;
    c.cmd(&format!("RCPT TO:<friend@remote.test>{rcpt}"), "250")
        .await;
    data(&mut c, "remote").await;
}

#[tokio::test]
async fn a_next_hop_offering_dsn_gets_the_parameters_and_no_relayed_dsn_is_sent() {
    let h = harness().await;
    let mut script = Script::default();
    script.ehlo.push("DSN");
    let peer = Peer::start(script).await;
    submit_remote(
        &h,
        " RET=HDRS ENVID=a+2Bb",
        " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;f+40r.test",
    )
    .await;
    run_queue(&h, &peer).await;
    let got = peer.accepted();
    let mail = &got[0].commands[0];
    assert!(mail.ends_with(" RET=HDRS ENVID=a+2Bb"), "{mail}");
    assert_eq!(
        got[0].commands[1],
        "RCPT TO:<friend@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;f@r.test"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.inbox(&h.alice).await.is_empty(), "the next hop reports");
}

#[tokio::test]
async fn a_next_hop_without_dsn_makes_notify_success_a_relayed_dsn() {
    let h = harness().await;
    let peer = Peer::start(Script::default()).await;
    submit_remote(&h, "", " NOTIFY=SUCCESS").await;
    run_queue(&h, &peer).await;
    assert!(!peer.accepted()[0].commands[1].contains("NOTIFY"));
    let inbox = h.inbox(&h.alice).await;
    assert_eq!(inbox.len(), 1);
    let status = status_part(&inbox[0]);
    assert!(status.contains("Action: relayed"), "{status}");
    assert!(status.contains("Status: 2.0.0"), "{status}");
    assert!(
        status.contains("Remote-MTA: dns; mx.remote.test"),
        "{status}"
    );
}

/// Queues a message from bob@example.test to `friend@remote.test`, as forwarded mail from port 25
/// would be, with the given sender trust and RET=FULL.
async fn queue_forwarded(h: &Harness, trust: SenderTrust, notify: Notify) {
    let body = message("forwarded");
    h.store
        .deliver(tern_store::Delivery {
            bytes: bytes::Bytes::from(body.into_bytes()),
            internal_date: 1,
            meta: Default::default(),
            targets: vec![],
            queue: Some(tern_store::NewQueued {
                mail_from: Some("bob@example.test".into()),
                ret: Some(DsnReturn::Full),
                sender_trust: trust,
                recipients: vec![tern_store::NewQueuedRecipient {
                    address: "friend@remote.test".into(),
                    orcpt: Some("rfc822;outside@example.test".into()),
                    notify,
                }],
                next_attempt: 0,
                expires_at: i64::MAX,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn forwarded_mail_whose_sender_failed_spf_or_dmarc_is_not_bounced() {
    let h = harness().await;
    let peer = Peer::start(Script {
        rcpt: |_| "550 5.1.1 no such user here",
        ..Script::default()
    })
    .await;
    queue_forwarded(&h, SenderTrust::Failed, Notify::default()).await;
    run_queue(&h, &peer).await;
    assert!(h.store.queue_list().await.unwrap().is_empty(), "settled");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.inbox(&h.bob).await.is_empty(), "no backscatter");

    // An unverified sender (SPF none) still learns of the failure, with the header block only
    // although it asked for RET=FULL.
    queue_forwarded(&h, SenderTrust::Unverified, Notify::default()).await;
    run_queue(&h, &peer).await;
    let inbox = wait_for(&h, &h.bob, 1).await;
    assert!(status_part(&inbox[0]).contains("Action: failed"));
    assert!(inbox[0].contains("text/rfc822-headers"), "{}", inbox[0]);
    assert!(!inbox[0].contains("Hello forwarded."), "{}", inbox[0]);
}

#[tokio::test]
async fn no_relayed_dsn_for_forwarded_mail_from_an_unverified_sender() {
    let h = harness().await;
    let peer = Peer::start(Script::default()).await;
    queue_forwarded(&h, SenderTrust::Unverified, Notify(Notify::SUCCESS)).await;
    run_queue(&h, &peer).await;
    assert_eq!(peer.accepted().len(), 1, "delivered");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.inbox(&h.bob).await.is_empty(), "no relayed DSN");
    // With SPF pass the report is sent.
    queue_forwarded(&h, SenderTrust::SpfPass, Notify(Notify::SUCCESS)).await;
    run_queue(&h, &peer).await;
    let inbox = wait_for(&h, &h.bob, 1).await;
    assert!(status_part(&inbox[0]).contains("Action: relayed"));
}

#[tokio::test]
async fn notify_never_suppresses_the_failure_dsn() {
    let h = harness().await;
    let peer = Peer::start(Script {
        rcpt: |_| "550 5.1.1 no such user here",
        ..Script::default()
    })
    .await;
    submit_remote(&h, "", " NOTIFY=NEVER").await;
    run_queue(&h, &peer).await;
    assert!(h.store.queue_list().await.unwrap().is_empty(), "settled");
    assert!(h.inbox(&h.alice).await.is_empty(), "no DSN");
}
