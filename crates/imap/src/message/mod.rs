//! What FETCH and SEARCH need to know about one stored message (raw RFC 5322 octets).
//!
//! Implementation notes:
//! - Every octet range (sections, sizes, line counts) comes from our own header and MIME
//!   scanner over the raw message (`header.rs`, `mime.rs`), never from a re-encoding, so
//!   BODY[section] returns exactly the stored octets and BODYSTRUCTURE sizes match them.
//!   mail-parser is used only to *decode* text for SEARCH: encoded-words, addresses, dates
//!   and charsets.
//! - Nothing here panics or fails on any input: malformed messages degrade (no blank line →
//!   all header; no Content-Type or an invalid one → text/plain; multipart without a
//!   delimiter → text/plain; unterminated multipart → the last part runs to the end).
//! - Nesting is bounded (`mime::MAX_DEPTH`, 32 levels); deeper parts are opaque leaves, so
//!   recursion here and in the codec's encoder stays shallow.
//! - ENVELOPE and header SEARCH read only the top-level header ([`MessageHeader`]); the MIME
//!   tree is built on first use.
//! - The message cache (`summary.rs`, stored by `tern-store` as `MessageMeta`) holds what
//!   this module computes from a message that FETCH and SEARCH ask for most: ENVELOPE,
//!   BODYSTRUCTURE and the top-level header block. Every cached answer is produced by the same
//!   code as the blob-parse path (the header block *is* the message's first octets), so the
//!   two can never disagree; tests compare them over the fixtures and random messages.

mod address;
mod codec;
mod header;
mod mime;
mod search;
mod section;
mod structure;
mod summary;

#[cfg(test)]
mod summary_tests;
#[cfg(test)]
mod tests;

use std::cell::OnceCell;
use std::num::NonZeroU32;

use tern_proto::imap::{BodyStructure, Date, Envelope, Section, SectionText};

use header::{HeaderBlock, parse_header};
use mime::Part;
use search::Needle;

pub use summary::{
    HEADER_CACHE_MAX, cached_body_structure, cached_envelope, cached_header, summarize, summary_of,
};

/// The top-level header of a message: what ENVELOPE, header SEARCH and BODY[HEADER] read.
/// Parsed from the whole message or from its cached header block (the same octets up to the
/// body), with the same result.
#[derive(Debug)]
pub struct MessageHeader<'a> {
    raw: &'a [u8],
    header: HeaderBlock,
}

/// A message as FETCH and SEARCH see it, borrowing the raw octets.
#[derive(Debug)]
pub struct ParsedMessage<'a> {
    /// The top-level header.
    header: MessageHeader<'a>,
    /// The MIME tree, built on first use.
    tree: OnceCell<Part>,
}

/// The address fields SEARCH can match (RFC 9051 §6.4.4 FROM, TO, CC, BCC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrField {
    /// `From:`.
    From,
    /// `To:`.
    To,
    /// `Cc:`.
    Cc,
    /// `Bcc:`.
    Bcc,
}

impl AddrField {
    fn name(self) -> &'static str {
        match self {
            AddrField::From => "From",
            AddrField::To => "To",
            AddrField::Cc => "Cc",
            AddrField::Bcc => "Bcc",
        }
    }
}

/// A part's Content-Transfer-Encoding is not one BINARY can decode; the session answers
/// `NO [UNKNOWN-CTE]` (RFC 3516 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Content-Transfer-Encoding {0:?}")]
pub struct UnknownCte(pub String);

impl<'a> MessageHeader<'a> {
    /// Reads the header at the start of `raw` (a whole message or a cached header block).
    pub fn parse(raw: &'a [u8]) -> MessageHeader<'a> {
        MessageHeader {
            raw,
            header: parse_header(raw, 0, raw.len()),
        }
    }

    /// The header block as stored: every field and the blank line after them (RFC 9051
    /// §6.4.5 HEADER); the whole input when there is no blank line.
    pub fn block(&self) -> &'a [u8] {
        self.raw.get(..self.header.end).unwrap_or(self.raw)
    }

    /// ENVELOPE (RFC 9051 §7.5.2): raw header values, unfolded, encoded-words as sent;
    /// address lists split into (name, adl, mailbox, host) with groups; Sender and Reply-To
    /// default to From.
    pub fn envelope(&self) -> Envelope {
        structure::envelope(self.raw, &self.header)
    }

    /// BODY[HEADER], BODY[HEADER.FIELDS (..)] and BODY[HEADER.FIELDS.NOT (..)] of the whole
    /// message (RFC 9051 §6.4.5); `None` for the section texts that need the body.
    pub fn section_text(&self, text: &SectionText) -> Option<Vec<u8>> {
        match text {
            SectionText::Header => Some(self.block().to_vec()),
            SectionText::HeaderFields(names) => {
                Some(section::header_fields(self.raw, &self.header, names, true))
            }
            SectionText::HeaderFieldsNot(names) => {
                Some(section::header_fields(self.raw, &self.header, names, false))
            }
            SectionText::Text | SectionText::Mime => None,
        }
    }

    /// SEARCH HEADER (RFC 9051 §6.4.4): a top-level field named `field` whose value, with
    /// encoded-words decoded, contains `needle` case-insensitively; an empty needle matches
    /// any message with the field.
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        search::header_contains(self.raw, &self.header, field, &Needle::new(needle))
    }

    /// SEARCH FROM/TO/CC/BCC (RFC 9051 §6.4.4): the field's decoded text, or a display name
    /// or address in it, contains `needle`.
    pub fn address_contains(&self, field: AddrField, needle: &str) -> bool {
        search::address_contains(self.raw, &self.header, field.name(), &Needle::new(needle))
    }

    /// SEARCH SUBJECT (RFC 9051 §6.4.4), encoded-words decoded.
    pub fn subject_contains(&self, needle: &str) -> bool {
        self.header_contains("Subject", needle)
    }

    /// The Date: header as Unix seconds (UTC); `None` when absent or unreadable.
    pub fn sent_date(&self) -> Option<i64> {
        search::sent_date(self.raw, &self.header).map(|dt| dt.to_timestamp())
    }

    /// The day of the Date: header in the header's own zone, for SENTBEFORE, SENTON and
    /// SENTSINCE (RFC 9051 §6.4.4: they disregard time and timezone). `None` when absent or
    /// unreadable.
    pub fn sent_day(&self) -> Option<Date> {
        search::sent_date(self.raw, &self.header).map(|dt| search::sent_day(&dt))
    }
}

impl<'a> ParsedMessage<'a> {
    /// Reads the top-level header of `raw`; the rest is parsed when needed.
    pub fn parse(raw: &'a [u8]) -> ParsedMessage<'a> {
        ParsedMessage {
            header: MessageHeader::parse(raw),
            tree: OnceCell::new(),
        }
    }

    /// The raw message.
    pub fn raw(&self) -> &'a [u8] {
        self.header.raw
    }

    /// The top-level header.
    pub fn header(&self) -> &MessageHeader<'a> {
        &self.header
    }

    fn tree(&self) -> &Part {
        let raw = self.raw();
        self.tree.get_or_init(|| Part::parse(raw, 0, raw.len()))
    }

    /// ENVELOPE (RFC 9051 §7.5.2), see [`MessageHeader::envelope`].
    pub fn envelope(&self) -> Envelope {
        self.header.envelope()
    }

    /// BODY (`extensions == false`) or BODYSTRUCTURE (`true`), RFC 9051 §7.5.2.
    pub fn body_structure(&self, extensions: bool) -> BodyStructure {
        structure::body_structure(self.raw(), self.tree(), extensions)
    }

    /// BODY[section] (RFC 9051 §6.4.5) as the stored octets; `None` when the part does not
    /// exist, or HEADER/TEXT is asked of a part that is not message/rfc822, or MIME without
    /// part numbers.
    pub fn section(&self, section: &Section) -> Option<Vec<u8>> {
        section::section(self.raw(), self.tree(), section)
    }

    /// BINARY[part] (RFC 3516 §4.2): the part's body with its Content-Transfer-Encoding
    /// removed (base64, quoted-printable; 7bit, 8bit and binary as they are). `[]` is the
    /// whole message. `Ok(None)` when the part does not exist.
    pub fn binary(&self, part: &[NonZeroU32]) -> Result<Option<Vec<u8>>, UnknownCte> {
        if part.is_empty() {
            return Ok(Some(self.raw().to_vec()));
        }
        match self.tree().resolve(part) {
            Some(p) => Ok(Some(section::decoded_body(self.raw(), p)?.into_owned())),
            None => Ok(None),
        }
    }

    /// BINARY.SIZE[part] (RFC 3516 §4.2): the size [`binary`](Self::binary) would return.
    pub fn binary_size(&self, part: &[NonZeroU32]) -> Result<Option<u64>, UnknownCte> {
        if part.is_empty() {
            return Ok(Some(rfc822_size(self.raw())));
        }
        match self.tree().resolve(part) {
            Some(p) => Ok(Some(section::decoded_size(self.raw(), p)?)),
            None => Ok(None),
        }
    }

    /// SEARCH HEADER, see [`MessageHeader::header_contains`].
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        self.header.header_contains(field, needle)
    }

    /// SEARCH BODY (RFC 9051 §6.4.4): the decoded text of the text parts (and the headers of
    /// attached messages) contains `needle`.
    pub fn body_contains(&self, needle: &str) -> bool {
        search::body_contains(self.raw(), self.tree(), &Needle::new(needle), 0)
    }

    /// SEARCH TEXT (RFC 9051 §6.4.4): the header or the body contains `needle`.
    pub fn text_contains(&self, needle: &str) -> bool {
        let needle = Needle::new(needle);
        search::any_header_contains(self.raw(), &self.header.header, &needle)
            || search::body_contains(self.raw(), self.tree(), &needle, 0)
    }

    /// SEARCH FROM/TO/CC/BCC, see [`MessageHeader::address_contains`].
    pub fn address_contains(&self, field: AddrField, needle: &str) -> bool {
        self.header.address_contains(field, needle)
    }

    /// SEARCH SUBJECT, see [`MessageHeader::subject_contains`].
    pub fn subject_contains(&self, needle: &str) -> bool {
        self.header.subject_contains(needle)
    }

    /// The Date: header as Unix seconds (UTC), see [`MessageHeader::sent_date`].
    pub fn sent_date(&self) -> Option<i64> {
        self.header.sent_date()
    }

    /// The day of the Date: header, see [`MessageHeader::sent_day`].
    pub fn sent_day(&self) -> Option<Date> {
        self.header.sent_day()
    }
}

/// RFC822.SIZE (RFC 9051 §7.5.2): the number of octets in the message as stored.
pub fn rfc822_size(raw: &[u8]) -> u64 {
    u64::try_from(raw.len()).unwrap_or(u64::MAX)
}

/// The `<origin.count>` slice of a BODY[...] or BINARY[...] result (RFC 9051 §6.4.5): from
/// octet `origin` (empty when past the end), at most `count` octets.
pub fn apply_partial(data: &[u8], origin: u64, count: Option<u64>) -> &[u8] {
    let start = usize::try_from(origin).map_or(data.len(), |o| o.min(data.len()));
    let rest = data.get(start..).unwrap_or_default();
    match count.map(usize::try_from) {
        Some(Ok(n)) if n < rest.len() => rest.get(..n).unwrap_or_default(),
        _ => rest,
    }
}
