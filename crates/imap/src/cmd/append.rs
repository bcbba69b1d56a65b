//! APPEND (RFC 9051 §6.3.12), MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315), APPENDLIMIT
//! (RFC 7889).

use bytes::Bytes;
use tern_proto::imap::{AppendMessage, Code, Mailbox as WireMailbox, SequenceSet};
use tern_store::MessageMeta;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{flags_from_wire, lookup, wire_uidvalidity};
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
        let dest = match lookup(store, user.account, mailbox).await {
            Ok(dest) => dest,
            // RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
            Err(CmdError::No(Some(Code::NonExistent), _)) => {
                return Err(CmdError::no(Code::TryCreate, "No such mailbox"));
            }
            Err(e) => return Err(e),
        };
        // Check everything before storing anything (RFC 3502 §6.3.11: all or nothing as far
        // as the client's errors go).
        let mut prepared = Vec::with_capacity(messages.len());
        for message in messages {
            if message.data.content.len() as u64 > self.ctx.append_limit {
                return Err(CmdError::no(Code::TooBig, "Message too big"));
            }
            let flags = flags_from_wire(&message.flags)?;
            let date = message
                .date
                .as_ref()
                .map_or_else(dates::now, dates::from_date_time);
            prepared.push((message.data.content, flags, date));
        }
        let mut uids = Vec::with_capacity(prepared.len());
        for (content, flags, date) in prepared {
            let meta = summarize(content.clone()).await?;
            let appended = store.append(dest.id, content, flags, date, meta).await?;
            uids.push(appended.uid.get());
        }
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
