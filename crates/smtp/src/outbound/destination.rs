//! Which addresses an MX answer may send us to, and the per-destination connection slots.
//!
//! Whoever controls a domain's DNS chooses where this server connects when it delivers mail to
//! that domain. Two abuses follow, and this module holds the defences against both:
//! - **Request forgery.** An MX (or the A/AAAA fallback of RFC 5321 §5.1) pointing at 127.0.0.1,
//!   10.0.0.5 or fe80::1 makes us talk SMTP to services on our own machine or network, or loop
//!   mail back to ourselves. Such answers are refused unless `outbound.allow_private_destinations`
//!   is set; configured relays never come through here (the operator chose them).
//! - **Tarpits.** One host that accepts connections and then answers slowly can be named by any
//!   number of domains. A per-domain limit does not bound it; [`Slots`] bounds the connections to
//!   one destination address (`outbound.max_connections_per_destination`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// Why an address is refused as a delivery destination, as a phrase for logs and DSNs
/// ("a loopback address"), or `None` when it is an ordinary public address.
pub fn special_use(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if own.contains(&ip) {
        return Some("one of this server's own listening addresses");
    }
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        // RFC 1918.
        Some("a private address (RFC 1918)")
    } else if a == 100 && (64..128).contains(&b) {
        // RFC 6598 shared address space (carrier-grade NAT): someone's internal network.
        Some("a shared address (RFC 6598)")
    } else if ip.is_link_local() {
        // RFC 3927, including the cloud metadata service at 169.254.169.254.
        Some("a link-local address")
    } else if ip.is_unspecified() || a == 0 {
        // RFC 1122 §3.2.1.3: "this network"; connecting to 0.0.0.0 reaches the local host.
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() {
        Some("a broadcast address")
    } else {
        None
    }
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        // RFC 4193 unique local addresses, fc00::/7.
        Some("a private address (unique local, RFC 4193)")
    } else if first & 0xffc0 == 0xfe80 {
        // RFC 4291 §2.5.6 link-local unicast, fe80::/10.
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// The unit one connection limit applies to: an IPv4 address, or the /64 of an IPv6 address
/// (RFC 4291 §2.5.4: a /64 is one subnet, usually one customer's, holding 2^64 addresses).
fn destination_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// Connection slots per destination (see [`destination_key`]), `limit` each.
#[derive(Debug)]
pub struct Slots {
    limit: usize,
    map: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// Past this many destinations in the map, idle entries are dropped when another is added.
const PRUNE_AT: usize = 1024;

impl Slots {
    /// `limit` concurrent connections per destination.
    pub fn new(limit: usize) -> Slots {
        Slots {
            limit,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The semaphore for `ip`'s destination.
    pub fn for_ip(&self, ip: IpAddr) -> Arc<Semaphore> {
        // A poisoned lock only means another task panicked while inserting; the map is fine.
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = destination_key(ip);
        if !map.contains_key(&key) && map.len() >= PRUNE_AT {
            // Nobody holds or waits for an entry only the map refers to.
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        Arc::clone(
            map.entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(self.limit))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_private_link_local_and_other_special_addresses_are_named() {
        for (addr, reason) in [
            ("127.0.0.1", "a loopback address"),
            ("127.8.9.10", "a loopback address"),
            ("::1", "a loopback address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("10.1.2.3", "a private address (RFC 1918)"),
            ("172.16.0.1", "a private address (RFC 1918)"),
            ("192.168.1.1", "a private address (RFC 1918)"),
            ("fd00::25", "a private address (unique local, RFC 4193)"),
            ("fc00::1", "a private address (unique local, RFC 4193)"),
            ("100.64.0.1", "a shared address (RFC 6598)"),
            ("169.254.169.254", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("0.0.0.0", "an unspecified address"),
            ("0.1.2.3", "an unspecified address"),
            ("::", "an unspecified address"),
            ("224.0.0.1", "a multicast address"),
            ("ff02::1", "a multicast address"),
            ("255.255.255.255", "a broadcast address"),
        ] {
            assert_eq!(special_use(ip(addr), &[]), Some(reason), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass_unless_they_are_our_own() {
        for addr in [
            "192.0.2.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::25",
        ] {
            assert_eq!(special_use(ip(addr), &[]), None, "{addr}");
        }
        assert_eq!(
            special_use(ip("203.0.113.7"), &[ip("203.0.113.7")]),
            Some("one of this server's own listening addresses")
        );
    }

    #[test]
    fn one_ipv6_slash_64_shares_its_slots_and_ipv4_addresses_do_not() {
        let slots = Slots::new(2);
        let a = slots.for_ip(ip("2001:db8:1:2::1"));
        let b = slots.for_ip(ip("2001:db8:1:2:ffff::9"));
        assert!(Arc::ptr_eq(&a, &b));
        let c = slots.for_ip(ip("2001:db8:1:3::1"));
        assert!(!Arc::ptr_eq(&a, &c));
        let d = slots.for_ip(ip("192.0.2.1"));
        let e = slots.for_ip(ip("192.0.2.2"));
        assert!(!Arc::ptr_eq(&d, &e));
    }
}
