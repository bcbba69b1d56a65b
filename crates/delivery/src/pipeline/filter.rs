//! The filter stage (issue 8): antivirus, rules and classifier via `tern-filter`, between the trace
//! headers and the store stage.

use tern_filter::{Filter, MessageInput, Origin, Refusal};
use tern_store::AccountId;

use super::{Context, Pipeline};
use crate::error::DeliveryError;
use crate::types::InboundKind;

impl Pipeline {
    /// Runs `filter` on every message delivered through this pipeline.
    pub fn with_filter(mut self, filter: Filter) -> Pipeline {
        self.filter = Some(filter);
        self
    }

    /// Stage: decide per message (refuse → `Err(Refused)`, nothing stored) and per account (Junk
    /// instead of INBOX); the `X-Spam-*`/`X-Virus-Scan` fields go below the trace fields.
    pub(super) async fn filter(&self, ctx: &mut Context<'_>) -> Result<(), DeliveryError> {
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        let inbound = ctx.inbound;
        let origin = match inbound.kind {
            InboundKind::Mx => Origin::Mx,
            InboundKind::Lmtp => Origin::Lmtp,
            InboundKind::Submission { .. } => Origin::Submission,
            // Our own DSNs: no filter stage applies (see `InboundKind::Local`).
            InboundKind::Local => return Ok(()),
        };
        let accounts: Vec<AccountId> = inbound
            .recipients
            .iter()
            .flat_map(|r| r.accounts.iter().copied())
            .collect();
        let sender = inbound.mail_from.as_ref().map(ToString::to_string);
        let input = MessageInput::new(&inbound.data, ctx.parsed.as_ref(), origin)
            .client_ip(inbound.trace.client_ip)
            .envelope_sender(sender.as_deref())
            .authentication(ctx.authentication)
            // Alias targets on other servers: filtered like a mailbox of ours.
            .forwarded(inbound.recipients.iter().any(|r| !r.remote.is_empty()));
        let verdict = filter.check(&input, &accounts).await;
        if let Some(refusal) = verdict.refusal {
            let (code, status, text) = match &refusal {
                // RFC 3463 §3.8: X.7.1 "delivery not authorized, message refused".
                Refusal::Virus(signature) => (
                    554,
                    [5, 7, 1],
                    format!("Message rejected: virus {signature} found"),
                ),
                Refusal::ScanFailed(_) => (
                    451,
                    [4, 7, 1],
                    "Virus scan temporarily unavailable; try again later".to_owned(),
                ),
                Refusal::Spam(_) => (550, [5, 7, 1], "Message rejected as spam".to_owned()),
            };
            tracing::info!(
                session = %inbound.trace.session_id,
                code,
                reason = ?refusal,
                "message refused by filter"
            );
            return Err(DeliveryError::Refused { code, status, text });
        }
        ctx.trace_fields.push_str(&verdict.fields);
        ctx.junk = accounts
            .into_iter()
            .filter(|&a| verdict.is_junk(a))
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
