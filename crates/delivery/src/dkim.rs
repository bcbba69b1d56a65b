//! DKIM signing (RFC 6376) of the mail our users submit and of our DSNs: per domain one RSA-2048
//! (`rsa-sha256`) and one Ed25519 (`ed25519-sha256`, RFC 8463) signature, relaxed/relaxed. Keys
//! are PKCS#8 files in the data directory (`tern_store::read_dkim_keys`); the DNS selector of the
//! key file `<S>.rsa.key` is `<S>-rsa`, of `<S>.ed25519.key` it is `<S>-ed`.
//!
//! mail-auth does the canonicalization and signing; this module picks the keys, generates them
//! with aws-lc-rs and prints the DNS records.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tern_store::{DkimAlgorithm, DkimKeyFile, StoreError};

/// Header fields we sign, in this order. RFC 6376 §5.4.1 recommends these; `From` is listed twice
/// so a second `From:` added later breaks the signature (oversigning, RFC 6376 §8.15). mail-auth also
/// lists every field named here that the message lacks, so none can be added without breaking it.
pub const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Reply-To",
    "Sender",
];

/// Why keys could not be generated, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimError {
    /// Reading or writing the key files failed (a key that exists already is
    /// `Store(StoreError::AlreadyExists)`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key file holds no usable key of its type, or key generation failed.
    #[error("DKIM key {0}")]
    Key(String),
    /// The domain has no keys.
    #[error("no DKIM keys for {0}; create them with `tern dkim generate {0}`")]
    NoKeys(String),
}

/// A DNS TXT record publishing one public key (RFC 6376 §3.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimRecord {
    /// The owner name, `<selector>._domainkey.<domain>`.
    pub name: String,
    /// The record text, e.g. `v=DKIM1; k=ed25519; p=…`.
    pub value: String,
}

impl fmt::Display for DkimRecord {
    /// Zone-file form: `name TXT "…" "…"`, the text split into character-strings of at most 255
    /// octets (RFC 1035 §3.3.14; RFC 6376 §3.6.2.2: the strings are concatenated).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} TXT", self.name)?;
        for chunk in self.value.as_bytes().chunks(255) {
            // The value is ASCII (tags and base64), so every chunk is valid UTF-8.
            write!(f, " \"{}\"", std::str::from_utf8(chunk).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// The DNS selector of a key file: `<selector>-rsa` or `<selector>-ed`.
pub fn dns_selector(selector: &str, algorithm: DkimAlgorithm) -> String {
    match algorithm {
        DkimAlgorithm::Rsa => format!("{selector}-rsa"),
        DkimAlgorithm::Ed25519 => format!("{selector}-ed"),
    }
}

/// Creates an RSA-2048 and an Ed25519 key for `domain` under `selector` (never overwriting) and
/// returns their DNS records.
pub fn generate_keys(
    data_dir: &Path,
    domain: &str,
    selector: &str,
) -> Result<Vec<DkimRecord>, DkimError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| DkimError::Key("generation (RSA) failed".into()))?;
    let rsa_der = rsa
        .as_der()
        .map_err(|_| DkimError::Key("encoding (RSA) failed".into()))?;
    let ed = Ed25519KeyPair::generate()
        .map_err(|_| DkimError::Key("generation (Ed25519) failed".into()))?;
    // PKCS#8 v1 (RFC 5208): the form every tool reads; v2 would add the public key.
    let ed_der = ed
        .to_pkcs8v1()
        .map_err(|_| DkimError::Key("encoding (Ed25519) failed".into()))?;
    let files = [
        (DkimAlgorithm::Rsa, rsa_der.as_ref().to_vec()),
        (DkimAlgorithm::Ed25519, ed_der.as_ref().to_vec()),
    ];
    // Refuse before writing anything if either file exists, so a half-written pair cannot happen.
    let dir = tern_store::dkim_dir(data_dir, &domain);
    for (algorithm, _) in &files {
        if dir
            .join(format!("{selector}.{}.key", algorithm.file_tag()))
            .exists()
        {
            return Err(DkimError::Store(StoreError::AlreadyExists));
        }
    }
    let mut records = Vec::new();
    for (algorithm, pkcs8_der) in files {
        let key = DkimKeyFile {
            domain: domain.clone(),
            selector: selector.to_owned(),
            algorithm,
            pkcs8_der,
        };
        tern_store::write_dkim_key(data_dir, &key)?;
        records.push(record(&key)?);
    }
    Ok(records)
}

/// The DNS records of every key `domain` has.
pub fn records(data_dir: &Path, domain: &str) -> Result<Vec<DkimRecord>, DkimError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let keys: Vec<DkimKeyFile> = tern_store::read_dkim_keys(data_dir)?
        .into_iter()
        .filter(|k| k.domain == domain)
        .collect();
    if keys.is_empty() {
        return Err(DkimError::NoKeys(domain));
    }
    keys.iter().map(record).collect()
}

/// RFC 6376 §3.6.1 key record. RSA: `p=` is the SubjectPublicKeyInfo DER (what OpenSSL-based
/// verifiers such as OpenDKIM parse); Ed25519: the raw 32-octet key (RFC 8463 §4.2).
fn record(key: &DkimKeyFile) -> Result<DkimRecord, DkimError> {
    let (k, public) = match key.algorithm {
        DkimAlgorithm::Rsa => {
            let pair = RsaKeyPair::from_pkcs8(&key.pkcs8_der)
                .map_err(|e| DkimError::Key(format!("{}/{}: {e}", key.domain, key.selector)))?;
            let spki = pair
                .public_key()
                .as_der()
                .map_err(|e| DkimError::Key(format!("{}/{}: {e}", key.domain, key.selector)))?;
            ("rsa", spki.as_ref().to_vec())
        }
        DkimAlgorithm::Ed25519 => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.pkcs8_der)
                .map_err(|e| DkimError::Key(format!("{}/{}: {e}", key.domain, key.selector)))?;
            ("ed25519", pair.public_key().as_ref().to_vec())
        }
    };
    Ok(DkimRecord {
        name: format!(
            "{}._domainkey.{}",
            dns_selector(&key.selector, key.algorithm),
            key.domain
        ),
        value: format!("v=DKIM1; k={k}; p={}", STANDARD.encode(public)),
    })
}

/// The signing keys of every domain, loaded once at start-up. Cheap to clone.
#[derive(Clone, Default)]
pub struct DkimSigners {
    by_domain: Arc<HashMap<String, Vec<DkimSigner<DkimKey, Done>>>>,
    /// ARC sealers (RFC 8617 §4.1.3: ARC signs with `rsa-sha256` only), by domain.
    sealers: Arc<HashMap<String, ArcSealer<DkimKey, Done>>>,
}

impl fmt::Debug for DkimSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut domains: Vec<&String> = self.by_domain.keys().collect();
        domains.sort();
        f.debug_struct("DkimSigners")
            .field("domains", &domains)
            .finish()
    }
}

impl DkimSigners {
    /// Loads every key under `<data_dir>/dkim/`. Per domain it signs with one key per algorithm,
    /// of `preferred_selector` when that selector has one, else of the selector sorting last
    /// (date-named selectors: the newest).
    pub fn load(data_dir: &Path, preferred_selector: &str) -> Result<DkimSigners, DkimError> {
        let mut chosen: HashMap<(String, DkimAlgorithm), DkimKeyFile> = HashMap::new();
        // Sorted by domain, selector, algorithm: later selectors replace earlier ones.
        for key in tern_store::read_dkim_keys(data_dir)? {
            let slot = (key.domain.clone(), key.algorithm);
            let keep_existing = chosen
                .get(&slot)
                .is_some_and(|k| k.selector == preferred_selector);
            if !keep_existing {
                chosen.insert(slot, key);
            }
        }
        let mut keys: Vec<DkimKeyFile> = chosen.into_values().collect();
        // RSA first: the signature most verifiers understand goes on top.
        keys.sort_by(|a, b| (&a.domain, a.algorithm).cmp(&(&b.domain, b.algorithm)));
        DkimSigners::from_keys(&keys)
    }

    /// Signers built from keys in memory, one signature per key, in the given order.
    pub fn from_keys(keys: &[DkimKeyFile]) -> Result<DkimSigners, DkimError> {
        let mut by_domain: HashMap<String, Vec<DkimSigner<DkimKey, Done>>> = HashMap::new();
        let mut sealers = HashMap::new();
        for key in keys {
            by_domain
                .entry(key.domain.clone())
                .or_default()
                .push(signer(key)?);
            if key.algorithm == DkimAlgorithm::Rsa {
                sealers.insert(key.domain.clone(), sealer(key)?);
            }
        }
        Ok(DkimSigners {
            by_domain: Arc::new(by_domain),
            sealers: Arc::new(sealers),
        })
    }

    /// The ARC sealer of `domain` (its RSA key), if any.
    pub(crate) fn sealer(&self, domain: &str) -> Option<&ArcSealer<DkimKey, Done>> {
        self.sealers.get(domain)
    }

    /// Whether no domain has keys.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The domain whose keys sign mail whose `From:` is in `author_domain`: exactly that domain,
    /// when it has keys. What our users submit is signed only like this: a key of a parent
    /// domain would vouch for a subdomain we may not host (RFC 6376 §3.10: `d=` claims
    /// responsibility), and the author check already made sure the `From:` domain is the
    /// account's to use.
    pub fn signing_domain(&self, author_domain: &str) -> Option<&str> {
        let domain = author_domain.trim_end_matches('.').to_ascii_lowercase();
        self.by_domain
            .get_key_value(&domain)
            .map(|(d, _)| d.as_str())
    }

    /// Like [`DkimSigners::signing_domain`], else the closest parent domain with keys. Only for
    /// what the server writes itself: a DSN from `MAILER-DAEMON@mx.example.org` (our hostname,
    /// which has no keys of its own) is signed by `example.org`, which DMARC's relaxed alignment
    /// accepts (RFC 7489 §3.1.1); and the ARC seal of an alias's domain.
    pub fn signing_domain_or_parent(&self, domain: &str) -> Option<&str> {
        let mut domain = domain.trim_end_matches('.');
        loop {
            if let Some((d, _)) = self.by_domain.get_key_value(&domain.to_ascii_lowercase()) {
                return Some(d.as_str());
            }
            domain = domain.split_once('.')?.1;
            // Never sign for a top-level domain.
            if !domain.contains('.') {
                return None;
            }
        }
    }

    /// The `DKIM-Signature:` fields (CRLF-terminated, RSA first) for the message made of `parts`
    /// (header fields added by us, then the message as received), signed by `domain`'s keys.
    /// Empty when `domain` has no keys; a key that fails to sign is logged and skipped.
    pub fn sign(&self, domain: &str, parts: &[&[u8]]) -> String {
        let mut fields = String::new();
        for signer in self.by_domain.get(domain).into_iter().flatten() {
            match signer.sign_chained(parts.iter().copied()) {
                Ok(signature) => fields.push_str(&signature.to_header()),
                Err(e) => tracing::error!(domain, error = %e, "DKIM signing failed"),
            }
        }
        fields
    }
}

/// The private key of a key file, as mail-auth takes it.
fn dkim_key(key: &DkimKeyFile) -> Result<DkimKey, DkimError> {
    let bad = |e: mail_auth::Error| DkimError::Key(format!("{}/{}: {e}", key.domain, key.selector));
    Ok(match key.algorithm {
        DkimAlgorithm::Rsa => RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(
            PrivatePkcs8KeyDer::from(key.pkcs8_der.as_slice()),
        ))
        .map_err(bad)?
        .into(),
        DkimAlgorithm::Ed25519 => Ed25519Key::from_pkcs8_maybe_unchecked_der(&key.pkcs8_der)
            .map_err(bad)?
            .into(),
    })
}

/// An ARC sealer for an RSA key (RFC 8617 §4.1.2: the ARC-Message-Signature signs like DKIM;
/// mail-auth uses relaxed/relaxed). It signs the author-visible fields and the DKIM signatures.
fn sealer(key: &DkimKeyFile) -> Result<ArcSealer<DkimKey, Done>, DkimError> {
    Ok(ArcSealer::from_key(dkim_key(key)?)
        .domain(key.domain.clone())
        .selector(dns_selector(&key.selector, key.algorithm))
        .headers([
            "From",
            "To",
            "Cc",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type",
            "Reply-To",
            "DKIM-Signature",
        ]))
}

/// A mail-auth signer for one key: relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4; survives the
/// whitespace and folding changes relays make), the [`SIGNED_HEADERS`].
fn signer(key: &DkimKeyFile) -> Result<DkimSigner<DkimKey, Done>, DkimError> {
    Ok(DkimSigner::from_key(dkim_key(key)?)
        .domain(key.domain.clone())
        .selector(dns_selector(&key.selector, key.algorithm))
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed))
}

#[cfg(test)]
mod tests;
