//! Where mail for a domain goes: a static route, the smarthost, or the domain's MX hosts
//! (RFC 5321 §5.1), with the A/AAAA fallback for domains without MX records and RFC 7505 null MX.
//! DNS answers come through [`DnsSource`], so tests can supply them without a DNS server.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use tern_common::config::{OutboundConfig, RelayConfig};
use tern_common::dns::TokioResolver;

use super::destination;

/// A boxed future, as the DNS trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer to an MX query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// MX records: (preference, exchange without trailing dot; "" for the RFC 7505 null MX ".").
    Records(Vec<(u16, String)>),
    /// The name exists but has no MX records (NOERROR, no data).
    NoRecords,
    /// The name does not exist (NXDOMAIN).
    NxDomain,
}

/// DNS lookups routing needs. Errors are temporary failures (timeouts, SERVFAIL).
pub trait DnsSource: Send + Sync {
    /// MX records of `domain`.
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxAnswer, String>>;
    /// A and AAAA addresses of `host`; empty when it has none (or does not exist).
    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>>;
}

/// hickory-resolver as a [`DnsSource`].
#[derive(Clone)]
pub struct HickoryDns(pub Arc<TokioResolver>);

impl std::fmt::Debug for HickoryDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HickoryDns")
    }
}

/// Absolute name: no search-list expansion.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn is_empty_answer(e: &NetError) -> bool {
    e.is_no_records_found() && !e.is_nx_domain()
}

impl DnsSource for HickoryDns {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxAnswer, String>> {
        Box::pin(async move {
            match self.0.mx_lookup(fqdn(domain)).await {
                Ok(lookup) => {
                    let records: Vec<(u16, String)> = lookup
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::MX(mx) => Some((
                                mx.preference,
                                mx.exchange
                                    .to_ascii()
                                    .trim_end_matches('.')
                                    .to_ascii_lowercase(),
                            )),
                            _ => None,
                        })
                        .collect();
                    Ok(if records.is_empty() {
                        MxAnswer::NoRecords
                    } else {
                        MxAnswer::Records(records)
                    })
                }
                Err(e) if e.is_nx_domain() => Ok(MxAnswer::NxDomain),
                Err(e) if is_empty_answer(&e) => Ok(MxAnswer::NoRecords),
                Err(e) => Err(format!("MX lookup for {domain} failed: {e}")),
            }
        })
    }

    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
        Box::pin(async move {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(vec![ip]);
            }
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for kind in [RecordType::A, RecordType::AAAA] {
                match self.0.lookup(fqdn(host), kind).await {
                    Ok(lookup) => {
                        out.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                            _ => None,
                        }))
                    }
                    Err(e) if e.is_no_records_found() => {}
                    Err(e) => errors.push(format!("{kind} lookup for {host} failed: {e}")),
                }
            }
            // One address family answering is enough (some servers refuse AAAA queries).
            if out.is_empty() && !errors.is_empty() {
                return Err(errors.join("; "));
            }
            Ok(out)
        })
    }
}

/// How to talk to a next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopKind {
    /// An MX host: opportunistic STARTTLS, no AUTH.
    Mx,
    /// A configured relay (smarthost or static route) with its TLS and AUTH settings.
    Relay(RelayConfig),
}

/// One host to try, with its addresses, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Host name (for TLS SNI and logs).
    pub host: String,
    /// Addresses to try, in order.
    pub addrs: Vec<SocketAddr>,
    /// How to talk to it.
    pub kind: HopKind,
}

/// Why there is no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Never deliverable (null MX, domain does not exist): an RFC 3463 status and text.
    Permanent(&'static str, String),
    /// Try later (DNS failure, MX hosts without addresses).
    Temporary(&'static str, String),
}

/// The hops for `domain`, best first: a static route, else the smarthost, else MX (RFC 5321 §5.1).
/// MX addresses that are loopback, private, link-local or in `own` (this server's listening
/// addresses) are left out unless `config.allow_private_destinations`; when nothing is left
/// because of that, the failure is permanent and names the address.
pub async fn route(
    domain: &str,
    config: &OutboundConfig,
    dns: &dyn DnsSource,
    own: &[IpAddr],
) -> Result<Vec<Hop>, RouteError> {
    let domain = domain.to_ascii_lowercase();
    if let Some(relay) = config.routes.get(&domain).or(config.smarthost.as_ref()) {
        let addrs = match relay.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => dns
                .ips(&relay.host)
                .await
                .map_err(|e| RouteError::Temporary("4.4.3", e))?,
        };
        if addrs.is_empty() {
            return Err(RouteError::Temporary(
                "4.4.3",
                format!("relay host {} has no address", relay.host),
            ));
        }
        return Ok(vec![Hop {
            host: relay.host.clone(),
            addrs: addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, relay.port))
                .collect(),
            kind: HopKind::Relay(relay.clone()),
        }]);
    }
    let port = config.mx_port;
    let answer = dns
        .mx(&domain)
        .await
        .map_err(|e| RouteError::Temporary("4.4.3", e))?;
    let mut records = match answer {
        MxAnswer::NxDomain => {
            // RFC 3463 §3.2: X.1.2 bad destination system address.
            return Err(RouteError::Permanent(
                "5.1.2",
                format!("domain {domain} does not exist"),
            ));
        }
        // RFC 5321 §5.1: no MX records — the domain itself is the implicit MX, preference 0.
        MxAnswer::NoRecords => vec![(0, domain.clone())],
        MxAnswer::Records(records) => records,
    };
    // RFC 7505 §3: a single MX with the root "." as exchange says the domain accepts no mail.
    if records.iter().any(|(_, host)| host.is_empty()) {
        return Err(RouteError::Permanent(
            "5.1.10",
            format!("domain {domain} does not accept mail (null MX, RFC 7505)"),
        ));
    }
    // RFC 5321 §5.1: lower preference first.
    records.sort_by_key(|(preference, _)| *preference);
    let mut hops = Vec::new();
    let mut errors = Vec::new();
    let mut refused = Vec::new();
    for (_, host) in records {
        match dns.ips(&host).await {
            Ok(ips) if !ips.is_empty() => {
                let mut addrs = Vec::with_capacity(ips.len());
                for ip in ips {
                    match destination::special_use(ip, own) {
                        Some(what) if !config.allow_private_destinations => {
                            let text =
                                format!("MX for {domain} ({host}) points to {ip}, {what}; refused");
                            tracing::warn!(domain = %domain, host = %host, addr = %ip, "outbound: {text}");
                            refused.push(text);
                        }
                        _ => addrs.push(SocketAddr::new(ip, port)),
                    }
                }
                // RFC 5321 §5.1: an unusable host is skipped; the next MX is tried.
                if !addrs.is_empty() {
                    hops.push(Hop {
                        host: host.clone(),
                        addrs,
                        kind: HopKind::Mx,
                    });
                }
            }
            Ok(_) => errors.push(format!("{host} has no address")),
            Err(e) => errors.push(e),
        }
    }
    if hops.is_empty() {
        if errors.is_empty() && !refused.is_empty() {
            // RFC 3463 X.4.4 unable to route: every host the domain names is off limits. Such
            // an answer is deliberate (a domain that wants no mail points at 127.0.0.1) or
            // hostile; retrying it for days would not help the sender.
            return Err(RouteError::Permanent("5.4.4", refused.join("; ")));
        }
        errors.extend(refused);
        return Err(RouteError::Temporary(
            "4.4.4",
            format!("no reachable mail host for {domain}: {}", errors.join("; ")),
        ));
    }
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Fixed answers; names not listed have no addresses / no MX.
    #[derive(Default)]
    struct FakeDns {
        mx: HashMap<String, MxAnswer>,
        ips: HashMap<String, Vec<IpAddr>>,
    }

    impl DnsSource for FakeDns {
        fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxAnswer, String>> {
            let answer = self.mx.get(domain).cloned();
            Box::pin(async move { answer.ok_or_else(|| "SERVFAIL".to_owned()) })
        }
        fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
            let ips = self.ips.get(host).cloned().unwrap_or_default();
            Box::pin(async move { Ok(ips) })
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dns() -> FakeDns {
        let mut d = FakeDns::default();
        d.mx.insert(
            "multi.test".into(),
            MxAnswer::Records(vec![
                (20, "backup.multi.test".into()),
                (10, "mx.multi.test".into()),
            ]),
        );
        d.ips.insert("mx.multi.test".into(), vec![ip("192.0.2.1")]);
        d.ips.insert(
            "backup.multi.test".into(),
            vec![ip("192.0.2.2"), ip("2001:db8::2")],
        );
        d.mx.insert("bare.test".into(), MxAnswer::NoRecords);
        d.ips.insert("bare.test".into(), vec![ip("192.0.2.3")]);
        d.mx.insert(
            "null.test".into(),
            MxAnswer::Records(vec![(0, String::new())]),
        );
        d.mx.insert("gone.test".into(), MxAnswer::NxDomain);
        d.mx.insert(
            "dangling.test".into(),
            MxAnswer::Records(vec![(10, "nowhere.test".into())]),
        );
        d.ips.insert("relay.test".into(), vec![ip("192.0.2.9")]);
        d
    }

    fn hosts(hops: &[Hop]) -> Vec<(&str, Vec<String>)> {
        hops.iter()
            .map(|h| {
                (
                    h.host.as_str(),
                    h.addrs.iter().map(ToString::to_string).collect(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn mx_hosts_are_tried_by_preference_on_the_configured_port() {
        let config = OutboundConfig {
            mx_port: 2525,
            ..OutboundConfig::default()
        };
        let hops = route("Multi.TEST", &config, &dns(), &[]).await.unwrap();
        assert_eq!(
            hosts(&hops),
            [
                ("mx.multi.test", vec!["192.0.2.1:2525".to_owned()]),
                (
                    "backup.multi.test",
                    vec!["192.0.2.2:2525".to_owned(), "[2001:db8::2]:2525".to_owned()]
                )
            ]
        );
    }

    #[tokio::test]
    async fn a_domain_without_mx_falls_back_to_its_own_address() {
        let hops = route("bare.test", &OutboundConfig::default(), &dns(), &[])
            .await
            .unwrap();
        assert_eq!(
            hosts(&hops),
            [("bare.test", vec!["192.0.2.3:25".to_owned()])]
        );
    }

    #[tokio::test]
    async fn null_mx_and_nxdomain_are_permanent_and_dns_failures_temporary() {
        let c = OutboundConfig::default();
        assert!(matches!(
            route("null.test", &c, &dns(), &[]).await,
            Err(RouteError::Permanent("5.1.10", _))
        ));
        assert!(matches!(
            route("gone.test", &c, &dns(), &[]).await,
            Err(RouteError::Permanent("5.1.2", _))
        ));
        assert!(matches!(
            route("servfail.test", &c, &dns(), &[]).await,
            Err(RouteError::Temporary(..))
        ));
        assert!(matches!(
            route("dangling.test", &c, &dns(), &[]).await,
            Err(RouteError::Temporary("4.4.4", _))
        ));
    }

    #[tokio::test]
    async fn static_routes_win_over_the_smarthost_which_wins_over_mx() {
        let relay = |host: &str, port| RelayConfig {
            host: host.into(),
            port,
            tls: tern_common::config::RelayTls::None,
            verify_certificate: false,
            username: None,
            password_file: None,
        };
        let mut config = OutboundConfig {
            smarthost: Some(relay("relay.test", 587)),
            ..OutboundConfig::default()
        };
        config
            .routes
            .insert("multi.test".into(), relay("192.0.2.50", 26));
        let routed = route("multi.test", &config, &dns(), &[]).await.unwrap();
        assert_eq!(
            hosts(&routed),
            [("192.0.2.50", vec!["192.0.2.50:26".to_owned()])]
        );
        let smart = route("null.test", &config, &dns(), &[]).await.unwrap();
        assert_eq!(
            hosts(&smart),
            [("relay.test", vec!["192.0.2.9:587".to_owned()])]
        );
        assert!(matches!(smart[0].kind, HopKind::Relay(_)));
    }

    fn hostile_dns() -> FakeDns {
        let mut d = dns();
        d.mx.insert(
            "hostile.test".into(),
            MxAnswer::Records(vec![(10, "lo.test".into()), (20, "lan.test".into())]),
        );
        d.ips.insert("lo.test".into(), vec![ip("127.0.0.1")]);
        d.ips
            .insert("lan.test".into(), vec![ip("10.0.0.5"), ip("fe80::1")]);
        d.mx.insert(
            "mixed.test".into(),
            MxAnswer::Records(vec![(10, "lo.test".into()), (20, "mx.multi.test".into())]),
        );
        d.mx.insert("self.test".into(), MxAnswer::NoRecords);
        d.ips.insert("self.test".into(), vec![ip("192.0.2.80")]);
        d
    }

    #[tokio::test]
    async fn mx_answers_pointing_at_loopback_private_or_link_local_addresses_are_refused() {
        let c = OutboundConfig::default();
        let Err(RouteError::Permanent("5.4.4", text)) =
            route("hostile.test", &c, &hostile_dns(), &[]).await
        else {
            panic!("refused expected");
        };
        assert!(
            text.contains(
                "MX for hostile.test (lo.test) points to 127.0.0.1, a loopback address; refused"
            ),
            "{text}"
        );
        assert!(
            text.contains("10.0.0.5, a private address (RFC 1918)"),
            "{text}"
        );
        assert!(text.contains("fe80::1, a link-local address"), "{text}");
        // RFC 5321 §5.1: the next MX is used.
        let hops = route("mixed.test", &c, &hostile_dns(), &[]).await.unwrap();
        assert_eq!(
            hosts(&hops),
            [("mx.multi.test", vec!["192.0.2.1:25".to_owned()])]
        );
        // The A fallback of a domain without MX is checked too, against our own addresses.
        let own = [ip("192.0.2.80")];
        assert!(matches!(
            route("self.test", &c, &hostile_dns(), &own).await,
            Err(RouteError::Permanent("5.4.4", t)) if t.contains("own listening addresses")
        ));
    }

    #[tokio::test]
    async fn private_destinations_are_used_when_allowed_and_relays_are_exempt() {
        let allowed = OutboundConfig {
            allow_private_destinations: true,
            ..OutboundConfig::default()
        };
        let hops = route("hostile.test", &allowed, &hostile_dns(), &[])
            .await
            .unwrap();
        assert_eq!(hops.len(), 2);
        let mut relayed = OutboundConfig::default();
        relayed.routes.insert(
            "hostile.test".into(),
            RelayConfig {
                host: "127.0.0.1".into(),
                port: 25,
                tls: tern_common::config::RelayTls::None,
                verify_certificate: false,
                username: None,
                password_file: None,
            },
        );
        let hops = route("hostile.test", &relayed, &hostile_dns(), &[])
            .await
            .unwrap();
        assert_eq!(
            hosts(&hops),
            [("127.0.0.1", vec!["127.0.0.1:25".to_owned()])]
        );
    }
}
