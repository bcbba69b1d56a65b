//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 §3.1.4 CHANGEDSINCE and
//! §3.2.6 VANISHED).

use std::collections::HashMap;

use bytes::Bytes;
use tern_proto::imap::{
    Data, FetchCommand, FetchData, FetchItem, FetchItems, ModSeq as WireModSeq, Response,
    SequenceSet,
};
use tern_store::{
    BlobId, FlagOp, Flags, MailboxId, MessageMeta, MessageRecord, ModSeq, Store, StoreError,
    SystemFlags, Uid,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::cache::{CacheFill, SLICE, read_slice};
use super::fetch_items::{ItemError, Needs, Source, fetch_item};
use super::{flags_to_wire, wire_seq, wire_uid};
use crate::error::CmdError;
use crate::message::{ParsedMessage, summary_of};
use crate::recent::Recent;
use crate::selected::set_contains;
use crate::session::{CmdResult, Session, done};
use crate::state::State;

/// Blobs read per store call, and the bytes after which a batch stops growing.
const BLOB_BATCH: usize = 64;
const BLOB_BATCH_BYTES: u64 = 8 << 20;

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
        // IMAP4rev1 \Recent (RFC 3501 §2.3.2): a few UID ranges, empty under IMAP4rev2.
        let recent = mailbox.recent().clone();
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
        if items
            .iter()
            .all(|i| matches!(i, FetchItem::Flags | FetchItem::Uid | FetchItem::ModSeq))
        {
            self.fetch_flags(id, &items, &targets, cmd.uid, changed_since, &recent)
                .await?;
            return done("FETCH completed");
        }
        let mut uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
        let sets_seen = !read_only && items.iter().any(sets_seen);
        let mut seen_now: HashMap<Uid, (Flags, ModSeq)> = HashMap::new();
        if sets_seen {
            // RFC 9051 §6.4.5: BODY[...] (not PEEK) sets \Seen; the FETCH then reports FLAGS.
            // Settled for every message before the answer is streamed.
            let mut records = store.messages_in(id, &uids).await?;
            if let Some(since) = changed_since {
                records.retain(|r| r.modseq.0 > since);
            }
            uids = records.iter().map(|r| r.uid).collect();
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
        let needs = Needs::of(&items);
        let mut fill = CacheFill::new(id);
        // Records and targets both ascend by UID (records are a subset): walk them together.
        let mut seqs = targets.iter().peekable();
        // One slice in flight ahead: the store's threads read it while this one is answered.
        let chunks: Vec<&[Uid]> = uids.chunks(SLICE).collect();
        let mut next = chunks
            .first()
            .map(|uids| read_slice(&store, id, uids, needs.parts));
        for i in 0..chunks.len() {
            let Some(read) = next.take() else {
                break;
            };
            let (mut chunk, metas) = read
                .await
                .map_err(|e| CmdError::Temporary(format!("read task failed: {e}")))??;
            next = chunks
                .get(i + 1)
                .map(|uids| read_slice(&store, id, uids, needs.parts));
            if let (Some(since), false) = (changed_since, sets_seen) {
                chunk.retain(|r| r.modseq.0 > since);
            }
            // Aligned with `chunk` (empty when no item needs the cache).
            let metas: Vec<Option<MessageMeta>> = if metas.is_empty() {
                Vec::new()
            } else {
                let mut metas = metas.into_iter().peekable();
                chunk
                    .iter()
                    .map(|r| {
                        while metas.next_if(|(u, _)| *u < r.uid).is_some() {}
                        metas.next_if(|(u, _)| *u == r.uid).map(|(_, m)| m)
                    })
                    .collect()
            };
            // Aligned with `chunk` too (empty when no message needs its blob).
            let mut blobs = read_blobs(&store, &chunk, &metas, needs).await?;
            for (j, rec) in chunk.iter_mut().enumerate() {
                while seqs.next_if(|(_, u)| *u < rec.uid).is_some() {}
                let Some(&(seq, _)) = seqs.next_if(|(_, u)| *u == rec.uid) else {
                    continue;
                };
                let meta = metas.get(j).and_then(Option::as_ref);
                let mut blob = blobs.get_mut(j).and_then(Option::take);
                let flags_changed = if seen_now.is_empty() {
                    None
                } else {
                    seen_now.remove(&rec.uid).map(|(flags, modseq)| {
                        rec.flags = flags;
                        rec.modseq = modseq;
                    })
                };
                let mut out = Vec::with_capacity(items.len() + 2);
                if cmd.uid {
                    out.push(FetchData::Uid(wire_uid(rec.uid)));
                }
                let is_recent = recent.contains(rec.uid);
                let filled = loop {
                    let source = (meta, blob.as_ref());
                    match message_items(&items, rec, source, needs, cmd.uid, is_recent, &mut out) {
                        Ok(filled) => break filled,
                        // A cache part could not be read: the blob answers instead.
                        Err(ItemError::NeedBlob) if blob.is_none() => {
                            out.truncate(usize::from(cmd.uid));
                            blob = Some(store.read_blob(&rec.blob).await?);
                        }
                        Err(ItemError::NeedBlob) => {
                            return Err(CmdError::Temporary("message content not loaded".into()));
                        }
                        Err(ItemError::Cmd(e)) => return Err(e),
                    }
                };
                if let Some(meta) = filled {
                    fill.push(&store, rec.uid, meta).await;
                }
                if flags_changed.is_some() && !items.contains(&FetchItem::Flags) {
                    out.push(FetchData::Flags(flags_to_wire(&rec.flags, is_recent)));
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
        }
        fill.flush(&store).await;
        done("FETCH completed")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// FETCH of FLAGS, UID and MODSEQ only — a client's resync, typically `UID FETCH 1:*
    /// (FLAGS)` — from the flag columns of the message rows: no blob, no cache row, a slice
    /// read ahead while this one is written. The same responses as the general path.
    async fn fetch_flags(
        &mut self,
        mailbox: MailboxId,
        items: &[FetchItem],
        targets: &[(u32, Uid)],
        uid_command: bool,
        changed_since: Option<u64>,
        recent: &Recent,
    ) -> Result<(), CmdError> {
        let store = self.ctx.store.clone();
        let uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
        let read = |uids: &[Uid]| {
            let (store, uids) = (store.clone(), uids.to_vec());
            tokio::spawn(async move { store.message_flags_in(mailbox, &uids).await })
        };
        let slices: Vec<&[Uid]> = uids.chunks(SLICE).collect();
        let mut next = slices.first().map(|uids| read(uids));
        // Rows and targets both ascend by UID (rows are a subset): walk them together.
        let mut seqs = targets.iter().peekable();
        for i in 0..slices.len() {
            let Some(reading) = next.take() else {
                break;
            };
            let rows = reading
                .await
                .map_err(|e| CmdError::Temporary(format!("read task failed: {e}")))??;
            next = slices.get(i + 1).map(|uids| read(uids));
            for m in rows {
                if changed_since.is_some_and(|since| m.modseq.0 <= since) {
                    continue;
                }
                while seqs.next_if(|(_, u)| *u < m.uid).is_some() {}
                let Some(&(seq, _)) = seqs.next_if(|(_, u)| *u == m.uid) else {
                    continue;
                };
                let mut out = Vec::with_capacity(items.len() + 2);
                if uid_command {
                    out.push(FetchData::Uid(wire_uid(m.uid)));
                }
                for item in items {
                    match item {
                        FetchItem::Flags => out.push(FetchData::Flags(flags_to_wire(
                            &m.flags,
                            recent.contains(m.uid),
                        ))),
                        FetchItem::Uid if !uid_command => out.push(FetchData::Uid(wire_uid(m.uid))),
                        FetchItem::ModSeq => out.push(FetchData::ModSeq(WireModSeq(m.modseq.0))),
                        _ => {}
                    }
                }
                // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
                if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
                    out.push(FetchData::ModSeq(WireModSeq(m.modseq.0)));
                }
                self.out.send(&Response::Data(Data::Fetch {
                    seq: wire_seq(seq),
                    items: out,
                }));
                self.flush_if_big().await?;
            }
        }
        Ok(())
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

/// The items of one message from its cache row and blob, appended to `out`. A message
/// without a cache row whose blob was read for a cached part gets its cache computed here
/// (returned for the store) and answered from it.
fn message_items(
    items: &[FetchItem],
    rec: &MessageRecord,
    (meta, blob): (Option<&MessageMeta>, Option<&Bytes>),
    needs: Needs,
    uid_command: bool,
    recent: bool,
    out: &mut Vec<FetchData>,
) -> Result<Option<MessageMeta>, ItemError> {
    let parsed = blob.map(|b| ParsedMessage::parse(b));
    let filled = match (meta, &parsed) {
        (None, Some(parsed)) if !needs.parts.is_empty() => Some(summary_of(parsed)),
        _ => None,
    };
    let source = Source {
        meta: meta.or(filled.as_ref()),
        raw: blob,
        parsed: parsed.as_ref(),
        recent,
    };
    for item in items {
        out.extend(fetch_item(item, rec, &source, uid_command)?);
    }
    Ok(filled)
}

/// The blobs the messages of `chunk` need (`None` for those that need none), read a batch
/// at a time.
async fn read_blobs(
    store: &Store,
    chunk: &[MessageRecord],
    metas: &[Option<MessageMeta>],
    needs: Needs,
) -> Result<Vec<Option<Bytes>>, StoreError> {
    let wanted: Vec<usize> = (0..chunk.len())
        .filter(|&i| needs.blob_for(metas.get(i).and_then(Option::as_ref)))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<Option<Bytes>> = vec![None; chunk.len()];
    let mut start = 0;
    while start < wanted.len() {
        // Bounded by count and bytes, so large messages are not all held at once.
        let mut end = start;
        let mut bytes = 0u64;
        while let Some(&i) = wanted.get(end) {
            if end > start && (end - start >= BLOB_BATCH || bytes >= BLOB_BATCH_BYTES) {
                break;
            }
            bytes += chunk.get(i).map_or(0, |r| r.size);
            end += 1;
        }
        let batch = wanted.get(start..end).unwrap_or_default();
        let ids: Vec<BlobId> = batch
            .iter()
            .filter_map(|&i| chunk.get(i).map(|r| r.blob.clone()))
            .collect();
        for (&i, blob) in batch.iter().zip(store.read_blobs(&ids).await?) {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(blob?);
            }
        }
        start = end;
    }
    Ok(out)
}
