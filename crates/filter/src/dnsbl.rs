//! DNS blocklist lookups for the connecting client's address (RFC 5782).
//!
//! The resolver is passed in as a [`DnsLookup`], so this crate does not pick a DNS library and tests
//! need no network; the binary adapts the shared resolver to it.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::rr::{RData, RecordType};
use tern_common::dns::TokioResolver;

use crate::rules::RuleHit;

/// A future returned by [`DnsLookup::lookup_ipv4`].
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Ipv4Addr>, String>> + Send + 'a>>;

/// The A-record lookups the DNSBL rule needs. `Ok(vec![])` means the name does not exist
/// (NXDOMAIN or no A records: not listed); `Err` a failed query.
pub trait DnsLookup: Send + Sync + fmt::Debug {
    /// Looks up the A records of `name` (a fully qualified name without the trailing dot).
    fn lookup_ipv4<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;
}

/// [`DnsLookup`] over the server's shared hickory resolver (`tern_common::dns`).
#[derive(Debug, Clone)]
pub struct ResolverLookup(pub Arc<TokioResolver>);

impl DnsLookup for ResolverLookup {
    fn lookup_ipv4<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            // Absolute name (trailing dot): no search-list expansion of the query.
            match self.0.lookup(format!("{name}."), RecordType::A).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect()),
                // NXDOMAIN or no A record: not listed (RFC 5782 §2.1).
                Err(e) if e.is_no_records_found() => Ok(Vec::new()),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// The query name for `ip` in `zone`: IPv4 octets reversed (RFC 5782 §2.1), IPv6 nibbles reversed
/// (§2.4).
pub(crate) fn query_name(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str(zone);
            name
        }
    }
}

/// Whether an answer means "listed": any address in 127.0.0.0/8 (RFC 5782 §2.1), except
/// 127.255.255.0/24, which Spamhaus uses for "query refused" (e.g. via a public resolver) and
/// must not block anybody.
pub(crate) fn is_listing(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 127 && !(o[1] == 255 && o[2] == 255)
}

/// Addresses never looked up: private, loopback, link-local and documentation ranges are not on
/// public lists, and the query would leak internal addresses to the list operator.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local, RFC 4193
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation, RFC 3849
        }
    }
}

/// Queries every zone at once; one hit per listing zone. Failed or timed-out queries count as
/// not listed (and are logged): a DNS problem must not turn into spam points.
pub(crate) async fn check(
    dns: &dyn DnsLookup,
    ip: IpAddr,
    zones: &[String],
    weight: f64,
    timeout: Duration,
) -> Vec<RuleHit> {
    if zones.is_empty() || !is_public(ip) {
        return Vec::new();
    }
    let names: Vec<String> = zones.iter().map(|z| query_name(ip, z)).collect();
    let queries = names.iter().map(|n| dns.lookup_ipv4(n));
    let answers = match tokio::time::timeout(timeout, join_all(queries.collect())).await {
        Ok(a) => a,
        Err(_) => {
            tracing::warn!(%ip, ?timeout, "DNSBL queries timed out; counted as not listed");
            return Vec::new();
        }
    };
    let mut hits = Vec::new();
    for (zone, answer) in zones.iter().zip(answers) {
        match answer {
            Ok(addrs) if addrs.iter().any(|&a| is_listing(a)) => hits.push(RuleHit {
                name: format!(
                    "DNSBL_{}",
                    zone.to_ascii_uppercase().replace(['.', '-'], "_")
                ),
                points: weight,
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!(%ip, zone = %zone, error = %e, "DNSBL query failed"),
        }
    }
    hits
}

/// Awaits all futures concurrently (no futures-util dependency for this one use).
async fn join_all<'a>(futures: Vec<LookupFuture<'a>>) -> Vec<Result<Vec<Ipv4Addr>, String>> {
    let mut set = Vec::with_capacity(futures.len());
    for f in futures {
        set.push(Some(f));
    }
    let mut results: Vec<Option<Result<Vec<Ipv4Addr>, String>>> = vec![None; set.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in set.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => {
                        *result = Some(r);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not polled".to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Debug)]
    struct Fake(HashMap<String, Result<Vec<Ipv4Addr>, String>>);

    impl DnsLookup for Fake {
        fn lookup_ipv4<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
            let answer = self.0.get(name).cloned().unwrap_or(Ok(Vec::new()));
            Box::pin(async move { answer })
        }
    }

    #[test]
    fn query_names_reverse_octets_and_nibbles() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.test"),
            "99.2.0.192.bl.test"
        );
        // RFC 5782 §2.4 example.
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
    }

    #[tokio::test]
    async fn listed_zones_become_hits_and_errors_do_not() {
        let ip: IpAddr = "203.0.114.7".parse().unwrap();
        let fake = Fake(HashMap::from([
            (
                query_name(ip, "a.test"),
                Ok(vec![Ipv4Addr::new(127, 0, 0, 2)]),
            ),
            (
                query_name(ip, "b.test"),
                Ok(vec![Ipv4Addr::new(127, 255, 255, 254)]),
            ),
            (query_name(ip, "c.test"), Err("SERVFAIL".to_owned())),
        ]));
        let zones: Vec<String> = ["a.test", "b.test", "c.test", "d.test"]
            .map(String::from)
            .to_vec();
        let hits = check(&fake, ip, &zones, 3.0, Duration::from_secs(1)).await;
        assert_eq!(
            hits,
            [RuleHit {
                name: "DNSBL_A_TEST".into(),
                points: 3.0
            }]
        );
        let private = check(
            &fake,
            "10.1.2.3".parse().unwrap(),
            &zones,
            3.0,
            Duration::from_secs(1),
        )
        .await;
        assert!(private.is_empty());
    }
}
