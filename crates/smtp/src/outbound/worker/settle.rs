//! Recording the results of an attempt: delivered, deferred with backoff, or failed with a DSN.

use bytes::Bytes;
use tern_store::{AttemptOutcome, QueuedMessage, QueuedRecipient};
use tracing::{info, warn};

use super::{Accepted, Failure, Job, Outbound, secs, unix_now};
use crate::outbound::dsn::{self, Dsn, DsnKind, DsnRecipient};

impl Outbound {
    /// Records the results of one job: delivered, deferred with backoff, or failed (after expiry
    /// too) with a DSN; a "delayed" DSN once the message is old enough.
    pub(super) async fn settle(&self, job: Job, results: Vec<Result<Accepted, Failure>>) {
        let now = unix_now();
        let m = &job.message;
        let mut outcomes = Vec::with_capacity(results.len());
        let mut bounced: Vec<(&QueuedRecipient, Failure)> = Vec::new();
        let mut delayed: Vec<(&QueuedRecipient, Failure, i64)> = Vec::new();
        let mut relayed: Vec<DsnRecipient> = Vec::new();
        for (rcpt, result) in job.recipients.iter().zip(results) {
            match result {
                Ok(accepted) => {
                    info!(queue_id = %m.id, rcpt = %rcpt.address, attempts = rcpt.attempts + 1, reply = %accepted.reply, "outbound: delivered");
                    if rcpt.notify.wants_success() && !accepted.notifies {
                        relayed.push(DsnRecipient {
                            address: rcpt.address.clone(),
                            orcpt: rcpt.orcpt.clone(),
                            status: "2.0.0".into(),
                            diagnostic: Some(accepted.reply.clone()),
                            reason: String::new(),
                            remote_mta: Some(accepted.host),
                            last_attempt: now,
                            retry_until: None,
                        });
                    }
                    outcomes.push((rcpt.id, AttemptOutcome::Delivered(accepted.reply)));
                }
                Err(f) if f.permanent || now >= rcpt.expires_at => {
                    let f = if f.permanent {
                        f
                    } else {
                        // RFC 3463 X.4.7: delivery time expired.
                        Failure {
                            permanent: true,
                            status: "5.4.7".into(),
                            reason: format!(
                                "gave up after {} attempts; last error: {}",
                                rcpt.attempts + 1,
                                f.text()
                            ),
                            ..f
                        }
                    };
                    info!(queue_id = %m.id, rcpt = %rcpt.address, status = %f.status, error = %f.text(), "outbound: failed permanently");
                    bounced.push((rcpt, f));
                }
                Err(f) => {
                    let delay = self.config.retry_delay(rcpt.attempts + 1);
                    let next = now.saturating_add(secs(delay)).min(rcpt.expires_at);
                    info!(queue_id = %m.id, rcpt = %rcpt.address, error = %f.text(), retry_in = next - now, "outbound: deferred");
                    delayed.push((rcpt, f, next));
                }
            }
        }
        let mut bytes = None;
        if !bounced.is_empty() {
            let wanted: Vec<_> = bounced
                .iter()
                .filter(|(r, _)| r.notify.wants_failure())
                .collect();
            let sent = if m.mail_from.is_none() || wanted.is_empty() {
                Ok(())
            } else if !m.sender_trust.may_receive_failure_reports() {
                // Forwarded mail whose sender failed SPF or DMARC: the reverse-path is probably
                // forged, and a bounce would be backscatter to whoever owns it.
                info!(queue_id = %m.id, trust = ?m.sender_trust, "outbound: failure DSN not sent: the sender failed SPF or DMARC");
                Ok(())
            } else {
                let original = self.original(m, &mut bytes).await;
                let recipients = wanted
                    .iter()
                    .map(|(r, f)| dsn_recipient(r, f, now, None))
                    .collect();
                self.send_dsn(m, DsnKind::Failed, recipients, &original)
                    .await
            };
            for (rcpt, f) in &bounced {
                outcomes.push(match &sent {
                    Ok(()) => (rcpt.id, AttemptOutcome::Failed(f.text())),
                    // No DSN stored: keep the recipient and try (and bounce) again later.
                    Err(e) => (
                        rcpt.id,
                        AttemptOutcome::Deferred {
                            error: format!("{}; DSN not stored: {e}", f.text()),
                            next_attempt: now.saturating_add(secs(self.config.retry_initial)),
                        },
                    ),
                });
            }
        }
        if !relayed.is_empty()
            && m.mail_from.is_some()
            && !m.sender_trust.may_receive_success_reports()
        {
            // RFC 3461 §5.2.2: a courtesy we decline for a reverse-path nobody proved, which
            // would otherwise get reports of mail it never sent.
            info!(queue_id = %m.id, trust = ?m.sender_trust, "outbound: \"relayed\" DSN not sent: the sender is neither authenticated nor SPF-verified");
        } else if !relayed.is_empty() && m.mail_from.is_some() {
            // RFC 3461 §5.2.2: NOTIFY=SUCCESS and a next hop without DSN: "relayed" is the last
            // word. The recipients are delivered whatever happens to this report.
            let original = self.original(m, &mut bytes).await;
            if let Err(e) = self.send_dsn(m, DsnKind::Relayed, relayed, &original).await {
                warn!(queue_id = %m.id, error = %e, "outbound: \"relayed\" DSN not stored; dropped");
            }
        }
        let mut delay_notified = false;
        let warn_after = secs(self.config.delay_warning);
        if !delayed.is_empty()
            && warn_after > 0
            && !m.delay_notified
            && m.mail_from.is_some()
            // As for failures: no backscatter to a reverse-path that failed SPF or DMARC.
            && m.sender_trust.may_receive_failure_reports()
            && now - m.created_at >= warn_after
        {
            let recipients: Vec<DsnRecipient> = delayed
                .iter()
                .filter(|(r, _, _)| r.notify.wants_delay())
                .map(|(r, f, _)| dsn_recipient(r, f, now, Some(r.expires_at)))
                .collect();
            if !recipients.is_empty() {
                let original = self.original(m, &mut bytes).await;
                delay_notified = self
                    .send_dsn(m, DsnKind::Delayed, recipients, &original)
                    .await
                    .is_ok();
            }
        }
        for (rcpt, f, next) in delayed {
            outcomes.push((
                rcpt.id,
                AttemptOutcome::Deferred {
                    error: f.text(),
                    next_attempt: next,
                },
            ));
        }
        match self
            .store
            .queue_complete(&self.node, m.id, outcomes, delay_notified)
            .await
        {
            Ok(true) => info!(queue_id = %m.id, "outbound: message done, removed from the queue"),
            Ok(false) => {}
            // The lease runs out and the attempt is repeated: a duplicate at worst, never a loss.
            Err(e) => warn!(queue_id = %m.id, error = %e, "outbound: cannot record results"),
        }
    }

    async fn original(&self, m: &QueuedMessage, cache: &mut Option<Bytes>) -> Bytes {
        if let Some(b) = cache {
            return b.clone();
        }
        let b = self.message_bytes(m).await.unwrap_or_default();
        *cache = Some(b.clone());
        b
    }

    /// Delivers a DSN to the envelope sender through the pipeline (local mailbox or this queue).
    async fn send_dsn(
        &self,
        m: &QueuedMessage,
        kind: DsnKind,
        recipients: Vec<DsnRecipient>,
        original: &[u8],
    ) -> Result<(), String> {
        let Some(sender) = m.mail_from.as_deref() else {
            return Ok(());
        };
        let dsn = Dsn {
            kind,
            reporting_mta: &self.hostname,
            to: sender,
            env_id: m.env_id.as_deref(),
            arrival: m.created_at,
            recipients,
            original,
            ret: m.ret,
            sender_trust: m.sender_trust,
        };
        dsn::send(
            &self.pipeline,
            &self.dsn_limiter,
            &dsn,
            format!("dsn-{}", m.id),
        )
        .await
    }
}

fn dsn_recipient(r: &QueuedRecipient, f: &Failure, now: i64, until: Option<i64>) -> DsnRecipient {
    DsnRecipient {
        address: r.address.clone(),
        orcpt: r.orcpt.clone(),
        status: f.status.clone(),
        diagnostic: f.reply.clone(),
        reason: f.reason.clone(),
        remote_mta: f.remote.clone(),
        last_attempt: now,
        retry_until: until,
    }
}
