//! The log's last line of defence against injection: clients choose login names (SASL carries
//! any octet), EHLO names and addresses, and the log shows them. A line break in one would
//! forge a log line that fail2ban-style tools and administrators trust; a terminal escape
//! sequence would rewrite the screen of whoever reads the log. Every control character in an
//! event, wherever it came from, is written escaped (`\n`, `\r`, `\u{1b}`), so one event is
//! always exactly one line. JSON logs are escaped by their encoder already; this leaves them
//! unchanged.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Standard error, escaping control characters in each event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedStderr;

impl<'a> MakeWriter<'a> for EscapedStderr {
    type Writer = EscapedWriter<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapedWriter(io::stderr())
    }
}

/// Escapes what is written to `W`. tracing's formatter hands over each event in one
/// `write_all` (the whole line, then `\n`), which `write` consumes at once, so the final line
/// break of an event is the only one left as it is.
#[derive(Debug)]
pub struct EscapedWriter<W>(W);

impl<W: Write> Write for EscapedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (line, newline) = match buf.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (buf, false),
        };
        let text = String::from_utf8_lossy(line);
        if !text.chars().any(needs_escape) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if needs_escape(c) {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        if newline {
            out.push('\n');
        }
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// C0 controls (but the tab), DEL and the C1 controls (U+0080–U+009F, which include the
/// single-character CSI that some terminals obey).
fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(input: &str) -> String {
        let mut w = EscapedWriter(Vec::new());
        w.write_all(input.as_bytes()).unwrap();
        String::from_utf8(w.0).unwrap()
    }

    #[test]
    fn a_line_break_inside_an_event_is_escaped_and_the_final_one_kept() {
        assert_eq!(
            escaped("login failed user=a\nINFO forged\n"),
            "login failed user=a\\nINFO forged\n"
        );
        assert_eq!(escaped("a\r\n"), "a\\r\n");
    }

    #[test]
    fn escape_sequences_and_c1_controls_are_escaped() {
        assert_eq!(escaped("x\u{1b}[2Jy\n"), "x\\u{1b}[2Jy\n");
        assert_eq!(escaped("\u{9b}31m\u{7f}\n"), "\\u{9b}31m\\u{7f}\n");
    }

    #[test]
    fn ordinary_text_tabs_and_utf8_pass_unchanged() {
        for line in ["plain\n", "tab\there\n", "Grüße 日本\n", "no newline"] {
            assert_eq!(escaped(line), line);
        }
    }
}
