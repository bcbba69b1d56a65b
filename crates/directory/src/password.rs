//! Password storage: argon2id PHC strings for PLAIN/LOGIN and SCRAM-SHA-256 credentials
//! (RFC 5802 §3, RFC 7677) so that SCRAM works without the plaintext.
//!
//! Passwords are prepared with a SASLprep subset ([`prepare`]) before hashing and before
//! every verification, so PLAIN, LOGIN and SCRAM all see the same string.

use std::fmt;
use std::num::NonZeroU32;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::{constant_time, digest, hmac, pbkdf2, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Longest password accepted, in bytes. Longer inputs are refused before any hashing so a
/// client cannot make the server hash megabytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// SCRAM iteration count for new credentials. RFC 7677 §4 makes 4096 the minimum and says
/// it should be raised as hardware gets faster; 10,000 costs a client about 5 ms once per
/// login (clients cache SaltedPassword) and an attacker holding a stolen verifier 2.4× more
/// per guess. Verifiers stored with fewer iterations keep working until the password changes.
pub const SCRAM_ITERATIONS: u32 = 10_000;

/// Why a password could not be set or a stored credential could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password is shorter than the configured minimum.
    #[error("the password is too short: use at least {min} characters")]
    TooShort {
        /// Minimum length in characters.
        min: usize,
    },
    /// The password is longer than [`MAX_PASSWORD_LEN`] bytes.
    #[error("the password is too long: at most {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// The password contains a control or otherwise prohibited character (SASLprep, RFC 4013 §2.3).
    #[error("the password contains a control character")]
    ProhibitedCharacter,
    /// The argon2 parameters are invalid or hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A stored SCRAM credential string is malformed.
    #[error("malformed stored SCRAM-SHA-256 credentials")]
    MalformedScram,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// argon2id cost parameters for new hashes. Verification always uses the parameters stored
/// in the PHC string, so changing these only affects passwords set afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB. Default 19456 (19 MiB, OWASP password storage cheat sheet).
    pub m_cost_kib: u32,
    /// Iterations. Default 2.
    pub t_cost: u32,
    /// Parallelism. Default 1.
    pub p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            m_cost_kib: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
        }
    }
}

/// SASLprep-lite (RFC 4013 subset): maps non-ASCII spaces to U+0020 (§2.1 table C.1.2),
/// removes characters "commonly mapped to nothing" (table B.1) and rejects control characters
/// (tables C.2.1, C.2.2). Not implemented: NFKC normalisation (§2.2), bidi checks (§6) and the
/// other prohibited tables — a password typed in a decomposed form on one client and composed
/// on another will not match.
pub fn prepare(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    let mut out = String::with_capacity(password.len());
    for c in password.chars() {
        if is_mapped_to_nothing(c) {
            continue;
        }
        if c.is_control() {
            return Err(PasswordError::ProhibitedCharacter);
        }
        out.push(if is_non_ascii_space(c) { ' ' } else { c });
    }
    Ok(out)
}

/// Checks a new password against the policy: not empty, at least `min_len` characters after
/// [`prepare`], no prohibited characters. Returns the prepared password.
pub fn check_new_password(password: &str, min_len: usize) -> Result<String, PasswordError> {
    let prepared = prepare(password)?;
    if prepared.is_empty() {
        return Err(PasswordError::Empty);
    }
    if prepared.chars().count() < min_len {
        return Err(PasswordError::TooShort { min: min_len });
    }
    Ok(prepared)
}

/// Hashes a prepared password into an argon2id PHC string with a random 16-byte salt.
pub fn hash_password(prepared: &str, params: Argon2Params) -> Result<String, PasswordError> {
    fn hash_err(e: impl fmt::Display) -> PasswordError {
        PasswordError::Hash(e.to_string())
    }
    let params =
        Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None).map_err(hash_err)?;
    let salt = random_bytes::<16>()?;
    let output = argon2_output(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        prepared.as_bytes(),
        &salt,
        Params::DEFAULT_OUTPUT_LEN,
    )
    .map_err(hash_err)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hash_err)?,
        salt: Some(Salt::new(&salt).map_err(hash_err)?),
        hash: Some(Output::new(&output).map_err(hash_err)?),
    };
    Ok(hash.to_string())
}

/// Verifies a prepared password against a PHC string, using the algorithm, version and
/// parameters stored in it. A malformed PHC string never matches.
pub fn verify_password(prepared: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    argon2_output(
        algorithm,
        version,
        params,
        prepared.as_bytes(),
        salt,
        expected.len(),
    )
    .ok()
    .and_then(|out| Output::new(&out).ok())
    // `Output`'s equality is constant-time.
    .is_some_and(|computed| &computed == expected)
}

/// Smallest allocation glibc always serves with its own `mmap` and gives back with `munmap` on
/// free: the dynamic mmap threshold never rises above 32 MiB on 64-bit (mallopt(3),
/// `DEFAULT_MMAP_THRESHOLD_MAX`). Below it, once one argon2 block (19 MiB by default) has been
/// freed the threshold rises past its size and every later one comes from the calling thread's
/// arena, where it stays resident after the hash: after a login burst spread over the blocking
/// pool that was ~850 MiB of RSS (16 arenas holding 2–3 blocks each) under 2,000 idle IMAP
/// sessions (`idle_conns.py`).
const ARGON2_MIN_ALLOCATION: usize = 33 << 20;

/// Runs argon2 in memory allocated for this one hash (see [`ARGON2_MIN_ALLOCATION`]): only the
/// `m_cost` pages argon2 touches become resident, and they go back to the OS afterwards.
fn argon2_output(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    output_len: usize,
) -> Result<Vec<u8>, argon2::Error> {
    let blocks = params.block_count();
    let capacity = blocks.max(ARGON2_MIN_ALLOCATION / Block::SIZE);
    let mut memory: Vec<Block> = Vec::new();
    memory
        .try_reserve_exact(capacity)
        .map_err(|_| argon2::Error::OutOfMemory)?;
    memory.resize(blocks, Block::default());
    let mut out = vec![0u8; output_len];
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut memory[..],
    )?;
    Ok(out)
}

/// SCRAM-SHA-256 server credentials (RFC 5802 §3): what the server keeps instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramCredentials {
    /// Derives credentials from a prepared password with a fresh random 16-byte salt.
    pub fn generate(prepared: &str) -> Result<Self, PasswordError> {
        let salt = random_bytes::<16>()?;
        Ok(Self::derive(
            prepared,
            &salt,
            nonzero_iterations(SCRAM_ITERATIONS),
        ))
    }

    /// RFC 5802 §3: SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SaltedPassword,
    /// "Client Key"); StoredKey = H(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key").
    pub fn derive(prepared: &str, salt: &[u8], iterations: NonZeroU32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            prepared.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        Self {
            iterations: iterations.get(),
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// Parses `SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>`.
    pub fn parse(s: &str) -> Result<Self, PasswordError> {
        let bad = || PasswordError::MalformedScram;
        let rest = s.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (params, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iterations, salt) = params.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let iterations: u32 = iterations.parse().map_err(|_| bad())?;
        if iterations == 0 {
            return Err(bad());
        }
        let salt = B64.decode(salt).map_err(|_| bad())?;
        let decode_key = |k: &str| -> Result<[u8; 32], PasswordError> {
            B64.decode(k)
                .map_err(|_| bad())?
                .try_into()
                .map_err(|_| bad())
        };
        Ok(Self {
            iterations,
            salt,
            stored_key: decode_key(stored)?,
            server_key: decode_key(server)?,
        })
    }
}

impl fmt::Display for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .field("keys", &"[redacted]")
            .finish()
    }
}

pub(crate) fn nonzero_iterations(i: u32) -> NonZeroU32 {
    NonZeroU32::new(i).unwrap_or(NonZeroU32::MIN)
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    to_array(hmac::sign(&key, data).as_ref())
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    to_array(digest::digest(&digest::SHA256, data).as_ref())
}

/// Constant-time equality (aws-lc `CRYPTO_memcmp`); slices of different length are unequal.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], PasswordError> {
    let mut buf = [0u8; N];
    rand::fill(&mut buf).map_err(|_| PasswordError::Random)?;
    Ok(buf)
}

fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SHA-256 digests and HMAC-SHA256 tags are exactly 32 bytes.
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// RFC 3454 table C.1.2 (non-ASCII space characters).
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// RFC 3454 table B.1 (commonly mapped to nothing).
fn is_mapped_to_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Params {
        Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// The hand-driven argon2 (own memory allocation) agrees with the crate's PHC hasher and
    /// verifier in both directions, for every algorithm, both versions and any output length.
    #[test]
    fn argon2_matches_the_reference_phc_implementation() {
        use argon2::password_hash::{CustomizedPasswordHasher, PasswordHasher, PasswordVerifier};

        let ours = hash_password("pw", cheap()).unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{ours}");
        let reference = Argon2::default();
        assert!(reference.verify_password(b"pw", ours.as_str()).is_ok());
        assert!(reference.verify_password(b"px", ours.as_str()).is_err());

        let salt = b"sixteen byte slt";
        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            for version in [Version::V0x13, Version::V0x10] {
                for output_len in [16, 32, 64] {
                    let params = Params::new(32, 2, 2, Some(output_len)).unwrap();
                    let phc = reference
                        .hash_password_customized(
                            b"secret",
                            salt,
                            Some(algorithm.ident().as_str()),
                            Some(version.into()),
                            params,
                        )
                        .unwrap()
                        .to_string();
                    assert!(verify_password("secret", &phc), "{phc}");
                    assert!(!verify_password("secreT", &phc), "{phc}");
                }
            }
        }
        let default_params = reference.hash_password_with_salt(b"pw", salt).unwrap();
        assert!(verify_password("pw", &default_params.to_string()));
        // No salt or no hash: never a match.
        assert!(!verify_password("pw", "$argon2id$v=19$m=64,t=1,p=1"));
    }

    #[test]
    fn argon2_hash_verifies_and_rejects_wrong_password() {
        let phc = hash_password("correct horse", cheap()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsf", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn default_argon2_params_follow_owasp() {
        assert_eq!(
            Argon2Params::default(),
            Argon2Params {
                m_cost_kib: 19 * 1024,
                t_cost: 2,
                p_cost: 1
            }
        );
    }

    #[test]
    fn verification_accepts_hashes_with_other_parameters() {
        let phc = hash_password(
            "pw",
            Argon2Params {
                m_cost_kib: 128,
                t_cost: 3,
                p_cost: 2,
            },
        )
        .unwrap();
        assert!(verify_password("pw", &phc));
    }

    #[test]
    fn two_hashes_of_one_password_use_different_salts() {
        let a = hash_password("pw", cheap()).unwrap();
        let b = hash_password("pw", cheap()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn saslprep_lite_maps_spaces_drops_soft_hyphen_and_rejects_controls() {
        assert_eq!(prepare("a\u{00A0}b\u{00AD}c"), Ok("a bc".to_owned()));
        assert_eq!(prepare("a\tb"), Err(PasswordError::ProhibitedCharacter));
        assert_eq!(
            prepare("a\u{0085}b"),
            Err(PasswordError::ProhibitedCharacter)
        );
        assert_eq!(
            prepare(&"x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn new_password_policy_rejects_empty_and_short() {
        assert_eq!(check_new_password("", 8), Err(PasswordError::Empty));
        assert_eq!(check_new_password("\u{00AD}", 8), Err(PasswordError::Empty));
        assert_eq!(
            check_new_password("short", 8),
            Err(PasswordError::TooShort { min: 8 })
        );
        assert_eq!(
            check_new_password("long enough", 8),
            Ok("long enough".to_owned())
        );
    }

    #[test]
    fn scram_credentials_match_rfc7677_and_round_trip() {
        // RFC 7677 §3: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = ScramCredentials::derive("pencil", &salt, nonzero_iterations(4096));
        let text = creds.to_string();
        assert!(
            text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"),
            "{text}"
        );
        assert_eq!(ScramCredentials::parse(&text), Ok(creds.clone()));
        assert!(!format!("{creds:?}").contains(&B64.encode(creds.stored_key)));
    }

    #[test]
    fn malformed_scram_strings_are_rejected() {
        for bad in [
            "",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$0:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA",
            "SCRAM-SHA-1$4096:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$x:AAAA$AAAA:AAAA",
        ] {
            assert_eq!(
                ScramCredentials::parse(bad),
                Err(PasswordError::MalformedScram),
                "{bad}"
            );
        }
    }

    #[test]
    fn new_scram_credentials_use_at_least_ten_thousand_iterations() {
        let creds = ScramCredentials::generate("pencil").unwrap();
        assert!(creds.iterations >= 10_000, "{}", creds.iterations);
        let parsed = ScramCredentials::parse(&creds.to_string()).unwrap();
        assert_eq!(parsed.iterations, creds.iterations);
    }

    #[test]
    fn generated_scram_credentials_are_salted_randomly() {
        let a = ScramCredentials::generate("pw").map(|c| c.to_string());
        let b = ScramCredentials::generate("pw").map(|c| c.to_string());
        assert!(a.is_ok());
        assert_ne!(a, b);
    }
}
