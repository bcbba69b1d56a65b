//! Limits: message size (declared and actual), recipients, line length, errors, timeouts.

use super::*;

#[tokio::test]
async fn declared_size_over_the_limit_is_refused_at_mail() {
    let h = harness_with(|ctx| ctx.max_message_size = 1000).await;
    let mut c = h.mx().await;
    let ehlo = c.ehlo().await;
    assert!(ehlo.contains("SIZE 1000\r\n"), "{ehlo}");
    c.cmd("MAIL FROM:<a@remote.test> SIZE=1001", "552 5.3.4")
        .await;
    c.cmd("MAIL FROM:<a@remote.test> SIZE=1000", "250").await;
}

#[tokio::test]
async fn actual_size_over_the_limit_is_read_and_refused_after_data() {
    let h = harness_with(|ctx| ctx.max_message_size = 1000).await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    // Far more than the limit, in many writes, with something that looks like a command.
    for _ in 0..200 {
        c.write(format!("{}\r\n", "z".repeat(998)).as_bytes()).await;
    }
    c.write(b"\r\nQUIT\r\n").await;
    c.cmd(".", "552 5.3.4").await;
    // The transaction is over, the session is not.
    c.cmd("RCPT TO:<alice@example.test>", "503 5.5.1").await;
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], "small\r\n")
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = h.inbox(&h.alice).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(without_trace(&stored[0]), "small\r\n");
}

#[tokio::test]
async fn bdat_over_the_limit_is_consumed_and_refused() {
    let h = harness_with(|ctx| ctx.max_message_size = 100).await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.write(format!("BDAT 60\r\n{}", "a".repeat(60)).as_bytes())
        .await;
    c.expect("250").await;
    let second = format!("{}\r\nQUIT\r\n", "b".repeat(52));
    c.write(format!("BDAT {} LAST\r\n{second}", second.len()).as_bytes())
        .await;
    c.expect("552 5.3.4").await;
    // Later chunks of the failed transaction are consumed and refused too.
    c.write(b"BDAT 4 LAST\r\nNOOP").await;
    c.expect("503 5.5.1").await;
    c.cmd("NOOP", "250").await;
    assert_eq!(h.total_messages().await, 0);
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let h = harness_with(|ctx| ctx.max_recipients = 2).await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<bob@example.test>", "250").await;
    c.cmd("RCPT TO:<team@example.test>", "452 4.5.3").await;
    c.cmd("DATA", "354").await;
    c.write(message("two").as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
}

#[tokio::test]
async fn over_long_command_line_is_refused_without_buffering_it() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    // 513 octets with CRLF: one too many (RFC 5321 §4.5.3.1.4).
    let noop = format!("NOOP {}", "x".repeat(513 - 7));
    assert_eq!(noop.len() + 2, 513);
    c.cmd(&noop, "500 5.5.2").await;
    c.cmd(&format!("NOOP {}", "x".repeat(512 - 7)), "250").await;
    // A megabyte without a line end, in pieces, then a command: only the command counts.
    for _ in 0..64 {
        c.write("R".repeat(16 * 1024).as_bytes()).await;
    }
    c.write(b"\r\n").await;
    c.expect("500 5.5.2").await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    // RCPT may be 1024 octets (RFC 3461 NOTIFY and ORCPT); this one is longer.
    let rcpt = format!("RCPT TO:<{}@example.test>", "a".repeat(1100));
    c.cmd(&rcpt, "500 5.5.2").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let h = harness_with(|ctx| ctx.max_errors = 5).await;
    let mut c = h.mx().await;
    for _ in 0..4 {
        c.cmd("BOGUS", "500 5.5.1").await;
    }
    c.send("BOGUS").await;
    c.expect("500 5.5.1").await;
    c.expect("421 4.7.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn idle_client_gets_421_after_the_command_timeout() {
    let h = harness_with(|ctx| ctx.command_timeout = Duration::from_millis(200)).await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.expect("421 4.4.2").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn a_command_trickled_octet_by_octet_gets_421_after_the_command_timeout() {
    let h = harness_with(|ctx| ctx.command_timeout = Duration::from_millis(300)).await;
    let mut c = h.mx().await;
    let started = std::time::Instant::now();
    // Each octet comes well within the timeout, the line as a whole does not (slowloris).
    for &octet in b"EHLO slow.client.example".iter().cycle() {
        if let Ok(reply) = tokio::time::timeout(Duration::from_millis(100), c.reply()).await {
            assert!(reply.starts_with("421 4.4.2"), "{reply}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a trickling client is never cut off"
        );
        // The server may close between the check and this write.
        let _ = c.stream.write_all(&[octet]).await;
    }
    c.expect_closed().await;
}

#[tokio::test]
async fn stalled_data_gets_421_after_the_data_timeout() {
    let h = harness_with(|ctx| ctx.data_timeout = Duration::from_millis(200)).await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(b"Subject: slow\r\n").await;
    c.expect("421 4.4.2").await;
    c.expect_closed().await;
    assert_eq!(h.total_messages().await, 0);
}

#[tokio::test]
async fn a_declared_size_past_64_bits_is_refused_not_wrapped() {
    let h = harness_with(|ctx| ctx.max_message_size = 1000).await;
    let mut c = h.mx().await;
    c.ehlo().await;
    // smtp-proto's parser reads these as 0 and 1000: past 2^64 it starts again.
    c.cmd(
        "MAIL FROM:<a@remote.test> SIZE=184467440737095516160",
        "501 5.5.4",
    )
    .await;
    c.cmd(
        "MAIL FROM:<a@remote.test> SIZE=1844674407370955161601000",
        "501 5.5.4",
    )
    .await;
    c.cmd("MAIL FROM:<a@remote.test> SIZE=1000", "250").await;
}
