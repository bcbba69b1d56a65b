//! SELECT / EXAMINE (RFC 9051 §6.3.2–§6.3.3, RFC 7162 §3.1.8, §3.2.5 QRESYNC), CLOSE,
//! UNSELECT, EXPUNGE and UID EXPUNGE (§6.4.1–§6.4.3, §6.4.9).

use std::collections::BTreeSet;

use tern_proto::imap::{
    Code, Data, Flag, ListData, Mailbox as WireMailbox, ModSeq as WireModSeq, Response,
    SelectParams, SequenceSet, Status, Uid as WireUid,
};
use tern_store::ModSeq;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{lookup, permanent_flags, system_flags, wire_seq, wire_uidvalidity};
use crate::error::CmdError;
use crate::names::DELIMITER;
use crate::recent::Recent;
use crate::selected::{SelectedMailbox, flag_fetch, set_contains};
use crate::session::{CmdResult, Session, done, done_with};
use crate::state::State;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn select(
        &mut self,
        name: &WireMailbox,
        params: SelectParams,
        read_only: bool,
    ) -> CmdResult {
        let Some(user) = self.state.user().cloned() else {
            return Err(CmdError::bad("Not authenticated"));
        };
        if matches!(self.state, State::Selected(..)) {
            // RFC 9051 §6.3.2 / RFC 7162 §3.2.11: the previous mailbox is closed (without
            // expunge) whether or not this SELECT succeeds.
            self.state = State::Authenticated(user.clone());
            self.out.send(&Response::untagged(
                Status::Ok,
                Some(Code::Closed),
                "Previous mailbox closed",
            ));
        }
        if params.qresync.is_some() && !self.enabled.qresync {
            return Err(CmdError::bad("QRESYNC is not enabled"));
        }
        if params.condstore {
            self.enabled.condstore = true;
        }
        let store = &self.ctx.store;
        let found = lookup(store, user.account, name).await?;
        // Subscribe before reading, so nothing committed in between is missed.
        let rx = store.subscribe(user.account);
        let mailbox = store
            .mailbox(found.id)
            .await?
            .ok_or_else(CmdError::nonexistent)?;
        let records = store.messages(mailbox.id).await?;
        let uids: Vec<_> = records.iter().map(|r| r.uid).collect();
        let keywords: BTreeSet<&String> = records.iter().flat_map(|r| &r.flags.keywords).collect();
        let first_unseen = records
            .iter()
            .position(|r| !r.flags.system.contains(tern_store::SystemFlags::SEEN));
        let mut flags = system_flags();
        flags.extend(keywords.into_iter().map(|k| Flag::Keyword(k.clone())));
        let mut view = SelectedMailbox::new(&mailbox, uids, rx, read_only);
        if !self.enabled.rev2 {
            // RFC 3501 §2.3.2: after reading the messages, so that every one of them above
            // the mark is covered by the claim. EXAMINE must not claim (§6.3.2).
            let recent = if read_only {
                Recent::above(store.recent_status(mailbox.id).await?.claimed)
            } else {
                let mut recent = Recent::default();
                recent.claimed(store.claim_recent(mailbox.id).await?);
                recent
            };
            view.track_recent(recent, !read_only);
        }

        let out = &mut self.out;
        out.send(&Response::Data(Data::Flags(flags)));
        out.send(&Response::Data(Data::Exists(view.exists())));
        if !self.enabled.rev2 {
            // IMAP4rev1 (RFC 3501 §7.3.2).
            out.send(&Response::Data(Data::Recent(view.recent_count())));
            if let Some(i) = first_unseen {
                out.send(&Response::untagged(
                    Status::Ok,
                    Some(Code::Unseen(wire_seq(i as u32 + 1))),
                    "First unseen",
                ));
            }
        }
        let permanent = if read_only {
            Vec::new()
        } else {
            permanent_flags()
        };
        out.send(&Response::untagged(
            Status::Ok,
            Some(Code::PermanentFlags(permanent)),
            "Flags permitted",
        ));
        out.send(&Response::untagged(
            Status::Ok,
            Some(Code::UidValidity(wire_uidvalidity(mailbox.uidvalidity))),
            "UIDs valid",
        ));
        if let Some(next) = WireUid::new(mailbox.uidnext) {
            out.send(&Response::untagged(
                Status::Ok,
                Some(Code::UidNext(next)),
                "Predicted next UID",
            ));
        }
        if self.enabled.condstore {
            out.send(&Response::untagged(
                Status::Ok,
                Some(Code::HighestModSeq(WireModSeq(mailbox.highestmodseq.0))),
                "Highest",
            ));
        }
        if self.enabled.rev2 {
            // RFC 9051 §6.3.2: the LIST response gives the mailbox name as stored.
            out.send(&Response::Data(Data::List(ListData {
                attributes: Vec::new(),
                delimiter: Some(DELIMITER),
                mailbox: WireMailbox::new(mailbox.name.clone()),
                extended: Vec::new(),
            })));
        }
        if let Some(q) = params.qresync
            && q.uid_validity.get() == mailbox.uidvalidity.0
        {
            // RFC 7162 §3.2.5.1: what the client missed since its mod-sequence.
            let changes = store
                .changes_since(mailbox.id, ModSeq(q.mod_seq.get()))
                .await?;
            let max = mailbox.uidnext.saturating_sub(1);
            let vanished = changes.vanished.iter().map(|u| u.get()).filter(|&u| {
                q.known_uids
                    .as_ref()
                    .is_none_or(|known| set_contains(known, u, max))
            });
            if let Some(uids) = SequenceSet::from_ids(vanished) {
                out.send(&Response::Data(Data::Vanished {
                    earlier: true,
                    uids,
                }));
            }
            for rec in &changes.changed {
                if let Some(seq) = view.seq_of(rec.uid) {
                    out.send(&flag_fetch(
                        seq,
                        rec.uid,
                        &rec.flags,
                        rec.modseq,
                        view.recent().contains(rec.uid),
                        self.enabled,
                    ));
                }
            }
        }
        self.state = State::Selected(user, Box::new(view));
        if read_only {
            done_with(Code::ReadOnly, "EXAMINE completed")
        } else {
            done_with(Code::ReadWrite, "SELECT completed")
        }
    }

    /// CLOSE (§6.4.1, expunges silently unless read-only) and UNSELECT (RFC 3691 / §6.4.2).
    pub(crate) async fn close(&mut self, expunge: bool) -> CmdResult {
        let State::Selected(user, mailbox) = &self.state else {
            return Err(CmdError::bad("No mailbox selected"));
        };
        let (user, id, read_only) = (user.clone(), mailbox.id, mailbox.read_only);
        self.state = State::Authenticated(user);
        if expunge && !read_only {
            self.ctx.store.expunge(id, None).await?;
        }
        done(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        })
    }

    /// EXPUNGE (§6.4.3) and UID EXPUNGE (§6.4.9): removes `\Deleted` messages (only those
    /// in `uids` if given) and tells the client at once.
    pub(crate) async fn expunge(&mut self, uids: Option<&SequenceSet>) -> CmdResult {
        let qresync = self.enabled.qresync;
        let State::Selected(_, mailbox) = &mut self.state else {
            return Err(CmdError::bad("No mailbox selected"));
        };
        if mailbox.read_only {
            return Err(CmdError::no(Code::ReadOnly, "Mailbox is read-only"));
        }
        let filter: Option<Vec<_>> = uids.map(|set| {
            mailbox
                .resolve_uids(set)
                .into_iter()
                .map(|(_, u)| u)
                .collect()
        });
        if filter.as_ref().is_some_and(Vec::is_empty) {
            return done("UID EXPUNGE completed");
        }
        let removed = self
            .ctx
            .store
            .expunge(mailbox.id, filter.as_deref())
            .await?;
        mailbox.expunged(&removed, &mut self.out, qresync);
        done("EXPUNGE completed")
    }
}
