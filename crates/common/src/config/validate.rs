//! Raw → typed, collecting every error with its key path.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawAuth, RawConfig, RawLimits, RawListener, RawTls};
use super::{
    AuthConfig, CertPair, Config, ConfigError, ConfigErrors, Limits, ListenerConfig, LogFormat,
    Protocol, StoreUrl, TlsConfig, TlsMode,
};

/// Accumulates errors while the typed config is built.
#[derive(Default)]
pub(super) struct Errors(Vec<ConfigError>);

impl Errors {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }
}

pub(super) fn validate(raw: RawConfig, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::default();

    let hostname = match raw.hostname {
        Some(h) => {
            let h = h.to_ascii_lowercase();
            if !is_dns_name(&h, false) {
                errors.push("hostname", format!("invalid host name {h:?}"));
            }
            h
        }
        None => super::machine_hostname(),
    };

    let mut domains: Vec<String> = Vec::new();
    for (i, d) in raw.domains.unwrap_or_default().into_iter().enumerate() {
        // The same rules as addresses use, so every configured domain can receive mail.
        let d = match d.parse::<crate::Domain>() {
            Ok(domain) => domain.as_str().to_owned(),
            Err(e) => {
                errors.push(format!("domains[{i}]"), format!("{d:?}: {e}"));
                continue;
            }
        };
        if domains.contains(&d) {
            errors.push(format!("domains[{i}]"), format!("duplicate domain {d:?}"));
        } else {
            domains.push(d);
        }
    }

    let data_dir = match raw.data_dir {
        Some(p) if p.as_os_str().is_empty() => {
            errors.push("data_dir", "must not be empty");
            PathBuf::new()
        }
        Some(p) => base_dir.join(p),
        None => PathBuf::from("/var/lib/tern"),
    };

    let store = match raw.store {
        None => StoreUrl::Sqlite(data_dir.join("tern.db")),
        Some(s) => match parse_store(&s, &data_dir) {
            Ok(StoreUrl::Postgres(url)) => {
                errors.push(
                    "store",
                    "PostgreSQL is not yet supported; use sqlite:<path> (the default)",
                );
                StoreUrl::Postgres(url)
            }
            Ok(store) => store,
            Err(message) => {
                errors.push("store", message);
                StoreUrl::Sqlite(PathBuf::new())
            }
        },
    };

    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            errors.push(
                "log_format",
                format!("unknown format {other:?}; expected \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };

    let user = match raw.user {
        // A user name is looked up in the passwd database: no NUL, no ':' (the field separator),
        // nothing empty; the rest is the system's business.
        Some(u) if u.is_empty() || u.contains(['\0', ':', '/']) || u.trim() != u => {
            errors.push("user", format!("invalid user name {u:?}"));
            None
        }
        user => user,
    };

    let listeners = match raw.listeners {
        None => ListenerConfig::defaults(),
        Some(list) => listeners(list, &mut errors),
    };

    let auth = auth(raw.auth, &mut errors);
    let limits = limits(raw.limits, &mut errors);
    let tls = tls(raw.tls, base_dir, &listeners, &mut errors);
    let (filter, filter_errors) = super::filter::validate(raw.filter, limits.max_message_size);
    errors.0.extend(filter_errors);
    let dns = super::outbound::dns(raw.dns, &mut errors);
    let outbound = super::outbound::outbound(raw.outbound, base_dir, &mut errors);
    let (mail_auth, mail_auth_errors) = super::mail_auth::validate(raw.mail_auth);
    errors.0.extend(mail_auth_errors);

    if errors.0.is_empty() {
        Ok(Config {
            hostname,
            domains,
            data_dir,
            store,
            log_format,
            user,
            allow_root: raw.allow_root.unwrap_or(false),
            listeners,
            auth,
            limits,
            tls,
            filter,
            dns,
            outbound,
            mail_auth,
        })
    } else {
        Err(ConfigErrors { errors: errors.0 })
    }
}

/// `sqlite:<path>` (relative to `data_dir`; `sqlite://` also accepted) or `postgres://…`.
fn parse_store(s: &str, data_dir: &Path) -> Result<StoreUrl, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return Ok(StoreUrl::Postgres(s.to_owned()));
    }
    match s.strip_prefix("sqlite:") {
        Some(path) => {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                Err("sqlite: needs a path, e.g. \"sqlite:tern.db\"".to_owned())
            } else {
                Ok(StoreUrl::Sqlite(data_dir.join(path)))
            }
        }
        None => Err(format!(
            "unknown store {s:?}; expected \"sqlite:<path>\" or \"postgres://…\""
        )),
    }
}

fn listeners(list: Vec<RawListener>, errors: &mut Errors) -> Vec<ListenerConfig> {
    let mut out = Vec::new();
    // Index in the file of each accepted listener, for "conflicts with listener[i]".
    let mut indexes = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, raw) in list.into_iter().enumerate() {
        let at = |key: &str| format!("listener[{i}].{key}");
        let protocol = match raw.protocol.as_deref() {
            None => {
                errors.push(at("protocol"), "required");
                None
            }
            Some(p) => match Protocol::from_name(p) {
                Some(p) => Some(p),
                None => {
                    let known: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
                    errors.push(
                        at("protocol"),
                        format!(
                            "unknown protocol {p:?}; expected one of {}",
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        let bind = match raw.bind.as_deref() {
            Some(b) => match b.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    errors.push(
                        at("bind"),
                        format!("invalid socket address {b:?}; expected ip:port or [ipv6]:port"),
                    );
                    None
                }
            },
            None => protocol.map(|p| {
                let ip = match p {
                    Protocol::Http | Protocol::Lmtp => Ipv4Addr::LOCALHOST,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                SocketAddr::new(IpAddr::V4(ip), p.standard_port())
            }),
        };
        let tls = match raw.tls.as_deref() {
            None => protocol.map(Protocol::default_tls),
            Some(t) => match TlsMode::from_name(t) {
                Some(TlsMode::StartTls) if protocol == Some(Protocol::Http) => {
                    errors.push(
                        at("tls"),
                        "HTTP has no STARTTLS; use \"none\" or \"implicit\"",
                    );
                    None
                }
                Some(mode) => Some(mode),
                None => {
                    errors.push(
                        at("tls"),
                        format!("unknown TLS mode {t:?}; expected none, starttls or implicit"),
                    );
                    None
                }
            },
        };
        let name = match raw.name {
            Some(n) if n.trim().is_empty() => {
                errors.push(at("name"), "must not be empty");
                None
            }
            Some(n) => Some(n),
            None => protocol.map(|p| p.as_str().to_owned()),
        };
        if let Some(name) = &name {
            if let Some(first) = names.get(name) {
                errors.push(
                    at("name"),
                    format!(
                        "duplicate listener name {name:?} (also listener[{first}]); \
                         give each listener of one protocol its own name"
                    ),
                );
            } else {
                names.insert(name.clone(), i);
            }
        }
        match (protocol, bind, raw.allow_remote) {
            (Some(Protocol::Lmtp), Some(bind), None | Some(false))
                if !crate::listener::is_loopback(bind.ip()) =>
            {
                // RFC 2033 §1: LMTP is for a trusted MTA next to us; it has no authentication
                // and Tern trusts what arrives on it (no SPF/DMARC unless verify_lmtp), so an
                // LMTP port reachable from outside accepts anyone's mail for any local user.
                errors.push(
                    at("bind"),
                    format!(
                        "LMTP has no authentication: bind it to loopback (127.0.0.1:24) or set \
                         allow_remote = true if only trusted hosts can reach {bind}"
                    ),
                );
            }
            (Some(p), _, Some(_)) if p != Protocol::Lmtp => {
                errors.push(at("allow_remote"), "only LMTP listeners have this setting");
            }
            _ => {}
        }
        if let Some(bind) = bind {
            let clash = out
                .iter()
                .zip(&indexes)
                .find(|(l, _): &(&ListenerConfig, _)| binds_conflict(l.bind, bind));
            if let Some((other, j)) = clash {
                let message = if other.bind == bind {
                    format!("duplicate bind address {bind} (also listener[{j}])")
                } else {
                    format!("{bind} overlaps {} of listener[{j}]", other.bind)
                };
                errors.push(at("bind"), message);
            }
        }
        if raw.max_connections == Some(0) {
            errors.push(at("max_connections"), "must be at least 1");
        }
        if let (Some(name), Some(protocol), Some(bind), Some(tls)) = (name, protocol, bind, tls) {
            out.push(ListenerConfig {
                name,
                protocol,
                bind,
                tls,
                max_connections: raw.max_connections.filter(|&n| n > 0),
            });
            indexes.push(i);
        }
    }
    out
}

/// Two binds that cannot both succeed: the same address, or the same port where one side is an
/// unspecified address (`[::]` is dual-stack on Linux by default, so it covers IPv4 too).
fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn auth(raw: RawAuth, errors: &mut Errors) -> AuthConfig {
    let default = AuthConfig::default();
    let subaddress_separator = match raw.subaddress_separator {
        None => default.subaddress_separator,
        Some(s) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (None, _) => None,
                (Some(c), None) if c.is_ascii_punctuation() && c != '@' && c != '"' => Some(c),
                _ => {
                    errors.push(
                        "auth.subaddress_separator",
                        format!(
                            "invalid separator {s:?}; expected one ASCII punctuation character \
                             other than @ and \" (or \"\" to disable)"
                        ),
                    );
                    None
                }
            }
        }
    };
    let block_duration = match raw.block_seconds {
        None => default.block_duration,
        Some(0) => {
            errors.push("auth.block_seconds", "must be at least 1");
            default.block_duration
        }
        Some(s) => Duration::from_secs(s),
    };
    AuthConfig {
        allow_plaintext_on_loopback: raw
            .allow_plaintext_on_loopback
            .unwrap_or(default.allow_plaintext_on_loopback),
        subaddress_separator,
        max_failures_per_ip: raw
            .max_failures_per_ip
            .unwrap_or(default.max_failures_per_ip),
        max_failures_per_account: raw
            .max_failures_per_account
            .unwrap_or(default.max_failures_per_account),
        block_duration,
    }
}

fn limits(raw: RawLimits, errors: &mut Errors) -> Limits {
    let d = Limits::default();
    let mut at_least = |key: &str, value: Option<u64>, min: u64, default: u64| match value {
        None => default,
        Some(v) if v < min => {
            errors.push(format!("limits.{key}"), format!("must be at least {min}"));
            default
        }
        Some(v) => v,
    };
    let secs = |v: Duration| v.as_secs();
    let max_connections = at_least(
        "max_connections",
        raw.max_connections.map(|v| v as u64),
        1,
        d.max_connections as u64,
    );
    let max_connections_per_ip = at_least(
        "max_connections_per_ip",
        raw.max_connections_per_ip.map(|v| v as u64),
        1,
        d.max_connections_per_ip as u64,
    );
    let max_connections_per_ipv6_48 = at_least(
        "max_connections_per_ipv6_48",
        raw.max_connections_per_ipv6_48.map(|v| v as u64),
        1,
        max_connections_per_ip.saturating_mul(4),
    );
    let idle = at_least(
        "idle_timeout_seconds",
        raw.idle_timeout_seconds,
        1,
        secs(d.idle_timeout),
    );
    let handshake = at_least(
        "tls_handshake_timeout_seconds",
        raw.tls_handshake_timeout_seconds,
        1,
        secs(d.tls_handshake_timeout),
    );
    let max_message_size = at_least(
        "max_message_size",
        raw.max_message_size,
        1,
        d.max_message_size,
    );
    // A message of the largest size must fit the budget, or it would wait for room forever.
    let message_memory = at_least(
        "message_memory",
        raw.message_memory,
        max_message_size,
        Limits::default_message_memory(max_message_size),
    );
    let max_recipients = at_least(
        "max_recipients",
        raw.max_recipients.map(|v| v as u64),
        1,
        d.max_recipients as u64,
    );
    // RFC 5321 §4.5.3.1.6: an SMTP text line is up to 1000 octets including CRLF.
    let max_line_length = at_least(
        "max_line_length",
        raw.max_line_length.map(|v| v as u64),
        1000,
        d.max_line_length as u64,
    );
    // INBOX always exists.
    let max_mailboxes = at_least(
        "max_mailboxes",
        raw.max_mailboxes.map(|v| v as u64),
        1,
        d.max_mailboxes as u64,
    );
    let grace = raw
        .shutdown_grace_seconds
        .map_or(d.shutdown_grace, Duration::from_secs);
    // Values came from usize fields (or their defaults), so converting back cannot truncate.
    let usize_of = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Limits {
        max_connections: usize_of(max_connections),
        max_connections_per_ip: usize_of(max_connections_per_ip),
        max_connections_per_ipv6_48: usize_of(max_connections_per_ipv6_48),
        idle_timeout: Duration::from_secs(idle),
        tls_handshake_timeout: Duration::from_secs(handshake),
        max_message_size,
        message_memory,
        max_recipients: usize_of(max_recipients),
        max_line_length: usize_of(max_line_length),
        min_free_space: raw.min_free_space,
        max_mailboxes: usize_of(max_mailboxes),
        shutdown_grace: grace,
    }
}

fn tls(
    raw: RawTls,
    base_dir: &Path,
    listeners: &[ListenerConfig],
    errors: &mut Errors,
) -> TlsConfig {
    let cert = raw.cert.map(|p| base_dir.join(p));
    let key = raw.key.map(|p| base_dir.join(p));
    match (&cert, &key) {
        (Some(_), None) => errors.push("tls.key", "required when tls.cert is set"),
        (None, Some(_)) => errors.push("tls.cert", "required when tls.key is set"),
        _ => {}
    }
    let self_signed = raw.self_signed.unwrap_or(false);
    if self_signed && cert.is_some() {
        errors.push(
            "tls.self_signed",
            "cannot be combined with tls.cert; remove one of them",
        );
    }

    let mut domains = BTreeMap::new();
    for (name, pair) in raw.domains {
        let at = |key: &str| format!("tls.domains.\"{name}\".{key}");
        let lower = name.to_ascii_lowercase();
        if !is_dns_name(&lower, true) {
            errors.push(
                format!("tls.domains.\"{name}\""),
                "invalid name; expected a host name or *.parent wildcard",
            );
        }
        if pair.cert.is_none() {
            errors.push(at("cert"), "required");
        }
        if pair.key.is_none() {
            errors.push(at("key"), "required");
        }
        if let (Some(c), Some(k)) = (pair.cert, pair.key) {
            let pair = CertPair {
                cert: base_dir.join(c),
                key: base_dir.join(k),
            };
            if domains.insert(lower.clone(), pair).is_some() {
                errors.push(
                    format!("tls.domains.\"{name}\""),
                    format!("duplicate entry for {lower:?} (names are case-insensitive)"),
                );
            }
        }
    }

    let tls_listeners: Vec<String> = listeners
        .iter()
        .filter(|l| l.tls.uses_tls())
        .map(|l| format!("{:?}", l.name))
        .collect();
    if !tls_listeners.is_empty() && cert.is_none() && key.is_none() && !self_signed {
        errors.push(
            "tls",
            format!(
                "listeners {} use TLS but no certificate is configured; set tls.cert and \
                 tls.key, or tls.self_signed = true for testing",
                tls_listeners.join(", ")
            ),
        );
    }

    TlsConfig {
        cert,
        key,
        self_signed,
        domains,
    }
}

/// A DNS host name (RFC 1123 §2.1 labels: letters, digits, hyphens, not at either end; at most
/// 63 octets per label and 253 in total), optionally as a `*.parent` wildcard. A trailing dot
/// is not accepted: names here are compared as written.
pub(super) fn is_dns_name(name: &str, allow_wildcard: bool) -> bool {
    let name = match name.strip_prefix("*.") {
        Some(rest) if allow_wildcard => rest,
        _ => name,
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
