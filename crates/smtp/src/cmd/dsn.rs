//! The DSN parameters of MAIL and RCPT (RFC 3461 §4): RET and ENVID, NOTIFY and ORCPT.
//! smtp-proto parses them and decodes the xtext; the rules it does not check are here. And the
//! success DSNs for what was stored here (§5.2.3, §5.2.7.3).

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use smtp_proto::{
    MAIL_RET_FULL, MAIL_RET_HDRS, MailFrom, RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE,
    RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS, RcptTo,
};
use tern_store::{DsnReturn, Notify, SenderTrust};

use crate::delivery::RecipientStatus;
use crate::outbound::dsn::{self as report, Dsn, DsnKind, DsnRecipient};
use crate::reply::Reply;
use crate::state::{Flavor, SessionState, Transaction};
use tern_common::body::Message;

/// The smtp-proto flags of MAIL that belong to DSN.
pub(crate) const MAIL_DSN_FLAGS: u64 = MAIL_RET_FULL | MAIL_RET_HDRS;
/// The smtp-proto flags of RCPT that belong to DSN.
pub(crate) const RCPT_DSN_FLAGS: u64 =
    RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY | RCPT_NOTIFY_NEVER;

/// RET and ENVID of a MAIL command whose parameters smtp-proto accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MailDsn {
    pub(crate) ret: Option<DsnReturn>,
    pub(crate) env_id: Option<String>,
}

/// NOTIFY and ORCPT of a RCPT command whose parameters smtp-proto accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RcptDsn {
    pub(crate) notify: Notify,
    pub(crate) orcpt: Option<String>,
}

fn invalid(param: &str) -> Reply {
    Reply::new(
        501,
        [5, 5, 4],
        format!("Invalid value of parameter {param}"),
    )
}

/// RFC 3461 §4: each parameter at most once in a command; smtp-proto keeps the last value (or
/// merges the flags), so the command line itself is looked at. `line` is the whole command;
/// the parameters follow the path's closing `>`.
fn repeated(line: &[u8], keywords: &[&'static str]) -> Option<&'static str> {
    let params = match line.iter().position(|&b| b == b'>') {
        Some(end) => &line[end + 1..],
        None => return None,
    };
    keywords.iter().copied().find(|keyword| {
        params
            .split(|b| b.is_ascii_whitespace())
            .filter(|p| {
                p.len() > keyword.len()
                    && p[keyword.len()] == b'='
                    && p[..keyword.len()].eq_ignore_ascii_case(keyword.as_bytes())
            })
            .count()
            > 1
    })
}

/// RFC 3461 §4.2, §4.4: ENVID and the address of ORCPT, once decoded from xtext, consist of
/// printable US-ASCII (the DSN fields that carry them are ASCII).
fn printable(value: &str) -> bool {
    value.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// RFC 3461 §4.3 RET and §4.4 ENVID. Err is the reply refusing the command.
pub(crate) fn mail(from: &MailFrom<Cow<'_, str>>, line: &[u8]) -> Result<MailDsn, Reply> {
    if let Some(param) = repeated(line, &["RET", "ENVID"]) {
        return Err(Reply::new(
            501,
            [5, 5, 4],
            format!("Parameter {param} given more than once"),
        ));
    }
    let ret = match from.flags & MAIL_DSN_FLAGS {
        0 => None,
        MAIL_RET_FULL => Some(DsnReturn::Full),
        MAIL_RET_HDRS => Some(DsnReturn::Headers),
        // Both: `RET=FULL RET=HDRS` (smtp-proto merges them); the scan above catches it too.
        _ => return Err(invalid("RET")),
    };
    // smtp-proto checked the length: 1 to 100 characters (§4.4).
    let env_id = match &from.env_id {
        Some(id) if !printable(id) => return Err(invalid("ENVID")),
        Some(id) => Some(id.to_string()),
        None => None,
    };
    Ok(MailDsn { ret, env_id })
}

/// RFC 3461 §4.1 NOTIFY and §4.2 ORCPT. Err is the reply refusing the command.
pub(crate) fn rcpt(to: &RcptTo<Cow<'_, str>>, line: &[u8]) -> Result<RcptDsn, Reply> {
    if let Some(param) = repeated(line, &["NOTIFY", "ORCPT"]) {
        return Err(Reply::new(
            501,
            [5, 5, 4],
            format!("Parameter {param} given more than once"),
        ));
    }
    let flags = to.flags & RCPT_DSN_FLAGS;
    // §4.1: NEVER stands alone (smtp-proto refuses it after other keywords, not before them).
    if flags & RCPT_NOTIFY_NEVER != 0 && flags != RCPT_NOTIFY_NEVER {
        return Err(invalid("NOTIFY"));
    }
    let mut notify = 0;
    for (bit, ours) in [
        (RCPT_NOTIFY_SUCCESS, Notify::SUCCESS),
        (RCPT_NOTIFY_FAILURE, Notify::FAILURE),
        (RCPT_NOTIFY_DELAY, Notify::DELAY),
        (RCPT_NOTIFY_NEVER, Notify::NEVER),
    ] {
        if flags & bit != 0 {
            notify |= ours;
        }
    }
    // smtp-proto accepts the addr-type `rfc822` only, with an address of 1 to 256 characters
    // (within the 500 of §4.2), and returns the decoded address.
    let orcpt = match &to.orcpt {
        Some(address) if !printable(address) => return Err(invalid("ORCPT")),
        Some(address) => Some(format!("rfc822;{address}")),
        None => None,
    };
    Ok(RcptDsn {
        notify: Notify(notify),
        orcpt,
    })
}

impl SessionState {
    /// RFC 3461 §5.2.3: a "delivered" DSN for each recipient that asked (NOTIFY=SUCCESS) and is
    /// now in a mailbox here; §5.2.7.3: "expanded" for an alias of ours with several targets
    /// (which are not asked again). A recipient queued for one remote address is reported by the
    /// outbound queue. The DSNs go to the reverse-path (never `<>`) on a task of their own after
    /// the commit, so the reply to the message never waits for them or fails with them. LMTP
    /// gets none: the LMTP client has our reply per recipient and reports final delivery itself.
    /// Nor does a reverse-path that is neither authenticated nor SPF-verified (`sender_trust`).
    pub(crate) fn report_success(
        &self,
        tx: &Transaction,
        statuses: &[&RecipientStatus],
        message: Message,
        received_at: SystemTime,
        sender_trust: SenderTrust,
    ) {
        let Some(sender) = tx.mail_from.as_ref().map(ToString::to_string) else {
            return;
        };
        if self.flavor == Flavor::Lmtp {
            return;
        }
        if !sender_trust.may_receive_success_reports() {
            // RFC 3461 §5.2.2: NOTIFY=SUCCESS is a request an MTA may decline. Anyone can put
            // a victim's address in MAIL FROM on port 25; a report to an address that neither
            // authenticated nor passed SPF would be backscatter carrying attacker-chosen text.
            if tx.recipients.iter().any(|r| r.notify.wants_success()) {
                tracing::info!(
                    session = %self.session_id,
                    from = %sender,
                    trust = ?sender_trust,
                    "success DSN not sent: the sender is neither authenticated nor SPF-verified"
                );
            }
            return;
        }
        let now = unix_seconds(SystemTime::now());
        let mut delivered = Vec::new();
        let mut expanded = Vec::new();
        for (rcpt, status) in tx.recipients.iter().zip(statuses) {
            if !matches!(status, RecipientStatus::Delivered) || !rcpt.notify.wants_success() {
                continue;
            }
            let (list, reason) = if rcpt.is_expansion() {
                (&mut expanded, "delivered to every address it stands for")
            } else if rcpt.remote.is_empty() {
                (&mut delivered, "delivered to the mailbox")
            } else {
                continue;
            };
            list.push(DsnRecipient {
                address: rcpt.address.to_string(),
                orcpt: rcpt.orcpt.clone(),
                status: "2.0.0".into(),
                diagnostic: None,
                reason: reason.into(),
                remote_mta: None,
                last_attempt: now,
                retry_until: None,
            });
        }
        if delivered.is_empty() && expanded.is_empty() {
            return;
        }
        let pipeline = self.ctx.pipeline.clone();
        let limiter = std::sync::Arc::clone(&self.ctx.dsn_limiter);
        let hostname = self.ctx.hostname.clone();
        let session_id = format!("{}-dsn", self.session_id);
        let env_id = tx.dsn.env_id.clone();
        let arrival = unix_seconds(received_at);
        tokio::spawn(async move {
            for (kind, recipients) in [
                (DsnKind::Delivered, delivered),
                (DsnKind::Expanded, expanded),
            ] {
                if recipients.is_empty() {
                    continue;
                }
                let dsn = Dsn {
                    kind,
                    reporting_mta: &hostname,
                    to: &sender,
                    env_id: env_id.as_deref(),
                    arrival,
                    recipients,
                    // The message stays charged to the memory budget until the DSNs are out.
                    original: &message.data,
                    // §4.3: a DSN without failures returns the header whatever RET said.
                    ret: None,
                    sender_trust,
                };
                if let Err(e) = report::send(&pipeline, &limiter, &dsn, session_id.clone()).await {
                    // The message itself is stored; only the report is lost.
                    tracing::warn!(session = %session_id, error = %e, "success DSN not stored");
                }
            }
        });
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use smtp_proto::Request;

    use super::*;

    fn mail_line(line: &str) -> Result<MailDsn, Reply> {
        let bytes = format!("{line}\r\n").into_bytes();
        match Request::parse(&mut bytes.iter()) {
            Ok(Request::Mail { from }) => mail(&from, &bytes),
            other => panic!("{line}: {other:?}"),
        }
    }

    fn rcpt_line(line: &str) -> Result<RcptDsn, Reply> {
        let bytes = format!("{line}\r\n").into_bytes();
        match Request::parse(&mut bytes.iter()) {
            Ok(Request::Rcpt { to }) => rcpt(&to, &bytes),
            other => panic!("{line}: {other:?}"),
        }
    }

    fn code(r: Result<impl std::fmt::Debug, Reply>) -> String {
        let reply = r.expect_err("refused");
        String::from_utf8_lossy(reply.bytes()).into_owned()
    }

    #[test]
    fn ret_and_envid_are_taken_decoded() {
        let dsn = mail_line("MAIL FROM:<a@b.test> RET=HDRS ENVID=QQ+2B314159").unwrap();
        assert_eq!(dsn.ret, Some(DsnReturn::Headers));
        assert_eq!(dsn.env_id.as_deref(), Some("QQ+314159"));
        let dsn = mail_line("MAIL FROM:<a@b.test> ret=full").unwrap();
        assert_eq!(
            dsn,
            MailDsn {
                ret: Some(DsnReturn::Full),
                env_id: None
            }
        );
        assert_eq!(
            mail_line("MAIL FROM:<a@b.test>").unwrap(),
            MailDsn::default()
        );
    }

    #[test]
    fn repeated_or_non_ascii_mail_parameters_are_refused_with_501() {
        for line in [
            "MAIL FROM:<a@b.test> RET=FULL RET=FULL",
            "MAIL FROM:<a@b.test> RET=FULL RET=HDRS",
            "MAIL FROM:<a@b.test> ENVID=x ENVID=y",
            "MAIL FROM:<a@b.test> ENVID=caf+C3+A9",
        ] {
            assert!(code(mail_line(line)).starts_with("501 5.5.4"), "{line}");
        }
    }

    #[test]
    fn notify_and_orcpt_are_taken_decoded() {
        let dsn =
            rcpt_line("RCPT TO:<c@d.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+40x.test").unwrap();
        assert_eq!(dsn.notify, Notify(Notify::SUCCESS | Notify::DELAY));
        assert_eq!(dsn.orcpt.as_deref(), Some("rfc822;Bob@x.test"));
        let dsn = rcpt_line("RCPT TO:<c@d.test> NOTIFY=NEVER").unwrap();
        assert_eq!(dsn.notify, Notify(Notify::NEVER));
        assert_eq!(rcpt_line("RCPT TO:<c@d.test>").unwrap(), RcptDsn::default());
    }

    #[test]
    fn never_with_others_and_repeated_rcpt_parameters_are_refused_with_501() {
        for line in [
            "RCPT TO:<c@d.test> NOTIFY=NEVER,SUCCESS",
            "RCPT TO:<c@d.test> NOTIFY=FAILURE NOTIFY=DELAY",
            "RCPT TO:<c@d.test> ORCPT=rfc822;a@b ORCPT=rfc822;c@d",
        ] {
            assert!(code(rcpt_line(line)).starts_with("501 5.5.4"), "{line}");
        }
    }
}
