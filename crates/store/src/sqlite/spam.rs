//! Spam filter state: token counts, learned-message fingerprints, sender lists (migration 2).
//!
//! Tokens and fingerprints are `u64` hashes stored bit-for-bit as SQLite's signed 64-bit integers
//! (`as i64` / `as u64` round-trips exactly). The global scope is `account_id = 0`: account ids start
//! at 1 (AUTOINCREMENT), so it never names an account.

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::JobCtx;
use super::{SqlExt, SqliteBackend};
use crate::error::{Result, StoreError};
use crate::spam::{
    LearnOutcome, SenderAction, SenderRule, SpamClass, SpamCounts, TokenCounts, TokenScope,
    TrainingMessage,
};
use crate::types::AccountId;

fn scope_id(scope: TokenScope) -> i64 {
    match scope {
        TokenScope::Global => 0,
        TokenScope::Account(a) => a.0,
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn class_name(class: SpamClass) -> &'static str {
    match class {
        SpamClass::Spam => "spam",
        SpamClass::Ham => "ham",
    }
}

fn action_name(action: SenderAction) -> &'static str {
    match action {
        SenderAction::Allow => "allow",
        SenderAction::Block => "block",
    }
}

impl SqliteBackend {
    pub(crate) async fn spam_counts(
        &self,
        scopes: &[TokenScope],
        tokens: &[u64],
    ) -> Result<Vec<SpamCounts>> {
        let (scopes, tokens) = (scopes.to_vec(), tokens.to_vec());
        self.read(move |c, _| {
            // One read transaction: message totals and token counts from the same snapshot.
            let tx = c.unchecked_transaction().db()?;
            scopes
                .iter()
                .map(|&scope| counts(&tx, scope_id(scope), &tokens))
                .collect()
        })
        .await
    }

    pub(crate) async fn spam_totals(&self, scopes: &[TokenScope]) -> Result<Vec<TokenCounts>> {
        self.lookup(|c| scopes.iter().map(|&s| totals(c, scope_id(s))).collect())
    }

    pub(crate) async fn learn_spam(
        &self,
        batch: Vec<TrainingMessage>,
    ) -> Result<Vec<LearnOutcome>> {
        self.write(move |ctx| learn(ctx, &batch)).await
    }

    pub(crate) async fn spam_senders(&self, account: AccountId) -> Result<Vec<SenderRule>> {
        self.lookup(|c| senders(c, account))
    }

    pub(crate) async fn set_spam_sender(
        &self,
        account: AccountId,
        pattern: &str,
        action: Option<SenderAction>,
    ) -> Result<()> {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern.is_empty() {
            return Err(StoreError::Invalid("empty sender pattern".into()));
        }
        self.write(move |ctx| set_sender(ctx.conn, account, &pattern, action))
            .await
    }
}

fn totals(c: &Connection, scope: i64) -> Result<TokenCounts> {
    Ok(
        c.prepare_cached("SELECT spam, ham FROM spam_totals WHERE account_id = ?1")
            .db()?
            .query_row([scope], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()
            .db()?
            .map_or_else(TokenCounts::default, |(s, h)| TokenCounts {
                spam: count(s),
                ham: count(h),
            }),
    )
}

fn counts(c: &Connection, scope: i64, tokens: &[u64]) -> Result<SpamCounts> {
    let messages = totals(c, scope)?;
    let mut st = c
        .prepare_cached("SELECT spam, ham FROM spam_tokens WHERE account_id = ?1 AND token = ?2")
        .db()?;
    let mut out = Vec::with_capacity(tokens.len());
    for &token in tokens {
        let found = st
            .query_row(params![scope, token as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()
            .db()?;
        out.push(
            found.map_or_else(TokenCounts::default, |(s, h)| TokenCounts {
                spam: count(s),
                ham: count(h),
            }),
        );
    }
    Ok(SpamCounts {
        messages,
        tokens: out,
    })
}

/// Learns a batch in the caller's transaction (one writer job, so one COMMIT for the batch).
fn learn(ctx: &mut JobCtx<'_>, batch: &[TrainingMessage]) -> Result<Vec<LearnOutcome>> {
    let c = ctx.conn;
    let mut outcomes = Vec::with_capacity(batch.len());
    for m in batch {
        let scope = scope_id(m.scope);
        let fingerprint = m.fingerprint as i64;
        let previous: Option<String> = c
            .query_row(
                "SELECT class FROM spam_learned WHERE account_id = ?1 AND fingerprint = ?2",
                params![scope, fingerprint],
                |r| r.get(0),
            )
            .optional()
            .db()?;
        let new = class_name(m.class);
        let outcome = match previous.as_deref() {
            Some(p) if p == new => {
                outcomes.push(LearnOutcome::AlreadyLearned);
                continue;
            }
            Some(_) => LearnOutcome::Relearned,
            None => LearnOutcome::Learned,
        };
        let (spam, ham): (i64, i64) = match (m.class, outcome) {
            (SpamClass::Spam, LearnOutcome::Relearned) => (1, -1),
            (SpamClass::Ham, LearnOutcome::Relearned) => (-1, 1),
            (SpamClass::Spam, _) => (1, 0),
            (SpamClass::Ham, _) => (0, 1),
        };
        add_counts(c, scope, &m.tokens, spam, ham)?;
        c.execute(
            "INSERT INTO spam_totals (account_id, spam, ham) VALUES (?1, max(?2, 0), max(?3, 0))
             ON CONFLICT (account_id) DO UPDATE
             SET spam = max(spam + ?2, 0), ham = max(ham + ?3, 0)",
            params![scope, spam, ham],
        )
        .db()?;
        c.execute(
            "INSERT INTO spam_learned (account_id, fingerprint, class) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id, fingerprint) DO UPDATE SET class = excluded.class",
            params![scope, fingerprint, new],
        )
        .db()?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Adds the deltas to every distinct token of `tokens`, never going below zero; rows that drop to
/// zero in both classes are removed so the table holds only live tokens.
fn add_counts(c: &Connection, scope: i64, tokens: &[u64], spam: i64, ham: i64) -> Result<()> {
    let mut tokens = tokens.to_vec();
    tokens.sort_unstable();
    tokens.dedup();
    let mut upsert = c
        .prepare_cached(
            "INSERT INTO spam_tokens (account_id, token, spam, ham)
             VALUES (?1, ?2, max(?3, 0), max(?4, 0))
             ON CONFLICT (account_id, token) DO UPDATE
             SET spam = max(spam + ?3, 0), ham = max(ham + ?4, 0)",
        )
        .db()?;
    for &token in &tokens {
        upsert
            .execute(params![scope, token as i64, spam, ham])
            .db()?;
    }
    if spam < 0 || ham < 0 {
        let mut prune = c
            .prepare_cached(
                "DELETE FROM spam_tokens
                 WHERE account_id = ?1 AND token = ?2 AND spam = 0 AND ham = 0",
            )
            .db()?;
        for &token in &tokens {
            prune.execute(params![scope, token as i64]).db()?;
        }
    }
    Ok(())
}

fn senders(c: &Connection, account: AccountId) -> Result<Vec<SenderRule>> {
    let mut st = c
        .prepare_cached(
            "SELECT pattern, action FROM spam_senders WHERE account_id = ?1 ORDER BY pattern",
        )
        .db()?;
    let rows = st
        .query_map([account.0], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (pattern, action) = row.db()?;
        let action = match action.as_str() {
            "allow" => SenderAction::Allow,
            "block" => SenderAction::Block,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "spam_senders: unknown action {other:?}"
                )));
            }
        };
        out.push(SenderRule { pattern, action });
    }
    Ok(out)
}

fn set_sender(
    c: &Connection,
    account: AccountId,
    pattern: &str,
    action: Option<SenderAction>,
) -> Result<()> {
    let exists: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)",
            [account.0],
            |r| r.get(0),
        )
        .db()?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    match action {
        Some(action) => c
            .execute(
                "INSERT INTO spam_senders (account_id, pattern, action) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id, pattern) DO UPDATE SET action = excluded.action",
                params![account.0, pattern, action_name(action)],
            )
            .db()
            .map(drop),
        None => {
            let n = c
                .execute(
                    "DELETE FROM spam_senders WHERE account_id = ?1 AND pattern = ?2",
                    params![account.0, pattern],
                )
                .db()?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }
    }
}

/// Removes everything the spam filter keeps for an account (called by account removal).
pub(crate) fn remove_account(c: &Connection, account: AccountId) -> Result<()> {
    for table in ["spam_tokens", "spam_totals", "spam_learned", "spam_senders"] {
        c.execute(
            &format!("DELETE FROM {table} WHERE account_id = ?1"),
            [account.0],
        )
        .db()?;
    }
    Ok(())
}
