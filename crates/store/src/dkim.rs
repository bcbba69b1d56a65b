//! DKIM private keys: files in the data directory, `<data_dir>/dkim/<domain>/<selector>.<alg>.key`
//! (`alg` is `rsa` or `ed25519`), PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`, RFC 7468 §10),
//! mode 0600. The store only reads and writes the bytes; generating keys and signing with them is
//! `tern-delivery`'s business.
//!
//! Files rather than database rows so that an operator can back them up, rotate them, or use
//! them with other tools (`openssl pkey -in …`); a multi-node setup will copy the directory or
//! move the keys into the store.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Result, StoreError};

/// A DKIM key algorithm (RFC 6376 §3.3, RFC 8463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DkimAlgorithm {
    /// `rsa-sha256`.
    Rsa,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519,
}

impl DkimAlgorithm {
    /// The file name part: `rsa` or `ed25519`.
    pub fn file_tag(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// One private key as stored. `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKeyFile {
    /// The signing domain (`d=`), lowercase.
    pub domain: String,
    /// The selector the file is named after (the DNS selector adds `-rsa`/`-ed`, see
    /// `tern-delivery`).
    pub selector: String,
    /// The key type.
    pub algorithm: DkimAlgorithm,
    /// The PKCS#8 DER private key.
    pub pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for DkimKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeyFile")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("pkcs8_der", &"[redacted]")
            .finish()
    }
}

/// The directory holding a domain's keys.
pub fn dkim_dir(data_dir: &Path, domain: &str) -> PathBuf {
    data_dir.join("dkim").join(domain.to_ascii_lowercase())
}

/// Writes a new key file (mode 0600, fsync'd, then the directory fsync'd). Refuses to overwrite an
/// existing key ([`StoreError::AlreadyExists`]): the published DNS record belongs to it.
pub fn write_dkim_key(data_dir: &Path, key: &DkimKeyFile) -> Result<PathBuf> {
    check_name(&key.domain, true)?;
    check_name(&key.selector, false)?;
    let dir = dkim_dir(data_dir, &key.domain);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file_name(&key.selector, key.algorithm));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::AlreadyExists,
        _ => StoreError::Io(e),
    })?;
    file.write_all(pem(&key.pkcs8_der).as_bytes())?;
    file.sync_all()?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(path)
}

/// Every key under `<data_dir>/dkim/`, sorted by domain, selector and algorithm. A missing
/// directory means no keys; a file that is not a PEM private key is an error naming it.
pub fn read_dkim_keys(data_dir: &Path) -> Result<Vec<DkimKeyFile>> {
    let root = data_dir.join("dkim");
    let domains = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut keys = Vec::new();
    for domain in domains {
        let domain = domain?;
        if !domain.file_type()?.is_dir() {
            continue;
        }
        let Some(domain_name) = domain.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        for file in std::fs::read_dir(domain.path())? {
            let file = file?;
            let name = file.file_name();
            let Some((selector, algorithm)) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            let text = std::fs::read_to_string(file.path())?;
            let pkcs8_der = unpem(&text).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{}: not a PEM \"PRIVATE KEY\" (PKCS#8)",
                    file.path().display()
                ))
            })?;
            keys.push(DkimKeyFile {
                domain: domain_name.to_ascii_lowercase(),
                selector,
                algorithm,
                pkcs8_der,
            });
        }
    }
    keys.sort_by(|a, b| {
        (&a.domain, &a.selector, a.algorithm).cmp(&(&b.domain, &b.selector, b.algorithm))
    });
    Ok(keys)
}

fn file_name(selector: &str, algorithm: DkimAlgorithm) -> String {
    format!("{selector}.{}.key", algorithm.file_tag())
}

fn parse_file_name(name: &str) -> Option<(String, DkimAlgorithm)> {
    let stem = name.strip_suffix(".key")?;
    let (selector, tag) = stem.rsplit_once('.')?;
    let algorithm = match tag {
        "rsa" => DkimAlgorithm::Rsa,
        "ed25519" => DkimAlgorithm::Ed25519,
        _ => return None,
    };
    (!selector.is_empty()).then(|| (selector.to_owned(), algorithm))
}

/// Domains and selectors become path components: letters, digits, `-`, `_` and (domains) `.`,
/// never `..` or a leading dot.
fn check_name(name: &str, dots: bool) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (dots && b == b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("bad DKIM key name {name:?}")))
    }
}

/// RFC 7468 §10 PEM, 64-character lines.
fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn unpem(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = text.find("-----END PRIVATE KEY-----")?;
    let body: String = text
        .get(start..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(domain: &str, selector: &str, algorithm: DkimAlgorithm) -> DkimKeyFile {
        DkimKeyFile {
            domain: domain.into(),
            selector: selector.into(),
            algorithm,
            pkcs8_der: (0u8..=200).collect(),
        }
    }

    #[test]
    fn keys_round_trip_with_mode_0600_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_dkim_keys(dir.path()).unwrap().is_empty());
        let rsa = key("example.org", "tern", DkimAlgorithm::Rsa);
        let ed = key("example.org", "tern", DkimAlgorithm::Ed25519);
        let path = write_dkim_key(dir.path(), &ed).unwrap();
        write_dkim_key(dir.path(), &rsa).unwrap();
        assert!(path.ends_with("dkim/example.org/tern.ed25519.key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            write_dkim_key(dir.path(), &rsa),
            Err(StoreError::AlreadyExists)
        ));
        assert_eq!(read_dkim_keys(dir.path()).unwrap(), vec![rsa, ed]);
    }

    #[test]
    fn names_that_would_escape_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (d, s) in [("../x", "s"), ("a/b", "s"), ("ok.test", "a.b"), ("", "s")] {
            let k = key(d, s, DkimAlgorithm::Rsa);
            assert!(
                matches!(write_dkim_key(dir.path(), &k), Err(StoreError::Invalid(_))),
                "{d} {s}"
            );
        }
    }
}
