use super::*;
use crate::{ModSeq, SpecialUse, StoreError, SystemFlags, UidValidity};

#[tokio::test]
async fn create_mailbox_rejects_duplicates_and_inbox_in_any_case() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = store
        .create_mailbox(a, "Work", Some(SpecialUse::Flagged))
        .await
        .expect("create");
    assert!(matches!(
        store.create_mailbox(a, "Work", None).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.create_mailbox(a, "inbox", None).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.create_mailbox(a, "", None).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.create_mailbox(AccountId(999), "X", None).await,
        Err(StoreError::NotFound)
    ));
    let child = store
        .create_mailbox(a, "iNbOx/Sub", None)
        .await
        .expect("child of inbox");
    assert_eq!(
        store
            .mailbox(child)
            .await
            .expect("get")
            .expect("present")
            .name,
        "INBOX/Sub"
    );
    let m = store
        .mailbox_by_name(a, "Work")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        (m.id, m.special_use, m.subscribed, m.uidnext),
        (id, Some(SpecialUse::Flagged), true, 1)
    );
    assert_eq!(
        store
            .mailbox_by_name(a, "inbox")
            .await
            .expect("get")
            .expect("present")
            .name,
        "INBOX"
    );
    assert!(
        store
            .mailbox_by_name(a, "work")
            .await
            .expect("get")
            .is_none(),
        "only INBOX is case-insensitive"
    );
}

#[tokio::test]
async fn set_subscribed_toggles() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = store
        .create_mailbox(a, "Lists", None)
        .await
        .expect("create");
    store.set_subscribed(id, false).await.expect("unsubscribe");
    assert!(
        !store
            .mailbox(id)
            .await
            .expect("get")
            .expect("present")
            .subscribed
    );
    assert!(matches!(
        store.set_subscribed(MailboxId(999), true).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn rename_moves_children_along() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let parent = store.create_mailbox(a, "a", None).await.expect("a");
    let child = store.create_mailbox(a, "a/b", None).await.expect("a/b");
    let grandchild = store.create_mailbox(a, "a/b/c", None).await.expect("a/b/c");
    let sibling = store.create_mailbox(a, "ab", None).await.expect("ab");
    let uidvalidity = store
        .mailbox(child)
        .await
        .expect("get")
        .expect("present")
        .uidvalidity;
    store.rename_mailbox(parent, "x/y").await.expect("rename");
    let name = |id| {
        let store = store.clone();
        async move { store.mailbox(id).await.expect("get").expect("present").name }
    };
    assert_eq!(name(parent).await, "x/y");
    assert_eq!(name(child).await, "x/y/b");
    assert_eq!(name(grandchild).await, "x/y/b/c");
    assert_eq!(
        name(sibling).await,
        "ab",
        "a prefix that is not a parent is untouched"
    );
    assert_eq!(
        store
            .mailbox(child)
            .await
            .expect("get")
            .expect("present")
            .uidvalidity,
        uidvalidity
    );
}

#[tokio::test]
async fn rename_refuses_inbox_taken_names_and_self_nesting() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let inbox_id = inbox(&store, a).await;
    assert!(matches!(
        store.rename_mailbox(inbox_id, "Old").await,
        Err(StoreError::Inbox)
    ));
    assert!(matches!(
        store.delete_mailbox(inbox_id).await,
        Err(StoreError::Inbox)
    ));
    let x = store.create_mailbox(a, "x", None).await.expect("x");
    store.create_mailbox(a, "x/c", None).await.expect("x/c");
    store.create_mailbox(a, "y/c", None).await.expect("y/c");
    assert!(matches!(
        store.rename_mailbox(x, "Sent").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(
        matches!(
            store.rename_mailbox(x, "y").await,
            Err(StoreError::AlreadyExists)
        ),
        "child y/c collides"
    );
    assert!(matches!(
        store.rename_mailbox(x, "INBOX").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.rename_mailbox(x, "x/c/d").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.rename_mailbox(MailboxId(999), "z").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.mailbox(x).await.expect("get").expect("present").name,
        "x",
        "failed renames leave no trace"
    );
}

#[tokio::test]
async fn delete_mailbox_removes_messages_and_releases_blobs() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let (inbox_id, work) = (
        inbox(&store, a).await,
        store.create_mailbox(a, "Work", None).await.expect("create"),
    );
    let big = large_body(7);
    append(&store, work, &big, Flags::new()).await;
    append(&store, work, b"only here", Flags::new()).await;
    append(&store, inbox_id, &big, Flags::new()).await;
    store.delete_mailbox(work).await.expect("delete");
    assert!(store.mailbox(work).await.expect("get").is_none());
    assert!(matches!(
        store.messages(work).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .blob_info(&crate::BlobId::of(b"only here"))
            .await
            .expect("info")
            .is_none()
    );
    assert_eq!(
        store
            .blob_info(&crate::BlobId::of(&big))
            .await
            .expect("info")
            .map(|i| i.refcount),
        Some(1)
    );
    assert!(matches!(
        store.delete_mailbox(work).await,
        Err(StoreError::NotFound)
    ));
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn uidvalidity_differs_after_delete_and_recreate_in_the_same_second() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let mut seen: Vec<UidValidity> = Vec::new();
    for _ in 0..5 {
        let id = store
            .create_mailbox(a, "Again", None)
            .await
            .expect("create");
        seen.push(
            store
                .mailbox(id)
                .await
                .expect("get")
                .expect("present")
                .uidvalidity,
        );
        store.delete_mailbox(id).await.expect("delete");
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seen:?}"
    );
}

#[tokio::test]
async fn mailbox_status_counts_messages_unseen_deleted_and_size() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let empty = store.mailbox_status(id).await.expect("status");
    assert_eq!(
        (empty.messages, empty.uidnext, empty.highestmodseq),
        (0, 1, ModSeq(1))
    );
    append(&store, id, b"12345", Flags::from_system(SystemFlags::SEEN)).await;
    append(&store, id, b"123", Flags::from_system(SystemFlags::DELETED)).await;
    append(&store, id, b"1", Flags::new()).await;
    let st = store.mailbox_status(id).await.expect("status");
    assert_eq!(
        (
            st.messages,
            st.unseen,
            st.deleted,
            st.size_bytes,
            st.uidnext
        ),
        (3, 2, 1, 9, 4)
    );
    assert_eq!(st.highestmodseq, ModSeq(4));
    assert_eq!(
        st.uidvalidity,
        store
            .mailbox(id)
            .await
            .expect("get")
            .expect("present")
            .uidvalidity
    );
    assert!(matches!(
        store.mailbox_status(MailboxId(999)).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn each_uid_is_claimed_as_recent_once() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, a).await;
    let claim = |after, through| crate::RecentClaim { after, through };
    let status = |claimed, unclaimed| crate::RecentStatus { claimed, unclaimed };
    assert_eq!(store.claim_recent(inbox).await.expect("claim"), claim(0, 0));
    for body in [&b"one"[..], b"two", b"three"] {
        append(&store, inbox, body, Flags::default()).await;
    }
    assert_eq!(
        store.recent_status(inbox).await.expect("status"),
        status(0, 3)
    );
    // Concurrent claims (two sessions SELECTing at once) split the UIDs between them.
    let (x, y) = tokio::join!(store.claim_recent(inbox), store.claim_recent(inbox));
    let mut claims = [x.expect("claim"), y.expect("claim")];
    claims.sort_by_key(|c| c.through - c.after);
    assert_eq!(claims, [claim(3, 3), claim(0, 3)]);
    assert_eq!(
        store.recent_status(inbox).await.expect("status"),
        status(3, 0)
    );
    // Expunged messages leave the count, and a later claim starts above the old mark.
    append(&store, inbox, b"four", Flags::default()).await;
    append(
        &store,
        inbox,
        b"five",
        Flags::from_system(SystemFlags::DELETED),
    )
    .await;
    store.expunge(inbox, None).await.expect("expunge");
    assert_eq!(
        store.recent_status(inbox).await.expect("status"),
        status(3, 1)
    );
    assert_eq!(store.claim_recent(inbox).await.expect("claim"), claim(3, 5));
    assert!(matches!(
        store.claim_recent(MailboxId(999)).await,
        Err(StoreError::NotFound)
    ));
    store.check_integrity().await.expect("integrity");
}
