//! The selected mailbox as this session's client knows it: the seq→UID list, the
//! mod-sequence watermark and the change-bus receiver, and the rules for telling the client
//! about changes (RFC 9051 §7.5.1, §5.2; RFC 7162 §3.2.10 VANISHED).

use std::collections::{BTreeSet, HashSet};

use tern_proto::imap::{
    Data, FetchData, ModSeq as WireModSeq, Response, SeqNum, SeqOrUid, SequenceItem, SequenceSet,
    Uid as WireUid,
};
use tern_store::{Change, Changes, MailboxId, ModSeq, Store, StoreError, Uid};
use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::cmd::flags_to_wire;
use crate::error::CmdError;
use crate::recent::Recent;
use crate::session::Out;
use crate::state::Enabled;

/// The selected mailbox of one session.
pub(crate) struct SelectedMailbox {
    pub(crate) id: MailboxId,
    pub(crate) read_only: bool,
    /// UIDs in sequence-number order (ascending): what the client was told exists.
    uids: Vec<Uid>,
    /// Expunged in the store, not yet announced (RFC 9051 §7.5.1 held them back).
    pending_expunge: BTreeSet<Uid>,
    /// Every change up to this mod-sequence has been reported (or is pending).
    watermark: u64,
    /// Highest mod-sequence seen on the bus since the last sync.
    seen: u64,
    rx: broadcast::Receiver<Change>,
    /// Flag changes made by this session and already reported: `(uid, modseq)`.
    own: HashSet<(Uid, u64)>,
    dirty: bool,
    lagged: bool,
    /// The mailbox was deleted under us.
    pub(crate) gone: bool,
    /// RFC 5182 SEARCHRES: the saved result `$`, as UIDs.
    pub(crate) saved: Vec<Uid>,
    /// IMAP4rev1 `\Recent` in this session (empty under IMAP4rev2).
    recent: Recent,
    /// IMAP4rev1: RECENT responses follow EXISTS (RFC 3501 §7.3.2).
    reports_recent: bool,
    /// IMAP4rev1 SELECT (not EXAMINE): new messages are claimed as recent for this session.
    claims_recent: bool,
}

impl SelectedMailbox {
    /// `rx` must have been subscribed before `uids` and `highestmodseq` were read, so that
    /// nothing committed in between is missed.
    pub(crate) fn new(
        mailbox: &tern_store::Mailbox,
        uids: Vec<Uid>,
        rx: broadcast::Receiver<Change>,
        read_only: bool,
    ) -> SelectedMailbox {
        SelectedMailbox {
            id: mailbox.id,
            read_only,
            uids,
            pending_expunge: BTreeSet::new(),
            watermark: mailbox.highestmodseq.0,
            seen: 0,
            rx,
            own: HashSet::new(),
            dirty: false,
            lagged: false,
            gone: false,
            saved: Vec::new(),
            recent: Recent::default(),
            reports_recent: false,
            claims_recent: false,
        }
    }

    /// IMAP4rev1: the messages recent in this session so far; with `claims`, new ones are
    /// claimed as they arrive (SELECT), otherwise only looked at (EXAMINE).
    pub(crate) fn track_recent(&mut self, recent: Recent, claims: bool) {
        self.recent = recent;
        self.reports_recent = true;
        self.claims_recent = claims;
    }

    /// The `\Recent` messages of this session (RFC 3501 §2.3.2).
    pub(crate) fn recent(&self) -> &Recent {
        &self.recent
    }

    /// The number of recent messages the client knows (`* n RECENT`).
    pub(crate) fn recent_count(&self) -> u32 {
        self.recent.count(&self.uids)
    }

    /// The number of messages the client knows (`* n EXISTS`).
    pub(crate) fn exists(&self) -> u32 {
        self.uids.len() as u32
    }

    pub(crate) fn uids(&self) -> &[Uid] {
        &self.uids
    }

    /// The sequence number of a UID the client knows.
    pub(crate) fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// A flag change this session made and reported itself; its bus echo is skipped.
    pub(crate) fn remember_own(&mut self, uid: Uid, modseq: ModSeq) {
        self.own.insert((uid, modseq.0));
    }

    /// Whether there is nothing on the bus for this mailbox right now (IDLE waits then).
    pub(crate) async fn wait_change(&mut self) {
        loop {
            match self.rx.recv().await {
                Ok(change) => {
                    if self.note(&change) {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.lagged = true;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The store is gone; nothing will ever arrive.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Records a bus change; whether it concerns this mailbox.
    fn note(&mut self, change: &Change) -> bool {
        if change.mailbox != self.id {
            return false;
        }
        use tern_store::ChangeKind;
        match &change.kind {
            ChangeKind::Appended { modseq, .. }
            | ChangeKind::FlagsChanged { modseq, .. }
            | ChangeKind::Expunged { modseq, .. } => self.seen = self.seen.max(modseq.0),
            ChangeKind::MailboxDeleted => self.gone = true,
            _ => {}
        }
        self.dirty = true;
        true
    }

    /// Drains the bus without waiting.
    fn poll(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(change) => {
                    self.note(&change);
                }
                Err(TryRecvError::Lagged(_)) => self.lagged = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    /// Tells the client about changes committed since the last sync: EXISTS for new
    /// messages, FETCH (UID FLAGS [MODSEQ]) for flag changes by others, and, when
    /// `allow_expunge`, EXPUNGE (or VANISHED under QRESYNC) for removed messages.
    pub(crate) async fn sync(
        &mut self,
        store: &Store,
        out: &mut Out,
        allow_expunge: bool,
        enabled: Enabled,
    ) -> Result<(), CmdError> {
        self.poll();
        if self.gone {
            return Ok(());
        }
        let known = self.uids.len();
        let result = if self.lagged {
            self.resync(store, out, enabled).await
        } else if self.dirty {
            match store.changes_since(self.id, ModSeq(self.watermark)).await {
                Ok(changes) => {
                    self.apply(changes, out, enabled);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                self.gone = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        if self.reports_recent && self.uids.len() > known {
            self.report_recent(store, out).await;
        }
        if allow_expunge {
            self.flush_expunges(out, enabled.qresync);
        }
        Ok(())
    }

    /// RFC 3501 §7.3.2: after new messages (their EXISTS), how many messages are recent now;
    /// a SELECT session claims the new ones first.
    async fn report_recent(&mut self, store: &Store, out: &mut Out) {
        if self.claims_recent {
            match store.claim_recent(self.id).await {
                Ok(claim) => self.recent.claimed(claim),
                // Not fatal: the messages stay unclaimed, recent for the next session.
                Err(e) => tracing::warn!(error = %e, "claiming \\Recent messages failed"),
            }
        }
        out.send(&Response::Data(Data::Recent(self.recent_count())));
    }

    fn apply(&mut self, changes: Changes, out: &mut Out, enabled: Enabled) {
        self.dirty = false;
        for uid in changes.vanished {
            if self.seq_of(uid).is_some() {
                self.pending_expunge.insert(uid);
            }
        }
        let before = self.exists();
        let mut max = self.watermark.max(self.seen);
        for rec in changes.changed {
            max = max.max(rec.modseq.0);
            if self.uids.last().is_none_or(|last| rec.uid > *last) {
                // RFC 9051 §7.4.1: new messages are announced with EXISTS only.
                self.uids.push(rec.uid);
                continue;
            }
            if self.pending_expunge.contains(&rec.uid) || self.own.remove(&(rec.uid, rec.modseq.0))
            {
                continue;
            }
            if let Some(seq) = self.seq_of(rec.uid) {
                let recent = self.recent.contains(rec.uid);
                out.send(&flag_fetch(
                    seq, rec.uid, &rec.flags, rec.modseq, recent, enabled,
                ));
            }
        }
        if self.exists() != before {
            out.send(&Response::Data(Data::Exists(self.exists())));
        }
        self.watermark = max;
        self.seen = 0;
        let watermark = self.watermark;
        self.own.retain(|&(_, m)| m > watermark);
    }

    /// After a lagged receiver: compare the whole UID list and report changed flags.
    async fn resync(
        &mut self,
        store: &Store,
        out: &mut Out,
        enabled: Enabled,
    ) -> Result<(), StoreError> {
        let mailbox = store.mailbox(self.id).await?.ok_or(StoreError::NotFound)?;
        let records = store.messages(self.id).await?;
        self.lagged = false;
        self.dirty = false;
        let current: HashSet<Uid> = records.iter().map(|r| r.uid).collect();
        for uid in &self.uids {
            if !current.contains(uid) {
                self.pending_expunge.insert(*uid);
            }
        }
        let before = self.exists();
        for rec in &records {
            if self.uids.last().is_none_or(|last| rec.uid > *last) {
                self.uids.push(rec.uid);
            } else if rec.modseq.0 > self.watermark
                && !self.own.remove(&(rec.uid, rec.modseq.0))
                && let Some(seq) = self.seq_of(rec.uid)
            {
                let recent = self.recent.contains(rec.uid);
                out.send(&flag_fetch(
                    seq, rec.uid, &rec.flags, rec.modseq, recent, enabled,
                ));
            }
        }
        if self.exists() != before {
            out.send(&Response::Data(Data::Exists(self.exists())));
        }
        self.watermark = self.watermark.max(mailbox.highestmodseq.0);
        self.own.clear();
        Ok(())
    }

    /// Removes UIDs this session expunged itself (EXPUNGE, MOVE) and announces them now.
    pub(crate) fn expunged(&mut self, uids: &[Uid], out: &mut Out, qresync: bool) {
        for uid in uids {
            if self.seq_of(*uid).is_some() {
                self.pending_expunge.insert(*uid);
            }
        }
        self.flush_expunges(out, qresync);
    }

    /// RFC 9051 §7.5.1 / RFC 7162 §3.2.10: announces held-back expunges. EXPUNGE responses
    /// go out in descending order so each number is valid when the client reads it.
    fn flush_expunges(&mut self, out: &mut Out, qresync: bool) {
        if self.pending_expunge.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_expunge);
        if qresync {
            if let Some(set) = SequenceSet::from_ids(pending.iter().map(|u| u.get())) {
                out.send(&Response::Data(Data::Vanished {
                    earlier: false,
                    uids: set,
                }));
            }
        } else {
            let mut seqs: Vec<u32> = pending.iter().filter_map(|u| self.seq_of(*u)).collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            for seq in seqs {
                if let Some(seq) = SeqNum::new(seq) {
                    out.send(&Response::Data(Data::Expunge(seq)));
                }
            }
        }
        self.uids.retain(|u| !pending.contains(u));
        self.saved.retain(|u| !pending.contains(u));
    }

    /// The messages of a message-number set, as `(seq, uid)` ascending. RFC 9051 §9: a number
    /// above the message count is an error; `*` is the last message.
    pub(crate) fn resolve_seqs(&self, set: &SequenceSet) -> Result<Vec<(u32, Uid)>, CmdError> {
        let count = self.exists();
        let items = match set {
            SequenceSet::Saved => return Ok(self.resolve_saved()),
            SequenceSet::Items(items) => items,
        };
        let value = |n: SeqOrUid| match n {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => count,
        };
        let mut ranges = Vec::with_capacity(items.len());
        for item in items {
            let (a, b, star) = match *item {
                SequenceItem::Value(n) => (value(n), value(n), n == SeqOrUid::Asterisk),
                SequenceItem::Range(a, b) => (
                    value(a),
                    value(b),
                    a == SeqOrUid::Asterisk || b == SeqOrUid::Asterisk,
                ),
            };
            if star && count == 0 {
                // `*` in an empty mailbox names no message.
                continue;
            }
            let (lo, hi) = (a.min(b), a.max(b));
            if hi > count {
                return Err(CmdError::bad("Invalid message sequence number"));
            }
            // Sequence number n is index n - 1; 0 names no message.
            ranges.push((lo.max(1) as usize - 1, hi as usize));
        }
        Ok(union(ranges)
            .flat_map(|(start, end)| start..end)
            .filter_map(|i| self.uids.get(i).map(|u| (i as u32 + 1, *u)))
            .collect())
    }

    /// The messages of a UID set that the client knows, as `(seq, uid)` ascending.
    /// RFC 9051 §6.4.9: UIDs that do not exist are ignored; `*` is the highest UID.
    pub(crate) fn resolve_uids(&self, set: &SequenceSet) -> Vec<(u32, Uid)> {
        let items = match set {
            SequenceSet::Saved => return self.resolve_saved(),
            SequenceSet::Items(items) => items,
        };
        let Some(max) = self.uids.last().map(|u| u.get()) else {
            return Vec::new();
        };
        let mut ranges = Vec::with_capacity(items.len());
        for item in items {
            let (lo, hi) = uid_bounds(item, max);
            let start = self.uids.partition_point(|u| u.get() < lo);
            let end = self.uids.partition_point(|u| u.get() <= hi);
            ranges.push((start, end));
        }
        union(ranges)
            .flat_map(|(start, end)| start..end)
            .filter_map(|i| self.uids.get(i).map(|u| (i as u32 + 1, *u)))
            .collect()
    }

    fn resolve_saved(&self) -> Vec<(u32, Uid)> {
        let mut out: Vec<(u32, Uid)> = self
            .saved
            .iter()
            .filter_map(|u| self.seq_of(*u).map(|s| (s, *u)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Resolves a set as UIDs or message numbers.
    pub(crate) fn resolve(
        &self,
        set: &SequenceSet,
        uid: bool,
    ) -> Result<Vec<(u32, Uid)>, CmdError> {
        if uid {
            Ok(self.resolve_uids(set))
        } else {
            self.resolve_seqs(set)
        }
    }
}

/// The union of half-open index ranges as disjoint ranges in ascending order: a set like
/// `1:*` names every message once without building a set of 50,000 numbers.
fn union(mut ranges: Vec<(usize, usize)>) -> impl Iterator<Item = (usize, usize)> {
    ranges.retain(|(start, end)| start < end);
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged.into_iter()
}

/// The inclusive bounds of one UID set element, `*` being `max`.
pub(crate) fn uid_bounds(item: &SequenceItem, max: u32) -> (u32, u32) {
    let value = |n: SeqOrUid| match n {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => max,
    };
    let (a, b) = match *item {
        SequenceItem::Value(n) => (value(n), value(n)),
        SequenceItem::Range(a, b) => (value(a), value(b)),
    };
    (a.min(b), a.max(b))
}

/// Whether a UID set names `uid` (`*` = `max`); `$` names nothing here.
pub(crate) fn set_contains(set: &SequenceSet, uid: u32, max: u32) -> bool {
    match set {
        SequenceSet::Saved => false,
        SequenceSet::Items(items) => items.iter().any(|item| {
            let (lo, hi) = uid_bounds(item, max);
            (lo..=hi).contains(&uid)
        }),
    }
}

/// An unsolicited `* n FETCH (UID n FLAGS (...) [MODSEQ (n)])`; `recent`: the message is
/// `\Recent` in this session.
pub(crate) fn flag_fetch(
    seq: u32,
    uid: Uid,
    flags: &tern_store::Flags,
    modseq: ModSeq,
    recent: bool,
    enabled: Enabled,
) -> Response {
    let mut items = vec![
        FetchData::Uid(WireUid(uid.0)),
        FetchData::Flags(flags_to_wire(flags, recent)),
    ];
    // RFC 7162 §3.1.4: once CONDSTORE is enabled, unsolicited FETCH responses carry MODSEQ.
    if enabled.condstore {
        items.push(FetchData::ModSeq(WireModSeq(modseq.0)));
    }
    Response::Data(Data::Fetch {
        seq: SeqNum(std::num::NonZeroU32::MIN.saturating_add(seq.saturating_sub(1))),
        items,
    })
}
