//! RFC 8601 §5: an `Authentication-Results:` field that claims our authserv-id but arrived with the
//! message is a forgery (or a leftover) and is removed before delivery, so users and filters can
//! trust every A-R field naming us. The same holds for the fields our filter writes
//! (`X-Spam-*`, `X-Virus-*`): a sender's `X-Spam-Status: No` or `X-Virus-Scan: clean` must not
//! reach a user's client rules or Sieve script as if we had written it. Everything else stays
//! byte for byte.

/// The message without the top-level `Authentication-Results:` fields whose authserv-id is
/// `authserv_id` (ASCII case-insensitive) and without any `X-Spam-*`/`X-Virus-*` field; `None`
/// when there is none (no copy made).
pub(crate) fn strip_our_results(data: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let removed: Vec<(usize, usize)> = top_fields(data)
        .into_iter()
        .filter(|&(start, end)| claims(&data[start..end], authserv_id))
        .collect();
    without(data, &removed)
}

/// The message as DKIM verification sees it: at most `max` `DKIM-Signature:` fields, the topmost
/// (the most recent signers, RFC 6376 §5.4), the rest removed; `None` when there are no more than
/// `max` (no copy made). Each signature costs a body hash (a different `l=` or canonicalization
/// makes another pass over the body) and a DNS query to a domain the sender chose, so a message
/// with thousands of them would make us do that work and send those queries. RFC 6376 §6.1
/// lets a verifier limit the signatures it checks; the ones left out are simply not evaluated,
/// as if absent (a signature is never a reason to refuse mail, only one that passes counts).
pub(crate) fn limit_dkim_signatures(data: &[u8], max: usize) -> Option<Vec<u8>> {
    let removed: Vec<(usize, usize)> = top_fields(data)
        .into_iter()
        .filter(|&(start, end)| is_dkim_signature(&data[start..end]))
        .skip(max)
        .collect();
    without(data, &removed)
}

/// The (start, end) octet ranges of the header fields, each with its folded continuation lines
/// and line end. RFC 5322 §2.2: header fields up to the first empty line; a field continues on
/// lines starting with WSP (§2.2.3 folding).
fn top_fields(data: &[u8]) -> Vec<(usize, usize)> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            break;
        }
        let mut end = pos;
        loop {
            match data[end..].iter().position(|&b| b == b'\n') {
                Some(nl) => end += nl + 1,
                None => {
                    end = data.len();
                    break;
                }
            }
            if !matches!(data.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        fields.push((pos, end));
        pos = end;
    }
    fields
}

/// `data` without the (ordered, disjoint) ranges `removed`; `None` when there is nothing to remove.
fn without(data: &[u8], removed: &[(usize, usize)]) -> Option<Vec<u8>> {
    if removed.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut from = 0;
    for &(start, end) in removed {
        out.extend_from_slice(&data[from..start]);
        from = end;
    }
    out.extend_from_slice(&data[from..]);
    Some(out)
}

/// Whether `field` is a `DKIM-Signature:` field (RFC 6376 §3.5; names are case-insensitive).
fn is_dkim_signature(field: &[u8]) -> bool {
    field.iter().position(|&b| b == b':').is_some_and(|colon| {
        field[..colon]
            .trim_ascii_end()
            .eq_ignore_ascii_case(b"DKIM-Signature")
    })
}

/// Whether one (possibly folded) field is an A-R field for `authserv_id`.
///
/// RFC 8601 §2.2: `authres-header-field = "Authentication-Results:" authres-payload`,
/// `authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) [CFWS] CRLF`,
/// `authserv-id = value` (RFC 2045 token or quoted-string).
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = field[..colon].trim_ascii_end();
    if has_prefix(name, b"X-Spam-") || has_prefix(name, b"X-Virus-") {
        return true;
    }
    if !name.eq_ignore_ascii_case(b"Authentication-Results") {
        return false;
    }
    let mut value = &field[colon + 1..];
    // Skip CFWS: whitespace, line breaks and (nested) comments.
    loop {
        value = value.trim_ascii_start();
        if value.first() != Some(&b'(') {
            break;
        }
        let mut depth = 0usize;
        let mut i = 0;
        while i < value.len() {
            match value[i] {
                b'\\' => i += 1,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        value = value.get(i + 1..).unwrap_or_default();
    }
    let id: Vec<u8> = if value.first() == Some(&b'"') {
        let inner = &value[1..];
        let close = inner.iter().position(|&b| b == b'"').unwrap_or(inner.len());
        inner[..close].to_vec()
    } else {
        value
            .iter()
            .take_while(|&&b| !(b == b';' || b == b'(' || b.is_ascii_whitespace()))
            .copied()
            .collect()
    };
    id.eq_ignore_ascii_case(authserv_id.as_bytes())
}

/// ASCII case-insensitive prefix test of a field name.
fn has_prefix(name: &[u8], prefix: &[u8]) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fields_claiming_our_authserv_id_are_removed_byte_exactly() {
        let msg = b"Received: x\r\n\
            Authentication-Results: MX.Example.Test; spf=pass\r\n\
            \tsmtp.mailfrom=a@b\r\n\
            Subject: hi\r\n\
            authentication-results : (comment (nested)) mx.example.test ; dkim=pass\r\n\
            Authentication-Results: other.example; dkim=pass (mx.example.test)\r\n\
            Authentication-Results: \"mx.example.test\"; none\r\n\
            \r\n\
            Authentication-Results: mx.example.test; in the body\r\n";
        let out = strip_our_results(msg, "mx.example.test").expect("stripped");
        assert_eq!(
            out,
            b"Received: x\r\n\
            Subject: hi\r\n\
            Authentication-Results: other.example; dkim=pass (mx.example.test)\r\n\
            \r\n\
            Authentication-Results: mx.example.test; in the body\r\n"
        );
    }

    #[test]
    fn sender_supplied_spam_and_virus_fields_are_removed_whatever_their_case() {
        let msg = b"X-Spam-Status: No, score=-100\r\n\
            Subject: hi\r\n\
            x-spam-score: -100\r\n\
            X-Virus-Scan: clean\r\n\
            \t(folded)\r\n\
            X-Spamd-Bar: +\r\n\
            X-Virus: no\r\n\
            \r\n\
            X-Spam-Status: in the body stays\r\n";
        let out = strip_our_results(msg, "mx.example.test").expect("stripped");
        assert_eq!(
            out,
            b"Subject: hi\r\n\
            X-Spamd-Bar: +\r\n\
            X-Virus: no\r\n\
            \r\n\
            X-Spam-Status: in the body stays\r\n"
        );
    }

    #[test]
    fn only_the_topmost_dkim_signatures_are_kept_for_verification() {
        let msg = b"DKIM-Signature: v=1; d=a\r\n\tb=x\r\n\
            Subject: s\r\n\
            dkim-signature : v=1; d=b\r\n\
            DKIM-Signature: v=1; d=c\r\n\
            To: t\r\n\
            \r\n\
            DKIM-Signature: in the body\r\n";
        assert_eq!(limit_dkim_signatures(msg, 3), None);
        let out = limit_dkim_signatures(msg, 2).expect("one removed");
        assert_eq!(
            out,
            b"DKIM-Signature: v=1; d=a\r\n\tb=x\r\n\
            Subject: s\r\n\
            dkim-signature : v=1; d=b\r\n\
            To: t\r\n\
            \r\n\
            DKIM-Signature: in the body\r\n"
        );
        assert_eq!(
            limit_dkim_signatures(msg, 0).expect("all removed"),
            b"Subject: s\r\nTo: t\r\n\r\nDKIM-Signature: in the body\r\n"
        );
    }

    #[test]
    fn a_message_without_our_field_is_not_copied() {
        let msg = b"Authentication-Results: mx.example.test.evil; x\r\n\r\nbody";
        assert_eq!(strip_our_results(msg, "mx.example.test"), None);
        assert_eq!(strip_our_results(b"", "mx.example.test"), None);
        assert_eq!(
            strip_our_results(b"Authentication-Results:", "mx.example.test"),
            None
        );
    }
}
