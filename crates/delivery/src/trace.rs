//! Trace header fields (RFC 5321 §4.4): `Return-Path:` and `Received:`.

use std::net::IpAddr;

use tern_common::Address;

use crate::date;
use crate::types::Trace;

/// RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; we fold at whitespace to stay within that.
const FOLD_AT: usize = 78;
/// Longest client-supplied token (HELO argument, rDNS name, TLS description) we copy. A domain is at most
/// 253 octets; with this bound every line stays far below the 998-octet limit of RFC 5322 §2.1.1.
const MAX_TOKEN: usize = 255;
/// Longest session id we copy.
const MAX_ID: usize = 64;

/// `Return-Path: <reverse-path>` (RFC 5321 §4.4: added by the final delivery; `<>` for the null path).
pub(crate) fn return_path(mail_from: Option<&Address>) -> String {
    match mail_from {
        Some(address) => format!("Return-Path: <{address}>\r\n"),
        None => "Return-Path: <>\r\n".to_owned(),
    }
}

/// The `Received:` field this server adds, CRLF-terminated and folded:
///
/// ```text
/// Received: from <helo> (<rDNS name or unknown> [<client ip>])
///         by <hostname> (Tern) with <protocol> id <session id>
///         (using <tls>)
///         for <recipient>; <date-time>
/// ```
///
/// RFC 5321 §4.4:
/// ```text
/// Stamp          = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
/// From-domain    = "FROM" FWS Extended-Domain
/// By-domain      = CFWS "BY" FWS Extended-Domain
/// Extended-Domain = Domain / ( Domain FWS "(" TCP-info ")" ) / ( address-literal FWS "(" TCP-info ")" )
/// TCP-info       = address-literal / ( Domain FWS address-literal )
/// Opt-info       = [Via] [With] [ID] [For] [Additional-Registered-Clauses]
/// ```
/// The `(using ...)` comment is CFWS before `for`. `for` is written only for a single recipient (§7.2: it
/// would disclose the other recipients, the Bcc ones included).
pub(crate) fn received(
    trace: &Trace,
    hostname: &str,
    single_recipient: Option<&Address>,
) -> String {
    let mut f = FieldWriter::new("Received:");
    f.word("from");
    f.word(&token_or_unknown(&trace.helo));
    let name = trace
        .client_name
        .as_deref()
        .map_or_else(|| "unknown".to_owned(), token_or_unknown);
    f.word(&format!("({name}"));
    f.word(&format!("{})", address_literal(trace.client_ip)));
    f.break_line();
    f.word("by");
    f.word(hostname);
    f.word("(Tern)");
    f.word("with");
    f.word(trace.protocol.as_str());
    f.word("id");
    f.word(&session_id_atom(&trace.session_id));
    if let Some(tls) = &trace.tls {
        f.break_line();
        let tls = comment_text(tls);
        let mut words = tls.split_whitespace().peekable();
        let mut first = true;
        while let Some(word) = words.next() {
            let open = if first { "(using " } else { "" };
            let close = if words.peek().is_none() { ")" } else { "" };
            f.word(&format!("{open}{word}{close}"));
            first = false;
        }
        if first {
            f.word("(using TLS)");
        }
    }
    if let Some(rcpt) = single_recipient {
        f.break_line();
        f.word("for");
        f.word(&format!("<{rcpt}>"));
    }
    f.append(";");
    f.word(&date::rfc5322(date::unix_seconds(trace.received_at)));
    f.finish()
}

/// RFC 5321 §4.1.3 address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`. An IPv4-mapped IPv6 address is
/// written as the IPv4 address it is.
pub(crate) fn address_literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// A client-supplied domain-like token (HELO argument, rDNS name) made safe for the header: at most
/// [`MAX_TOKEN`] octets, and anything that is not a letter, digit, `-`, `.`, `_`, `:`, `[`, `]` or
/// non-ASCII (RFC 6531) replaced by `_`, so it can break neither the field nor its comment syntax.
fn token_or_unknown(raw: &str) -> String {
    let clean: String = truncate(raw, MAX_TOKEN)
        .chars()
        .map(|c| {
            let allowed = c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_' | ':' | '[' | ']')
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace());
            if allowed { c } else { '_' }
        })
        .collect();
    if clean.is_empty() {
        "unknown".to_owned()
    } else {
        clean
    }
}

/// RFC 5321 §4.4 `ID = CFWS "ID" FWS ( Atom / msg-id )`: keep `atext` characters only.
fn session_id_atom(raw: &str) -> String {
    let atom: String = truncate(raw, MAX_ID)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(*c))
        .collect();
    if atom.is_empty() {
        "unknown".to_owned()
    } else {
        atom
    }
}

/// Text for inside a comment (RFC 5322 §3.2.2 `ctext`): no parentheses, backslashes or controls.
fn comment_text(raw: &str) -> String {
    truncate(raw, MAX_TOKEN)
        .chars()
        .map(|c| {
            if matches!(c, '(' | ')' | '\\') || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The longest prefix of `s` of at most `max` octets that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes one header field, folding (RFC 5322 §2.2.3) between words: before a word that would take the
/// line past [`FOLD_AT`] characters, and where the caller asks for a line break. A word is never split.
struct FieldWriter {
    out: String,
    line_len: usize,
    break_next: bool,
}

impl FieldWriter {
    fn new(name: &str) -> FieldWriter {
        FieldWriter {
            out: name.to_owned(),
            line_len: name.len(),
            break_next: false,
        }
    }

    fn word(&mut self, word: &str) {
        if self.break_next || (self.line_len > 1 && self.line_len + 1 + word.len() > FOLD_AT) {
            // FWS = CRLF WSP: the continuation line starts with a tab.
            self.out.push_str("\r\n\t");
            self.line_len = 1;
            self.break_next = false;
        } else {
            self.out.push(' ');
            self.line_len += 1;
        }
        self.out.push_str(word);
        self.line_len += word.len();
    }

    /// Appends text to the last word, without whitespace.
    fn append(&mut self, text: &str) {
        self.out.push_str(text);
        self.line_len += text.len();
    }

    /// The next word starts a continuation line.
    fn break_line(&mut self) {
        self.break_next = true;
    }

    fn finish(mut self) -> String {
        self.out.push_str("\r\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::types::TraceProtocol;

    fn trace() -> Trace {
        Trace {
            helo: "mail.example.org".into(),
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            client_name: None,
            protocol: TraceProtocol::Esmtp,
            tls: None,
            session_id: "s1x".into(),
            // Tue, 24 Nov 2026 20:14:05 +0000
            received_at: UNIX_EPOCH + Duration::from_secs(1_795_551_245),
        }
    }

    fn addr(s: &str) -> Address {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn return_path_shows_the_reverse_path_or_null() {
        assert_eq!(
            return_path(Some(&addr("a@example.org"))),
            "Return-Path: <a@example.org>\r\n"
        );
        assert_eq!(return_path(None), "Return-Path: <>\r\n");
        assert_eq!(
            return_path(Some(&addr(r#""john doe"@example.org"#))),
            "Return-Path: <\"john doe\"@example.org>\r\n"
        );
    }

    #[test]
    fn received_with_one_recipient_names_it() {
        let rcpt = addr("bob@example.test");
        assert_eq!(
            received(&trace(), "mx.example.test", Some(&rcpt)),
            "Received: from mail.example.org (unknown [192.0.2.1])\r\n\
             \tby mx.example.test (Tern) with ESMTP id s1x\r\n\
             \tfor <bob@example.test>; Tue, 24 Nov 2026 20:14:05 +0000\r\n"
        );
    }

    #[test]
    fn received_without_single_recipient_has_no_for_clause() {
        assert_eq!(
            received(&trace(), "mx.example.test", None),
            "Received: from mail.example.org (unknown [192.0.2.1])\r\n\
             \tby mx.example.test (Tern) with ESMTP id s1x; Tue, 24 Nov 2026 20:14:05 +0000\r\n"
        );
    }

    #[test]
    fn received_shows_ipv6_literal_rdns_name_tls_and_protocol() {
        let mut t = trace();
        t.client_ip = IpAddr::V6("2001:db8::25".parse::<Ipv6Addr>().unwrap());
        t.client_name = Some("relay.example.org".into());
        t.protocol = TraceProtocol::Esmtpsa;
        t.tls = Some("TLS1.3 TLS13_AES_256_GCM_SHA384".into());
        let rcpt = addr("bob@example.test");
        assert_eq!(
            received(&t, "mx.example.test", Some(&rcpt)),
            "Received: from mail.example.org (relay.example.org [IPv6:2001:db8::25])\r\n\
             \tby mx.example.test (Tern) with ESMTPSA id s1x\r\n\
             \t(using TLS1.3 TLS13_AES_256_GCM_SHA384)\r\n\
             \tfor <bob@example.test>; Tue, 24 Nov 2026 20:14:05 +0000\r\n"
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_client_is_written_as_ipv4() {
        let ip = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        assert_eq!(address_literal(ip), "[198.51.100.7]");
    }

    #[test]
    fn hostile_helo_cannot_inject_lines_or_break_the_comment() {
        let mut t = trace();
        t.helo = "evil\r\nX-Injected: yes (a) ;b\\".into();
        t.client_name = Some(String::new());
        t.tls = Some("TLS1.2 (x)\r\nY: z".into());
        t.session_id = "id with spaces;\r\n".into();
        let field = received(&t, "mx.example.test", None);
        assert!(!field.contains("\r\nX-Injected"), "{field}");
        assert!(!field.contains("\r\nY:"), "{field}");
        assert!(field.starts_with("Received: from evil__X-Injected:_yes__a___b_ (unknown "));
        assert!(field.contains(" id idwithspaces\r\n"), "{field}");
        // Every line break is a fold (CRLF + WSP) except the final CRLF.
        let body = &field[..field.len() - 2];
        assert!(body.split("\r\n").skip(1).all(|l| l.starts_with('\t')));
        assert!(!body.contains('\n') || body.matches('\n').count() == body.matches("\r\n").count());
    }

    #[test]
    fn huge_client_values_are_folded_and_bounded() {
        let mut t = trace();
        t.helo = "h".repeat(5000);
        t.client_name = Some(format!("{}.example", "é".repeat(3000)));
        t.tls = Some("W ".repeat(2000));
        let field = received(&t, "mx.example.test", Some(&addr("bob@example.test")));
        for line in field.split("\r\n") {
            // RFC 5322 §2.1.1: at most 998 characters per line, excluding CRLF.
            assert!(line.len() <= 998, "line of {} octets", line.len());
        }
        assert!(field.ends_with("+0000\r\n"));
        assert!(
            field
                .split("\r\n")
                .filter(|l| !l.is_empty())
                .skip(1)
                .all(|l| l.starts_with('\t'))
        );
    }

    #[test]
    fn protocol_words_follow_rfc_3848() {
        use TraceProtocol as P;
        let cases = [
            (P::of_session(false, false, true, true), "SMTP"),
            (P::of_session(false, true, false, false), "ESMTP"),
            (P::of_session(false, true, true, false), "ESMTPS"),
            (P::of_session(false, true, false, true), "ESMTPA"),
            (P::of_session(false, true, true, true), "ESMTPSA"),
            (P::of_session(true, true, false, false), "LMTP"),
            (P::of_session(true, true, true, false), "LMTPS"),
            (P::of_session(true, true, false, true), "LMTPA"),
            (P::of_session(true, true, true, true), "LMTPSA"),
        ];
        for (protocol, word) in cases {
            assert_eq!(protocol.as_str(), word);
            let mut t = trace();
            t.protocol = protocol;
            assert!(received(&t, "mx", None).contains(&format!(" with {word} id ")));
        }
    }

    #[test]
    fn smtputf8_transactions_use_the_rfc_6531_words() {
        use TraceProtocol as P;
        let cases = [
            (P::of_session(false, true, false, false), "UTF8SMTP"),
            (P::of_session(false, true, true, false), "UTF8SMTPS"),
            (P::of_session(false, true, false, true), "UTF8SMTPA"),
            (P::of_session(false, true, true, true), "UTF8SMTPSA"),
            (P::of_session(true, true, false, false), "UTF8LMTP"),
            (P::of_session(true, true, true, false), "UTF8LMTPS"),
            (P::of_session(true, true, false, true), "UTF8LMTPA"),
            (P::of_session(true, true, true, true), "UTF8LMTPSA"),
            // HELO cannot negotiate SMTPUTF8; the word stays.
            (P::of_session(false, false, true, true), "SMTP"),
        ];
        for (protocol, word) in cases {
            let protocol = protocol.with_smtputf8();
            assert_eq!(protocol.as_str(), word);
            let mut t = trace();
            t.protocol = protocol;
            assert!(received(&t, "mx", None).contains(&format!(" with {word} id ")));
        }
    }
}
