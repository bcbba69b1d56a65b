//! `tern-filter`: spam scoring (rules + a statistical classifier with site-wide and per-account
//! training), DNS blocklists and virus scanning with clamd. The delivery pipeline calls
//! [`Filter::check`] once per message; IMAP calls [`Filter::learn`] when a user moves mail into or
//! out of Junk; `tern spam train` calls [`Filter::learn_batch`].
//!
//! # Score
//!
//! `score = Σ rule points + bayes_weight · (2·p − 1)`, where `p` is the classifier's spam
//! probability from Robinson–Fisher combining (`classify.rs`) over the pooled counts of the
//! site-wide and the recipient account's token sets. Until `bayes_min_messages` of each class have
//! been learned the classifier abstains (adds 0). Thresholds: `junk_threshold` → Junk,
//! `reject_threshold` → refused.
//!
//! # Implementation notes
//!
//! Invariants this crate keeps, and every change must keep:
//!
//! - **Never silently unscanned.** With clamd configured, every message is either scanned, or
//!   refused for now (`Refusal::ScanFailed`, the default for a failed scan and for a message
//!   above `max_scan_size`), or — only where the operator chose `accept` — delivered with an
//!   `X-Virus-Scan: failed`/`skipped` field and a log line.
//! - **Allow-listed senders never go to Junk** and are never refused for their score (a virus is
//!   still refused). The sender is the envelope sender or any `From:` address.
//! - **A message is refused for spam only if every recipient would refuse it:** every recipient
//!   account, and — when it is also forwarded elsewhere — the rules and global classifier, so that
//!   forwarding aliases are filtered like mailboxes. Otherwise the accounts above the reject threshold get it in Junk. SMTP has one reply per message, and
//!   one account's strict setting must not cost the others their mail.
//! - **The classifier cannot fail delivery.** A store error while reading token counts or sender
//!   lists is logged and the message is scored without them.
//! - **Scoring and learning see the same tokens:** the client IP of an incoming message yields the
//!   tokens the `Received:` field added by the pipeline yields when the stored copy is learned.
//! - **Headers show one score.** The added fields carry the score of the only recipient account, or
//!   with several accounts the site-wide score (rules + site-wide classifier); each account's own
//!   decision only picks its mailbox, since all copies share one stored blob.
#![forbid(unsafe_code)]

mod clamd;
mod classify;
mod dnsbl;
mod html;
mod memory;
mod rules;
mod tokenize;
mod verdict;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use mail_parser::{Message, MessageParser};
use tern_common::config::{ClamdFailure, FilterConfig};
use tern_store::{AccountId, SenderRule, SpamCounts, Store, StoreError, TokenCounts};

pub use clamd::{Clamd, ClamdError, ScanResult, parse_reply};
pub use dnsbl::{DnsLookup, LookupFuture, ResolverLookup};
pub use memory::MemoryClassifier;
pub use rules::RuleHit;
pub use tern_store::{LearnOutcome, SenderAction, SpamClass, TokenScope};
pub use verdict::{AccountVerdict, Action, Refusal, Verdict};

/// Errors of learning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The store failed; nothing was learned.
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
    /// The data has no header fields; there is nothing to learn from.
    #[error("not a mail message")]
    NotAMessage,
}

/// Where a message came from; decides which checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// SMTP on port 25: every check.
    Mx,
    /// LMTP from a local MTA: every check except DNSBL and forged-`Received` (the client is our
    /// own MTA, not the sender).
    Lmtp,
    /// An authenticated submission: virus scan only; users are not spam-scored on their own mail.
    Submission,
}

/// One message as the filter sees it. Built with [`MessageInput::new`] and the setters, so more
/// inputs (authentication results) can be added without breaking callers.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MessageInput<'a> {
    /// The message as received.
    pub raw: &'a [u8],
    /// Its parse (`None` if it has no header fields).
    pub parsed: Option<&'a Message<'a>>,
    /// Where it came from.
    pub origin: Origin,
    /// The connecting client's address.
    pub client_ip: Option<IpAddr>,
    /// The envelope sender (MAIL FROM), `None` for the null sender.
    pub envelope_sender: Option<&'a str>,
    /// SPF/DKIM/DMARC results of the authentication stage; `None` when it did not run
    /// (submission, trusted relay, verification off).
    pub authentication: Option<Authentication>,
    /// Whether the message also goes to recipients no account of ours owns (forwarding alias
    /// targets on other servers). Their copy is judged by the rules and the global classifier.
    pub forwarded: bool,
}

/// One SPF or DMARC result (RFC 8601 §2.7 result names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthResult {
    /// No policy published / nothing to check.
    #[default]
    None,
    /// Authenticated.
    Pass,
    /// Explicitly not authorised.
    Fail,
    /// SPF `~all`: probably not authorised.
    SoftFail,
    /// SPF `?all`: no statement.
    Neutral,
    /// A DNS error prevented the check.
    TempError,
    /// The published record is broken.
    PermError,
}

/// The authentication results the rules see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Authentication {
    /// SPF for the MAIL FROM identity (RFC 7208).
    pub spf: AuthResult,
    /// A DKIM signature of the `From:` domain verified (RFC 6376).
    pub dkim_author_domain: bool,
    /// DMARC (RFC 7489).
    pub dmarc: AuthResult,
}

impl Authentication {
    /// The results of one message.
    pub fn new(spf: AuthResult, dkim_author_domain: bool, dmarc: AuthResult) -> Self {
        Authentication {
            spf,
            dkim_author_domain,
            dmarc,
        }
    }
}

impl<'a> MessageInput<'a> {
    /// The message and its parse.
    pub fn new(raw: &'a [u8], parsed: Option<&'a Message<'a>>, origin: Origin) -> Self {
        MessageInput {
            raw,
            parsed,
            origin,
            client_ip: None,
            envelope_sender: None,
            authentication: None,
            forwarded: false,
        }
    }

    /// Marks the message as also forwarded to recipients no account of ours owns.
    pub fn forwarded(mut self, forwarded: bool) -> Self {
        self.forwarded = forwarded;
        self
    }

    /// Sets the authentication results.
    pub fn authentication(mut self, auth: Option<Authentication>) -> Self {
        self.authentication = auth;
        self
    }

    /// Sets the connecting client's address.
    pub fn client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// Sets the envelope sender.
    pub fn envelope_sender(mut self, sender: Option<&'a str>) -> Self {
        self.envelope_sender = sender;
        self
    }
}

/// The filter. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Filter {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    config: FilterConfig,
    store: Store,
    hostname: String,
    domains: Vec<String>,
    clamd: Option<Clamd>,
    dns: Option<Arc<dyn DnsLookup>>,
}

impl Filter {
    /// A filter reading its token counts and sender lists from `store`. `hostname` and `domains`
    /// (lowercase) are this server's, for the spoofing rules.
    pub fn new(config: FilterConfig, store: Store, hostname: &str, domains: &[String]) -> Filter {
        let clamd = config
            .clamd
            .clone()
            .map(|address| Clamd::new(address, config.clamd_timeout));
        Filter {
            inner: Arc::new(Inner {
                config,
                store,
                hostname: hostname.to_ascii_lowercase(),
                domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
                clamd,
                dns: None,
            }),
        }
    }

    /// Uses `dns` for the DNSBL queries; without one, configured zones are not queried (logged
    /// once at start-up by the caller).
    pub fn with_dns(self, dns: Arc<dyn DnsLookup>) -> Filter {
        let mut inner = (*self.inner).clone();
        inner.dns = Some(dns);
        Filter {
            inner: Arc::new(inner),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &FilterConfig {
        &self.inner.config
    }

    /// Scans and scores one message for the given recipient accounts (duplicates are ignored).
    pub async fn check(&self, input: &MessageInput<'_>, accounts: &[AccountId]) -> Verdict {
        let mut verdict = Verdict::deliver(accounts);
        let mut virus_field = String::new();
        if let Some(refusal) = self.virus_scan(input, &mut virus_field).await {
            verdict.refusal = Some(refusal);
            return verdict;
        }
        let config = &self.inner.config;
        let scored = match input.parsed {
            Some(msg) if config.spam && input.origin != Origin::Submission => {
                self.score(input, msg, &mut verdict).await
            }
            _ => String::new(),
        };
        verdict.fields = scored + &virus_field;
        verdict
    }

    /// Learns one message into an account's token set (IMAP learn-on-move). One transaction.
    pub async fn learn(
        &self,
        account: AccountId,
        raw: &[u8],
        class: SpamClass,
    ) -> Result<LearnOutcome, FilterError> {
        let m = training_message(TokenScope::Account(account), raw, class)
            .ok_or(FilterError::NotAMessage)?;
        let mut out = self.inner.store.learn_spam(vec![m]).await?;
        out.pop()
            .ok_or_else(|| FilterError::Storage(StoreError::Database("no learn result".into())))
    }

    /// Learns many messages in one transaction (`tern spam train`); messages without header fields
    /// are skipped and reported as `None`.
    pub async fn learn_batch(
        &self,
        scope: TokenScope,
        messages: &[(&[u8], SpamClass)],
    ) -> Result<Vec<Option<LearnOutcome>>, FilterError> {
        let prepared: Vec<_> = messages
            .iter()
            .map(|&(raw, class)| training_message(scope, raw, class))
            .collect();
        let mut learned = self
            .inner
            .store
            .learn_spam(prepared.iter().flatten().cloned().collect())
            .await?
            .into_iter();
        Ok(prepared
            .iter()
            .map(|p| p.as_ref().and_then(|_| learned.next()))
            .collect())
    }

    /// Virus scan; returns a refusal, or appends the `X-Virus-Scan` field when clamd is configured.
    async fn virus_scan(&self, input: &MessageInput<'_>, field: &mut String) -> Option<Refusal> {
        let clamd = self.inner.clamd.as_ref()?;
        let config = &self.inner.config;
        if input.raw.len() as u64 > config.max_scan_size {
            let size = input.raw.len();
            let max_scan_size = config.max_scan_size;
            return match config.too_large_to_scan {
                ClamdFailure::Tempfail => {
                    tracing::warn!(
                        size,
                        max_scan_size,
                        "message larger than max_scan_size deferred (filter.too_large_to_scan)"
                    );
                    Some(Refusal::ScanFailed(format!(
                        "message of {size} bytes is larger than max_scan_size ({max_scan_size})"
                    )))
                }
                ClamdFailure::Accept => {
                    tracing::warn!(
                        size,
                        max_scan_size,
                        "message larger than max_scan_size delivered without virus scan"
                    );
                    *field = "X-Virus-Scan: skipped (larger than max_scan_size)\r\n".to_owned();
                    None
                }
            };
        }
        match clamd.scan(input.raw).await {
            Ok(ScanResult::Clean) => {
                *field = "X-Virus-Scan: clean (clamd)\r\n".to_owned();
                None
            }
            Ok(ScanResult::Infected(signature)) => {
                tracing::info!(signature = %signature, "virus found");
                Some(Refusal::Virus(signature))
            }
            Err(e) => match config.clamd_failure {
                ClamdFailure::Tempfail => {
                    tracing::error!(error = %e, "virus scan failed; message deferred");
                    Some(Refusal::ScanFailed(e.to_string()))
                }
                ClamdFailure::Accept => {
                    tracing::error!(error = %e, "virus scan failed; message accepted unscanned");
                    *field = "X-Virus-Scan: failed (clamd unavailable)\r\n".to_owned();
                    None
                }
            },
        }
    }

    /// Rules, classifier and sender lists; fills the per-account verdicts and returns the spam
    /// header fields.
    async fn score(
        &self,
        input: &MessageInput<'_>,
        msg: &Message<'_>,
        verdict: &mut Verdict,
    ) -> String {
        let inner = &*self.inner;
        let config = &inner.config;
        let analysis = tokenize::analyze(msg);
        let site = rules::Site {
            hostname: &inner.hostname,
            domains: &inner.domains,
        };
        let mut hits = rules::evaluate(msg, &analysis, site, input.origin == Origin::Mx);
        hits.extend(rules::authentication(input.authentication.as_ref()));
        if let (Origin::Mx, Some(ip), Some(dns)) = (input.origin, input.client_ip, &inner.dns) {
            hits.extend(
                dnsbl::check(
                    dns.as_ref(),
                    ip,
                    &config.dnsbl_zones,
                    config.dnsbl_weight,
                    config.dnsbl_timeout,
                )
                .await,
            );
        }
        let rule_points: f64 = hits.iter().map(|h| h.points).sum();
        // Global counts and every recipient's, in one store read.
        let scopes: Vec<TokenScope> = std::iter::once(TokenScope::Global)
            .chain(
                verdict
                    .accounts
                    .iter()
                    .map(|a| TokenScope::Account(a.account)),
            )
            .collect();
        let mut counts = if self.classifier_can_decide(&scopes).await {
            let tokens = token_hashes(&tokenize::tokens(msg, &analysis, input.client_ip));
            self.counts(&scopes, &tokens).await
        } else {
            vec![None; scopes.len()]
        }
        .into_iter();
        let global = counts.next().flatten();
        let senders = sender_addresses(msg, input.envelope_sender);
        for a in &mut verdict.accounts {
            let own = counts.next().flatten();
            a.bayes = bayes(&global, own.as_ref(), config.bayes_min_messages);
            a.score = rule_points + bayes_points(a.bayes, config.bayes_weight);
            a.sender = match inner.store.spam_senders(a.account).await {
                Ok(list) => sender_action(&list, &senders),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read sender list; scoring without it");
                    None
                }
            };
            a.action = match a.sender {
                Some(SenderAction::Allow) => Action::Inbox,
                Some(SenderAction::Block) => Action::Reject,
                None if a.score >= config.reject_threshold => Action::Reject,
                None if a.score >= config.junk_threshold => Action::Junk,
                None => Action::Inbox,
            };
        }
        // Forwarded copies have no account to judge them: the rules and the global classifier
        // do, with the same thresholds, so that an alias to an outside mailbox does not turn
        // this server into a spam relay (no allow or block list applies to them).
        let forwarded_score = input.forwarded.then(|| {
            rule_points
                + bayes_points(
                    bayes(&global, None, config.bayes_min_messages),
                    config.bayes_weight,
                )
        });
        let judged = !verdict.accounts.is_empty() || forwarded_score.is_some();
        if judged
            && verdict.accounts.iter().all(|a| a.action == Action::Reject)
            && forwarded_score.is_none_or(|s| s >= config.reject_threshold)
        {
            let max = verdict
                .accounts
                .iter()
                .map(|a| a.score)
                .chain(forwarded_score)
                .fold(f64::MIN, f64::max);
            verdict.refusal = Some(Refusal::Spam(max));
        }
        let (score, bayes_p, sender, spam) = match verdict.accounts.as_slice() {
            [only] => (
                only.score,
                only.bayes,
                only.sender,
                only.action != Action::Inbox,
            ),
            _ => {
                let p = bayes(&global, None, config.bayes_min_messages);
                let s = rule_points + bayes_points(p, config.bayes_weight);
                (s, p, None, s >= config.junk_threshold)
            }
        };
        verdict::spam_fields(score, config.junk_threshold, spam, &hits, bayes_p, sender)
    }

    /// Whether the classifier has learned enough to give an opinion for any of `scopes` (the
    /// global scope first, then each recipient's, pooled with the global one as [`bayes`] does).
    /// Until it has, tokenizing the message and reading the counts of its tokens is wasted work
    /// on every delivery, the normal state of a new server. A store failure counts as "cannot".
    async fn classifier_can_decide(&self, scopes: &[TokenScope]) -> bool {
        let min = self.inner.config.bayes_min_messages;
        let totals = match self.inner.store.spam_totals(scopes).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read spam totals; scoring without them");
                return false;
            }
        };
        let Some((&global, own)) = totals.split_first() else {
            return false;
        };
        let enough = |t: TokenCounts| t.spam >= min && t.ham >= min;
        enough(global)
            || own.iter().any(|&o| {
                enough(TokenCounts {
                    spam: global.spam + o.spam,
                    ham: global.ham + o.ham,
                })
            })
    }

    /// Token counts of each scope (in order); a store failure is logged and treated as "nothing
    /// learned" (`None` for every scope).
    async fn counts(&self, scopes: &[TokenScope], tokens: &[u64]) -> Vec<Option<SpamCounts>> {
        match self.inner.store.spam_counts_in(scopes, tokens).await {
            Ok(c) => c.into_iter().map(Some).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read spam token counts; scoring without them");
                vec![None; scopes.len()]
            }
        }
    }
}

/// The distinct 64-bit hashes of a token set.
fn token_hashes(tokens: &BTreeSet<String>) -> Vec<u64> {
    let mut h: Vec<u64> = tokens
        .iter()
        .map(|t| tokenize::hash(t.as_bytes()))
        .collect();
    h.sort_unstable();
    h.dedup();
    h
}

/// The classifier's probability over the pooled site-wide and account counts.
fn bayes(global: &Option<SpamCounts>, own: Option<&SpamCounts>, min: u64) -> Option<f64> {
    let global = global.as_ref()?;
    let add = |a: TokenCounts, b: Option<TokenCounts>| {
        let b = b.unwrap_or_default();
        TokenCounts {
            spam: a.spam + b.spam,
            ham: a.ham + b.ham,
        }
    };
    let messages = add(global.messages, own.map(|o| o.messages));
    let tokens: Vec<TokenCounts> = global
        .tokens
        .iter()
        .enumerate()
        .map(|(i, &g)| add(g, own.and_then(|o| o.tokens.get(i).copied())))
        .collect();
    classify::spam_probability(&tokens, messages, min)
}

/// `bayes_weight · (2p − 1)`: −weight for certain ham, +weight for certain spam, 0 without opinion.
fn bayes_points(p: Option<f64>, weight: f64) -> f64 {
    p.map_or(0.0, |p| weight * (2.0 * p - 1.0))
}

/// Lowercased envelope sender and `From:` addresses.
fn sender_addresses(msg: &Message<'_>, envelope: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = envelope.map(str::to_ascii_lowercase).into_iter().collect();
    if let Some(from) = msg.from() {
        out.extend(
            from.iter()
                .filter_map(|a| a.address())
                .map(str::to_ascii_lowercase),
        );
    }
    out
}

/// The list entry matching any sender: an exact address, or a domain matching the address's
/// domain or a parent of it. Block wins over allow when both match (explicit refusal is rarer and
/// more deliberate).
fn sender_action(list: &[SenderRule], senders: &[String]) -> Option<SenderAction> {
    let matches = |rule: &SenderRule| {
        senders.iter().any(|s| {
            if rule.pattern.contains('@') {
                *s == rule.pattern
            } else {
                let domain = s.rsplit_once('@').map_or("", |(_, d)| d);
                domain == rule.pattern
                    || domain
                        .strip_suffix(rule.pattern.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
        })
    };
    let mut found = None;
    for rule in list.iter().filter(|r| matches(r)) {
        if rule.action == SenderAction::Block {
            return Some(SenderAction::Block);
        }
        found = Some(rule.action);
    }
    found
}

/// Tokens and fingerprint of a message to learn; `None` without header fields.
pub fn training_message(
    scope: TokenScope,
    raw: &[u8],
    class: SpamClass,
) -> Option<tern_store::TrainingMessage> {
    let msg = MessageParser::default().parse(raw)?;
    let analysis = tokenize::analyze(&msg);
    let tokens = token_hashes(&tokenize::tokens(&msg, &analysis, None));
    Some(tern_store::TrainingMessage {
        scope,
        class,
        fingerprint: fingerprint(&msg, raw),
        tokens,
    })
}

/// Identifies a message across copies: its Message-ID, else its body bytes. The fields this
/// server adds on delivery sit in the header, so a stored copy has the fingerprint of the
/// original.
fn fingerprint(msg: &Message<'_>, raw: &[u8]) -> u64 {
    match msg.message_id() {
        Some(id) => tokenize::hash(format!("mid:{id}").as_bytes()),
        None => {
            let body = msg.root_part().offset_body as usize;
            tokenize::hash(raw.get(body..).unwrap_or(raw))
        }
    }
}

#[cfg(test)]
mod tests;
