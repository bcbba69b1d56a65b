//! What SEARCH (RFC 9051 §6.4.4) matches against: header values with encoded-words decoded
//! (RFC 2047), body text with transfer encodings and charsets decoded, Date: header days.

use std::borrow::Cow;

use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use tern_proto::imap::Date;

use super::header::{Field, HeaderBlock};
use super::mime::{Content, MAX_DEPTH, Part};
use super::section::decoded_body;

/// A search string, lower-cased once. RFC 9051 §6.4.4: matching is a case-insensitive
/// substring match.
pub(super) struct Needle<'a>(Cow<'a, str>);

impl<'a> Needle<'a> {
    pub fn new(needle: &'a str) -> Needle<'a> {
        // Already lowercase ASCII (the usual search string) needs no copy; anything else gets
        // Unicode lowercasing, which may change more than the ASCII letters.
        if needle
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        {
            Needle(Cow::Borrowed(needle))
        } else {
            Needle(Cow::Owned(needle.to_lowercase()))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn found_in(&self, haystack: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        if haystack.is_ascii() && self.0.is_ascii() {
            return ascii_contains(haystack.as_bytes(), self.0.as_bytes());
        }
        haystack.to_lowercase().contains(&*self.0)
    }
}

fn ascii_contains(haystack: &[u8], needle_lower: &[u8]) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    haystack
        .windows(needle_lower.len())
        .any(|w| w.eq_ignore_ascii_case(needle_lower))
}

/// A field's value with encoded-words decoded (RFC 2047 §6.1) and folding removed.
pub(super) fn decoded_value(raw: &[u8], field: &Field) -> String {
    decode_unstructured(field.value(raw))
}

/// An unfolded, trimmed value with encoded-words decoded. Without `=?` there is no
/// encoded-word (RFC 2047 §2), and the decoder would return the value unchanged: header
/// SEARCH over a whole mailbox mostly meets such values, so they skip it (the test below
/// holds the two paths equal).
fn decode_unstructured(value: Vec<u8>) -> String {
    if !value.windows(2).any(|w| w == b"=?") {
        return String::from_utf8(value)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }
    decode_with_mail_parser(value)
}

fn decode_with_mail_parser(mut value: Vec<u8>) -> String {
    // mail-parser's field parsers read up to the line end.
    value.push(b'\n');
    match MessageStream::new(&value).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// Display names and addresses of an address field, decoded.
pub(super) fn decoded_addresses(raw: &[u8], field: &Field) -> Vec<String> {
    let mut value = field.value(raw);
    value.push(b'\n');
    let mut out = Vec::new();
    if let HeaderValue::Address(list) = MessageStream::new(&value).parse_address() {
        for addr in list.iter() {
            out.extend(addr.name().map(str::to_owned));
            out.extend(addr.address().map(str::to_owned));
        }
        if let Some(groups) = list.as_group() {
            out.extend(
                groups
                    .iter()
                    .filter_map(|g| g.name.as_deref().map(str::to_owned)),
            );
        }
    }
    out
}

/// `HEADER field string`: a field called `field` whose decoded value contains `needle`; an
/// empty needle matches any such field.
pub(super) fn header_contains(
    raw: &[u8],
    header: &HeaderBlock,
    field: &str,
    needle: &Needle<'_>,
) -> bool {
    header
        .fields
        .iter()
        .filter(|f| f.is(raw, field))
        .any(|f| needle.is_empty() || needle.found_in(&decoded_value(raw, f)))
}

/// FROM/TO/CC/BCC: the decoded field text, or any display name or address in it.
pub(super) fn address_contains(
    raw: &[u8],
    header: &HeaderBlock,
    field: &str,
    needle: &Needle<'_>,
) -> bool {
    header.fields.iter().filter(|f| f.is(raw, field)).any(|f| {
        needle.found_in(&decoded_value(raw, f))
            || decoded_addresses(raw, f).iter().any(|s| needle.found_in(s))
    })
}

/// Any field of the header, `name: value` with the value decoded.
pub(super) fn any_header_contains(raw: &[u8], header: &HeaderBlock, needle: &Needle<'_>) -> bool {
    header.fields.iter().any(|f| {
        let name = String::from_utf8_lossy(f.name(raw));
        needle.found_in(&format!("{name}: {}", decoded_value(raw, f)))
    })
}

/// `BODY string`: the text of the text parts, and of the headers of attached messages.
pub(super) fn body_contains(raw: &[u8], part: &Part, needle: &Needle<'_>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match &part.content {
        Content::Multipart(parts) => parts
            .iter()
            .any(|p| body_contains(raw, p, needle, depth + 1)),
        Content::Message(inner) => {
            any_header_contains(raw, &inner.header, needle)
                || body_contains(raw, inner, needle, depth + 1)
        }
        Content::Leaf if part.media.media_type == "text" => needle.found_in(&part_text(raw, part)),
        Content::Leaf => false,
    }
}

/// A text part's content: transfer-decoded (RFC 2045 §6), then charset-decoded (RFC 2046
/// §4.1.2); undecodable octets become U+FFFD.
fn part_text<'a>(raw: &'a [u8], part: &Part) -> Cow<'a, str> {
    let bytes = decoded_body(raw, part).unwrap_or(Cow::Borrowed(part.body(raw)));
    let charset = part.media.param("charset").unwrap_or("us-ascii");
    let utf8ish = ["utf-8", "utf8", "us-ascii", "ascii"]
        .iter()
        .any(|c| charset.eq_ignore_ascii_case(c));
    match (utf8ish, charset_decoder(charset.as_bytes())) {
        (false, Some(decode)) => Cow::Owned(decode(&bytes)),
        _ => match bytes {
            Cow::Borrowed(b) => String::from_utf8_lossy(b),
            Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        },
    }
}

/// The Date: header as a date-time; `None` when absent or unreadable.
pub(super) fn sent_date(raw: &[u8], header: &HeaderBlock) -> Option<mail_parser::DateTime> {
    let mut value = header.value(raw, "Date")?;
    value.push(b'\n');
    match MessageStream::new(&value).parse_date() {
        HeaderValue::DateTime(dt) if dt.is_valid() => Some(dt),
        _ => None,
    }
}

/// The calendar day of a Date: header in its own zone (RFC 9051 §6.4.4: SENTBEFORE, SENTON
/// and SENTSINCE disregard time and timezone).
pub(super) fn sent_day(dt: &mail_parser::DateTime) -> Date {
    Date {
        year: dt.year,
        month: dt.month,
        day: dt.day,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::message::header::unfold;

    proptest! {
        #[test]
        fn values_without_encoded_words_decode_as_mail_parser_decodes_them(
            raw in prop::collection::vec(
                prop_oneof![Just(b'='), Just(b'?'), Just(b' '), Just(b'\t'), Just(b'\r'),
                            Just(b'\n'), Just(0xc3), Just(0xa4), any::<u8>()],
                0..64,
            )
        ) {
            let value = unfold(&raw);
            prop_assume!(!value.windows(2).any(|w| w == b"=?"));
            prop_assert_eq!(
                decode_unstructured(value.clone()),
                decode_with_mail_parser(value)
            );
        }
    }

    #[test]
    fn encoded_words_are_still_decoded() {
        assert_eq!(
            decode_unstructured(b"=?utf-8?q?caf=C3=A9?= au lait".to_vec()),
            "caf\u{e9} au lait"
        );
        assert_eq!(decode_unstructured(Vec::new()), "");
    }
}
