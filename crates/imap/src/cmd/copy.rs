//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7–§6.4.8, RFC 6851, RFC 4315 COPYUID).

use tern_proto::imap::{Code, Mailbox as WireMailbox, Response, SequenceSet, Status};
use tern_store::Uid;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{learn, lookup_destination, wire_uidvalidity};
use crate::error::CmdError;
use crate::session::{CmdResult, Session, done, done_with};
use crate::state::State;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        target: &WireMailbox,
        is_move: bool,
    ) -> CmdResult {
        let qresync = self.enabled.qresync;
        let verb = if is_move { "MOVE" } else { "COPY" };
        let State::Selected(user, mailbox) = &mut self.state else {
            return Err(CmdError::bad("No mailbox selected"));
        };
        if is_move && mailbox.read_only {
            return Err(CmdError::no(Code::ReadOnly, "Mailbox is read-only"));
        }
        let targets = mailbox.resolve(set, uid)?;
        let store = &self.ctx.store;
        // RFC 9051 §6.4.7: TRYCREATE tells the client it may CREATE and retry.
        let dest = lookup_destination(store, user.account, target).await?;
        let uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
        if uids.is_empty() {
            return done(format!("{verb} completed"));
        }
        let pairs = if is_move {
            store.move_messages(mailbox.id, &uids, dest.id).await?
        } else {
            store.copy(mailbox.id, &uids, dest.id).await?
        };
        if let Some(filter) = &self.ctx.filter {
            let source = store.mailbox(mailbox.id).await?.and_then(|m| m.special_use);
            let copied: Vec<Uid> = pairs.iter().map(|(_, d)| *d).collect();
            learn::on_transfer(filter, store, user.account, source, &dest, copied);
        }
        // Source UIDs ascend and new UIDs are allocated ascending, so both sorted sets
        // correspond element by element (RFC 4315 §3).
        let code = match (
            SequenceSet::from_ids(pairs.iter().map(|(s, _)| s.get())),
            SequenceSet::from_ids(pairs.iter().map(|(_, d)| d.get())),
        ) {
            (Some(src), Some(dst)) => {
                Some(Code::CopyUid(wire_uidvalidity(dest.uidvalidity), src, dst))
            }
            _ => None,
        };
        if !is_move {
            return match code {
                Some(code) => done_with(code, "COPY completed"),
                None => done("COPY completed"),
            };
        }
        // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
        if let Some(code) = code {
            self.out
                .send(&Response::untagged(Status::Ok, Some(code), "Moved"));
        }
        let moved: Vec<Uid> = pairs.iter().map(|(s, _)| *s).collect();
        mailbox.expunged(&moved, &mut self.out, qresync);
        done("MOVE completed")
    }
}
