//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034), rendered once
//! into the bytes the session writes.

use std::borrow::Cow;

use smtp_proto::Response;

/// One complete reply, possibly multi-line, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    code: u16,
    bytes: Vec<u8>,
}

impl Reply {
    /// `code esc text` on one line, e.g. `550 5.1.1 User unknown`. Line breaks in `text`
    /// (which may come from elsewhere, e.g. a delivery failure reason) are replaced by spaces,
    /// so a reply can never inject a second line.
    pub(crate) fn new(code: u16, esc: [u8; 3], text: impl Into<Cow<'static, str>>) -> Reply {
        let text = sanitize(text.into());
        let mut bytes = Vec::with_capacity(text.len() + 16);
        // Writing into a Vec cannot fail.
        let _ = Response::new(code, esc[0], esc[1], esc[2], text.as_ref()).write(&mut bytes);
        Reply { code, bytes }
    }

    /// A reply without enhanced status code (greeting `220`, SASL challenge `334`).
    pub(crate) fn plain(code: u16, text: impl Into<Cow<'static, str>>) -> Reply {
        let text = sanitize(text.into());
        let bytes = format!("{code} {text}\r\n").into_bytes();
        Reply { code, bytes }
    }

    /// A multi-line reply (RFC 5321 §4.2.1): `code-line` for all but the last line.
    pub(crate) fn multiline(code: u16, lines: &[String]) -> Reply {
        let mut bytes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            let line = sanitize(Cow::Borrowed(line.as_str()));
            bytes.extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
        }
        Reply { code, bytes }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// 4xx and 5xx replies.
    pub(crate) fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Replies after which the server closes the connection: 221 (QUIT) and 421
    /// (RFC 5321 §3.8: service not available, closing transmission channel).
    pub(crate) fn closes(&self) -> bool {
        self.code == 221 || self.code == 421
    }
}

fn sanitize<'a>(text: Cow<'a, str>) -> Cow<'a, str> {
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], " "))
    } else {
        text
    }
}

/// Frequently used replies.
pub(crate) mod r {
    use super::Reply;

    pub(crate) fn ok() -> Reply {
        Reply::new(250, [2, 0, 0], "OK")
    }

    pub(crate) fn bad_sequence(text: &'static str) -> Reply {
        // RFC 5321 §4.3.2: 503 Bad sequence of commands.
        Reply::new(503, [5, 5, 1], text)
    }

    pub(crate) fn line_too_long() -> Reply {
        // RFC 5321 §4.5.3.1.4 and §4.2.2: 500 for a line too long.
        Reply::new(500, [5, 5, 2], "Line too long")
    }

    pub(crate) fn not_implemented() -> Reply {
        Reply::new(502, [5, 5, 1], "Command not implemented")
    }

    pub(crate) fn temporary() -> Reply {
        Reply::new(451, [4, 3, 0], "Temporary local problem, try again later")
    }

    pub(crate) fn insufficient_storage() -> Reply {
        // RFC 5321 §4.2.2 452; RFC 3463 §3.4: 4.3.1 mail system full.
        Reply::new(
            452,
            [4, 3, 1],
            "Insufficient system storage; try again later",
        )
    }

    pub(crate) fn message_too_big() -> Reply {
        // RFC 1870 §6.2 / RFC 3463 §3.4: 552 5.3.4 message too big for system.
        Reply::new(
            552,
            [5, 3, 4],
            "Message size exceeds fixed maximum message size",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_reply_has_code_enhanced_code_and_crlf() {
        let r = Reply::new(550, [5, 1, 1], "User unknown");
        assert_eq!(r.bytes(), b"550 5.1.1 User unknown\r\n");
        assert!(r.is_error());
        assert!(!r.closes());
    }

    #[test]
    fn line_breaks_in_text_cannot_inject_a_second_reply() {
        let r = Reply::new(451, [4, 3, 0], "disk\r\n250 2.0.0 OK".to_owned());
        assert_eq!(r.bytes(), b"451 4.3.0 disk  250 2.0.0 OK\r\n");
        let r = Reply::plain(334, "a\nb");
        assert_eq!(r.bytes(), b"334 a b\r\n");
    }

    #[test]
    fn multiline_reply_uses_dash_except_on_the_last_line() {
        let r = Reply::multiline(250, &["a".into(), "b".into(), "c".into()]);
        assert_eq!(r.bytes(), b"250-a\r\n250-b\r\n250 c\r\n");
    }
}
