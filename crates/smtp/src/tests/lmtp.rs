//! LMTP (RFC 2033): LHLO and one reply per accepted recipient.

use super::*;

async fn lmtp(h: &Harness) -> Client<DuplexStream> {
    let mut c = h
        .start(Protocol::Lmtp, LOOPBACK, TlsMode::None, "lmtp")
        .await;
    c.expect("220 mx.example.test LMTP").await;
    c
}

#[tokio::test]
async fn lmtp_needs_lhlo_not_ehlo() {
    let h = harness().await;
    let mut c = lmtp(&h).await;
    c.cmd("EHLO client.test", "500 5.5.1").await;
    c.cmd("HELO client.test", "500 5.5.1").await;
    c.cmd("MAIL FROM:<a@remote.test>", "503 5.5.1 Send LHLO first")
        .await;
    let lhlo = c.cmd("LHLO client.test", "250-").await;
    assert!(
        lhlo.contains("PIPELINING") && lhlo.contains("CHUNKING"),
        "{lhlo}"
    );
    assert!(!lhlo.contains("AUTH"), "{lhlo}");
}

#[tokio::test]
async fn lmtp_answers_once_per_accepted_recipient_after_the_dot() {
    let h = harness().await;
    let mut c = lmtp(&h).await;
    c.cmd("LHLO mta.test", "250").await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<nobody@example.test>", "550 5.1.1").await;
    c.cmd("RCPT TO:<bob@example.test>", "250").await;
    c.cmd("RCPT TO:<victim@remote.test>", "554 5.7.1").await;
    c.cmd("DATA", "354").await;
    c.write(message("lmtp").as_bytes()).await;
    c.send(".").await;
    assert_eq!(
        c.expect("250 2.1.5").await,
        "250 2.1.5 <alice@example.test> delivered\r\n"
    );
    assert_eq!(
        c.expect("250 2.1.5").await,
        "250 2.1.5 <bob@example.test> delivered\r\n"
    );
    c.cmd("NOOP", "250 2.0.0").await;
    let stored = h.inbox(&h.alice).await;
    assert!(stored[0].contains("with LMTP"), "{}", stored[0]);
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
}

#[tokio::test]
async fn lmtp_bdat_last_and_failures_are_answered_per_recipient() {
    let h = harness_with(|ctx| ctx.max_message_size = 50).await;
    let mut c = lmtp(&h).await;
    c.cmd("LHLO mta.test", "250").await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<team@example.test>", "250").await;
    c.write(b"BDAT 7 LAST\r\nhello\r\n").await;
    c.expect("250 2.1.5 <alice@example.test>").await;
    c.expect("250 2.1.5 <team@example.test>").await;
    assert_eq!(h.inbox(&h.alice).await.len(), 1, "one copy per account");

    // A bare LF refuses the message for every recipient.
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<bob@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(b"a\nb\r\n.\r\n").await;
    c.expect("550 5.6.0").await;
    c.expect("550 5.6.0").await;

    // So does the size limit.
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<bob@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(format!("{}\r\n.\r\n", "x".repeat(100)).as_bytes())
        .await;
    c.expect("552 5.3.4").await;
    c.expect("552 5.3.4").await;
    c.cmd("NOOP", "250").await;

    // And a BDAT LAST over the limit.
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<bob@example.test>", "250").await;
    c.write(format!("BDAT 60 LAST\r\n{}", "y".repeat(60)).as_bytes())
        .await;
    c.expect("552 5.3.4").await;
    c.expect("552 5.3.4").await;
    c.cmd("NOOP", "250").await;
    assert_eq!(h.total_messages().await, 2);
}
