//! Types of the outbound queue: messages waiting for remote delivery, one row per remote recipient.
//!
//! A queued message references its blob like a mailbox copy does (the blob's refcount counts queue
//! messages too), so the bytes are stored once whether the message also went to local mailboxes or not.
//! Each recipient row carries its own state, attempt counter, next attempt time, expiry and lease.
//! Claims take a lease (`lease_owner`, `lease_until`) so that several nodes sharing one store never
//! work on the same recipient at once; an expired lease (a crashed node) can be claimed again.

use std::fmt;

use crate::blob::BlobId;

/// Id of a queued message (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub i64);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Id of one queued recipient row (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueRecipientId(pub i64);

/// RFC 3461 §4.1 NOTIFY, as bits. The default (no NOTIFY given) is failure + delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify(pub u8);

impl Notify {
    /// NOTIFY=SUCCESS.
    pub const SUCCESS: u8 = 1;
    /// NOTIFY=FAILURE.
    pub const FAILURE: u8 = 2;
    /// NOTIFY=DELAY.
    pub const DELAY: u8 = 4;
    /// NOTIFY=NEVER.
    pub const NEVER: u8 = 8;

    /// RFC 3461 §4.1: without NOTIFY, "FAILURE" or "FAILURE,DELAY" is assumed; we send both.
    pub fn wants_failure(self) -> bool {
        self.0 == 0 || self.0 & Self::FAILURE != 0
    }

    /// Whether a "delayed" warning may be sent.
    pub fn wants_delay(self) -> bool {
        self.0 == 0 || self.0 & Self::DELAY != 0
    }

    /// Whether a success DSN was asked for ("delivered", "expanded" or "relayed", RFC 3461 §5.2).
    pub fn wants_success(self) -> bool {
        self.0 & Self::SUCCESS != 0
    }

    /// Whether NOTIFY was given at all (0: the defaults of RFC 3461 §4.1 apply).
    pub fn is_given(self) -> bool {
        self.0 != 0
    }

    /// The NOTIFY for the new recipients of an expanded address (RFC 3461 §5.2.7.3: SUCCESS is
    /// reported once, as "expanded", and not asked of the next hops). What is left of a
    /// SUCCESS-only request is NEVER, not the defaults.
    pub fn without_success(self) -> Notify {
        match self.0 & !Self::SUCCESS {
            0 if self.0 != 0 => Notify(Self::NEVER),
            bits => Notify(bits),
        }
    }
}

/// What the DSN of a failure should carry back (RFC 3461 §4.3 RET). Without RET the headers are
/// returned: `Option<DsnReturn>` keeps "not given" apart, because only a given RET is passed on
/// to the next hop (RFC 3461 §5.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnReturn {
    /// Only the headers (RET=HDRS).
    Headers,
    /// The whole message (RET=FULL).
    Full,
}

/// How far the reverse-path of a message is trusted. It decides which DSNs may go to that
/// address and what they may carry: a DSN to a forged reverse-path is backscatter, and one that
/// returns the message reflects attacker-written content to a third party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SenderTrust {
    /// Nothing proves the reverse-path: SPF none, neutral or an error, or not verified at all
    /// (verification off, a trusted relay, LMTP). The default, also of queue rows written before
    /// the trust was recorded.
    #[default]
    Unverified,
    /// SPF `fail` or `softfail` for the MAIL FROM domain, or DMARC `fail`: the reverse-path is
    /// probably forged.
    Failed,
    /// Port 25 mail whose MAIL FROM domain passed SPF (RFC 7208 §2.6.3) and whose DMARC did not
    /// fail: the client may use that reverse-path.
    SpfPass,
    /// Submitted by an account that authenticated to us (RFC 6409).
    Authenticated,
}

impl SenderTrust {
    /// Whether success DSNs ("delivered", "expanded", "relayed") may go to the reverse-path: only
    /// when it is proven, as a forged one would receive reports of mail it never sent.
    pub fn may_receive_success_reports(self) -> bool {
        matches!(self, SenderTrust::SpfPass | SenderTrust::Authenticated)
    }

    /// Whether failure and delay DSNs may go to the reverse-path: not when it failed SPF or
    /// DMARC, where a bounce would be backscatter to the forged address.
    pub fn may_receive_failure_reports(self) -> bool {
        self != SenderTrust::Failed
    }

    /// Whether a DSN may return more than the header block (RET=FULL, RFC 3461 §4.3): only to
    /// our own authenticated users, so nobody can have us deliver their text to a third party.
    pub fn may_receive_content(self) -> bool {
        self == SenderTrust::Authenticated
    }
}

/// A message to enqueue, part of a [`crate::Delivery`] (so it commits with the local copies).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewQueued {
    /// Bytes at the start of the delivery's blob that are not sent (the `Return-Path:` only local copies
    /// carry, RFC 5321 §4.4). The queued message is `blob[skip..]`.
    pub skip: u64,
    /// The reverse-path; `None` for the null sender `<>` (bounces: never bounced again).
    pub mail_from: Option<String>,
    /// RFC 3461 ENVID, if given (decoded from xtext).
    pub env_id: Option<String>,
    /// RFC 3461 RET, if given.
    pub ret: Option<DsnReturn>,
    /// How far `mail_from` is trusted, which decides the DSNs it gets.
    pub sender_trust: SenderTrust,
    /// The message needs SMTPUTF8 (RFC 6531): UTF-8 envelope addresses or headers.
    pub smtputf8: bool,
    /// The message has 8-bit content (RFC 6152 8BITMIME needed to send it unchanged).
    pub eight_bit: bool,
    /// Recipients, one row each.
    pub recipients: Vec<NewQueuedRecipient>,
    /// First attempt time, unix seconds (usually now).
    pub next_attempt: i64,
    /// When the recipients expire (give up with a DSN), unix seconds.
    pub expires_at: i64,
}

/// One recipient of a [`NewQueued`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewQueuedRecipient {
    /// The forward-path.
    pub address: String,
    /// RFC 3461 ORCPT as `addr-type;address` (decoded from xtext, e.g. `rfc822;a@b.test`), if
    /// given.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY.
    pub notify: Notify,
}

/// State of a queued recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Accepted by the next hop.
    Delivered,
    /// Given up: permanent failure or expiry.
    Failed,
}

impl QueueStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Pending => "pending",
            QueueStatus::Delivered => "delivered",
            QueueStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<QueueStatus> {
        match s {
            "pending" => Some(QueueStatus::Pending),
            "delivered" => Some(QueueStatus::Delivered),
            "failed" => Some(QueueStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for QueueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queued message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Its id.
    pub id: QueueId,
    /// The blob holding the bytes (the message is `blob[skip..]`).
    pub blob: BlobId,
    /// See [`NewQueued::skip`].
    pub skip: u64,
    /// Size in octets of the message to send.
    pub size: u64,
    /// The reverse-path; `None` for `<>`.
    pub mail_from: Option<String>,
    /// RFC 3461 ENVID.
    pub env_id: Option<String>,
    /// RFC 3461 RET, if given.
    pub ret: Option<DsnReturn>,
    /// How far `mail_from` is trusted, which decides the DSNs it gets.
    pub sender_trust: SenderTrust,
    /// Needs SMTPUTF8.
    pub smtputf8: bool,
    /// Has 8-bit content.
    pub eight_bit: bool,
    /// When it was queued, unix seconds.
    pub created_at: i64,
    /// Whether the "delayed" DSN was sent already.
    pub delay_notified: bool,
}

/// A queued recipient as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    /// Its id.
    pub id: QueueRecipientId,
    /// Its message.
    pub message: QueueId,
    /// The forward-path.
    pub address: String,
    /// Lowercased domain of `address` (routing key).
    pub domain: String,
    /// RFC 3461 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY.
    pub notify: Notify,
    /// Current state.
    pub status: QueueStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last error (reply or connection problem), for `tern queue show` and DSNs.
    pub last_error: Option<String>,
    /// Next attempt, unix seconds.
    pub next_attempt: i64,
    /// Give up after this time, unix seconds.
    pub expires_at: i64,
    /// Node holding the lease, if any.
    pub lease_owner: Option<String>,
    /// Lease end, unix seconds.
    pub lease_until: Option<i64>,
}

/// A message with some of its recipients (all of them, or those claimed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The message.
    pub message: QueuedMessage,
    /// Recipients, by id.
    pub recipients: Vec<QueuedRecipient>,
}

/// The result of one delivery attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The next hop accepted it (the reply, for the log).
    Delivered(String),
    /// Temporary failure: try again at `next_attempt` (unix seconds).
    Deferred {
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt: i64,
    },
    /// Permanent failure or expiry; the DSN (if any) has been handed over already.
    Failed(String),
}

/// Counters for logs and `tern queue list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Queued messages.
    pub messages: u64,
    /// Recipients still pending.
    pub pending: u64,
}
