//! Mail addresses and domain names as the directory and the protocols see them.
//!
//! Parsing follows RFC 5321 §4.1.2 (`Mailbox = Local-part "@" Domain`) with the UTF-8
//! extensions of RFC 6531 §3.3 (SMTPUTF8): `atext` and domain labels may contain any
//! non-ASCII UTF-8 character. Address literals (`[192.0.2.1]`) are not accepted as
//! local domains.

use std::fmt;
use std::str::FromStr;

/// Why an address or domain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The input has no `@` separating local part and domain.
    #[error("missing '@' in address")]
    MissingAt,
    /// The local part is empty, too long or has characters outside RFC 5321 §4.1.2.
    #[error("invalid local part: {0}")]
    LocalPart(&'static str),
    /// The domain is empty, too long or has an invalid label.
    #[error("invalid domain: {0}")]
    Domain(&'static str),
}

/// A domain name in one spelling: lowercase, internationalised labels as A-labels (`xn--`,
/// RFC 5890 §2.3.2.1). Labels are 1–63 octets, the whole name at most 253 octets (RFC 1035
/// §2.3.4); labels are letters, digits and hyphens (not at either end), or UTF-8 U-labels
/// (RFC 6531), which are converted.
///
/// Why A-labels: `bücher.test`, `BÜCHER.test` and `xn--bcher-kva.test` are one domain, so
/// every comparison (local or relayed, directory keys, aliases) must see one form. The A-label
/// is the form DNS and non-SMTPUTF8 peers use, it is ASCII (no Unicode normalisation left to
/// get wrong in keys and paths), and decoding it checks that an `xn--` label is valid
/// punycode (RFC 5891 §5.4), so a malformed one is a syntax error, not another domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(String);

impl Domain {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Domain {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let name = input.strip_suffix('.').unwrap_or(input).to_lowercase();
        if name.is_empty() {
            return Err(AddressError::Domain("empty"));
        }
        if name.len() > 253 {
            return Err(AddressError::Domain("longer than 253 octets"));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(AddressError::Domain("empty label"));
            }
            if label.len() > 63 {
                return Err(AddressError::Domain("label longer than 63 octets"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(AddressError::Domain("label starts or ends with '-'"));
            }
            if !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
            {
                return Err(AddressError::Domain(
                    "label has a character other than letters, digits and '-'",
                ));
            }
        }
        if name.is_ascii() && !name.split('.').any(is_a_label) {
            return Ok(Domain(name));
        }
        // UTS #46 processing (case folding, NFC) and IDNA2008 validity (RFC 5891 §5.4), strict:
        // STD3 characters only and DNS lengths, re-checked on the longer A-label form.
        idna::domain_to_ascii_strict(&name)
            .map(Domain)
            .map_err(|_| AddressError::Domain("not a valid internationalized domain name"))
    }
}

/// RFC 5890 §2.3.1: an ACE prefix, case-insensitively (the name is lowercase here).
fn is_a_label(label: &str) -> bool {
    label.starts_with("xn--")
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox address `local@domain`.
///
/// `local` holds the local part's value: for a quoted local part (`"john doe"@example.com`)
/// the quotes and backslash escapes are removed. Two addresses are the same mailbox when
/// their [`Address::normalized`] forms are equal: Tern treats local parts case-insensitively,
/// as every common server does (RFC 5321 §2.4 lets the receiving host decide).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: Domain,
}

/// RFC 5321 §4.5.3.1.1: the local part is at most 64 octets.
const MAX_LOCAL_PART: usize = 64;

impl Address {
    pub fn new(local: &str, domain: Domain) -> Result<Self, AddressError> {
        validate_local_value(local)?;
        Ok(Self {
            local: local.to_owned(),
            domain,
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The lookup key: lowercase local part and domain, local part quoted only if it must be.
    pub fn normalized(&self) -> String {
        format!(
            "{}@{}",
            render_local(&self.local.to_lowercase()),
            self.domain
        )
    }

    /// Splits the local part at the first `separator` (sub-addressing, RFC 5233):
    /// `user+tag` gives `Some(("user", "tag"))`.
    pub fn subaddress(&self, separator: char) -> Option<(&str, &str)> {
        self.local
            .split_once(separator)
            .filter(|(user, _)| !user.is_empty())
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let at = input.rfind('@').ok_or(AddressError::MissingAt)?;
        let (raw_local, raw_domain) = (&input[..at], &input[at + 1..]);
        let domain = raw_domain.parse()?;
        let local = parse_local_part(raw_local)?;
        Ok(Self { local, domain })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", render_local(&self.local), self.domain)
    }
}

/// RFC 5322 §3.2.3 `atext`, extended by RFC 6531 §3.3 with non-ASCII UTF-8.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_string(local: &str) -> bool {
    !local.is_empty()
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// `Local-part = Dot-string / Quoted-string` (RFC 5321 §4.1.2).
fn parse_local_part(raw: &str) -> Result<String, AddressError> {
    if raw.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPart("longer than 64 octets"));
    }
    if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or(AddressError::LocalPart("unterminated quoted string"))?;
        // Quoted-string = DQUOTE *QcontentSMTP DQUOTE; QcontentSMTP = qtextSMTP / quoted-pairSMTP
        let mut value = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) if (' '..='~').contains(&escaped) => value.push(escaped),
                    _ => return Err(AddressError::LocalPart("invalid quoted pair")),
                },
                '"' => return Err(AddressError::LocalPart("unescaped quote")),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    return Err(AddressError::LocalPart("control character"));
                }
                c => value.push(c),
            }
        }
        validate_local_value(&value)?;
        Ok(value)
    } else if is_dot_string(raw) {
        check_written_length(raw)?;
        Ok(raw.to_owned())
    } else {
        Err(AddressError::LocalPart("not a dot-atom or quoted string"))
    }
}

fn validate_local_value(value: &str) -> Result<(), AddressError> {
    if value.is_empty() {
        return Err(AddressError::LocalPart("empty"));
    }
    if value.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPart("longer than 64 octets"));
    }
    if value.chars().any(|c| (c as u32) < 0x20 || c == '\x7f') {
        return Err(AddressError::LocalPart("control character"));
    }
    check_written_length(value)
}

/// RFC 5321 §4.5.3.1.1 limits the local-part as written (quotes and escapes included) to 64
/// octets. Both forms Tern writes must fit, so that each parses again: `Display`, and
/// `normalized()` — the directory's stored key — which lowercases, and lowercase can take more
/// octets than the original (`İ` is 2 octets, its lowercase `i̇` 3).
fn check_written_length(value: &str) -> Result<(), AddressError> {
    if render_local(value).len() > MAX_LOCAL_PART
        || render_local(&value.to_lowercase()).len() > MAX_LOCAL_PART
    {
        return Err(AddressError::LocalPart("longer than 64 octets"));
    }
    Ok(())
}

fn render_local(local: &str) -> String {
    if is_dot_string(local) {
        local.to_owned()
    } else {
        let mut quoted = String::with_capacity(local.len() + 2);
        quoted.push('"');
        for c in local.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn plain_address_is_normalised_to_lowercase() {
        let a = addr("John.Doe@Example.COM");
        assert_eq!(a.local(), "John.Doe");
        assert_eq!(a.domain().as_str(), "example.com");
        assert_eq!(a.normalized(), "john.doe@example.com");
    }

    #[test]
    fn quoted_local_part_keeps_its_value_and_renders_quoted() {
        let a = addr(r#""john doe"@example.com"#);
        assert_eq!(a.local(), "john doe");
        assert_eq!(a.to_string(), r#""john doe"@example.com"#);
        // A quoted local part that needs no quotes is the same mailbox as the plain one.
        assert_eq!(
            addr(r#""john"@example.com"#).normalized(),
            "john@example.com"
        );
    }

    #[test]
    fn relay_tricks_stay_local_parts() {
        // RFC 5321 §3.6.1 source routes and %-hacks are just characters of the local part.
        assert_eq!(
            addr("user%other.test@example.com").local(),
            "user%other.test"
        );
        assert_eq!(
            addr(r#""user@other.test"@example.com"#).domain().as_str(),
            "example.com"
        );
    }

    #[test]
    fn utf8_addresses_are_accepted() {
        let a = addr("josé@exämple.com");
        assert_eq!(a.normalized(), "josé@xn--exmple-cua.com");
    }

    #[test]
    fn every_spelling_of_an_idn_domain_is_the_a_label() {
        for spelling in [
            "bücher.test",
            "BÜCHER.TEST",
            "xn--bcher-kva.test",
            "XN--BCHER-KVA.test.",
        ] {
            let domain: Domain = spelling.parse().expect(spelling);
            assert_eq!(domain.as_str(), "xn--bcher-kva.test", "{spelling}");
        }
        // Not punycode (RFC 3492 §6.2) or not a valid label once decoded (RFC 5891 §5.4).
        for bad in ["xn--a.test", "xn--bcher-kva-.test", "xn--.test"] {
            assert!(bad.parse::<Domain>().is_err(), "{bad}");
        }
    }

    #[test]
    fn subaddress_splits_at_first_separator() {
        assert_eq!(
            addr("user+tag+x@example.com").subaddress('+'),
            Some(("user", "tag+x"))
        );
        assert_eq!(addr("+tag@example.com").subaddress('+'), None);
        assert_eq!(addr("user@example.com").subaddress('+'), None);
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "user",
            "@example.com",
            "user@",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "\"unterminated@example.com",
            "user@-bad.com",
            "user@exa_mple.com",
            "user@example..com",
            "user@[192.0.2.1]",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad:?} parsed");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(long_local.parse::<Address>().is_err());
        let long_label = format!("user@{}.com", "a".repeat(64));
        assert!(long_label.parse::<Address>().is_err());
    }

    #[test]
    fn every_written_form_of_an_address_parses_again() {
        // Found by fuzz/fuzz_targets/address.rs: 'İ' (2 octets) lowercases to "i̇" (3), so a
        // 64-octet local part had a 96-octet lookup key that no longer parsed (an alias to it
        // was stored and then skipped at delivery).
        let grows = format!("{}@example.com", "İ".repeat(32));
        assert!(grows.parse::<Address>().is_err());
        let fits = addr(&format!("{}@example.com", "İ".repeat(21)));
        assert_eq!(addr(&fits.normalized()).normalized(), fits.normalized());
        assert_eq!(addr(&fits.to_string()), fits);
        // A value that needs quoting counts with its quotes and escapes: 40 '"' are 82 octets
        // written.
        let domain: Domain = "example.com".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(Address::new(&"\"".repeat(40), domain.clone()).is_err());
        assert!(Address::new(&"\"".repeat(31), domain).is_ok());
    }

    #[test]
    fn domain_trailing_dot_is_dropped() {
        assert_eq!(
            "Example.com.".parse::<Domain>().map(|d| d.to_string()),
            Ok("example.com".to_owned())
        );
    }
}
