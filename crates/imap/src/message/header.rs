//! Header blocks (RFC 5322 §2.2) as octet ranges of the raw message, unfolding, and the MIME
//! parameter syntax of Content-Type and Content-Disposition (RFC 2045 §5.1, RFC 2183 §2).
//!
//! Everything here works on bytes and accepts anything: bare LF line ends, 8-bit octets
//! (RFC 6532), lines without a colon, a missing blank line.

use std::borrow::Cow;

/// One header field; `raw[start..end]` is the field with its continuation lines and final
/// line end, exactly as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field {
    /// First octet of the field name.
    pub start: usize,
    /// End of the field name (the colon, less any trailing white space).
    pub name_end: usize,
    /// First octet after the colon; `end` for a line without a colon.
    pub value_start: usize,
    /// One past the field's last line end.
    pub end: usize,
}

impl Field {
    /// The field name; empty for a line without a colon.
    pub fn name<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.start..self.name_end).unwrap_or_default()
    }

    /// Whether this is a field at all (a line with a colon) rather than a stray line.
    pub fn is_field(&self) -> bool {
        self.value_start > self.name_end
    }

    /// Whether the field is called `name` (ASCII case-insensitive, RFC 5322 §1.2.2).
    pub fn is(&self, raw: &[u8], name: &str) -> bool {
        self.is_field() && self.name(raw).eq_ignore_ascii_case(name.as_bytes())
    }

    /// The raw value after the colon, folding and line end included.
    pub fn raw_value<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.value_start..self.end).unwrap_or_default()
    }

    /// The whole field as stored.
    pub fn bytes<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.start..self.end).unwrap_or_default()
    }

    /// The value unfolded and trimmed (RFC 5322 §2.2.3: unfolding removes the CRLF before
    /// each continuation line's white space).
    pub fn value(&self, raw: &[u8]) -> Vec<u8> {
        unfold(self.raw_value(raw))
    }
}

/// The fields of one header and where it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HeaderBlock {
    /// The fields in message order (lines without a colon included, with an empty name).
    pub fields: Vec<Field>,
    /// One past the blank line that ends the header (the body's first octet), or the end of
    /// the part when there is no blank line.
    pub end: usize,
}

impl HeaderBlock {
    /// The first field called `name`.
    pub fn first(&self, raw: &[u8], name: &str) -> Option<Field> {
        self.fields.iter().copied().find(|f| f.is(raw, name))
    }

    /// The unfolded, trimmed value of the first field called `name`.
    pub fn value(&self, raw: &[u8], name: &str) -> Option<Vec<u8>> {
        self.first(raw, name).map(|f| f.value(raw))
    }
}

/// Splits the header starting at `start` in `raw[..limit]` into fields.
// RFC 5322 §2.2: header fields are lines "name:value"; §2.2.3 folding puts WSP first on a
// continuation line; §2.1 a blank line separates the header from the body.
pub(super) fn parse_header(raw: &[u8], start: usize, limit: usize) -> HeaderBlock {
    let limit = limit.min(raw.len());
    // Typical headers have a dozen or more fields: skip the smallest growth steps.
    let mut fields: Vec<Field> = Vec::with_capacity(16);
    let mut pos = start.min(limit);
    while pos < limit {
        let line_end = line_end(raw, pos, limit);
        let line = raw.get(pos..line_end).unwrap_or_default();
        if line == b"\r\n" || line == b"\n" {
            return HeaderBlock {
                fields,
                end: line_end,
            };
        }
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        match fields.last_mut() {
            Some(last) if continues => last.end = line_end,
            _ => fields.push(field_at(raw, pos, line_end)),
        }
        pos = line_end;
    }
    HeaderBlock { fields, end: limit }
}

fn field_at(raw: &[u8], start: usize, end: usize) -> Field {
    let line = raw.get(start..end).unwrap_or_default();
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let name = line.get(..colon).unwrap_or_default();
            let trimmed = name.len() - name.iter().rev().take_while(|b| is_wsp(**b)).count();
            Field {
                start,
                name_end: start + trimmed,
                value_start: start + colon + 1,
                end,
            }
        }
        None => Field {
            start,
            name_end: start,
            value_start: start,
            end,
        },
    }
}

/// One past the next LF at or after `pos`, or `limit`.
pub(super) fn line_end(raw: &[u8], pos: usize, limit: usize) -> usize {
    // memchr: header SEARCH over a mailbox splits every cached header block into lines.
    raw.get(pos..limit)
        .and_then(|rest| memchr::memchr(b'\n', rest))
        .map_or(limit, |i| pos + i + 1)
}

pub(super) fn is_wsp(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Removes CR and LF (unfolding) and trims surrounding white space.
pub(super) fn unfold(value: &[u8]) -> Vec<u8> {
    let trimmed = trim(value);
    let mut unfolded = Vec::with_capacity(trimmed.len());
    unfolded.extend(
        trimmed
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n'),
    );
    unfolded
}

pub(super) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|b| is_wsp(**b)).count();
    let rest = s.get(start..).unwrap_or_default();
    let end = rest.len() - rest.iter().rev().take_while(|b| is_wsp(**b)).count();
    rest.get(..end).unwrap_or_default()
}

/// A parsed Content-Type: lowercase type and subtype, parameters as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MediaType {
    /// E.g. `text`.
    pub media_type: String,
    /// E.g. `plain`.
    pub subtype: String,
    /// Attribute and value (quotes removed), in header order.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// RFC 2045 §5.2: no (or an invalid) Content-Type means `text/plain; charset=us-ascii`.
    pub fn default_text() -> MediaType {
        MediaType {
            media_type: "text".to_owned(),
            subtype: "plain".to_owned(),
            params: vec![("charset".to_owned(), "us-ascii".to_owned())],
        }
    }

    /// RFC 2046 §5.1.5: in a multipart/digest the default is `message/rfc822`.
    pub fn default_message() -> MediaType {
        MediaType {
            media_type: "message".to_owned(),
            subtype: "rfc822".to_owned(),
            params: Vec::new(),
        }
    }

    /// The value of parameter `name` (case-insensitive, RFC 2045 §5.1).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, media_type: &str, subtype: &str) -> bool {
        self.media_type == media_type && self.subtype == subtype
    }
}

// RFC 2045 §5.1:
// content := "Content-Type" ":" type "/" subtype *(";" parameter)
// parameter := attribute "=" value
// value := token / quoted-string
/// Parses a Content-Type value; `None` when there is no `type/subtype`.
pub(super) fn parse_content_type(value: &[u8]) -> Option<MediaType> {
    let mut lexer = Lexer { s: value, pos: 0 };
    lexer.skip_cfws();
    let media_type = lexer.token();
    lexer.skip_cfws();
    if !lexer.eat(b'/') {
        return None;
    }
    lexer.skip_cfws();
    let subtype = lexer.token();
    if media_type.is_empty() || subtype.is_empty() {
        return None;
    }
    Some(MediaType {
        media_type: lossy(media_type).to_ascii_lowercase(),
        subtype: lossy(subtype).to_ascii_lowercase(),
        params: lexer.params(),
    })
}

// RFC 2183 §2:
// disposition := "Content-Disposition" ":" disposition-type *(";" disposition-parm)
/// Parses a Content-Disposition value into its type (as sent) and parameters.
pub(super) fn parse_disposition(value: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let mut lexer = Lexer { s: value, pos: 0 };
    lexer.skip_cfws();
    let kind = lexer.token();
    if kind.is_empty() {
        return None;
    }
    Some((lossy(kind).into_owned(), lexer.params()))
}

/// Content-Language (RFC 3282 §2): a comma-separated list of language tags.
pub(super) fn parse_language(value: &[u8]) -> Vec<String> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|tag| !tag.is_empty())
        .map(|tag| lossy(tag).into_owned())
        .collect()
}

pub(super) fn lossy(s: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(s)
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    // RFC 5322 §3.2.2: CFWS; comments nest, `\` quotes the next octet.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                _ if depth > 0 || is_wsp(b) => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    // RFC 2045 §5.1: token := 1*<any CHAR except SPACE, CTLs, or tspecials>; 8-bit octets
    // are accepted as token characters.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b"()<>@,;:\\\"/[]?=".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    // RFC 5322 §3.2.4: quoted-string; the quotes and quoting backslashes are removed.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        out
    }

    /// `*(";" attribute "=" value)`, skipping what cannot be read up to the next `;`.
    fn params(&mut self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        loop {
            self.skip_cfws();
            match self.peek() {
                None => return params,
                Some(b';') => self.pos += 1,
                Some(_) => {
                    self.skip_to_semicolon();
                    continue;
                }
            }
            self.skip_cfws();
            let attribute = self.token();
            self.skip_cfws();
            if attribute.is_empty() || !self.eat(b'=') {
                self.skip_to_semicolon();
                continue;
            }
            self.skip_cfws();
            let value = if self.eat(b'"') {
                self.quoted()
            } else {
                // Lenient: an unquoted value runs to the next `;` (some senders do not
                // quote file names with spaces).
                let start = self.pos;
                self.skip_to_semicolon();
                trim(self.s.get(start..self.pos).unwrap_or_default()).to_vec()
            };
            params.push((lossy(attribute).into_owned(), lossy(&value).into_owned()));
        }
    }

    fn skip_to_semicolon(&mut self) {
        while let Some(b) = self.peek() {
            if b == b';' {
                return;
            }
            if b == b'"' {
                self.pos += 1;
                self.quoted();
                continue;
            }
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_continuation_lines_and_line_ends() {
        let raw = b"Subject: a\r\n b\r\nFrom : x@y\r\n\r\nbody";
        let h = parse_header(raw, 0, raw.len());
        assert_eq!(h.fields.len(), 2);
        assert_eq!(h.fields[0].bytes(raw), b"Subject: a\r\n b\r\n");
        assert_eq!(h.fields[0].value(raw), b"a b");
        assert!(h.fields[1].is(raw, "FROM"));
        assert_eq!(&raw[h.end..], b"body");
    }

    #[test]
    fn a_header_without_blank_line_runs_to_the_end() {
        let raw = b"Subject: a\nno colon here\n x";
        let h = parse_header(raw, 0, raw.len());
        assert_eq!(h.end, raw.len());
        assert_eq!(h.fields.len(), 2);
        assert_eq!(h.fields[1].name(raw), b"");
        assert!(!h.fields[1].is(raw, ""));
    }

    #[test]
    fn content_type_parameters_are_unquoted_and_comments_skipped() {
        let ct = parse_content_type(
            b" Text/Plain (comment) ; charset=\"utf-8\" ;format=flowed; name=a b.txt\r\n",
        )
        .unwrap();
        assert!(ct.is("text", "plain"));
        assert_eq!(ct.param("CHARSET"), Some("utf-8"));
        assert_eq!(ct.param("format"), Some("flowed"));
        assert_eq!(ct.param("name"), Some("a b.txt"));
        assert_eq!(parse_content_type(b"text"), None);
        assert_eq!(parse_content_type(b""), None);
    }

    #[test]
    fn garbage_parameters_are_skipped() {
        let ct = parse_content_type(b"multipart/mixed; junk; boundary=\"a;b\"; =x").unwrap();
        assert_eq!(ct.params, vec![("boundary".into(), "a;b".into())]);
    }

    #[test]
    fn dispositions_and_languages_parse() {
        let (kind, params) = parse_disposition(b"attachment; filename=\"r.pdf\"").unwrap();
        assert_eq!(kind, "attachment");
        assert_eq!(params, vec![("filename".into(), "r.pdf".into())]);
        assert_eq!(parse_language(b" en, de-CH ,"), vec!["en", "de-CH"]);
    }
}
