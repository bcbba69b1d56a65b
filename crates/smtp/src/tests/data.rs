//! Message text: DATA framing, dot-stuffing, smuggling, PIPELINING, BDAT, 8BITMIME and
//! SMTPUTF8, disconnects, and input fed at every chunk size.

use super::*;

#[tokio::test]
async fn dot_stuffing_round_trips_exactly() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    // The first line starts with a dot too: it must be un-stuffed like every other line.
    let original = ".first\r\nSubject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend.\r\n. \r\n";
    let stuffed = "..first\r\nSubject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend.\r\n.. \r\n";
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], stuffed)
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = h.inbox(&h.alice).await;
    assert_eq!(without_trace(&stored[0]), original);
}

#[tokio::test]
async fn an_empty_message_ends_at_the_first_dot() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], "")
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(without_trace(&h.inbox(&h.alice).await[0]), "");
}

/// The smuggling attempts of CVE-2023-51766 and friends: an end-of-data sequence with a bare
/// LF or CR, followed by a complete second transaction inside the first message.
#[tokio::test]
async fn smuggled_second_message_does_not_exist() {
    for fake_end in [
        "\n.\n",
        "\n.\r\n",
        "\r\n.\n",
        "\r.\r\n",
        "\r\n.\r",
        "\n..\n",
        "\r\n.\r\r\n",
        "\r\n.\r\r\r\n",
    ] {
        let h = harness().await;
        let mut c = h.mx().await;
        c.ehlo().await;
        c.cmd("MAIL FROM:<a@remote.test>", "250").await;
        c.cmd("RCPT TO:<alice@example.test>", "250").await;
        c.cmd("DATA", "354").await;
        let payload = format!(
            "Subject: first\r\n\r\nhello{fake_end}MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
        );
        c.write(payload.as_bytes()).await;
        // One message, one reply: the whole thing is refused, nothing is split off.
        c.expect("550 5.6.0").await;
        c.cmd("NOOP", "250 2.0.0").await;
        assert_eq!(h.total_messages().await, 0, "{fake_end:?}");
    }
}

#[tokio::test]
async fn pipelined_transaction_in_one_write_gets_all_replies_in_order() {
    let h = harness().await;
    let mut c = h.mx().await;
    let script = format!(
        "EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n{}.\r\nMAIL FROM:<b@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n{}.\r\nQUIT\r\n",
        message("one"),
        message("two")
    );
    c.write(script.as_bytes()).await;
    c.expect("250-mx.example.test").await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("550 5.1.1").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    c.expect("250 2.0.0").await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    c.expect("250 2.0.0").await;
    c.expect("221").await;
    c.expect_closed().await;
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    assert_eq!(h.inbox(&h.bob).await.len(), 2);
}

#[tokio::test]
async fn bdat_chunks_make_one_message_including_a_zero_octet_last() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    // Chunks are octets, not lines: no dot-stuffing, a dot line is just text.
    let parts = ["Subject: chunks\r\n\r\n", ".\r\nline two\r\n", "tail\r\n"];
    for part in parts {
        c.write(format!("BDAT {}\r\n{part}", part.len()).as_bytes())
            .await;
        c.expect(&format!("250 2.0.0 {} octets", part.len())).await;
    }
    c.cmd("BDAT 0 LAST", "250 2.0.0 Message accepted").await;
    let stored = h.inbox(&h.alice).await;
    assert_eq!(without_trace(&stored[0]), parts.concat());
    // DATA after BDAT in one transaction is refused (RFC 3030 §2).
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.write(b"BDAT 3\r\nabc").await;
    c.expect("250").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.write(b"BDAT 2 LAST\r\n\r\n").await;
    c.expect("250 2.0.0 Message accepted").await;
    assert_eq!(without_trace(&h.inbox(&h.alice).await[1]), "abc\r\n");
}

#[tokio::test]
async fn refused_bdat_chunk_is_consumed_not_executed() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    let inner =
        "MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 5 LAST\r\nevil\n";
    c.write(format!("BDAT {} LAST\r\n{inner}", inner.len()).as_bytes())
        .await;
    c.expect("503 5.5.1").await;
    c.cmd("NOOP", "250").await;
    assert_eq!(h.total_messages().await, 0);
}

#[tokio::test]
async fn bdat_with_bare_lf_is_refused() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    let chunk = "Subject: x\n\nx\r\n";
    c.write(format!("BDAT {} LAST\r\n{chunk}", chunk.len()).as_bytes())
        .await;
    c.expect("550 5.6.0").await;
    assert_eq!(h.total_messages().await, 0);
}

#[tokio::test]
async fn eight_bit_body_and_utf8_addresses_are_delivered_intact() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    let body = "From: Zoë <zoë@remote.test>\r\nTo: José <josé@example.test>\r\nSubject: Grüße, ça va ? 日本語\r\n\r\nÄÖÜ äöü — 8-bit body\r\n";
    c.cmd(
        "MAIL FROM:<zoë@remote.test> BODY=8BITMIME SMTPUTF8",
        "250 2.1.0",
    )
    .await;
    c.cmd("RCPT TO:<josé@example.test>", "250 2.1.5").await;
    c.cmd("RCPT TO:<JOSÉ@example.test>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.write(body.as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
    let stored = h.inbox(&h.jose).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(without_trace(&stored[0]), body);
    assert!(stored[0].starts_with("Return-Path: <zoë@remote.test>"));
}

#[tokio::test]
async fn non_ascii_addresses_need_smtputf8() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<zoë@remote.test>", "553 5.6.7").await;
    c.cmd("MAIL FROM:<a@remote.test> BODY=8BITMIME", "250")
        .await;
    c.cmd("RCPT TO:<josé@example.test>", "553 5.6.7").await;
}

#[tokio::test]
async fn text_lines_longer_than_1000_octets_are_accepted() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    let body = format!("Subject: long\r\n\r\n{}\r\n", "x".repeat(5000));
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], &body)
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(without_trace(&h.inbox(&h.alice).await[0]), body);
}

#[tokio::test]
async fn client_disconnecting_mid_data_leaves_no_message() {
    let h = harness().await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(b"Subject: half\r\n\r\nthe first half of a message\r\n")
        .await;
    c.stream.shutdown().await.unwrap();
    c.expect_closed().await;
    assert_eq!(h.total_messages().await, 0);

    // Mid-BDAT likewise.
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.write(b"BDAT 5\r\nabc\r\n").await;
    c.expect("250").await;
    c.write(b"BDAT 100 LAST\r\nonly part").await;
    c.stream.shutdown().await.unwrap();
    c.expect_closed().await;
    assert_eq!(h.total_messages().await, 0);
}

/// One session's input, written at once and in chunks of 1, 2, 4 … 512 octets: the replies
/// must be identical byte for byte.
#[tokio::test]
async fn input_fed_in_chunks_of_any_size_gives_identical_replies() {
    let body = message("chunked");
    let long = "y".repeat(700);
    let script = format!(
        "EHLO client.test\r\nNOOP\r\nMAIL FROM:<a@remote.test> SIZE=100\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n..dot\r\n{body}.\r\nNOOP {long}\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 10\r\n0123456789BDAT 4 LAST\r\nab\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<victim@remote.test>\r\nRSET\r\nQUIT\r\n"
    );
    let h = harness().await;
    let mut reference = None;
    let mut size = 1;
    while size <= 1024 {
        let mut c = h
            .start(Protocol::Smtp, LOOPBACK, TlsMode::None, "chunks")
            .await;
        let bytes = script.as_bytes();
        if size == 1024 {
            c.write(bytes).await;
        } else {
            for chunk in bytes.chunks(size) {
                c.write(chunk).await;
                tokio::task::yield_now().await;
            }
        }
        let replies = c.rest().await;
        assert!(
            replies.ends_with("221 2.0.0 mx.example.test closing connection\r\n"),
            "{replies}"
        );
        match &reference {
            None => reference = Some(replies),
            Some(reference) => assert_eq!(&replies, reference, "chunk size {size}"),
        }
        size *= 2;
    }
    let reference = reference.unwrap_or_default();
    assert_eq!(reference.matches("250 2.0.0 Message accepted").count(), 2);
    assert_eq!(reference.matches("500 5.5.2").count(), 1);
    assert_eq!(h.inbox(&h.alice).await.len(), 11);
    assert_eq!(h.inbox(&h.bob).await.len(), 11);
}
