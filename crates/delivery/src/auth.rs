//! Inbound email authentication with mail-auth: iprev, SPF (RFC 7208) for the HELO and MAIL FROM
//! identities, DKIM (RFC 6376) for every signature, ARC chain validation (RFC 8617) and DMARC
//! (RFC 7489: alignment, p=/sp=), summarised in one `Authentication-Results:` field (RFC 8601)
//! and a decision: accept, Junk, refuse, or defer on a DNS failure.
//!
//! mail-auth 0.13 implements DMARC as revised by RFC 9989 (DMARCbis): the record is found by a DNS
//! tree walk and `pct=` is no longer a tag — `t=y` (testing) lowers the policy one step instead.
//! A `pct=` in a record is therefore ignored: the policy applies to every failing message.

mod cache;
mod spf_record;
mod strip;

use std::net::IpAddr;
use std::sync::Arc;

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::DkimKey;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{DkimError, Done};
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult,
    MessageAuthenticator, SpfResult,
};
use tern_common::config::{DmarcRejectAction, MailAuthConfig, SpfFailAction};
use tern_filter::{AuthResult, Authentication};

use cache::{DnsCaches, with_caches};
pub(crate) use strip::strip_our_results;

/// DKIM signatures verified per message, the topmost; the rest are ignored (see
/// [`strip::limit_dkim_signatures`]). Real mail carries one to three (author, mailing list,
/// ESP); five leaves room and bounds the body hashes and DNS queries one message can cost.
const MAX_DKIM_SIGNATURES: usize = 5;

/// The verifier: a resolver with TTL caches, the policy settings and our authserv-id. Cheap to
/// clone; clones share the caches.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: MessageAuthenticator,
    caches: DnsCaches,
    config: MailAuthConfig,
    /// Our authserv-id (RFC 8601 §2.5): the server's hostname.
    hostname: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hostname", &self.inner.hostname)
            .field("config", &self.inner.config)
            .finish()
    }
}

/// What verification decided for the whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthDecision {
    /// Deliver normally (the filter still scores the results).
    Accept,
    /// Deliver into every recipient's Junk mailbox (DMARC `p=quarantine`, or configured).
    Junk(&'static str),
    /// Refuse at end of DATA with this reply (nothing stored).
    Refuse {
        code: u16,
        status: [u8; 3],
        text: String,
    },
}

/// The outcome of [`Authenticator::verify`].
#[derive(Debug, Clone)]
pub(crate) struct Verification {
    /// The `Authentication-Results:` field, CRLF-terminated.
    pub header: String,
    /// The results as the spam filter sees them.
    pub summary: Authentication,
    /// The policy decision.
    pub decision: AuthDecision,
    /// ARC set (`ARC-Seal`, `ARC-Message-Signature`, `ARC-Authentication-Results`) when sealing
    /// was asked for and possible, CRLF-terminated.
    pub arc_set: Option<String>,
}

/// The session facts verification needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VerifyInput<'a> {
    /// The message as received (before our fields were added).
    pub data: &'a [u8],
    /// The connecting client.
    pub client_ip: IpAddr,
    /// The HELO/EHLO argument.
    pub helo: &'a str,
    /// MAIL FROM, `None` for `<>`.
    pub mail_from: Option<&'a str>,
}

impl Authenticator {
    /// A verifier asking `resolver` (`tern_common::dns::resolver`), naming itself `hostname` in
    /// the `Authentication-Results:` field.
    pub fn new(
        resolver: tern_common::dns::TokioResolver,
        config: MailAuthConfig,
        hostname: &str,
    ) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                resolver: MessageAuthenticator(resolver),
                caches: DnsCaches::default(),
                config,
                hostname: hostname.to_ascii_lowercase(),
            }),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &MailAuthConfig {
        &self.inner.config
    }

    /// Our authserv-id.
    pub fn authserv_id(&self) -> &str {
        &self.inner.hostname
    }

    /// Runs every check and decides. `seal` asks for an ARC set by that sealer (mail forwarded to
    /// external alias targets).
    pub(crate) async fn verify(
        &self,
        input: VerifyInput<'_>,
        seal: Option<&ArcSealer<DkimKey, Done>>,
    ) -> Verification {
        let inner = &*self.inner;
        let (r, c, host) = (&inner.resolver, &inner.caches, inner.hostname.as_str());
        let ip = input.client_ip.to_canonical();
        let helo = input.helo.trim_start_matches('[').trim_end_matches(']');
        let mail_from = input.mail_from.unwrap_or("");
        // RFC 8601 §2.7.3 iprev: the PTR name must resolve back to the client address.
        let iprev = r.verify_iprev(with_caches!(c, ip)).await;
        // RFC 7208 §2.3: check HELO; §2.4: check MAIL FROM (for `<>`, postmaster@HELO).
        let mut spf_helo = r
            .verify_spf(with_caches!(c, SpfParameters::verify_ehlo(ip, helo, host)))
            .await;
        if helo.parse::<IpAddr>().is_err() {
            spf_helo = spf_record::checked(&r.0, helo, spf_helo).await;
        }
        let spf_from = if mail_from.is_empty() {
            spf_helo.clone()
        } else {
            let output = r
                .verify_spf(with_caches!(
                    c,
                    SpfParameters::verify_mail_from(ip, helo, host, mail_from)
                ))
                .await;
            let domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
            spf_record::checked(&r.0, domain, output).await
        };
        let mut results = AuthenticationResults::new(host).with_iprev_result(&iprev, ip);
        if !helo.is_empty() && helo.parse::<IpAddr>().is_err() {
            results = results.with_spf_ehlo_result(&spf_helo, ip, helo);
        }
        results = results.with_spf_mailfrom_result(&spf_from, ip, mail_from, helo);
        let bounded = strip::limit_dkim_signatures(input.data, MAX_DKIM_SIGNATURES);
        let Some(message) = AuthenticatedMessage::parse(bounded.as_deref().unwrap_or(input.data))
        else {
            // No header fields: nothing to verify beyond the envelope.
            return Verification {
                header: results.to_header(),
                summary: Authentication::new(auth_spf(spf_from.result()), false, AuthResult::None),
                decision: self.spf_decision(spf_from.result()),
                arc_set: None,
            };
        };
        // RFC 6376 §6: every signature; RFC 8617 §5.2: the ARC chain.
        let dkim_checked = r.verify_dkim(with_caches!(c, &message)).await;
        let dkim: Vec<DkimOutput<'_>> = dkim_checked.iter().map(body_hash_mismatch_fails).collect();
        let arc = r.verify_arc(with_caches!(c, &message)).await;
        let mail_from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        // RFC 7489 §6.6.1: a message with several From: fields (forbidden by RFC 5322 §3.6) has
        // no single author domain, and mail-auth would exempt it from DMARC when their domains
        // differ: a forger would add a From: of a domain without DMARC next to the one shown.
        // Such a message fails DMARC instead, whatever the signatures say.
        let several_from = crate::author::from_field_count(input.data) > 1;
        // RFC 7489 §6.6: DMARC over the SPF (MAIL FROM) and DKIM results.
        let dmarc = if several_from {
            let first = message.from().rsplit_once('@').map_or("", |(_, d)| d);
            let fail = || DmarcResult::Fail(mail_auth::Error::ParseError);
            DmarcOutput::new(first.to_ascii_lowercase())
                .with_dkim_result(fail())
                .with_spf_result(fail())
        } else {
            r.verify_dmarc(with_caches!(
                c,
                DmarcParameters::new(&message, &dkim, mail_from_domain, &spf_from)
            ))
            .await
        };
        results = results
            .with_dkim_results(&dkim, message.from())
            .with_arc_result(&arc, ip)
            .with_dmarc_result(&dmarc);
        let author = dmarc.domain().to_ascii_lowercase();
        let dkim_author = !author.is_empty()
            && dkim.iter().any(|o| {
                o.result() == &DkimResult::Pass
                    && o.signature()
                        .is_some_and(|s| s.d.eq_ignore_ascii_case(&author))
            });
        let dmarc_result = dmarc.result();
        let summary = Authentication::new(
            auth_spf(spf_from.result()),
            dkim_author,
            auth_dmarc(&dmarc_result),
        );
        let decision = match (&dmarc_result, dmarc.policy()) {
            // The fail of several From: fields (above) has no published policy to follow; RFC
            // 7489 §6.6.1 says such mail is "typically rejected": as the operator treats
            // p=reject.
            (DmarcResult::Fail(_), _) if several_from => match inner.config.dmarc_reject {
                DmarcRejectAction::Reject => AuthDecision::Refuse {
                    code: 550,
                    status: [5, 7, 1],
                    text:
                        "Message rejected: several From: header fields (RFC 5322 §3.6) fail DMARC"
                            .to_owned(),
                },
                DmarcRejectAction::Quarantine => {
                    AuthDecision::Junk("dmarc fail: several From fields (quarantined)")
                }
            },
            // RFC 7489 §6.6.2 / RFC 9989: a DNS error means DMARC can neither pass nor fail; a
            // 4xx makes the sender retry instead of us accepting a possible forgery.
            (DmarcResult::TempError(e), _) => AuthDecision::Refuse {
                code: 451,
                status: [4, 7, 5],
                text: format!("DMARC check for {author} failed temporarily ({e}); try again later"),
            },
            // RFC 7489 §6.3 p=reject: reject (here `550 5.7.1`, RFC 7489 §10.3), or quarantine
            // when the operator prefers.
            (DmarcResult::Fail(_), Policy::Reject) => match inner.config.dmarc_reject {
                DmarcRejectAction::Reject => AuthDecision::Refuse {
                    code: 550,
                    status: [5, 7, 1],
                    text: format!("Message rejected: DMARC policy of {author} (p=reject)"),
                },
                DmarcRejectAction::Quarantine => AuthDecision::Junk("dmarc p=reject (quarantined)"),
            },
            // RFC 7489 §6.3 p=quarantine: "treat as suspicious" — the recipient's Junk mailbox.
            (DmarcResult::Fail(_), Policy::Quarantine) => AuthDecision::Junk("dmarc p=quarantine"),
            _ => self.spf_decision(spf_from.result()),
        };
        let arc_set = seal.and_then(|sealer| {
            if !arc.can_be_sealed() {
                return None;
            }
            match sealer.seal(&message, &results, &arc) {
                Ok(set) => Some(set.to_header()),
                Err(e) => {
                    tracing::warn!(error = %e, "ARC sealing failed; forwarding unsealed");
                    None
                }
            }
        });
        Verification {
            header: results.to_header(),
            summary,
            decision,
            arc_set,
        }
    }

    /// The configured consequence of an SPF result on its own (DMARC, when the From: domain has
    /// a record, has decided before this). RFC 7208 §8.4: on `fail` the receiver may reject.
    /// RFC 7208 §8.6: on `temperror` it may accept or defer; we defer (`451 4.7.24`, RFC 7372
    /// §3.2) exactly when a `fail` would have had a consequence (`reject` or `junk`), so a DNS
    /// failure never lets through what the answer would have stopped, and never delays mail whose
    /// SPF result changes nothing. RFC 7208 §8.7: `permerror` is the sender domain's broken
    /// record, not evidence of forgery: recorded and scored by the filter, never refused.
    fn spf_decision(&self, spf: SpfResult) -> AuthDecision {
        match (self.inner.config.spf_fail, spf) {
            (SpfFailAction::Reject, SpfResult::Fail) => AuthDecision::Refuse {
                code: 550,
                // RFC 7372 §3.2: X.7.23 SPF validation failed.
                status: [5, 7, 23],
                text: "Message rejected: SPF validation failed".to_owned(),
            },
            (SpfFailAction::Reject | SpfFailAction::Junk, SpfResult::TempError) => {
                AuthDecision::Refuse {
                    code: 451,
                    // RFC 7372 §3.2: X.7.24 SPF validation error.
                    status: [4, 7, 24],
                    text: "SPF check failed temporarily; try again later".to_owned(),
                }
            }
            (SpfFailAction::Junk, SpfResult::Fail) => AuthDecision::Junk("spf fail"),
            _ => AuthDecision::Accept,
        }
    }

    /// The DNS caches (tests pre-fill them instead of running a DNS server).
    #[cfg(test)]
    pub(crate) fn caches(&self) -> &DnsCaches {
        &self.inner.caches
    }
}

/// RFC 6376 §6.1.3: a body hash that does not match the `bh=` tag makes the signature fail
/// ("PERMFAIL (body hash did not verify)"), and RFC 8601 §2.7.1 records a signature that "failed
/// the verification test(s)" as `fail`; `neutral` there is for signatures that could not be
/// processed (syntax errors). mail-auth 0.13 reports the mismatch as `neutral`; this maps it back,
/// keeping its comment, so the field reads `dkim=fail (body hash did not verify)`. DMARC is not
/// affected: only `pass` counts for alignment either way (RFC 7489 §4.2).
fn body_hash_mismatch_fails<'x>(output: &'x DkimOutput<'_>) -> DkimOutput<'x> {
    let DkimResult::Neutral(error @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) =
        output.result()
    else {
        return output.clone();
    };
    let mut failed = DkimOutput::fail(error.clone());
    if let Some(signature) = output.signature() {
        failed = failed.with_signature(signature);
    }
    if let Some(address) = output.failure_report_addr() {
        failed = failed.with_report(address.to_owned());
    }
    failed
}

fn auth_spf(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn auth_dmarc(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

#[cfg(test)]
pub(crate) mod tests;
