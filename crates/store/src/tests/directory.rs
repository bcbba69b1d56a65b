use super::*;
use crate::{Alias, CredentialEpoch, SpecialUse, StoreError};

#[tokio::test]
async fn domains_are_lowercased_unique_and_listed() {
    let (store, _dir) = store().await;
    let id = store.add_domain("Example.TEST").await.expect("add");
    assert!(matches!(
        store.add_domain("example.test").await,
        Err(StoreError::AlreadyExists)
    ));
    store.add_domain("a.test").await.expect("add");
    let names: Vec<String> = store
        .domains()
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["a.test", "example.test"]);
    let d = store
        .domain("EXAMPLE.test")
        .await
        .expect("get")
        .expect("present");
    assert_eq!((d.id, d.catch_all), (id, None));
    assert!(store.domain("nope.test").await.expect("get").is_none());
}

#[tokio::test]
async fn remove_domain_refuses_while_accounts_or_aliases_use_it() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    assert!(matches!(
        store.remove_domain("example.test").await,
        Err(StoreError::InUse)
    ));
    store.remove_account(a).await.expect("remove account");
    store
        .add_alias("x@example.test", "y@elsewhere.test")
        .await
        .expect("alias");
    assert!(matches!(
        store.remove_domain("example.test").await,
        Err(StoreError::InUse)
    ));
    store
        .remove_alias("x@example.test", None)
        .await
        .expect("remove alias");
    store
        .remove_domain("example.test")
        .await
        .expect("remove domain");
    assert!(matches!(
        store.remove_domain("example.test").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn catch_all_is_set_and_cleared() {
    let (store, _dir) = store().await;
    store.add_domain("example.test").await.expect("add");
    store
        .set_catch_all("example.test", Some("all@example.test"))
        .await
        .expect("set");
    let d = store
        .domain("example.test")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(d.catch_all.as_deref(), Some("all@example.test"));
    store
        .set_catch_all("example.test", None)
        .await
        .expect("clear");
    assert_eq!(
        store
            .domain("example.test")
            .await
            .expect("get")
            .expect("present")
            .catch_all,
        None
    );
    assert!(matches!(
        store.set_catch_all("nope.test", None).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn add_account_creates_the_default_mailboxes_subscribed() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let boxes = store.mailboxes(a).await.expect("list");
    let got: Vec<(String, Option<SpecialUse>, bool)> = boxes
        .into_iter()
        .map(|m| (m.name, m.special_use, m.subscribed))
        .collect();
    let want = [
        ("Archive", Some(SpecialUse::Archive)),
        ("Drafts", Some(SpecialUse::Drafts)),
        ("INBOX", None),
        ("Junk", Some(SpecialUse::Junk)),
        ("Sent", Some(SpecialUse::Sent)),
        ("Trash", Some(SpecialUse::Trash)),
    ];
    assert_eq!(got, want.map(|(n, s)| (n.to_owned(), s, true)).to_vec());
    assert_eq!(SpecialUse::Sent.as_str(), "\\Sent");
}

#[tokio::test]
async fn add_account_needs_its_domain_and_a_free_address() {
    let (store, _dir) = store().await;
    let new = NewAccount {
        address: "u@example.test".into(),
        password_hash: "h".into(),
        ..Default::default()
    };
    assert!(matches!(
        store.add_account(new.clone()).await,
        Err(StoreError::NotFound)
    ));
    store.add_domain("example.test").await.expect("domain");
    store.add_account(new.clone()).await.expect("first");
    assert!(matches!(
        store.add_account(new).await,
        Err(StoreError::AlreadyExists)
    ));
}

#[tokio::test]
async fn accounts_are_found_by_id_address_and_domain() {
    let (store, _dir) = store().await;
    store.add_domain("example.test").await.expect("domain");
    let id = store
        .add_account(NewAccount {
            address: "u@Example.Test".into(),
            display_name: Some("U".into()),
            password_hash: "h1".into(),
            scram_sha256: Some("s1".into()),
            quota_bytes: Some(1 << 40),
        })
        .await
        .expect("add");
    let b = account(&store, "b@other.test").await;
    let acc = store.account(id).await.expect("get").expect("present");
    assert_eq!(acc.address, "u@example.test");
    assert_eq!(acc.quota_bytes, Some(1 << 40));
    assert_eq!(acc.display_name.as_deref(), Some("U"));
    assert!(acc.created_at > 0);
    assert!(
        !format!("{acc:?}").contains("h1"),
        "Debug must redact the hash"
    );
    let by_addr = store
        .account_by_address("u@EXAMPLE.test")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(by_addr.id, id);
    assert!(
        store
            .account_by_address("x@example.test")
            .await
            .expect("get")
            .is_none()
    );
    let all: Vec<AccountId> = store
        .accounts(None)
        .await
        .expect("all")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(all, [b, id]);
    let other: Vec<AccountId> = store
        .accounts(Some("other.test"))
        .await
        .expect("some")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(other, [b]);
    assert!(matches!(
        store.accounts(Some("nope.test")).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn set_password_replaces_hash_and_scram() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    store
        .set_password(a, "new", Some("scram"))
        .await
        .expect("set");
    let acc = store.account(a).await.expect("get").expect("present");
    assert_eq!(
        (acc.password_hash.as_str(), acc.scram_sha256.as_deref()),
        ("new", Some("scram"))
    );
    assert!(matches!(
        store.set_password(AccountId(999), "x", None).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn credential_changes_move_the_epoch_and_stamp_the_account() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let b = account(&store, "v@example.test").await;
    let generation = |id| {
        let store = store.clone();
        async move {
            let acc = store.account(id).await.expect("get").expect("present");
            (acc.credential_generation, acc.disabled)
        }
    };
    assert_eq!(
        store.credential_epoch().await.expect("epoch"),
        CredentialEpoch(0)
    );
    assert_eq!(generation(a).await, (CredentialEpoch(0), false));

    store.set_password(a, "new", None).await.expect("set");
    assert_eq!(
        store.credential_epoch().await.expect("epoch"),
        CredentialEpoch(1)
    );
    assert_eq!(generation(a).await, (CredentialEpoch(1), false));
    assert_eq!(generation(b).await, (CredentialEpoch(0), false));

    store.set_disabled(b, true).await.expect("disable");
    assert_eq!(generation(b).await, (CredentialEpoch(2), true));
    store.set_disabled(b, false).await.expect("enable");
    assert_eq!(generation(b).await, (CredentialEpoch(3), false));

    store.remove_account(a).await.expect("remove");
    assert_eq!(
        store.credential_epoch().await.expect("epoch"),
        CredentialEpoch(4)
    );
    assert!(matches!(
        store.set_disabled(a, true).await,
        Err(StoreError::NotFound)
    ));
    // A failed change moves nothing.
    assert_eq!(
        store.credential_epoch().await.expect("epoch"),
        CredentialEpoch(4)
    );
}

#[tokio::test]
async fn remove_account_drops_mailboxes_and_blobs_but_keeps_aliases() {
    let (store, _dir) = store().await;
    let a = account(&store, "u@example.test").await;
    let b = account(&store, "v@example.test").await;
    let (ia, ib) = (inbox(&store, a).await, inbox(&store, b).await);
    let big = large_body(1);
    append(&store, ia, &big, Flags::new()).await;
    append(&store, ib, &big, Flags::new()).await;
    append(&store, ia, b"small only in a", Flags::new()).await;
    store
        .add_alias("alias@example.test", "u@example.test")
        .await
        .expect("alias");
    store.remove_account(a).await.expect("remove");
    assert!(store.account(a).await.expect("get").is_none());
    assert!(store.mailbox(ia).await.expect("get").is_none());
    assert!(matches!(
        store.mailboxes(a).await,
        Err(StoreError::NotFound)
    ));
    let big_id = crate::BlobId::of(&big);
    assert_eq!(
        store
            .blob_info(&big_id)
            .await
            .expect("info")
            .map(|i| i.refcount),
        Some(1)
    );
    assert!(
        store
            .blob_info(&crate::BlobId::of(b"small only in a"))
            .await
            .expect("info")
            .is_none()
    );
    assert_eq!(
        store
            .alias_targets("alias@example.test")
            .await
            .expect("targets"),
        ["u@example.test"]
    );
    assert!(matches!(
        store.remove_account(a).await,
        Err(StoreError::NotFound)
    ));
    store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn aliases_are_added_listed_and_removed() {
    let (store, _dir) = store().await;
    store.add_domain("example.test").await.expect("domain");
    store.add_domain("other.test").await.expect("domain");
    store
        .add_alias("a@example.test", "x@example.test")
        .await
        .expect("add");
    store
        .add_alias("a@example.test", "y@remote.test")
        .await
        .expect("add");
    store
        .add_alias("b@other.test", "x@example.test")
        .await
        .expect("add");
    assert!(matches!(
        store.add_alias("a@example.test", "x@example.test").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.add_alias("a@missing.test", "x@example.test").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .alias_targets("a@EXAMPLE.test")
            .await
            .expect("targets"),
        ["x@example.test", "y@remote.test"]
    );
    assert_eq!(
        store.aliases(Some("other.test")).await.expect("list"),
        [Alias {
            source: "b@other.test".into(),
            target: "x@example.test".into()
        }]
    );
    assert_eq!(store.aliases(None).await.expect("all").len(), 3);
    store
        .remove_alias("a@example.test", Some("x@example.test"))
        .await
        .expect("remove one");
    assert_eq!(
        store
            .alias_targets("a@example.test")
            .await
            .expect("targets"),
        ["y@remote.test"]
    );
    assert!(matches!(
        store
            .remove_alias("a@example.test", Some("x@example.test"))
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .remove_alias("a@example.test", None)
        .await
        .expect("remove all");
    assert!(
        store
            .alias_targets("a@example.test")
            .await
            .expect("targets")
            .is_empty()
    );
    assert!(matches!(
        store.remove_alias("a@example.test", None).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn ids_of_removed_accounts_and_mailboxes_are_never_reused() {
    let (store, _dir) = store().await;
    let first = account(&store, "u@example.test").await;
    let inbox = store
        .mailbox_by_name(first, "INBOX")
        .await
        .expect("get")
        .expect("inbox")
        .id;
    store.remove_account(first).await.expect("remove");
    let second = account(&store, "u@example.test").await;
    assert_ne!(first, second);
    let new_inbox = store
        .mailbox_by_name(second, "INBOX")
        .await
        .expect("get")
        .expect("inbox")
        .id;
    assert_ne!(inbox, new_inbox);
}

#[tokio::test]
async fn send_as_entries_are_listed_and_go_with_their_account_and_domain() {
    let (store, _dir) = store().await;
    let alice = account(&store, "alice@example.test").await;
    let bob = account(&store, "bob@example.test").await;
    store.add_domain("other.test").await.expect("domain");
    store
        .add_send_as(alice, "Sales@EXAMPLE.test")
        .await
        .expect("add");
    store
        .add_send_as(alice, "ceo@other.test")
        .await
        .expect("add");
    assert!(matches!(
        store.add_send_as(alice, "Sales@example.test").await,
        Err(StoreError::AlreadyExists)
    ));
    // The address's domain and the account must exist.
    assert!(matches!(
        store.add_send_as(alice, "x@nowhere.test").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .add_send_as(crate::AccountId(9999), "x@example.test")
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.send_as(alice).await.expect("list"),
        ["Sales@example.test", "ceo@other.test"]
    );
    assert!(
        store
            .may_send_as(alice, "Sales@Example.Test")
            .await
            .expect("check")
    );
    // The local part is compared exactly, like account addresses.
    assert!(
        !store
            .may_send_as(alice, "sales@example.test")
            .await
            .expect("check")
    );
    assert!(
        !store
            .may_send_as(bob, "Sales@example.test")
            .await
            .expect("check")
    );
    store
        .remove_send_as(alice, "Sales@example.test")
        .await
        .expect("remove");
    assert!(matches!(
        store.remove_send_as(alice, "Sales@example.test").await,
        Err(StoreError::NotFound)
    ));
    // Removing the domain removes the entries in it.
    store
        .remove_domain("other.test")
        .await
        .expect("remove domain");
    assert!(store.send_as(alice).await.expect("list").is_empty());
    // Removing the account removes its entries.
    store
        .add_send_as(bob, "team@example.test")
        .await
        .expect("add");
    store.remove_account(bob).await.expect("remove account");
    assert!(store.send_as(bob).await.expect("list").is_empty());
    assert!(
        !store
            .may_send_as(bob, "team@example.test")
            .await
            .expect("check")
    );
}
