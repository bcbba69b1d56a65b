//! Message text: where DATA ends, and the checks of a received message before it goes to the
//! delivery pipeline.

use std::slice::Iter;

/// DATA text (RFC 5321 §4.1.1.4): everything up to exactly `<CRLF>.<CRLF>`, with the leading
/// dot removed from every other line that starts with one (§4.5.2). The CRLF that ended the
/// DATA command counts, so `.<CRLF>` right away is an empty message.
///
/// smtp-proto 0.2's `DataReceiver` also ends at `<CRLF>.<CR>…<CR><LF>` (a dot line with extra
/// CRs), after which the rest of the text would be read as commands: SMTP smuggling. This one
/// ends only at the exact sequence; the extra CRs stay in the text, whose bare CR then gets
/// the message refused (`find_bare_cr_or_lf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataText {
    state: Position,
}

/// Where in the text the receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Inside a line.
    Text,
    /// Inside a line, right after a CR.
    Cr,
    /// At the start of a line (after CRLF).
    LineStart,
    /// A line started with a dot; it is withheld until we know whether it ends the data.
    Dot,
    /// `<CRLF>.<CR>`: the dot and the CR are withheld.
    DotCr,
}

impl DataText {
    /// At the start of the text, right after the DATA command's CRLF.
    pub(crate) fn new() -> DataText {
        DataText {
            state: Position::LineStart,
        }
    }

    /// Appends the text in `bytes` to `body`, un-stuffed, and advances `bytes` past what it
    /// took. True when the end of data was reached; `bytes` then starts after it.
    pub(crate) fn ingest(&mut self, bytes: &mut Iter<'_, u8>, body: &mut Vec<u8>) -> bool {
        let input = bytes.as_slice();
        let (taken, done) = self.take(input, Some(body));
        *bytes = input[taken..].iter();
        done
    }

    /// Like [`DataText::ingest`] for text that is dropped (a message over the size limit).
    pub(crate) fn discard(&mut self, bytes: &mut Iter<'_, u8>) -> bool {
        let input = bytes.as_slice();
        let (taken, done) = self.take(input, None);
        *bytes = input[taken..].iter();
        done
    }

    fn take(&mut self, input: &[u8], mut body: Option<&mut Vec<u8>>) -> (usize, bool) {
        fn push(body: &mut Option<&mut Vec<u8>>, bytes: &[u8]) {
            if let Some(body) = body.as_deref_mut() {
                body.extend_from_slice(bytes);
            }
        }
        let mut i = 0;
        while i < input.len() {
            if self.state == Position::Text {
                // Most text is inside lines: copy up to the next CR at once.
                let run = memchr::memchr(b'\r', &input[i..]).unwrap_or(input.len() - i);
                push(&mut body, &input[i..i + run]);
                i += run;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Position::DotCr, b'\n') => {
                    self.state = Position::LineStart;
                    return (i, true);
                }
                (Position::LineStart, b'.') => Position::Dot,
                (Position::Dot, b'\r') => Position::DotCr,
                // A dot line that does not end the data: the dot was stuffing and is dropped;
                // the withheld CR is text.
                (Position::DotCr, _) => {
                    push(&mut body, &[b'\r', b]);
                    if b == b'\r' {
                        Position::Cr
                    } else {
                        Position::Text
                    }
                }
                (_, b'\r') => {
                    push(&mut body, &[b]);
                    Position::Cr
                }
                (Position::Cr, b'\n') => {
                    push(&mut body, &[b]);
                    Position::LineStart
                }
                (_, _) => {
                    push(&mut body, &[b]);
                    Position::Text
                }
            };
        }
        (i, false)
    }
}

/// RFC 5321 §2.3.8: lines end with CRLF; a CR or LF on its own is how SMTP smuggling
/// (CVE-2023-51766 class) hides a second message inside the first, so such messages are
/// refused instead of guessed at. Returns the offset of the first offender.
pub(crate) fn find_bare_cr_or_lf(body: &[u8]) -> Option<usize> {
    // memchr jumps between line ends (SIMD): the body is megabytes at most, lines ~80 bytes.
    let mut ends = memchr::memchr2_iter(b'\r', b'\n', body);
    while let Some(i) = ends.next() {
        if body[i] == b'\n' || body.get(i + 1) != Some(&b'\n') {
            return Some(i);
        }
        // Skip the LF of this CRLF.
        ends.next();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `size` octets: (the text, the octets left after the end).
    fn receive(input: &[u8], size: usize) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut receiver = DataText::new();
        let mut body = Vec::new();
        for (n, chunk) in input.chunks(size).enumerate() {
            let mut bytes = chunk.iter();
            if receiver.ingest(&mut bytes, &mut body) {
                let mut rest = bytes.as_slice().to_vec();
                rest.extend_from_slice(input.get((n + 1) * size..).unwrap_or_default());
                return (body, Some(rest));
            }
        }
        (body, None)
    }

    #[test]
    fn data_ends_only_at_crlf_dot_crlf_at_every_chunk_size() {
        // (input, the text, what follows the end of data if it was reached)
        type Case = (&'static [u8], &'static [u8], Option<&'static [u8]>);
        let cases: [Case; 9] = [
            (b".\r\nNOOP\r\n", b"", Some(b"NOOP\r\n")),
            (b"a\r\n.\r\nQUIT\r\n", b"a\r\n", Some(b"QUIT\r\n")),
            (b"..a\r\n.b\r\n..\r\n.\r\n", b".a\r\nb\r\n.\r\n", Some(b"")),
            // Not the end: bare LF or CR around the dot, or extra CRs after it (smtp-proto
            // 0.2 ends at `<CRLF>.<CR><CR><LF>`).
            (b"a\n.\nb", b"a\n.\nb", None),
            (b"a\r\n.\nb", b"a\r\n\nb", None),
            (b"a\r.\r\nb", b"a\r.\r\nb", None),
            (b"a\r\n.\r\r\nMAIL", b"a\r\n\r\r\nMAIL", None),
            (
                b"a\r\n.\r\r\r\nb\r\n.\r\n",
                b"a\r\n\r\r\r\nb\r\n",
                Some(b""),
            ),
            (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n", Some(b"")),
        ];
        for (input, text, rest) in cases {
            for size in [1, 2, 3, 4, 8, 512] {
                let (body, after) = receive(input, size);
                assert_eq!(body, text, "{input:?} in chunks of {size}");
                assert_eq!(after.as_deref(), rest, "{input:?} in chunks of {size}");
            }
        }
    }

    #[test]
    fn discarded_text_ends_at_the_same_place() {
        let mut receiver = DataText::new();
        let input = b"x\r\n.\r\r\nRSET\r\n.\r\nQUIT\r\n";
        let mut bytes = input.iter();
        assert!(receiver.discard(&mut bytes));
        assert_eq!(bytes.as_slice(), b"QUIT\r\n");
    }

    #[test]
    fn crlf_only_messages_pass_and_bare_line_ends_are_found() {
        assert_eq!(find_bare_cr_or_lf(b"a\r\nb\r\n"), None);
        assert_eq!(find_bare_cr_or_lf(b""), None);
        assert_eq!(find_bare_cr_or_lf(b"a\nb"), Some(1));
        assert_eq!(find_bare_cr_or_lf(b"a\r\n\n.\n"), Some(3));
        assert_eq!(find_bare_cr_or_lf(b"a\rb"), Some(1));
        assert_eq!(find_bare_cr_or_lf(b"a\r"), Some(1));
        assert_eq!(find_bare_cr_or_lf(b"\r\r\n"), Some(0));
    }

    /// Every string of up to 8 bytes over {a, CR, LF} agrees with the byte-by-byte definition.
    #[test]
    fn bare_line_end_search_matches_the_definition_exhaustively() {
        fn reference(body: &[u8]) -> Option<usize> {
            (0..body.len()).find(|&i| match body[i] {
                b'\n' => i == 0 || body[i - 1] != b'\r',
                b'\r' => body.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
        }
        for len in 0..=8u32 {
            for n in 0..3usize.pow(len) {
                let body: Vec<u8> = (0..len)
                    .map(|k| [b'a', b'\r', b'\n'][n / 3usize.pow(k) % 3])
                    .collect();
                assert_eq!(find_bare_cr_or_lf(&body), reference(&body), "{body:?}");
            }
        }
    }
}
