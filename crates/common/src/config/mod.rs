//! Server configuration: `tern.toml` → raw serde structs (`raw.rs`, every key optional, unknown keys
//! rejected) → validated, typed [`Config`] (`validate.rs`).
//!
//! Validation never stops at the first problem: every error is collected with the key path it
//! belongs to (`listener[2].bind: invalid socket address "x"`) and [`ConfigErrors`] reports them
//! all at once, so `tern config check` shows an operator everything to fix in one run. Only TOML
//! syntax errors, unknown keys and wrong value types stop early; those come from the `toml` crate
//! with their line and column.
//!
//! A complete commented example lives in `tern.example.toml` at the repository root; the tests
//! parse it, so it cannot drift from this code.

mod filter;
mod mail_auth;
mod outbound;
mod raw;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use filter::{ClamdAddress, ClamdFailure, FilterConfig};
pub use mail_auth::{Cidr, DmarcRejectAction, MailAuthConfig, SpfFailAction};
pub use outbound::{DnsConfig, OutboundConfig, RelayConfig, RelayTls};

/// The validated server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name this server announces (SMTP greeting and EHLO, `Received:` headers, IMAP greeting).
    /// Default: the machine's hostname (`localhost` if it cannot be read); development profile:
    /// `localhost`. Production servers should set the FQDN their MX/PTR records point at, because
    /// receivers compare it with reverse DNS.
    pub hostname: String,
    /// Local mail domains, lowercased, internationalised labels as A-labels (`xn--`); they are
    /// created in the store at startup if missing.
    /// Default: none (domains can also be added with `tern domain add`); development profile:
    /// `["localhost"]` so `postmaster@localhost` works out of the box.
    pub domains: Vec<String>,
    /// Directory for the embedded database, blobs, the spool and generated certificates.
    /// Default: `/var/lib/tern` (FHS location for service state); development profile: the
    /// directory given to [`Config::development`] (`./tern-data`). Relative paths are resolved
    /// against the config file's directory.
    pub data_dir: PathBuf,
    /// Where metadata lives. Default: `sqlite:<data_dir>/tern.db`, the embedded store that needs
    /// nothing else installed.
    pub store: StoreUrl,
    /// Log line format. Default: `text` (human readable); `json` for log shippers.
    pub log_format: LogFormat,
    /// The system user `tern serve` switches to once its listeners are bound, when started as
    /// root: it then opens the store, reads TLS keys and accepts connections only as that user,
    /// so a flaw in a protocol session cannot act as root. Default: unset, which means `tern`
    /// when started as root (start-up fails if there is no such user, unless `allow_root`); a
    /// server started as another user stays that user, and setting `user` to someone else is
    /// then an error (only root can switch users).
    pub user: Option<String>,
    /// Keep running as root when started as root and `user` is unset. Default: `false`, because
    /// every parser of untrusted input would then run with full control of the machine; set it
    /// only where something else confines the process (a container without other privileges).
    /// The development profile (no config file, loopback only) has it on.
    pub allow_root: bool,
    /// Sockets to listen on. Default: the standard ports (see [`ListenerConfig::defaults`]);
    /// development profile: loopback ports 2525, 2587, 2465, 2143, 2993, 2110, 2995, 4190, 8080.
    pub listeners: Vec<ListenerConfig>,
    /// Authentication policy.
    pub auth: AuthConfig,
    /// Resource limits.
    pub limits: Limits,
    /// Certificates.
    pub tls: TlsConfig,
    /// Spam and malware filtering (`[filter]`).
    pub filter: FilterConfig,
    /// The DNS resolver (`[dns]`).
    pub dns: DnsConfig,
    /// Outbound delivery (`[outbound]`).
    pub outbound: OutboundConfig,
    /// Email authentication: DKIM signing, SPF/DKIM/DMARC/ARC verification (`[mail_auth]`).
    pub mail_auth: MailAuthConfig,
}

/// The metadata store.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// The embedded SQLite database at this path (`sqlite:<path>`).
    Sqlite(PathBuf),
    /// A PostgreSQL cluster (`postgres://…`). Parsed, but validation rejects it until the
    /// PostgreSQL store exists.
    Postgres(String),
}

impl fmt::Debug for StoreUrl {
    /// Never prints a PostgreSQL password: only scheme and host part after the `@`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => {
                let shown = match url.split_once("://") {
                    Some((scheme, rest)) => match rest.rsplit_once('@') {
                        Some((_, host)) => format!("{scheme}://[redacted]@{host}"),
                        None => url.clone(),
                    },
                    None => "[redacted]".to_owned(),
                };
                f.debug_tuple("Postgres").field(&shown).finish()
            }
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// SMTP relay/MX (RFC 5321), port 25.
    Smtp,
    /// Message submission with STARTTLS (RFC 6409), port 587.
    Submission,
    /// Message submission over implicit TLS (RFC 8314), port 465.
    Submissions,
    /// LMTP (RFC 2033), for delivery from another MTA on the same host or network.
    Lmtp,
    /// IMAP with STARTTLS (RFC 9051), port 143.
    Imap,
    /// IMAP over implicit TLS (RFC 8314), port 993.
    Imaps,
    /// POP3 with STLS (RFC 1939, RFC 2595), port 110.
    Pop3,
    /// POP3 over implicit TLS (RFC 8314), port 995.
    Pop3s,
    /// ManageSieve (RFC 5804), port 4190.
    ManageSieve,
    /// HTTP admin API, metrics and health.
    Http,
}

impl Protocol {
    /// Every protocol, in the order of the default listeners.
    pub const ALL: [Protocol; 10] = [
        Self::Smtp,
        Self::Submission,
        Self::Submissions,
        Self::Lmtp,
        Self::Imap,
        Self::Imaps,
        Self::Pop3,
        Self::Pop3s,
        Self::ManageSieve,
        Self::Http,
    ];

    /// The name used in `tern.toml` (`protocol = "imaps"`) and as the default listener name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Submission => "submission",
            Self::Submissions => "submissions",
            Self::Lmtp => "lmtp",
            Self::Imap => "imap",
            Self::Imaps => "imaps",
            Self::Pop3 => "pop3",
            Self::Pop3s => "pop3s",
            Self::ManageSieve => "managesieve",
            Self::Http => "http",
        }
    }

    /// Parses the name used in `tern.toml`.
    pub fn from_name(name: &str) -> Option<Protocol> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The TLS mode a listener gets when the config does not say: implicit TLS for the `…s`
    /// protocols (RFC 8314), STARTTLS for the cleartext mail protocols, none for LMTP (local
    /// delivery) and HTTP (usually behind a reverse proxy).
    pub fn default_tls(self) -> TlsMode {
        match self {
            Self::Submissions | Self::Imaps | Self::Pop3s => TlsMode::Implicit,
            Self::Smtp | Self::Submission | Self::Imap | Self::Pop3 | Self::ManageSieve => {
                TlsMode::StartTls
            }
            Self::Lmtp | Self::Http => TlsMode::None,
        }
    }

    /// The IANA port. LMTP has none (RFC 2033 forbids port 25); 24 is the customary choice.
    pub fn standard_port(self) -> u16 {
        match self {
            Self::Smtp => 25,
            Self::Submission => 587,
            Self::Submissions => 465,
            Self::Lmtp => 24,
            Self::Imap => 143,
            Self::Imaps => 993,
            Self::Pop3 => 110,
            Self::Pop3s => 995,
            Self::ManageSieve => 4190,
            Self::Http => 8080,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a listener uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Cleartext only.
    None,
    /// Cleartext first; the client upgrades with STARTTLS/STLS.
    StartTls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

impl TlsMode {
    /// The name used in `tern.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
        }
    }

    /// Parses the name used in `tern.toml`.
    pub fn from_name(name: &str) -> Option<TlsMode> {
        [Self::None, Self::StartTls, Self::Implicit]
            .into_iter()
            .find(|m| m.as_str() == name)
    }

    /// True when the listener needs a certificate.
    pub fn uses_tls(self) -> bool {
        !matches!(self, Self::None)
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Unique name, used in logs and metrics. Default: the protocol name (`imaps`), so two
    /// listeners of one protocol need explicit names.
    pub name: String,
    /// The protocol spoken. Required.
    pub protocol: Protocol,
    /// Address and port. Default: `0.0.0.0:<standard port>` (`127.0.0.1:8080` for HTTP, which
    /// is an admin interface and should not be exposed unless asked for).
    pub bind: SocketAddr,
    /// TLS mode. Default: [`Protocol::default_tls`].
    pub tls: TlsMode,
    /// Concurrent connections on this listener. Default: none of its own, only the global
    /// `limits.max_connections`; set it (e.g. on port 25) so a flood of one protocol cannot
    /// take the slots the others' users need.
    pub max_connections: Option<usize>,
}

impl ListenerConfig {
    /// A listener with the protocol's default name and TLS mode.
    pub fn new(protocol: Protocol, bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: protocol.as_str().to_owned(),
            protocol,
            bind,
            tls: protocol.default_tls(),
            max_connections: None,
        }
    }

    /// The production listeners used when `tern.toml` has no `[[listener]]`: every standard
    /// port on all IPv4 addresses (LMTP is off unless configured), HTTP on loopback only.
    pub fn defaults() -> Vec<ListenerConfig> {
        Protocol::ALL
            .into_iter()
            .filter(|p| *p != Protocol::Lmtp)
            .map(|p| {
                let ip = match p {
                    Protocol::Http => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                };
                ListenerConfig::new(p, SocketAddr::new(ip, p.standard_port()))
            })
            .collect()
    }

    /// The development listeners: loopback only, unprivileged ports.
    pub fn development() -> Vec<ListenerConfig> {
        [
            (Protocol::Smtp, 2525),
            (Protocol::Submission, 2587),
            (Protocol::Submissions, 2465),
            (Protocol::Imap, 2143),
            (Protocol::Imaps, 2993),
            (Protocol::Pop3, 2110),
            (Protocol::Pop3s, 2995),
            (Protocol::ManageSieve, 4190),
            (Protocol::Http, 8080),
        ]
        .into_iter()
        .map(|(p, port)| {
            ListenerConfig::new(p, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        })
        .collect()
    }
}

/// Authentication policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Accept passwords over cleartext connections from loopback addresses. Default: `false`
    /// (passwords only after TLS); development profile: `true` so benchmarks and simple clients
    /// can log in on a loopback-only server.
    pub allow_plaintext_on_loopback: bool,
    /// Sub-address separator (`user+tag@domain` delivers to `user@domain`). Default: `'+'`, the
    /// most common convention; `""` in the file disables sub-addressing.
    pub subaddress_separator: Option<char>,
    /// Failed logins from one client address (IPv6: one /64), at any account names, within
    /// `block_duration` before the address is refused outright for `block_duration` (each block
    /// is logged with its reason); from half as many on, its attempts are slowed down like
    /// `max_failures_per_account`'s. A successful login forgives that account's failures from
    /// that address (a mistyped password), and a repeat of the same wrong password counts once
    /// (a device retrying an old one). Loopback is not exempt. Default: 20, as fail2ban's
    /// common settings: high enough that a household behind one address typing passwords wrong
    /// is not blocked, low enough that one address guesses little. 0 disables the per-address
    /// tarpit and block.
    pub max_failures_per_ip: u32,
    /// Failed logins for one account from one client address (IPv6: one /64) within
    /// `block_duration` before further attempts for that account from that address are slowed
    /// down (tarpit): the next waits 1 s, then 2, 4, 8, up to 15 s, before its password is
    /// checked. Never refused, and never counted across addresses: failures elsewhere (an
    /// attacker, a device with an old password) neither delay nor lock out the account's other
    /// devices, and the right password still logs in after at most the current delay. Default: 5,
    /// generous for typos; 0 disables the tarpit per account.
    pub max_failures_per_account: u32,
    /// How long a blocked address is refused, and the window failures are counted in. Default:
    /// 300 s, long enough to make guessing from one address useless, short enough that a
    /// household blocked by its own typos waits minutes, not hours.
    pub block_duration: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_plaintext_on_loopback: false,
            subaddress_separator: Some('+'),
            max_failures_per_ip: 20,
            max_failures_per_account: 5,
            block_duration: Duration::from_secs(300),
        }
    }
}

/// Resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent connections over all listeners. Default: 10 000, well below a typical 64k
    /// file-descriptor limit while leaving room for the store and outbound connections.
    pub max_connections: usize,
    /// Concurrent connections from one IP address (IPv6: one /64). Default: 50, enough for a
    /// NAT'ed office running IMAP clients that open several connections each.
    pub max_connections_per_ip: usize,
    /// Concurrent connections from one IPv6 /48, all its /64s together. Default: 4 ×
    /// `max_connections_per_ip` (200): a site usually holds a whole /48, and a client rotating
    /// through its 65 536 /64s would otherwise get `max_connections_per_ip` slots in each.
    pub max_connections_per_ipv6_48: usize,
    /// Idle time after which a session is closed. Default: 10 min; longer than the 5 min SMTP
    /// server timeout of RFC 5321 §4.5.3.2.7, shorter than IMAP's 30 min autologout
    /// (RFC 9051 §5.4), whose clients re-IDLE well before that anyway.
    pub idle_timeout: Duration,
    /// Time a client gets to finish a TLS handshake. Default: 30 s, enough for slow links while
    /// stopping half-open connections from pinning a slot.
    pub tls_handshake_timeout: Duration,
    /// Largest accepted message in bytes (SMTP `SIZE`, IMAP `APPEND`). Default: 50 MiB, what
    /// large mail providers accept after base64 inflation of ~35 MiB attachments.
    pub max_message_size: u64,
    /// Octets of message text all SMTP and IMAP sessions together may hold in memory: text
    /// still arriving (up to 256 KiB of each message, DATA, BDAT or an APPEND literal; the
    /// rest waits in `<data_dir>/spool/`) and whole messages being delivered or stored. A message that finds no room waits for it. Default:
    /// 256 MiB or four times `max_message_size`, whichever is more, so a few messages of the
    /// largest size can be delivered at once; at least `max_message_size`, or a message of
    /// that size could never be delivered.
    pub message_memory: u64,
    /// Recipients per message. Default: 100, the minimum RFC 5321 §4.5.3.1.8 requires a
    /// server to accept.
    pub max_recipients: usize,
    /// Longest protocol command line in bytes, CRLF included. Default: 8192, the IMAP command
    /// length RFC 7162 §4 asks servers to accept; at least 1000, the SMTP text line of
    /// RFC 5321 §4.5.3.1.6.
    pub max_line_length: usize,
    /// Free octets the data directory's volume must keep: below it new mail gets temporary
    /// errors (SMTP `452 4.3.1`, IMAP `NO [OVERQUOTA]`) instead of failing halfway through a
    /// write. `None` (the default): 1 GiB or 5 % of the volume, whichever is smaller; 0: no
    /// minimum. See [`crate::disk`].
    pub min_free_space: Option<u64>,
    /// Mailboxes one account may have (IMAP CREATE and RENAME beyond it get `NO [LIMIT]`).
    /// Default: 10 000, far more than any mail client shows, while bounding what one account
    /// can make every LIST, and the store, go through.
    pub max_mailboxes: usize,
    /// After a shutdown signal, how long sessions may run to finish before they are aborted.
    /// Default: 10 s, enough to complete a transaction in progress; service managers usually
    /// kill after 90 s.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The default of `message_memory` for a size limit: 256 MiB or four messages of the
    /// largest size, whichever is more.
    pub fn default_message_memory(max_message_size: u64) -> u64 {
        (256u64 << 20).max(max_message_size.saturating_mul(4))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: 50,
            max_connections_per_ipv6_48: 200,
            idle_timeout: Duration::from_secs(600),
            tls_handshake_timeout: Duration::from_secs(30),
            max_message_size: 50 * 1024 * 1024,
            message_memory: Limits::default_message_memory(50 * 1024 * 1024),
            max_recipients: 100,
            max_line_length: 8192,
            min_free_space: None,
            max_mailboxes: 10_000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first) served when no SNI entry matches. Default: none.
    /// Relative paths are resolved against the config file's directory.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `cert`. Default: none; required with `cert`.
    pub key: Option<PathBuf>,
    /// Generate and use a self-signed certificate in `<data_dir>/tls/` when no `cert` is set.
    /// Default: `false`, because clients reject it; development profile: `true`.
    pub self_signed: bool,
    /// Per-name certificates chosen by SNI: exact names (`mail.example.org`) or wildcards
    /// (`*.example.org`). Default: none.
    pub domains: BTreeMap<String, CertPair>,
}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Config {
    /// Parses and validates `tern.toml` text. Relative paths are resolved against `base_dir`
    /// (the directory of the config file).
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let raw: raw::RawConfig = toml::from_str(text)
            .map_err(|e| ConfigErrors::single(ConfigError::new("", e.to_string().trim_end())))?;
        validate::validate(raw, base_dir)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            ))
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Config::from_toml_str(&text, base_dir).map_err(|mut errors| {
            for e in &mut errors.errors {
                if e.path.is_empty() {
                    e.message = format!("{}: {}", path.display(), e.message);
                }
            }
            errors
        })
    }

    /// The built-in development profile used by `tern serve` without a config file: loopback
    /// listeners on unprivileged ports, a self-signed certificate, plaintext auth allowed on
    /// loopback, the domain `localhost`, and data in `data_dir`.
    pub fn development(data_dir: PathBuf) -> Config {
        Config {
            hostname: "localhost".to_owned(),
            domains: vec!["localhost".to_owned()],
            store: StoreUrl::Sqlite(data_dir.join("tern.db")),
            data_dir,
            log_format: LogFormat::Text,
            user: None,
            // Loopback only, for trying Tern out: it runs as whoever starts it (root with a
            // warning), so `cargo run -- serve` works as is on a fresh machine. Every config
            // file refuses root unless it says `allow_root = true`.
            allow_root: true,
            listeners: ListenerConfig::development(),
            auth: AuthConfig {
                allow_plaintext_on_loopback: true,
                ..AuthConfig::default()
            },
            limits: Limits::default(),
            tls: TlsConfig {
                self_signed: true,
                ..TlsConfig::default()
            },
            filter: FilterConfig::default(),
            dns: DnsConfig::new(),
            // Private and loopback MX answers stay refused: the only mail that leaves a
            // development server goes to real domains, whose DNS could otherwise make it
            // connect into the developer's machine or network.
            outbound: OutboundConfig::default(),
            // DESIGN.md: mail on port 25 is verified, loopback included, unless a relay is trusted.
            mail_auth: MailAuthConfig::default(),
        }
    }

    /// The names a generated self-signed certificate should cover: the hostname and every
    /// local domain, without duplicates.
    pub fn self_signed_names(&self) -> Vec<String> {
        let mut names = vec![self.hostname.clone()];
        for d in &self.domains {
            if !names.contains(d) {
                names.push(d.clone());
            }
        }
        names
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path (`listener[2].bind`, `tls.key`); empty for file-level errors (TOML syntax,
    /// unknown keys, unreadable file), whose message carries the location.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration; `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    fn single(error: ConfigError) -> ConfigErrors {
        ConfigErrors {
            errors: vec![error],
        }
    }

    /// The individual errors, in the order found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The machine's hostname, or `localhost` when it cannot be read.
fn machine_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| !s.is_empty() && validate::is_dns_name(s, false))
        .unwrap_or_else(|| "localhost".to_owned())
}
