//! Spam filter state: token counts, relearning, sender lists.

use super::*;
use crate::{
    LearnOutcome, SenderAction, SenderRule, SpamClass, StoreError, TokenCounts, TokenScope,
    TrainingMessage,
};

fn msg(scope: TokenScope, class: SpamClass, fingerprint: u64, tokens: &[u64]) -> TrainingMessage {
    TrainingMessage {
        scope,
        class,
        fingerprint,
        tokens: tokens.to_vec(),
    }
}

fn tc(spam: u64, ham: u64) -> TokenCounts {
    TokenCounts { spam, ham }
}

#[tokio::test]
async fn learning_counts_distinct_tokens_per_scope_in_one_transaction() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@x.test").await;
    let commits = store.stats().commits;
    let out = store
        .learn_spam(vec![
            msg(TokenScope::Global, SpamClass::Spam, 1, &[10, 11, 11]),
            msg(TokenScope::Global, SpamClass::Ham, 2, &[11, 12]),
            msg(TokenScope::Account(a), SpamClass::Spam, 1, &[10]),
        ])
        .await
        .expect("learn");
    assert_eq!(out, vec![LearnOutcome::Learned; 3]);
    assert_eq!(store.stats().commits, commits + 1);
    let g = store
        .spam_counts(TokenScope::Global, &[10, 11, 12, 13, u64::MAX])
        .await
        .expect("counts");
    assert_eq!(g.messages, tc(1, 1));
    assert_eq!(g.tokens, [tc(1, 0), tc(1, 1), tc(0, 1), tc(0, 0), tc(0, 0)]);
    let own = store
        .spam_counts(TokenScope::Account(a), &[10, 11])
        .await
        .expect("counts");
    assert_eq!(own.messages, tc(1, 0));
    assert_eq!(own.tokens, [tc(1, 0), tc(0, 0)]);
}

#[tokio::test]
async fn relearning_moves_counts_and_repeating_changes_nothing() {
    let (store, _dir) = store().await;
    let scope = TokenScope::Global;
    let big = u64::MAX - 5; // stored as a negative i64; must round-trip
    store
        .learn_spam(vec![msg(scope, SpamClass::Ham, 7, &[1, big])])
        .await
        .expect("learn");
    let again = store
        .learn_spam(vec![msg(scope, SpamClass::Ham, 7, &[1, big])])
        .await
        .expect("learn");
    assert_eq!(again, [LearnOutcome::AlreadyLearned]);
    let moved = store
        .learn_spam(vec![msg(scope, SpamClass::Spam, 7, &[1, big])])
        .await
        .expect("learn");
    assert_eq!(moved, [LearnOutcome::Relearned]);
    let c = store.spam_counts(scope, &[1, big]).await.expect("counts");
    assert_eq!(c.messages, tc(1, 0));
    assert_eq!(c.tokens, [tc(1, 0), tc(1, 0)]);
}

#[tokio::test]
async fn sender_lists_are_per_account_and_removed_with_the_account() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@x.test").await;
    let b = account(&store, "b@x.test").await;
    store
        .set_spam_sender(a, " Friend@Example.ORG ", Some(SenderAction::Allow))
        .await
        .expect("set");
    store
        .set_spam_sender(a, "spam.test", Some(SenderAction::Block))
        .await
        .expect("set");
    assert_eq!(
        store.spam_senders(a).await.expect("list"),
        [
            SenderRule {
                pattern: "friend@example.org".into(),
                action: SenderAction::Allow
            },
            SenderRule {
                pattern: "spam.test".into(),
                action: SenderAction::Block
            },
        ]
    );
    assert!(store.spam_senders(b).await.expect("list").is_empty());
    assert!(matches!(
        store.set_spam_sender(b, "nope.test", None).await,
        Err(StoreError::NotFound)
    ));
    store
        .learn_spam(vec![msg(TokenScope::Account(a), SpamClass::Spam, 1, &[5])])
        .await
        .expect("learn");
    store.remove_account(a).await.expect("remove");
    assert!(store.spam_senders(a).await.expect("list").is_empty());
    let c = store
        .spam_counts(TokenScope::Account(a), &[5])
        .await
        .expect("counts");
    assert_eq!((c.messages, c.tokens[0]), (tc(0, 0), tc(0, 0)));
    store.check_integrity().await.expect("integrity");
}
