//! `Filter` against a real temporary store.

use std::time::Duration;

use mail_parser::MessageParser;
use tern_common::config::{ClamdAddress, ClamdFailure, FilterConfig};
use tern_store::{NewAccount, StoreOptions};

use super::*;

async fn store() -> (Store, AccountId, AccountId, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreOptions::new(dir.path()))
        .await
        .expect("open");
    store.add_domain("tern.test").await.expect("domain");
    let mut ids = Vec::new();
    for address in ["ann@tern.test", "bob@tern.test"] {
        ids.push(
            store
                .add_account(NewAccount {
                    address: address.into(),
                    password_hash: "x".into(),
                    ..Default::default()
                })
                .await
                .expect("account"),
        );
    }
    (store, ids[0], ids[1], dir)
}

fn filter(store: &Store, config: FilterConfig) -> Filter {
    Filter::new(
        config,
        store.clone(),
        "mx.tern.test",
        &["tern.test".to_owned()],
    )
}

fn spam(i: usize) -> Vec<u8> {
    format!(
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <s{i}@bulk.test>\r\n\
         From: Deals <offers@bulk.test>\r\nSubject: cheap pills offer {i}\r\n\r\n\
         Buy cheap pills now, limited offer, click here to unsubscribe. Winner {i}!\r\n"
    )
    .into_bytes()
}

fn ham(i: usize) -> Vec<u8> {
    format!(
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <h{i}@work.test>\r\n\
         From: Carol <carol@work.test>\r\nSubject: project meeting {i}\r\n\r\n\
         The project report for the meeting is attached; lunch schedule follows. Item {i}.\r\n"
    )
    .into_bytes()
}

async fn train_global(f: &Filter, n: usize) {
    let spams: Vec<Vec<u8>> = (0..n).map(spam).collect();
    let hams: Vec<Vec<u8>> = (0..n).map(ham).collect();
    let mut batch: Vec<(&[u8], SpamClass)> = Vec::new();
    batch.extend(spams.iter().map(|m| (m.as_slice(), SpamClass::Spam)));
    batch.extend(hams.iter().map(|m| (m.as_slice(), SpamClass::Ham)));
    let out = f
        .learn_batch(TokenScope::Global, &batch)
        .await
        .expect("learn");
    assert!(out.iter().all(|o| *o == Some(LearnOutcome::Learned)));
}

async fn check(f: &Filter, raw: &[u8], origin: Origin, accounts: &[AccountId]) -> Verdict {
    let parsed = MessageParser::default().parse(raw);
    let input = MessageInput::new(raw, parsed.as_ref(), origin)
        .client_ip("192.0.2.1".parse().expect("ip"))
        .envelope_sender(Some("offers@bulk.test"));
    f.check(&input, accounts).await
}

#[tokio::test]
async fn an_untrained_filter_scores_rules_only_and_delivers_to_the_inbox() {
    let (store, ann, _, _dir) = store().await;
    let f = filter(&store, FilterConfig::default());
    let v = check(&f, &spam(1000), Origin::Mx, &[ann]).await;
    assert_eq!(v.refusal, None);
    assert_eq!(v.accounts[0].action, Action::Inbox);
    assert_eq!(v.accounts[0].bayes, None);
    assert_eq!(
        v.fields,
        "X-Spam-Score: 0.0\r\nX-Spam-Status: No, score=0.0 required=5.0 tests=none bayes=untrained\r\n"
    );
}

#[tokio::test]
async fn trained_spam_goes_to_junk_and_ham_to_the_inbox() {
    let (store, ann, bob, _dir) = store().await;
    let f = filter(&store, FilterConfig::default());
    train_global(&f, 25).await;
    let v = check(&f, &spam(1000), Origin::Mx, &[ann, bob, ann]).await;
    assert_eq!(v.accounts.len(), 2, "duplicates are ignored");
    assert!(v.is_junk(ann) && v.is_junk(bob), "{v:?}");
    assert!(v.fields.contains("X-Spam-Status: Yes"), "{}", v.fields);
    assert_eq!(v.refusal, None, "junk, not reject");
    let v = check(&f, &ham(1000), Origin::Mx, &[ann]).await;
    assert!(!v.is_junk(ann), "{v:?}");
    assert!(v.accounts[0].score < 0.0, "confident ham subtracts points");
}

#[tokio::test]
async fn allow_list_beats_junk_and_block_list_refuses() {
    let (store, ann, bob, _dir) = store().await;
    let f = filter(&store, FilterConfig::default());
    train_global(&f, 25).await;
    store
        .set_spam_sender(ann, "bulk.test", Some(SenderAction::Allow))
        .await
        .expect("allow");
    let v = check(&f, &spam(1000), Origin::Mx, &[ann, bob]).await;
    assert!(!v.is_junk(ann), "allow-listed");
    assert!(v.is_junk(bob));
    store
        .set_spam_sender(bob, "offers@bulk.test", Some(SenderAction::Block))
        .await
        .expect("block");
    let v = check(&f, &ham(1000), Origin::Mx, &[bob]).await;
    assert!(matches!(v.refusal, Some(Refusal::Spam(_))), "{v:?}");
    assert!(v.fields.contains("blocklisted"), "{}", v.fields);
    // One account still wants it: delivered, the blocking account's copy in Junk.
    let v = check(&f, &ham(1000), Origin::Mx, &[ann, bob]).await;
    assert_eq!(v.refusal, None);
    assert!(v.is_junk(bob) && !v.is_junk(ann));
}

#[tokio::test]
async fn a_score_above_the_reject_threshold_refuses_the_message() {
    let (store, ann, _, _dir) = store().await;
    let config = FilterConfig {
        junk_threshold: 1.0,
        reject_threshold: 4.0,
        ..FilterConfig::default()
    };
    let f = filter(&store, config);
    train_global(&f, 25).await;
    let v = check(&f, &spam(1000), Origin::Mx, &[ann]).await;
    assert!(
        matches!(v.refusal, Some(Refusal::Spam(s)) if s >= 4.0),
        "{v:?}"
    );
}

#[tokio::test]
async fn forwarded_copies_are_judged_like_a_mailbox_by_the_rules_and_global_classifier() {
    let (store, ann, _, _dir) = store().await;
    let config = FilterConfig {
        junk_threshold: 1.0,
        reject_threshold: 4.0,
        ..FilterConfig::default()
    };
    let f = filter(&store, config);
    train_global(&f, 25).await;
    let forwarded = |raw: &[u8], accounts: &[AccountId]| {
        let raw = raw.to_vec();
        let accounts = accounts.to_vec();
        let f = f.clone();
        async move {
            let parsed = MessageParser::default().parse(&raw);
            let input = MessageInput::new(&raw, parsed.as_ref(), Origin::Mx).forwarded(true);
            f.check(&input, &accounts).await
        }
    };
    // Only forwarding targets: spam is refused, ham passes.
    let v = forwarded(&spam(1000), &[]).await;
    assert!(
        matches!(v.refusal, Some(Refusal::Spam(s)) if s >= 4.0),
        "{v:?}"
    );
    assert!(v.fields.contains("X-Spam-Status: Yes"), "{}", v.fields);
    let v = forwarded(&ham(1000), &[]).await;
    assert_eq!(v.refusal, None, "{v:?}");
    // A mailbox whose owner allows the sender still gets it; so does the forward then.
    store
        .set_spam_sender(ann, "bulk.test", Some(SenderAction::Allow))
        .await
        .expect("allow");
    let v = forwarded(&spam(1000), &[ann]).await;
    assert_eq!(v.refusal, None, "{v:?}");
    // Without forwarding targets nothing changes: no accounts, nothing to judge.
    let v = check(&f, &spam(1000), Origin::Mx, &[]).await;
    assert_eq!(v.refusal, None, "{v:?}");
}

#[tokio::test]
async fn learning_on_move_raises_the_accounts_score_for_similar_mail() {
    let (store, ann, bob, _dir) = store().await;
    let config = FilterConfig {
        bayes_min_messages: 1,
        ..FilterConfig::default()
    };
    let f = filter(&store, config);
    // A little site-wide ham so both classes exist.
    for i in 0..3 {
        assert_eq!(
            f.learn_batch(TokenScope::Global, &[(&ham(i), SpamClass::Ham)])
                .await
                .expect("learn")[0],
            Some(LearnOutcome::Learned)
        );
    }
    let before = check(&f, &spam(1000), Origin::Mx, &[ann]).await.accounts[0].score;
    // Ann moves three of these into Junk.
    for i in 0..3 {
        assert_eq!(
            f.learn(ann, &spam(i), SpamClass::Spam)
                .await
                .expect("learn"),
            LearnOutcome::Learned
        );
    }
    assert_eq!(
        f.learn(ann, &spam(0), SpamClass::Spam)
            .await
            .expect("learn"),
        LearnOutcome::AlreadyLearned
    );
    let after = check(&f, &spam(1000), Origin::Mx, &[ann]).await.accounts[0].score;
    assert!(after > before, "{before} → {after}");
    // Bob's classifier did not learn Ann's judgement.
    let bob_score = check(&f, &spam(1000), Origin::Mx, &[bob]).await.accounts[0].score;
    assert!(bob_score < after, "{bob_score} vs {after}");
    // Moving one back out of Junk relearns it as ham.
    assert_eq!(
        f.learn(ann, &spam(0), SpamClass::Ham).await.expect("learn"),
        LearnOutcome::Relearned
    );
}

#[tokio::test]
async fn submissions_are_not_spam_scored() {
    let (store, ann, _, _dir) = store().await;
    let f = filter(&store, FilterConfig::default());
    train_global(&f, 25).await;
    let v = check(&f, &spam(1000), Origin::Submission, &[ann]).await;
    assert!(v.fields.is_empty() && !v.is_junk(ann), "{v:?}");
}

#[tokio::test]
async fn an_unreachable_clamd_defers_by_default_and_is_marked_in_accept_mode() {
    let (store, ann, _, dir) = store().await;
    let config = FilterConfig {
        clamd: Some(ClamdAddress::Unix(dir.path().join("no-clamd.sock"))),
        clamd_timeout: Duration::from_secs(2),
        ..FilterConfig::default()
    };
    let f = filter(&store, config.clone());
    let v = check(&f, &ham(1), Origin::Mx, &[ann]).await;
    assert!(matches!(v.refusal, Some(Refusal::ScanFailed(_))), "{v:?}");
    let f = filter(
        &store,
        FilterConfig {
            clamd_failure: ClamdFailure::Accept,
            ..config.clone()
        },
    );
    let v = check(&f, &ham(1), Origin::Submission, &[ann]).await;
    assert_eq!(v.refusal, None);
    assert_eq!(v.fields, "X-Virus-Scan: failed (clamd unavailable)\r\n");
    // Too large to scan: deferred unless the operator accepts such mail unscanned, marked.
    let f = filter(
        &store,
        FilterConfig {
            max_scan_size: 10,
            ..config.clone()
        },
    );
    let v = check(&f, &ham(1), Origin::Submission, &[ann]).await;
    assert!(matches!(v.refusal, Some(Refusal::ScanFailed(_))), "{v:?}");
    let f = filter(
        &store,
        FilterConfig {
            max_scan_size: 10,
            too_large_to_scan: ClamdFailure::Accept,
            ..config
        },
    );
    let v = check(&f, &ham(1), Origin::Submission, &[ann]).await;
    assert_eq!(v.refusal, None);
    assert_eq!(
        v.fields,
        "X-Virus-Scan: skipped (larger than max_scan_size)\r\n"
    );
}

#[test]
fn the_in_memory_classifier_agrees_with_the_store_backed_one() {
    let mut m = MemoryClassifier::new(20);
    for i in 0..25 {
        assert!(m.learn(&spam(i), SpamClass::Spam));
        assert!(m.learn(&ham(i), SpamClass::Ham));
    }
    assert!(m.spam_probability(&spam(1000)).expect("trained") > 0.99);
    assert!(m.spam_probability(&ham(1000)).expect("trained") < 0.01);
    let score = m
        .score(&spam(1000), 5.25, "mx.tern.test", &[])
        .expect("message");
    assert!(score > 5.0, "{score}");
}
