//! The two ways to open a store (security issue 17): the owner of the data directory, which
//! holds its lock and alone touches blob files, and a client beside it, which never does.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{account, append, inbox, large_body, options};
use crate::{BlobId, Flags, Store, StoreError, StoreOptions, StoreRole};

fn client(dir: &TempDir) -> StoreOptions {
    StoreOptions {
        role: StoreRole::Client,
        ..options(dir)
    }
}

/// Where the file of `id` lives under the data directory's blob directory.
fn blob_path(dir: &Path, id: &BlobId) -> PathBuf {
    dir.join("blobs")
        .join(&id.as_str()[..2])
        .join(&id.as_str()[2..])
}

/// Every file in the blob directory except the temp directory's.
fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir.join("blobs")).expect("blob dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() && !path.ends_with("tmp") {
            for file in std::fs::read_dir(&path).expect("prefix dir") {
                found.push(file.expect("entry").path());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn a_second_owner_is_refused_with_the_owners_pid_until_the_first_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(options(&dir)).await.expect("open");
    match Store::open(options(&dir)).await {
        Err(StoreError::Locked { path, pid }) => {
            assert_eq!(path, dir.path().join("tern.lock"));
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("a second owner opened: {other:?}"),
    }
    // A client needs no lock.
    let side = Store::open(client(&dir))
        .await
        .expect("client beside the owner");
    side.close().await;
    first.close().await;
    let second = Store::open(options(&dir)).await.expect("owner after close");
    second.close().await;
}

#[tokio::test]
async fn a_client_open_leaves_temp_files_and_unreferenced_blob_files_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = Store::open(options(&dir)).await.expect("open");
    // What a running owner has on disk between writing a file and committing its row.
    let temp = dir.path().join("blobs/tmp/1-0-in-progress");
    std::fs::write(&temp, b"being written").expect("temp file");
    let renamed = BlobId::of(b"renamed, not yet committed");
    std::fs::write(
        blob_path(dir.path(), &renamed),
        b"renamed, not yet committed",
    )
    .expect("blob file");
    let side = Store::open(client(&dir)).await.expect("client");
    side.close().await;
    assert!(temp.exists(), "a client removed the owner's temp file");
    assert!(
        blob_path(dir.path(), &renamed).exists(),
        "a client removed a blob file the owner is about to commit"
    );
    owner.close().await;
}

#[tokio::test]
async fn a_client_stores_large_blobs_inline_and_leaves_released_files_for_the_owner_to_unlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = Store::open(options(&dir)).await.expect("open");
    let a = account(&owner, "u@example.test").await;
    let id = inbox(&owner, a).await;
    let first = large_body(1);
    let u = append(&owner, id, &first, Flags::new()).await;
    let first_file = blob_path(dir.path(), &BlobId::of(&first));
    assert!(first_file.exists());

    let side = Store::open(client(&dir)).await.expect("client");
    // Released to zero by the client: the row goes, the file stays (the owner could be
    // renaming a delivery of the same content into place right now).
    side.remove_messages(id, &[u]).await.expect("remove");
    assert_eq!(
        side.blob_info(&BlobId::of(&first)).await.expect("info"),
        None
    );
    assert!(first_file.exists(), "a client unlinked a blob file");
    // A large blob written by the client lives in the database, not in a file.
    let second = large_body(2);
    let v = append(&side, id, &second, Flags::new()).await;
    let info = side
        .blob_info(&BlobId::of(&second))
        .await
        .expect("info")
        .expect("stored");
    assert!(info.inline, "a client wrote a blob file");
    assert_eq!(blob_files(dir.path()), vec![first_file.clone()]);
    side.close().await;
    let m = owner.message(id, v).await.expect("get").expect("present");
    assert_eq!(owner.read_blob(&m.blob).await.expect("read"), second);
    // The owner's next batch unlinks the file the client released.
    assert!(first_file.exists());
    owner.add_domain("next.test").await.expect("a write");
    assert!(!first_file.exists(), "the owner left the released file");
    assert!(blob_files(dir.path()).is_empty());
    owner.check_integrity().await.expect("integrity");
    owner.close().await;
}

#[tokio::test]
async fn a_file_the_client_released_stays_when_the_owner_stores_the_same_content_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = Store::open(options(&dir)).await.expect("open");
    let a = account(&owner, "u@example.test").await;
    let id = inbox(&owner, a).await;
    let body = large_body(3);
    let u = append(&owner, id, &body, Flags::new()).await;
    let side = Store::open(client(&dir)).await.expect("client");
    side.remove_messages(id, &[u]).await.expect("remove");
    side.close().await;
    // Delivered again before the owner took the release: the same path, now referenced.
    let v = append(&owner, id, &body, Flags::new()).await;
    owner.add_domain("next.test").await.expect("a write");
    let m = owner.message(id, v).await.expect("get").expect("present");
    assert_eq!(owner.read_blob(&m.blob).await.expect("read"), body);
    owner.check_integrity().await.expect("integrity");
    owner.close().await;
}
