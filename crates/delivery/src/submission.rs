//! Submission fix-ups (RFC 6409 §8): an MSA may add the `Date:` and `Message-ID:` fields a client left
//! out. Only missing fields are added; an existing one, however malformed, is left as it is.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::{HeaderName, Message};

use crate::date;

/// The header fields to add in front of a submitted message, CRLF-terminated (empty if none is missing).
///
/// `parsed` is the message's parse; `None` (mail-parser found no header field at all) means both
/// fields are missing.
pub(crate) fn missing_fields(
    parsed: Option<&Message<'_>>,
    hostname: &str,
    now: SystemTime,
) -> String {
    let mut fields = String::new();
    // RFC 6409 §8.1: add a Date field if absent (RFC 5322 §3.6 requires exactly one).
    if !has_field(parsed, &HeaderName::Date) {
        fields.push_str("Date: ");
        fields.push_str(&date::rfc5322(date::unix_seconds(now)));
        fields.push_str("\r\n");
    }
    // RFC 6409 §8.3: add a Message-ID if absent (RFC 5322 §3.6.4 SHOULD have one).
    if !has_field(parsed, &HeaderName::MessageId) {
        fields.push_str("Message-ID: <");
        fields.push_str(&unique_id_left());
        fields.push('@');
        fields.push_str(hostname);
        fields.push_str(">\r\n");
    }
    fields
}

/// Whether the top-level header block has a field of this name (mail-parser matches names
/// case-insensitively and keeps fields whose value it cannot parse).
fn has_field(parsed: Option<&Message<'_>>, name: &HeaderName<'_>) -> bool {
    parsed.is_some_and(|m| m.headers().iter().any(|h| &h.name == name))
}

/// The `id-left` of a new Message-ID (RFC 5322 §3.6.4, a `dot-atom-text`), unique worldwide together with
/// our hostname: the time in nanoseconds, the process id and a per-process counter make it unique on this
/// host; 64 bits keyed by std's per-process random hash key make it unique across nodes sharing a hostname
/// and hard to guess. (RFC 5322 only asks for uniqueness, not secrecy.)
fn unique_id_left() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let pid = std::process::id();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u64(n);
    hasher.write_u32(pid);
    format!("{nanos:x}.{pid:x}.{n:x}.{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use mail_parser::MessageParser;

    use super::*;

    const HOST: &str = "mx.example.test";

    fn fields_for(raw: &[u8]) -> String {
        let parsed = MessageParser::default().parse(raw);
        missing_fields(parsed.as_ref(), HOST, UNIX_EPOCH)
    }

    #[test]
    fn both_fields_are_added_when_missing() {
        let f = fields_for(b"Subject: hi\r\n\r\nbody\r\n");
        let lines: Vec<&str> = f.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2, "{f}");
        assert_eq!(lines[0], "Date: Thu, 1 Jan 1970 00:00:00 +0000");
        assert!(lines[1].starts_with("Message-ID: <"), "{f}");
        assert!(lines[1].ends_with("@mx.example.test>"), "{f}");
    }

    #[test]
    fn present_fields_are_not_added_in_any_case_or_form() {
        assert_eq!(
            fields_for(b"date: not a date at all\r\nMESSAGE-ID: garbage\r\n\r\nbody\r\n"),
            ""
        );
        assert_eq!(
            fields_for(
                b"Message-Id: <a@b>\r\nDate: Tue, 24 Nov 2026 20:14:05 +0000\r\n\r\nbody\r\n"
            ),
            ""
        );
    }

    #[test]
    fn only_the_missing_one_is_added() {
        let f = fields_for(b"Date: Tue, 24 Nov 2026 20:14:05 +0000\r\n\r\nbody\r\n");
        assert!(
            f.starts_with("Message-ID: <") && f.matches("\r\n").count() == 1,
            "{f}"
        );
        let f = fields_for(b"Message-ID: <a@b>\r\n\r\nbody\r\n");
        assert!(
            f.starts_with("Date: ") && f.matches("\r\n").count() == 1,
            "{f}"
        );
    }

    #[test]
    fn a_date_in_the_body_does_not_count() {
        let f = fields_for(b"Subject: x\r\n\r\nDate: Tue, 24 Nov 2026 20:14:05 +0000\r\n");
        assert!(f.starts_with("Date: "), "{f}");
    }

    #[test]
    fn message_ids_are_unique_dot_atoms() {
        let ids: HashSet<String> = (0..1000).map(|_| unique_id_left()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            // RFC 5322 §3.2.3 dot-atom-text: atext runs separated by single dots.
            assert!(
                id.split('.')
                    .all(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_hexdigit()))
            );
        }
    }
}
