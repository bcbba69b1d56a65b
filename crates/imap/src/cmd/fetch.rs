//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 §3.1.4 CHANGEDSINCE and
//! §3.2.6 VANISHED).

use std::collections::HashMap;

use bytes::Bytes;
use tern_proto::imap::{
    Code, Data, FetchCommand, FetchData, FetchItem, FetchItems, ModSeq as WireModSeq, Response,
    Section, SectionText, SequenceSet,
};
use tern_store::{
    FlagOp, Flags, MailboxId, MessageRecord, ModSeq, Store, StoreError, SystemFlags, Uid,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{flags_to_wire, wire_seq, wire_uid};
use crate::dates;
use crate::error::CmdError;
use crate::message::{ParsedMessage, apply_partial};
use crate::selected::set_contains;
use crate::session::{CmdResult, Session, done};
use crate::state::State;

/// Below this many messages records are read one by one, above it the whole mailbox at once.
const BULK: usize = 16;

/// The records of `uids` (ascending) that still exist.
pub(crate) async fn records_for(
    store: &Store,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<MessageRecord>, StoreError> {
    if uids.len() <= BULK {
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            if let Some(rec) = store.message(mailbox, *uid).await? {
                out.push(rec);
            }
        }
        return Ok(out);
    }
    let mut all = store.messages(mailbox).await?;
    all.retain(|r| uids.binary_search(&r.uid).is_ok());
    Ok(all)
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn fetch(&mut self, cmd: FetchCommand) -> CmdResult {
        let items = match cmd.items {
            FetchItems::Macro(m) => m.expand(),
            FetchItems::Items(items) => items,
        };
        let changed_since = cmd.modifiers.changed_since.map(|m| m.get());
        if changed_since.is_some() || items.contains(&FetchItem::ModSeq) {
            // RFC 7162 §3.1: CONDSTORE-enabling.
            self.enabled.condstore = true;
        }
        if cmd.modifiers.vanished && (!self.enabled.qresync || !cmd.uid || changed_since.is_none())
        {
            // RFC 7162 §3.2.6: VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE.
            return Err(CmdError::bad(
                "VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE",
            ));
        }
        let State::Selected(_, mailbox) = &mut self.state else {
            return Err(CmdError::bad("No mailbox selected"));
        };
        let targets = mailbox.resolve(&cmd.set, cmd.uid)?;
        let (id, read_only) = (mailbox.id, mailbox.read_only);
        let store = self.ctx.store.clone();
        if let (true, Some(since)) = (cmd.modifiers.vanished, changed_since) {
            let changes = store.changes_since(id, ModSeq(since)).await?;
            let max = mailbox.uids().last().map_or(0, |u| u.get());
            let vanished = changes
                .vanished
                .iter()
                .map(|u| u.get())
                .filter(|&u| set_contains(&cmd.set, u, max.max(u)));
            if let Some(uids) = SequenceSet::from_ids(vanished) {
                self.out.send(&Response::Data(Data::Vanished {
                    earlier: true,
                    uids,
                }));
            }
        }
        let uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
        let mut records = records_for(&store, id, &uids).await?;
        if let Some(since) = changed_since {
            records.retain(|r| r.modseq.0 > since);
        }
        let sets_seen = !read_only && items.iter().any(sets_seen);
        let mut seen_now: HashMap<Uid, (Flags, ModSeq)> = HashMap::new();
        if sets_seen {
            // RFC 9051 §6.4.5: BODY[...] (not PEEK) sets \Seen; the FETCH then reports FLAGS.
            let unseen: Vec<Uid> = records
                .iter()
                .filter(|r| !r.flags.system.contains(SystemFlags::SEEN))
                .map(|r| r.uid)
                .collect();
            if !unseen.is_empty() {
                let seen = Flags::from_system(SystemFlags::SEEN);
                let update = store
                    .store_flags(id, &unseen, FlagOp::Add, &seen, None)
                    .await?;
                for (uid, flags, modseq) in update.updated {
                    seen_now.insert(uid, (flags, modseq));
                }
            }
        }
        if let Some(mailbox) = self.state.selected_mut() {
            for (uid, (_, modseq)) in &seen_now {
                mailbox.remember_own(*uid, *modseq);
            }
        }
        let needs_body = items.iter().any(needs_body);
        let seq_of: HashMap<Uid, u32> = targets.iter().map(|(s, u)| (*u, *s)).collect();
        for mut rec in records {
            let Some(&seq) = seq_of.get(&rec.uid) else {
                continue;
            };
            let flags_changed = seen_now.remove(&rec.uid).map(|(flags, modseq)| {
                rec.flags = flags;
                rec.modseq = modseq;
            });
            let blob = if needs_body {
                Some(store.read_blob(&rec.blob).await?)
            } else {
                None
            };
            let mut out = Vec::with_capacity(items.len() + 2);
            if cmd.uid {
                out.push(FetchData::Uid(wire_uid(rec.uid)));
            }
            for item in &items {
                if let Some(data) = fetch_item(item, &rec, blob.as_ref(), cmd.uid)? {
                    out.push(data);
                }
            }
            if flags_changed.is_some() && !items.contains(&FetchItem::Flags) {
                out.push(FetchData::Flags(flags_to_wire(&rec.flags)));
            }
            // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ; so does an implicit \Seen
            // once CONDSTORE is on.
            if (changed_since.is_some() || (flags_changed.is_some() && self.enabled.condstore))
                && !items.contains(&FetchItem::ModSeq)
            {
                out.push(FetchData::ModSeq(WireModSeq(rec.modseq.0)));
            }
            self.out.send(&Response::Data(Data::Fetch {
                seq: wire_seq(seq),
                items: out,
            }));
            self.flush_if_big().await?;
        }
        done("FETCH completed")
    }
}

fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
            | FetchItem::Rfc822
            | FetchItem::Rfc822Text
    )
}

fn needs_body(item: &FetchItem) -> bool {
    !matches!(
        item,
        FetchItem::Flags
            | FetchItem::InternalDate
            | FetchItem::Rfc822Size
            | FetchItem::Uid
            | FetchItem::ModSeq
    )
}

/// One data item of one message; `None` when it is already in the response (UID).
fn fetch_item(
    item: &FetchItem,
    rec: &MessageRecord,
    blob: Option<&Bytes>,
    uid_command: bool,
) -> Result<Option<FetchData>, CmdError> {
    let raw = || {
        blob.cloned()
            .ok_or_else(|| CmdError::Temporary("message content not loaded".into()))
    };
    let section = |s: &Section| -> Result<Option<Bytes>, CmdError> {
        let raw = raw()?;
        if s.part.is_empty() && s.text.is_none() {
            return Ok(Some(raw));
        }
        Ok(ParsedMessage::parse(&raw).section(s).map(Bytes::from))
    };
    Ok(Some(match item {
        FetchItem::Flags => FetchData::Flags(flags_to_wire(&rec.flags)),
        FetchItem::InternalDate => FetchData::InternalDate(dates::to_date_time(rec.internal_date)),
        FetchItem::Rfc822Size => FetchData::Rfc822Size(rec.size),
        FetchItem::Uid if uid_command => return Ok(None),
        FetchItem::Uid => FetchData::Uid(wire_uid(rec.uid)),
        FetchItem::ModSeq => FetchData::ModSeq(WireModSeq(rec.modseq.0)),
        FetchItem::Envelope => {
            FetchData::Envelope(Box::new(ParsedMessage::parse(&raw()?).envelope()))
        }
        FetchItem::Body => FetchData::Body(Box::new(
            ParsedMessage::parse(&raw()?).body_structure(false),
        )),
        FetchItem::BodyStructure => {
            FetchData::BodyStructure(Box::new(ParsedMessage::parse(&raw()?).body_structure(true)))
        }
        FetchItem::Rfc822 => FetchData::Rfc822(Some(raw()?)),
        FetchItem::Rfc822Header => FetchData::Rfc822Header(section(&Section {
            part: Vec::new(),
            text: Some(SectionText::Header),
        })?),
        FetchItem::Rfc822Text => FetchData::Rfc822Text(section(&Section {
            part: Vec::new(),
            text: Some(SectionText::Text),
        })?),
        FetchItem::BodySection {
            section: s,
            partial,
            ..
        } => {
            let data = section(s)?;
            let (origin, data) = match partial {
                Some(p) => (
                    Some(p.offset),
                    data.map(|d| {
                        Bytes::copy_from_slice(apply_partial(&d, p.offset, Some(p.length.get())))
                    }),
                ),
                None => (None, data),
            };
            FetchData::BodySection {
                section: s.clone(),
                origin,
                data,
            }
        }
        FetchItem::Binary { part, partial, .. } => {
            let raw = raw()?;
            let data = ParsedMessage::parse(&raw)
                .binary(part)
                .map_err(|e| CmdError::no(Code::UnknownCte, e.to_string()))?;
            let (origin, data) = match partial {
                Some(p) => (
                    Some(p.offset),
                    data.map(|d| apply_partial(&d, p.offset, Some(p.length.get())).to_vec()),
                ),
                None => (None, data),
            };
            FetchData::Binary {
                part: part.clone(),
                origin,
                data: data.map(Bytes::from),
            }
        }
        FetchItem::BinarySize { part } => {
            let raw = raw()?;
            let size = ParsedMessage::parse(&raw)
                .binary_size(part)
                .map_err(|e| CmdError::no(Code::UnknownCte, e.to_string()))?;
            FetchData::BinarySize {
                part: part.clone(),
                size: size.unwrap_or(0),
            }
        }
    }))
}
