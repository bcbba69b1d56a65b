use super::*;
use crate::{BlobId, Delivery, FlagOp, ModSeq, StoreError, SystemFlags};

async fn fifty_target_delivery_shares_one_blob(body: Vec<u8>, expect_inline: bool) {
    let (store, dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let mut targets = Vec::new();
    for i in 0..50 {
        let id = store
            .create_mailbox(a, &format!("box{i}"), None)
            .await
            .expect("create");
        targets.push((id, Flags::from_system(SystemFlags::DELETED)));
    }
    let delivery = Delivery {
        bytes: Bytes::from(body.clone()),
        internal_date: 1,
        meta: MessageMeta::default(),
        targets: targets.clone(),
        queue: None,
    };
    let appended = store.deliver(delivery).await.expect("deliver");
    assert_eq!(appended.len(), 50);
    assert!(appended.iter().all(|a| a.uid == uid(1)));
    let blob = BlobId::of(&body);
    let info = store.blob_info(&blob).await.expect("info").expect("stored");
    assert_eq!(
        (info.refcount, info.inline, info.size),
        (50, expect_inline, body.len() as u64)
    );
    let file = dir
        .path()
        .join("blobs")
        .join(&blob.as_str()[..2])
        .join(&blob.as_str()[2..]);
    assert_eq!(file.exists(), !expect_inline);
    assert_eq!(store.read_blob(&blob).await.expect("read"), body);
    store.check_integrity().await.expect("integrity");
    for (i, (mailbox, _)) in targets.iter().enumerate() {
        assert_eq!(
            store.expunge(*mailbox, None).await.expect("expunge"),
            [uid(1)]
        );
        let left = store
            .blob_info(&blob)
            .await
            .expect("info")
            .map(|i| i.refcount);
        assert_eq!(left, (i < 49).then(|| 49 - i as u64));
    }
    assert!(
        !file.exists(),
        "file unlinked after the last reference went"
    );
    assert!(matches!(
        store.read_blob(&blob).await,
        Err(StoreError::NotFound)
    ));
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn delivery_to_fifty_mailboxes_stores_one_inline_blob_with_refcount_fifty() {
    fifty_target_delivery_shares_one_blob(b"Subject: hi\r\n\r\nsmall".to_vec(), true).await;
}

#[tokio::test]
async fn delivery_to_fifty_mailboxes_stores_one_file_blob_with_refcount_fifty() {
    fifty_target_delivery_shares_one_blob(large_body(3), false).await;
}

#[tokio::test]
async fn inline_and_file_blobs_read_back_byte_identical() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    for body in [
        Vec::new(),
        b"x".to_vec(),
        vec![0xAB; 1024],
        vec![0xCD; 1025],
        large_body(9),
    ] {
        let u = append(&store, id, &body, Flags::new()).await;
        let m = store.message(id, u).await.expect("get").expect("present");
        assert_eq!(m.size, body.len() as u64);
        assert_eq!(store.read_blob(&m.blob).await.expect("read"), body);
        let inline = store
            .blob_info(&m.blob)
            .await
            .expect("info")
            .expect("present")
            .inline;
        assert_eq!(inline, body.len() <= 1024);
    }
}

#[tokio::test]
async fn read_blobs_returns_each_blob_in_order_and_not_found_for_removed_ones() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let bodies = [b"one".to_vec(), vec![0xCD; 1025], b"three".to_vec()];
    let mut blobs = Vec::new();
    for body in &bodies {
        let u = append(&store, id, body, Flags::new()).await;
        let m = store.message(id, u).await.expect("get").expect("present");
        blobs.push((u, m.blob));
    }
    let ids: Vec<BlobId> = blobs.iter().map(|(_, b)| b.clone()).collect();
    assert!(store.read_blobs(&[]).await.expect("empty batch").is_empty());
    let read = store.read_blobs(&ids).await.expect("batch");
    assert_eq!(read.len(), 3);
    for (got, want) in read.iter().zip(&bodies) {
        assert_eq!(got.as_ref().expect("read"), want);
    }
    // The same id twice, and a blob whose last message went (inline and file).
    store
        .remove_messages(id, &[blobs[0].0, blobs[1].0])
        .await
        .expect("remove");
    let read = store
        .read_blobs(&[
            ids[2].clone(),
            ids[0].clone(),
            ids[1].clone(),
            ids[2].clone(),
        ])
        .await
        .expect("batch");
    assert_eq!(read.len(), 4);
    assert_eq!(read[0].as_ref().expect("read"), &bodies[2]);
    assert!(matches!(read[1], Err(StoreError::NotFound)));
    assert!(matches!(read[2], Err(StoreError::NotFound)));
    assert_eq!(read[3].as_ref().expect("read"), &bodies[2]);
}

#[tokio::test]
async fn messages_come_back_in_uid_order_with_meta_and_flags() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let meta = MessageMeta {
        envelope: Some(b"env".to_vec()),
        body_structure: None,
        headers: Some(b"h".to_vec()),
    };
    let flags =
        Flags::from_system(SystemFlags::SEEN | SystemFlags::FLAGGED).with_keyword("$Forwarded");
    let appended = store
        .append(
            id,
            Bytes::from_static(b"one"),
            flags.clone(),
            42,
            meta.clone(),
        )
        .await
        .expect("append");
    append(&store, id, b"two", Flags::new()).await;
    let all = store.messages(id).await.expect("list");
    assert_eq!(all.iter().map(|m| m.uid.get()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((&all[0].flags, all[0].internal_date), (&flags, 42));
    assert_eq!(
        store
            .message_meta(id, &[uid(1), uid(2)], crate::MetaParts::ALL)
            .await
            .expect("meta"),
        vec![(uid(1), meta.clone())]
    );
    assert_eq!(all[0].modseq, appended.modseq);
    assert_eq!(
        appended.uidvalidity,
        store
            .mailbox(id)
            .await
            .expect("get")
            .expect("present")
            .uidvalidity
    );
    assert!(store.message(id, uid(3)).await.expect("get").is_none());
    assert!(matches!(
        store
            .append(
                id,
                Bytes::new(),
                Flags::new().with_keyword("bad kw"),
                0,
                meta
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn failed_delivery_leaves_no_trace() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let before = store.mailbox_status(id).await.expect("status");
    let body = large_body(5);
    let delivery = Delivery {
        bytes: Bytes::from(body.clone()),
        internal_date: 0,
        meta: MessageMeta::default(),
        targets: vec![(id, Flags::new()), (MailboxId(999), Flags::new())],
        queue: None,
    };
    assert!(matches!(
        store.deliver(delivery).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.mailbox_status(id).await.expect("status"), before);
    assert!(
        store
            .blob_info(&BlobId::of(&body))
            .await
            .expect("info")
            .is_none()
    );
    store
        .check_integrity()
        .await
        .expect("integrity: no orphan row, and the renamed file was removed");
    let empty = Delivery {
        bytes: Bytes::new(),
        internal_date: 0,
        meta: MessageMeta::default(),
        targets: vec![],
        queue: None,
    };
    assert!(matches!(
        store.deliver(empty).await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn store_flags_adds_removes_replaces_and_skips_no_ops() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let u1 = append(&store, id, b"1", Flags::new()).await;
    let u2 = append(&store, id, b"2", Flags::from_system(SystemFlags::SEEN)).await;
    let seen = Flags::from_system(SystemFlags::SEEN);
    let r = store
        .store_flags(id, &[u1, u2, uid(99)], FlagOp::Add, &seen, None)
        .await
        .expect("store");
    assert_eq!(
        r.updated,
        [(u1, seen.clone(), ModSeq(4))],
        "u2 already had \\Seen: no change, no bump"
    );
    let r = store
        .store_flags(id, &[u2], FlagOp::Add, &seen, None)
        .await
        .expect("no-op");
    assert!(r.updated.is_empty());
    assert_eq!(
        store
            .mailbox_status(id)
            .await
            .expect("status")
            .highestmodseq,
        ModSeq(4)
    );
    let kw = Flags::new().with_keyword("$Junk");
    let r = store
        .store_flags(id, &[u1, u2], FlagOp::Replace, &kw, None)
        .await
        .expect("replace");
    assert_eq!(
        r.updated,
        [(u1, kw.clone(), ModSeq(5)), (u2, kw.clone(), ModSeq(5))]
    );
    let r = store
        .store_flags(id, &[u1], FlagOp::Remove, &kw, None)
        .await
        .expect("remove");
    assert_eq!(r.updated, [(u1, Flags::new(), ModSeq(6))]);
    let m2 = store.message(id, u2).await.expect("get").expect("present");
    assert_eq!((m2.flags, m2.modseq), (kw, ModSeq(5)));
    assert!(matches!(
        store
            .store_flags(MailboxId(999), &[u1], FlagOp::Add, &seen, None)
            .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn store_flags_honours_unchanged_since() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let u1 = append(&store, id, b"1", Flags::new()).await; // modseq 2
    let u2 = append(&store, id, b"2", Flags::new()).await; // modseq 3
    let flagged = Flags::from_system(SystemFlags::FLAGGED);
    let r = store
        .store_flags(id, &[u1, u2], FlagOp::Add, &flagged, Some(ModSeq(2)))
        .await
        .expect("store");
    assert_eq!(r.updated, [(u1, flagged.clone(), ModSeq(4))]);
    assert_eq!(r.failed_unchanged_since, [u2]);
    assert!(
        store
            .message(id, u2)
            .await
            .expect("get")
            .expect("present")
            .flags
            .system
            .is_empty()
    );
    let r = store
        .store_flags(id, &[u1, u2], FlagOp::Add, &flagged, Some(ModSeq(0)))
        .await
        .expect("store");
    assert_eq!(
        (r.updated.len(), r.failed_unchanged_since),
        (0, vec![u1, u2])
    );
}

#[tokio::test]
async fn expunge_removes_only_deleted_messages_and_changes_since_reports_them_vanished() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let del = Flags::from_system(SystemFlags::DELETED);
    let u1 = append(&store, id, b"1", del.clone()).await;
    let u2 = append(&store, id, b"2", Flags::new()).await;
    let u3 = append(&store, id, b"3", del.clone()).await;
    let u4 = append(&store, id, b"4", del.clone()).await;
    let mark = store
        .mailbox_status(id)
        .await
        .expect("status")
        .highestmodseq;
    assert_eq!(
        store
            .expunge(id, Some(&[u2, u3]))
            .await
            .expect("uid expunge"),
        [u3]
    );
    assert_eq!(store.expunge(id, None).await.expect("expunge"), [u1, u4]);
    assert!(
        store
            .expunge(id, None)
            .await
            .expect("nothing left")
            .is_empty()
    );
    let after = store
        .mailbox_status(id)
        .await
        .expect("status")
        .highestmodseq;
    assert_eq!(
        after,
        ModSeq(mark.0 + 2),
        "one bump per expunge that removed something"
    );
    let changes = store.changes_since(id, mark).await.expect("changes");
    assert_eq!(changes.vanished, [u1, u3, u4]);
    assert!(changes.changed.is_empty());
    let changes = store
        .changes_since(id, ModSeq(mark.0 + 1))
        .await
        .expect("changes");
    assert_eq!(changes.vanished, [u1, u4]);
    let u5 = append(&store, id, b"5", Flags::new()).await;
    assert_eq!(u5, uid(5), "expunged UIDs are never reused");
    let changes = store.changes_since(id, after).await.expect("changes");
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [u5]
    );
    let all = store.changes_since(id, ModSeq(0)).await.expect("changes");
    assert_eq!(
        all.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [u2, u5]
    );
    assert!(matches!(
        store.changes_since(MailboxId(999), ModSeq(0)).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn copy_shares_blobs_and_keeps_flags() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let (src, dst) = (
        inbox(&store, a).await,
        store.create_mailbox(a, "Dst", None).await.expect("create"),
    );
    let flags = Flags::from_system(SystemFlags::SEEN).with_keyword("k");
    let u1 = append(&store, src, &large_body(1), flags.clone()).await;
    let u2 = append(&store, src, b"small", Flags::new()).await;
    append(&store, dst, b"already there", Flags::new()).await;
    let pairs = store
        .copy(src, &[u2, u1, uid(77)], dst)
        .await
        .expect("copy");
    assert_eq!(pairs, [(u1, uid(2)), (u2, uid(3))]);
    let copied = store
        .message(dst, uid(2))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(copied.flags, flags);
    assert_eq!(
        store
            .blob_info(&copied.blob)
            .await
            .expect("info")
            .expect("present")
            .refcount,
        2
    );
    assert_eq!(
        store.messages(src).await.expect("src").len(),
        2,
        "source untouched"
    );
    assert!(
        store
            .copy(src, &[uid(77)], dst)
            .await
            .expect("copy nothing")
            .is_empty()
    );
    assert!(matches!(
        store.copy(src, &[u1], MailboxId(999)).await,
        Err(StoreError::NotFound)
    ));
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn move_leaves_tombstones_in_the_source() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let (src, dst) = (
        inbox(&store, a).await,
        store.create_mailbox(a, "Dst", None).await.expect("create"),
    );
    let u1 = append(&store, src, b"one", Flags::new()).await;
    let u2 = append(&store, src, &large_body(2), Flags::new()).await;
    let u3 = append(&store, src, b"three", Flags::new()).await;
    let mark = store
        .mailbox_status(src)
        .await
        .expect("status")
        .highestmodseq;
    let pairs = store
        .move_messages(src, &[u1, u3], dst)
        .await
        .expect("move");
    assert_eq!(pairs, [(u1, uid(1)), (u3, uid(2))]);
    assert_eq!(
        store
            .messages(src)
            .await
            .expect("src")
            .iter()
            .map(|m| m.uid)
            .collect::<Vec<_>>(),
        [u2]
    );
    assert_eq!(
        store
            .changes_since(src, mark)
            .await
            .expect("changes")
            .vanished,
        [u1, u3]
    );
    assert_eq!(
        store
            .blob_info(&BlobId::of(b"one"))
            .await
            .expect("info")
            .expect("present")
            .refcount,
        1
    );
    let moved = store
        .move_messages(src, &[u2], src)
        .await
        .expect("move within the mailbox");
    assert_eq!(moved, [(u2, uid(4))]);
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn remove_messages_ignores_flags_leaves_tombstones_and_releases_blobs() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let u1 = append(&store, id, b"one", Flags::new()).await;
    let u2 = append(&store, id, &large_body(4), Flags::new()).await;
    let u3 = append(&store, id, b"three", Flags::from_system(SystemFlags::SEEN)).await;
    let blob2 = store
        .message(id, u2)
        .await
        .expect("get")
        .expect("present")
        .blob;
    let mark = store
        .mailbox_status(id)
        .await
        .expect("status")
        .highestmodseq;
    let removed = store
        .remove_messages(id, &[u3, u2, uid(99)])
        .await
        .expect("remove");
    assert_eq!(removed, [u2, u3], "unknown UIDs ignored, result ascending");
    let left: Vec<Uid> = store
        .messages(id)
        .await
        .expect("list")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [u1]);
    let status = store.mailbox_status(id).await.expect("status");
    assert_eq!(status.highestmodseq, ModSeq(mark.0 + 1), "one bump");
    let changes = store.changes_since(id, mark).await.expect("changes");
    assert_eq!(changes.vanished, [u2, u3]);
    assert!(store.blob_info(&blob2).await.expect("info").is_none());
    assert!(
        store
            .remove_messages(id, &[uid(99)])
            .await
            .expect("nothing")
            .is_empty()
    );
    assert_eq!(
        store
            .mailbox_status(id)
            .await
            .expect("status")
            .highestmodseq,
        status.highestmodseq,
        "removing nothing does not bump"
    );
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn messages_in_returns_the_existing_ones_among_short_and_long_uid_lists() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    for i in 0..40u32 {
        let flags = match i % 3 {
            0 => Flags::new(),
            1 => Flags::from_system(SystemFlags::SEEN),
            _ => Flags::new().with_keyword("$Label1").with_keyword("x"),
        };
        append(&store, id, format!("m{i}").as_bytes(), flags).await;
    }
    store
        .remove_messages(id, &[uid(2), uid(30)])
        .await
        .expect("remove");
    let all = store.messages(id).await.expect("list");
    for wanted in [
        vec![uid(1), uid(2), uid(3), uid(3), uid(99)],
        (1..=41).step_by(2).map(uid).collect::<Vec<_>>(),
        (1..=40).map(uid).collect(),
    ] {
        let got = store.messages_in(id, &wanted).await.expect("messages_in");
        let expected: Vec<_> = all
            .iter()
            .filter(|m| wanted.contains(&m.uid))
            .cloned()
            .collect();
        assert_eq!(got, expected, "{wanted:?}");
        let flags = store.message_flags_in(id, &wanted).await.expect("flags");
        let expected: Vec<_> = expected
            .into_iter()
            .map(|m| crate::MessageFlags {
                uid: m.uid,
                modseq: m.modseq,
                flags: m.flags,
            })
            .collect();
        assert_eq!(flags, expected, "{wanted:?}");
    }
    assert!(
        store
            .messages_in(id, &[])
            .await
            .expect("empty list")
            .is_empty()
    );
    assert!(matches!(
        store.messages_in(MailboxId(999), &[uid(1)]).await,
        Err(StoreError::NotFound)
    ));
}

fn delivery(body: &[u8], target: MailboxId) -> Delivery {
    Delivery {
        bytes: Bytes::copy_from_slice(body),
        internal_date: 1,
        meta: MessageMeta::default(),
        targets: vec![(target, Flags::default())],
        queue: None,
    }
}

#[tokio::test]
async fn deliver_all_stores_every_message_or_none() {
    let (store, dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, a).await;
    let mut rx = store.subscribe(a);
    let (small, large) = (b"small".to_vec(), large_body(7));
    // The last delivery fails (unknown mailbox): the file blob and the inline one that came
    // before it are rolled back with it, rows, counters and files.
    let failed = store
        .deliver_all(vec![
            delivery(&large, inbox),
            delivery(&small, inbox),
            delivery(b"third", MailboxId(999)),
        ])
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(store.messages(inbox).await.expect("messages").is_empty());
    for body in [&small[..], &large[..]] {
        assert_eq!(
            store.blob_info(&BlobId::of(body)).await.expect("info"),
            None
        );
    }
    let blob = BlobId::of(&large);
    let file = dir
        .path()
        .join("blobs")
        .join(&blob.as_str()[..2])
        .join(&blob.as_str()[2..]);
    assert!(!file.exists(), "orphan blob file left behind");
    let mailbox = store
        .mailbox(inbox)
        .await
        .expect("mailbox")
        .expect("exists");
    assert_eq!(mailbox.uidnext, 1);
    assert!(
        rx.try_recv().is_err(),
        "a rolled-back delivery was published"
    );
    store.check_integrity().await.expect("integrity");
    // The same batch without the bad one: all stored, in order, one mod-sequence each.
    let stored = store
        .deliver_all(vec![delivery(&large, inbox), delivery(&small, inbox)])
        .await
        .expect("deliver_all");
    let uids: Vec<_> = stored.iter().map(|copies| copies[0].uid).collect();
    assert_eq!(uids, [uid(1), uid(2)]);
    assert!(stored[0][0].modseq < stored[1][0].modseq);
    assert!(file.exists());
    assert_eq!(store.messages(inbox).await.expect("messages").len(), 2);
    store.check_integrity().await.expect("integrity");
}
