//! DATA (RFC 5321 §4.1.1.4) and the end of a message (after `<CRLF>.<CRLF>` or BDAT LAST):
//! checks, then the delivery pipeline, then the reply — 250 only once the pipeline says the
//! message is durable.

use std::time::SystemTime;

use crate::cmd::Outcome;
use crate::delivery::{Inbound, InboundKind, RecipientOutcome, RecipientStatus, Trace};
use crate::error::SessionError;
use crate::message::find_bare_cr_or_lf;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState, Transaction};
use tern_common::body::Message;

impl SessionState {
    pub(crate) fn handle_data(&mut self) -> Outcome {
        let Some(tx) = &self.tx else {
            return r::bad_sequence("Need MAIL before DATA").into();
        };
        if tx.chunks.is_some() {
            // RFC 3030 §2: DATA and BDAT cannot be mixed in one transaction.
            return r::bad_sequence("DATA not allowed after BDAT").into();
        }
        if tx.accepted.is_empty() {
            // RFC 2920 §3.1 / RFC 5321 §3.3: no valid recipients.
            return Reply::new(554, [5, 5, 1], "No valid recipients").into();
        }
        self.message_deadline = self.ctx.message_deadline();
        // RFC 5321 §4.3.2: 354 intermediate reply.
        Outcome::Data(Reply::plain(
            354,
            "Start mail input; end with <CRLF>.<CRLF>",
        ))
    }

    /// The message of the current transaction is complete (its text is dot-unstuffed, CRLF
    /// line ends). Returns one reply, or for LMTP one per accepted RCPT (RFC 2033 §4.2). The
    /// transaction ends either way.
    pub(crate) async fn finish_message(
        &mut self,
        message: Message,
    ) -> Result<Vec<Reply>, SessionError> {
        let Some(tx) = self.tx.take() else {
            return Ok(vec![r::bad_sequence("No mail transaction")]);
        };
        let received_at = SystemTime::now();
        let body = &message.data;
        if let Some(offset) = find_bare_cr_or_lf(body) {
            tracing::info!(
                session = %self.session_id,
                offset,
                size = body.len(),
                "message refused: bare CR or LF (possible SMTP smuggling)"
            );
            // RFC 5321 §2.3.8; RFC 3463 §3.7: 5.6.0 other media error.
            let reply = Reply::new(
                550,
                [5, 6, 0],
                "Message contains bare CR or LF; lines must end with CRLF",
            );
            return Ok(self.per_recipient(&tx, |_| reply.clone()));
        }
        // The volume may have filled while the text arrived (see tern_common::disk).
        if let Err(low) = self.ctx.free_space.check() {
            tracing::info!(session = %self.session_id, "message refused for now: {low}");
            let reply = r::insufficient_storage();
            return Ok(self.per_recipient(&tx, |_| reply.clone()));
        }
        let kind = match (self.flavor, &self.account) {
            (Flavor::Lmtp, _) => InboundKind::Lmtp,
            (Flavor::Submission, Some(account)) => InboundKind::Submission {
                account: account.id,
            },
            (_, _) => InboundKind::Mx,
        };
        let size = body.len();
        let inbound = Inbound {
            mail_from: tx.mail_from.clone(),
            recipients: tx.recipients.clone(),
            data: message.data.clone(),
            trace: Trace {
                helo: self
                    .helo
                    .as_ref()
                    .map(|h| h.name.clone())
                    .unwrap_or_default(),
                client_ip: self.peer.ip(),
                client_name: None,
                protocol: self.trace_protocol(tx.smtputf8),
                tls: self.tls.clone(),
                session_id: self.session_id.clone(),
                received_at,
            },
            kind,
            env_id: tx.dsn.env_id.clone(),
            ret: tx.dsn.ret,
        };
        let (outcomes, sender_trust) = match self.ctx.pipeline.deliver_verified(inbound).await {
            Ok(delivered) => (delivered.outcomes, delivered.sender_trust),
            // The filter refused the message (virus, spam, scan unavailable): its reply, for
            // every recipient; the pipeline logged why.
            Err(crate::delivery::DeliveryError::Refused { code, status, text }) => {
                let reply = Reply::new(code, status, text);
                return Ok(self.per_recipient(&tx, |_| reply.clone()));
            }
            Err(e) => {
                tracing::error!(session = %self.session_id, size, error = %e, "delivery failed");
                return Ok(self.per_recipient(&tx, |_| r::temporary()));
            }
        };
        let statuses: Vec<&RecipientStatus> = tx
            .recipients
            .iter()
            .enumerate()
            .map(|(i, rcpt)| status_of(&outcomes, i, &rcpt.address))
            .collect();
        let delivered = statuses
            .iter()
            .filter(|s| matches!(s, RecipientStatus::Delivered))
            .count();
        tracing::info!(
            session = %self.session_id,
            from = %tx.mail_from.as_ref().map(ToString::to_string).unwrap_or_default(),
            recipients = tx.recipients.len(),
            delivered,
            size,
            "message received"
        );
        if delivered > 0 {
            self.messages += 1;
            self.report_success(&tx, &statuses, message, received_at, sender_trust);
        }
        if self.flavor == Flavor::Lmtp {
            return Ok(self.per_recipient(&tx, |i| {
                recipient_reply(statuses.get(i).copied(), &tx.recipients[i].address)
            }));
        }
        Ok(vec![self.summary_reply(&statuses, delivered)])
    }

    /// RFC 5321 has one reply for the whole message: 250 once any recipient has it (the
    /// others are logged), else the failure, temporary if any failure was.
    fn summary_reply(&self, statuses: &[&RecipientStatus], delivered: usize) -> Reply {
        if delivered == statuses.len() {
            return Reply::new(
                250,
                [2, 0, 0],
                format!("Message accepted, session {}", self.session_id),
            );
        }
        for status in statuses {
            match status {
                RecipientStatus::TempFail(reason) | RecipientStatus::PermFail(reason) => {
                    if delivered > 0 {
                        tracing::warn!(
                            session = %self.session_id,
                            reason = %reason,
                            "message delivered to some recipients only"
                        );
                    }
                }
                RecipientStatus::Delivered => {}
            }
        }
        if delivered > 0 {
            return Reply::new(
                250,
                [2, 0, 0],
                format!(
                    "Message accepted for {delivered} of {} recipients, session {}",
                    statuses.len(),
                    self.session_id
                ),
            );
        }
        let temp = statuses.iter().find_map(|s| match s {
            RecipientStatus::TempFail(reason) => Some(reason.as_str()),
            _ => None,
        });
        match temp {
            Some(reason) if !reason.is_empty() => Reply::new(451, [4, 3, 0], reason.to_owned()),
            Some(_) => r::temporary(),
            None => {
                let reason = statuses
                    .iter()
                    .find_map(|s| match s {
                        RecipientStatus::PermFail(reason) => Some(reason.as_str()),
                        _ => None,
                    })
                    .unwrap_or("Delivery failed");
                Reply::new(550, [5, 0, 0], reason.to_owned())
            }
        }
    }

    /// `reply` for the message of the current transaction: once per accepted RCPT for LMTP
    /// (RFC 2033 §4.2), else once.
    pub(crate) fn reply_for_message(&self, reply: Reply) -> Vec<Reply> {
        match &self.tx {
            Some(tx) => self.per_recipient(tx, |_| reply.clone()),
            None => vec![reply],
        }
    }

    /// One reply per accepted RCPT for LMTP; for SMTP the reply for the first recipient.
    fn per_recipient(&self, tx: &Transaction, reply: impl Fn(usize) -> Reply) -> Vec<Reply> {
        if self.flavor == Flavor::Lmtp {
            tx.accepted.iter().map(|&i| reply(i)).collect()
        } else {
            vec![reply(0)]
        }
    }
}

/// The outcome for recipient `index`: by position, or by address if the pipeline reordered.
fn status_of<'a>(
    outcomes: &'a [RecipientOutcome],
    index: usize,
    address: &tern_common::Address,
) -> &'a RecipientStatus {
    static MISSING: RecipientStatus = RecipientStatus::TempFail(String::new());
    match outcomes.get(index) {
        Some(o) if &o.address == address => &o.status,
        _ => outcomes
            .iter()
            .find(|o| &o.address == address)
            .map(|o| &o.status)
            .unwrap_or(&MISSING),
    }
}

/// RFC 2033 §4.2: the LMTP reply for one recipient.
fn recipient_reply(status: Option<&RecipientStatus>, address: &tern_common::Address) -> Reply {
    match status {
        Some(RecipientStatus::Delivered) => {
            Reply::new(250, [2, 1, 5], format!("<{address}> delivered"))
        }
        Some(RecipientStatus::PermFail(reason)) => {
            Reply::new(550, [5, 0, 0], format!("<{address}> {reason}"))
        }
        Some(RecipientStatus::TempFail(reason)) if !reason.is_empty() => {
            Reply::new(451, [4, 3, 0], format!("<{address}> {reason}"))
        }
        _ => Reply::new(451, [4, 3, 0], format!("<{address}> temporary failure")),
    }
}
