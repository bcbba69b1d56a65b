//! The command parser: grammar primitives (this file), commands (`command.rs`), SEARCH keys
//! (`search.rs`) and FETCH/STORE arguments (`fetch.rs`).
//!
//! The parser runs over one complete, framed command (literals inline, final CRLF included),
//! held in a [`Bytes`] so literal data is sliced out without copying. Every function returns
//! an error instead of panicking; indexing goes through `get`.

mod command;
mod fetch;
mod search;

use std::borrow::Cow;
use std::num::{NonZeroU32, NonZeroU64};

use bytes::Bytes;

use super::command::AppendContent;
use super::types::{
    Date, DateTime, Flag, MONTHS, Mailbox, ModSeq, SeqOrUid, SequenceItem, SequenceSet,
    is_astring_char, is_atom_char, is_list_char,
};
use super::utf7::decode_modified_utf7;

pub(crate) use command::parse_command;

/// A syntax error; the text goes into the `BAD` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub Cow<'static, str>);

impl From<&'static str> for ParseError {
    fn from(s: &'static str) -> Self {
        ParseError(Cow::Borrowed(s))
    }
}

pub(crate) type PResult<T> = Result<T, ParseError>;

/// How the parser reads names, how deep it may nest, and which APPEND message literals the
/// decoder handed to its caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParseOptions<'s> {
    pub utf8_accept: bool,
    pub max_depth: usize,
    /// Offsets in the input where the data of a literal handed to the caller would have
    /// started; the input holds none of its octets.
    pub streamed: &'s [usize],
}

/// Whether a literal was a `literal` or a `literal8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiteralKind {
    Literal,
    Literal8,
}

pub(crate) struct Parser<'a> {
    input: &'a Bytes,
    pos: usize,
    opts: ParseOptions<'a>,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a Bytes, opts: ParseOptions<'a>) -> Parser<'a> {
        Parser {
            input,
            pos: 0,
            opts,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.input.get(self.pos + offset).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, msg: &'static str) -> PResult<()> {
        if self.eat(b) { Ok(()) } else { Err(msg.into()) }
    }

    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "expected a space")
    }

    /// Consumes `kw` if the input starts with it, ignoring ASCII case. No boundary check.
    fn eat_ci(&mut self, kw: &[u8]) -> bool {
        match self.rest().get(..kw.len()) {
            Some(head) if head.eq_ignore_ascii_case(kw) => {
                self.pos += kw.len();
                true
            }
            _ => false,
        }
    }

    /// Consumes `kw` if it is the whole next atom (case-insensitive).
    fn eat_keyword(&mut self, kw: &[u8]) -> bool {
        let start = self.pos;
        if self.eat_ci(kw) && !self.peek().is_some_and(is_atom_char) {
            return true;
        }
        self.pos = start;
        false
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().position(|&b| !pred(b)).unwrap_or(rest.len());
        self.pos += n;
        rest.get(..n).unwrap_or_default()
    }

    /// `CRLF` and the end of the command.
    pub(crate) fn end(&mut self) -> PResult<()> {
        if self.rest() == b"\r\n" {
            self.pos += 2;
            Ok(())
        } else {
            Err("unexpected characters at end of command".into())
        }
    }

    /// Enters one level of nesting (parenthesised search keys, NOT, OR).
    fn descend(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return Err("too deeply nested".into());
        }
        Ok(())
    }

    fn ascend(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // atom = 1*ATOM-CHAR
    pub(crate) fn atom(&mut self) -> PResult<&'a [u8]> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            Err("expected an atom".into())
        } else {
            Ok(atom)
        }
    }

    /// An atom as an upper-case keyword.
    pub(crate) fn keyword(&mut self) -> PResult<String> {
        let atom = self.atom()?;
        Ok(String::from_utf8_lossy(atom).to_ascii_uppercase())
    }

    /// An atom as a string (atoms are ASCII).
    fn atom_string(&mut self) -> PResult<String> {
        Ok(String::from_utf8_lossy(self.atom()?).into_owned())
    }

    fn digits(&mut self) -> PResult<&'a [u8]> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            Err("expected a number".into())
        } else {
            Ok(digits)
        }
    }

    // number64 = 1*DIGIT ; Unsigned 63-bit integer (0 <= n <= 9,223,372,036,854,775,807)
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        self.digits()?
            .iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .filter(|&n| n <= ModSeq::MAX)
            .ok_or_else(|| "number too large".into())
    }

    // number = 1*DIGIT ; Unsigned 32-bit integer (0 <= n < 4,294,967,296)
    pub(crate) fn number(&mut self) -> PResult<u32> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| "number too large".into())
    }

    // nz-number = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer
    pub(crate) fn nz_number(&mut self) -> PResult<NonZeroU32> {
        NonZeroU32::new(self.number()?).ok_or_else(|| "expected a non-zero number".into())
    }

    // nz-number64 = digit-nz *DIGIT
    fn nz_number64(&mut self) -> PResult<NonZeroU64> {
        NonZeroU64::new(self.number64()?).ok_or_else(|| "expected a non-zero number".into())
    }

    // mod-sequence-value = 1*DIGIT ; Positive unsigned 63-bit integer
    pub(crate) fn mod_sequence_value(&mut self) -> PResult<ModSeq> {
        match self.number64()? {
            0 => Err("expected a non-zero mod-sequence".into()),
            n => Ok(ModSeq(n)),
        }
    }

    // mod-sequence-valzer = "0" / mod-sequence-value
    pub(crate) fn mod_sequence_valzer(&mut self) -> PResult<ModSeq> {
        Ok(ModSeq(self.number64()?))
    }

    // quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    // QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials /
    //                   UTF8-2 / UTF8-3 / UTF8-4
    // quoted-specials = DQUOTE / "\"
    // TEXT-CHAR       = <any CHAR except CR and LF>
    // CHAR            = %x01-7F
    // (8-bit octets are accepted; callers needing UTF-8 check it. Other control characters
    // are TEXT-CHARs; callers that refuse them, such as mailbox names, say so.)
    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => match self.peek_at(1) {
                    Some(c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => return Err("invalid escape in quoted string".into()),
                },
                // The framing ends a command only at its final CRLF: any other CR or LF
                // is inside the string, which did not end too early but holds a character
                // it cannot.
                Some(b'\r' | b'\n') if self.rest() != b"\r\n" => {
                    return Err("CR or LF in a quoted string (send it as a literal)".into());
                }
                Some(0) => return Err("NUL in a quoted string".into()),
                Some(b'\r') | None => return Err("unterminated quoted string".into()),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    // literal  = "{" number64 ["+"] "}" CRLF *CHAR8   ; RFC 7888 adds "+"
    // literal8 = "~{" number64 ["+"] "}" CRLF *OCTET  ; RFC 3516
    fn literal_any(&mut self) -> PResult<(Bytes, LiteralKind)> {
        match self.message_literal()? {
            (AppendContent::Octets(data), kind) => Ok((data, kind)),
            (AppendContent::Streamed(_), _) => Err("message literal not allowed here".into()),
        }
    }

    /// A literal or literal8 that may be an APPEND message the decoder handed to its caller
    /// (then the input holds only its header).
    fn message_literal(&mut self) -> PResult<(AppendContent, LiteralKind)> {
        let kind = if self.eat(b'~') {
            LiteralKind::Literal8
        } else {
            LiteralKind::Literal
        };
        self.expect(b'{', "expected a literal")?;
        let size = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "invalid literal")?;
        self.expect(b'\r', "expected CRLF after literal size")?;
        self.expect(b'\n', "expected CRLF after literal size")?;
        if self.opts.streamed.contains(&self.pos) {
            return Ok((AppendContent::Streamed(size), kind));
        }
        let size = usize::try_from(size).map_err(|_| ParseError::from("literal too large"))?;
        let end = self
            .pos
            .checked_add(size)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| ParseError::from("literal data missing"))?;
        let data = self.input.slice(self.pos..end);
        self.pos = end;
        Ok((AppendContent::Octets(data), kind))
    }

    /// A `literal` (not literal8); CHAR8 excludes NUL.
    fn literal(&mut self) -> PResult<Bytes> {
        match self.literal_any()? {
            (data, LiteralKind::Literal) if !data.contains(&0) => Ok(data),
            (_, LiteralKind::Literal) => Err("NUL in literal".into()),
            (_, LiteralKind::Literal8) => Err("literal8 not allowed here".into()),
        }
    }

    // string = quoted / literal
    pub(crate) fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(self.literal()?.to_vec()),
            _ => Err("expected a string".into()),
        }
    }

    // astring = 1*ASTRING-CHAR / string
    pub(crate) fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    Err("expected an atom or string".into())
                } else {
                    Ok(atom.to_vec())
                }
            }
        }
    }

    pub(crate) fn astring_utf8(&mut self) -> PResult<String> {
        utf8(self.astring()?)
    }

    pub(crate) fn string_utf8(&mut self) -> PResult<String> {
        utf8(self.string()?)
    }

    // nil = "NIL"
    pub(crate) fn nil(&mut self) -> bool {
        self.eat_keyword(b"NIL")
    }

    // nstring = string / nil
    pub(crate) fn nstring_utf8(&mut self) -> PResult<Option<String>> {
        if self.nil() {
            Ok(None)
        } else {
            self.string_utf8().map(Some)
        }
    }

    /// A name on the wire (modified UTF-7, or UTF-8 under UTF8=ACCEPT) as UTF-8.
    fn wire_name(&self, raw: Vec<u8>) -> PResult<String> {
        if self.opts.utf8_accept {
            utf8(raw)
        } else {
            decode_modified_utf7(&raw).map_err(|e| ParseError(Cow::Owned(e.to_string())))
        }
    }

    // mailbox = "INBOX" / astring
    //         ; INBOX is case-insensitive. All case variants of INBOX (e.g., "iNbOx")
    //         ; MUST be interpreted as INBOX not as an astring.
    pub(crate) fn mailbox(&mut self) -> PResult<Mailbox> {
        let raw = self.astring()?;
        Ok(Mailbox::new(self.wire_name(raw)?))
    }

    /// A LIST reference name (a `mailbox`, but not normalised: it is a prefix).
    pub(crate) fn reference(&mut self) -> PResult<String> {
        let raw = self.astring()?;
        self.wire_name(raw)
    }

    // list-mailbox = 1*list-char / string
    pub(crate) fn list_mailbox(&mut self) -> PResult<String> {
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let raw = self.take_while(is_list_char);
                if raw.is_empty() {
                    return Err("expected a mailbox pattern".into());
                }
                raw.to_vec()
            }
        };
        self.wire_name(raw)
    }

    // seq-number = nz-number / "*"
    fn seq_number(&mut self) -> PResult<SeqOrUid> {
        if self.eat(b'*') {
            Ok(SeqOrUid::Asterisk)
        } else {
            Ok(SeqOrUid::Value(self.nz_number()?))
        }
    }

    // sequence-set     = (seq-number / seq-range) ["," sequence-set]
    // sequence-set     =/ seq-last-command
    // seq-range        = seq-number ":" seq-number
    // seq-last-command = "$"
    pub(crate) fn sequence_set(&mut self) -> PResult<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut items = Vec::new();
        loop {
            let first = self.seq_number()?;
            if self.eat(b':') {
                items.push(SequenceItem::Range(first, self.seq_number()?));
            } else {
                items.push(SequenceItem::Value(first));
            }
            if !self.eat(b',') {
                return Ok(SequenceSet::Items(items));
            }
        }
    }

    fn is_sequence_set_start(&self) -> bool {
        matches!(self.peek(), Some(b'0'..=b'9' | b'*' | b'$'))
    }

    // flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
    //        flag-keyword / flag-extension
    // flag-extension = "\" atom
    // flag-keyword   = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
    pub(crate) fn flag(&mut self) -> PResult<Flag> {
        if self.eat(b'\\') {
            let name = self.atom_string()?;
            Ok(Flag::system(&name))
        } else {
            Ok(Flag::Keyword(self.atom_string()?))
        }
    }

    // flag-list = "(" [flag *(SP flag)] ")"
    pub(crate) fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.expect(b'(', "expected a flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// `"(" item *(SP item) ")"`, at least one item.
    pub(crate) fn paren_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(', "expected a parenthesised list")?;
        let mut items = vec![item(self)?];
        while !self.eat(b')') {
            self.sp()?;
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// `"(" [item *(SP item)] ")"`, possibly empty.
    pub(crate) fn paren_list0<T>(
        &mut self,
        item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        if self.peek() == Some(b'(') && self.peek_at(1) == Some(b')') {
            self.pos += 2;
            return Ok(Vec::new());
        }
        self.paren_list(item)
    }

    // date-month = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
    //              "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
    fn date_month(&mut self) -> PResult<u8> {
        for (i, name) in MONTHS.iter().enumerate() {
            if self.eat_ci(name.as_bytes()) {
                return Ok(i as u8 + 1);
            }
        }
        Err("invalid month".into())
    }

    fn fixed_digits(&mut self, n: usize) -> PResult<u32> {
        let digits = self.rest().get(..n).ok_or("invalid date")?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err("invalid date".into());
        }
        self.pos += n;
        Ok(digits
            .iter()
            .fold(0, |acc, &d| acc * 10 + u32::from(d - b'0')))
    }

    // date-day  = 1*2DIGIT
    // date-year = 4DIGIT
    // date-text = date-day "-" date-month "-" date-year
    fn date_text(&mut self) -> PResult<Date> {
        let len = if self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            2
        } else {
            1
        };
        let day = self.fixed_digits(len)?;
        self.expect(b'-', "invalid date")?;
        let month = self.date_month()?;
        self.expect(b'-', "invalid date")?;
        let year = self.fixed_digits(4)?;
        if !(1..=31).contains(&day) {
            return Err("invalid day of month".into());
        }
        Ok(Date {
            year: year as u16,
            month,
            day: day as u8,
        })
    }

    // date = date-text / DQUOTE date-text DQUOTE
    pub(crate) fn date(&mut self) -> PResult<Date> {
        if self.eat(b'"') {
            let date = self.date_text()?;
            self.expect(b'"', "invalid date")?;
            Ok(date)
        } else {
            self.date_text()
        }
    }

    // date-time      = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    // date-day-fixed = (SP DIGIT) / 2DIGIT
    // time           = 2DIGIT ":" 2DIGIT ":" 2DIGIT
    // zone           = ("+" / "-") 4DIGIT
    pub(crate) fn date_time(&mut self) -> PResult<DateTime> {
        self.expect(b'"', "expected a date-time")?;
        let day = if self.eat(b' ') {
            self.fixed_digits(1)?
        } else {
            self.fixed_digits(2)?
        };
        self.expect(b'-', "invalid date-time")?;
        let month = self.date_month()?;
        self.expect(b'-', "invalid date-time")?;
        let year = self.fixed_digits(4)?;
        self.sp()?;
        let hour = self.fixed_digits(2)?;
        self.expect(b':', "invalid date-time")?;
        let minute = self.fixed_digits(2)?;
        self.expect(b':', "invalid date-time")?;
        let second = self.fixed_digits(2)?;
        self.sp()?;
        let sign: i16 = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("invalid time zone".into()),
        };
        self.pos += 1;
        let zone_hours = self.fixed_digits(2)?;
        let zone_mins = self.fixed_digits(2)?;
        self.expect(b'"', "invalid date-time")?;
        if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || zone_mins > 59 {
            return Err("invalid date-time".into());
        }
        Ok(DateTime {
            date: Date {
                year: year as u16,
                month,
                day: day as u8,
            },
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            zone_minutes: sign * (zone_hours * 60 + zone_mins) as i16,
        })
    }

    // partial = "<" number64 "." nz-number64 ">"
    pub(crate) fn partial(&mut self) -> PResult<Option<super::types::Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number64()?;
        self.expect(b'.', "invalid partial")?;
        let length = self.nz_number64()?;
        self.expect(b'>', "invalid partial")?;
        Ok(Some(super::types::Partial { offset, length }))
    }
}

fn utf8(raw: Vec<u8>) -> PResult<String> {
    String::from_utf8(raw).map_err(|_| "string is not valid UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser_on(input: &'static [u8]) -> (Bytes, ParseOptions<'static>) {
        (
            Bytes::from_static(input),
            ParseOptions {
                utf8_accept: false,
                max_depth: 4,
                streamed: &[],
            },
        )
    }

    #[test]
    fn date_times_parse_with_zones() {
        let (b, o) = parser_on(b"\"17-Jul-1996 02:44:25 -0700\"");
        let dt = Parser::new(&b, o).date_time().unwrap();
        assert_eq!(
            dt,
            DateTime {
                date: Date {
                    year: 1996,
                    month: 7,
                    day: 17
                },
                hour: 2,
                minute: 44,
                second: 25,
                zone_minutes: -420
            }
        );
        let (b, o) = parser_on(b"\" 1-jan-2024 00:00:00 +0530\"");
        let dt = Parser::new(&b, o).date_time().unwrap();
        assert_eq!((dt.date.day, dt.date.month, dt.zone_minutes), (1, 1, 330));
        let (b, o) = parser_on(b"\"17-Jul-1996 24:00:00 +0000\"");
        assert!(Parser::new(&b, o).date_time().is_err());
    }

    #[test]
    fn numbers_reject_overflow() {
        let (b, o) = parser_on(b"4294967296");
        assert!(Parser::new(&b, o).number().is_err());
        let (b, o) = parser_on(b"99999999999999999999999");
        assert!(Parser::new(&b, o).number64().is_err());
        let (b, o) = parser_on(b"4294967295");
        assert_eq!(Parser::new(&b, o).number().unwrap(), u32::MAX);
    }

    #[test]
    fn quoted_strings_unescape() {
        let (b, o) = parser_on(br#""a \"b\" \\ c""#);
        assert_eq!(Parser::new(&b, o).string().unwrap(), br#"a "b" \ c"#);
        let (b, o) = parser_on(br#""bad \n escape""#);
        assert!(Parser::new(&b, o).string().is_err());
    }
}
