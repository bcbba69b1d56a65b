//! Server certificates: loading PEM files, SNI selection, reload, and the self-signed
//! development certificate.
//!
//! rustls with the aws-lc-rs provider, passed explicitly to every config, so no process-wide
//! default provider has to be installed. One [`rustls::ServerConfig`] is built per
//! [`TlsStore`] around a resolver whose certificate set is swapped atomically by
//! [`TlsStore::reload`]; acceptors handed out earlier see new certificates on their next
//! handshake.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{CertPair, TlsConfig};

/// Errors loading or generating certificates. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{}: invalid PEM: {source}", .path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser found.
        source: pem::Error,
    },
    /// A certificate file contains no certificate.
    #[error("{}: no certificate found (expected PEM \"BEGIN CERTIFICATE\" blocks)", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file contains no private key.
    #[error("{}: no private key found (expected a PEM PKCS#8, PKCS#1 or SEC1 key)", .path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The leaf certificate cannot be parsed.
    #[error("{}: invalid certificate: {source}", .path.display())]
    InvalidCertificate {
        /// The certificate file.
        path: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
    /// The private key cannot be used for signing (unsupported algorithm, malformed).
    #[error("{}: unusable private key: {source}", .path.display())]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
    /// The key does not belong to the certificate.
    #[error("{}: private key does not match the certificate in {}", .key.display(), .cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// No default certificate is configured.
    #[error("no TLS certificate configured: set tls.cert and tls.key, or tls.self_signed = true")]
    NotConfigured,
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A generated file could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// rustls rejected the server configuration.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The server's certificates: a default one and any number chosen by SNI.
#[derive(Debug)]
pub struct TlsStore {
    default: CertPair,
    domains: BTreeMap<String, CertPair>,
    provider: Arc<CryptoProvider>,
    resolver: Arc<SniResolver>,
    config: Arc<ServerConfig>,
}

impl TlsStore {
    /// Loads the default certificate and the per-name ones (`mail.example.org` or
    /// `*.example.org`, as in [`TlsConfig::domains`]).
    pub fn load(
        default: CertPair,
        domains: BTreeMap<String, CertPair>,
    ) -> Result<TlsStore, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let set = CertSet::load(&default, &domains, &provider)?;
        let resolver = Arc::new(SniResolver {
            current: RwLock::new(Arc::new(set)),
        });
        let config = server_config(&provider, &resolver, Vec::new())?;
        Ok(TlsStore {
            default,
            domains,
            provider,
            resolver,
            config,
        })
    }

    /// Builds the store `[tls]` describes: `cert`/`key` if set, else the self-signed certificate
    /// in `data_dir/tls/` for `self_signed_names` when `self_signed` is on, plus the SNI entries.
    pub fn from_config(
        tls: &TlsConfig,
        data_dir: &Path,
        self_signed_names: &[String],
    ) -> Result<TlsStore, TlsError> {
        let default = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => CertPair {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if tls.self_signed => ensure_self_signed(data_dir, self_signed_names)?,
            _ => return Err(TlsError::NotConfigured),
        };
        TlsStore::load(default, tls.domains.clone())
    }

    /// A store serving the development certificate `dir/tls/self-signed.{crt,key}` for `names`
    /// (host names or IP addresses; `localhost` if empty). The files are generated on first use
    /// (key mode 0600) and reused afterwards, so clients that trusted it once keep trusting it.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<TlsStore, TlsError> {
        let pair = ensure_self_signed(dir, names)?;
        TlsStore::load(pair, BTreeMap::new())
    }

    /// Re-reads every certificate and key file and swaps them in atomically; handshakes already
    /// running finish with the old ones. On error the old certificates stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let set = CertSet::load(&self.default, &self.domains, &self.provider)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    /// An acceptor for implicit TLS and STARTTLS, without ALPN.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }

    /// An acceptor offering these ALPN protocol ids (RFC 7301), e.g. `b"imap"` or `b"h2"`.
    pub fn acceptor_with_alpn(&self, protocols: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
        let alpn = protocols.iter().map(|p| p.to_vec()).collect();
        let config = server_config(&self.provider, &self.resolver, alpn)?;
        Ok(TlsAcceptor::from(config))
    }

    /// The rustls server configuration behind [`TlsStore::acceptor`].
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The default certificate and key files.
    pub fn default_files(&self) -> &CertPair {
        &self.default
    }
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<SniResolver>,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    // TLS 1.2 and 1.3: mail clients still in use need 1.2 (RFC 8996 only retires 1.0/1.1).
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(resolver) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

/// Picks a certificate by SNI from the current set.
#[derive(Debug)]
struct SniResolver {
    current: RwLock<Arc<CertSet>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        Some(set.select(client_hello.server_name()))
    }
}

/// One loaded generation of certificates.
#[derive(Debug)]
struct CertSet {
    default: Arc<CertifiedKey>,
    /// Exact names, lowercase.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.parent` entries, keyed by `parent`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertSet {
    fn load(
        default: &CertPair,
        domains: &BTreeMap<String, CertPair>,
        provider: &CryptoProvider,
    ) -> Result<CertSet, TlsError> {
        let mut set = CertSet {
            default: Arc::new(load_pair(default, provider)?),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        for (name, pair) in domains {
            let key = Arc::new(load_pair(pair, provider)?);
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => set.wildcard.insert(parent.to_owned(), key),
                None => set.exact.insert(name, key),
            };
        }
        Ok(set)
    }

    /// The exact name, then the wildcard for its parent (a wildcard covers one label,
    /// RFC 6125 §6.4.3), else the default certificate (also without SNI).
    fn select(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return Arc::clone(&self.default);
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let found = self.exact.get(&name).or_else(|| {
            name.split_once('.')
                .and_then(|(_, parent)| self.wildcard.get(parent))
        });
        Arc::clone(found.unwrap_or(&self.default))
    }
}

fn load_pair(pair: &CertPair, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem_error = |path: &Path, e: pem::Error| match e {
        pem::Error::Io(source) => TlsError::Read {
            path: path.to_owned(),
            source,
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    };
    let chain = CertificateDer::pem_file_iter(&pair.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(&pair.cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: pair.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&pair.key).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: pair.key.clone(),
        },
        e => pem_error(&pair.key, e),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::KeyMismatch {
            cert: pair.cert.clone(),
            key: pair.key.clone(),
        },
        // The leaf certificate itself is unparsable.
        source @ rustls::Error::InvalidCertificate(_) => TlsError::InvalidCertificate {
            path: pair.cert.clone(),
            source,
        },
        source => TlsError::InvalidKey {
            path: pair.key.clone(),
            source,
        },
    })
}

/// Returns the paths of `dir/tls/self-signed.{crt,key}`, generating them if either is missing.
fn ensure_self_signed(dir: &Path, names: &[String]) -> Result<CertPair, TlsError> {
    let tls_dir = dir.join("tls");
    let pair = CertPair {
        cert: tls_dir.join("self-signed.crt"),
        key: tls_dir.join("self-signed.key"),
    };
    if pair.cert.is_file() && pair.key.is_file() {
        return Ok(pair);
    }
    let names = if names.is_empty() {
        vec!["localhost".to_owned()]
    } else {
        names.to_vec()
    };
    let generated = rcgen::generate_simple_self_signed(names.clone())?;
    create_private_dir(&tls_dir)?;
    // Key first, then certificate: a crash in between leaves no certificate, so the next start
    // regenerates both instead of pairing a certificate with a foreign key.
    write_atomically(
        &pair.key,
        generated.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_atomically(&pair.cert, generated.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(
        cert = %pair.cert.display(),
        names = ?names,
        "generated a self-signed TLS certificate; clients will not trust it"
    );
    Ok(pair)
}

fn create_private_dir(path: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to a temporary file created with `mode`, syncs it and renames it over `path`,
/// so readers never see a half-written key and the key is never readable by others.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
