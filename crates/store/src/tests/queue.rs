//! Outbound queue: enqueue with local delivery, claims and leases, attempt results, admin operations.

use super::*;
use crate::{
    AttemptOutcome, BlobId, Delivery, DsnReturn, NewQueued, NewQueuedRecipient, Notify,
    QueueStatus, SenderTrust, StoreError,
};

const RETURN_PATH: &[u8] = b"Return-Path: <a@example.test>\r\n";

fn queued(recipients: &[&str], now: i64) -> NewQueued {
    NewQueued {
        skip: RETURN_PATH.len() as u64,
        mail_from: Some("a@example.test".into()),
        recipients: recipients
            .iter()
            .map(|r| NewQueuedRecipient {
                address: (*r).into(),
                ..Default::default()
            })
            .collect(),
        next_attempt: now,
        expires_at: now + 1000,
        ..Default::default()
    }
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut bytes = RETURN_PATH.to_vec();
    bytes.extend_from_slice(body);
    bytes
}

async fn enqueue(store: &Store, body: &[u8], recipients: &[&str], now: i64) {
    store
        .deliver(Delivery {
            bytes: Bytes::from(message(body)),
            internal_date: 1,
            meta: MessageMeta::default(),
            targets: vec![],
            queue: Some(queued(recipients, now)),
        })
        .await
        .expect("enqueue");
}

#[tokio::test]
async fn enqueue_shares_the_blob_with_local_copies_in_one_transaction() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.test").await;
    let inbox = inbox(&store, a).await;
    let bytes = message(b"Subject: hi\r\n\r\nbody\r\n");
    let before = store.stats().commits;
    store
        .deliver(Delivery {
            bytes: Bytes::from(bytes.clone()),
            internal_date: 1,
            meta: MessageMeta::default(),
            targets: vec![(inbox, Flags::new())],
            queue: Some(queued(&["x@remote.test", "Y@Remote.TEST"], 100)),
        })
        .await
        .expect("deliver");
    assert_eq!(store.stats().commits, before + 1);
    let blob = BlobId::of(&bytes);
    let info = store.blob_info(&blob).await.expect("info").expect("blob");
    assert_eq!(info.refcount, 2, "one mailbox copy + one queued message");
    let list = store.queue_list().await.expect("list");
    assert_eq!(list.len(), 1);
    let entry = &list[0];
    assert_eq!(entry.message.blob, blob);
    assert_eq!(entry.message.size, (bytes.len() - RETURN_PATH.len()) as u64);
    assert_eq!(entry.recipients.len(), 2);
    assert_eq!(entry.recipients[1].domain, "remote.test");
    assert!(
        entry
            .recipients
            .iter()
            .all(|r| r.status == QueueStatus::Pending)
    );
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn a_failing_local_target_enqueues_nothing() {
    let (store, _dir) = store().await;
    let result = store
        .deliver(Delivery {
            bytes: Bytes::from(message(b"x\r\n")),
            internal_date: 1,
            meta: MessageMeta::default(),
            targets: vec![(MailboxId(999), Flags::new())],
            queue: Some(queued(&["x@remote.test"], 0)),
        })
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)));
    assert!(store.queue_list().await.expect("list").is_empty());
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn a_claim_leases_due_recipients_once() {
    let (store, _dir) = store().await;
    enqueue(&store, b"one\r\n", &["x@r.test"], 100).await;
    enqueue(&store, b"two\r\n", &["y@r.test"], 500).await;
    let claimed = store.queue_claim("n1", 200, 60, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1, "only the due message");
    assert_eq!(claimed[0].recipients[0].lease_owner.as_deref(), Some("n1"));
    assert_eq!(claimed[0].recipients[0].lease_until, Some(260));
    // Leased: neither this node nor another gets it again before the lease ends.
    assert!(
        store
            .queue_claim("n1", 210, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        store
            .queue_claim("n2", 259, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_a_restart_releases_its_own() {
    let (store, _dir) = store().await;
    enqueue(&store, b"one\r\n", &["x@r.test"], 100).await;
    assert_eq!(
        store
            .queue_claim("dead", 100, 60, 10)
            .await
            .expect("claim")
            .len(),
        1
    );
    // Another node takes over once the lease has expired.
    let again = store.queue_claim("n2", 160, 60, 10).await.expect("claim");
    assert_eq!(again[0].recipients[0].lease_owner.as_deref(), Some("n2"));
    // n2 restarts: its leases are released at once.
    assert_eq!(store.queue_release_leases("n2").await.expect("release"), 1);
    assert_eq!(
        store
            .queue_claim("n2", 161, 60, 10)
            .await
            .expect("claim")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_renewed_lease_is_not_claimed_again_and_a_settled_one_is_not_renewed() {
    let (store, _dir) = store().await;
    enqueue(&store, b"one\r\n", &["x@r.test", "y@r.test"], 100).await;
    let claimed = store.queue_claim("n1", 100, 60, 10).await.expect("claim");
    let entry = &claimed[0];
    let ids: Vec<_> = entry.recipients.iter().map(|r| r.id).collect();
    // y is settled (deferred), so only x is still leased and renewed.
    store
        .queue_complete(
            "n1",
            entry.message.id,
            vec![(
                ids[1],
                AttemptOutcome::Deferred {
                    error: "451".into(),
                    next_attempt: 500,
                },
            )],
            false,
        )
        .await
        .expect("complete");
    assert_eq!(
        store
            .queue_renew_leases("n1", ids.clone(), 220)
            .await
            .expect("renew"),
        1
    );
    // Past the first lease (160), before the renewed one (220): nothing to claim, on any node.
    assert!(
        store
            .queue_claim("n1", 200, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        store
            .queue_claim("n2", 219, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // Another node's lease is not renewed by n1.
    let taken = store.queue_claim("n2", 220, 60, 10).await.expect("claim");
    assert_eq!(taken[0].recipients.len(), 1);
    assert_eq!(
        store
            .queue_renew_leases("n1", ids, 400)
            .await
            .expect("renew"),
        0
    );
}

#[tokio::test]
async fn a_deferred_recipient_waits_for_its_next_attempt() {
    let (store, _dir) = store().await;
    enqueue(&store, b"one\r\n", &["x@r.test"], 100).await;
    let claimed = store.queue_claim("n1", 100, 60, 10).await.expect("claim");
    let (id, rcpt) = (claimed[0].message.id, claimed[0].recipients[0].id);
    let outcome = AttemptOutcome::Deferred {
        error: "451 4.3.0 try later".into(),
        next_attempt: 400,
    };
    let removed = store
        .queue_complete("n1", id, vec![(rcpt, outcome)], false)
        .await
        .expect("complete");
    assert!(!removed);
    assert!(
        store
            .queue_claim("n1", 399, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = store.queue_claim("n1", 400, 60, 10).await.expect("claim");
    let r = &again[0].recipients[0];
    assert_eq!(r.attempts, 1);
    assert_eq!(r.last_error.as_deref(), Some("451 4.3.0 try later"));
    assert_eq!(store.queue_next_due().await.expect("due"), Some(400));
}

#[tokio::test]
async fn completing_every_recipient_removes_the_message_and_releases_the_blob() {
    let (store, _dir) = store().await;
    let body = b"bye\r\n";
    enqueue(&store, body, &["x@r.test", "y@s.test"], 100).await;
    let claimed = store.queue_claim("n1", 100, 60, 10).await.expect("claim");
    let entry = &claimed[0];
    let (x, y) = (entry.recipients[0].id, entry.recipients[1].id);
    let first = store
        .queue_complete(
            "n1",
            entry.message.id,
            vec![(x, AttemptOutcome::Delivered("250 ok".into()))],
            false,
        )
        .await
        .expect("complete x");
    assert!(!first, "y still pending");
    let second = store
        .queue_complete(
            "n1",
            entry.message.id,
            vec![(y, AttemptOutcome::Failed("550 5.1.1 no such user".into()))],
            false,
        )
        .await
        .expect("complete y");
    assert!(second);
    assert!(store.queue_list().await.expect("list").is_empty());
    let blob = BlobId::of(&message(body));
    assert!(store.blob_info(&blob).await.expect("info").is_none());
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn a_result_from_a_node_that_lost_its_lease_is_ignored() {
    let (store, _dir) = store().await;
    enqueue(&store, b"one\r\n", &["x@r.test"], 100).await;
    let old = store.queue_claim("n1", 100, 60, 10).await.expect("claim");
    let _new = store.queue_claim("n2", 200, 60, 10).await.expect("claim");
    let (id, rcpt) = (old[0].message.id, old[0].recipients[0].id);
    let removed = store
        .queue_complete(
            "n1",
            id,
            vec![(rcpt, AttemptOutcome::Delivered("250".into()))],
            false,
        )
        .await
        .expect("complete");
    assert!(!removed, "n2 holds the lease now");
    let entry = store.queue_entry(id).await.expect("entry").expect("exists");
    assert_eq!(entry.recipients[0].status, QueueStatus::Pending);
}

#[tokio::test]
async fn retry_flush_and_delete_work_on_the_queue() {
    let (store, _dir) = store().await;
    enqueue(&store, b"one\r\n", &["x@r.test"], 1000).await;
    enqueue(&store, b"two\r\n", &["y@r.test"], 1000).await;
    let list = store.queue_list().await.expect("list");
    let (first, second) = (list[0].message.id, list[1].message.id);
    assert_eq!(store.queue_retry(Some(first), 5).await.expect("retry"), 1);
    let due = store.queue_claim("n1", 5, 60, 10).await.expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, first);
    assert_eq!(store.queue_retry(None, 6).await.expect("flush"), 2);
    store.queue_delete(second).await.expect("delete");
    assert!(matches!(
        store.queue_delete(second).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.queue_retry(Some(second), 7).await,
        Err(StoreError::NotFound)
    ));
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.messages, stats.pending), (1, 1));
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn the_queue_survives_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(options(&dir)).await.expect("open");
        enqueue(&store, &large_body(3), &["x@r.test"], 100).await;
        store.queue_claim("n1", 100, 600, 10).await.expect("claim");
        store.close().await;
    }
    let store = Store::open(options(&dir)).await.expect("reopen");
    assert_eq!(store.queue_release_leases("n1").await.expect("release"), 1);
    let claimed = store.queue_claim("n1", 101, 60, 10).await.expect("claim");
    let m = &claimed[0].message;
    let bytes = store.read_blob(&m.blob).await.expect("blob");
    assert_eq!(&bytes[m.skip as usize..], &large_body(3)[..]);
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn dsn_parameters_round_trip_with_ret_not_given_kept_apart() {
    let (store, _dir) = store().await;
    for ret in [None, Some(DsnReturn::Full), Some(DsnReturn::Headers)] {
        let mut q = queued(&["x@remote.test"], 100);
        q.ret = ret;
        q.env_id = Some("QQ+314159".into());
        q.recipients[0].notify = Notify(Notify::SUCCESS | Notify::DELAY);
        q.recipients[0].orcpt = Some("rfc822;X@Remote.test".into());
        store
            .deliver(Delivery {
                bytes: Bytes::from(message(b"Subject: x\r\n\r\n")),
                internal_date: 1,
                meta: MessageMeta::default(),
                targets: vec![],
                queue: Some(q),
            })
            .await
            .expect("enqueue");
        let entry = store
            .queue_list()
            .await
            .expect("list")
            .pop()
            .expect("entry");
        assert_eq!(entry.message.ret, ret);
        assert_eq!(entry.message.env_id.as_deref(), Some("QQ+314159"));
        let r = &entry.recipients[0];
        assert_eq!(r.notify, Notify(Notify::SUCCESS | Notify::DELAY));
        assert_eq!(r.orcpt.as_deref(), Some("rfc822;X@Remote.test"));
    }
}

#[tokio::test]
async fn the_sender_trust_of_a_queued_message_round_trips() {
    let (store, _dir) = store().await;
    for trust in [
        SenderTrust::Unverified,
        SenderTrust::Failed,
        SenderTrust::SpfPass,
        SenderTrust::Authenticated,
    ] {
        let mut q = queued(&["x@remote.test"], 100);
        q.sender_trust = trust;
        store
            .deliver(Delivery {
                bytes: Bytes::from(message(b"Subject: x\r\n\r\n")),
                internal_date: 1,
                meta: MessageMeta::default(),
                targets: vec![],
                queue: Some(q),
            })
            .await
            .expect("enqueue");
        let entry = store
            .queue_list()
            .await
            .expect("list")
            .pop()
            .expect("entry");
        assert_eq!(entry.message.sender_trust, trust);
    }
}

#[test]
fn only_a_proven_sender_gets_success_reports_and_only_an_authenticated_one_its_content() {
    use SenderTrust::*;
    let rules = |t: SenderTrust| {
        (
            t.may_receive_success_reports(),
            t.may_receive_failure_reports(),
            t.may_receive_content(),
        )
    };
    assert_eq!(rules(Unverified), (false, true, false));
    assert_eq!(rules(Failed), (false, false, false));
    assert_eq!(rules(SpfPass), (true, true, false));
    assert_eq!(rules(Authenticated), (true, true, true));
}

#[test]
fn notify_without_success_never_falls_back_to_the_defaults() {
    let n = |bits| Notify(bits).without_success();
    assert_eq!(n(Notify::SUCCESS), Notify(Notify::NEVER));
    assert_eq!(
        n(Notify::SUCCESS | Notify::FAILURE),
        Notify(Notify::FAILURE)
    );
    assert_eq!(n(0), Notify(0));
    assert_eq!(n(Notify::NEVER), Notify(Notify::NEVER));
}
