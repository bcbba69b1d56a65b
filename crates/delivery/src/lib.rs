//! `tern-delivery`: the pipeline every message goes through on its way into a mailbox. SMTP (MX and
//! submission) and LMTP call [`Pipeline::deliver`]; IMAP APPEND and import will too.
//!
//! # Stages
//!
//! [`Pipeline::deliver`] runs named stage functions in order over one `Context` (see `pipeline.rs`):
//!
//! 1. **parse** — mail-parser parses the original bytes once; the parse stays in the context for every
//!    later stage. A message it cannot parse is still delivered as received.
//! 2. **submission_fixups** — submission only: add a missing `Date:` / `Message-ID:` (RFC 6409 §8).
//! 3. **trace_headers** — `Return-Path:` and `Received:` (RFC 5321 §4.4).
//! 4. **filter** (`pipeline/filter.rs`, when a `tern_filter::Filter` is set) — virus scan, rules and
//!    classifier: a refusal ends delivery with [`DeliveryError::Refused`] (nothing stored); otherwise
//!    `X-Spam-*`/`X-Virus-Scan` fields are appended to the trace fields and Junk-bound accounts noted.
//! 5. **store_message** — one blob, one row in each distinct account's INBOX (or Junk), one durable
//!    transaction.
//! 6. **log_delivery** — one log line per message.
//!
//! # Implementation notes
//!
//! Invariants this crate keeps, and every change must keep:
//!
//! - **Durable before the reply.** `deliver` returns `Ok` only after `Store::deliver` committed; a
//!   storage failure is `Err` for the whole message and nothing was stored (the store's transaction is all
//!   or nothing).
//! - **Never lose mail over a parser quirk.** Parsing informs the stages; it never rejects. The stored
//!   bytes are the added fields followed by the original data, byte for byte: trace fields on top
//!   (`Return-Path`, `Received`), then submission fields (`Date`, `Message-ID`), then the message.
//!   Nothing is removed at these stages.
//! - **One copy per account.** An account reached through several recipients (two addresses, an alias,
//!   `user+tag`) gets one copy. A recipient is `Delivered` only if all its accounts got the message; a
//!   failed recipient adds no copy of its own, so the sender's retry creates no duplicate for it.
//! - **Offsets.** The parse covers the original data only; byte offsets into the stored message are the
//!   parse's offsets plus the length of the added fields (`trace_fields + added_fields`). The IMAP caches
//!   (`MessageMeta`) will need that shift; today they are left empty.
//! - **Trace fields are safe against client input.** HELO, rDNS name, TLS text and session id are
//!   sanitised and bounded, lines are folded at whitespace (at most 78 characters except a single long
//!   word, never over 998, RFC 5322 §2.1.1), and `for` names the recipient only when there is exactly
//!   one (RFC 5321 §7.2).
//!
//! # Where the later stages go
//!
//! They are inserted between `trace_headers` and `store_message`, as further stage functions over the
//! same context, in this order:
//!
//! - **authenticate** (issue 7: SPF, DKIM, DMARC, ARC, iprev with mail-auth) — MX only. Reads the parse,
//!   `Inbound::trace` and `mail_from`; appends an `Authentication-Results:` field to the trace fields
//!   (below `Received`), and removes existing A-R fields claiming our authserv-id — the one stage allowed
//!   to drop original header bytes, so it will replace "original data" by an edited copy in the context.
//!   May decide for the whole message: reject (DMARC p=reject → new `DeliveryError`/verdict mapped to
//!   `550 5.7.1`), defer (DNS failure → `451 4.7.x`), or quarantine (→ Junk).
//! - **filter** (issue 8: antivirus, rules, classifier) — reads the parse and the authentication results;
//!   adds `X-Spam-*` fields; decides per message: reject (`554`/`550 5.7.1`), defer (clamd down → `451`),
//!   or Junk; per-recipient allow/block lists may change that per account.
//! - **sieve** — per account: picks the target mailbox (fileinto, default INBOX), flags, discard,
//!   redirect (to the outbound queue), vacation. The store stage then takes a per-account target instead
//!   of "INBOX of every account"; de-duplication stays per (account, mailbox).
//!
//! Whole-message decisions become a verdict that `deliver` returns before storing; per-account decisions
//! become the targets of the one store transaction.
#![forbid(unsafe_code)]

mod date;
mod error;
mod pipeline;
mod submission;
mod targets;
mod trace;
mod types;

pub use error::DeliveryError;
pub use pipeline::Pipeline;
pub use types::{
    Inbound, InboundKind, InboundRecipient, RecipientOutcome, RecipientStatus, Trace, TraceProtocol,
};

#[cfg(test)]
mod tests;
