//! Checks of a received message before it goes to the delivery pipeline.

/// RFC 5321 §2.3.8: lines end with CRLF; a CR or LF on its own is how SMTP smuggling
/// (CVE-2023-51766 class) hides a second message inside the first, so such messages are
/// refused instead of guessed at. Returns the offset of the first offender.
pub(crate) fn find_bare_cr_or_lf(body: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' => {
                if body.get(i + 1) != Some(&b'\n') {
                    return Some(i);
                }
                i += 2;
            }
            b'\n' => return Some(i),
            _ => i += 1,
        }
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
}
