//! STORE and UID STORE (RFC 9051 §6.4.6; RFC 7162 §3.1.3 UNCHANGEDSINCE / MODIFIED).

use std::collections::HashSet;

use tern_proto::imap::{
    Code, Data, FetchData, ModSeq as WireModSeq, Response, SequenceSet, StoreAction, StoreCommand,
};
use tern_store::{FlagOp, ModSeq, Uid};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{flags_from_wire, flags_to_wire, wire_seq, wire_uid};
use crate::error::CmdError;
use crate::session::{CmdResult, Session, done, done_with};
use crate::state::State;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn store(&mut self, cmd: StoreCommand) -> CmdResult {
        if cmd.unchanged_since.is_some() {
            // RFC 7162 §3.1: UNCHANGEDSINCE is a CONDSTORE-enabling command.
            self.enabled.condstore = true;
        }
        let condstore = self.enabled.condstore;
        let State::Selected(_, mailbox) = &mut self.state else {
            return Err(CmdError::bad("No mailbox selected"));
        };
        if mailbox.read_only {
            return Err(CmdError::no(Code::ReadOnly, "Mailbox is read-only"));
        }
        let targets = mailbox.resolve(&cmd.set, cmd.uid)?;
        let flags = flags_from_wire(&cmd.flags)?;
        let op = match cmd.action {
            StoreAction::Replace => FlagOp::Replace,
            StoreAction::Add => FlagOp::Add,
            StoreAction::Remove => FlagOp::Remove,
        };
        let uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
        if uids.is_empty() {
            return done("STORE completed");
        }
        let store = &self.ctx.store;
        let update = store
            .store_flags(
                mailbox.id,
                &uids,
                op,
                &flags,
                cmd.unchanged_since.map(|m| ModSeq(m.get())),
            )
            .await?;
        let mut answered: HashSet<Uid> = update.failed_unchanged_since.iter().copied().collect();
        for (uid, flags, modseq) in &update.updated {
            mailbox.remember_own(*uid, *modseq);
            answered.insert(*uid);
            let Some(seq) = mailbox.seq_of(*uid) else {
                continue;
            };
            let mut items = Vec::new();
            if cmd.uid {
                items.push(FetchData::Uid(wire_uid(*uid)));
            }
            if !cmd.silent {
                items.push(FetchData::Flags(flags_to_wire(
                    flags,
                    mailbox.recent().contains(*uid),
                )));
            }
            // RFC 7162 §3.1.3: the new MODSEQ is reported even with .SILENT.
            if condstore {
                items.push(FetchData::ModSeq(WireModSeq(modseq.0)));
            }
            if !cmd.silent || condstore {
                self.out.send(&Response::Data(Data::Fetch {
                    seq: wire_seq(seq),
                    items,
                }));
            }
        }
        // RFC 9051 §6.4.6: without .SILENT every message gets its FLAGS, changed or not.
        let unchanged: Vec<Uid> = uids
            .iter()
            .filter(|u| !answered.contains(u))
            .copied()
            .collect();
        if !cmd.silent && !unchanged.is_empty() {
            for rec in store.messages_in(mailbox.id, &unchanged).await? {
                let Some(seq) = mailbox.seq_of(rec.uid) else {
                    continue;
                };
                let mut items = Vec::new();
                if cmd.uid {
                    items.push(FetchData::Uid(wire_uid(rec.uid)));
                }
                items.push(FetchData::Flags(flags_to_wire(
                    &rec.flags,
                    mailbox.recent().contains(rec.uid),
                )));
                if condstore {
                    items.push(FetchData::ModSeq(WireModSeq(rec.modseq.0)));
                }
                self.out.send(&Response::Data(Data::Fetch {
                    seq: wire_seq(seq),
                    items,
                }));
            }
        }
        if update.failed_unchanged_since.is_empty() {
            return done("STORE completed");
        }
        let failed = update.failed_unchanged_since.iter().filter_map(|u| {
            if cmd.uid {
                Some(u.get())
            } else {
                mailbox.seq_of(*u)
            }
        });
        match SequenceSet::from_ids(failed) {
            Some(set) => done_with(Code::Modified(set), "Conditional STORE failed"),
            None => done("STORE completed"),
        }
    }
}
