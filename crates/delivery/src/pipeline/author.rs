//! The author check of submitted messages: a user sends only as the addresses it owns
//! (`Directory::owns_address`: its own, its sub-addresses, its send-as list), in the header
//! fields receivers show and DMARC judges, not only in the envelope.

use super::{Context, Pipeline};
use crate::author::{AuthorName, author_fields, mailboxes};
use crate::error::DeliveryError;
use crate::types::InboundKind;

impl Pipeline {
    /// Stage: submission only, before anything is signed or stored. Exactly one `From:` and at
    /// most one `Sender:` field (RFC 5322 §3.6), each naming only mailboxes (no group, §3.6.2)
    /// the account owns; a `From:` with several mailboxes needs a `Sender:` by §3.6.2, and every
    /// one of them must be owned anyway. Otherwise `Err(Refused)` with `550 5.6.0` for a
    /// malformed field or `550 5.7.1` naming the address.
    ///
    /// A message without `From:` is refused, not given one: RFC 6409 §8 lists the fields an MSA
    /// may add (`Sender:`, `Date:`, `Message-ID:`), and `From:` is not among them.
    pub(super) async fn check_author(&self, ctx: &Context<'_>) -> Result<(), DeliveryError> {
        let InboundKind::Submission { account } = ctx.inbound.kind else {
            return Ok(());
        };
        let fields = author_fields(&ctx.inbound.data);
        let refuse = |status, text: String| {
            tracing::info!(
                session = %ctx.inbound.trace.session_id,
                account = account.0,
                reason = %text,
                "submission refused: author fields"
            );
            Err(DeliveryError::Refused {
                code: 550,
                status,
                text,
            })
        };
        for (name, allowed) in [(AuthorName::From, 1..=1), (AuthorName::Sender, 0..=1)] {
            let n = fields.iter().filter(|f| f.name == name).count();
            if !allowed.contains(&n) {
                // RFC 3463 §3.7: 5.6.0 other media error (the message itself is malformed).
                let text = match (name, n) {
                    (AuthorName::From, 0) => {
                        "Message has no From: header field; RFC 5322 §3.6 requires one naming you"
                            .to_owned()
                    }
                    _ => format!(
                        "Message has {n} {} header fields; RFC 5322 §3.6 allows {}",
                        name.as_str(),
                        if name == AuthorName::From {
                            "exactly one"
                        } else {
                            "at most one"
                        }
                    ),
                };
                return refuse([5, 6, 0], text);
            }
        }
        for field in &fields {
            let addresses = match mailboxes(field) {
                Ok(addresses) => addresses,
                Err(e) => {
                    return refuse(
                        [5, 6, 0],
                        format!("{} header field {}", field.name.as_str(), e.reason()),
                    );
                }
            };
            for address in addresses {
                if !self.directory.owns_address(account, &address).await? {
                    // RFC 3463 §3.8: 5.7.1 delivery not authorized, message refused.
                    return refuse(
                        [5, 7, 1],
                        format!("<{address}> is not an address you may send as"),
                    );
                }
            }
        }
        Ok(())
    }
}
