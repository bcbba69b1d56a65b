//! The shared DNS resolver: hickory-resolver configured from `[dns]` (the system configuration by
//! default, or explicit nameservers — tests run a local DNS server on a loopback port). MX routing
//! uses it; DNSBL, SPF, DKIM and DMARC will too. Build one per server and clone it: clones share
//! the cache.

use std::sync::Arc;

pub use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::config::DnsConfig;

/// Why the resolver could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The system configuration (`/etc/resolv.conf`) could not be read, or hickory refused the
    /// configuration.
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
}

/// A resolver for `config`: its nameservers over UDP and TCP on their ports, or the system's
/// configuration when none are given. `/etc/hosts` is only consulted with the system configuration
/// (explicit nameservers mean "ask exactly these", which is what tests rely on).
pub fn resolver(config: &DnsConfig) -> Result<TokioResolver, DnsError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if config.nameservers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| DnsError::Setup(e.to_string()))?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            provider,
        );
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        builder
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = config.timeout;
    // Names we look up are absolute (MX hosts, recipient domains): no search-list expansion.
    options.ndots = 0;
    builder.build().map_err(|e| DnsError::Setup(e.to_string()))
}

/// [`resolver`] behind an `Arc`, for services that share it.
pub fn shared_resolver(config: &DnsConfig) -> Result<Arc<TokioResolver>, DnsError> {
    resolver(config).map(Arc::new)
}
