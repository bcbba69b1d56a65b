use super::*;
use crate::{BlobId, Delivery, MetaParts, SystemFlags};

fn meta(tag: &str) -> MessageMeta {
    MessageMeta {
        envelope: Some(format!("env-{tag}").into_bytes()),
        body_structure: Some(format!("body-{tag}").into_bytes()),
        headers: Some(format!("hdr-{tag}").into_bytes()),
    }
}

async fn append_with(store: &Store, mailbox: MailboxId, body: &[u8], meta: MessageMeta) -> Uid {
    store
        .append(mailbox, Bytes::copy_from_slice(body), Flags::new(), 1, meta)
        .await
        .expect("append")
        .uid
}

#[tokio::test]
async fn the_cache_is_stored_with_every_delivered_copy_and_read_by_parts() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, a).await;
    let other = store
        .create_mailbox(a, "other", None)
        .await
        .expect("create");
    let delivery = Delivery {
        bytes: Bytes::from_static(b"Subject: x\r\n\r\nbody"),
        internal_date: 1,
        meta: meta("a"),
        targets: vec![(inbox, Flags::new()), (other, Flags::new())],
        queue: None,
    };
    store.deliver(delivery).await.expect("deliver");
    let plain = append(&store, inbox, b"no cache", Flags::new()).await;
    for mailbox in [inbox, other] {
        assert_eq!(
            store
                .message_meta(mailbox, &[uid(1)], MetaParts::ALL)
                .await
                .expect("meta"),
            vec![(uid(1), meta("a"))]
        );
    }
    let only_envelope = MetaParts {
        envelope: true,
        ..MetaParts::default()
    };
    assert_eq!(
        store
            .message_meta(inbox, &[uid(1), plain, uid(9)], only_envelope)
            .await
            .expect("meta"),
        vec![(
            uid(1),
            MessageMeta {
                envelope: meta("a").envelope,
                ..MessageMeta::default()
            }
        )],
        "unread parts are None; messages without cache and unknown UIDs are left out"
    );
    assert!(
        store
            .message_meta(inbox, &[uid(1)], MetaParts::default())
            .await
            .expect("meta")
            .is_empty()
    );
}

#[tokio::test]
async fn long_uid_lists_are_read_by_one_scan_with_the_same_result() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    for i in 0..60u32 {
        let m = if i % 3 == 0 {
            MessageMeta::default()
        } else {
            meta(&i.to_string())
        };
        append_with(&store, id, format!("message {i}").as_bytes(), m).await;
    }
    // Every other message (30 UIDs, above the point-lookup limit) plus one unknown UID.
    let wanted: Vec<Uid> = (1..=61).step_by(2).map(uid).collect();
    let got = store
        .message_meta(id, &wanted, MetaParts::ALL)
        .await
        .expect("meta");
    let expected: Vec<(Uid, MessageMeta)> = (1..=60u32)
        .step_by(2)
        .filter(|u| (u - 1) % 3 != 0)
        .map(|u| (uid(u), meta(&(u - 1).to_string())))
        .collect();
    assert_eq!(got, expected);
    let mut one_by_one = Vec::new();
    for chunk in wanted.chunks(4) {
        one_by_one.extend(
            store
                .message_meta(id, chunk, MetaParts::ALL)
                .await
                .expect("meta"),
        );
    }
    assert_eq!(one_by_one, expected);
}

#[tokio::test]
async fn copy_and_move_carry_the_cache_and_removal_takes_it_away() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let src = inbox(&store, a).await;
    let copies = store
        .create_mailbox(a, "copies", None)
        .await
        .expect("create");
    let moved = store
        .create_mailbox(a, "moved", None)
        .await
        .expect("create");
    let u1 = append_with(&store, src, b"one", meta("1")).await;
    let u2 = append(&store, src, b"two", Flags::new()).await;
    let pairs = store.copy(src, &[u1, u2], copies).await.expect("copy");
    assert_eq!(pairs, vec![(u1, uid(1)), (u2, uid(2))]);
    assert_eq!(
        store
            .message_meta(copies, &[uid(1), uid(2)], MetaParts::ALL)
            .await
            .expect("meta"),
        vec![(uid(1), meta("1"))]
    );
    store.move_messages(src, &[u1], moved).await.expect("move");
    assert_eq!(
        store
            .message_meta(moved, &[uid(1)], MetaParts::ALL)
            .await
            .expect("meta"),
        vec![(uid(1), meta("1"))]
    );
    assert!(
        store
            .message_meta(src, &[u1], MetaParts::ALL)
            .await
            .expect("meta")
            .is_empty(),
        "the moved-away source row took its cache with it"
    );
    store
        .store_flags(
            copies,
            &[uid(1)],
            crate::FlagOp::Add,
            &Flags::from_system(SystemFlags::DELETED),
            None,
        )
        .await
        .expect("flag");
    store.expunge(copies, None).await.expect("expunge");
    assert!(
        store
            .message_meta(copies, &[uid(1)], MetaParts::ALL)
            .await
            .expect("meta")
            .is_empty()
    );
    store.delete_mailbox(moved).await.expect("delete");
    store
        .check_integrity()
        .await
        .expect("no cache row outlives its message");
}

#[tokio::test]
async fn fill_adds_missing_caches_and_keeps_existing_ones() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let id = inbox(&store, a).await;
    let cached = append_with(&store, id, b"cached", meta("kept")).await;
    let bare = append(&store, id, b"bare", Flags::new()).await;
    let gone = append(&store, id, b"gone", Flags::new()).await;
    store.remove_messages(id, &[gone]).await.expect("remove");
    let added = store
        .fill_message_meta(
            id,
            vec![
                (cached, meta("new")),
                (bare, meta("filled")),
                (gone, meta("gone")),
                (uid(99), meta("never")),
            ],
        )
        .await
        .expect("fill");
    assert_eq!(added, 1);
    assert_eq!(
        store
            .message_meta(id, &[cached, bare, gone], MetaParts::ALL)
            .await
            .expect("meta"),
        vec![(cached, meta("kept")), (bare, meta("filled"))]
    );
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn a_store_written_before_the_cache_existed_opens_with_its_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options(&dir);
    let body = b"Subject: old\r\n\r\nfrom before the upgrade\r\n";
    let hash = BlobId::of(body);
    {
        // Schema version 3: the message cache columns still in `messages`, all NULL.
        let mut conn = crate::sqlite::schema::open_writer(&options.db_path).expect("open");
        crate::sqlite::schema::migrate_to(&mut conn, 3).expect("old schema");
        conn.execute_batch(&format!(
            "INSERT INTO domains (id, name) VALUES (1, 'example.test');
             INSERT INTO accounts (id, address, domain_id, password_hash, created_at)
                 VALUES (1, 'u@example.test', 1, 'x', 0);
             INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed)
                 VALUES (1, 1, 'INBOX', 7, 2, 1, NULL, 1);
             INSERT INTO blobs (hash, size, refcount, data) VALUES ('{h}', {n}, 1, x'{hex}');
             INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_hash,
                                   envelope, body_structure, headers)
                 VALUES (1, 1, 1, 1, '', 5, {n}, '{h}', NULL, NULL, NULL);",
            h = hash.as_str(),
            n = body.len(),
            hex = body.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ))
        .expect("old rows");
    }
    let store = Store::open(options).await.expect("open migrates");
    store
        .check_integrity()
        .await
        .expect("integrity after migration");
    // Messages from before \Recent was tracked are not recent for anyone.
    assert_eq!(
        store.recent_status(MailboxId(1)).await.expect("recent"),
        crate::RecentStatus {
            claimed: 1,
            unclaimed: 0
        }
    );
    let records = store.messages(MailboxId(1)).await.expect("messages");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].uid, uid(1));
    assert_eq!(store.read_blob(&hash).await.expect("blob"), &body[..]);
    assert!(
        store
            .message_meta(MailboxId(1), &[uid(1)], MetaParts::ALL)
            .await
            .expect("meta")
            .is_empty(),
        "an old message has no cache until someone fills it"
    );
    let filled = store
        .fill_message_meta(MailboxId(1), vec![(uid(1), meta("late"))])
        .await
        .expect("fill");
    assert_eq!(filled, 1);
    assert_eq!(
        store
            .message_meta(MailboxId(1), &[uid(1)], MetaParts::ALL)
            .await
            .expect("meta"),
        vec![(uid(1), meta("late"))]
    );
}
