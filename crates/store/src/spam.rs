//! Types of the spam filter's persistent state: classifier token counts (site-wide and per account),
//! the record of which messages were learned as what, and per-account sender allow/block lists.
//!
//! The store only counts; tokenizing and scoring belong to `tern-filter`. Tokens are opaque 64-bit
//! hashes, so the tables hold no message text.

use crate::types::AccountId;

/// Whose classifier data a call reads or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// The site-wide token set (`tern spam train` without `--account`).
    Global,
    /// One account's own token set (its Junk moves, `tern spam train --account`).
    Account(AccountId),
}

/// How often something was seen in messages learned as spam and as ham.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Messages learned as spam (that contained the token).
    pub spam: u64,
    /// Messages learned as ham (that contained the token).
    pub ham: u64,
}

/// The counts a classification needs from one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpamCounts {
    /// Messages learned in this scope.
    pub messages: TokenCounts,
    /// Per requested token, in request order (zero for unknown tokens).
    pub tokens: Vec<TokenCounts>,
}

/// What a message is learned as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpamClass {
    /// Unwanted mail.
    Spam,
    /// Wanted mail.
    Ham,
}

/// One message to learn: its distinct tokens, and a fingerprint that identifies it again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingMessage {
    /// Whose counts change.
    pub scope: TokenScope,
    /// What it is learned as.
    pub class: SpamClass,
    /// Identifies the message within the scope, so learning it twice changes nothing and learning it as
    /// the other class moves its counts over instead of adding them twice.
    pub fingerprint: u64,
    /// The message's distinct tokens (duplicates are counted once).
    pub tokens: Vec<u64>,
}

/// What [`crate::Store::learn_spam`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnOutcome {
    /// Counted for the first time.
    Learned,
    /// Already learned as this class; nothing changed.
    AlreadyLearned,
    /// Had been learned as the other class; its counts were moved over.
    Relearned,
}

/// Whether mail from a sender pattern is always wanted or always refused by one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenderAction {
    /// Never goes to Junk and is never refused by the spam score.
    Allow,
    /// Treated as spam above the reject threshold.
    Block,
}

/// One entry of an account's sender list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRule {
    /// A lowercased address (`user@example.org`) or domain (`example.org`, which also matches its
    /// subdomains).
    pub pattern: String,
    /// What to do with mail from it.
    pub action: SenderAction,
}
