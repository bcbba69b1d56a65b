//! `[dns]` and `[outbound]`: the resolver every DNS user shares, and the outbound queue (routing,
//! smarthost, retries, DSN timing, limits). Raw structs, typed structs with documented defaults, and
//! their validation, in one place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::validate::{Errors, is_dns_name};

// ---- raw (as written in tern.toml) ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    /// `ip:port` strings; absent = the system resolver configuration.
    pub nameservers: Option<Vec<String>>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbound {
    pub ehlo_name: Option<String>,
    pub mx_port: Option<u16>,
    pub max_connections: Option<usize>,
    pub max_connections_per_domain: Option<usize>,
    pub max_connections_per_destination: Option<usize>,
    pub attempt_timeout_seconds: Option<u64>,
    pub allow_private_destinations: Option<bool>,
    pub retry_initial_seconds: Option<u64>,
    pub retry_max_seconds: Option<u64>,
    pub retry_factor: Option<u32>,
    pub expire_seconds: Option<u64>,
    pub delay_warning_seconds: Option<u64>,
    pub dsn_per_domain_per_hour: Option<u32>,
    pub poll_interval_seconds: Option<u64>,
    pub lease_seconds: Option<u64>,
    pub connect_timeout_seconds: Option<u64>,
    pub command_timeout_seconds: Option<u64>,
    pub opportunistic_tls: Option<bool>,
    pub smarthost: Option<RawRelay>,
    #[serde(default)]
    pub route: BTreeMap<String, RawRelay>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `none`, `starttls` (default) or `implicit`.
    pub tls: Option<String>,
    pub verify_certificate: Option<bool>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

// ---- typed ----

/// The DNS resolver (`[dns]`), used for MX routing and later for DNSBL, SPF, DKIM and DMARC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsConfig {
    /// Nameservers to ask (UDP and TCP), as `ip:port`. Default: empty, meaning the system
    /// configuration (`/etc/resolv.conf`), which is what an operator expects; tests point it at a
    /// local DNS server on a loopback port.
    pub nameservers: Vec<SocketAddr>,
    /// Time for one query. Default: 5 s, the classic resolver default; MX routing retries a
    /// failed lookup with the next queue attempt anyway.
    pub timeout: Duration,
}

impl DnsConfig {
    /// The defaults described on the fields.
    pub fn new() -> DnsConfig {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// How a relay connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// Cleartext only (a relay on a trusted network).
    None,
    /// STARTTLS, required: no cleartext fallback (RFC 3207).
    StartTls,
    /// TLS from the first byte (RFC 8314, usually port 465).
    Implicit,
}

/// A fixed next hop: the smarthost, or a static route for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Host name or IP address. Required.
    pub host: String,
    /// Port. Default: 465 with implicit TLS, else 587 for a smarthost with AUTH, else 25.
    pub port: u16,
    /// TLS use. Default: `starttls` (required, not opportunistic: a configured relay is
    /// expected to speak TLS, and AUTH must never travel in cleartext).
    pub tls: RelayTls,
    /// Verify the relay's certificate against the operating system's trust store and its host
    /// name. Default: `true`; set `false` only for a relay with a self-signed certificate you
    /// trust by other means (tests do).
    pub verify_certificate: bool,
    /// AUTH user name (PLAIN or LOGIN, whichever the relay offers). Default: none (no AUTH).
    pub username: Option<String>,
    /// File whose first line is the AUTH password (never inline in tern.toml). Required with
    /// `username`. Relative paths are resolved against the config file's directory.
    pub password_file: Option<PathBuf>,
}

/// The outbound queue (`[outbound]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Name sent in EHLO/HELO. Default: the server's `hostname`, which should match its PTR record
    /// (receivers compare them).
    pub ehlo_name: Option<String>,
    /// Port of MX hosts. Default: 25 (RFC 5321 §4.5.4.2 has no other); tests override it to reach
    /// another instance on an unprivileged port.
    pub mx_port: u16,
    /// Concurrent outbound connections in total. Default: 20, plenty for a small server and gentle
    /// on the 2 cores of a small VPS.
    pub max_connections: usize,
    /// Concurrent connections to one destination domain. Default: 4; large receivers throttle
    /// senders that open many parallel connections.
    pub max_connections_per_domain: usize,
    /// Concurrent connections to one destination address (an IPv4 address, or an IPv6 /64, which
    /// one operator usually holds whole). Default: 8, or `max_connections - 1` if that is
    /// smaller; must be below `max_connections`. Whoever controls DNS for many domains can point
    /// them all at one tarpit host that accepts and then answers slowly or never; the
    /// per-domain limit does not bound that, this does, so such a host cannot hold every
    /// outbound connection while other mail waits. The smarthost and static routes are not
    /// limited by it (the operator chose them, and all mail may go there).
    pub max_connections_per_destination: usize,
    /// The longest one delivery attempt to a destination domain may take: routing, connecting
    /// (to every MX in turn) and the whole SMTP conversation including DATA, for all messages
    /// sent over it. Default: 600 s (10 min). The RFC 5321 §4.5.3.2 per-command timeouts still
    /// apply within it; this bounds a host that answers each command just before its timeout.
    /// What is unfinished at the deadline is deferred (4.4.2) and retried later.
    pub attempt_timeout: Duration,
    /// Deliver to MX hosts (or domains without MX) whose addresses are loopback, private (RFC
    /// 1918, IPv6 ULA), link-local, shared (RFC 6598), unspecified, multicast or broadcast, or one
    /// of this server's listening addresses. Default: `false`: anyone who controls a domain's
    /// DNS could otherwise make this server connect to services on its own machine or network
    /// (a mail-borne request forgery) or loop mail back to itself. Smarthost and static routes
    /// are exempt (the operator chose them). Tests on loopback set it.
    pub allow_private_destinations: bool,
    /// Delay before the first retry after a temporary failure. Default: 300 s (5 min); RFC 5321
    /// §4.5.4.1 asks for at least 30 min between retries to one destination, but greylisting
    /// receivers accept a retry after ~5 min, so the first one comes sooner.
    pub retry_initial: Duration,
    /// Longest delay between two attempts. Default: 4 h.
    pub retry_max: Duration,
    /// Factor by which the delay grows after each failed attempt. Default: 2 (5 min, 10 min,
    /// 20 min, … up to `retry_max`).
    pub retry_factor: u32,
    /// Give up (and bounce) after this time in the queue. Default: 5 days (RFC 5321 §4.5.4.1: "at
    /// least 4-5 days").
    pub expire: Duration,
    /// Send one "delayed" DSN when a message is still undelivered after this time; 0 disables it.
    /// Default: 4 h, so a sender learns the same working day that the mail is stuck.
    pub delay_warning: Duration,
    /// At most this many DSNs (bounces, delay warnings, success reports) go to one destination
    /// domain per hour; more are dropped and logged once per hour. Default: 100 — far more than
    /// a domain's real senders cause, while whoever forges reverse-paths in that domain (or owns
    /// one and asks for success reports) cannot make this server flood it. At least 1; DSNs to
    /// this server's own users are not counted.
    pub dsn_per_domain_per_hour: u32,
    /// How often the worker looks for due messages even without a wake-up. Default: 10 s (new
    /// messages from this node wake it at once; this covers other nodes and `tern queue retry`).
    pub poll_interval: Duration,
    /// How long a claimed recipient stays leased to this node. The worker renews the lease every
    /// third of it while the attempt runs (or waits for a connection slot), so a slow attempt
    /// is neither taken over by another node nor claimed again by this one. Default: 900 s: a
    /// crashed node's recipients are retried after at most this long. At least 3 s (leases are
    /// kept in whole seconds).
    pub lease: Duration,
    /// Time to establish a TCP connection. Default: 30 s.
    pub connect_timeout: Duration,
    /// Cap on every RFC 5321 §4.5.3.2 reply timeout (greeting 5 min, MAIL 5 min, RCPT 5 min, DATA
    /// 2 min, data block 3 min, final dot 10 min). Default: 600 s, i.e. the RFC values unchanged;
    /// tests lower it.
    pub command_timeout: Duration,
    /// Use STARTTLS when an MX offers it (certificate not verified: RFC 7435 opportunistic
    /// security; MTA-STS RFC 8461 and DANE RFC 7672 will add enforcement). Default: `true`.
    pub opportunistic_tls: bool,
    /// Send everything through this relay instead of looking up MX records. Default: none.
    pub smarthost: Option<RelayConfig>,
    /// Static next hop per recipient domain (lowercase), taking precedence over the smarthost and
    /// MX records. Default: none.
    pub routes: BTreeMap<String, RelayConfig>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            ehlo_name: None,
            mx_port: 25,
            max_connections: 20,
            max_connections_per_domain: 4,
            max_connections_per_destination: 8,
            attempt_timeout: Duration::from_secs(600),
            allow_private_destinations: false,
            retry_initial: Duration::from_secs(300),
            retry_max: Duration::from_secs(4 * 3600),
            retry_factor: 2,
            expire: Duration::from_secs(5 * 86400),
            delay_warning: Duration::from_secs(4 * 3600),
            dsn_per_domain_per_hour: 100,
            poll_interval: Duration::from_secs(10),
            lease: Duration::from_secs(900),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(600),
            opportunistic_tls: true,
            smarthost: None,
            routes: BTreeMap::new(),
        }
    }
}

impl OutboundConfig {
    /// The delay before attempt number `attempts + 1` after `attempts` failed ones (≥ 1):
    /// `retry_initial × retry_factor^(attempts-1)`, capped at `retry_max`.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let mut delay = self.retry_initial;
        for _ in 1..attempts {
            delay = delay.saturating_mul(self.retry_factor);
            if delay >= self.retry_max {
                return self.retry_max;
            }
        }
        delay.min(self.retry_max)
    }
}

// ---- validation ----

pub(super) fn dns(raw: RawDns, errors: &mut Errors) -> DnsConfig {
    let mut config = DnsConfig::new();
    for (i, s) in raw.nameservers.unwrap_or_default().iter().enumerate() {
        match s.parse::<SocketAddr>() {
            Ok(addr) => config.nameservers.push(addr),
            // A bare IP means port 53.
            Err(_) => match s.parse::<std::net::IpAddr>() {
                Ok(ip) => config.nameservers.push(SocketAddr::new(ip, 53)),
                Err(_) => errors.push(
                    format!("dns.nameservers[{i}]"),
                    format!("{s:?} is not an ip:port address"),
                ),
            },
        }
    }
    match raw.timeout_seconds {
        Some(0) => errors.push("dns.timeout_seconds", "must be at least 1"),
        Some(s) => config.timeout = Duration::from_secs(s),
        None => {}
    }
    config
}

pub(super) fn outbound(raw: RawOutbound, base_dir: &Path, errors: &mut Errors) -> OutboundConfig {
    let d = OutboundConfig::default();
    let mut secs = |key: &str, value: Option<u64>, min: u64, default: Duration| match value {
        None => default,
        Some(v) if v < min => {
            errors.push(format!("outbound.{key}"), format!("must be at least {min}"));
            default
        }
        Some(v) => Duration::from_secs(v),
    };
    let retry_initial = secs(
        "retry_initial_seconds",
        raw.retry_initial_seconds,
        1,
        d.retry_initial,
    );
    let retry_max = secs("retry_max_seconds", raw.retry_max_seconds, 1, d.retry_max);
    let expire = secs("expire_seconds", raw.expire_seconds, 1, d.expire);
    let delay_warning = secs(
        "delay_warning_seconds",
        raw.delay_warning_seconds,
        0,
        d.delay_warning,
    );
    let poll_interval = secs(
        "poll_interval_seconds",
        raw.poll_interval_seconds,
        1,
        d.poll_interval,
    );
    let lease = secs("lease_seconds", raw.lease_seconds, 3, d.lease);
    let attempt_timeout = secs(
        "attempt_timeout_seconds",
        raw.attempt_timeout_seconds,
        1,
        d.attempt_timeout,
    );
    let connect_timeout = secs(
        "connect_timeout_seconds",
        raw.connect_timeout_seconds,
        1,
        d.connect_timeout,
    );
    let command_timeout = secs(
        "command_timeout_seconds",
        raw.command_timeout_seconds,
        1,
        d.command_timeout,
    );
    let mut at_least_one = |key: &str, value: Option<usize>, default: usize| match value {
        Some(0) => {
            errors.push(format!("outbound.{key}"), "must be at least 1");
            default
        }
        Some(v) => v,
        None => default,
    };
    let max_connections = at_least_one("max_connections", raw.max_connections, d.max_connections);
    let max_connections_per_domain = at_least_one(
        "max_connections_per_domain",
        raw.max_connections_per_domain,
        d.max_connections_per_domain,
    );
    // Below max_connections, so one destination always leaves a connection for the others.
    let max_connections_per_destination = match raw.max_connections_per_destination {
        Some(n) if n == 0 || (n >= max_connections && max_connections > 1) => {
            errors.push(
                "outbound.max_connections_per_destination",
                format!(
                    "must be at least 1 and below max_connections ({max_connections}), so one \
                     destination cannot hold every outbound connection"
                ),
            );
            1
        }
        Some(n) => n,
        None => d
            .max_connections_per_destination
            .min(max_connections.saturating_sub(1))
            .max(1),
    };
    let dsn_per_domain_per_hour = match raw.dsn_per_domain_per_hour {
        Some(0) => {
            errors.push(
                "outbound.dsn_per_domain_per_hour",
                "must be at least 1 (senders must learn of failures)",
            );
            d.dsn_per_domain_per_hour
        }
        Some(n) => n,
        None => d.dsn_per_domain_per_hour,
    };
    let retry_factor = match raw.retry_factor {
        Some(0) => {
            errors.push("outbound.retry_factor", "must be at least 1");
            d.retry_factor
        }
        Some(f) => f,
        None => d.retry_factor,
    };
    if retry_max < retry_initial {
        errors.push(
            "outbound.retry_max_seconds",
            "must not be smaller than retry_initial_seconds",
        );
    }
    let ehlo_name = raw.ehlo_name.map(|n| {
        let n = n.to_ascii_lowercase();
        if !is_dns_name(&n, false) {
            errors.push("outbound.ehlo_name", format!("invalid host name {n:?}"));
        }
        n
    });
    let mx_port = match raw.mx_port {
        Some(0) => {
            errors.push("outbound.mx_port", "must not be 0");
            d.mx_port
        }
        Some(p) => p,
        None => d.mx_port,
    };
    let smarthost = raw
        .smarthost
        .and_then(|r| relay(r, "outbound.smarthost", true, base_dir, errors));
    let mut routes = BTreeMap::new();
    for (domain, r) in raw.route {
        let key = domain.to_ascii_lowercase();
        let path = format!("outbound.route.\"{domain}\"");
        if !is_dns_name(&key, false) {
            errors.push(path.clone(), "not a valid domain name");
        }
        if let Some(relay) = relay(r, &path, false, base_dir, errors) {
            routes.insert(key, relay);
        }
    }
    OutboundConfig {
        ehlo_name,
        mx_port,
        max_connections,
        max_connections_per_domain,
        max_connections_per_destination,
        attempt_timeout,
        allow_private_destinations: raw
            .allow_private_destinations
            .unwrap_or(d.allow_private_destinations),
        retry_initial,
        retry_max,
        retry_factor,
        expire,
        delay_warning,
        dsn_per_domain_per_hour,
        poll_interval,
        lease,
        connect_timeout,
        command_timeout,
        opportunistic_tls: raw.opportunistic_tls.unwrap_or(d.opportunistic_tls),
        smarthost,
        routes,
    }
}

fn relay(
    raw: RawRelay,
    path: &str,
    smarthost: bool,
    base_dir: &Path,
    errors: &mut Errors,
) -> Option<RelayConfig> {
    let at = |key: &str| format!("{path}.{key}");
    let tls = match raw.tls.as_deref() {
        None | Some("starttls") => RelayTls::StartTls,
        Some("implicit") => RelayTls::Implicit,
        Some("none") => RelayTls::None,
        Some(other) => {
            errors.push(
                at("tls"),
                format!("unknown TLS mode {other:?}; expected none, starttls or implicit"),
            );
            RelayTls::StartTls
        }
    };
    match (&raw.username, &raw.password_file) {
        (Some(_), None) => errors.push(at("password_file"), "required when username is set"),
        (None, Some(_)) => errors.push(at("username"), "required when password_file is set"),
        _ => {}
    }
    if raw.username.is_some() && tls == RelayTls::None {
        errors.push(
            at("tls"),
            "AUTH needs TLS: a password must never be sent in cleartext",
        );
    }
    let port = raw.port.unwrap_or(match tls {
        RelayTls::Implicit => 465,
        _ if smarthost && raw.username.is_some() => 587,
        _ => 25,
    });
    let Some(host) = raw.host else {
        errors.push(at("host"), "required");
        return None;
    };
    let host = host.to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_err() && !is_dns_name(&host, false) {
        errors.push(at("host"), format!("invalid host {host:?}"));
    }
    Some(RelayConfig {
        host,
        port,
        tls,
        verify_certificate: raw.verify_certificate.unwrap_or(true),
        username: raw.username,
        password_file: raw.password_file.map(|p| base_dir.join(p)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_backoff_doubles_from_five_minutes_to_four_hours() {
        let c = OutboundConfig::default();
        let minutes: Vec<u64> = (1..=9).map(|n| c.retry_delay(n).as_secs() / 60).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 240, 240, 240]);
        assert_eq!(c.retry_delay(1000), Duration::from_secs(4 * 3600));
    }
}
