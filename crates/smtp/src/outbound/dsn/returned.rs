//! What a DSN returns of the original message when it does not return all of it: the header
//! block as it really is, bounded, so that whoever wrote the message cannot have us deliver their
//! text to the reverse-path.

/// The most a returned header block may be, in octets (cut at a line boundary). Real header
/// blocks, trace fields and ARC sets included, fit easily; a larger one is a payload.
pub(crate) const MAX_RETURNED_HEADER: usize = 16 * 1024;

/// The header block of `message`: its lines from the first up to (not including) the first line
/// that is not part of a header field, at most [`MAX_RETURNED_HEADER`] octets, ending at a line
/// boundary.
///
/// RFC 5322 §2.2 and §3.6.8:
/// ```text
/// field      = field-name ":" unstructured CRLF
/// field-name = 1*ftext
/// ftext      = %d33-57 / %d59-126    ; printable US-ASCII except ":"
/// ```
/// plus folded continuation lines, which begin with WSP (§2.2.3) and belong to the field above
/// them. The block ends at the empty line, but also at any other line that is neither — a message
/// without an empty line has its body read as header by "everything up to CRLFCRLF", and a body
/// line that merely looks like a field after such a line is body too. A final line without CRLF
/// counts only if it is a complete field line.
pub(crate) fn header_block(message: &[u8]) -> &[u8] {
    let mut end = 0;
    let mut in_field = false;
    while end < message.len() {
        let rest = &message[end..];
        let line_len = match rest.windows(2).position(|w| w == b"\r\n") {
            Some(p) => p + 2,
            None => rest.len(),
        };
        let line = &rest[..line_len];
        let belongs = if line.starts_with(b" ") || line.starts_with(b"\t") {
            // A continuation needs a field to continue.
            in_field
        } else {
            is_field_start(line)
        };
        if !belongs || end + line_len > MAX_RETURNED_HEADER {
            break;
        }
        in_field = true;
        end += line_len;
    }
    &message[..end]
}

/// Whether `line` begins with `1*ftext ":"`.
fn is_field_start(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|&&b| matches!(b, 33..=57 | 59..=126))
        .count();
    name_len > 0 && line.get(name_len) == Some(&b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_ends_at_the_empty_line() {
        let m = b"From: a@b.test\r\nSubject: hi\r\n\r\nBody: not a header\r\n";
        assert_eq!(header_block(m), b"From: a@b.test\r\nSubject: hi\r\n");
    }

    #[test]
    fn a_message_without_an_empty_line_returns_only_its_field_lines() {
        let m = b"Subject: cheap pills\r\nBuy now at http://spam.example/ and save\r\n\
                  Visit us: http://spam.example/\r\nmore text\r\n";
        assert_eq!(header_block(m), b"Subject: cheap pills\r\n");
        // No field at all: nothing is returned.
        assert_eq!(header_block(b"Dear victim,\r\nhello\r\n"), b"");
    }

    #[test]
    fn a_body_line_that_looks_like_a_field_after_a_non_field_line_is_not_returned() {
        let m = b"From: a@b.test\r\nnot a field\r\nX-Payload: attacker text\r\n";
        assert_eq!(header_block(m), b"From: a@b.test\r\n");
        // A space before the colon is not a field name (ftext has no space).
        let m = b"From: a@b.test\r\nVisit us : here\r\n";
        assert_eq!(header_block(m), b"From: a@b.test\r\n");
    }

    #[test]
    fn folded_lines_belong_to_their_field_but_cannot_start_the_block() {
        let m = b"Subject: a long\r\n  subject\r\n\tcontinued\r\nTo: c@d.test\r\n\r\nbody\r\n";
        assert_eq!(
            header_block(m),
            b"Subject: a long\r\n  subject\r\n\tcontinued\r\nTo: c@d.test\r\n"
        );
        assert_eq!(header_block(b" folded first\r\nSubject: x\r\n"), b"");
    }

    #[test]
    fn a_last_line_without_crlf_counts_only_as_a_field() {
        assert_eq!(header_block(b"Subject: x\r\nTo: y"), b"Subject: x\r\nTo: y");
        assert_eq!(header_block(b"Subject: x\r\ntrailing"), b"Subject: x\r\n");
    }

    #[test]
    fn the_block_is_cut_at_16_kib_on_a_line_boundary() {
        let line = format!("X-Filler: {}\r\n", "a".repeat(88)); // 100 octets
        let m = line.repeat(1000) + "\r\nbody";
        let block = header_block(m.as_bytes());
        assert_eq!(block.len(), MAX_RETURNED_HEADER / 100 * 100);
        assert!(block.ends_with(b"\r\n"));
        // A single line longer than the limit returns nothing rather than half a field.
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(MAX_RETURNED_HEADER));
        assert_eq!(header_block(long.as_bytes()), b"");
    }
}
