//! One FETCH data item of one message (RFC 9051 §6.4.5, §7.5.2), and what each item needs:
//! the message row alone, a part of the message cache, or the blob.

use bytes::Bytes;
use tern_proto::imap::{
    BodyStructure, Code, Envelope, FetchData, FetchItem, ModSeq as WireModSeq, Section, SectionText,
};
use tern_store::{MessageMeta, MessageRecord, MetaParts};

use super::{flags_to_wire, wire_uid};
use crate::dates;
use crate::error::CmdError;
use crate::message::{
    ParsedMessage, apply_partial, cached_body_structure, cached_envelope, cached_header,
};

/// What the items of one FETCH need besides the message row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// Cache parts that answer items without the blob.
    pub parts: MetaParts,
    /// Some item needs the message content itself.
    pub blob: bool,
}

impl Needs {
    pub fn of(items: &[FetchItem]) -> Needs {
        let mut needs = Needs::default();
        for item in items {
            match item {
                FetchItem::Flags
                | FetchItem::InternalDate
                | FetchItem::Rfc822Size
                | FetchItem::Uid
                | FetchItem::ModSeq => {}
                FetchItem::Envelope => needs.parts.envelope = true,
                FetchItem::Body | FetchItem::BodyStructure => needs.parts.body_structure = true,
                FetchItem::Rfc822Header => needs.parts.headers = true,
                FetchItem::BodySection { section, .. } if is_header_section(section) => {
                    needs.parts.headers = true;
                }
                _ => needs.blob = true,
            }
        }
        needs
    }

    /// Whether a message with this cache row (`None`: none) needs its blob read.
    pub fn blob_for(&self, meta: Option<&MessageMeta>) -> bool {
        let p = self.parts;
        self.blob
            || match meta {
                None => !p.is_empty(),
                Some(m) => {
                    (p.envelope && m.envelope.is_none())
                        || (p.body_structure && m.body_structure.is_none())
                        || (p.headers && m.headers.is_none())
                }
            }
    }
}

/// HEADER, HEADER.FIELDS and HEADER.FIELDS.NOT of the whole message: answered by the cached
/// header block.
fn is_header_section(section: &Section) -> bool {
    section.part.is_empty()
        && matches!(
            section.text,
            Some(
                SectionText::Header
                    | SectionText::HeaderFields(_)
                    | SectionText::HeaderFieldsNot(_)
            )
        )
}

/// Where one message's items come from: its cache row and, when loaded, its blob. A cache
/// part answers when it is readable, else the parsed blob does: both give the same octets
/// (see `message::summary`).
pub(super) struct Source<'a> {
    pub meta: Option<&'a MessageMeta>,
    pub raw: Option<&'a Bytes>,
    pub parsed: Option<&'a ParsedMessage<'a>>,
    /// The message is `\Recent` in this session (IMAP4rev1).
    pub recent: bool,
}

/// Why an item could not be produced.
pub(super) enum ItemError {
    /// It needs the blob, which is not loaded (a cache part was missing or unreadable).
    NeedBlob,
    /// A protocol answer (e.g. `NO [UNKNOWN-CTE]`).
    Cmd(CmdError),
}

impl From<CmdError> for ItemError {
    fn from(e: CmdError) -> Self {
        ItemError::Cmd(e)
    }
}

impl Source<'_> {
    fn raw(&self) -> Result<Bytes, ItemError> {
        self.raw.cloned().ok_or(ItemError::NeedBlob)
    }

    fn parsed(&self) -> Result<&ParsedMessage<'_>, ItemError> {
        self.parsed.ok_or(ItemError::NeedBlob)
    }

    fn envelope(&self) -> Result<Envelope, ItemError> {
        let cached = self.meta.and_then(|m| m.envelope.as_deref());
        match cached.and_then(cached_envelope) {
            Some(env) => Ok(env),
            None => Ok(self.parsed()?.envelope()),
        }
    }

    fn body_structure(&self, extensions: bool) -> Result<BodyStructure, ItemError> {
        let cached = self.meta.and_then(|m| m.body_structure.as_deref());
        match cached.and_then(|c| cached_body_structure(c, extensions)) {
            Some(body) => Ok(body),
            None => Ok(self.parsed()?.body_structure(extensions)),
        }
    }

    /// BODY[section] as stored; `None` when the part does not exist.
    fn section(&self, s: &Section) -> Result<Option<Bytes>, ItemError> {
        if s.part.is_empty() {
            match &s.text {
                None => return Ok(Some(self.raw()?)),
                Some(text) if is_header_section(s) => {
                    let cached = self.meta.and_then(|m| m.headers.as_deref());
                    if let Some(header) = cached.and_then(cached_header) {
                        return Ok(header.section_text(text).map(Bytes::from));
                    }
                }
                Some(_) => {}
            }
        }
        Ok(self.parsed()?.section(s).map(Bytes::from))
    }
}

/// One data item of one message; `None` when it is already in the response (UID).
pub(super) fn fetch_item(
    item: &FetchItem,
    rec: &MessageRecord,
    source: &Source<'_>,
    uid_command: bool,
) -> Result<Option<FetchData>, ItemError> {
    Ok(Some(match item {
        FetchItem::Flags => FetchData::Flags(flags_to_wire(&rec.flags, source.recent)),
        FetchItem::InternalDate => FetchData::InternalDate(dates::to_date_time(rec.internal_date)),
        FetchItem::Rfc822Size => FetchData::Rfc822Size(rec.size),
        FetchItem::Uid if uid_command => return Ok(None),
        FetchItem::Uid => FetchData::Uid(wire_uid(rec.uid)),
        FetchItem::ModSeq => FetchData::ModSeq(WireModSeq(rec.modseq.0)),
        FetchItem::Envelope => FetchData::Envelope(Box::new(source.envelope()?)),
        FetchItem::Body => FetchData::Body(Box::new(source.body_structure(false)?)),
        FetchItem::BodyStructure => {
            FetchData::BodyStructure(Box::new(source.body_structure(true)?))
        }
        FetchItem::Rfc822 => FetchData::Rfc822(Some(source.raw()?)),
        FetchItem::Rfc822Header => FetchData::Rfc822Header(source.section(&Section {
            part: Vec::new(),
            text: Some(SectionText::Header),
        })?),
        FetchItem::Rfc822Text => FetchData::Rfc822Text(source.section(&Section {
            part: Vec::new(),
            text: Some(SectionText::Text),
        })?),
        FetchItem::BodySection {
            section: s,
            partial,
            ..
        } => {
            let data = source.section(s)?;
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
            let data = source
                .parsed()?
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
            let size = source
                .parsed()?
                .binary_size(part)
                .map_err(|e| CmdError::no(Code::UnknownCte, e.to_string()))?;
            FetchData::BinarySize {
                part: part.clone(),
                size: size.unwrap_or(0),
            }
        }
    }))
}
