//! APPEND (RFC 9051 §6.3.12), MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315), APPENDLIMIT
//! (RFC 7889).

use std::time::Instant;

use bytes::Bytes;
use tern_common::body::{Body, BodyError, Message};
use tern_proto::imap::{AppendContent, AppendMessage, Code, Mailbox as WireMailbox, SequenceSet};
use tern_store::{Delivery, MessageMeta};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{flags_from_wire, lookup_destination, wire_uidvalidity};
use crate::dates;
use crate::error::CmdError;
use crate::session::{CmdResult, Session, done, done_with};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn append(
        &mut self,
        mailbox: &WireMailbox,
        messages: Vec<AppendMessage>,
    ) -> CmdResult {
        let Some(user) = self.state.user() else {
            return Err(CmdError::bad("Not authenticated"));
        };
        let store = &self.ctx.store;
        // RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
        let dest = lookup_destination(store, user.account, mailbox).await?;
        // A nearly full data volume refuses new mail for now (see tern_common::disk); Dovecot
        // answers a full disk with the same code.
        if let Err(low) = self.ctx.free_space.check() {
            tracing::info!("APPEND refused for now: {low}");
            return Err(CmdError::no(
                Code::OverQuota,
                "Not enough disk space on the server; try again later",
            ));
        }
        // RFC 3502 §3 (MULTIAPPEND): "If the server is unable to append all of the message
        // data, it MUST NOT append any of it." Everything is checked before anything is
        // stored, and then all messages go into the store in one transaction.
        let mut streamed = std::mem::take(&mut self.messages).into_iter();
        let mut checked = Vec::with_capacity(messages.len());
        let mut spooled = 0;
        for message in messages {
            let text = match message.data.content {
                AppendContent::Octets(octets) => Text::Here(octets),
                AppendContent::Streamed(size) => match streamed.next() {
                    Some(body) if body.received() == size => {
                        spooled += size;
                        Text::Received(body)
                    }
                    // The decoder hands over exactly the messages the command names.
                    _ => return Err(CmdError::bad("Message data missing")),
                },
            };
            if text.len() > self.ctx.append_limit {
                return Err(CmdError::no(Code::TooBig, "Message too big"));
            }
            let flags = flags_from_wire(&message.flags)?;
            let date = match &message.date {
                Some(date) if !dates::exists(&date.date) => {
                    return Err(CmdError::bad("Invalid date-time: no such day"));
                }
                Some(date) => dates::from_date_time(date),
                None => dates::now(),
            };
            checked.push((text, flags, date));
        }
        // Received messages are read back only under the memory budget; the wait for it is
        // bounded like their arrival. The charges are held until the store has them.
        let deadline = tern_common::body::deadline(
            self.ctx.append_deadline_base,
            self.ctx.append_deadline_rate,
            spooled,
        );
        let mut deliveries = Vec::with_capacity(checked.len());
        let mut held = Vec::new();
        for (text, flags, internal_date) in checked {
            let bytes = match text {
                Text::Here(octets) => octets,
                Text::Received(body) => {
                    let message = finish(body, &self.ctx.spooling, deadline).await?;
                    let bytes = message.data.clone();
                    held.push(message);
                    bytes
                }
            };
            deliveries.push(Delivery {
                meta: summarize(bytes.clone()).await?,
                bytes,
                internal_date,
                targets: vec![(dest.id, flags)],
                queue: None,
            });
        }
        let stored = store.deliver_all(deliveries).await?;
        drop(held);
        let uids = stored.iter().flatten().map(|copy| copy.uid.get());
        match SequenceSet::from_ids(uids) {
            Some(set) => done_with(
                Code::AppendUid(wire_uidvalidity(dest.uidvalidity), set),
                "APPEND completed",
            ),
            None => done("APPEND completed"),
        }
    }
}

/// The text of one APPEND message while the command is checked.
enum Text {
    /// Kept by the decoder with the command.
    Here(Bytes),
    /// Received into a body (memory or a spool file).
    Received(Body),
}

impl Text {
    fn len(&self) -> u64 {
        match self {
            Text::Here(octets) => octets.len() as u64,
            Text::Received(body) => body.received(),
        }
    }
}

/// The whole text of a received message, under the memory budget.
async fn finish(
    body: Body,
    spooling: &tern_common::body::Spooling,
    deadline: Instant,
) -> Result<Message, CmdError> {
    // No budget before the deadline, or the spool file failed: `NO [UNAVAILABLE]`.
    body.finish(spooling, deadline)
        .await
        .map_err(|e: BodyError| CmdError::Temporary(format!("APPEND: {e}")))
}

/// Messages up to this size are summarised on the session's task; larger ones on a blocking
/// thread, as the MIME scan reads every line.
const SUMMARIZE_INLINE_MAX: usize = 256 * 1024;

/// The message cache of a message being appended (`message::summary`), computed once here so
/// that FETCH and SEARCH never parse it again.
async fn summarize(content: Bytes) -> Result<MessageMeta, CmdError> {
    if content.len() <= SUMMARIZE_INLINE_MAX {
        return Ok(crate::message::summarize(&content));
    }
    tokio::task::spawn_blocking(move || crate::message::summarize(&content))
        .await
        .map_err(|e| CmdError::Temporary(format!("summarizing the message failed: {e}")))
}
