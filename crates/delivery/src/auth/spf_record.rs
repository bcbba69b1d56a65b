//! The checks on a domain's SPF record set that `mail_auth` leaves out: it evaluates the first
//! record that parses and skips terms it cannot read, where RFC 7208 wants a permerror.

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{Name, RData};
use mail_auth::{SpfOutput, SpfResult};

/// `output`, `mail_auth`'s verdict for `domain`, turned into a permerror when the record set
/// breaks RFC 7208 (see [`record_set_error`]). Only a verdict reached by evaluating a record is
/// checked: after a DNS failure (temperror) asking again would double the wait for nothing.
pub(crate) async fn checked(
    resolver: &TokioResolver,
    domain: &str,
    output: SpfOutput,
) -> SpfOutput {
    match output.result() {
        SpfResult::Pass | SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => {
            match record_set_error(resolver, domain).await {
                Some(error) => output.with_result(error),
                None => output,
            }
        }
        SpfResult::TempError | SpfResult::PermError | SpfResult::None => output,
    }
}

/// `Some(PermError)` when `domain`'s TXT records hold more than one SPF record (RFC 7208 §4.5)
/// or one with a byte outside printable US-ASCII (§4.6: the ABNF of §12 has no other, and a
/// syntax error anywhere is a permerror, even after a matching mechanism). `None` leaves the
/// verdict to `mail_auth`, also when the lookup fails: it asks again and gets the same error,
/// which it maps to temperror or none as §4.4 says. The second query is answered from the
/// resolver's cache.
async fn record_set_error(resolver: &TokioResolver, domain: &str) -> Option<SpfResult> {
    let name = Name::from_str_relaxed(domain).ok()?;
    let lookup = resolver.txt_lookup(name).await.ok()?;
    let records = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(txt.txt_data.concat()),
            _ => None,
        });
    verdict(records)
}

/// The decision of [`record_set_error`] over the records' bytes (character-strings joined,
/// RFC 7208 §3.3).
fn verdict(records: impl Iterator<Item = Vec<u8>>) -> Option<SpfResult> {
    let spf: Vec<Vec<u8>> = records.filter(|r| is_spf(r)).collect();
    let broken = |r: &Vec<u8>| r.iter().any(|b| !(b' '..=b'~').contains(b));
    (spf.len() > 1 || spf.iter().any(broken)).then_some(SpfResult::PermError)
}

/// RFC 7208 §4.5: an SPF record begins with "v=spf1" (case-insensitive) followed by a space or
/// nothing.
fn is_spf(record: &[u8]) -> bool {
    record.len() >= 6
        && record[..6].eq_ignore_ascii_case(b"v=spf1")
        && record.get(6).is_none_or(|b| *b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(records: &[&[u8]]) -> Option<SpfResult> {
        verdict(records.iter().map(|r| r.to_vec()))
    }

    #[test]
    fn two_spf_records_or_a_non_ascii_byte_are_permerror() {
        assert_eq!(
            check(&[b"v=spf1 -all", b"V=SPF1 ~all"]),
            Some(SpfResult::PermError)
        );
        assert_eq!(check(&[b"v=spf1 a \xff -all"]), Some(SpfResult::PermError));
        assert_eq!(check(&[b"v=spf1 a\t-all"]), Some(SpfResult::PermError));
        assert_eq!(check(&[b"v=spf1 -all", b"v=spf10 x", b"\xff other"]), None);
        assert_eq!(check(&[b"v=spf1"]), None);
        assert_eq!(check(&[]), None);
    }
}
