//! The author fields of a message, `From:` and `Sender:` (RFC 5322 §3.6.2), read from the raw
//! header block: how many there are, and the mailboxes each names.
//!
//! Fields are found by our own scan rather than by mail-parser's header list because what
//! matters is what *any* receiver may take for a `From:` field. The scan therefore errs towards
//! seeing more author fields, never fewer: a field name matches with any whitespace inside or
//! around it removed (`From :` is RFC 5322 §4.5.3 obsolete syntax; mail-parser also reads
//! `Fr om:` as `From:`), lines may end in CRLF or LF, a line starting with whitespace continues
//! the field before it (RFC 5322 §2.2.3), and only an empty line ends the header block (a
//! whitespace-only line is a continuation to RFC 5322's obsolete syntax, though mail-parser
//! stops there). Each field's value is then parsed on its own with mail-parser.

use mail_parser::{Address as ParsedAddress, HeaderValue, MessageParser};
use tern_common::Address;

/// Which author field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthorName {
    /// RFC 5322 §3.6.2 `from`: the author(s), exactly one field.
    From,
    /// RFC 5322 §3.6.2 `sender`: the agent that sent it, at most one field, one mailbox.
    Sender,
}

impl AuthorName {
    /// The field name as written in replies.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthorName::From => "From:",
            AuthorName::Sender => "Sender:",
        }
    }
}

/// One `From:` or `Sender:` field: its name and its raw value (continuation lines included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthorField<'a> {
    pub(crate) name: AuthorName,
    pub(crate) value: &'a [u8],
}

/// Every `From:` and `Sender:` field of the header block of `data`, in order.
pub(crate) fn author_fields(data: &[u8]) -> Vec<AuthorField<'_>> {
    let mut fields = Vec::new();
    // (name, start of value, end of value) of the field being read, if it is an author field.
    let mut current: Option<(AuthorName, usize, usize)> = None;
    // Whether the line before opened a field (had a name and a colon) that a continuation
    // line extends.
    let mut in_field = false;
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| pos + i + 1);
        let line = &data[pos..end];
        let content = line
            .strip_suffix(b"\n")
            .map_or(line, |l| l.strip_suffix(b"\r").unwrap_or(l));
        if content.is_empty() {
            // RFC 5322 §2.1: the empty line ends the header block.
            break;
        }
        pos = end;
        if in_field && matches!(content[0], b' ' | b'\t') {
            if let Some((_, _, value_end)) = &mut current {
                *value_end = end;
            }
            continue;
        }
        if let Some((name, start, value_end)) = current.take() {
            fields.push(AuthorField {
                name,
                value: &data[start..value_end],
            });
        }
        // mail-parser skips whitespace and colons before a name, and reads a field from a
        // line that starts with whitespace when no field is open: so do we.
        let name_start = content
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != b':')
            .unwrap_or(content.len());
        let colon = content[name_start..]
            .iter()
            .position(|&b| b == b':')
            .map(|i| name_start + i);
        in_field = colon.is_some();
        current = colon.and_then(|colon| {
            let value_start = end - line.len() + colon + 1;
            author_name(&content[name_start..colon]).map(|n| (n, value_start, end))
        });
    }
    if let Some((name, start, value_end)) = current {
        fields.push(AuthorField {
            name,
            value: &data[start..value_end],
        });
    }
    fields
}

/// `From` or `Sender`, compared case-insensitively with all whitespace removed.
fn author_name(raw: &[u8]) -> Option<AuthorName> {
    let name: Vec<u8> = raw
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(u8::to_ascii_lowercase)
        .collect();
    match name.as_slice() {
        b"from" => Some(AuthorName::From),
        b"sender" => Some(AuthorName::Sender),
        _ => None,
    }
}

/// The number of `From:` fields (RFC 5322 §3.6: exactly one is allowed).
pub(crate) fn from_field_count(data: &[u8]) -> usize {
    author_fields(data)
        .iter()
        .filter(|f| f.name == AuthorName::From)
        .count()
}

/// Why the mailboxes of an author field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MailboxError {
    /// The field names no address at all.
    NoAddress,
    /// RFC 5322 §3.6.2 allows group syntax in neither `From:` nor `Sender:` (a group names
    /// no author, or hides who it is).
    Group,
    /// An address that is not `local@domain` (RFC 5322 §3.4.1).
    Unreadable,
}

impl MailboxError {
    /// The end of a sentence starting with the field name.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            MailboxError::NoAddress => "names no address",
            MailboxError::Group => "uses group syntax, which names no author",
            MailboxError::Unreadable => "has an address that is not local-part@domain",
        }
    }
}

/// The addresses of the mailboxes in an author field's value.
pub(crate) fn mailboxes(field: &AuthorField<'_>) -> Result<Vec<Address>, MailboxError> {
    // The value is parsed alone, as the only field of a header block.
    let mut raw = Vec::with_capacity(field.value.len() + 10);
    raw.extend_from_slice(b"From:");
    raw.extend_from_slice(field.value);
    if !raw.ends_with(b"\n") {
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let parsed = MessageParser::default()
        .parse_headers(&raw[..])
        .ok_or(MailboxError::NoAddress)?;
    let value = parsed
        .headers()
        .first()
        .map(|h| &h.value)
        .ok_or(MailboxError::NoAddress)?;
    let list = match value {
        HeaderValue::Address(ParsedAddress::List(list)) => list,
        HeaderValue::Address(ParsedAddress::Group(_)) => return Err(MailboxError::Group),
        _ => return Err(MailboxError::NoAddress),
    };
    if list.is_empty() {
        return Err(MailboxError::NoAddress);
    }
    list.iter()
        .map(|a| {
            let address = a.address.as_deref().ok_or(MailboxError::NoAddress)?;
            address
                .trim()
                .parse::<Address>()
                .map_err(|_| MailboxError::Unreadable)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(data: &[u8]) -> Vec<(AuthorName, String)> {
        author_fields(data)
            .into_iter()
            .map(|f| (f.name, String::from_utf8_lossy(f.value).into_owned()))
            .collect()
    }

    fn addresses(value: &str) -> Result<Vec<String>, MailboxError> {
        let field = AuthorField {
            name: AuthorName::From,
            value: value.as_bytes(),
        };
        mailboxes(&field).map(|list| list.iter().map(Address::normalized).collect())
    }

    #[test]
    fn author_fields_are_found_in_every_spelling_with_their_folded_values() {
        let data = b"Subject: x\r\nFROM: a@x.test\r\n (comment)\r\nTo: b@x.test\r\n\
sender :s@x.test\r\nFr om: c@x.test\r\nFromage: no\r\n\r\nFrom: body@x.test\r\n";
        assert_eq!(
            names(data),
            [
                (AuthorName::From, " a@x.test\r\n (comment)\r\n".to_owned()),
                (AuthorName::Sender, "s@x.test\r\n".to_owned()),
                (AuthorName::From, " c@x.test\r\n".to_owned()),
            ]
        );
    }

    #[test]
    fn only_an_empty_line_ends_the_header_block_in_either_line_ending() {
        // A whitespace-only line continues the field above it (obsolete syntax), so the From
        // below it is still a header field to some readers: it counts.
        assert_eq!(
            from_field_count(b"From: a@x.test\r\nSubject: x\r\n \r\nFrom: b@x.test\r\n\r\n"),
            2
        );
        assert_eq!(
            from_field_count(b"From: a@x.test\nFrom: b@x.test\n\nbody"),
            2
        );
        assert_eq!(from_field_count(b"\r\nFrom: a@x.test\r\n"), 0);
        assert_eq!(from_field_count(b" From: a@x.test\r\n\r\n"), 1);
        // After a line that is no field, an indented line is a field to mail-parser.
        assert_eq!(
            from_field_count(b"From: a@x.test\r\ngarbage\r\n From: b@x.test\r\n\r\n"),
            2
        );
        assert_eq!(
            from_field_count(b"From: a@x.test\r\n:From: b@x.test\r\n\r\n"),
            2
        );
        assert_eq!(from_field_count(b"From: a@x.test"), 1);
        assert_eq!(from_field_count(b""), 0);
    }

    #[test]
    fn mailboxes_are_read_from_names_comments_and_lists() {
        assert_eq!(
            addresses(" \"Bob\" <Alice@Example.Test>\r\n").unwrap(),
            ["alice@example.test"]
        );
        assert_eq!(
            addresses(" alice@example.test (bob@example.test)\r\n").unwrap(),
            ["alice@example.test"]
        );
        assert_eq!(
            addresses(" a@x.test,\r\n b@y.test\r\n").unwrap(),
            ["a@x.test", "b@y.test"]
        );
    }

    #[test]
    fn groups_empty_values_and_unreadable_addresses_are_errors() {
        assert_eq!(addresses(" undisclosed:;\r\n"), Err(MailboxError::Group));
        assert_eq!(
            addresses(" team: a@x.test, b@x.test;\r\n"),
            Err(MailboxError::Group)
        );
        assert_eq!(addresses(" \r\n"), Err(MailboxError::NoAddress));
        assert_eq!(addresses(" Alice\r\n"), Err(MailboxError::NoAddress));
        assert!(addresses(" <alice@>\r\n").is_err());
    }
}
