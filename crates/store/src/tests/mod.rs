//! Unit tests of the public API against a temporary store.

mod cache;
mod directory;
mod mailbox;
mod message;
mod plans;
mod queue;
mod role;
mod spam;
mod writer;

use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use crate::{AccountId, Flags, MailboxId, MessageMeta, NewAccount, Store, StoreOptions, Uid};

/// A store in a fresh temp dir (kept alive by the returned guard). Small inline threshold so tests can
/// exercise both blob placements cheaply.
pub(super) async fn store() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(options(&dir)).await.expect("open store");
    (store, dir)
}

pub(super) fn options(dir: &TempDir) -> StoreOptions {
    StoreOptions {
        inline_blob_max: 1024,
        group_commit_window: Duration::from_millis(1),
        ..StoreOptions::new(dir.path())
    }
}

pub(super) async fn account(store: &Store, address: &str) -> AccountId {
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .expect("address with domain");
    match store.add_domain(domain).await {
        Ok(_) | Err(crate::StoreError::AlreadyExists) => {}
        Err(e) => panic!("add_domain: {e}"),
    }
    store
        .add_account(NewAccount {
            address: address.into(),
            password_hash: "$argon2id$x".into(),
            ..Default::default()
        })
        .await
        .expect("add_account")
}

pub(super) async fn inbox(store: &Store, account: AccountId) -> MailboxId {
    store
        .mailbox_by_name(account, "INBOX")
        .await
        .expect("lookup")
        .expect("INBOX exists")
        .id
}

pub(super) async fn append(store: &Store, mailbox: MailboxId, body: &[u8], flags: Flags) -> Uid {
    store
        .append(
            mailbox,
            Bytes::copy_from_slice(body),
            flags,
            1_700_000_000,
            MessageMeta::default(),
        )
        .await
        .expect("append")
        .uid
}

pub(super) fn uid(v: u32) -> Uid {
    Uid::new(v).expect("non-zero uid")
}

/// A body larger than the test inline threshold (1 KiB), so it is stored as a file.
pub(super) fn large_body(seed: u8) -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
