//! [`Pipeline::deliver`]: the stages, in order, over one [`Context`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mail_parser::{Message, MessageParser};
use tern_directory::Directory;
use tern_store::{Appended, Delivery, MessageMeta, NewQueued, SenderTrust, Store, StoreError};
use tokio::sync::Notify;
use tracing::info;

mod authenticate;
mod author;
mod filter;

use crate::error::DeliveryError;
use crate::targets::{self, Plan};
use crate::types::{Delivered, Inbound, InboundKind, RecipientOutcome};
use crate::{date, submission, trace};

/// The delivery pipeline. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    directory: Directory,
    hostname: Arc<str>,
    /// Spam and virus filter (issue 8); `None` delivers unfiltered (tests, tools).
    filter: Option<tern_filter::Filter>,
    /// How long remote recipients stay queued before they expire (config `outbound.expire`).
    queue_expiry: Duration,
    /// Woken after a delivery queued something, so the outbound worker starts at once.
    queue_wakeup: Arc<Notify>,
    /// Inbound verification (issue 7); `None` verifies nothing (tests, tools).
    authenticator: Option<crate::auth::Authenticator>,
    /// DKIM keys for signing submissions and DSNs, and ARC sealing; empty signs nothing.
    dkim: crate::dkim::DkimSigners,
    /// Computes the message cache stored with every local copy; `None` stores none.
    summarize: Option<fn(&[u8]) -> MessageMeta>,
}

/// Everything the stages know about one message, built up stage by stage.
struct Context<'m> {
    /// The message as the session handed it over.
    inbound: &'m Inbound,
    /// mail-parser's parse of `inbound.data` (the original bytes, without the fields added below): `None`
    /// when it found no header field at all. The message is delivered either way.
    parsed: Option<Message<'m>>,
    /// Fields added above the original header block by the submission fix-ups, CRLF-terminated.
    added_fields: String,
    /// Trace fields (`Return-Path`, `Received`), CRLF-terminated; they go on top of everything.
    trace_fields: String,
    /// Accounts whose copy the filter sends to their Junk mailbox instead of INBOX.
    junk: std::collections::HashSet<tern_store::AccountId>,
    /// Length of the `Return-Path:` field at the start of `trace_fields`: local copies only; the
    /// queued copy starts after it (RFC 5321 §4.4: Return-Path is added at final delivery).
    return_path_len: usize,
    /// The authentication stage's results, for the filter.
    authentication: Option<tern_filter::Authentication>,
    /// Set by the authentication stage when every copy goes to Junk (the reason, for the log).
    quarantine: Option<&'static str>,
    /// How far the reverse-path is trusted: `Authenticated` for submissions, else what the
    /// authentication stage found (`Unverified` when it did not run).
    sender_trust: SenderTrust,
}

/// Result of the store stage.
struct Stored {
    plan: Plan,
    appended: Vec<Appended>,
    size: usize,
}

impl Pipeline {
    /// A pipeline delivering into `store`; `hostname` names this server in `Received:` and generated
    /// `Message-ID:` fields.
    pub fn new(store: Store, directory: Directory, hostname: String) -> Pipeline {
        Pipeline {
            store,
            directory,
            hostname: hostname.into(),
            filter: None,
            queue_expiry: Duration::from_secs(5 * 86400),
            queue_wakeup: Arc::new(Notify::new()),
            authenticator: None,
            dkim: Default::default(),
            summarize: None,
        }
    }

    /// Sets the function computing the message cache (`MessageMeta`: ENVELOPE, BODYSTRUCTURE and
    /// header block for IMAP FETCH and SEARCH) stored with every local copy. IMAP owns its format
    /// and lies above this crate, so the binary passes `tern_imap::message::summarize` in. Without
    /// one no cache is stored and IMAP parses the blob instead.
    pub fn with_message_cache(mut self, summarize: fn(&[u8]) -> MessageMeta) -> Pipeline {
        self.summarize = Some(summarize);
        self
    }

    /// Sets how long remote recipients stay queued before they expire with a DSN (default 5 days).
    pub fn with_queue_expiry(mut self, expiry: Duration) -> Pipeline {
        self.queue_expiry = expiry;
        self
    }

    /// Notified after every delivery that queued remote recipients (the outbound worker waits on it).
    pub fn queue_wakeup(&self) -> Arc<Notify> {
        Arc::clone(&self.queue_wakeup)
    }

    /// The store messages are delivered into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The directory (per-account settings for the filter and Sieve stages).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// This server's name in trace fields.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Runs every stage and stores the message; returns one outcome per recipient, in order.
    /// Returns only after the store transaction is durable. Err only for failures that affect the
    /// whole message (storage down → the SMTP side answers 451 4.3.0).
    pub async fn deliver(&self, message: Inbound) -> Result<Vec<RecipientOutcome>, DeliveryError> {
        self.deliver_verified(message).await.map(|d| d.outcomes)
    }

    /// [`Pipeline::deliver`], also returning how far the reverse-path was trusted, for callers
    /// that send DSNs to it.
    pub async fn deliver_verified(&self, message: Inbound) -> Result<Delivered, DeliveryError> {
        let original = message.data.clone();
        let message = self.strip_forged_results(message);
        let mut ctx = parse(&message);
        self.check_author(&ctx).await?;
        self.submission_fixups(&mut ctx);
        self.dkim_sign(&mut ctx);
        self.trace_headers(&mut ctx);
        self.authenticate(&mut ctx, &original).await?;
        self.filter(&mut ctx).await?;
        self.apply_quarantine(&mut ctx);
        // Sieve goes after the filter; see the crate docs.
        let stored = self.store_message(&ctx).await?;
        log_delivery(&ctx, &stored);
        let sender_trust = ctx.sender_trust;
        let outcomes = message
            .recipients
            .iter()
            .zip(stored.plan.statuses)
            .map(|(r, status)| RecipientOutcome {
                address: r.address.clone(),
                status,
            })
            .collect();
        Ok(Delivered {
            outcomes,
            sender_trust,
        })
    }

    /// Stage 2: RFC 6409 §8 fix-ups of submitted messages (missing `Date:` and `Message-ID:`).
    fn submission_fixups(&self, ctx: &mut Context<'_>) {
        if let InboundKind::Submission { .. } = ctx.inbound.kind {
            ctx.added_fields = submission::missing_fields(
                ctx.parsed.as_ref(),
                &self.hostname,
                ctx.inbound.trace.received_at,
            );
        }
    }

    /// Stage 3: trace fields (RFC 5321 §4.4). Every message through this pipeline is delivered here (remote
    /// recipients go to the outbound queue, not through `deliver`), so this is the final delivery that adds
    /// `Return-Path`. Nothing already in the message is removed.
    fn trace_headers(&self, ctx: &mut Context<'_>) {
        let inbound = ctx.inbound;
        let single = match inbound.recipients.as_slice() {
            [only] => Some(&only.address),
            _ => None,
        };
        ctx.trace_fields = trace::return_path(inbound.mail_from.as_ref());
        ctx.return_path_len = ctx.trace_fields.len();
        ctx.trace_fields
            .push_str(&trace::received(&inbound.trace, &self.hostname, single));
    }

    /// Stage 4: one blob, one row in the INBOX of each distinct account, one durable transaction.
    async fn store_message(&self, ctx: &Context<'_>) -> Result<Stored, DeliveryError> {
        let recipients = &ctx.inbound.recipients;
        let bytes = ctx.message_bytes();
        let size = bytes.len();
        let mut looked_up_again = false;
        let mut meta: Option<MessageMeta> = None;
        loop {
            let inboxes = targets::inboxes(&self.store, recipients, &ctx.junk).await?;
            let plan = targets::plan(recipients, &inboxes);
            if plan.targets.is_empty() && plan.remote.is_empty() {
                return Ok(Stored {
                    plan,
                    appended: Vec::new(),
                    size,
                });
            }
            if meta.is_none() && !plan.targets.is_empty() {
                // Once per message: every local copy has the same bytes.
                meta = Some(self.message_cache(&bytes).await);
            }
            let delivery = Delivery {
                bytes: bytes.clone(),
                internal_date: date::unix_seconds(ctx.inbound.trace.received_at),
                meta: meta.clone().unwrap_or_default(),
                targets: plan.targets.clone(),
                queue: self.queued(ctx, &plan, &bytes),
            };
            let queued = delivery.queue.is_some();
            match self.store.deliver(delivery).await {
                Ok(appended) => {
                    if queued {
                        self.queue_wakeup.notify_one();
                    }
                    return Ok(Stored {
                        plan,
                        appended,
                        size,
                    });
                }
                // A target vanished between the lookup and the transaction (its account was removed
                // meanwhile, maybe by another node); the transaction stored nothing. Look up once more.
                Err(StoreError::NotFound) if !looked_up_again => looked_up_again = true,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Messages up to this size are summarised on the delivering task, larger ones on a blocking
/// thread (the MIME scan reads every line).
const SUMMARIZE_INLINE_MAX: usize = 256 * 1024;

impl Pipeline {
    /// The message cache of the stored bytes; empty without a summarizer (or if it panicked:
    /// the cache only saves work, IMAP then parses the blob).
    async fn message_cache(&self, bytes: &Bytes) -> MessageMeta {
        let Some(summarize) = self.summarize else {
            return MessageMeta::default();
        };
        if bytes.len() <= SUMMARIZE_INLINE_MAX {
            return summarize(bytes);
        }
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || summarize(&bytes))
            .await
            .unwrap_or_default()
    }

    /// The queue part of the store stage: the remote addresses of the plan, with the facts the SMTP
    /// client needs (RFC 6531 SMTPUTF8, RFC 6152 8BITMIME, RFC 3461 DSN parameters) and the expiry.
    fn queued(&self, ctx: &Context<'_>, plan: &Plan, bytes: &[u8]) -> Option<NewQueued> {
        if plan.remote.is_empty() {
            return None;
        }
        let now = date::unix_seconds(ctx.inbound.trace.received_at);
        let mail_from = ctx.inbound.mail_from.as_ref();
        let data = &ctx.inbound.data;
        let header_end = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(data.len(), |p| p + 4);
        let non_ascii = |b: &[u8]| !b.is_ascii();
        // RFC 6531 §3.4 / RFC 6532: UTF-8 in the envelope or in header fields needs SMTPUTF8. Raw
        // 8-bit header bytes that are not UTF-8 are legacy mail, sent as 8-bit data instead.
        let utf8_headers =
            non_ascii(&data[..header_end]) && std::str::from_utf8(&data[..header_end]).is_ok();
        let smtputf8 = mail_from.is_some_and(|a| !a.to_string().is_ascii())
            || plan.remote.iter().any(|r| !r.address.is_ascii())
            || utf8_headers;
        let expiry = i64::try_from(self.queue_expiry.as_secs()).unwrap_or(i64::MAX);
        Some(NewQueued {
            skip: ctx.return_path_len as u64,
            mail_from: mail_from.map(ToString::to_string),
            smtputf8,
            eight_bit: non_ascii(&bytes[ctx.return_path_len.min(bytes.len())..]),
            // RFC 3461 §5.2.1: the DSN parameters travel with the queued copy.
            env_id: ctx.inbound.env_id.clone(),
            ret: ctx.inbound.ret,
            sender_trust: ctx.sender_trust,
            recipients: plan.remote.clone(),
            next_attempt: now,
            expires_at: now.saturating_add(expiry),
        })
    }
}

/// Stage 1: parse once. mail-parser does not fail on malformed input; it returns `None` only when it finds
/// no header field, and such a message is still delivered byte for byte.
fn parse(inbound: &Inbound) -> Context<'_> {
    Context {
        inbound,
        parsed: MessageParser::default().parse(&inbound.data[..]),
        added_fields: String::new(),
        trace_fields: String::new(),
        junk: Default::default(),
        return_path_len: 0,
        authentication: None,
        quarantine: None,
        sender_trust: match inbound.kind {
            InboundKind::Submission { .. } => SenderTrust::Authenticated,
            InboundKind::Mx | InboundKind::Lmtp | InboundKind::Local => SenderTrust::Unverified,
        },
    }
}

impl Context<'_> {
    /// The bytes to store: trace fields, then added fields, then the message exactly as received.
    fn message_bytes(&self) -> Bytes {
        let data = &self.inbound.data;
        let mut out =
            Vec::with_capacity(self.trace_fields.len() + self.added_fields.len() + data.len());
        out.extend_from_slice(self.trace_fields.as_bytes());
        out.extend_from_slice(self.added_fields.as_bytes());
        out.extend_from_slice(data);
        Bytes::from(out)
    }
}

/// Stage 5: one log line per message.
fn log_delivery(ctx: &Context<'_>, stored: &Stored) {
    let mut uids = String::new();
    for (i, a) in stored.appended.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = write!(uids, "{sep}{}:{}", a.mailbox.0, a.uid);
    }
    let failed = stored
        .plan
        .statuses
        .iter()
        .filter(|s| !matches!(s, crate::RecipientStatus::Delivered))
        .count();
    let outcome = if stored.appended.is_empty() && stored.plan.remote.is_empty() {
        "message stored for no recipient"
    } else {
        "message delivered"
    };
    info!(
        session = %ctx.inbound.trace.session_id,
        size = stored.size,
        recipients = ctx.inbound.recipients.len(),
        failed,
        queued = stored.plan.remote.len(),
        uids = %uids,
        message_id = ctx.parsed.as_ref().and_then(|m| m.message_id()).unwrap_or(""),
        "{outcome}"
    );
}
