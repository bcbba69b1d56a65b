//! `[mail_auth]`: email authentication — DKIM signing of our users' mail and our DSNs, and SPF,
//! DKIM, DMARC, ARC and iprev verification of incoming mail. (Login settings are `[auth]`,
//! [`super::AuthConfig`].) Raw form, typed form and validation live together here.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

use super::ConfigError;

/// Email authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAuthConfig {
    /// Verify SPF, DKIM, DMARC, ARC and iprev on mail arriving on port 25 and add an
    /// `Authentication-Results:` field. Default: `true` — without it forged mail reaches users.
    pub verify: bool,
    /// Verify mail arriving over LMTP too. Default: `false`: the LMTP client is usually a local
    /// MTA that already authenticated the message (and the client IP is its own, not the sender's).
    pub verify_lmtp: bool,
    /// DKIM-sign what our users submit and the DSNs we generate, with every key found under
    /// `<data_dir>/dkim/<domain>/`. Default: `true`; a domain without keys is sent unsigned (logged).
    pub sign: bool,
    /// Selector `tern dkim generate` uses when none is given, and the one signing prefers when a
    /// domain has keys under several selectors. Default: `tern` (DNS names `tern-rsa._domainkey.…`
    /// and `tern-ed._domainkey.…`).
    pub dkim_selector: String,
    /// What a DMARC failure under `p=reject` does. Default: [`DmarcRejectAction::Reject`] —
    /// `550 5.7.1` at end of DATA, as the domain owner asked (RFC 7489 §6.3).
    pub dmarc_reject: DmarcRejectAction,
    /// What an SPF `fail` (`-all`) of the MAIL FROM identity does on its own. Default:
    /// [`SpfFailAction::None`]: DMARC and the spam filter decide (forwarded mail fails SPF
    /// legitimately; RFC 7208 §8.4 leaves the choice to the receiver). With `Junk` or `Reject`,
    /// an SPF `temperror` (DNS failure) defers with `451 4.7.24` (RFC 7208 §8.6) instead of
    /// letting through what a `fail` would have stopped; `permerror` never refuses.
    pub spf_fail: SpfFailAction,
    /// Client addresses (`ip` or `ip/prefix`) of relays we trust, e.g. a filtering gateway in front
    /// of Tern. Mail from them is not verified (SPF would check the relay, not the sender) and gets
    /// no `Authentication-Results:` of ours. Default: none — loopback is NOT trusted, so mail on
    /// port 25 is verified whoever sends it (DESIGN.md).
    pub trusted_relays: Vec<Cidr>,
}

impl Default for MailAuthConfig {
    fn default() -> Self {
        MailAuthConfig {
            verify: true,
            verify_lmtp: false,
            sign: true,
            dkim_selector: "tern".to_owned(),
            dmarc_reject: DmarcRejectAction::Reject,
            spf_fail: SpfFailAction::None,
            trusted_relays: Vec::new(),
        }
    }
}

impl MailAuthConfig {
    /// Whether `ip` is one of the trusted relays.
    pub fn is_trusted_relay(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_relays.iter().any(|c| c.contains(ip))
    }
}

/// What a DMARC `p=reject` failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmarcRejectAction {
    /// Refuse the message at end of DATA with `550 5.7.1`.
    #[default]
    Reject,
    /// Deliver it into the recipients' Junk mailboxes instead.
    Quarantine,
}

/// What an SPF `fail` result does on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpfFailAction {
    /// Nothing beyond the `Authentication-Results:` field and the spam filter's rule.
    #[default]
    None,
    /// Deliver into Junk.
    Junk,
    /// Refuse at end of DATA with `550 5.7.23` (RFC 7372 §3.2).
    Reject,
}

/// An IP network: an address and a prefix length (`192.0.2.0/24`, `2001:db8::/32`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network (an IPv4 address never matches an IPv6 network).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or network (ip/prefix)"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailAuth {
    pub verify: Option<bool>,
    pub verify_lmtp: Option<bool>,
    pub sign: Option<bool>,
    pub dkim_selector: Option<String>,
    /// `reject` or `quarantine`.
    pub dmarc_reject: Option<String>,
    /// `none`, `junk` or `reject`.
    pub spf_fail: Option<String>,
    pub trusted_relays: Option<Vec<String>>,
}

/// Raw → typed; every problem is returned with its key path.
pub(super) fn validate(raw: RawMailAuth) -> (MailAuthConfig, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let d = MailAuthConfig::default();
    let dkim_selector = match raw.dkim_selector {
        // RFC 6376 §3.1: selector = sub-domain *( "." sub-domain ); we keep it to one label of
        // letters, digits and hyphens, which every DNS interface accepts.
        Some(s)
            if !s.is_empty()
                && s.len() <= 50
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !s.starts_with('-') =>
        {
            s.to_ascii_lowercase()
        }
        Some(s) => {
            errors.push(ConfigError::new(
                "mail_auth.dkim_selector",
                format!("{s:?}: expected 1 to 50 letters, digits or hyphens"),
            ));
            d.dkim_selector.clone()
        }
        None => d.dkim_selector.clone(),
    };
    let dmarc_reject = match raw.dmarc_reject.as_deref() {
        None | Some("reject") => DmarcRejectAction::Reject,
        Some("quarantine") => DmarcRejectAction::Quarantine,
        Some(other) => {
            errors.push(ConfigError::new(
                "mail_auth.dmarc_reject",
                format!("unknown action {other:?}; expected \"reject\" or \"quarantine\""),
            ));
            d.dmarc_reject
        }
    };
    let spf_fail = match raw.spf_fail.as_deref() {
        None | Some("none") => SpfFailAction::None,
        Some("junk") => SpfFailAction::Junk,
        Some("reject") => SpfFailAction::Reject,
        Some(other) => {
            errors.push(ConfigError::new(
                "mail_auth.spf_fail",
                format!("unknown action {other:?}; expected \"none\", \"junk\" or \"reject\""),
            ));
            d.spf_fail
        }
    };
    let mut trusted_relays = Vec::new();
    for (i, s) in raw.trusted_relays.unwrap_or_default().iter().enumerate() {
        match s.parse::<Cidr>() {
            Ok(c) => trusted_relays.push(c),
            Err(m) => errors.push(ConfigError::new(
                format!("mail_auth.trusted_relays[{i}]"),
                m,
            )),
        }
    }
    let config = MailAuthConfig {
        verify: raw.verify.unwrap_or(d.verify),
        verify_lmtp: raw.verify_lmtp.unwrap_or(d.verify_lmtp),
        sign: raw.sign.unwrap_or(d.sign),
        dkim_selector,
        dmarc_reject,
        spf_fail,
        trusted_relays,
    };
    (config, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, crate::config::ConfigErrors> {
        let text = format!("[tls]\nself_signed = true\n{text}");
        Config::from_toml_str(&text, std::path::Path::new("/etc/tern"))
    }

    #[test]
    fn mail_auth_defaults_apply_without_a_table() {
        let c = parse("").expect("valid");
        assert_eq!(c.mail_auth, MailAuthConfig::default());
        assert!(
            !c.mail_auth
                .is_trusted_relay("127.0.0.1".parse().expect("ip"))
        );
    }

    #[test]
    fn example_mail_auth_table_spells_out_the_defaults() {
        let example = include_str!("../../../../tern.example.toml");
        let c = Config::from_toml_str(example, std::path::Path::new("/etc/tern"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.mail_auth, MailAuthConfig::default());
    }

    #[test]
    fn trusted_relays_match_networks_and_mapped_addresses() {
        let c = parse(
            "[mail_auth]\ntrusted_relays = [\"127.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n\
             dmarc_reject = \"quarantine\"\nspf_fail = \"junk\"",
        )
        .expect("valid");
        let a = &c.mail_auth;
        for ip in [
            "127.1.2.3",
            "::ffff:127.0.0.1",
            "2001:db8:1::5",
            "192.0.2.7",
        ] {
            assert!(a.is_trusted_relay(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["128.0.0.1", "::1", "192.0.2.8", "2001:db9::1"] {
            assert!(!a.is_trusted_relay(ip.parse().expect("ip")), "{ip}");
        }
        assert_eq!(a.dmarc_reject, DmarcRejectAction::Quarantine);
        assert_eq!(a.spf_fail, SpfFailAction::Junk);
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains("203.0.113.9".parse().expect("ip")));
    }

    #[test]
    fn every_bad_mail_auth_value_is_reported() {
        let e = parse(
            "[mail_auth]\ndkim_selector = \"a b\"\ndmarc_reject = \"drop\"\nspf_fail = \"x\"\n\
             trusted_relays = [\"10.0.0.0/33\", \"nope\"]",
        )
        .expect_err("invalid");
        let paths: Vec<&str> = e.errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "mail_auth.dkim_selector",
                "mail_auth.dmarc_reject",
                "mail_auth.spf_fail",
                "mail_auth.trusted_relays[0]",
                "mail_auth.trusted_relays[1]",
            ]
        );
    }
}
