//! Mailbox names: validation (the personal namespace only) and LIST pattern matching.

/// The hierarchy delimiter (RFC 9051 §5.1.1).
pub(crate) const DELIMITER: char = '/';

/// Most hierarchy levels in a mailbox name (`a/b/c` has 3).
pub(crate) const MAX_DEPTH: usize = 32;

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
    // Each level is a mailbox (CREATE makes the missing parents), so depth is bounded like
    // the number of mailboxes.
    if name.split(DELIMITER).count() > MAX_DEPTH {
        return Err("Mailbox hierarchy too deep");
    }
    Ok(())
}

/// Every ancestor of `name` (`a/b/c` → `a`, `a/b`).
pub(crate) fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIMITER).map(|(i, _)| &name[..i])
}

/// Longest LIST or LSUB pattern (reference and pattern together), in octets. A valid name is
/// at most 1000 octets and every literal octet of a pattern matches one octet of the name, so
/// nothing a client may want is refused.
pub(crate) const MAX_PATTERN: usize = 1024;

/// Patterns in one LIST command (RFC 5258 §3 allows a parenthesised list).
pub(crate) const MAX_PATTERNS: usize = 32;

/// Matching work one LIST or LSUB may cost, in cells of the (pattern × name) table below:
/// a command that would need more is refused before the work is done. Usual patterns cost
/// nothing (`*`, `%`, literal names, `Archive/%`: the literal head and tail decide) or the
/// length of their wildcard middle times the names they are tried on (`*foo*` against 10,000
/// names of 100 octets: 5 million); a pattern of many wildcards against many long names is
/// refused instead of burning a core (security issue 17). Measured in a debug build: 20
/// million cells took 0.47 s, so a refused command costs at most about a quarter second there.
pub(crate) const MATCH_BUDGET: u64 = 10_000_000;

/// Why a set of patterns is refused: too long, too many, or too costly to match.
pub(crate) const PATTERN_LIMIT: &str = "LIST pattern too long, too many or too costly";

/// LIST/LSUB patterns compiled for matching against an account's names within
/// [`MATCH_BUDGET`].
pub(crate) struct Matcher {
    patterns: Vec<Vec<u8>>,
    budget: u64,
    row: Vec<bool>,
    next: Vec<bool>,
}

impl Matcher {
    /// Compiles `reference` + each pattern: INBOX canonical (§5.1), runs of wildcards
    /// collapsed (`*%*%` is `*`, `%%` is `%`: they match the same names). Refused beyond
    /// [`MAX_PATTERNS`] or [`MAX_PATTERN`].
    pub(crate) fn new<'a>(
        reference: &str,
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Matcher, NameError> {
        let mut compiled = Vec::new();
        for pattern in patterns {
            if compiled.len() == MAX_PATTERNS {
                return Err(PATTERN_LIMIT);
            }
            let full = format!("{reference}{pattern}");
            if full.len() > MAX_PATTERN {
                return Err(PATTERN_LIMIT);
            }
            compiled.push(collapse(canonical_inbox(&full).as_bytes()));
        }
        Ok(Matcher {
            patterns: compiled,
            budget: MATCH_BUDGET,
            row: Vec::new(),
            next: Vec::new(),
        })
    }

    /// RFC 9051 §6.3.9: whether any pattern matches `name`; `*` matches anything, `%`
    /// anything but the delimiter. Err once the budget is spent.
    pub(crate) fn matches(&mut self, name: &str) -> Result<bool, NameError> {
        let name = canonical_inbox(name);
        for i in 0..self.patterns.len() {
            if self.glob(i, name.as_bytes())? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn glob(&mut self, pattern: usize, n: &[u8]) -> Result<bool, NameError> {
        let p = self.patterns[pattern].as_slice();
        // The literal head and tail must match exactly: most names are decided here.
        let is_wild = |c: &u8| matches!(c, b'*' | b'%');
        let head = p.iter().position(is_wild).unwrap_or(p.len());
        let Some(n) = n.strip_prefix(&p[..head]) else {
            return Ok(false);
        };
        let p = &p[head..];
        if p.is_empty() {
            return Ok(n.is_empty());
        }
        let tail = p.len() - p.iter().rposition(is_wild).map_or(0, |i| i + 1);
        let Some(n) = n.strip_suffix(&p[p.len() - tail..]) else {
            return Ok(false);
        };
        let p = &p[..p.len() - tail];
        match p {
            b"*" => return Ok(true),
            b"%" => return Ok(!n.contains(&b'/')),
            _ => {}
        }
        // Charged before the work: a refused command has not spent it.
        let cost = (p.len() as u64 + 1) * (n.len() as u64 + 1);
        self.budget = self.budget.checked_sub(cost).ok_or(PATTERN_LIMIT)?;
        Ok(table(p, n, &mut self.row, &mut self.next))
    }
}

/// Collapses each run of wildcards to one: `*` if the run holds one, else `%`.
fn collapse(p: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(p.len());
    for &c in p {
        match (c, out.last_mut()) {
            (b'*', Some(last @ (b'*' | b'%'))) => *last = b'*',
            (b'%', Some(b'*' | b'%')) => {}
            _ => out.push(c),
        }
    }
    out
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

/// Dynamic programming over (pattern, name) prefixes: O(|p|·|n|), no backtracking blow-up.
/// `row[j]`: the pattern prefix processed so far matches `n[..j]`.
fn table(p: &[u8], n: &[u8], row: &mut Vec<bool>, next: &mut Vec<bool>) -> bool {
    row.clear();
    row.resize(n.len() + 1, false);
    row[0] = true;
    for &c in p {
        next.clear();
        next.resize(n.len() + 1, false);
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
        std::mem::swap(row, next);
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

    fn matches(pattern: &str, name: &str) -> bool {
        Matcher::new("", [pattern])
            .and_then(|mut m| m.matches(name))
            .expect("within the limits")
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

    /// The plain recursive definition of RFC 9051 §6.3.9, exponential but obviously right.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| reference(rest, &n[i..])),
            Some((b'%', rest)) => (0..=n.len())
                .take_while(|&i| !n[..i].contains(&b'/'))
                .any(|i| reference(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && reference(rest, &n[1..]),
        }
    }

    fn words(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|w: &Vec<u8>| {
                    alphabet.iter().map(move |&c| {
                        let mut w = w.clone();
                        w.push(c);
                        w
                    })
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn matcher_agrees_with_the_definition_on_every_short_pattern_and_name() {
        let names = words(b"ab/", 5);
        for pattern in words(b"a/*%", 5) {
            let text = String::from_utf8(pattern.clone()).expect("ascii");
            let mut m = Matcher::new("", [text.as_str()]).expect("short pattern");
            for name in &names {
                let name_text = std::str::from_utf8(name).expect("ascii");
                assert_eq!(
                    m.matches(name_text).expect("within budget"),
                    reference(&pattern, name),
                    "{text:?} against {name_text:?}"
                );
            }
        }
    }

    #[test]
    fn wildcard_runs_collapse_so_they_cost_nothing() {
        let pattern = "*%".repeat(500);
        let name = "x".repeat(999);
        let mut m = Matcher::new("", [pattern.as_str()]).expect("1000 octets");
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            assert!(m.matches(&name).expect("within budget"));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(collapse(b"a%%b%*c*%d"), b"a%b*c*d");
    }

    #[test]
    fn patterns_are_bounded_in_length_number_and_matching_work() {
        let long = "a".repeat(MAX_PATTERN + 1);
        assert!(Matcher::new("", [long.as_str()]).is_err());
        assert!(Matcher::new(&"r".repeat(MAX_PATTERN), ["a"]).is_err());
        assert!(Matcher::new("", vec!["%"; MAX_PATTERNS + 1]).is_err());
        assert!(Matcher::new("", vec!["%"; MAX_PATTERNS]).is_ok());
        // Alternating wildcards and literals cannot collapse: each name costs a full table,
        // and the command is refused once the budget is spent, before the work.
        let pattern = "*a".repeat(200) + "*";
        let name = "b".repeat(999);
        let mut m = Matcher::new("", [pattern.as_str()]).expect("401 octets");
        let started = std::time::Instant::now();
        let mut refused = false;
        for _ in 0..1_000 {
            match m.matches(&name) {
                Ok(hit) => assert!(!hit),
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "budget never ran out");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deep_hierarchies_are_refused() {
        let deep = vec!["a"; MAX_DEPTH].join("/");
        assert!(validate(&deep).is_ok());
        assert!(validate(&format!("{deep}/a")).is_err());
    }
}
