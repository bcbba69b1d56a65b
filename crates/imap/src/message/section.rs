//! BODY[section] (RFC 9051 §6.4.5), BINARY[part] (RFC 3516 §4.2) and the
//! content-transfer-decoders (RFC 2045 §6.7, §6.8).

use std::borrow::Cow;

use tern_proto::imap::{Section, SectionText};

use super::UnknownCte;
use super::header::HeaderBlock;
use super::mime::{Content, Part};

/// The octets of `section`, exactly as stored; `None` when the part does not exist or the
/// section text does not apply to it.
pub(super) fn section(raw: &[u8], root: &Part, section: &Section) -> Option<Vec<u8>> {
    if section.part.is_empty() {
        // RFC 9051 §6.4.5: without part numbers the section refers to the whole message.
        return Some(match &section.text {
            None => raw.to_vec(),
            Some(SectionText::Mime) => return None,
            Some(text) => message_text(raw, root, text),
        });
    }
    let part = root.resolve(&section.part)?;
    match &section.text {
        None => Some(part.body(raw).to_vec()),
        // RFC 9051 §6.4.5: MIME is the part's own MIME header.
        Some(SectionText::Mime) => Some(part.header_bytes(raw).to_vec()),
        // HEADER, HEADER.FIELDS and TEXT after part numbers refer to the message in a
        // message/rfc822 part.
        Some(text) => match &part.content {
            Content::Message(inner) => Some(message_text(raw, inner, text)),
            _ => None,
        },
    }
}

/// HEADER, HEADER.FIELDS[.NOT] or TEXT of a message.
fn message_text(raw: &[u8], message: &Part, text: &SectionText) -> Vec<u8> {
    match text {
        SectionText::Header => message.header_bytes(raw).to_vec(),
        SectionText::Text => message.body(raw).to_vec(),
        SectionText::HeaderFields(names) => header_fields(raw, &message.header, names, true),
        SectionText::HeaderFieldsNot(names) => header_fields(raw, &message.header, names, false),
        SectionText::Mime => message.header_bytes(raw).to_vec(),
    }
}

// RFC 9051 §6.4.5: HEADER.FIELDS is the subset of the header with the named fields (matched
// case-insensitively), HEADER.FIELDS.NOT the rest; both end with the blank line.
pub(super) fn header_fields(
    raw: &[u8],
    header: &HeaderBlock,
    names: &[String],
    keep: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for field in &header.fields {
        // A line without a colon is not a field: in neither subset.
        if !field.is_field() {
            continue;
        }
        let named = names
            .iter()
            .any(|n| field.name(raw).eq_ignore_ascii_case(n.as_bytes()));
        if named == keep {
            let bytes = field.bytes(raw);
            out.extend_from_slice(bytes);
            if !bytes.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Content-Transfer-Encodings BINARY can decode.
enum Cte {
    /// 7bit, 8bit, binary: the octets as they are.
    Identity,
    Base64,
    QuotedPrintable,
}

fn cte(raw: &[u8], part: &Part) -> Result<Cte, UnknownCte> {
    // RFC 2045 §6.1: the values are case-insensitive; 7bit is the default.
    match part.encoding(raw).as_str() {
        "7bit" | "8bit" | "binary" => Ok(Cte::Identity),
        "base64" => Ok(Cte::Base64),
        "quoted-printable" => Ok(Cte::QuotedPrintable),
        other => Err(UnknownCte(other.to_owned())),
    }
}

/// The decoded body of `part` (RFC 3516 §4.2); `Err` for an encoding we do not know.
pub(super) fn decoded_body<'a>(raw: &'a [u8], part: &Part) -> Result<Cow<'a, [u8]>, UnknownCte> {
    let body = part.body(raw);
    Ok(match cte(raw, part)? {
        Cte::Identity => Cow::Borrowed(body),
        Cte::Base64 => Cow::Owned(decode_base64(body)),
        Cte::QuotedPrintable => Cow::Owned(decode_quoted_printable(body)),
    })
}

/// The decoded size without keeping the decoded octets when not needed.
pub(super) fn decoded_size(raw: &[u8], part: &Part) -> Result<u64, UnknownCte> {
    let len = match cte(raw, part)? {
        Cte::Identity => part.body(raw).len(),
        _ => decoded_body(raw, part)?.len(),
    };
    Ok(u64::try_from(len).unwrap_or(u64::MAX))
}

// RFC 2045 §6.8: base64. Characters outside the alphabet (line breaks, stray octets) are
// ignored; `=` ends the data; a trailing partial group yields the octets it holds.
pub(super) fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

// RFC 2045 §6.7: quoted-printable. `=XX` is an octet (lowercase hex accepted), `=` at the end
// of a line is a soft line break, white space before a line break is transport padding;
// anything else after `=` is kept literally (§6.7 note 2: be robust).
pub(super) fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (content, line_break) = match line.strip_suffix(b"\r\n") {
            Some(c) => (c, &b"\r\n"[..]),
            None => match line.strip_suffix(b"\n") {
                Some(c) => (c, &b"\n"[..]),
                None => (line, &b""[..]),
            },
        };
        let content = trim_end(content);
        let (content, soft) = match content.strip_suffix(b"=") {
            Some(c) => (c, true),
            None => (content, false),
        };
        let mut i = 0;
        while let Some(&b) = content.get(i) {
            if b == b'=' {
                let hex = content.get(i + 1..i + 3).and_then(hex_octet);
                if let Some(octet) = hex {
                    out.push(octet);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(line_break);
        }
    }
    out
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.len()
        - s.iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    s.get(..n).unwrap_or_default()
}

fn hex_octet(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    match pair {
        [h, l] => Some(u8::try_from(digit(*h)? * 16 + digit(*l)?).ok()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_ignores_line_breaks_and_garbage() {
        assert_eq!(
            decode_base64(b"SGVs\r\nbG8g\r\nd29y bGQ=\r\n"),
            b"Hello world"
        );
        assert_eq!(decode_base64(b"SGk"), b"Hi");
        assert_eq!(decode_base64(b"!!"), b"");
    }

    #[test]
    fn quoted_printable_handles_soft_breaks_and_bad_escapes() {
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9 =\r\nau lait  \r\n=3d=ZZ="),
            "café au lait\r\n==ZZ".as_bytes()
        );
        assert_eq!(decode_quoted_printable(b"a=\nb\n"), b"ab\n");
    }
}
