//! Directory tests against a real store in a temporary directory.

use std::net::{IpAddr, Ipv4Addr};

use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::*;
use crate::password::{hmac_sha256, sha256};

const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const PW: &str = "correct horse battery";

fn test_config() -> DirectoryConfig {
    DirectoryConfig {
        // Cheap hashes: these tests are about the directory, not argon2's cost.
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        ..DirectoryConfig::default()
    }
}

async fn directory_with(config: DirectoryConfig) -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tern_store::StoreOptions::new(dir.path()))
        .await
        .unwrap();
    (dir, Directory::new(store, config).unwrap())
}

/// A directory with example.test, alice@example.test and bob@example.test.
async fn directory() -> (tempfile::TempDir, Directory, Account, Account) {
    let (dir, d) = directory_with(test_config()).await;
    d.add_domain("example.test").await.unwrap();
    let alice = d
        .add_user("alice@example.test", &secret(PW), Some("Alice"))
        .await
        .unwrap();
    let bob = d
        .add_user("bob@example.test", &secret(PW), None)
        .await
        .unwrap();
    (dir, d, alice, bob)
}

fn secret(s: &str) -> Secret {
    Secret::new(s)
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

async fn resolve(d: &Directory, s: &str) -> Recipient {
    d.resolve_recipient(&addr(s)).await.unwrap()
}

#[tokio::test]
async fn domains_are_normalised_unique_and_removable_only_when_empty() {
    let (_dir, d, _, _) = directory().await;
    assert!(matches!(
        d.add_domain("EXAMPLE.test.").await,
        Err(DirectoryError::AlreadyExists(name)) if name == "example.test"
    ));
    assert!(matches!(
        d.add_domain("bad_domain").await,
        Err(DirectoryError::InvalidDomain { .. })
    ));
    d.add_domain("Other.TEST").await.unwrap();
    let names: Vec<String> = d
        .domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["example.test", "other.test"]);
    assert!(
        d.is_local_domain(&"OTHER.test".parse().unwrap())
            .await
            .unwrap()
    );
    assert!(matches!(
        d.remove_domain("example.test").await,
        Err(DirectoryError::DomainInUse(_))
    ));
    assert!(matches!(
        d.remove_domain("nowhere.test").await,
        Err(DirectoryError::UnknownDomain(_))
    ));
    d.remove_domain("other.test").await.unwrap();
    assert!(
        !d.is_local_domain(&"other.test".parse().unwrap())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn add_user_validates_address_domain_duplicates_and_password() {
    let (_dir, d, alice, _) = directory().await;
    assert_eq!(alice.address, "alice@example.test");
    assert_eq!(alice.display_name.as_deref(), Some("Alice"));
    assert!(alice.password_hash.starts_with("$argon2id$"));
    assert!(
        alice
            .scram_sha256
            .as_deref()
            .is_some_and(|s| s.starts_with("SCRAM-SHA-256$10000:"))
    );

    let err = d
        .add_user("carol@example.org", &secret(PW), None)
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::UnknownDomain(_)));
    assert_eq!(
        err.to_string(),
        "unknown domain example.org: add it first with `tern domain add example.org`"
    );
    let err = d
        .add_user("ALICE@Example.Test", &secret(PW), None)
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::AlreadyExists(a) if a == "alice@example.test"));
    assert!(matches!(
        d.add_user("not an address", &secret(PW), None).await,
        Err(DirectoryError::InvalidAddress { .. })
    ));
    assert!(matches!(
        d.add_user("carol@example.test", &secret(""), None).await,
        Err(DirectoryError::WeakPassword(PasswordError::Empty))
    ));
    assert!(matches!(
        d.add_user("carol@example.test", &secret("short"), None)
            .await,
        Err(DirectoryError::WeakPassword(PasswordError::TooShort {
            min: 8
        }))
    ));
    assert!(matches!(
        d.add_user("carol@example.test", &secret("tab\there!"), None)
            .await,
        Err(DirectoryError::WeakPassword(
            PasswordError::ProhibitedCharacter
        ))
    ));
    assert!(matches!(
        d.add_user("carol@example.test", &secret(PW), Some("Bad\nName"))
            .await,
        Err(DirectoryError::InvalidDisplayName(_))
    ));
    let users: Vec<String> = d
        .users(None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.address)
        .collect();
    assert_eq!(users, ["alice@example.test", "bob@example.test"]);
    assert!(matches!(
        d.users(Some("nowhere.test")).await,
        Err(DirectoryError::UnknownDomain(_))
    ));
}

#[tokio::test]
async fn aliases_and_accounts_never_share_an_address() {
    let (_dir, d, _, _) = directory().await;
    assert!(matches!(
        d.add_alias("alice@example.test", "bob@example.test").await,
        Err(DirectoryError::AddressIsAccount(_))
    ));
    d.add_alias("sales@example.test", "bob@example.test")
        .await
        .unwrap();
    assert!(matches!(
        d.add_user("sales@example.test", &secret(PW), None).await,
        Err(DirectoryError::AddressIsAlias(_))
    ));
    assert!(matches!(
        d.add_alias("sales@example.test", "BOB@example.test").await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    assert!(matches!(
        d.add_alias("x@example.test", "x@example.test").await,
        Err(DirectoryError::InvalidAlias(_))
    ));
    assert!(matches!(
        d.add_alias("x@elsewhere.test", "bob@example.test").await,
        Err(DirectoryError::UnknownDomain(_))
    ));
    assert_eq!(d.aliases(Some("example.test")).await.unwrap().len(), 1);
    assert!(matches!(
        d.remove_alias("sales@example.test", Some("alice@example.test"))
            .await,
        Err(DirectoryError::UnknownAlias(_))
    ));
    d.remove_alias("sales@example.test", None).await.unwrap();
    assert!(d.aliases(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn resolution_prefers_account_then_alias_then_subaddress_then_catch_all() {
    let (_dir, d, alice, bob) = directory().await;
    assert_eq!(
        resolve(&d, "Alice@EXAMPLE.test").await,
        Recipient::Local(vec![alice.id])
    );
    assert_eq!(resolve(&d, "nobody@example.test").await, Recipient::Unknown);
    assert_eq!(
        resolve(&d, "alice@elsewhere.test").await,
        Recipient::NotLocal
    );

    d.add_alias("sales@example.test", "bob@example.test")
        .await
        .unwrap();
    d.add_alias("sales@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "sales@example.test").await,
        Recipient::Local(vec![alice.id, bob.id])
    );

    // Sub-addresses, for accounts and aliases.
    assert_eq!(
        resolve(&d, "alice+news@example.test").await,
        Recipient::Local(vec![alice.id])
    );
    assert_eq!(
        resolve(&d, "sales+eu@example.test").await,
        Recipient::Local(vec![alice.id, bob.id])
    );
    // An exact alias wins over sub-address stripping.
    d.add_alias("alice+boss@example.test", "bob@example.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "alice+boss@example.test").await,
        Recipient::Local(vec![bob.id])
    );

    // Catch-all takes what nothing else matched.
    d.set_catch_all("example.test", Some("bob@example.test"))
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "nobody@example.test").await,
        Recipient::Local(vec![bob.id])
    );
    assert_eq!(
        resolve(&d, "alice+x@example.test").await,
        Recipient::Local(vec![alice.id])
    );
    d.set_catch_all("example.test", None).await.unwrap();
    assert_eq!(resolve(&d, "nobody@example.test").await, Recipient::Unknown);
}

#[tokio::test]
async fn postmaster_of_every_hosted_domain_is_accepted() {
    // RFC 5321 §4.5.1. Only the first domain gets a postmaster account (at first start).
    let (_dir, d) = directory_with(test_config()).await;
    for domain in ["b.test", "a.test", "c.test"] {
        d.add_domain(domain).await.unwrap();
    }
    assert_eq!(resolve(&d, "postmaster@a.test").await, Recipient::Unknown);
    let pm = d
        .add_user("postmaster@b.test", &secret(PW), None)
        .await
        .unwrap();
    for rcpt in [
        "postmaster@a.test",
        "PostMaster@c.test",
        "postmaster@b.test",
    ] {
        assert_eq!(
            resolve(&d, rcpt).await,
            Recipient::Local(vec![pm.id]),
            "{rcpt}"
        );
    }
    // Other local parts stay unknown; a domain's own postmaster alias wins.
    assert_eq!(resolve(&d, "abuse@a.test").await, Recipient::Unknown);
    let own = d.add_user("admin@c.test", &secret(PW), None).await.unwrap();
    d.add_alias("postmaster@c.test", "admin@c.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "postmaster@c.test").await,
        Recipient::Local(vec![own.id])
    );
    // The first domain by name with a postmaster is a.test once it has one.
    let a = d
        .add_user("postmaster@a.test", &secret(PW), None)
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "postmaster@b.test").await,
        Recipient::Local(vec![pm.id])
    );
    d.remove_user("postmaster@b.test").await.unwrap();
    assert_eq!(
        resolve(&d, "postmaster@b.test").await,
        Recipient::Local(vec![a.id])
    );
}

#[tokio::test]
async fn subaddressing_can_be_turned_off() {
    let (_dir, d) = directory_with(DirectoryConfig {
        subaddress_separator: None,
        ..test_config()
    })
    .await;
    d.add_domain("example.test").await.unwrap();
    d.add_user("alice@example.test", &secret(PW), None)
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "alice+x@example.test").await,
        Recipient::Unknown
    );
}

#[tokio::test]
async fn alias_chains_resolve_and_loops_terminate() {
    let (_dir, d, alice, bob) = directory().await;
    d.add_alias("a@example.test", "b@example.test")
        .await
        .unwrap();
    d.add_alias("b@example.test", "c@example.test")
        .await
        .unwrap();
    d.add_alias("c@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "a@example.test").await,
        Recipient::Local(vec![alice.id])
    );

    // x -> y -> x, and y -> bob: the loop is cut, bob still gets the mail once.
    d.add_alias("x@example.test", "y@example.test")
        .await
        .unwrap();
    d.add_alias("y@example.test", "x@example.test")
        .await
        .unwrap();
    assert_eq!(resolve(&d, "x@example.test").await, Recipient::Unknown);
    d.add_alias("y@example.test", "bob@example.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "x@example.test").await,
        Recipient::Local(vec![bob.id])
    );

    // Two paths to alice deliver once.
    d.add_alias("team@example.test", "alice@example.test")
        .await
        .unwrap();
    d.add_alias("team@example.test", "a@example.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "team@example.test").await,
        Recipient::Local(vec![alice.id])
    );

    // A chain longer than the depth limit is not followed to the end.
    for i in 0..10 {
        d.add_alias(
            &format!("l{i}@example.test"),
            &format!("l{}@example.test", i + 1),
        )
        .await
        .unwrap();
    }
    d.add_alias("l10@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "l3@example.test").await,
        Recipient::Local(vec![alice.id])
    );
    assert_eq!(resolve(&d, "l0@example.test").await, Recipient::Unknown);
}

#[tokio::test]
async fn external_alias_targets_and_catch_all_are_forwarded() {
    let (_dir, d, alice, _) = directory().await;
    d.add_alias("list@example.test", "alice@example.test")
        .await
        .unwrap();
    d.add_alias("list@example.test", "Friend@Remote.test")
        .await
        .unwrap();
    d.add_alias("fwd@example.test", "friend@remote.test")
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "list@example.test").await,
        Recipient::Forward {
            local: vec![alice.id],
            external: vec![addr("friend@remote.test")]
        }
    );
    assert_eq!(
        resolve(&d, "fwd+tag@example.test").await,
        Recipient::Forward {
            local: vec![],
            external: vec![addr("friend@remote.test")]
        }
    );
    d.add_domain("other.test").await.unwrap();
    d.set_catch_all("other.test", Some("archive@remote.test"))
        .await
        .unwrap();
    assert_eq!(
        resolve(&d, "anything@other.test").await,
        Recipient::Forward {
            local: vec![],
            external: vec![addr("archive@remote.test")]
        }
    );
    // A local catch-all target must exist.
    assert!(matches!(
        d.set_catch_all("example.test", Some("ghost@example.test"))
            .await,
        Err(DirectoryError::UnknownUser(_))
    ));
    assert!(matches!(
        d.set_catch_all("nowhere.test", Some("alice@example.test"))
            .await,
        Err(DirectoryError::UnknownDomain(_))
    ));
}

#[tokio::test]
async fn owns_address_covers_own_subaddresses_and_the_send_as_list_only() {
    let (_dir, d, alice, bob) = directory().await;
    d.add_domain("other.test").await.unwrap();
    d.add_alias("sales@example.test", "alice@example.test")
        .await
        .unwrap();
    d.add_alias("team@example.test", "alice@example.test")
        .await
        .unwrap();
    d.add_alias("team@example.test", "bob@example.test")
        .await
        .unwrap();
    d.set_catch_all("example.test", Some("alice@example.test"))
        .await
        .unwrap();
    d.add_send_as("alice@example.test", "Sales@Example.test")
        .await
        .unwrap();
    d.add_send_as("ALICE@example.test", "ceo@other.test")
        .await
        .unwrap();
    for owned in [
        "alice@example.test",
        "ALICE@example.test",
        "alice+tag@example.test",
        "sales@example.test",
        "ceo@other.test",
    ] {
        assert!(
            d.owns_address(alice.id, &addr(owned)).await.unwrap(),
            "{owned}"
        );
    }
    for foreign in [
        "bob@example.test",
        "bob+alice@example.test",
        "random@example.test",
        // An alias reaching alice is not hers to send as unless listed, nor a sub-address of
        // a listed one.
        "team@example.test",
        "sales+x@example.test",
        "alice@remote.test",
        "alice@other.test",
    ] {
        assert!(
            !d.owns_address(alice.id, &addr(foreign)).await.unwrap(),
            "{foreign}"
        );
    }
    assert!(
        !d.owns_address(bob.id, &addr("sales@example.test"))
            .await
            .unwrap()
    );
    assert_eq!(
        d.send_as("alice@example.test").await.unwrap(),
        ["ceo@other.test", "sales@example.test"]
    );
    d.remove_send_as("alice@example.test", "CEO@other.test")
        .await
        .unwrap();
    assert!(
        !d.owns_address(alice.id, &addr("ceo@other.test"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn send_as_entries_need_a_user_and_a_hosted_domain_and_are_not_duplicated() {
    let (_dir, d, _alice, _bob) = directory().await;
    assert!(matches!(
        d.add_send_as("ghost@example.test", "x@example.test").await,
        Err(DirectoryError::UnknownUser(_))
    ));
    assert!(matches!(
        d.add_send_as("alice@example.test", "ceo@remote.test").await,
        Err(DirectoryError::UnknownDomain(_))
    ));
    assert!(matches!(
        d.add_send_as("alice@example.test", "not an address").await,
        Err(DirectoryError::InvalidAddress { .. })
    ));
    // Her own address and sub-addresses are hers already.
    assert!(matches!(
        d.add_send_as("alice@example.test", "alice+x@example.test")
            .await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    d.add_send_as("alice@example.test", "bob@example.test")
        .await
        .unwrap();
    assert!(matches!(
        d.add_send_as("alice@example.test", "BOB@example.test")
            .await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    assert!(matches!(
        d.remove_send_as("alice@example.test", "x@example.test")
            .await,
        Err(DirectoryError::NotSendAs { .. })
    ));
    // The list goes with the account.
    d.remove_user("alice@example.test").await.unwrap();
    assert!(matches!(
        d.send_as("alice@example.test").await,
        Err(DirectoryError::UnknownUser(_))
    ));
}

#[tokio::test]
async fn authenticate_accepts_the_password_and_hides_unknown_users() {
    let (_dir, d, alice, _) = directory().await;
    let ok = d
        .authenticate("Alice@Example.Test", &secret(PW), IP)
        .await
        .unwrap();
    assert_eq!(ok.id, alice.id);
    assert_eq!(
        d.authenticate("alice@example.test", &secret("wrong password"), IP)
            .await,
        Err(AuthError::Failed)
    );
    let before = d.stats().password_verifications;
    assert_eq!(
        d.authenticate("ghost@example.test", &secret(PW), IP).await,
        Err(AuthError::Failed)
    );
    assert_eq!(
        d.authenticate("not an address", &secret(PW), IP).await,
        Err(AuthError::Failed)
    );
    // Unknown users still cost an argon2 verification (against the dummy hash).
    assert_eq!(d.stats().password_verifications, before + 2);
    assert_eq!(d.stats().auth_failures, 3);
}

#[tokio::test]
async fn second_login_is_served_from_the_cache_and_password_change_invalidates_it() {
    let (_dir, d, _, _) = directory().await;
    d.authenticate("alice@example.test", &secret(PW), IP)
        .await
        .unwrap();
    assert_eq!(d.stats().password_verifications, 1);
    d.authenticate("alice@example.test", &secret(PW), IP)
        .await
        .unwrap();
    assert_eq!(
        d.stats().password_verifications,
        1,
        "second login skipped argon2"
    );
    assert_eq!(d.stats().cache_hits, 1);
    // A wrong password never hits the cache.
    assert!(
        d.authenticate("alice@example.test", &secret("nope nope"), IP)
            .await
            .is_err()
    );
    assert_eq!(d.stats().password_verifications, 2);

    d.set_password("alice@example.test", &secret("new password!"))
        .await
        .unwrap();
    assert_eq!(
        d.authenticate("alice@example.test", &secret(PW), IP).await,
        Err(AuthError::Failed)
    );
    d.authenticate("alice@example.test", &secret("new password!"), IP)
        .await
        .unwrap();
    assert_eq!(d.stats().password_verifications, 4);
    assert!(matches!(
        d.set_password("ghost@example.test", &secret(PW)).await,
        Err(DirectoryError::UnknownUser(_))
    ));
}

#[tokio::test]
async fn removed_user_can_no_longer_log_in_or_receive() {
    let (_dir, d, _, _) = directory().await;
    d.authenticate("alice@example.test", &secret(PW), IP)
        .await
        .unwrap();
    d.remove_user("alice@example.test").await.unwrap();
    assert_eq!(
        d.authenticate("alice@example.test", &secret(PW), IP).await,
        Err(AuthError::Failed)
    );
    assert_eq!(resolve(&d, "alice@example.test").await, Recipient::Unknown);
    assert!(matches!(
        d.remove_user("alice@example.test").await,
        Err(DirectoryError::UnknownUser(_))
    ));
}

/// A directory with alice@example.test and throttling at `account_limit` per (account,
/// address) and `ip_limit` per address, with a 50 ms first delay.
async fn throttled_directory(account_limit: u32, ip_limit: u32) -> (tempfile::TempDir, Directory) {
    let (dir, d) = directory_with(DirectoryConfig {
        throttle: ThrottleConfig {
            account_limit,
            ip_limit,
            base_delay: std::time::Duration::from_millis(50),
            ..ThrottleConfig::default()
        },
        ..test_config()
    })
    .await;
    d.add_domain("example.test").await.unwrap();
    d.add_user("alice@example.test", &secret(PW), None)
        .await
        .unwrap();
    (dir, d)
}

async fn guess(d: &Directory, user: &str, password: &str, ip: IpAddr) {
    assert_eq!(
        d.authenticate(user, &secret(password), ip).await,
        Err(AuthError::Failed)
    );
}

#[tokio::test]
async fn the_right_password_from_another_address_logs_in_while_one_address_keeps_failing() {
    let (_dir, d) = throttled_directory(3, 0).await;
    for i in 0..6 {
        guess(&d, "alice@example.test", &format!("guess {i}"), IP).await;
    }
    let other_ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let started = std::time::Instant::now();
    let account = d
        .authenticate("alice@example.test", &secret(PW), other_ip)
        .await
        .unwrap();
    assert_eq!(account.address, "alice@example.test");
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

#[tokio::test]
async fn a_few_wrong_passwords_then_the_right_one_logs_in_after_a_short_delay() {
    let (_dir, d) = throttled_directory(3, 20).await;
    for i in 0..3 {
        guess(&d, "alice@example.test", &format!("guess {i}"), IP).await;
    }
    let started = std::time::Instant::now();
    d.authenticate("alice@example.test", &secret(PW), IP)
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    // The success cleared the tarpit: the next logins are not delayed.
    for _ in 0..3 {
        d.authenticate("alice@example.test", &secret(PW), IP)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_blocked_address_is_refused_even_with_the_right_password() {
    let (_dir, d) = throttled_directory(0, 3).await;
    for user in ["admin", "root", "test"] {
        guess(&d, &format!("{user}@example.test"), PW, IP).await;
    }
    assert!(matches!(
        d.authenticate("alice@example.test", &secret(PW), IP).await,
        Err(AuthError::Throttled { retry_after }) if retry_after > std::time::Duration::from_secs(299)
    ));
    let other_ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    d.authenticate("alice@example.test", &secret(PW), other_ip)
        .await
        .unwrap();
}

#[tokio::test]
async fn sasl_plain_with_and_without_initial_response() {
    let (_dir, d, alice, _) = directory().await;
    let mut auth = d.sasl(Mechanism::Plain, IP);
    assert_eq!(auth.step(None).await, Ok(SaslStep::Challenge(Vec::new())));
    let message = format!("\0alice@example.test\0{PW}");
    let Ok(SaslStep::Success {
        account,
        final_data,
    }) = auth.step(Some(message.as_bytes())).await
    else {
        panic!("PLAIN failed");
    };
    assert_eq!((account.id, final_data), (alice.id, None));

    let mut auth = d.sasl(Mechanism::from_name("plain").unwrap(), IP);
    let message = format!("bob@example.test\0alice@example.test\0{PW}");
    assert_eq!(
        auth.step(Some(message.as_bytes())).await,
        Err(AuthError::Failed)
    );
    // The exchange is over after an error.
    assert!(matches!(
        auth.step(Some(b"x")).await,
        Err(AuthError::Malformed(_))
    ));

    let mut auth = d.sasl(Mechanism::Plain, IP);
    assert!(matches!(
        auth.step(Some(b"no nuls")).await,
        Err(AuthError::Malformed(_))
    ));
    let cancelled = decode_base64_response(b"*").map_err(AuthError::from);
    assert_eq!(cancelled, Err(AuthError::Cancelled));
}

#[tokio::test]
async fn sasl_login_asks_username_and_password() {
    let (_dir, d, alice, _) = directory().await;
    let mut auth = d.sasl(Mechanism::Login, IP);
    assert_eq!(
        auth.step(None).await,
        Ok(SaslStep::Challenge(b"Username:".to_vec()))
    );
    assert_eq!(
        auth.step(Some(b"alice@example.test")).await,
        Ok(SaslStep::Challenge(b"Password:".to_vec()))
    );
    let Ok(SaslStep::Success { account, .. }) = auth.step(Some(PW.as_bytes())).await else {
        panic!("LOGIN failed");
    };
    assert_eq!(account.id, alice.id);

    let mut auth = d.sasl(Mechanism::Login, IP);
    auth.step(Some(b"alice@example.test")).await.unwrap();
    assert_eq!(auth.step(Some(b"wrong!")).await, Err(AuthError::Failed));
}

/// A minimal SCRAM-SHA-256 client (RFC 5802 §3) for driving the server end to end.
async fn scram_login(d: &Directory, user: &str, password: &str) -> Result<SaslStep, AuthError> {
    let mut auth = d.sasl(Mechanism::ScramSha256, IP);
    assert_eq!(auth.step(None).await, Ok(SaslStep::Challenge(Vec::new())));
    let bare = format!("n={user},r=clientnonce123");
    let SaslStep::Challenge(server_first) =
        auth.step(Some(format!("n,,{bare}").as_bytes())).await?
    else {
        panic!("expected server-first");
    };
    let server_first = String::from_utf8(server_first).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for attr in server_first.split(',') {
        match attr.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = B64.decode(v).unwrap(),
            ("i=", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(nonce.starts_with("clientnonce123") && nonce.len() > 14);
    let mut salted = [0u8; 32];
    let iterations = std::num::NonZeroU32::new(iterations).unwrap();
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = hmac_sha256(&salted, b"Client Key");
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = hmac_sha256(&sha256(&client_key), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let client_final = format!("{without_proof},p={}", B64.encode(proof));
    let step = auth.step(Some(client_final.as_bytes())).await?;
    if let SaslStep::Success { final_data, .. } = &step {
        let server_key = hmac_sha256(&salted, b"Server Key");
        let expected = format!(
            "v={}",
            B64.encode(hmac_sha256(&server_key, auth_message.as_bytes()))
        );
        assert_eq!(final_data.as_deref(), Some(expected.as_bytes()));
    }
    Ok(step)
}

#[tokio::test]
async fn sasl_scram_sha256_end_to_end() {
    let (_dir, d, alice, _) = directory().await;
    let Ok(SaslStep::Success { account, .. }) = scram_login(&d, "alice@example.test", PW).await
    else {
        panic!("SCRAM failed");
    };
    assert_eq!(account.id, alice.id);
    assert_eq!(
        scram_login(&d, "alice@example.test", "wrong").await,
        Err(AuthError::Failed)
    );
    assert_eq!(
        scram_login(&d, "ghost@example.test", PW).await,
        Err(AuthError::Failed)
    );
    // The new password works over SCRAM too.
    d.set_password("alice@example.test", &secret("new password!"))
        .await
        .unwrap();
    assert!(matches!(
        scram_login(&d, "alice@example.test", "new password!").await,
        Ok(SaslStep::Success { .. })
    ));
    assert_eq!(
        d.stats().password_verifications,
        0,
        "SCRAM never runs argon2"
    );
}

mod hash_queue;
mod parallel_guesses;
mod sessions;
