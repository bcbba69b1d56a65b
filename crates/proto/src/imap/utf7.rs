//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3), used on the wire unless UTF8=ACCEPT
//! (RFC 6855) is in effect.
//!
//! "printable US-ASCII characters, except for "&", represent themselves ... "&" is used to
//! shift to modified BASE64 and "-" to shift back to US-ASCII ... "&" itself is represented
//! by "&-" ... modified BASE64 ... with the modification that "," is used instead of "/"."
//! Decoding is strict, so that every name has exactly one wire form: printable ASCII must not
//! be base64-encoded, adjacent base64 runs must be merged, padding bits must be zero.

/// Why a mailbox name is not valid modified UTF-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Utf7Error {
    /// An octet above US-ASCII (8-bit).
    #[error("mailbox name has a non-ASCII octet; use modified UTF-7")]
    NotAscii,
    /// A US-ASCII control character (0x00–0x1F, 0x7F): not printable, so not modified
    /// UTF-7 either, and no mailbox name may contain one.
    #[error("mailbox name has a control character")]
    Control,
    /// `&` without the closing `-`.
    #[error("unterminated modified UTF-7 shift sequence")]
    Unterminated,
    /// A character outside the modified BASE64 alphabet.
    #[error("invalid character in modified UTF-7 shift sequence")]
    BadBase64,
    /// Leftover bits that do not make a UTF-16 unit, or non-zero padding bits.
    #[error("bad padding in modified UTF-7 shift sequence")]
    BadPadding,
    /// Unpaired UTF-16 surrogates.
    #[error("invalid UTF-16 in modified UTF-7 shift sequence")]
    BadUtf16,
    /// Encoded printable ASCII, or two shift sequences in a row.
    #[error("non-canonical modified UTF-7")]
    NotCanonical,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn is_printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Encodes a UTF-8 mailbox name as modified UTF-7.
pub fn encode_modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_printable(c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(pending: &mut Vec<u16>, out: &mut String) {
    if pending.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for unit in pending.drain(..) {
        acc = (acc << 16) | u32::from(unit);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    }))
}

/// Decodes a modified UTF-7 mailbox name into UTF-8.
pub fn decode_modified_utf7(input: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut after_shift = false;
    while let Some(&b) = input.get(i) {
        if b.is_ascii_control() {
            return Err(Utf7Error::Control);
        }
        if !b.is_ascii() {
            return Err(Utf7Error::NotAscii);
        }
        if b != b'&' {
            out.push(char::from(b));
            after_shift = false;
            i += 1;
            continue;
        }
        let rest = input.get(i + 1..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&c| c == b'-')
            .ok_or(Utf7Error::Unterminated)?;
        let run = rest.get(..len).unwrap_or_default();
        i += len + 2;
        if run.is_empty() {
            out.push('&');
            after_shift = false;
            continue;
        }
        if after_shift {
            return Err(Utf7Error::NotCanonical);
        }
        let mut units = Vec::with_capacity(run.len() * 6 / 16);
        let mut acc: u32 = 0;
        let mut bits = 0u32;
        for &c in run {
            acc = (acc << 6) | sextet(c).ok_or(Utf7Error::BadBase64)?;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push(((acc >> bits) & 0xffff) as u16);
                acc &= (1 << bits) - 1;
            }
        }
        if bits >= 6 || acc != 0 {
            return Err(Utf7Error::BadPadding);
        }
        let decoded = String::from_utf16(&units).map_err(|_| Utf7Error::BadUtf16)?;
        if decoded.chars().any(is_printable) {
            return Err(Utf7Error::NotCanonical);
        }
        out.push_str(&decoded);
        after_shift = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example_round_trips() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
        let name = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        assert_eq!(encode_modified_utf7(name), wire);
        assert_eq!(decode_modified_utf7(wire.as_bytes()).unwrap(), name);
    }

    #[test]
    fn ampersand_is_shifted_as_amp_dash() {
        assert_eq!(encode_modified_utf7("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(
            decode_modified_utf7(b"Tom &- Jerry").unwrap(),
            "Tom & Jerry"
        );
        assert_eq!(decode_modified_utf7(b"&-&-").unwrap(), "&&");
    }

    #[test]
    fn non_bmp_characters_use_surrogate_pairs() {
        let name = "mail \u{1F4EC} box \u{10FFFF}";
        let wire = encode_modified_utf7(name);
        assert!(wire.is_ascii());
        assert_eq!(decode_modified_utf7(wire.as_bytes()).unwrap(), name);
    }

    #[test]
    fn umlauts_round_trip() {
        let name = "Entwürfe";
        assert_eq!(encode_modified_utf7(name), "Entw&APw-rfe");
        assert_eq!(decode_modified_utf7(b"Entw&APw-rfe").unwrap(), name);
    }

    #[test]
    fn invalid_sequences_are_rejected() {
        assert_eq!(
            decode_modified_utf7(b"&U,BTFw"),
            Err(Utf7Error::Unterminated)
        );
        assert_eq!(decode_modified_utf7(b"&U/BTFw-"), Err(Utf7Error::BadBase64));
        assert_eq!(
            decode_modified_utf7("ü".as_bytes()),
            Err(Utf7Error::NotAscii)
        );
        assert_eq!(decode_modified_utf7(b"a\x01b"), Err(Utf7Error::Control));
        assert_eq!(decode_modified_utf7(b"a\x7fb"), Err(Utf7Error::Control));
        assert_eq!(decode_modified_utf7(b"a\tb"), Err(Utf7Error::Control));
        // "a" encoded: printable ASCII must represent itself.
        assert_eq!(decode_modified_utf7(b"&AGE-"), Err(Utf7Error::NotCanonical));
        // Two adjacent shifts must have been one.
        assert_eq!(
            decode_modified_utf7(b"&APw-&APw-"),
            Err(Utf7Error::NotCanonical)
        );
        // Non-zero padding bits.
        assert_eq!(decode_modified_utf7(b"&APx-"), Err(Utf7Error::BadPadding));
        // A lone high surrogate.
        assert_eq!(decode_modified_utf7(b"&2D0-"), Err(Utf7Error::BadUtf16));
    }
}
