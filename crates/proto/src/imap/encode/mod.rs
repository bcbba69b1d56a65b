//! Encoding: the shared [`Writer`] (strings, sets, flags, dates, sections), responses
//! (`response.rs`, `body.rs`) and commands (`command.rs`).
//!
//! The writer chooses the string form itself: an atom where the grammar allows one, a quoted
//! string for short text without CR, LF or NUL (and without 8-bit octets unless UTF-8 is in
//! effect), a literal otherwise. Whatever the caller puts in a typed value, the output stays
//! well-formed: text has CR/LF replaced, atoms drop characters they cannot hold.

mod body;
pub(crate) mod command;
mod response;

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::response::Response;
use super::types::{
    Date, DateTime, Flag, MONTHS, Mailbox, Section, SectionText, SeqOrUid, SequenceItem,
    SequenceSet, is_astring_char, is_atom_char, is_list_char,
};
use super::utf7::encode_modified_utf7;

/// Longest string written quoted; longer ones become literals.
const MAX_QUOTED: usize = 1024;

/// Encodes server responses. `utf8` is set once the client enabled UTF8=ACCEPT or
/// IMAP4rev2 (RFC 9051 §6.3.1): then mailbox names are sent as UTF-8 rather than modified
/// UTF-7, and UTF-8 text may be sent in quoted strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseEncoder {
    /// UTF-8 mode (UTF8=ACCEPT / IMAP4rev2).
    pub utf8: bool,
}

impl ResponseEncoder {
    /// Appends `response`, CRLF included, to `out`.
    pub fn encode(&self, response: &Response, out: &mut BytesMut) {
        let mut w = Writer {
            out,
            utf8: self.utf8,
            client: false,
        };
        w.response(response);
    }
}

/// Appends `response` to `out` for a client without UTF-8 mode.
pub fn encode(response: &Response, out: &mut BytesMut) {
    ResponseEncoder::default().encode(response, out);
}

pub(crate) struct Writer<'a> {
    out: &'a mut BytesMut,
    /// UTF-8 mailbox names and quoted strings.
    utf8: bool,
    /// Writing a command: literals are non-synchronizing `{n+}`.
    client: bool,
}

impl Writer<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn str(&mut self, s: &str) {
        self.raw(s.as_bytes());
    }

    fn byte(&mut self, b: u8) {
        self.out.put_u8(b);
    }

    fn sp(&mut self) {
        self.byte(b' ');
    }

    fn crlf(&mut self) {
        self.raw(b"\r\n");
    }

    fn num(&mut self, n: impl std::fmt::Display) {
        // Writing into a BytesMut cannot fail.
        let _ = write!(self.out, "{n}");
    }

    /// An atom; characters an atom cannot hold are dropped.
    fn atom(&mut self, s: &str) {
        for b in s.bytes().filter(|&b| is_atom_char(b)) {
            self.byte(b);
        }
    }

    /// A tag (`1*<any ASTRING-CHAR except "+">`, so `]` is allowed, unlike in atoms).
    fn tag(&mut self, tag: &super::types::Tag) {
        for b in tag
            .as_str()
            .bytes()
            .filter(|&b| super::types::is_tag_char(b))
        {
            self.byte(b);
        }
    }

    /// Free text (`text = 1*(TEXT-CHAR / UTF8-2 / UTF8-3 / UTF8-4)`): CR and LF become spaces.
    fn text(&mut self, s: &str) {
        for b in s.bytes() {
            self.byte(if b == b'\r' || b == b'\n' || b == 0 {
                b' '
            } else {
                b
            });
        }
    }

    fn can_quote(&self, s: &[u8]) -> bool {
        s.len() <= MAX_QUOTED
            && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
            && (s.is_ascii() || (self.utf8 && std::str::from_utf8(s).is_ok()))
    }

    fn quoted(&mut self, s: &[u8]) {
        self.byte(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                self.byte(b'\\');
            }
            self.byte(b);
        }
        self.byte(b'"');
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8`.
    fn literal(&mut self, s: &[u8]) {
        self.literal_header(s.len() as u64);
        self.raw(s);
    }

    /// `"{" number64 ["+"] "}" CRLF`: a literal's header without its data.
    fn literal_header(&mut self, size: u64) {
        self.byte(b'{');
        self.num(size);
        if self.client {
            self.byte(b'+');
        }
        self.raw(b"}\r\n");
    }

    /// `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET`.
    fn literal8(&mut self, s: &[u8]) {
        self.byte(b'~');
        self.literal(s);
    }

    /// `string = quoted / literal`.
    fn string(&mut self, s: &[u8]) {
        if self.can_quote(s) {
            self.quoted(s)
        } else {
            self.literal(s)
        }
    }

    /// `nstring = string / nil`.
    fn nstring(&mut self, s: Option<&[u8]>) {
        match s {
            Some(s) => self.string(s),
            None => self.str("NIL"),
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`; "NIL" is quoted so it is never read as nil.
    fn astring(&mut self, s: &[u8]) {
        if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) && !s.eq_ignore_ascii_case(b"NIL")
        {
            self.raw(s);
        } else {
            self.string(s);
        }
    }

    /// `list-mailbox = 1*list-char / string`.
    fn list_mailbox(&mut self, s: &[u8]) {
        if !s.is_empty() && s.iter().all(|&b| is_list_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
            self.raw(s);
        } else {
            self.string(s);
        }
    }

    /// A mailbox name in its wire form (modified UTF-7 unless UTF-8 mode).
    fn wire_name(&self, name: &str) -> Vec<u8> {
        if self.utf8 {
            name.as_bytes().to_vec()
        } else {
            encode_modified_utf7(name).into_bytes()
        }
    }

    /// A mailbox as a string (responses quote names).
    fn mailbox_string(&mut self, mailbox: &Mailbox) {
        let wire = self.wire_name(mailbox.as_str());
        self.string(&wire);
    }

    /// A mailbox as an astring (commands).
    fn mailbox_astring(&mut self, name: &str) {
        let wire = self.wire_name(name);
        self.astring(&wire);
    }

    /// A quoted single character, or NIL (hierarchy delimiters).
    fn delimiter(&mut self, delimiter: Option<char>) {
        match delimiter {
            Some(c) => {
                let mut buf = [0u8; 4];
                self.quoted(c.encode_utf8(&mut buf).as_bytes());
            }
            None => self.str("NIL"),
        }
    }

    fn seq_number(&mut self, n: SeqOrUid) {
        match n {
            SeqOrUid::Value(n) => self.num(n),
            SeqOrUid::Asterisk => self.byte(b'*'),
        }
    }

    // sequence-set = (seq-number / seq-range) ["," sequence-set] / seq-last-command
    fn sequence_set(&mut self, set: &SequenceSet) {
        match set {
            SequenceSet::Saved => self.byte(b'$'),
            SequenceSet::Items(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.byte(b',');
                    }
                    match *item {
                        SequenceItem::Value(n) => self.seq_number(n),
                        SequenceItem::Range(a, b) => {
                            self.seq_number(a);
                            self.byte(b':');
                            self.seq_number(b);
                        }
                    }
                }
            }
        }
    }

    fn flag(&mut self, flag: &Flag) {
        match flag {
            Flag::Answered => self.str("\\Answered"),
            Flag::Flagged => self.str("\\Flagged"),
            Flag::Deleted => self.str("\\Deleted"),
            Flag::Seen => self.str("\\Seen"),
            Flag::Draft => self.str("\\Draft"),
            Flag::Keyword(k) => self.atom(k),
            Flag::Extension(e) => {
                self.byte(b'\\');
                self.atom(e);
            }
        }
    }

    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.byte(b'(');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.sp();
            }
            each(self, item);
        }
        self.byte(b')');
    }

    fn flag_list(&mut self, flags: &[Flag]) {
        self.list(flags, |w, f| w.flag(f));
    }

    fn month(&mut self, month: u8) {
        let name = MONTHS
            .get(usize::from(month.saturating_sub(1)))
            .unwrap_or(&"Jan");
        self.str(name);
    }

    // date-text = date-day "-" date-month "-" date-year
    fn date(&mut self, date: &Date) {
        self.num(date.day);
        self.byte(b'-');
        self.month(date.month);
        let _ = write!(self.out, "-{:04}", date.year.min(9999));
    }

    // date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    fn date_time(&mut self, dt: &DateTime) {
        let _ = write!(self.out, "\"{:02}-", dt.date.day.min(99));
        self.month(dt.date.month);
        let zone = dt.zone_minutes.clamp(-5999, 5999);
        let sign = if zone < 0 { '-' } else { '+' };
        let zone = zone.unsigned_abs();
        let _ = write!(
            self.out,
            "-{:04} {:02}:{:02}:{:02} {sign}{:02}{:02}\"",
            dt.date.year.min(9999),
            dt.hour.min(99),
            dt.minute.min(99),
            dt.second.min(99),
            zone / 60,
            zone % 60
        );
    }

    fn part(&mut self, part: &[std::num::NonZeroU32]) {
        for (i, n) in part.iter().enumerate() {
            if i > 0 {
                self.byte(b'.');
            }
            self.num(n);
        }
    }

    // section = "[" [section-spec] "]"
    fn section(&mut self, section: &Section) {
        self.byte(b'[');
        self.part(&section.part);
        if let Some(text) = &section.text {
            if !section.part.is_empty() {
                self.byte(b'.');
            }
            match text {
                SectionText::Header => self.str("HEADER"),
                SectionText::Text => self.str("TEXT"),
                SectionText::Mime => self.str("MIME"),
                SectionText::HeaderFields(names) => {
                    self.str("HEADER.FIELDS ");
                    self.list(names, |w, n| w.astring(n.as_bytes()));
                }
                SectionText::HeaderFieldsNot(names) => {
                    self.str("HEADER.FIELDS.NOT ");
                    self.list(names, |w, n| w.astring(n.as_bytes()));
                }
            }
        }
        self.byte(b']');
    }

    // section-binary = "[" [section-part] "]"
    fn section_binary(&mut self, part: &[std::num::NonZeroU32]) {
        self.byte(b'[');
        self.part(part);
        self.byte(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Writer<'_>)) -> String {
        let mut out = BytesMut::new();
        let mut w = Writer {
            out: &mut out,
            utf8: false,
            client: false,
        };
        f(&mut w);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn strings_pick_atom_quoted_or_literal() {
        assert_eq!(written(|w| w.astring(b"INBOX")), "INBOX");
        assert_eq!(written(|w| w.astring(b"two words")), "\"two words\"");
        assert_eq!(written(|w| w.astring(b"nil")), "\"nil\"");
        assert_eq!(written(|w| w.astring(b"")), "\"\"");
        assert_eq!(written(|w| w.string(b"a\"b\\")), "\"a\\\"b\\\\\"");
        assert_eq!(written(|w| w.string(b"line\r\n")), "{6}\r\nline\r\n");
        assert_eq!(written(|w| w.string("ü".as_bytes())), "{2}\r\nü");
        assert_eq!(written(|w| w.nstring(None)), "NIL");
        let long = vec![b'a'; MAX_QUOTED + 1];
        assert!(written(|w| w.string(&long)).starts_with("{1025}\r\n"));
    }

    #[test]
    fn utf8_mode_quotes_utf8() {
        let mut out = BytesMut::new();
        let mut w = Writer {
            out: &mut out,
            utf8: true,
            client: false,
        };
        w.mailbox_string(&Mailbox::new("Entwürfe"));
        assert_eq!(&out[..], "\"Entwürfe\"".as_bytes());
    }

    #[test]
    fn dates_are_fixed_width() {
        let dt = DateTime {
            date: Date {
                year: 1996,
                month: 7,
                day: 7,
            },
            hour: 2,
            minute: 44,
            second: 5,
            zone_minutes: -420,
        };
        assert_eq!(
            written(|w| w.date_time(&dt)),
            "\"07-Jul-1996 02:44:05 -0700\""
        );
        assert_eq!(written(|w| w.date(&dt.date)), "7-Jul-1996");
    }
}
