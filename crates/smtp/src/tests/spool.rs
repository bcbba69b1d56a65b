//! Message text beyond the spool threshold, the memory budget, and the message deadline.

use super::*;
use tern_common::body::Charge;

/// A message of about `size` octets whose lines start with dots now and then, so that
/// stuffing meets every threshold and chunk boundary: (the text, the text dot-stuffed).
fn dotted_message(size: usize) -> (String, String) {
    let mut text = message("large");
    let mut n = 0;
    while text.len() < size {
        let line = match n % 4 {
            0 => format!(".dot line {n}\r\n"),
            1 => ".\r\n".to_owned(),
            _ => format!("line {n} {}\r\n", "y".repeat(n % 97)),
        };
        text.push_str(&line);
        n += 1;
    }
    let stuffed = text.replace("\r\n.", "\r\n..");
    (text, stuffed)
}

/// Holds all of the budget that is free now, as a session would.
fn hold_the_budget(h: &Harness) -> Charge {
    let budget = &h.ctx.spooling.budget;
    let mut charge = Charge::default();
    let free = usize::try_from(budget.available()).unwrap();
    assert!(budget.try_grow(&mut charge, free));
    charge
}

#[tokio::test]
async fn a_data_message_past_the_threshold_is_stored_byte_for_byte_at_odd_write_sizes() {
    let h = harness_with(|ctx| ctx.spooling.threshold = 1000).await;
    let (text, stuffed) = dotted_message(300 * 1024);
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    let mut rest = stuffed.as_bytes();
    for size in [1, 2, 999, 1000, 1001, 7, 65536, 4093].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at((*size).min(rest.len()));
        c.write(piece).await;
        rest = after;
    }
    c.cmd(".", "250 2.0.0").await;
    let stored = h.inbox(&h.alice).await;
    assert!(without_trace(&stored[0]) == text, "the stored text differs");
    let budget = &h.ctx.spooling.budget;
    assert_eq!(budget.available(), budget.total(), "budget not given back");
}

#[tokio::test]
async fn bdat_chunks_past_the_threshold_are_stored_byte_for_byte() {
    let h = harness_with(|ctx| ctx.spooling.threshold = 1000).await;
    // BDAT text is taken as it is, no stuffing; bare dots and "QUIT" lines are just text.
    let (text, _) = dotted_message(200 * 1024);
    let text = format!("{text}QUIT\r\n.\r\n");
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    let mut rest = text.as_bytes();
    for size in [999, 1, 1000, 1001, 70_000, 3].iter().cycle() {
        let (chunk, after) = rest.split_at((*size).min(rest.len()));
        rest = after;
        let last = if rest.is_empty() { " LAST" } else { "" };
        let mut command = format!("BDAT {}{last}\r\n", chunk.len()).into_bytes();
        command.extend_from_slice(chunk);
        c.write(&command).await;
        if rest.is_empty() {
            c.expect("250 2.0.0 Message accepted").await;
            break;
        }
        c.expect(&format!("250 2.0.0 {} octets received", chunk.len()))
            .await;
    }
    let stored = h.inbox(&h.alice).await;
    assert!(without_trace(&stored[0]) == text, "the stored text differs");
}

#[tokio::test]
async fn a_finished_message_waits_for_memory_budget_and_is_delivered_once_there_is_room() {
    let h = harness_with(|ctx| ctx.spooling.threshold = 1000).await;
    let held = hold_the_budget(&h);
    let (text, stuffed) = dotted_message(20 * 1024);
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(stuffed.as_bytes()).await;
    c.send(".").await;
    let early = tokio::time::timeout(Duration::from_millis(500), c.reply()).await;
    assert!(early.is_err(), "answered without budget: {early:?}");
    assert_eq!(h.total_messages().await, 0);
    drop(held);
    c.expect("250 2.0.0").await;
    assert!(without_trace(&h.inbox(&h.alice).await[0]) == text);
}

#[tokio::test]
async fn a_message_that_finds_no_budget_before_its_deadline_gets_451_and_the_session_goes_on() {
    let h = harness_with(|ctx| {
        ctx.spooling.threshold = 1000;
        ctx.data_deadline_base = Duration::from_millis(500);
        ctx.data_deadline_rate = u64::MAX;
    })
    .await;
    let held = hold_the_budget(&h);
    let (_, stuffed) = dotted_message(20 * 1024);
    let mut c = h.mx().await;
    c.ehlo().await;
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], &stuffed)
        .await;
    assert!(reply.starts_with("451 4.4.5"), "{reply}");
    drop(held);
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], &message("next"))
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(h.total_messages().await, 1);
}

/// Sends `piece` every 50 ms (well within the idle timeout) until a reply comes; returns it.
async fn trickle_until_reply(c: &mut Client<DuplexStream>, piece: &[u8]) -> String {
    let started = std::time::Instant::now();
    loop {
        if let Ok(reply) = tokio::time::timeout(Duration::from_millis(50), c.reply()).await {
            return reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a trickling client is never cut off"
        );
        // The server may close between the check and this write.
        let _ = c.stream.write_all(piece).await;
    }
}

#[tokio::test]
async fn data_trickled_past_the_message_deadline_gets_421() {
    let h = harness_with(|ctx| {
        ctx.data_timeout = Duration::from_secs(10);
        ctx.data_deadline_base = Duration::from_millis(400);
        ctx.data_deadline_rate = u64::MAX;
    })
    .await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    c.cmd("DATA", "354").await;
    let reply = trickle_until_reply(&mut c, b"x\r\n").await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    c.expect_closed().await;
    assert_eq!(h.total_messages().await, 0);
}

#[tokio::test]
async fn bdat_chunks_trickled_past_the_message_deadline_get_421() {
    let h = harness_with(|ctx| {
        ctx.command_timeout = Duration::from_secs(10);
        ctx.data_timeout = Duration::from_secs(10);
        ctx.data_deadline_base = Duration::from_millis(400);
        ctx.data_deadline_rate = u64::MAX;
    })
    .await;
    let mut c = h.mx().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@remote.test>", "250").await;
    c.cmd("RCPT TO:<alice@example.test>", "250").await;
    // Each chunk comes quickly; the transaction as a whole does not.
    let started = std::time::Instant::now();
    let reply = loop {
        // The server may have closed during the pause.
        let _ = c.stream.write_all(b"BDAT 3\r\nabc").await;
        let reply = c.reply().await;
        if !reply.starts_with("250 ") {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a trickling client is never cut off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    c.expect_closed().await;
}
