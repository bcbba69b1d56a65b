//! APPEND (RFC 9051 §6.3.12), MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315), APPENDLIMIT
//! (RFC 7889).

use bytes::Bytes;
use tern_proto::imap::{AppendMessage, Code, Mailbox as WireMailbox, SequenceSet};
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
        let mut checked = Vec::with_capacity(messages.len());
        for message in messages {
            if message.data.content.len() as u64 > self.ctx.append_limit {
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
            checked.push((message.data.content, flags, date));
        }
        let mut deliveries = Vec::with_capacity(checked.len());
        for (bytes, flags, internal_date) in checked {
            deliveries.push(Delivery {
                meta: summarize(bytes.clone()).await?,
                bytes,
                internal_date,
                targets: vec![(dest.id, flags)],
                queue: None,
            });
        }
        let stored = store.deliver_all(deliveries).await?;
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
