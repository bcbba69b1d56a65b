use super::*;

fn spooling(dir: &tempfile::TempDir, threshold: usize, budget: u64) -> Spooling {
    Spooling {
        threshold,
        ..Spooling::new(Spool::open(dir.path()).unwrap(), budget)
    }
}

/// What receiving a message showed.
struct Received {
    /// Whether any of it went to a spool file.
    spooled: bool,
    /// The largest in-memory buffer it had while arriving.
    most_in_memory: usize,
    message: Message,
}

/// Receives text the way a session does, `chunk` octets per read.
async fn receive(spooling: &Spooling, input: &[u8], chunk: usize) -> Received {
    let mut body = Body::default();
    let mut most_in_memory = 0;
    for piece in input.chunks(chunk) {
        body.make_room(piece.len(), spooling).await.unwrap();
        body.text().extend_from_slice(piece);
        most_in_memory = most_in_memory.max(body.pending.capacity());
        body.settle(spooling).await.unwrap();
    }
    let spooled = body.spool.is_some();
    let far = Instant::now() + Duration::from_secs(10);
    let message = body.finish(spooling, far).await.unwrap();
    Received {
        spooled,
        most_in_memory,
        message,
    }
}

/// A message of lines of varying length, so line ends meet every chunk and threshold
/// boundary.
fn message(lines: usize) -> Vec<u8> {
    let mut text = Vec::new();
    for n in 0..lines {
        text.extend_from_slice(format!("line {n} {}\r\n", "x".repeat(n % 7)).as_bytes());
    }
    text
}

#[tokio::test]
async fn a_small_message_stays_in_memory_without_a_spool_file() {
    let dir = tempfile::tempdir().unwrap();
    let spooling = spooling(&dir, 256 * 1024, 1 << 20);
    let text = message(100);
    let received = receive(&spooling, &text, 512).await;
    assert!(!received.spooled, "a small message was spooled");
    assert_eq!(received.message.data, text);
    assert!(
        spooling.budget.available() < spooling.budget.total(),
        "not charged"
    );
    drop(received);
    assert_eq!(spooling.budget.available(), spooling.budget.total());
}

#[tokio::test]
async fn text_past_the_threshold_is_spooled_and_comes_back_byte_for_byte_at_every_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let text = message(400);
    for threshold in [1, 7, 64, 1000] {
        let spooling = spooling(&dir, threshold, 1 << 20);
        for chunk in [1, 2, 3, 5, 64, 997, text.len()] {
            let received = receive(&spooling, &text, chunk).await;
            assert!(received.spooled, "threshold {threshold}, chunks of {chunk}");
            assert!(
                received.most_in_memory <= threshold.max(chunk),
                "threshold {threshold}, chunks of {chunk}: {} octets in memory",
                received.most_in_memory
            );
            assert!(
                received.message.data == text,
                "threshold {threshold}, chunks of {chunk}: the text differs"
            );
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn with_the_budget_spent_text_goes_to_the_spool_at_once_and_still_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let spooling = spooling(&dir, 256 * 1024, 64 * 1024);
    let mut everything = Charge::default();
    assert!(spooling.budget.try_grow(&mut everything, 64 * 1024));
    let mut body = Body::default();
    let text = message(300);
    for piece in text.chunks(1000) {
        body.make_room(piece.len(), &spooling).await.unwrap();
        body.text().extend_from_slice(piece);
        body.settle(&spooling).await.unwrap();
        assert_eq!(body.pending.capacity(), 0, "uncharged text kept in memory");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let finish = tokio::spawn(async move { body.finish(&spooling, deadline).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !finish.is_finished(),
        "the message was read back without budget"
    );
    drop(everything);
    let message = finish.await.unwrap().unwrap();
    assert!(message.data == text);
}

#[tokio::test]
async fn a_spooled_message_that_gets_no_budget_before_its_deadline_fails() {
    let dir = tempfile::tempdir().unwrap();
    let spooling = spooling(&dir, 16, 16 * 1024);
    let text = message(400);
    assert!(text.len() > 4096);
    let mut body = Body::default();
    for piece in text.chunks(10) {
        body.make_room(piece.len(), &spooling).await.unwrap();
        body.text().extend_from_slice(piece);
        body.settle(&spooling).await.unwrap();
    }
    // Everything the spooled body does not hold itself (it lets go of that when it finishes).
    let mut rest = Charge::default();
    let free = usize::try_from(spooling.budget.available()).unwrap();
    assert!(spooling.budget.try_grow(&mut rest, free));
    let deadline = Instant::now() + Duration::from_millis(100);
    let outcome = body.finish(&spooling, deadline).await;
    assert!(
        matches!(outcome, Err(BodyError::Budget(_))),
        "read back without budget: {:?}",
        outcome.err()
    );
}

#[test]
fn the_deadline_grows_with_the_size_limit_and_never_overflows() {
    let base = Duration::from_secs(30);
    let now = Instant::now();
    let small = deadline(base, 100 * 1024, 0) - now;
    assert!(small >= base && small < base + Duration::from_secs(1));
    let large = deadline(base, 100 * 1024, 50 << 20) - now;
    assert!(large >= Duration::from_secs(30 + 512) && large < Duration::from_secs(30 + 513));
    let absurd = deadline(base, 0, u64::MAX) - now;
    assert!(absurd <= MAX_DEADLINE + Duration::from_secs(1));
}
