//! Mailbox names: validation (the personal namespace only) and LIST pattern matching.

/// The hierarchy delimiter (RFC 9051 §5.1.1).
pub(crate) const DELIMITER: char = '/';

/// Why a name is refused.
pub(crate) type NameError = &'static str;

/// Checks a mailbox name a client wants to create, rename to or open. Only the personal
/// namespace `""` with delimiter `/` exists (NAMESPACE `(("" "/")) NIL NIL`); names that look
/// like other namespaces or paths are refused so they can never reach anything but the
/// user's own mailboxes.
pub(crate) fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err("Empty mailbox name");
    }
    if name.chars().any(char::is_control) {
        return Err("Control characters in mailbox name");
    }
    // RFC 9051 §5.1: `~` and `#` start other namespaces by convention.
    if name.starts_with('~') || name.starts_with('#') {
        return Err("No such namespace");
    }
    if name.starts_with(DELIMITER) {
        return Err("Mailbox names do not start with the hierarchy delimiter");
    }
    for level in name.split(DELIMITER) {
        if level.is_empty() {
            return Err("Empty hierarchy level");
        }
        if level == "." || level == ".." {
            return Err("Invalid hierarchy level");
        }
        // RFC 9051 §5.1: wildcards in names would make LIST ambiguous.
        if level.contains(['*', '%']) {
            return Err("Wildcards in mailbox name");
        }
    }
    if name.len() > 1000 {
        return Err("Mailbox name too long");
    }
    Ok(())
}

/// Every ancestor of `name` (`a/b/c` → `a`, `a/b`).
pub(crate) fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIMITER).map(|(i, _)| &name[..i])
}

/// RFC 9051 §6.3.9: `*` matches anything, `%` anything but the delimiter. A leading
/// `INBOX` in either is case-insensitive (§5.1).
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let pattern = canonical_inbox(pattern);
    let name = canonical_inbox(name);
    glob(pattern.as_bytes(), name.as_bytes())
}

fn canonical_inbox(s: &str) -> std::borrow::Cow<'_, str> {
    let head = s.get(..5);
    let rest = s.get(5..).unwrap_or("");
    match head {
        Some(h)
            if h.eq_ignore_ascii_case("INBOX")
                && h != "INBOX"
                && (rest.is_empty() || rest.starts_with(DELIMITER)) =>
        {
            std::borrow::Cow::Owned(format!("INBOX{rest}"))
        }
        _ => std::borrow::Cow::Borrowed(s),
    }
}

fn glob(p: &[u8], n: &[u8]) -> bool {
    // Dynamic programming over (pattern, name) prefixes: O(|p|·|n|), no backtracking blow-up.
    // row[j]: the pattern prefix processed so far matches n[..j].
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &c in p {
        let mut next = vec![false; n.len() + 1];
        match c {
            b'*' | b'%' => {
                for j in 0..=n.len() {
                    next[j] = row[j] || (j > 0 && next[j - 1] && (c == b'*' || n[j - 1] != b'/'));
                }
            }
            _ => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "", "..", "../x", "a/../b", "~bob", "#shared", "/abs", "a//b", "a/", "x\u{1}y", "a*",
        ] {
            assert!(validate(name).is_err(), "{name:?} accepted");
        }
        for name in ["INBOX", "Archive/2024", "Entwürfe", "Other Users"] {
            assert!(validate(name).is_ok(), "{name:?} refused");
        }
    }

    #[test]
    fn wildcards_follow_rfc_9051() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "a"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/%", "INBOX/x"));
        assert!(!matches("Inboxes", "INBOX"));
        assert!(matches("*b*", "abc"));
        assert!(matches("%/%", "a/b"));
        assert!(!matches("a%c", "ab/c"));
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
    }
}
