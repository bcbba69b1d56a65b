//! Port 25: greeting, EHLO, command sequencing, recipients and relaying.

use super::*;

#[tokio::test]
async fn greeting_and_ehlo_advertise_the_extensions() {
    let h = harness().await;
    let mut c = h
        .start(Protocol::Smtp, LOOPBACK, TlsMode::StartTls, "s1")
        .await;
    c.expect("220 mx.example.test ESMTP").await;
    let ehlo = c.ehlo().await;
    assert!(
        ehlo.starts_with("250-mx.example.test greets client.test\r\n"),
        "{ehlo}"
    );
    for keyword in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE 52428800",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
    ] {
        assert!(ehlo.contains(keyword), "{keyword} missing in {ehlo}");
    }
    // No certificate: no STARTTLS. Port 25: never AUTH.
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(ehlo.ends_with("\r\n"));
    assert_eq!(ehlo.lines().last().map(|l| &l[..4]), Some("250 "));
}

#[tokio::test]
async fn helo_greets_without_extensions() {
    let h = harness().await;
    let mut c = h.mx().await;
    let reply = c.cmd("HELO client.test", "250 ").await;
    assert_eq!(reply, "250 mx.example.test\r\n");
    let reply = c
        .transaction(
            "sender@remote.test",
            &["alice@example.test"],
            &message("helo"),
        )
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = h.inbox(&h.alice).await;
    assert!(stored[0].contains("with SMTP"), "{}", stored[0]);
}

#[tokio::test]
async fn mail_before_ehlo_is_a_bad_sequence() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.cmd("MAIL FROM:<a@remote.test>", "503 5.5.1").await;
    c.cmd("RCPT TO:<alice@example.test>", "503 5.5.1").await;
    c.cmd("DATA", "503 5.5.1").await;
}

#[tokio::test]
async fn rcpt_before_mail_and_nested_mail_are_bad_sequences() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("RCPT TO:<alice@example.test>", "503 5.5.1").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@remote.test>", "250 2.1.0").await;
    c.cmd("MAIL FROM:<a@remote.test>", "503 5.5.1").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("MAIL FROM:<a@remote.test>", "250 2.1.0").await;
}

#[tokio::test]
async fn data_without_a_valid_recipient_is_refused() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<nobody@example.test>", "550 5.1.1").await;
    c.cmd("DATA", "554 5.5.1").await;
    // The session is still in command mode.
    c.cmd("NOOP", "250 2.0.0").await;
}

#[tokio::test]
async fn rcpt_to_unknown_local_user_is_rejected_at_rcpt() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<nobody@example.test>", "550 5.1.1").await;
    c.cmd("RCPT TO:<alice@example.test>", "250 2.1.5").await;
}

#[tokio::test]
async fn relaying_is_denied_in_every_form() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    // A foreign domain.
    c.cmd("RCPT TO:<victim@remote.test>", "554 5.7.1").await;
    // The %-hack is a local part of ours, and no such user exists.
    c.cmd("RCPT TO:<victim%remote.test@example.test>", "550 5.1.1")
        .await;
    // RFC 5321 §4.1.1.3 source route: ignored, the mailbox is foreign.
    c.cmd("RCPT TO:<@example.test:victim@remote.test>", "554 5.7.1")
        .await;
    c.cmd(
        "RCPT TO:<@example.test,@mx.example.test:victim@remote.test>",
        "554 5.7.1",
    )
    .await;
    // A quoted local part with an @: still a local part of ours.
    c.cmd("RCPT TO:<\"victim@remote.test\"@example.test>", "550 5.1.1")
        .await;
    c.cmd("RCPT TO:<\"alice@example.test\"@remote.test>", "554 5.7.1")
        .await;
    // Bang paths and other tricks are just local parts.
    c.cmd("RCPT TO:<remote.test!victim@example.test>", "550 5.1.1")
        .await;
    c.cmd("RCPT TO:<victim@remote.test@example.test>", "501 5.1.3")
        .await;
    c.cmd("DATA", "554 5.5.1").await;
}

#[tokio::test]
async fn quoted_local_parts_and_source_routes_to_local_users_deliver() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<\"alice\"@example.test>", "250 2.1.5").await;
    c.cmd("RCPT TO:<@mx.example.test:bob@example.test>", "250 2.1.5")
        .await;
    c.cmd("RCPT TO:<Alice@EXAMPLE.test>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.write(message("quoted").as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
    assert_eq!(h.inbox(&h.alice).await.len(), 1, "one copy for alice");
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
}

#[tokio::test]
async fn aliases_and_subaddresses_resolve_at_rcpt() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<team@example.test>", "250 2.1.5").await;
    c.cmd("RCPT TO:<alice+tag@example.test>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.write(message("team").as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
}

#[tokio::test]
async fn alias_with_external_targets_delivers_locally_and_queues_the_external_ones() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<outside@example.test>", "250 2.1.5").await;
    c.cmd("RCPT TO:<mixed@example.test>", "250 2.1.5").await;
    // Still no open relay: a foreign domain itself is refused.
    c.cmd("RCPT TO:<ext@remote.test>", "554 5.7.1").await;
    c.cmd("DATA", "354").await;
    c.write(message("mixed").as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    let queue = h.store.queue_list().await.unwrap();
    assert_eq!(
        queue.len(),
        1,
        "one queued copy for the shared external target"
    );
    let rcpts: Vec<&str> = queue[0]
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["ext@remote.test"]);
    assert_eq!(queue[0].message.mail_from.as_deref(), Some("a@remote.test"));
    h.store.check_integrity().await.unwrap();
}

#[tokio::test]
async fn simple_commands_answer_as_rfc_5321_says() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.cmd("NOOP", "250 2.0.0").await;
    c.cmd("VRFY alice", "252 2.5.0").await;
    c.cmd("EXPN team", "502 5.5.1").await;
    c.cmd("HELP", "214 2.0.0").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("XYZZY", "500 5.5.1").await;
    c.cmd("LHLO client.test", "500 5.5.1").await;
    c.cmd("AUTH PLAIN AGFsaWNlAHB3", "503 5.5.1").await;
    c.ehlo().await;
    // Port 25 offers no AUTH.
    c.cmd("AUTH PLAIN AGFsaWNlAHB3", "502 5.5.1").await;
    c.cmd("STARTTLS", "502 5.5.1").await;
    c.cmd("MAIL FROM:<a@remote.test> HOLDFOR=10", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<a@remote.test> FOO=BAR", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<a@remote.test> BODY=8BITMIME", "250")
        .await;
    c.cmd("RCPT TO:<alice@example.test> CONNEG", "555 5.5.4")
        .await;
    c.cmd("RCPT TO:<alice@example.test", "501").await;
    c.cmd("QUIT", "221 2.0.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn null_sender_is_accepted_on_mx() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    let reply = c
        .transaction("", &["alice@example.test"], &message("bounce"))
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(h.inbox(&h.alice).await[0].starts_with("Return-Path: <>\r\n"));
}

#[tokio::test]
async fn delivered_message_reads_back_byte_identical_below_the_trace_fields() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    let body = message("identical");
    let reply = c
        .transaction("sender@remote.test", &["alice@example.test"], &body)
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = h.inbox(&h.alice).await;
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].starts_with("Return-Path: <sender@remote.test>\r\nReceived: from client.test")
    );
    assert!(stored[0].contains("with ESMTP"), "{}", stored[0]);
    assert!(stored[0].contains("test-session"), "{}", stored[0]);
    assert_eq!(without_trace(&stored[0]), body);
}

#[tokio::test]
async fn storage_failure_answers_451_never_250() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    h.store.close().await;
    c.write(message("lost").as_bytes()).await;
    c.cmd(".", "451 4.3.0").await;
    // The session goes on.
    c.cmd("NOOP", "250").await;
}

#[tokio::test]
async fn shutdown_says_421_and_closes() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.shutdown.cancel();
    c.expect("421 4.3.2").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn ehlo_and_rset_end_the_transaction() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.ehlo().await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RSET", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "503 5.5.1").await;
}

#[tokio::test]
async fn postmaster_of_a_domain_without_one_is_accepted() {
    // RFC 5321 §4.5.1: a second hosted domain with no postmaster account or alias of its own.
    let h = harness().await;
    let directory = Directory::new(h.store.clone(), DirectoryConfig::default()).unwrap();
    directory.add_domain("second.test").await.unwrap();
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<POSTMASTER@second.test>", "250 2.1.5").await;
    c.cmd("RCPT TO:<nobody@second.test>", "550 5.1.1").await;
    c.cmd("DATA", "354").await;
    c.write(message("postmaster").as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
}

#[tokio::test]
async fn postmaster_without_domain_is_accepted() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<Postmaster>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.write(message("postmaster").as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
}
