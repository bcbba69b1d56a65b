//! Delivery status notifications (RFC 3464) built with mail-builder: a `multipart/report`
//! (RFC 6522) with a human-readable part, a `message/delivery-status` part with one block per
//! recipient, and the original message's header block (`text/rfc822-headers`, see [`returned`])
//! or, for RET=FULL from an authenticated sender, the whole message (`message/rfc822`). What a
//! reverse-path may receive depends on how far it is trusted ([`SenderTrust`]); how many DSNs one
//! domain receives is capped ([`DsnLimiter`]).

mod limit;
mod returned;

pub use limit::DsnLimiter;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use bytes::Bytes;
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use tern_common::Address;
use tern_directory::Recipient;
use tern_store::{DsnReturn, Notify, SenderTrust};
use tracing::{debug, info, warn};

use self::limit::Admission;

use crate::delivery::{
    Inbound, InboundKind, InboundRecipient, Pipeline, RecipientStatus, Trace, TraceProtocol,
};

/// What a DSN reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnKind {
    /// RFC 3464 §2.3.3 Action: failed — permanent failure or expiry.
    Failed,
    /// Action: delayed — still trying.
    Delayed,
    /// Action: delivered — stored in the recipient's mailbox here (RFC 3461 §5.2.3).
    Delivered,
    /// Action: expanded — one of our aliases delivered to several mailboxes or addresses
    /// (RFC 3461 §5.2.7.3).
    Expanded,
    /// Action: relayed — handed to a next hop that does not offer DSN (RFC 3461 §5.2.2), so no
    /// further notification will come.
    Relayed,
}

impl DsnKind {
    /// The RFC 3464 §2.3.3 action word.
    fn action(self) -> &'static str {
        match self {
            DsnKind::Failed => "failed",
            DsnKind::Delayed => "delayed",
            DsnKind::Delivered => "delivered",
            DsnKind::Expanded => "expanded",
            DsnKind::Relayed => "relayed",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            DsnKind::Failed => "Undelivered Mail Returned to Sender",
            DsnKind::Delayed => "Delayed Mail (still being retried)",
            DsnKind::Delivered | DsnKind::Expanded | DsnKind::Relayed => {
                "Successful Mail Delivery Report"
            }
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            DsnKind::Failed => {
                "Your message could not be delivered to one or more recipients.\r\n\
                 It has been returned below (headers only, unless you asked for the full message).\r\n"
            }
            DsnKind::Delayed => {
                "Your message has not been delivered yet to the recipients below.\r\n\
                 Delivery will be retried; you do not have to resend it.\r\n"
            }
            DsnKind::Delivered => {
                "Your message was delivered to the mailboxes of the recipients below,\r\n\
                 as you asked to be told.\r\n"
            }
            DsnKind::Expanded => {
                "Your message was delivered to the addresses the recipients below stand for,\r\n\
                 as you asked to be told. They will not report on their own.\r\n"
            }
            DsnKind::Relayed => {
                "Your message was passed on for the recipients below to a mail system that\r\n\
                 sends no delivery notifications, so this is the last report you will get.\r\n"
            }
        }
    }
}

/// One recipient's block of the `message/delivery-status` part (RFC 3464 §2.3).
#[derive(Debug, Clone)]
pub struct DsnRecipient {
    /// Final-Recipient (the address we tried).
    pub address: String,
    /// Original-Recipient (RFC 3461 ORCPT as `type;address`), if known.
    pub orcpt: Option<String>,
    /// Status: an RFC 3463 code, e.g. `5.1.1`.
    pub status: String,
    /// Diagnostic-Code: the remote reply (`smtp; 550 5.1.1 ...`) when there was one.
    pub diagnostic: Option<String>,
    /// Our own explanation (DNS failure, expiry ...) when there was no reply, for the human part.
    pub reason: String,
    /// Remote-MTA, if a server was reached.
    pub remote_mta: Option<String>,
    /// Last-Attempt-Date, unix seconds.
    pub last_attempt: i64,
    /// Will-Retry-Until for delayed DSNs, unix seconds.
    pub retry_until: Option<i64>,
}

/// Everything a DSN needs.
#[derive(Debug, Clone)]
pub struct Dsn<'a> {
    /// Failed or delayed.
    pub kind: DsnKind,
    /// Reporting-MTA (our host name).
    pub reporting_mta: &'a str,
    /// The envelope sender, who gets the DSN.
    pub to: &'a str,
    /// RFC 3461 ENVID of the original, if any.
    pub env_id: Option<&'a str>,
    /// Arrival-Date of the original, unix seconds.
    pub arrival: i64,
    /// The recipients reported.
    pub recipients: Vec<DsnRecipient>,
    /// The original message.
    pub original: &'a [u8],
    /// RFC 3461 §4.3 RET of the original: the whole original with a failure (FULL), else its
    /// header.
    pub ret: Option<DsnReturn>,
    /// How far the original's reverse-path (`to`) is trusted: only an authenticated sender gets
    /// more than the header block back.
    pub sender_trust: SenderTrust,
}

fn date(ts: i64) -> String {
    Date::new(ts).to_rfc822()
}

/// RFC 3464 §2.1.2: text fields of the status part are US-ASCII; replace anything else and CR/LF.
fn ascii_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// RFC 3464 §2.3.2: an address of type `rfc822` must be ASCII; a UTF-8 one is `utf-8` (RFC 6533 §3).
fn address_field(address: &str) -> String {
    if address.is_ascii() {
        format!("rfc822; {address}")
    } else {
        format!("utf-8; {}", ascii_line(address))
    }
}

/// Builds the DSN message (CRLF line endings).
pub fn build(dsn: &Dsn<'_>, message_id_host: &str) -> Vec<u8> {
    let mut human = format!(
        "This is the mail system at host {}.\r\n\r\n{}\r\n",
        dsn.reporting_mta,
        dsn.kind.explanation()
    );
    for r in &dsn.recipients {
        human.push_str(&format!(
            "<{}>: {}\r\n",
            r.address,
            r.diagnostic.as_deref().unwrap_or(&r.reason)
        ));
        if let Some(until) = r.retry_until {
            human.push_str(&format!("    (will be retried until {})\r\n", date(until)));
        }
    }

    // RFC 3464 §2.2: per-message fields, then one block per recipient, separated by empty lines.
    let mut status = format!("Reporting-MTA: dns; {}\r\n", dsn.reporting_mta);
    if let Some(id) = dsn.env_id {
        status.push_str(&format!("Original-Envelope-Id: {}\r\n", ascii_line(id)));
    }
    status.push_str(&format!("Arrival-Date: {}\r\n", date(dsn.arrival)));
    for r in &dsn.recipients {
        status.push_str("\r\n");
        if let Some(orcpt) = &r.orcpt {
            status.push_str(&format!("Original-Recipient: {}\r\n", ascii_line(orcpt)));
        }
        status.push_str(&format!(
            "Final-Recipient: {}\r\n",
            address_field(&r.address)
        ));
        status.push_str(&format!("Action: {}\r\n", dsn.kind.action()));
        status.push_str(&format!("Status: {}\r\n", r.status));
        if let Some(mta) = &r.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", ascii_line(mta)));
        }
        match &r.diagnostic {
            Some(d) => status.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", ascii_line(d))),
            // RFC 3464 §2.3.6: without a remote reply, the diagnostic type is ours.
            None => status.push_str(&format!(
                "Diagnostic-Code: X-Tern; {}\r\n",
                ascii_line(&r.reason)
            )),
        }
        status.push_str(&format!("Last-Attempt-Date: {}\r\n", date(r.last_attempt)));
        if let Some(until) = r.retry_until {
            status.push_str(&format!("Will-Retry-Until: {}\r\n", date(until)));
        }
    }

    let headers = returned::header_block(dsn.original);
    let eight_bit = |b: &[u8]| if b.is_ascii() { "7bit" } else { "8bit" };
    // RFC 3461 §4.3: RET=FULL returns the message with a failure; a DSN reporting no failure
    // returns the header only. And only to our own authenticated users: anyone else could
    // write a message for a forged or third-party reverse-path and have us deliver it there,
    // DKIM-signed, inside a report.
    let full = dsn.ret == Some(DsnReturn::Full)
        && dsn.kind == DsnKind::Failed
        && dsn.sender_trust.may_receive_content();
    let original = match full {
        true => MimePart::new(
            ContentType::new("message/rfc822"),
            BodyPart::Binary(Cow::Borrowed(dsn.original)),
        )
        .transfer_encoding(eight_bit(dsn.original)),
        false => MimePart::new(
            ContentType::new("text/rfc822-headers"),
            BodyPart::Binary(Cow::Borrowed(headers)),
        )
        .transfer_encoding(eight_bit(headers)),
    };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new(ContentType::new("text/plain"), BodyPart::Text(human.into())),
            MimePart::new(
                ContentType::new("message/delivery-status"),
                BodyPart::Binary(status.into_bytes().into()),
            )
            .transfer_encoding("7bit"),
            original,
        ]),
    );
    let message_id = format!(
        "{}.{}@{message_id_host}",
        dsn.arrival,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let daemon = format!("MAILER-DAEMON@{}", dsn.reporting_mta);
    let builder = MessageBuilder::new()
        .from(("Mail Delivery System", daemon.as_str()))
        .to(dsn.to)
        .subject(dsn.kind.subject())
        .message_id(message_id)
        // RFC 3834 §5: automatic responses are marked so that nobody auto-replies to them.
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report);
    // Writing into a Vec cannot fail.
    builder.write_to_vec().unwrap_or_default()
}

/// Delivers a DSN to `dsn.to` (the original's reverse-path) through the pipeline as mail from
/// `<>` (RFC 5321 §4.5.5): into the sender's mailbox here, or onto the outbound queue, as far as
/// `limiter` allows for the destination domain. `Ok` also when there is nobody to tell (the
/// sender's address is ours but gone, or the DSN was refused for good) and when the limit
/// dropped it; `Err` when it was not stored and should be tried again.
pub(crate) async fn send(
    pipeline: &Pipeline,
    limiter: &DsnLimiter,
    dsn: &Dsn<'_>,
    session_id: String,
) -> Result<(), String> {
    let sender = dsn.to;
    let address: Address = sender
        .parse()
        .map_err(|e| format!("sender {sender:?} is not an address: {e}"))?;
    let (accounts, remote) = match pipeline
        .directory()
        .resolve_recipient(&address)
        .await
        .map_err(|e| e.to_string())?
    {
        Recipient::Local(accounts) => (accounts, Vec::new()),
        Recipient::Forward { local, external } => (local, external),
        Recipient::NotLocal => (Vec::new(), vec![address.clone()]),
        Recipient::Unknown => {
            warn!(session = %session_id, sender, "the sender no longer exists; DSN dropped");
            return Ok(());
        }
    };
    // DSNs to our own users stay here: the cap is for mail that leaves, where a flood of reports
    // would land on a third party.
    if !remote.is_empty() {
        let domain = address.domain().to_string();
        match limiter.admit(&domain) {
            Admission::Send => {}
            Admission::Drop { first: true } => {
                warn!(session = %session_id, domain, kind = ?dsn.kind, "DSN limit per domain reached; DSNs to this domain are dropped for the rest of the hour");
                return Ok(());
            }
            Admission::Drop { first: false } => {
                debug!(session = %session_id, to = sender, kind = ?dsn.kind, "DSN dropped: limit per domain reached");
                return Ok(());
            }
        }
    }
    let hostname = pipeline.hostname().to_owned();
    let bytes = build(dsn, &hostname);
    let inbound = Inbound {
        mail_from: None,
        recipients: vec![InboundRecipient {
            address,
            accounts,
            remote,
            // From `<>`: nobody is notified about a DSN whatever NOTIFY says.
            notify: Notify::default(),
            orcpt: None,
        }],
        data: Bytes::from(bytes),
        trace: Trace {
            helo: hostname.clone(),
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            client_name: Some(hostname),
            protocol: TraceProtocol::Esmtp,
            tls: None,
            session_id: session_id.clone(),
            received_at: SystemTime::now(),
        },
        kind: InboundKind::Local,
        env_id: None,
        ret: None,
    };
    let outcomes = pipeline.deliver(inbound).await.map_err(|e| e.to_string())?;
    match outcomes.first().map(|o| &o.status) {
        Some(RecipientStatus::Delivered) => {
            info!(session = %session_id, to = sender, kind = ?dsn.kind, "DSN sent");
            Ok(())
        }
        Some(RecipientStatus::PermFail(e)) => {
            warn!(session = %session_id, to = sender, error = %e, "DSN undeliverable; dropped");
            Ok(())
        }
        Some(RecipientStatus::TempFail(e)) => Err(e.clone()),
        None => Err("no DSN outcome".into()),
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    use super::*;

    const ORIGINAL: &[u8] = b"Received: from x by y\r\nFrom: alice@a.test\r\nTo: bob@b.test\r\n\
Subject: lunch?\r\nMessage-ID: <m1@a.test>\r\n\r\nsecret body\r\n";

    fn dsn(kind: DsnKind, ret: Option<DsnReturn>) -> Vec<u8> {
        dsn_to(kind, ret, SenderTrust::Authenticated, ORIGINAL)
    }

    fn dsn_to(
        kind: DsnKind,
        ret: Option<DsnReturn>,
        sender_trust: SenderTrust,
        original: &[u8],
    ) -> Vec<u8> {
        build(
            &Dsn {
                kind,
                reporting_mta: "mx.a.test",
                to: "alice@a.test",
                env_id: Some("env-1"),
                arrival: 1_700_000_000,
                recipients: vec![DsnRecipient {
                    address: "bob@b.test".into(),
                    orcpt: None,
                    status: "5.1.1".into(),
                    diagnostic: Some("550 5.1.1 <bob@b.test>: no such user".into()),
                    reason: String::new(),
                    remote_mta: Some("mx.b.test".into()),
                    last_attempt: 1_700_000_100,
                    retry_until: (kind == DsnKind::Delayed).then_some(1_700_400_000),
                }],
                original,
                ret,
                sender_trust,
            },
            "mx.a.test",
        )
    }

    fn text(part: &mail_parser::MessagePart<'_>) -> String {
        match &part.body {
            PartType::Text(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
            other => panic!("unexpected part {other:?}"),
        }
    }

    #[test]
    fn a_failure_dsn_is_a_delivery_status_report_with_the_original_headers() {
        let bytes = dsn(DsnKind::Failed, Some(DsnReturn::Headers));
        let m = MessageParser::default().parse(&bytes[..]).unwrap();
        let ct = m.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(m.subject(), Some("Undelivered Mail Returned to Sender"));
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        let parts: Vec<_> = m.parts.iter().skip(1).collect();
        assert_eq!(parts.len(), 3);
        assert!(text(parts[0]).contains("no such user"));
        let status_ct = parts[1].content_type().unwrap();
        assert_eq!(
            (status_ct.ctype(), status_ct.subtype()),
            ("message", Some("delivery-status"))
        );
        let status = text(parts[1]);
        for line in [
            "Reporting-MTA: dns; mx.a.test",
            "Original-Envelope-Id: env-1",
            "Final-Recipient: rfc822; bob@b.test",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; mx.b.test",
            "Diagnostic-Code: smtp; 550 5.1.1 <bob@b.test>: no such user",
        ] {
            assert!(status.contains(line), "{line:?} missing in\n{status}");
        }
        let headers_ct = parts[2].content_type().unwrap();
        assert_eq!(
            (headers_ct.ctype(), headers_ct.subtype()),
            ("text", Some("rfc822-headers"))
        );
        let headers = text(parts[2]);
        assert!(headers.contains("Subject: lunch?"));
        assert!(headers.contains("Message-ID: <m1@a.test>"));
        assert!(!headers.contains("secret body"), "RET=HDRS returns no body");
    }

    #[test]
    fn a_delay_dsn_says_delayed_and_until_when_with_the_header_only() {
        let bytes = dsn(DsnKind::Delayed, Some(DsnReturn::Full));
        let m = MessageParser::default().parse(&bytes[..]).unwrap();
        assert_eq!(m.subject(), Some("Delayed Mail (still being retried)"));
        let status = text(&m.parts[2]);
        assert!(status.contains("Action: delayed"));
        assert!(status.contains("Will-Retry-Until: "));
        // RFC 3461 §4.3: RET=FULL is for failures.
        let returned = text(&m.parts[3]);
        assert!(returned.contains("Subject: lunch?"));
        assert!(!returned.contains("secret body"));
    }

    #[test]
    fn ret_full_returns_the_whole_message_with_a_failure() {
        let bytes = dsn(DsnKind::Failed, Some(DsnReturn::Full));
        let m = MessageParser::default().parse(&bytes[..]).unwrap();
        assert!(text(&m.parts[3]).contains("secret body"));
    }

    #[test]
    fn ret_full_from_a_sender_who_did_not_authenticate_returns_the_header_block_only() {
        for trust in [
            SenderTrust::SpfPass,
            SenderTrust::Unverified,
            SenderTrust::Failed,
        ] {
            let bytes = dsn_to(DsnKind::Failed, Some(DsnReturn::Full), trust, ORIGINAL);
            let m = MessageParser::default().parse(&bytes[..]).unwrap();
            let returned = &m.parts[3];
            assert_eq!(
                returned.content_type().unwrap().subtype(),
                Some("rfc822-headers"),
                "{trust:?}"
            );
            assert!(text(returned).contains("Subject: lunch?"), "{trust:?}");
            assert!(!text(returned).contains("secret body"), "{trust:?}");
        }
    }

    #[test]
    fn a_message_without_an_empty_line_returns_its_field_lines_and_not_its_text() {
        let original = b"Subject: you won\r\nDear victim, send your bank details to\r\n\
X-Contact: scam@evil.test\r\nregards\r\n";
        let bytes = dsn_to(DsnKind::Delivered, None, SenderTrust::SpfPass, original);
        let m = MessageParser::default().parse(&bytes[..]).unwrap();
        let returned = text(&m.parts[3]);
        assert!(returned.contains("Subject: you won"), "{returned}");
        for payload in ["Dear victim", "X-Contact", "regards"] {
            assert!(!returned.contains(payload), "{payload} in {returned}");
        }
    }

    #[test]
    fn success_dsns_name_their_action_and_return_the_header_only() {
        for (kind, action) in [
            (DsnKind::Delivered, "Action: delivered"),
            (DsnKind::Expanded, "Action: expanded"),
            (DsnKind::Relayed, "Action: relayed"),
        ] {
            let bytes = dsn(kind, Some(DsnReturn::Full));
            let m = MessageParser::default().parse(&bytes[..]).unwrap();
            assert_eq!(m.subject(), Some("Successful Mail Delivery Report"));
            assert!(text(&m.parts[2]).contains(action), "{kind:?}");
            assert!(!text(&m.parts[3]).contains("secret body"), "{kind:?}");
        }
    }
}
