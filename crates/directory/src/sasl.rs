//! Sans-IO SASL server mechanisms: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login-00)
//! and SCRAM-SHA-256 (RFC 5802, RFC 7677). Inputs are the client's decoded bytes; no
//! mechanism here touches the store — the async exchange in `auth.rs` drives them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tern_common::Secret;

use crate::password::{ScramCredentials, ct_eq, hmac_sha256, random_bytes, sha256};

/// Largest client message a mechanism accepts (PLAIN allows 255-octet fields, RFC 4616 §2).
pub const MAX_CLIENT_MESSAGE: usize = 4096;

/// A SASL mechanism Tern offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login-00.
    Login,
    /// RFC 7677.
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order to advertise them in).
    pub const ALL: [Mechanism; 3] = [Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];

    /// Looks a mechanism up by its registered name, case-insensitively (RFC 4422 §3.1).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The registered name, e.g. `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Whether the mechanism sends the password in the clear (only offered under TLS).
    pub fn is_plaintext(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a SASL message was refused. Never carries the client's secret data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The client cancelled the exchange with `*` (RFC 4954 §4, RFC 9051 §6.2.2).
    #[error("authentication cancelled by the client")]
    Cancelled,
    /// The response is not valid base64.
    #[error("invalid base64 in SASL response")]
    InvalidBase64,
    /// A field that must be UTF-8 is not.
    #[error("SASL message is not valid UTF-8")]
    InvalidUtf8,
    /// The message does not follow the mechanism's grammar.
    #[error("malformed SASL message: {0}")]
    Malformed(&'static str),
    /// The client asked to act as another identity (authzid ≠ authcid); Tern has no proxy
    /// authorization.
    #[error("authorization identity differs from authentication identity")]
    AuthzidNotPermitted,
    /// SCRAM channel binding (`p=`) was requested; Tern does not offer SCRAM-SHA-256-PLUS.
    #[error("channel binding is not supported")]
    ChannelBindingNotSupported,
    /// SCRAM: the client-final message is well-formed but the proof is wrong.
    #[error("invalid client proof")]
    InvalidProof,
    /// A message arrived in a state that does not expect one (e.g. after the exchange ended).
    #[error("unexpected SASL step")]
    UnexpectedStep,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
}

/// Decodes a base64 SASL response line (without CRLF). `*` is a cancellation (RFC 4954 §4,
/// RFC 9051 §6.2.2) and `=` an explicitly empty initial response (RFC 4954 §4, RFC 4959 §3).
pub fn decode_base64_response(input: &[u8]) -> Result<Vec<u8>, SaslError> {
    let input = input.trim_ascii();
    match input {
        b"*" => Err(SaslError::Cancelled),
        b"=" | b"" => Ok(Vec::new()),
        _ => B64.decode(input).map_err(|_| SaslError::InvalidBase64),
    }
}

/// Encodes a server challenge or final data as base64.
pub fn encode_base64(data: &[u8]) -> String {
    B64.encode(data)
}

/// The credentials carried by a PLAIN message or a LOGIN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredentials {
    /// The authentication identity (the user name as typed).
    pub username: String,
    pub password: Secret,
}

/// Parses a PLAIN message (RFC 4616 §2):
///
/// ```text
/// message   = [authzid] UTF8NUL authcid UTF8NUL passwd
/// authcid   = 1*SAFE ; MUST accept up to 255 octets
/// passwd    = 1*SAFE ; MUST accept up to 255 octets
/// SAFE      = UTF1 / UTF2 / UTF3 / UTF4 ; any UTF-8 character except NUL
/// ```
///
/// An authzid is accepted only when it equals the authcid (Tern has no proxy authorization).
pub fn parse_plain(message: &[u8]) -> Result<PasswordCredentials, SaslError> {
    if message.is_empty() {
        return Err(SaslError::Malformed("empty PLAIN message"));
    }
    if message.len() > MAX_CLIENT_MESSAGE {
        return Err(SaslError::Malformed("PLAIN message too long"));
    }
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "PLAIN message must have exactly two NUL separators",
        ));
    };
    let authzid = std::str::from_utf8(authzid).map_err(|_| SaslError::InvalidUtf8)?;
    let authcid = std::str::from_utf8(authcid).map_err(|_| SaslError::InvalidUtf8)?;
    let passwd = std::str::from_utf8(passwd).map_err(|_| SaslError::InvalidUtf8)?;
    if authcid.is_empty() {
        return Err(SaslError::Malformed("empty authentication identity"));
    }
    if passwd.is_empty() {
        return Err(SaslError::Malformed("empty password"));
    }
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
        return Err(SaslError::AuthzidNotPermitted);
    }
    Ok(PasswordCredentials {
        username: authcid.to_owned(),
        password: Secret::new(passwd),
    })
}

/// What the LOGIN mechanism wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// Send this challenge (`Username:` or `Password:`).
    Challenge(&'static [u8]),
    /// Both fields are in: verify them.
    Credentials(PasswordCredentials),
}

/// The LOGIN mechanism: the server asks `Username:` then `Password:`; a client may send the
/// user name as initial response.
#[derive(Debug, Default)]
pub struct LoginServer {
    username: Option<String>,
    done: bool,
}

impl LoginServer {
    pub const USERNAME_CHALLENGE: &'static [u8] = b"Username:";
    pub const PASSWORD_CHALLENGE: &'static [u8] = b"Password:";

    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the client's response (`None`: no initial response was given).
    pub fn step(&mut self, response: Option<&[u8]>) -> Result<LoginStep, SaslError> {
        if self.done {
            return Err(SaslError::UnexpectedStep);
        }
        let Some(response) = response else {
            return if self.username.is_none() {
                Ok(LoginStep::Challenge(Self::USERNAME_CHALLENGE))
            } else {
                Err(SaslError::UnexpectedStep)
            };
        };
        if response.len() > MAX_CLIENT_MESSAGE {
            return Err(SaslError::Malformed("LOGIN response too long"));
        }
        let text = std::str::from_utf8(response).map_err(|_| SaslError::InvalidUtf8)?;
        if text.contains('\0') {
            return Err(SaslError::Malformed("NUL in LOGIN response"));
        }
        match self.username.take() {
            None => {
                if text.is_empty() {
                    return Err(SaslError::Malformed("empty user name"));
                }
                self.username = Some(text.to_owned());
                Ok(LoginStep::Challenge(Self::PASSWORD_CHALLENGE))
            }
            Some(username) => {
                self.done = true;
                if text.is_empty() {
                    return Err(SaslError::Malformed("empty password"));
                }
                Ok(LoginStep::Credentials(PasswordCredentials {
                    username,
                    password: Secret::new(text),
                }))
            }
        }
    }
}

/// SCRAM-SHA-256 server (RFC 5802 §5, RFC 7677) without channel binding.
///
/// Drive it with [`ScramServer::client_first`] → (look up credentials) →
/// [`ScramServer::server_first`] → [`ScramServer::client_final`].
pub struct ScramServer {
    server_nonce: String,
    state: ScramState,
}

enum ScramState {
    Start,
    ClientFirst {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    ServerFirst {
        gs2_header: String,
        nonce: String,
        auth_message_prefix: String,
        stored_key: [u8; 32],
        server_key: [u8; 32],
    },
    Done,
}

/// The parts of a client-first message the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The authentication identity, `=2C`/`=3D` decoded.
    pub username: String,
}

impl ScramServer {
    /// A new exchange with a fresh 24-byte random server nonce.
    pub fn new() -> Result<Self, SaslError> {
        let nonce = random_bytes::<24>().map_err(|_| SaslError::Random)?;
        Ok(Self::with_nonce(&B64.encode(nonce)))
    }

    /// An exchange with a fixed server nonce: for test vectors only.
    pub(crate) fn with_nonce(server_nonce: &str) -> Self {
        Self {
            server_nonce: server_nonce.to_owned(),
            state: ScramState::Start,
        }
    }

    /// Parses the client-first message (RFC 5802 §7):
    ///
    /// ```text
    /// client-first-message      = gs2-header client-first-message-bare
    /// gs2-header                = gs2-cbind-flag "," [ authzid ] ","
    /// gs2-cbind-flag            = ("p=" cb-name) / "n" / "y"
    /// authzid                   = "a=" saslname
    /// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    /// username                  = "n=" saslname
    /// nonce                     = "r=" c-nonce [s-nonce]
    /// ```
    pub fn client_first(&mut self, message: &[u8]) -> Result<ClientFirst, SaslError> {
        if !matches!(self.state, ScramState::Start) {
            return Err(SaslError::UnexpectedStep);
        }
        self.state = ScramState::Done;
        let text = scram_text(message)?;
        let (cbind, rest) = text
            .split_once(',')
            .ok_or(SaslError::Malformed("missing gs2 header"))?;
        match cbind {
            // "y": the client could do channel binding but thinks we cannot — true, since we
            // never advertise SCRAM-SHA-256-PLUS, so this is no downgrade (RFC 5802 §6).
            "n" | "y" => {}
            c if c.starts_with("p=") => return Err(SaslError::ChannelBindingNotSupported),
            _ => return Err(SaslError::Malformed("invalid gs2 channel binding flag")),
        }
        let (authzid_raw, bare) = rest
            .split_once(',')
            .ok_or(SaslError::Malformed("missing gs2 header"))?;
        let authzid = match authzid_raw {
            "" => None,
            a => Some(saslname(
                a.strip_prefix("a=")
                    .ok_or(SaslError::Malformed("invalid authzid"))?,
            )?),
        };
        let gs2_header = format!("{cbind},{authzid_raw},");
        let mut attrs = bare.split(',');
        let first = attrs.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(SaslError::Malformed("unsupported mandatory extension"));
        }
        let username = saslname(
            first
                .strip_prefix("n=")
                .ok_or(SaslError::Malformed("missing username"))?,
        )?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(SaslError::Malformed("missing nonce"))?;
        if client_nonce.is_empty() || !client_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(SaslError::Malformed("invalid nonce"));
        }
        if let Some(authzid) = authzid
            && !authzid.eq_ignore_ascii_case(&username)
        {
            return Err(SaslError::AuthzidNotPermitted);
        }
        self.state = ScramState::ClientFirst {
            gs2_header,
            client_first_bare: bare.to_owned(),
            client_nonce: client_nonce.to_owned(),
        };
        Ok(ClientFirst { username })
    }

    /// Builds the server-first message `r=<nonce>,s=<salt>,i=<iterations>` from the user's
    /// stored credentials (or from decoy credentials for an unknown user).
    pub fn server_first(&mut self, credentials: &ScramCredentials) -> Result<Vec<u8>, SaslError> {
        let ScramState::ClientFirst {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = std::mem::replace(&mut self.state, ScramState::Done)
        else {
            return Err(SaslError::UnexpectedStep);
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credentials.salt),
            credentials.iterations
        );
        self.state = ScramState::ServerFirst {
            gs2_header,
            nonce,
            auth_message_prefix: format!("{client_first_bare},{server_first},"),
            stored_key: credentials.stored_key,
            server_key: credentials.server_key,
        };
        Ok(server_first.into_bytes())
    }

    /// Verifies the client-final message and returns the server-final message `v=...`.
    ///
    /// ```text
    /// client-final-message = channel-binding "," nonce ["," extensions] "," proof
    /// channel-binding      = "c=" base64   ; base64 of the gs2-header (no cbind-data)
    /// proof                = "p=" base64
    /// ```
    pub fn client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ScramState::ServerFirst {
            gs2_header,
            nonce,
            auth_message_prefix,
            stored_key,
            server_key,
        } = std::mem::replace(&mut self.state, ScramState::Done)
        else {
            return Err(SaslError::UnexpectedStep);
        };
        let text = scram_text(message)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(SaslError::Malformed("missing proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(SaslError::Malformed("missing channel binding"))?;
        let binding = B64
            .decode(binding)
            .map_err(|_| SaslError::Malformed("channel binding is not base64"))?;
        if binding != gs2_header.as_bytes() {
            return Err(SaslError::Malformed(
                "channel binding does not match the gs2 header",
            ));
        }
        let final_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(SaslError::Malformed("missing nonce"))?;
        if !ct_eq(final_nonce.as_bytes(), nonce.as_bytes()) {
            return Err(SaslError::Malformed("nonce mismatch"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| SaslError::Malformed("proof is not base64"))?;
        if proof.len() != 32 {
            return Err(SaslError::Malformed("proof has the wrong length"));
        }
        // RFC 5802 §3: AuthMessage = client-first-message-bare "," server-first-message ","
        //   client-final-message-without-proof; ClientKey = ClientProof XOR ClientSignature;
        //   the proof is valid when H(ClientKey) = StoredKey.
        let auth_message = format!("{auth_message_prefix}{without_proof}");
        let client_signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for ((k, p), s) in client_key.iter_mut().zip(&proof).zip(&client_signature) {
            *k = p ^ s;
        }
        if !ct_eq(&sha256(&client_key), &stored_key) {
            return Err(SaslError::InvalidProof);
        }
        let server_signature = hmac_sha256(&server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScramServer { .. }")
    }
}

fn scram_text(message: &[u8]) -> Result<&str, SaslError> {
    if message.is_empty() {
        return Err(SaslError::Malformed("empty SCRAM message"));
    }
    if message.len() > MAX_CLIENT_MESSAGE {
        return Err(SaslError::Malformed("SCRAM message too long"));
    }
    let text = std::str::from_utf8(message).map_err(|_| SaslError::InvalidUtf8)?;
    if text.contains('\0') {
        return Err(SaslError::Malformed("NUL in SCRAM message"));
    }
    Ok(text)
}

/// `saslname = 1*(value-safe-char / "=2C" / "=3D")` (RFC 5802 §7).
fn saslname(raw: &str) -> Result<String, SaslError> {
    if raw.is_empty() {
        return Err(SaslError::Malformed("empty saslname"));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos..pos + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed("invalid escape in saslname")),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[path = "sasl_tests.rs"]
mod tests;
