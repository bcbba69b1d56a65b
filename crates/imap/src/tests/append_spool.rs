//! APPEND messages past the inline limit: received into a spool, read back under the memory
//! budget, within a deadline.

use std::time::Duration;

use tern_common::body::Charge;

use super::*;

/// A message of about `size` octets with lines of varying length.
fn large_message(size: usize) -> Vec<u8> {
    let mut text = b"From: bob@example.test\r\nSubject: large\r\n\r\n".to_vec();
    let mut n = 0;
    while text.len() < size {
        text.extend_from_slice(format!("line {n} {}\r\n", "y".repeat(n % 97)).as_bytes());
        n += 1;
    }
    text
}

/// A harness whose messages go to the spool past 1,000 octets.
async fn spooling_harness(adjust: impl FnOnce(&mut ImapContext)) -> Harness {
    harness_with(|ctx| {
        ctx.spooling.threshold = 1000;
        adjust(ctx);
    })
    .await
}

/// What `UID FETCH uid BODY.PEEK[]` returns as the message text.
async fn fetch_body(c: &mut Client<DuplexStream>, uid: u32) -> Vec<u8> {
    c.send(&format!("f UID FETCH {uid} BODY.PEEK[]")).await;
    let line = c.try_raw_line().await.expect("FETCH response");
    assert!(line.starts_with(b"* "), "no FETCH response");
    c.expect_tagged("f OK").await;
    let start = line
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a literal")
        + 2;
    line[start..line.len() - 1].to_vec()
}

/// Spool files: none may be left named in the directory.
fn spool_names(h: &Harness) -> usize {
    std::fs::read_dir(h._dir.path().join("spool"))
        .expect("spool directory")
        .count()
}

#[tokio::test]
async fn a_large_synchronizing_append_in_odd_writes_is_stored_byte_for_byte() {
    let h = spooling_harness(|_| {}).await;
    let budget = h.ctx.spooling.budget.clone();
    let mut c = h.select().await;
    let message = large_message(300 * 1024);
    c.send(&format!("a APPEND INBOX (\\Seen) {{{}}}", message.len()))
        .await;
    c.expect("+ ").await;
    for piece in message.chunks(4093) {
        c.send_raw(piece).await;
    }
    c.send_raw(b"\r\n").await;
    c.expect_tagged("a OK [APPENDUID").await;
    assert!(
        fetch_body(&mut c, 1).await == message,
        "the stored text differs"
    );
    assert_eq!(spool_names(&h), 0);
    assert_eq!(
        budget.available(),
        budget.total(),
        "budget kept after APPEND"
    );
}

#[tokio::test]
async fn a_multiappend_of_inline_and_spooled_literal_plus_messages_stores_all_in_order() {
    let h = spooling_harness(|_| {}).await;
    let mut c = h.select().await;
    let small = MSG1.to_vec();
    let large = large_message(200 * 1024);
    let larger = large_message(500 * 1024);
    let mut wire = format!("b APPEND INBOX {{{}+}}\r\n", small.len()).into_bytes();
    wire.extend_from_slice(&small);
    wire.extend_from_slice(format!(" ~{{{}+}}\r\n", large.len()).as_bytes());
    wire.extend_from_slice(&large);
    wire.extend_from_slice(format!(" (\\Flagged) {{{}+}}\r\n", larger.len()).as_bytes());
    wire.extend_from_slice(&larger);
    // A pipelined command after it, in the same writes.
    wire.extend_from_slice(b"\r\nc NOOP\r\n");
    for piece in wire.chunks(65_537) {
        c.send_raw(piece).await;
    }
    c.expect_tagged("b OK [APPENDUID").await;
    c.expect_tagged("c OK").await;
    assert!(fetch_body(&mut c, 1).await == small);
    assert!(fetch_body(&mut c, 2).await == large);
    assert!(fetch_body(&mut c, 3).await == larger);
}

#[tokio::test]
async fn a_failed_append_lets_go_of_its_spooled_message() {
    let h = spooling_harness(|_| {}).await;
    let budget = h.ctx.spooling.budget.clone();
    let mut c = h.select().await;
    let message = large_message(100 * 1024);
    c.send(&format!("a APPEND Nowhere {{{}+}}", message.len()))
        .await;
    c.send_raw(&message).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged("a NO [TRYCREATE]").await;
    assert_eq!(budget.available(), budget.total());
    assert_eq!(spool_names(&h), 0);
    // So does a command that turns out to be malformed after its message.
    c.send(&format!("b APPEND INBOX {{{}+}}", message.len()))
        .await;
    c.send_raw(&message).await;
    c.send_raw(b" junk\r\n").await;
    c.expect_tagged("b BAD").await;
    assert_eq!(budget.available(), budget.total());
    c.cmd("c NOOP", "c OK").await;
}

#[tokio::test]
async fn a_message_trickling_past_its_deadline_ends_the_session_with_bye() {
    let h = spooling_harness(|ctx| {
        ctx.append_deadline_base = Duration::from_millis(300);
        ctx.append_deadline_rate = u64::MAX;
    })
    .await;
    let mut c = h.select().await;
    c.send("a APPEND INBOX {100000+}").await;
    c.send_raw(&large_message(5000)).await;
    let rest = c.closed().await;
    assert!(
        rest.iter()
            .any(|l| l == "* BYE APPEND message not received in time"),
        "{rest:#?}"
    );
}

#[tokio::test]
async fn a_spooled_message_that_gets_no_memory_budget_in_time_is_refused_for_now() {
    let h = spooling_harness(|ctx| {
        ctx.append_deadline_base = Duration::from_millis(300);
        ctx.append_deadline_rate = u64::MAX;
    })
    .await;
    let budget = h.ctx.spooling.budget.clone();
    let mut c = h.select().await;
    // Another session holds all of the budget.
    let mut everything = Charge::default();
    let free = usize::try_from(budget.available()).unwrap();
    assert!(budget.try_grow(&mut everything, free));
    let message = large_message(100 * 1024);
    c.send(&format!("a APPEND INBOX {{{}+}}", message.len()))
        .await;
    c.send_raw(&message).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged("a NO [UNAVAILABLE]").await;
    // With the budget back, the same APPEND goes through.
    drop(everything);
    c.send(&format!("b APPEND INBOX {{{}+}}", message.len()))
        .await;
    c.send_raw(&message).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged("b OK [APPENDUID").await;
}

#[tokio::test]
async fn a_message_of_exactly_the_appendlimit_is_stored_and_one_octet_more_is_refused_unsent() {
    let limit = 300 * 1024;
    let h = spooling_harness(|ctx| ctx.append_limit = limit).await;
    let mut c = h.select().await;
    let mut message = large_message(limit as usize);
    message.truncate(limit as usize);
    c.send(&format!("a APPEND INBOX {{{limit}}}")).await;
    c.expect("+ ").await;
    c.send_raw(&message).await;
    c.send_raw(b"\r\n").await;
    c.expect_tagged("a OK [APPENDUID").await;
    assert!(fetch_body(&mut c, 1).await == message);
    // Refused at the announcement: no `+`, nothing to send, and the session goes on.
    c.send(&format!("b APPEND INBOX {{{}}}", limit + 1)).await;
    c.expect("b NO [TOOBIG]").await;
    c.cmd("c NOOP", "c OK").await;
}
