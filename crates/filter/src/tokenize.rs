//! The classifier's tokenizer: decoded header fields and text, HTML converted to text, URLs and
//! their domains, attachment types, and pairs of adjacent words.
//!
//! Design follows Paul Graham's "A Plan for Spam" and SpamBayes' tokenizer notes (tokens from
//! selected header fields carry a field prefix, so `free` in the Subject and `free` in the body are
//! different evidence; very long words become a length class instead of noise), with word pairs as
//! in CRM114's OSB ("orthogonal sparse bigrams", here only distance 1): pairs catch phrases such as
//! "click here" that single words do not. Every token is counted once per message (Robinson).

use std::collections::BTreeSet;
use std::net::IpAddr;

use mail_parser::{Address, Message, MimeHeaders, PartType};

use crate::html::{self, HtmlText};

/// Words kept per message body; the start of a message carries the evidence, and this bounds the
/// work for huge messages.
const MAX_WORDS: usize = 3000;
/// Words shorter than this are too common to mean anything.
const MIN_WORD: usize = 3;
/// Words longer than this become a `skip:` length class (base64 debris, hashes, tracking ids).
const MAX_WORD: usize = 20;

/// A message taken apart once for the tokenizer and the rules.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    /// text/plain bodies, decoded.
    pub texts: Vec<String>,
    /// text/html bodies, converted.
    pub html: Vec<HtmlText>,
    /// Attachments: file name (if any) and lowercased `type/subtype`.
    pub attachments: Vec<(Option<String>, String)>,
}

/// Takes the text, HTML and attachment parts out of a parsed message.
pub(crate) fn analyze(msg: &Message<'_>) -> Analysis {
    let mut out = Analysis::default();
    let mut seen = BTreeSet::new();
    for &id in msg.text_body.iter().chain(&msg.html_body) {
        if !seen.insert(id) {
            continue;
        }
        match msg.parts.get(id as usize).map(|p| &p.body) {
            Some(PartType::Text(t)) => out.texts.push(t.to_string()),
            Some(PartType::Html(h)) => out.html.push(html::parse(h)),
            _ => {}
        }
    }
    for part in msg.attachments() {
        let ctype = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")))
            .unwrap_or_else(|| "application/octet-stream".to_owned())
            .to_ascii_lowercase();
        out.attachments
            .push((part.attachment_name().map(str::to_owned), ctype));
    }
    out
}

/// The distinct tokens of a message, as strings (sorted). `client_ip` is the connecting client of
/// an incoming message: it gives the same tokens as the `Received:` field this server adds, so
/// training on stored mail and scoring incoming mail see the same evidence.
pub(crate) fn tokens(
    msg: &Message<'_>,
    analysis: &Analysis,
    client_ip: Option<IpAddr>,
) -> BTreeSet<String> {
    let mut t = BTreeSet::new();
    header_tokens(msg, &mut t);
    if let Some(ip) = client_ip {
        ip_tokens(ip, &mut t);
    }
    let mut words = Vec::new();
    for text in &analysis.texts {
        body_words(text, &mut words, &mut t);
    }
    for h in &analysis.html {
        body_words(&h.text, &mut words, &mut t);
        for link in &h.links {
            url_tokens(&link.href, &mut t);
        }
        for src in &h.images {
            url_tokens(src, &mut t);
        }
        for tag in &h.tags {
            t.insert(format!("html:{tag}"));
        }
    }
    for (name, ctype) in &analysis.attachments {
        t.insert(format!("att:{ctype}"));
        if let Some(ext) = name.as_deref().and_then(extension) {
            t.insert(format!("att:.{ext}"));
        }
    }
    for w in &words {
        t.insert(w.clone());
    }
    for pair in words.windows(2) {
        // Built by hand: `format!` was a tenth of the scoring time of large messages.
        let mut p = String::with_capacity(pair[0].len() + 1 + pair[1].len());
        p.push_str(&pair[0]);
        p.push(' ');
        p.push_str(&pair[1]);
        t.insert(p);
    }
    t
}

/// FNV-1a, 64 bit: stable across Rust versions and platforms (unlike `DefaultHasher`), so stored
/// token counts stay valid; 64 bits make collisions negligible for a token vocabulary.
pub(crate) fn hash(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn header_tokens(msg: &Message<'_>, t: &mut BTreeSet<String>) {
    for header in msg.headers() {
        let name = header.name().to_ascii_lowercase();
        // Fields this server adds to stored mail; they must not become evidence of themselves.
        if !name.starts_with("x-spam-") && name != "x-virus-scan" {
            t.insert(format!("hdr:{name}"));
        }
    }
    if let Some(subject) = msg.subject() {
        for w in subject.split_whitespace().filter_map(word) {
            t.insert(format!("s:{w}"));
        }
    }
    address_tokens("from", msg.from(), t);
    address_tokens("rt", msg.reply_to(), t);
    for to in msg.all_to() {
        for a in to.iter().filter_map(|a| a.address()) {
            if let Some((_, d)) = a.rsplit_once('@') {
                t.insert(format!("to:{}", d.to_ascii_lowercase()));
            }
        }
    }
    for r in msg.received_all() {
        if let Some(ip) = r.from_ip() {
            ip_tokens(ip, t);
        }
    }
    if let Some((_, domain)) = msg.message_id().and_then(|m| m.rsplit_once('@')) {
        t.insert(format!("mid:{}", domain.to_ascii_lowercase()));
    }
    for name in ["X-Mailer", "User-Agent"] {
        if let Some(v) = msg.header(name).and_then(|v| v.as_text()) {
            let v: String = v.chars().take(40).collect::<String>().to_lowercase();
            t.insert(format!("ua:{v}"));
        }
    }
    for part in &msg.parts {
        if let Some(ct) = part.content_type() {
            let sub = ct.subtype().unwrap_or("");
            t.insert(format!("ct:{}/{sub}", ct.ctype()).to_ascii_lowercase());
            if let Some(cs) = ct.attribute("charset") {
                t.insert(format!("cs:{}", cs.to_ascii_lowercase()));
            }
        }
    }
}

fn address_tokens(prefix: &str, address: Option<&Address<'_>>, t: &mut BTreeSet<String>) {
    let Some(address) = address else { return };
    for a in address.iter() {
        if let Some(addr) = a.address() {
            let addr = addr.to_ascii_lowercase();
            if let Some((_, d)) = addr.rsplit_once('@') {
                t.insert(format!("{prefix}:@{d}"));
            }
            t.insert(format!("{prefix}:{addr}"));
        }
        for w in a.name().unwrap_or("").split_whitespace().filter_map(word) {
            t.insert(format!("{prefix}:name:{w}"));
        }
    }
}

fn ip_tokens(ip: IpAddr, t: &mut BTreeSet<String>) {
    t.insert(format!("ip:{ip}"));
    if let IpAddr::V4(v4) = ip {
        let o = v4.octets();
        t.insert(format!("ip:{}.{}.{}", o[0], o[1], o[2]));
    }
}

/// Splits a text into words (appended to `words`) and URL tokens.
fn body_words(text: &str, words: &mut Vec<String>, t: &mut BTreeSet<String>) {
    for raw in text.split_whitespace() {
        if words.len() >= MAX_WORDS {
            return;
        }
        // Lowercase only what is used: most words are neither URLs nor long enough to count.
        if contains_scheme(raw) || starts_with_www(raw) {
            for url in find_urls(&raw.to_lowercase()) {
                url_tokens(url, t);
            }
            continue;
        }
        if let Some(w) = word(raw) {
            words.push(w);
        }
    }
}

/// One normalised word: edge punctuation trimmed (but `$`, `!`, `%` kept, they mean money and
/// urgency), lowercased; `None` when too short; a `skip:` class when too long.
fn word(raw: &str) -> Option<String> {
    let w = raw
        .trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '$' | '!' | '%' | '€' | '£'));
    let len = w.chars().count();
    if len < MIN_WORD {
        return None;
    }
    if len > MAX_WORD {
        let first = w.chars().next().unwrap_or('?').to_lowercase();
        return Some(format!("skip:{first}:{}", len / 10 * 10));
    }
    Some(w.to_lowercase())
}

/// URL tokens: the host, each parent domain, or `url:ip` for an address literal.
fn url_tokens(url: &str, t: &mut BTreeSet<String>) {
    let Some(host) = url_host(url) else { return };
    if host.parse::<IpAddr>().is_ok() {
        t.insert("url:ip".to_owned());
        return;
    }
    let mut d = host.as_str();
    t.insert(format!("url:{d}"));
    while let Some((_, parent)) = d.split_once('.') {
        if !parent.contains('.') {
            break;
        }
        t.insert(format!("url:{parent}"));
        d = parent;
    }
}

/// URLs (`scheme://…` or `www.…`) inside a text: in each piece between whitespace and
/// `<>"'()`, from the scheme of its first `://`, else from its first `www.`.
///
/// Driven by the `:` and `.` bytes (memchr) rather than by splitting the whole text: this runs
/// over every text part of every incoming message, and most pieces hold neither.
pub(crate) fn find_urls(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    // End of the last piece examined: a piece is examined once, at its first candidate.
    let mut examined = 0;
    for i in memchr::memchr2_iter(b':', b'.', bytes) {
        if i < examined {
            continue;
        }
        let candidate = match bytes[i] {
            b':' => bytes[i + 1..].starts_with(b"//"),
            _ => i >= 3 && bytes[i - 3..i].eq_ignore_ascii_case(b"www"),
        };
        if !candidate {
            continue;
        }
        // `i` is an ASCII byte, so a char boundary; separators may be multi-byte (Unicode
        // whitespace), hence the char walks.
        let start = text[..i]
            .char_indices()
            .rev()
            .find(|&(_, c)| is_url_separator(c))
            .map_or(0, |(j, c)| j + c.len_utf8());
        let end = text[i..]
            .char_indices()
            .find(|&(_, c)| is_url_separator(c))
            .map_or(text.len(), |(j, _)| i + j);
        examined = end;
        let piece = &text[start..end];
        if let Some(i) = scheme_separator(piece) {
            // The scheme starts after the last non-alphanumeric character (which may be multi-byte).
            let start = piece[..i]
                .char_indices()
                .rev()
                .find(|&(_, c)| !c.is_ascii_alphanumeric())
                .map_or(0, |(j, c)| j + c.len_utf8());
            out.push(&piece[start..]);
        } else if let Some(i) = find_www(piece) {
            out.push(&piece[i..]);
        }
    }
    out
}

fn is_url_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')')
}

/// Where `://` starts in `s`.
fn scheme_separator(s: &str) -> Option<usize> {
    s.as_bytes().windows(3).position(|w| w == b"://")
}

fn contains_scheme(s: &str) -> bool {
    scheme_separator(s).is_some()
}

/// Where `www.` (any case) starts in `s`; always a char boundary, as `w` is ASCII.
fn find_www(s: &str) -> Option<usize> {
    s.as_bytes()
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"www."))
}

fn starts_with_www(s: &str) -> bool {
    s.as_bytes()
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"www."))
}

/// The lowercased host of a URL (`http://user@Host:80/x` → `host`, `www.a.test/x` → `www.a.test`,
/// `http://[::1]/` → `::1`); `None` for relative links and `mailto:`.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None if url.len() > 4 && url.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www.")) => {
            url
        }
        None => return None,
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The lowercased file extension of a name (`a.PDF` → `pdf`).
pub(crate) fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.trim().trim_end_matches('.').rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;
    use proptest::prelude::*;

    use super::*;

    /// The definition `find_urls` implements: split into pieces, look at each.
    fn find_urls_by_pieces(text: &str) -> Vec<&str> {
        text.split(is_url_separator)
            .filter_map(|piece| {
                if let Some(i) = piece.find("://") {
                    let start = piece[..i]
                        .char_indices()
                        .rev()
                        .find(|&(_, c)| !c.is_ascii_alphanumeric())
                        .map_or(0, |(j, c)| j + c.len_utf8());
                    Some(&piece[start..])
                } else {
                    let lower = piece.to_ascii_lowercase();
                    lower.find("www.").map(|i| &piece[i..])
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn find_urls_agrees_with_the_piecewise_definition(
            text in "[wW.:/ \u{a0}\u{2003}<>()'\"htpsé网\ta-c]{0,60}"
        ) {
            prop_assert_eq!(find_urls(&text), find_urls_by_pieces(&text));
        }
    }

    fn toks(raw: &str) -> BTreeSet<String> {
        let msg = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        tokens(&msg, &analyze(&msg), None)
    }

    #[test]
    fn headers_give_prefixed_tokens_and_received_ips() {
        let t = toks(
            "Received: from mx.spam.test (mx.spam.test [192.0.2.7]) by mx.tern.test\r\n\
             From: \"Cheap Pills\" <Deals@Spam.TEST>\r\nReply-To: x@other.test\r\n\
             To: a@tern.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe_FREE?=\r\n\
             Message-ID: <1@mailer.spam.test>\r\nX-Mailer: Bulk 9\r\n\r\nhi\r\n",
        );
        for want in [
            "from:deals@spam.test",
            "from:@spam.test",
            "from:name:cheap",
            "from:name:pills",
            "rt:@other.test",
            "to:tern.test",
            "s:grüße",
            "s:free",
            "ip:192.0.2.7",
            "ip:192.0.2",
            "mid:mailer.spam.test",
            "ua:bulk 9",
            "hdr:x-mailer",
        ] {
            assert!(t.contains(want), "missing {want:?} in {t:?}");
        }
    }

    #[test]
    fn body_words_are_normalised_paired_and_bounded() {
        let t = toks(
            "Subject: x\r\n\r\nClick HERE, now!!! to win $1000 a \
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.\r\n",
        );
        for want in [
            "click",
            "here",
            "now!!!",
            "win",
            "$1000",
            "click here",
            "here now!!!",
            "skip:a:70",
        ] {
            assert!(t.contains(want), "missing {want:?} in {t:?}");
        }
        assert!(!t.contains("to"), "short words are dropped");
        assert!(!t.contains("a"));
    }

    #[test]
    fn html_is_read_as_text_with_url_domains_and_tags() {
        let t = toks(
            "Content-Type: text/html; charset=iso-8859-1\r\n\r\n<html><font>Limited offer</font>\
             <a href=\"http://track.deals.spam.test/x\">here</a> <img src=\"http://10.0.0.1/a.gif\">\r\n",
        );
        for want in [
            "limited",
            "limited offer",
            "url:track.deals.spam.test",
            "url:deals.spam.test",
            "url:spam.test",
            "url:ip",
            "html:font",
            "ct:text/html",
            "cs:iso-8859-1",
        ] {
            assert!(t.contains(want), "missing {want:?} in {t:?}");
        }
        assert!(!t.contains("url:test"), "a TLD alone is no evidence");
    }

    #[test]
    fn attachments_give_type_and_extension_tokens() {
        let t = toks(
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
             see attached\r\n--b\r\nContent-Type: application/octet-stream; name=\"Invoice.PDF.exe\"\r\n\
             Content-Disposition: attachment; filename=\"Invoice.PDF.exe\"\r\n\r\nMZ\r\n--b--\r\n",
        );
        assert!(t.contains("att:application/octet-stream"), "{t:?}");
        assert!(t.contains("att:.exe"), "{t:?}");
        assert!(t.contains("attached"), "{t:?}");
    }

    #[test]
    fn url_hosts_are_extracted_from_every_form() {
        assert_eq!(
            url_host("HTTP://user:pw@Host.Test:8080/x?y").as_deref(),
            Some("host.test")
        );
        assert_eq!(url_host("www.a.test/path").as_deref(), Some("www.a.test"));
        assert_eq!(
            url_host("http://[2001:db8::1]/").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(url_host("/relative"), None);
        assert_eq!(url_host("mailto:a@b.test"), None);
        assert_eq!(
            find_urls("see (http://a.test/x) and www.b.test."),
            ["http://a.test/x", "www.b.test."]
        );
        // Multi-byte text glued to a URL (seen in the SpamAssassin corpus) must not split a character.
        assert_eq!(find_urls("网站http://www.e.test/"), ["http://www.e.test/"]);
        assert_eq!(find_urls("ëwww.x.test"), ["www.x.test"]);
        assert_eq!(url_host("ééé"), None);
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // Test vectors from the FNV reference (draft-eastlake-fnv, appendix C).
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
