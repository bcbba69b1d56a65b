//! The bounded argon2 queue: logins beyond `max_concurrent_hashes` running and
//! `max_queued_hashes` waiting get a temporary failure at once, and are served once the queue
//! drains.

use std::time::Duration;

use super::*;

/// alice and bob on a directory with one hash slot and room for one waiting verification.
async fn one_slot_one_waiting() -> (tempfile::TempDir, Directory) {
    let (dir, d) = directory_with(DirectoryConfig {
        max_concurrent_hashes: 1,
        max_queued_hashes: 1,
        ..test_config()
    })
    .await;
    d.add_domain("example.test").await.unwrap();
    for user in ["alice@example.test", "bob@example.test"] {
        d.add_user(user, &secret(PW), None).await.unwrap();
    }
    (dir, d)
}

async fn wait_for_queue(d: &Directory, n: usize) {
    for _ in 0..500 {
        if d.inner.hash_waiting.load(Ordering::Acquire) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{n} verifications never queued");
}

#[tokio::test]
async fn a_login_beyond_the_queue_limit_gets_a_temporary_failure_and_others_succeed_afterwards() {
    let (_dir, d) = one_slot_one_waiting().await;
    // Stands for a verification in progress: the only slot is taken.
    let busy = d.inner.hash_slots.acquire().await.unwrap();
    let queued = tokio::spawn({
        let d = d.clone();
        async move { d.authenticate("alice@example.test", &secret(PW), IP).await }
    });
    wait_for_queue(&d, 1).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        d.authenticate("bob@example.test", &secret(PW), IP),
    )
    .await
    .expect("the excess login must not wait for a slot");
    assert!(
        matches!(&refused, Err(AuthError::Temporary(reason)) if reason.contains("waiting")),
        "{refused:?}"
    );
    // A temporary failure is not a failed guess.
    assert_eq!(d.stats().auth_failures, 0);
    drop(busy);
    let alice = queued.await.unwrap().unwrap();
    assert_eq!(alice.address, "alice@example.test");
    assert_eq!(d.inner.hash_waiting.load(Ordering::Acquire), 0);
    let bob = d
        .authenticate("bob@example.test", &secret(PW), IP)
        .await
        .unwrap();
    assert_eq!(bob.address, "bob@example.test");
}

#[tokio::test]
async fn a_login_abandoned_while_queued_gives_its_place_back() {
    let (_dir, d) = one_slot_one_waiting().await;
    let busy = d.inner.hash_slots.acquire().await.unwrap();
    let queued = tokio::spawn({
        let d = d.clone();
        async move { d.authenticate("alice@example.test", &secret(PW), IP).await }
    });
    wait_for_queue(&d, 1).await;
    // The client went away: its session's future is dropped mid-wait.
    queued.abort();
    wait_for_queue(&d, 0).await;
    drop(busy);
    assert!(
        d.authenticate("bob@example.test", &secret(PW), IP)
            .await
            .is_ok()
    );
}
