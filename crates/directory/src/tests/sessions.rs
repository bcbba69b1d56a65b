//! Live sessions end when their account's credentials change, and only theirs.

use super::*;

#[tokio::test]
async fn password_change_revokes_that_accounts_sessions_only() {
    let (_dir, d, alice, bob) = directory().await;
    let alice_imap = d.open_session(&alice);
    let alice_pop = d.open_session(&alice);
    let bob_imap = d.open_session(&bob);
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 0);

    d.set_password("alice@example.test", &secret("a new password"))
        .await
        .unwrap();
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 2);
    assert!(alice_imap.is_revoked() && alice_pop.is_revoked());
    assert!(!bob_imap.is_revoked());
    // The revoked future completes; a later poll does not count them again.
    alice_imap.revoked().await;
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 0);

    // A login with the new password is a session at the new generation, left alone.
    let again = d
        .authenticate("alice@example.test", &secret("a new password"), IP)
        .await
        .unwrap();
    let fresh = d.open_session(&again);
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 0);
    assert!(!fresh.is_revoked());
}

#[tokio::test]
async fn disabling_revokes_sessions_and_refuses_logins_until_enabled() {
    let (_dir, d, alice, _bob) = directory().await;
    let live = d.open_session(&alice);
    d.set_disabled("alice@example.test", true).await.unwrap();
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 1);
    assert!(live.is_revoked());
    assert!(matches!(
        d.authenticate("alice@example.test", &secret(PW), IP).await,
        Err(AuthError::Failed)
    ));
    d.set_disabled("alice@example.test", false).await.unwrap();
    d.authenticate("alice@example.test", &secret(PW), IP)
        .await
        .unwrap();
}

#[tokio::test]
async fn removal_revokes_sessions() {
    let (_dir, d, alice, bob) = directory().await;
    let live = d.open_session(&alice);
    let other = d.open_session(&bob);
    d.remove_user("alice@example.test").await.unwrap();
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 1);
    assert!(live.is_revoked() && !other.is_revoked());
}

#[tokio::test]
async fn a_session_registered_after_the_change_was_polled_is_still_checked() {
    let (_dir, d, alice, _bob) = directory().await;
    // The login read the account before the change ...
    d.set_password("alice@example.test", &secret("a new password"))
        .await
        .unwrap();
    // ... the poller saw the new epoch while the session was not registered yet ...
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 0);
    // ... and the session registers with the old generation: the next poll ends it although
    // the epoch did not move since.
    let live = d.open_session(&alice);
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 1);
    assert!(live.is_revoked());
}

#[tokio::test]
async fn dropped_sessions_leave_the_registry() {
    let (_dir, d, alice, _bob) = directory().await;
    drop(d.open_session(&alice));
    d.set_password("alice@example.test", &secret("a new password"))
        .await
        .unwrap();
    assert_eq!(d.revoke_stale_sessions().await.unwrap(), 0);
}
