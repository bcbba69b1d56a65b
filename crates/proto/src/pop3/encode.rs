//! Reply encoding: status lines with RFC 2449 / RFC 3206 response codes, and dot-stuffed
//! multi-line responses (RFC 1939 §3).

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};

/// RFC 2449 §4: a response line is at most 512 octets, CRLF included.
pub const MAX_RESPONSE_LINE: usize = 512;

/// Extended response codes (RFC 2449 §8, RFC 3206), sent in brackets after the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RespCode {
    /// RFC 2449 §8.1.1: the maildrop is locked by another session.
    InUse,
    /// RFC 2449 §8.1.2: logged in (or tried) too recently; try later.
    LoginDelay,
    /// RFC 3206 §4: a temporary system problem; retry later.
    SysTemp,
    /// RFC 3206 §4: a permanent system problem; retrying will not help.
    SysPerm,
    /// RFC 3206 §5: the credentials are wrong (or not acceptable here).
    Auth,
}

impl RespCode {
    /// The code as it appears on the wire, without brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Auth => "AUTH",
        }
    }
}

/// A single-line status response: `+OK [text]` or `-ERR [[CODE] ]text` (RFC 1939 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    ok: bool,
    code: Option<RespCode>,
    text: Cow<'static, str>,
}

impl Reply {
    /// A positive reply.
    pub fn ok(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            ok: true,
            code: None,
            text: text.into(),
        }
    }

    /// A negative reply.
    pub fn err(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            ok: false,
            code: None,
            text: text.into(),
        }
    }

    /// The same reply with a response code (RFC 2449 §8).
    pub fn with_code(mut self, code: RespCode) -> Reply {
        self.code = Some(code);
        self
    }

    /// Whether this is `+OK`.
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The response code, if any.
    pub fn code(&self) -> Option<RespCode> {
        self.code
    }

    /// The human-readable text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Appends the reply line. CR and LF in the text become spaces and the line is cut to
    /// [`MAX_RESPONSE_LINE`] octets (at a character boundary), so a reply is always one line.
    pub fn encode(&self, buf: &mut BytesMut) {
        let start = buf.len();
        buf.reserve(self.text.len() + 24);
        buf.put_slice(if self.ok { b"+OK" } else { b"-ERR" });
        if let Some(code) = self.code {
            buf.put_slice(b" [");
            buf.put_slice(code.as_str().as_bytes());
            buf.put_u8(b']');
        }
        if !self.text.is_empty() {
            buf.put_u8(b' ');
            let room = MAX_RESPONSE_LINE - 2 - (buf.len() - start);
            let mut text = self.text.as_ref();
            if text.len() > room {
                let mut cut = room;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text = &text[..cut];
            }
            for &b in text.as_bytes() {
                buf.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
            }
        }
        buf.put_slice(b"\r\n");
    }
}

/// Appends the lines of a multi-line response (after its status line), each dot-stuffed and
/// ended with CRLF, then the terminating `.` line (RFC 1939 §3). The lines must not contain
/// CR or LF.
pub fn encode_lines<I>(lines: I, buf: &mut BytesMut)
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    for line in lines {
        let line = line.as_ref();
        if line.first() == Some(&b'.') {
            buf.put_u8(b'.');
        }
        buf.put_slice(line);
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b".\r\n");
}

/// Appends `body` as the data of a multi-line response: every line that starts with `.` gets
/// one more (RFC 1939 §3 byte-stuffing; a line starts at the beginning and after each LF), a
/// CRLF is added if the body does not end with one, then the terminating `.` line.
pub fn encode_multiline_body(body: &[u8], buf: &mut BytesMut) {
    // Typical mail has a few dots at line starts; reserve for the common case.
    buf.reserve(body.len() + 8);
    if body.first() == Some(&b'.') {
        buf.put_u8(b'.');
    }
    // Copy whole runs up to each line that starts with a dot (found with memchr's SIMD search
    // rather than line by line: RETR of a large maildrop is mostly this copy).
    let mut copied = 0;
    for lf in memchr::memmem::find_iter(body, b"\n.") {
        buf.put_slice(&body[copied..=lf]);
        buf.put_u8(b'.');
        copied = lf + 1;
    }
    buf.put_slice(&body[copied..]);
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b".\r\n");
}

/// How many leading octets of `message` TOP sends for `lines` body lines (RFC 1939 §7): the
/// header, the blank line ending it, then at most `lines` lines of the body. Lines end at LF
/// (CRLF in stored mail). A message without a blank line is all header and is sent whole.
pub fn top_len(message: &[u8], lines: u32) -> usize {
    let mut pos = 0;
    // The header ends after the first empty line.
    loop {
        let line_end = match message[pos..].iter().position(|&b| b == b'\n') {
            Some(lf) => pos + lf + 1,
            None => return message.len(),
        };
        let line = &message[pos..line_end];
        pos = line_end;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    for _ in 0..lines {
        if pos >= message.len() {
            break;
        }
        pos = match message[pos..].iter().position(|&b| b == b'\n') {
            Some(lf) => pos + lf + 1,
            None => message.len(),
        };
    }
    pos
}
