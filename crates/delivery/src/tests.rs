//! Pipeline tests against a real store and directory in a temporary directory.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use mail_parser::{Host, MessageParser};
use tern_common::{Address, Secret};
use tern_directory::{Argon2Params, Directory, DirectoryConfig, Recipient};
use tern_store::{Store, StoreOptions};

use super::*;

const HOST: &str = "mx.example.test";
/// Tue, 24 Nov 2026 20:14:05 +0000
const RECEIVED_AT: u64 = 1_795_551_245;
const MESSAGE: &[u8] = b"From: Sender <sender@example.org>\r\nTo: alice@example.test\r\n\
Subject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n\r\n\
Hello.\r\n";

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    directory: Directory,
    pipeline: Pipeline,
}

/// A store with example.test and the users alice, bob and carol.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).await.unwrap();
    let config = DirectoryConfig {
        // Cheap hashes: these tests are about delivery, not argon2's cost.
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        ..DirectoryConfig::default()
    };
    let directory = Directory::new(store.clone(), config).unwrap();
    directory.add_domain("example.test").await.unwrap();
    for user in ["alice", "bob", "carol"] {
        directory
            .add_user(
                &format!("{user}@example.test"),
                &Secret::new("correct horse battery"),
                None,
            )
            .await
            .unwrap();
    }
    let pipeline = Pipeline::new(store.clone(), directory.clone(), HOST.to_owned());
    Env {
        _dir: dir,
        store,
        directory,
        pipeline,
    }
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

impl Env {
    /// Resolves a recipient as the SMTP side does at RCPT time.
    async fn rcpt(&self, address: &str) -> InboundRecipient {
        let address = addr(address);
        let Recipient::Local(accounts) = self.directory.resolve_recipient(&address).await.unwrap()
        else {
            panic!("{address} is not local");
        };
        InboundRecipient {
            address,
            accounts,
            remote: Vec::new(),
            notify: Default::default(),
            orcpt: None,
        }
    }

    async fn rcpts(&self, addresses: &[&str]) -> Vec<InboundRecipient> {
        let mut out = Vec::new();
        for a in addresses {
            out.push(self.rcpt(a).await);
        }
        out
    }

    /// The messages in a user's INBOX, as stored bytes, with their blob refcounts.
    async fn inbox(&self, user: &str) -> Vec<(Bytes, u64)> {
        let account = self.directory.user(&addr(user)).await.unwrap().unwrap();
        let inbox = self
            .store
            .mailbox_by_name(account.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        for m in self.store.messages(inbox.id).await.unwrap() {
            let bytes = self.store.read_blob(&m.blob).await.unwrap();
            let info = self.store.blob_info(&m.blob).await.unwrap().unwrap();
            assert_eq!(m.internal_date, RECEIVED_AT as i64);
            out.push((bytes, info.refcount));
        }
        out
    }
}

fn trace() -> Trace {
    Trace {
        helo: "mail.example.org".into(),
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        client_name: None,
        protocol: TraceProtocol::Esmtp,
        tls: None,
        session_id: "s1x".into(),
        received_at: UNIX_EPOCH + Duration::from_secs(RECEIVED_AT),
    }
}

fn inbound(kind: InboundKind, recipients: Vec<InboundRecipient>, data: &[u8]) -> Inbound {
    Inbound {
        mail_from: Some(addr("sender@example.org")),
        recipients,
        data: Bytes::copy_from_slice(data),
        trace: trace(),
        kind,
        env_id: None,
        ret: None,
    }
}

fn statuses(outcomes: &[RecipientOutcome]) -> Vec<RecipientStatus> {
    outcomes.iter().map(|o| o.status.clone()).collect()
}

/// Splits stored bytes into (added fields, original data), checking the original is the tail.
fn split_added<'a>(stored: &'a [u8], original: &[u8]) -> &'a [u8] {
    assert!(
        stored.ends_with(original),
        "original bytes not intact:\n{}",
        String::from_utf8_lossy(stored)
    );
    &stored[..stored.len() - original.len()]
}

fn count_fields(block: &[u8], name: &str) -> usize {
    String::from_utf8_lossy(block)
        .split("\r\n")
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .count()
}

#[tokio::test]
async fn one_recipient_gets_return_path_and_received_above_the_original_bytes() {
    let env = env().await;
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    let outcomes = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![RecipientOutcome {
            address: addr("alice@example.test"),
            status: RecipientStatus::Delivered
        }]
    );
    let inbox = env.inbox("alice@example.test").await;
    assert_eq!(inbox.len(), 1);
    let (bytes, refcount) = &inbox[0];
    assert_eq!(*refcount, 1);
    let added = split_added(bytes, MESSAGE);
    assert_eq!(
        std::str::from_utf8(added).unwrap(),
        "Return-Path: <sender@example.org>\r\n\
         Received: from mail.example.org (unknown [192.0.2.1])\r\n\
         \tby mx.example.test (Tern) with ESMTP id s1x\r\n\
         \tfor <alice@example.test>; Tue, 24 Nov 2026 20:14:05 +0000\r\n"
    );
    assert!(env.inbox("bob@example.test").await.is_empty());
}

#[tokio::test]
async fn three_recipients_share_one_blob_and_the_received_field_names_none() {
    let env = env().await;
    let rcpts = env
        .rcpts(&[
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
        ])
        .await;
    let outcomes = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    assert_eq!(statuses(&outcomes), vec![RecipientStatus::Delivered; 3]);
    let mut copies = Vec::new();
    for user in [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ] {
        let inbox = env.inbox(user).await;
        assert_eq!(inbox.len(), 1, "{user}");
        // One blob, referenced by three rows.
        assert_eq!(inbox[0].1, 3, "{user}");
        copies.push(inbox[0].0.clone());
    }
    assert!(copies.iter().all(|c| c == &copies[0]));
    let added = split_added(&copies[0], MESSAGE);
    let added = std::str::from_utf8(added).unwrap();
    assert!(!added.contains("for <"), "{added}");
    assert!(
        added.ends_with("id s1x; Tue, 24 Nov 2026 20:14:05 +0000\r\n"),
        "{added}"
    );
}

#[tokio::test]
async fn alias_and_subaddress_give_each_account_one_copy() {
    let env = env().await;
    env.directory
        .add_alias("team@example.test", "alice@example.test")
        .await
        .unwrap();
    env.directory
        .add_alias("team@example.test", "bob@example.test")
        .await
        .unwrap();
    let rcpts = env
        .rcpts(&[
            "team@example.test",
            "alice@example.test",
            "alice+news@example.test",
        ])
        .await;
    assert_eq!(rcpts[0].accounts.len(), 2);
    let outcomes = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    assert_eq!(statuses(&outcomes), vec![RecipientStatus::Delivered; 3]);
    let alice = env.inbox("alice@example.test").await;
    let bob = env.inbox("bob@example.test").await;
    assert_eq!((alice.len(), bob.len()), (1, 1));
    assert_eq!(alice[0].1, 2, "one blob for the two accounts");
    assert!(env.inbox("carol@example.test").await.is_empty());
}

#[tokio::test]
async fn submission_adds_date_and_message_id_only_when_missing() {
    let env = env().await;
    let account = env.rcpt("bob@example.test").await.accounts[0];
    let kind = InboundKind::Submission { account };
    let bare = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nHi.\r\n";
    let present = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: hello\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n\r\nHello.\r\n";
    for data in [&bare[..], present] {
        let rcpts = env.rcpts(&["alice@example.test"]).await;
        env.pipeline
            .deliver(inbound(kind, rcpts, data))
            .await
            .unwrap();
    }
    let inbox = env.inbox("alice@example.test").await;
    assert_eq!(inbox.len(), 2);

    // Missing: exactly one of each, added below the trace fields and above the original header block.
    let stored = &inbox[0].0;
    let added = split_added(stored, bare);
    assert_eq!(count_fields(stored, "Date"), 1);
    assert_eq!(count_fields(stored, "Message-ID"), 1);
    let added = std::str::from_utf8(added).unwrap();
    assert!(added.starts_with("Return-Path: "), "{added}");
    let fixups = added.split_once("+0000\r\n").unwrap().1;
    assert!(
        fixups.starts_with("Date: Tue, 24 Nov 2026 20:14:05 +0000\r\nMessage-ID: <"),
        "{added}"
    );
    assert!(fixups.ends_with("@mx.example.test>\r\n"), "{added}");
    let parsed = MessageParser::default().parse(&stored[..]).unwrap();
    assert!(
        parsed
            .message_id()
            .is_some_and(|id| id.ends_with("@mx.example.test"))
    );
    assert_eq!(
        parsed.date().map(|d| d.to_timestamp()),
        Some(RECEIVED_AT as i64)
    );

    // Present: nothing added besides the trace fields, nothing duplicated.
    let stored = &inbox[1].0;
    let added = split_added(stored, present);
    assert_eq!(count_fields(added, "Date"), 0);
    assert_eq!(count_fields(added, "Message-ID"), 0);
    assert_eq!(count_fields(stored, "Date"), 1);
    assert_eq!(count_fields(stored, "Message-ID"), 1);
}

#[tokio::test]
async fn mx_and_lmtp_never_add_date_or_message_id() {
    let env = env().await;
    let bare = b"Subject: no date, no id\r\n\r\nbody\r\n";
    for kind in [InboundKind::Mx, InboundKind::Lmtp] {
        let rcpts = env.rcpts(&["alice@example.test"]).await;
        env.pipeline
            .deliver(inbound(kind, rcpts, bare))
            .await
            .unwrap();
    }
    for (stored, _) in env.inbox("alice@example.test").await {
        let added = split_added(&stored, bare);
        assert_eq!(count_fields(added, "Date"), 0);
        assert_eq!(count_fields(added, "Message-ID"), 0);
        assert_eq!(count_fields(added, "Received"), 1);
        assert_eq!(count_fields(added, "Return-Path"), 1);
    }
}

#[tokio::test]
async fn received_field_parses_back_with_ipv6_tls_protocol_and_date() {
    let env = env().await;
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    let mut message = inbound(InboundKind::Mx, rcpts, MESSAGE);
    message.mail_from = None;
    message.trace.client_ip = "2001:db8::25".parse().unwrap();
    message.trace.client_name = Some("relay.example.org".into());
    message.trace.protocol = TraceProtocol::Esmtps;
    message.trace.tls = Some("TLS1.3 TLS13_AES_256_GCM_SHA384".into());
    env.pipeline.deliver(message).await.unwrap();
    let (stored, _) = &env.inbox("alice@example.test").await[0];
    let text = String::from_utf8_lossy(split_added(stored, MESSAGE)).into_owned();
    assert!(text.starts_with("Return-Path: <>\r\n"), "{text}");
    assert!(
        text.contains("(relay.example.org [IPv6:2001:db8::25])"),
        "{text}"
    );
    assert!(
        text.contains("\r\n\t(using TLS1.3 TLS13_AES_256_GCM_SHA384)\r\n"),
        "{text}"
    );

    // An independent parser reads the same facts back.
    let parsed = MessageParser::default().parse(&stored[..]).unwrap();
    let received = parsed.received().unwrap();
    assert_eq!(received.from, Some(Host::Name("mail.example.org".into())));
    assert_eq!(received.from_ip, Some("2001:db8::25".parse().unwrap()));
    assert_eq!(received.by, Some(Host::Name(HOST.into())));
    assert_eq!(received.id.as_deref(), Some("s1x"));
    assert_eq!(received.for_.as_deref(), Some("alice@example.test"));
    assert_eq!(
        received.date.map(|d| d.to_timestamp()),
        Some(RECEIVED_AT as i64)
    );
    assert!(text.contains(" with ESMTPS id "), "{text}");
}

#[tokio::test]
async fn a_recipient_whose_account_vanished_fails_alone() {
    let env = env().await;
    let rcpts = env
        .rcpts(&[
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
        ])
        .await;
    // INBOX cannot be deleted, so remove bob's account between RCPT and delivery.
    env.directory.remove_user("bob@example.test").await.unwrap();
    let outcomes = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    assert_eq!(
        statuses(&outcomes),
        vec![
            RecipientStatus::Delivered,
            RecipientStatus::TempFail("mailbox temporarily unavailable".into()),
            RecipientStatus::Delivered,
        ]
    );
    assert_eq!(outcomes[1].address, addr("bob@example.test"));
    let alice = env.inbox("alice@example.test").await;
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].1, 2, "alice and carol share the blob");
    assert_eq!(env.inbox("carol@example.test").await.len(), 1);
}

#[tokio::test]
async fn a_recipient_without_accounts_fails_permanently_and_others_are_delivered() {
    let env = env().await;
    let mut rcpts = env.rcpts(&["alice@example.test"]).await;
    rcpts.push(InboundRecipient {
        address: addr("ghost@example.test"),
        accounts: Vec::new(),
        remote: Vec::new(),
        notify: Default::default(),
        orcpt: None,
    });
    let outcomes = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    assert_eq!(
        statuses(&outcomes),
        vec![
            RecipientStatus::Delivered,
            RecipientStatus::PermFail("no mailbox".into())
        ]
    );
}

#[tokio::test]
async fn unparseable_and_separatorless_messages_are_delivered_byte_intact_but_not_submitted() {
    let env = env().await;
    let garbage: &[u8] = b"\x00\xff\xfe\x01 not a header \x80\x81\r\n\r\n\x00\r\n.\r\n\xc3";
    let no_separator: &[u8] = b"Subject: no body separator\r\nFrom: a@example.org\r\nX-Last: 1";
    let bare_lf: &[u8] = b"Subject: lf only\n\nbody\n";
    let empty: &[u8] = b"";
    let cases = [garbage, no_separator, bare_lf, empty];
    for data in cases {
        // Submitted, they have no From: to check (or one the author check cannot trust).
        let rcpts = env.rcpts(&["alice@example.test"]).await;
        let bob = env.rcpt("bob@example.test").await.accounts[0];
        let kind = InboundKind::Submission { account: bob };
        match env.pipeline.deliver(inbound(kind, rcpts, data)).await {
            Err(DeliveryError::Refused {
                code: 550, status, ..
            }) => {
                assert!(matches!(status, [5, 6, 0] | [5, 7, 1]), "{status:?}");
            }
            other => panic!("{other:?}"),
        }
        for kind in [InboundKind::Mx, InboundKind::Lmtp] {
            let rcpts = env.rcpts(&["alice@example.test"]).await;
            let outcomes = env
                .pipeline
                .deliver(inbound(kind, rcpts, data))
                .await
                .unwrap();
            assert_eq!(statuses(&outcomes), vec![RecipientStatus::Delivered]);
        }
    }
    let inbox = env.inbox("alice@example.test").await;
    assert_eq!(inbox.len(), cases.len() * 2);
    for (i, (stored, _)) in inbox.iter().enumerate() {
        let added = split_added(stored, cases[i / 2]);
        assert!(added.starts_with(b"Return-Path: <sender@example.org>\r\nReceived: "));
    }
}

#[tokio::test]
async fn storage_failure_fails_the_whole_message_as_temporary() {
    let env = env().await;
    let rcpts = env.rcpts(&["alice@example.test"]).await;
    env.store.close().await;
    let err = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Storage(_)), "{err:?}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn no_recipients_stores_nothing() {
    let env = env().await;
    let outcomes = env
        .pipeline
        .deliver(inbound(InboundKind::Mx, Vec::new(), MESSAGE))
        .await
        .unwrap();
    assert!(outcomes.is_empty());
    assert!(env.inbox("alice@example.test").await.is_empty());
}

#[test]
fn deliver_future_is_send_so_sessions_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    fn check(p: &Pipeline, m: Inbound) {
        let future = p.deliver(m);
        assert_send(&future);
    }
    let _ = check;
}

mod auth;
mod author;

/// A stand-in for IMAP's summarizer: records the octets it was given.
fn fake_summary(raw: &[u8]) -> tern_store::MessageMeta {
    tern_store::MessageMeta {
        envelope: Some(raw.len().to_string().into_bytes()),
        body_structure: None,
        headers: Some(raw.to_vec()),
    }
}

#[tokio::test]
async fn every_local_copy_stores_the_message_cache_of_the_stored_bytes() {
    let mut env = env().await;
    env.pipeline = env.pipeline.clone().with_message_cache(fake_summary);
    let rcpts = env.rcpts(&["alice@example.test", "bob@example.test"]).await;
    env.pipeline
        .deliver(inbound(InboundKind::Mx, rcpts, MESSAGE))
        .await
        .unwrap();
    for user in ["alice@example.test", "bob@example.test"] {
        let (bytes, _) = env.inbox(user).await.remove(0);
        let account = env.directory.user(&addr(user)).await.unwrap().unwrap();
        let inbox = env
            .store
            .mailbox_by_name(account.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let uid = tern_store::Uid::new(1).unwrap();
        let meta = env
            .store
            .message_meta(inbox.id, &[uid], tern_store::MetaParts::ALL)
            .await
            .unwrap();
        // Computed over what IMAP serves: the trace fields included.
        assert_eq!(meta, vec![(uid, fake_summary(&bytes))], "{user}");
    }
}
