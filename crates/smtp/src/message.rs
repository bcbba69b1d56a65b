//! Checks of a received message before it goes to the delivery pipeline.

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
