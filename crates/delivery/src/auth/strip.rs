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
    let mut removed: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    // RFC 5322 §2.2: header fields up to the first empty line; a field continues on lines
    // starting with WSP (§2.2.3 folding).
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
        if claims(&data[pos..end], authserv_id) {
            removed.push((pos, end));
        }
        pos = end;
    }
    if removed.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut from = 0;
    for (start, end) in removed {
        out.extend_from_slice(&data[from..start]);
        from = end;
    }
    out.extend_from_slice(&data[from..]);
    Some(out)
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
