//! Mail addresses and domain names (tern-common `Address`, `Domain`) on arbitrary text.
//!
//! Parsing must not panic, and what parses must survive its own rendering: `Display` output
//! parses back to the same value, `normalized()` is a fixed point, and `Address::new` accepts
//! the parts of a parsed address. These are the forms the directory stores and compares, so a
//! rendering that parses differently would let two spellings of one mailbox diverge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_common::{Address, Domain};

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(domain) = text.parse::<Domain>() {
        let shown = domain.to_string();
        let again: Domain = shown
            .parse()
            .unwrap_or_else(|e| panic!("domain {shown:?} does not parse back: {e}"));
        assert_eq!(again, domain, "domain {text:?} rendered as {shown:?}");
    }
    if let Ok(address) = text.parse::<Address>() {
        let shown = address.to_string();
        let again: Address = shown
            .parse()
            .unwrap_or_else(|e| panic!("address {shown:?} does not parse back: {e}"));
        assert_eq!(again, address, "address {text:?} rendered as {shown:?}");

        let normalized = address.normalized();
        let parsed: Address = normalized
            .parse()
            .unwrap_or_else(|e| panic!("normalized {normalized:?} does not parse: {e}"));
        assert_eq!(
            parsed.normalized(),
            normalized,
            "normalizing is not idempotent"
        );

        let rebuilt = Address::new(address.local(), address.domain().clone());
        assert_eq!(
            rebuilt.as_ref(),
            Ok(&address),
            "Address::new refuses parsed parts"
        );
        if let Some((user, tag)) = address.subaddress('+') {
            assert!(!user.is_empty());
            assert_eq!(format!("{user}+{tag}"), address.local());
        }
    }
}
