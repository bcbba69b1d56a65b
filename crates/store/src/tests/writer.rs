use std::collections::BTreeSet;

use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::{Change, ChangeKind, Delivery, StoreError, SystemFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_uids_and_share_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        group_commit_window: Duration::from_millis(5),
        ..options(&dir)
    };
    let store = Store::open(opts).await.expect("open");
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let before = store.stats();
    let tasks: Vec<_> = (0..50u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                append(&store, id, format!("message {i}").as_bytes(), Flags::new()).await
            })
        })
        .collect();
    let mut uids = BTreeSet::new();
    for t in tasks {
        assert!(uids.insert(t.await.expect("task")));
    }
    assert_eq!(uids.len(), 50);
    let after = store.stats();
    let (commits, jobs) = (after.commits - before.commits, after.jobs - before.jobs);
    assert_eq!(jobs, 50);
    assert!(
        commits < jobs,
        "group commit: {commits} commits for {jobs} jobs"
    );
    assert_eq!(store.mailbox_status(id).await.expect("status").messages, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_rolled_back_alone_within_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        group_commit_window: Duration::from_millis(50),
        ..options(&dir)
    };
    let store = Store::open(opts).await.expect("open");
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let before = store.stats();
    let good = store.append(
        id,
        Bytes::from_static(b"good"),
        Flags::new(),
        0,
        MessageMeta::default(),
    );
    let bad = store.deliver(Delivery {
        bytes: Bytes::from_static(b"bad"),
        internal_date: 0,
        meta: MessageMeta::default(),
        targets: vec![(id, Flags::new()), (MailboxId(12345), Flags::new())],
        queue: None,
    });
    let good2 = store.append(
        id,
        Bytes::from_static(b"good2"),
        Flags::new(),
        0,
        MessageMeta::default(),
    );
    let (good, bad, good2) = tokio::join!(good, bad, good2);
    assert!(matches!(bad, Err(StoreError::NotFound)));
    let (good, good2) = (good.expect("good"), good2.expect("good2"));
    assert_eq!(
        (good.uid, good2.uid),
        (uid(1), uid(2)),
        "the failed job's UID allocation was rolled back too"
    );
    let after = store.stats();
    assert_eq!(
        (after.jobs - before.jobs, after.commits - before.commits),
        (3, 1),
        "one batch, one commit"
    );
    assert_eq!(store.messages(id).await.expect("list").len(), 2);
    assert!(
        store
            .blob_info(&crate::BlobId::of(b"bad"))
            .await
            .expect("info")
            .is_none()
    );
}

#[tokio::test]
async fn the_bus_publishes_committed_changes_only() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let other = account(&store, "v@example.test").await;
    let id = inbox(&store, a).await;
    let mut rx = store.subscribe(a);
    let mut rx_other = store.subscribe(other);
    let appended = store
        .append(
            id,
            Bytes::from_static(b"x"),
            Flags::new(),
            0,
            MessageMeta::default(),
        )
        .await
        .expect("append");
    let ev = |kind| Change {
        account: a,
        mailbox: id,
        kind,
    };
    assert_eq!(
        rx.try_recv().expect("event"),
        ev(ChangeKind::Appended {
            uid: appended.uid,
            modseq: appended.modseq
        })
    );
    // A failed job publishes nothing.
    let failed = store.deliver(Delivery {
        bytes: Bytes::from_static(b"y"),
        internal_date: 0,
        meta: MessageMeta::default(),
        targets: vec![(id, Flags::new()), (MailboxId(999), Flags::new())],
        queue: None,
    });
    assert!(failed.await.is_err());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let del = Flags::from_system(SystemFlags::DELETED);
    let r = store
        .store_flags(id, &[appended.uid], crate::FlagOp::Add, &del, None)
        .await
        .expect("store");
    assert_eq!(
        rx.try_recv().expect("event"),
        ev(ChangeKind::FlagsChanged {
            uid: appended.uid,
            modseq: r.updated[0].2
        })
    );
    store.expunge(id, None).await.expect("expunge");
    let modseq = store
        .mailbox_status(id)
        .await
        .expect("status")
        .highestmodseq;
    assert_eq!(
        rx.try_recv().expect("event"),
        ev(ChangeKind::Expunged {
            uid: appended.uid,
            modseq
        })
    );
    let work = store.create_mailbox(a, "Work", None).await.expect("create");
    store.rename_mailbox(work, "Play").await.expect("rename");
    store.delete_mailbox(work).await.expect("delete");
    let kinds: Vec<ChangeKind> = (0..3).map(|_| rx.try_recv().expect("event").kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::MailboxCreated,
            ChangeKind::MailboxRenamed,
            ChangeKind::MailboxDeleted
        ]
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        rx_other.try_recv(),
        Err(TryRecvError::Empty),
        "other accounts see nothing"
    );
}

#[tokio::test]
async fn a_closed_store_refuses_writes() {
    let (store, _dir) = store().await;
    store.add_domain("example.test").await.expect("add");
    store.close().await;
    assert!(matches!(
        store.add_domain("other.test").await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn data_survives_reopen_and_crash_leftovers_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(options(&dir)).await.expect("open");
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let body = large_body(4);
    let u = append(&store, id, &body, Flags::new()).await;
    store.close().await;
    drop(store);
    // Leftovers of a crash: a temp file and a blob file no row references.
    let blobs = dir.path().join("blobs");
    std::fs::write(blobs.join("tmp").join("123-0-abc"), b"partial").expect("write temp");
    let orphan = BlobId::of(b"orphan");
    let orphan_path = blobs
        .join(&orphan.as_str()[..2])
        .join(&orphan.as_str()[2..]);
    std::fs::write(&orphan_path, b"orphan").expect("write orphan");
    let store = Store::open(options(&dir)).await.expect("reopen");
    assert!(!orphan_path.exists());
    assert_eq!(
        std::fs::read_dir(blobs.join("tmp")).expect("tmp").count(),
        0
    );
    let m = store.message(id, u).await.expect("get").expect("present");
    assert_eq!(store.read_blob(&m.blob).await.expect("read"), body);
    store.check_integrity().await.expect("integrity");
}

use crate::BlobId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_checkpointed_into_the_database_off_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        inline_blob_max: 64 * 1024,
        ..options(&dir)
    };
    let db_path = opts.db_path.clone();
    let store = Store::open(opts).await.expect("open");
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    assert_eq!(store.stats().checkpoints, 0);
    // 200 distinct inline messages of 32 KiB: about 1,600 pages of log, past the 1,000 that
    // wake the checkpoint thread.
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let body = format!("message {i}\r\n").repeat(32 * 1024 / 14);
                append(&store, id, body.as_bytes(), Flags::new()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.stats().checkpoints == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after {} commits",
            store.stats().commits
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The pages reached the database file itself, not only the log.
    let size = std::fs::metadata(&db_path).expect("database file").len();
    assert!(size > 4 << 20, "database file is {size} octets");
    assert_eq!(
        store.mailbox_status(id).await.expect("status").messages,
        200
    );
}
