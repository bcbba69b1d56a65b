//! `tern.toml` as written: every key optional, unknown keys rejected by serde. Values that need
//! checking (addresses, enums, URLs) are kept as strings here so `validate.rs` can report every
//! bad one with its key path instead of stopping at the first. Defaults and their reasons are
//! documented on the typed fields in `mod.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub hostname: Option<String>,
    pub domains: Option<Vec<String>>,
    pub data_dir: Option<PathBuf>,
    /// `sqlite:<path>` or `postgres://…`.
    pub store: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// The account `tern serve` runs as after binding its ports, when started as root.
    pub user: Option<String>,
    pub allow_root: Option<bool>,
    /// `[[listener]]` tables; absent means the default listeners, `listener = []` means none.
    #[serde(rename = "listener")]
    pub listeners: Option<Vec<RawListener>>,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub filter: super::filter::RawFilter,
    #[serde(default)]
    pub dns: super::outbound::RawDns,
    #[serde(default)]
    pub outbound: super::outbound::RawOutbound,
    #[serde(default)]
    pub mail_auth: super::mail_auth::RawMailAuth,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    pub name: Option<String>,
    pub protocol: Option<String>,
    /// `ip:port`, `[ipv6]:port`, or just `port` (all IPv4 addresses).
    pub bind: Option<String>,
    /// `none`, `starttls` or `implicit`.
    pub tls: Option<String>,
    /// LMTP only: allow a bind address other than loopback.
    pub allow_remote: Option<bool>,
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub allow_plaintext_on_loopback: Option<bool>,
    /// One character; `""` disables sub-addressing.
    pub subaddress_separator: Option<String>,
    pub max_failures_per_ip: Option<u32>,
    pub max_failures_per_account: Option<u32>,
    pub block_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_connections_per_ipv6_48: Option<usize>,
    pub idle_timeout_seconds: Option<u64>,
    pub tls_handshake_timeout_seconds: Option<u64>,
    pub max_message_size: Option<u64>,
    pub message_memory: Option<u64>,
    pub max_recipients: Option<usize>,
    pub max_line_length: Option<usize>,
    pub min_free_space: Option<u64>,
    pub max_mailboxes: Option<usize>,
    pub shutdown_grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub self_signed: Option<bool>,
    #[serde(default)]
    pub domains: BTreeMap<String, RawCertPair>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertPair {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}
