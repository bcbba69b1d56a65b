//! Address lists for ENVELOPE (RFC 9051 §7.5.2): the raw header text split into
//! (name, adl, mailbox, host), with group syntax, encoded-words left as they are.

use std::borrow::Cow;

use tern_proto::imap::Address;

// RFC 5322 §3.4:
// address-list = (address *("," address)) / obs-addr-list
// address      = mailbox / group
// mailbox      = name-addr / addr-spec
// name-addr    = [display-name] angle-addr
// angle-addr   = [CFWS] "<" [obs-route] addr-spec ">" [CFWS]
// group        = display-name ":" [group-list] ";" [CFWS]
// addr-spec    = local-part "@" domain
/// Parses an address-list header value (unfolded) into envelope addresses. Never fails:
/// what cannot be read is skipped.
pub(super) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < tokens.len() {
        // The words before the next special decide what this is.
        let mut phrase: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut comment: Option<&[u8]> = None;
        let mut j = i;
        while let Some(token) = tokens.get(j) {
            match token {
                Token::Word(w) => phrase.push(Cow::Borrowed(w)),
                Token::Quoted(q) => phrase.push(unescape(q)),
                Token::Comment(c) => {
                    comment.get_or_insert(c);
                }
                Token::Special(_) => break,
            }
            j += 1;
        }
        match tokens.get(j) {
            // RFC 5322 §3.4 group: RFC 9051 §7.5.2 marks its start with a NIL host and the
            // group name as mailbox.
            Some(Token::Special(b':')) if !in_group => {
                out.push(Address {
                    mailbox: Some(join(&phrase, b" ")),
                    ..Address::default()
                });
                in_group = true;
                i = j + 1;
            }
            Some(Token::Special(b'<')) => {
                let (mut address, next) = angle_addr(&tokens, j + 1);
                address.name = (!phrase.is_empty()).then(|| join(&phrase, b" "));
                out.push(address);
                i = skip_to_separator(&tokens, next);
            }
            Some(Token::Special(b'@')) => {
                let (host, next, trailing) = domain(&tokens, j + 1, b",;");
                out.push(Address {
                    // RFC 5322 §3.4: a comment after an addr-spec is the traditional place
                    // for the name.
                    name: comment.or(trailing).map(<[u8]>::to_vec),
                    adl: None,
                    mailbox: Some(join(&phrase, b"")),
                    host: Some(host),
                });
                i = skip_to_separator(&tokens, next);
            }
            other => {
                if !phrase.is_empty() {
                    // A local part without a domain: an empty (not NIL) host, so it is not
                    // read as group syntax.
                    out.push(Address {
                        name: comment.map(<[u8]>::to_vec),
                        adl: None,
                        mailbox: Some(join(&phrase, b"")),
                        host: Some(Vec::new()),
                    });
                }
                if matches!(other, Some(Token::Special(b';'))) && in_group {
                    // RFC 9051 §7.5.2: the end of a group has NIL mailbox and host.
                    out.push(Address::default());
                    in_group = false;
                }
                i = j + 1;
            }
        }
    }
    if in_group {
        out.push(Address::default());
    }
    out
}

/// `[obs-route] addr-spec ">"`; returns the address (without name) and the index after it.
fn angle_addr(tokens: &[Token<'_>], mut i: usize) -> (Address, usize) {
    let mut address = Address::default();
    // RFC 5322 §4.4 obs-route = obs-domain-list ":"; e.g. "@a.example,@b.example:".
    if matches!(tokens.get(i), Some(Token::Special(b'@'))) {
        let mut route = Vec::new();
        while let Some(token) = tokens.get(i) {
            i += 1;
            match token {
                Token::Special(b':') => break,
                Token::Special(b'>') => return (address, i),
                Token::Special(c) => route.push(*c),
                Token::Word(w) | Token::Quoted(w) => route.extend_from_slice(w),
                Token::Comment(_) => {}
            }
        }
        address.adl = (!route.is_empty()).then_some(route);
    }
    let mut local: Vec<Cow<'_, [u8]>> = Vec::new();
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Word(w) => local.push(Cow::Borrowed(w)),
            Token::Quoted(q) => local.push(unescape(q)),
            Token::Special(b'@') => {
                let (host, next, _) = domain(tokens, i + 1, b">");
                address.mailbox = Some(join(&local, b""));
                address.host = Some(host);
                let after = match tokens.get(next) {
                    Some(Token::Special(b'>')) => next + 1,
                    _ => next,
                };
                return (address, after);
            }
            Token::Special(b'>') => {
                i += 1;
                break;
            }
            Token::Special(b',' | b';') => break,
            _ => {}
        }
        i += 1;
    }
    // `<>` or `<local>`: no domain.
    address.mailbox = Some(join(&local, b""));
    address.host = Some(Vec::new());
    (address, i)
}

/// The domain after `@`, up to one of `stops` (or the end); returns it, the stop's index and
/// the first comment seen.
fn domain<'a>(
    tokens: &[Token<'a>],
    mut i: usize,
    stops: &[u8],
) -> (Vec<u8>, usize, Option<&'a [u8]>) {
    let mut host = Vec::new();
    let mut comment = None;
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Special(c) if stops.contains(c) => break,
            Token::Special(b'<' | b'>' | b',' | b';') => break,
            Token::Special(c) => host.push(*c),
            Token::Word(w) | Token::Quoted(w) => host.extend_from_slice(w),
            Token::Comment(c) => {
                comment.get_or_insert(*c);
            }
        }
        i += 1;
    }
    (host, i, comment)
}

/// The index of the next `,` or `;` at or after `i` (a `;` ends a group, so it is kept).
fn skip_to_separator(tokens: &[Token<'_>], mut i: usize) -> usize {
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Special(b',') => return i + 1,
            Token::Special(b';') => return i,
            _ => i += 1,
        }
    }
    i
}

fn join(words: &[Cow<'_, [u8]>], sep: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(word);
    }
    out
}

/// Removes the quoting backslashes of a quoted string's content (RFC 5322 §3.2.4).
fn unescape(q: &[u8]) -> Cow<'_, [u8]> {
    if !q.contains(&b'\\') {
        return Cow::Borrowed(q);
    }
    let mut out = Vec::with_capacity(q.len());
    let mut escaped = false;
    for &b in q {
        if b == b'\\' && !escaped {
            escaped = true;
        } else {
            out.push(b);
            escaped = false;
        }
    }
    Cow::Owned(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An atom or dot-atom (8-bit octets allowed, RFC 6532), or a domain literal.
    Word(&'a [u8]),
    /// A quoted string's content, quotes removed, escapes still in (see `unescape`).
    Quoted(&'a [u8]),
    /// A comment's text.
    Comment(&'a [u8]),
    /// One of `< > @ , ; :`.
    Special(u8),
}

fn tokenize(s: &[u8]) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'<' | b'>' | b'@' | b',' | b';' | b':' => {
                tokens.push(Token::Special(b));
                i += 1;
            }
            // RFC 5322 §3.2.4 quoted-string.
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while let Some(&c) = s.get(j) {
                    match c {
                        b'\\' => j += 2,
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                let end = j.min(s.len());
                tokens.push(Token::Quoted(s.get(start..end).unwrap_or_default()));
                i = end + 1;
            }
            // RFC 5322 §3.2.2 comment (nested).
            b'(' => {
                let start = i + 1;
                let mut depth = 1usize;
                let mut j = start;
                while let Some(&c) = s.get(j) {
                    match c {
                        b'\\' => j += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let end = j.min(s.len());
                tokens.push(Token::Comment(s.get(start..end).unwrap_or_default()));
                i = end + 1;
            }
            // RFC 5322 §3.4.1 domain-literal, kept with its brackets.
            b'[' => {
                let start = i;
                let end = s
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&c| c == b']'))
                    .map_or(s.len(), |p| i + p + 1);
                tokens.push(Token::Word(s.get(start..end).unwrap_or_default()));
                i = end;
            }
            _ => {
                let start = i;
                while let Some(&c) = s.get(i) {
                    if matches!(
                        c,
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                            | b'"'
                            | b'('
                            | b'['
                    ) {
                        break;
                    }
                    i += 1;
                }
                tokens.push(Token::Word(s.get(start..i).unwrap_or_default()));
            }
        }
    }
    tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Word(w) if w.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(|s| s.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.map(|s| s.as_bytes().to_vec()),
            host: host.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn name_addr_and_addr_spec_split_into_parts() {
        assert_eq!(
            parse_address_list(b"\"Doe, John\" <john.doe@example.com>, jane@example.org (Jane)"),
            vec![
                addr(Some("Doe, John"), Some("john.doe"), Some("example.com")),
                addr(Some("Jane"), Some("jane"), Some("example.org")),
            ]
        );
    }

    #[test]
    fn groups_are_bracketed_by_nil_host_markers() {
        assert_eq!(
            parse_address_list(b"Friends: a@x.test, B <b@y.test>;, c@z.test"),
            vec![
                addr(None, Some("Friends"), None),
                addr(None, Some("a"), Some("x.test")),
                addr(Some("B"), Some("b"), Some("y.test")),
                addr(None, None, None),
                addr(None, Some("c"), Some("z.test")),
            ]
        );
        assert_eq!(
            parse_address_list(b"undisclosed-recipients:;"),
            vec![
                addr(None, Some("undisclosed-recipients"), None),
                Address::default()
            ]
        );
    }

    #[test]
    fn encoded_words_and_routes_are_kept_raw() {
        let list = parse_address_list(b"=?utf-8?q?J=C3=BCrgen?= <@relay.test:j@x.test>");
        assert_eq!(list.len(), 1);
        assert_eq!(
            list[0].name.as_deref(),
            Some(&b"=?utf-8?q?J=C3=BCrgen?="[..])
        );
        assert_eq!(list[0].adl.as_deref(), Some(&b"@relay.test"[..]));
        assert_eq!(list[0].mailbox.as_deref(), Some(&b"j"[..]));
    }

    #[test]
    fn broken_lists_do_not_lose_the_rest() {
        assert_eq!(
            parse_address_list(b"root, <>, \"unterminated <x@y"),
            vec![
                addr(None, Some("root"), Some("")),
                addr(None, Some(""), Some("")),
                addr(None, Some("unterminated <x@y"), Some("")),
            ]
        );
        assert!(parse_address_list(b"").is_empty());
        assert!(parse_address_list(b" , ;:<>@").len() < 10);
    }
}
