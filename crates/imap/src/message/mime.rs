//! The MIME tree of a message (RFC 2045, RFC 2046) as octet ranges of the raw message, and
//! IMAP part numbering over it (RFC 9051 §6.4.5).
//!
//! The tree is our own rather than mail-parser's so that every range is an exact slice of
//! the stored octets: BODY[section] returns them as they are, and BODYSTRUCTURE sizes and
//! line counts agree with what a client receives.

use super::header::{HeaderBlock, MediaType, line_end, parse_content_type, parse_header, trim};

/// Parts nested deeper than this are treated as opaque leaves.
pub(super) const MAX_DEPTH: usize = 32;

/// One MIME entity: a header and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    /// First octet of the header.
    pub start: usize,
    /// The header's fields; `header.end` is the body's first octet.
    pub header: HeaderBlock,
    /// One past the body's last octet.
    pub end: usize,
    /// The effective media type (defaults applied).
    pub media: MediaType,
    /// What the body holds.
    pub content: Content,
}

/// The body of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Content {
    /// A single body (text, image, ...).
    Leaf,
    /// A multipart's body parts (at least one).
    Multipart(Vec<Part>),
    /// A message/rfc822 (or message/global) part's encapsulated message.
    Message(Box<Part>),
}

impl Part {
    /// Parses the entity in `raw[start..end]`.
    pub fn parse(raw: &[u8], start: usize, end: usize) -> Part {
        parse_part(raw, start, end.min(raw.len()), 0, false)
    }

    /// The body's first octet.
    pub fn body_start(&self) -> usize {
        self.header.end.min(self.end)
    }

    /// The body octets.
    pub fn body<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.body_start()..self.end).unwrap_or_default()
    }

    /// The header octets, blank line included.
    pub fn header_bytes<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.start..self.body_start()).unwrap_or_default()
    }

    /// The Content-Transfer-Encoding, lowercase; `7bit` when absent (RFC 2045 §6.1).
    pub fn encoding(&self, raw: &[u8]) -> String {
        self.header
            .value(raw, "Content-Transfer-Encoding")
            .filter(|v| !v.is_empty())
            .map_or_else(
                || "7bit".to_owned(),
                |v| String::from_utf8_lossy(&v).to_ascii_lowercase(),
            )
    }

    /// Part `n` of this part when this part is a message (the top level or an encapsulated
    /// one). RFC 9051 §6.4.5: every message has at least one part number; a non-multipart
    /// message's body is part 1.
    pub fn message_part(&self, n: u32) -> Option<&Part> {
        match &self.content {
            Content::Multipart(parts) => parts.get(usize::try_from(n).ok()?.checked_sub(1)?),
            _ => (n == 1).then_some(self),
        }
    }

    /// Part `n` below this part: a multipart's n-th body part, or part n of a
    /// message/rfc822 part's encapsulated message (RFC 9051 §6.4.5).
    pub fn subpart(&self, n: u32) -> Option<&Part> {
        match &self.content {
            Content::Multipart(parts) => parts.get(usize::try_from(n).ok()?.checked_sub(1)?),
            Content::Message(inner) => inner.message_part(n),
            Content::Leaf => None,
        }
    }

    /// The part a section's part numbers name, starting at this (top-level) message.
    pub fn resolve(&self, path: &[std::num::NonZeroU32]) -> Option<&Part> {
        let (first, rest) = path.split_first()?;
        let mut part = self.message_part(first.get())?;
        for n in rest {
            part = part.subpart(n.get())?;
        }
        Some(part)
    }

    /// Counts body lines (RFC 9051 §7.5.2 body-fld-lines): line ends, plus a last line
    /// without one.
    pub fn lines(&self, raw: &[u8]) -> u64 {
        count_lines(self.body(raw))
    }
}

pub(super) fn count_lines(body: &[u8]) -> u64 {
    let breaks = body.iter().filter(|&&b| b == b'\n').count();
    let partial = usize::from(body.last().is_some_and(|&b| b != b'\n'));
    u64::try_from(breaks + partial).unwrap_or(u64::MAX)
}

fn parse_part(raw: &[u8], start: usize, end: usize, depth: usize, in_digest: bool) -> Part {
    let header = parse_header(raw, start, end);
    let declared = header
        .first(raw, "Content-Type")
        .and_then(|f| parse_content_type(&f.value(raw)));
    let media = declared.unwrap_or_else(|| {
        if in_digest {
            MediaType::default_message()
        } else {
            MediaType::default_text()
        }
    });
    let mut part = Part {
        start,
        header,
        end,
        media: media.clone(),
        content: Content::Leaf,
    };
    if depth >= MAX_DEPTH {
        return part;
    }
    let body_start = part.body_start();
    if media.media_type == "multipart" {
        let boundary = media
            .param("boundary")
            .map(|b| b.as_bytes().to_vec())
            .filter(|b| !b.is_empty());
        let ranges = boundary.map_or_else(Vec::new, |b| split_multipart(raw, body_start, end, &b));
        if ranges.is_empty() {
            // No boundary parameter or no delimiter line: the body cannot be split, so it is
            // shown as plain text (RFC 2045 §5.2: invalid Content-Type → text/plain).
            part.media = MediaType::default_text();
            return part;
        }
        let digest = media.subtype == "digest";
        let parts = ranges
            .into_iter()
            .map(|(s, e)| parse_part(raw, s, e, depth + 1, digest))
            .collect();
        part.content = Content::Multipart(parts);
    } else if (media.is("message", "rfc822") || media.is("message", "global"))
        // RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary; an encoded one (seen in
        // the wild) is left as an opaque leaf.
        && matches!(part.encoding(raw).as_str(), "7bit" | "8bit" | "binary")
    {
        let inner = parse_part(raw, body_start, end, depth + 1, false);
        part.content = Content::Message(Box::new(inner));
    }
    part
}

/// The body parts of a multipart body in `raw[start..end]`, as ranges.
// RFC 2046 §5.1.1:
// dash-boundary := "--" boundary
// delimiter := CRLF dash-boundary
// close-delimiter := delimiter "--"
// body-part lines end before the CRLF that starts the next delimiter; preamble and epilogue
// are ignored; transport padding (white space) may follow a boundary on its line.
fn split_multipart(raw: &[u8], start: usize, end: usize, boundary: &[u8]) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = start;
    while pos < end {
        let next = line_end(raw, pos, end);
        let line = raw.get(pos..next).unwrap_or_default();
        if let Some(after) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary))
        {
            let close = after.starts_with(b"--");
            if close || trim(after).is_empty() {
                if let Some(part_start) = current {
                    parts.push((part_start, before_line_break(raw, part_start, pos)));
                }
                if close {
                    return parts;
                }
                current = Some(next);
            }
        }
        pos = next;
    }
    // An unterminated multipart: the last part runs to the end.
    if let Some(part_start) = current {
        parts.push((part_start, end));
    }
    parts
}

/// `pos` less the line break before it (the break belongs to the delimiter), not before
/// `floor`.
fn before_line_break(raw: &[u8], floor: usize, pos: usize) -> usize {
    let mut end = pos;
    if end > floor && raw.get(end - 1) == Some(&b'\n') {
        end -= 1;
        if end > floor && raw.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(path: &[u32]) -> Vec<std::num::NonZeroU32> {
        path.iter()
            .map(|&n| std::num::NonZeroU32::new(n).unwrap())
            .collect()
    }

    #[test]
    fn multipart_parts_exclude_the_line_break_before_the_delimiter() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n\r\none\r\n--b  \r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\nepilogue\r\n";
        let part = Part::parse(raw, 0, raw.len());
        let Content::Multipart(parts) = &part.content else {
            panic!("not multipart: {part:?}");
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body(raw), b"one");
        assert_eq!(parts[0].header_bytes(raw), b"\r\n");
        assert_eq!(parts[1].body(raw), b"<p>two</p>");
        assert!(parts[1].media.is("text", "html"));
        assert_eq!(part.resolve(&nz(&[2])), Some(&parts[1]));
        assert_eq!(part.resolve(&nz(&[3])), None);
        assert_eq!(part.resolve(&nz(&[1, 1])), None);
    }

    #[test]
    fn boundary_prefixes_are_not_delimiters() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--bx\n--b\n\nz\n--b--";
        let part = Part::parse(raw, 0, raw.len());
        let Content::Multipart(parts) = &part.content else {
            panic!("not multipart");
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body(raw), b"--bx");
        assert_eq!(parts[1].body(raw), b"z");
    }

    #[test]
    fn unterminated_and_unsplittable_multiparts_degrade() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nlast part";
        let part = Part::parse(raw, 0, raw.len());
        let Content::Multipart(parts) = &part.content else {
            panic!("not multipart");
        };
        assert_eq!(parts[0].body(raw), b"last part");

        let raw = b"Content-Type: multipart/mixed; boundary=b\n\nno delimiter";
        let part = Part::parse(raw, 0, raw.len());
        assert_eq!(part.content, Content::Leaf);
        assert!(part.media.is("text", "plain"));
    }

    #[test]
    fn non_multipart_message_body_is_part_one() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let part = Part::parse(raw, 0, raw.len());
        assert_eq!(part.resolve(&nz(&[1])), Some(&part));
        assert_eq!(part.resolve(&nz(&[2])), None);
        assert_eq!(part.lines(raw), 1);
        assert_eq!(count_lines(b"a\r\nb"), 2);
        assert_eq!(count_lines(b""), 0);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut raw = Vec::new();
        for _ in 0..100 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: deep\r\n\r\nbody");
        let mut part = &Part::parse(&raw, 0, raw.len());
        let mut depth = 0;
        while let Content::Message(inner) = &part.content {
            part = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
    }
}
