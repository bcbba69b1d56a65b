//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731 / §7.3.4), SEARCHRES (RFC
//! 5182), MODSEQ (RFC 7162 §3.1.5).

use std::borrow::Cow;
use std::collections::HashSet;

use tern_proto::imap::{
    Code, Data, ESearch, ModSeq as WireModSeq, Response, SearchCommand, SearchKey,
    SearchReturnOption, SequenceSet, Tag,
};
use tern_store::{MessageRecord, MetaParts, SystemFlags, Uid};
use tokio::io::{AsyncRead, AsyncWrite};

use super::cache::{CacheFill, SLICE, read_slice};
use crate::dates::{date_days, unix_days};
use crate::error::CmdError;
use crate::message::{AddrField, MessageHeader, ParsedMessage, cached_header, summary_of};
use crate::selected::set_contains;
use crate::session::{CmdResult, Session, done};
use crate::state::State;

/// What a key is evaluated against.
struct Candidate<'a> {
    seq: u32,
    rec: &'a MessageRecord,
    /// Last message number and highest UID, for `*`.
    exists: u32,
    max_uid: u32,
    saved: &'a HashSet<Uid>,
    /// `\Recent` in this session (IMAP4rev1; never under IMAP4rev2).
    recent: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn search(&mut self, tag: &Tag, cmd: SearchCommand) -> CmdResult {
        if let Some(charset) = &cmd.charset
            && !charset.eq_ignore_ascii_case("UTF-8")
            && !charset.eq_ignore_ascii_case("US-ASCII")
        {
            // RFC 9051 §6.4.4: unknown charsets get BADCHARSET with the supported ones.
            return Err(CmdError::no(
                Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()]),
                "Unsupported charset",
            ));
        }
        let uses_modseq = cmd.criteria.iter().any(has_modseq);
        if uses_modseq {
            self.enabled.condstore = true;
        }
        let rev2 = self.enabled.rev2;
        let State::Selected(_, mailbox) = &mut self.state else {
            return Err(CmdError::bad("No mailbox selected"));
        };
        let store = self.ctx.store.clone();
        // Header keys are answered from the cached header blocks, read with the message rows
        // a slice at a time (the next slice on the store's threads while this one is
        // evaluated); only messages without one (or keys that need the body) read their blob.
        let header_keys = cmd.criteria.iter().any(uses_header);
        let parts = MetaParts {
            headers: header_keys,
            ..MetaParts::default()
        };
        let mut fill = CacheFill::new(mailbox.id);
        let saved: HashSet<Uid> = mailbox.saved.iter().copied().collect();
        let recent = mailbox.recent().clone();
        let exists = mailbox.exists();
        let max_uid = mailbox.uids().last().map_or(0, |u| u.get());
        let mut matched: Vec<(u32, Uid, u64)> = Vec::new();
        // Records, cache rows and the client's UID list all ascend: walk them together.
        let mut known = mailbox.uids().iter().zip(1u32..).peekable();
        let slices: Vec<&[Uid]> = mailbox.uids().chunks(SLICE).collect();
        let mut next = slices
            .first()
            .map(|uids| read_slice(&store, mailbox.id, uids, parts));
        for i in 0..slices.len() {
            let Some(read) = next.take() else {
                break;
            };
            let (records, headers) = read
                .await
                .map_err(|e| CmdError::Temporary(format!("read task failed: {e}")))??;
            next = slices
                .get(i + 1)
                .map(|uids| read_slice(&store, mailbox.id, uids, parts));
            let mut headers = headers.into_iter().peekable();
            for rec in &records {
                while headers.next_if(|(u, _)| *u < rec.uid).is_some() {}
                let cache_row = headers.next_if(|(u, _)| *u == rec.uid).map(|(_, m)| m);
                while known.next_if(|(u, _)| **u < rec.uid).is_some() {}
                let Some((_, seq)) = known.next_if(|(u, _)| **u == rec.uid) else {
                    continue;
                };
                let c = Candidate {
                    seq,
                    rec,
                    exists,
                    max_uid,
                    saved: &saved,
                    recent: recent.contains(rec.uid),
                };
                let cached = cache_row
                    .as_ref()
                    .and_then(|m| m.headers.as_deref())
                    .and_then(cached_header);
                let hit = match all(&cmd.criteria, &c, Content::default()) {
                    Some(hit) => Some(hit),
                    None => cached.as_ref().and_then(|header| {
                        let content = Content {
                            header: Some(header),
                            full: None,
                        };
                        all(&cmd.criteria, &c, content)
                    }),
                };
                let hit = match hit {
                    Some(hit) => hit,
                    None => {
                        let blob = store.read_blob(&rec.blob).await?;
                        let parsed = ParsedMessage::parse(&blob);
                        let content = Content {
                            header: Some(parsed.header()),
                            full: Some(&parsed),
                        };
                        let hit = all(&cmd.criteria, &c, content).unwrap_or(false);
                        if cache_row.is_none() && header_keys {
                            // Stored before the cache existed: fill it for the next search.
                            fill.push(&store, rec.uid, summary_of(&parsed)).await;
                        }
                        hit
                    }
                };
                if hit {
                    matched.push((seq, rec.uid, rec.modseq.0));
                }
            }
        }
        fill.flush(&store).await;
        let id = |m: &(u32, Uid, u64)| if cmd.uid { m.1.get() } else { m.0 };
        let highest = uses_modseq
            .then(|| matched.iter().map(|m| m.2).max())
            .flatten()
            .map(WireModSeq);
        let options = match (&cmd.return_options, rev2) {
            (Some(options), _) => options.clone(),
            // RFC 9051 §6.4.4: an IMAP4rev2 client gets ESEARCH, as for RETURN (ALL).
            (None, true) => vec![SearchReturnOption::All],
            (None, false) => {
                let ids = matched
                    .iter()
                    .filter_map(|m| std::num::NonZeroU32::new(id(m)))
                    .collect();
                self.out.send(&Response::Data(Data::Search {
                    ids,
                    mod_seq: highest,
                }));
                return done("SEARCH completed");
            }
        };
        // RFC 4731 §3.1: RETURN () means ALL.
        let options = if options.is_empty() {
            vec![SearchReturnOption::All]
        } else {
            options
        };
        let has = |o: SearchReturnOption| options.contains(&o);
        if has(SearchReturnOption::Save) {
            // RFC 5182 §2.4: with MIN and/or MAX only those are saved.
            let mut save: Vec<Uid> = Vec::new();
            if has(SearchReturnOption::Min) || has(SearchReturnOption::Max) {
                if has(SearchReturnOption::Min) {
                    save.extend(matched.first().map(|m| m.1));
                }
                if has(SearchReturnOption::Max) {
                    save.extend(matched.last().map(|m| m.1));
                }
            } else {
                save = matched.iter().map(|m| m.1).collect();
            }
            save.dedup();
            mailbox.saved = save;
            if options.iter().all(|o| *o == SearchReturnOption::Save) {
                // RFC 5182 §2.4: SAVE alone returns no ESEARCH.
                return done("SEARCH completed, result saved");
            }
        }
        let esearch = ESearch {
            tag: Some(tag.clone()),
            uid: cmd.uid,
            min: has(SearchReturnOption::Min)
                .then(|| {
                    matched
                        .first()
                        .and_then(|m| std::num::NonZeroU32::new(id(m)))
                })
                .flatten(),
            max: has(SearchReturnOption::Max)
                .then(|| {
                    matched
                        .last()
                        .and_then(|m| std::num::NonZeroU32::new(id(m)))
                })
                .flatten(),
            count: has(SearchReturnOption::Count).then_some(matched.len() as u32),
            all: has(SearchReturnOption::All)
                .then(|| SequenceSet::from_ids(matched.iter().map(id)))
                .flatten(),
            mod_seq: highest,
        };
        self.out.send(&Response::Data(Data::ESearch(esearch)));
        done("SEARCH completed")
    }
}

fn has_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::And(keys) => keys.iter().any(has_modseq),
        _ => false,
    }
}

/// Whether a key needs the top-level header (RFC 9051 §6.4.4 FROM, TO, CC, BCC, SUBJECT,
/// HEADER, SENTBEFORE, SENTON, SENTSINCE).
fn uses_header(key: &SearchKey) -> bool {
    match key {
        SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Cc(_)
        | SearchKey::Bcc(_)
        | SearchKey::Subject(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        SearchKey::Not(k) => uses_header(k),
        SearchKey::Or(a, b) => uses_header(a) || uses_header(b),
        SearchKey::And(keys) => keys.iter().any(uses_header),
        _ => false,
    }
}

/// The message content a key may look at: the top-level header (from the cache or the
/// blob) and the whole parsed message (from the blob only).
#[derive(Clone, Copy, Default)]
struct Content<'a> {
    header: Option<&'a MessageHeader<'a>>,
    full: Option<&'a ParsedMessage<'a>>,
}

/// Three-valued AND: `None` when the answer needs message content `m` does not have.
fn all(keys: &[SearchKey], c: &Candidate<'_>, m: Content<'_>) -> Option<bool> {
    let mut unknown = false;
    for key in keys {
        match eval(key, c, m) {
            Some(false) => return Some(false),
            Some(true) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(true) }
}

fn text(s: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(s)
}

/// RFC 9051 §6.4.4 search keys. `m` is empty on the quick pass without message content.
fn eval(key: &SearchKey, c: &Candidate<'_>, m: Content<'_>) -> Option<bool> {
    let flags = &c.rec.flags;
    let sys = |f: SystemFlags| flags.system.contains(f);
    let day = unix_days(c.rec.internal_date);
    let keyword = |k: &str| flags.keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
    Some(match key {
        SearchKey::All => true,
        SearchKey::Answered => sys(SystemFlags::ANSWERED),
        SearchKey::Deleted => sys(SystemFlags::DELETED),
        SearchKey::Draft => sys(SystemFlags::DRAFT),
        SearchKey::Flagged => sys(SystemFlags::FLAGGED),
        SearchKey::Seen => sys(SystemFlags::SEEN),
        SearchKey::Unanswered => !sys(SystemFlags::ANSWERED),
        SearchKey::Undeleted => !sys(SystemFlags::DELETED),
        SearchKey::Undraft => !sys(SystemFlags::DRAFT),
        SearchKey::Unflagged => !sys(SystemFlags::FLAGGED),
        SearchKey::Unseen => !sys(SystemFlags::SEEN),
        SearchKey::Keyword(k) => keyword(k),
        SearchKey::Unkeyword(k) => !keyword(k),
        // RFC 3501 §6.4.4: NEW is "RECENT UNSEEN"; OLD is "NOT RECENT". Under IMAP4rev2
        // nothing is recent (RFC 9051 Appendix E).
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !sys(SystemFlags::SEEN),
        SearchKey::Old => !c.recent,
        // RFC 9051 §6.4.4: dates compare the INTERNALDATE's day, ignoring time and zone.
        SearchKey::Before(d) => day < date_days(d),
        SearchKey::On(d) => day == date_days(d),
        SearchKey::Since(d) => day >= date_days(d),
        SearchKey::Larger(n) => c.rec.size > *n,
        SearchKey::Smaller(n) => c.rec.size < *n,
        SearchKey::ModSeq { mod_seq, .. } => c.rec.modseq.0 >= mod_seq.get(),
        SearchKey::Uid(set) => match set {
            SequenceSet::Saved => c.saved.contains(&c.rec.uid),
            set => set_contains(set, c.rec.uid.get(), c.max_uid),
        },
        SearchKey::SequenceSet(set) => match set {
            SequenceSet::Saved => c.saved.contains(&c.rec.uid),
            set => set_contains(set, c.seq, c.exists),
        },
        SearchKey::Not(k) => !eval(k, c, m)?,
        SearchKey::Or(a, b) => match (eval(a, c, m), eval(b, c, m)) {
            (Some(true), _) | (_, Some(true)) => true,
            (Some(false), Some(false)) => false,
            _ => return None,
        },
        SearchKey::And(keys) => all(keys, c, m)?,
        SearchKey::SentBefore(d) => {
            (m.header?.sent_day()).is_some_and(|s| date_days(&s) < date_days(d))
        }
        SearchKey::SentOn(d) => {
            (m.header?.sent_day()).is_some_and(|s| date_days(&s) == date_days(d))
        }
        SearchKey::SentSince(d) => {
            (m.header?.sent_day()).is_some_and(|s| date_days(&s) >= date_days(d))
        }
        SearchKey::From(s) => m.header?.address_contains(AddrField::From, &text(s)),
        SearchKey::To(s) => m.header?.address_contains(AddrField::To, &text(s)),
        SearchKey::Cc(s) => m.header?.address_contains(AddrField::Cc, &text(s)),
        SearchKey::Bcc(s) => m.header?.address_contains(AddrField::Bcc, &text(s)),
        SearchKey::Subject(s) => m.header?.subject_contains(&text(s)),
        SearchKey::Header(name, s) => m.header?.header_contains(name, &text(s)),
        SearchKey::Body(s) => m.full?.body_contains(&text(s)),
        SearchKey::Text(s) => m.full?.text_contains(&text(s)),
    })
}
